//! The retraining network of a fixed ENAS macro architecture (melodyguan/enas
//! `general_child.py` with `fixed_arc` and `whole_channels`, as `cifar10_macro_final.sh` runs
//! it): a stem (conv 3x3, BN), one [`FixedLayer`] per layer of the architecture, and at the two
//! pooling layers (`L/3 - 1`, `2L/3 - 1`) `out_filters` doubles while a FactorizedReduce brings
//! every stored layer output to half the resolution and the new channel count (C, 2C, 4C);
//! then global average pooling and a linear classifier without bias (the reference's `fc`).
//! Only the chosen operations exist, and every BN is affine (the reference's `batch_norm` has
//! `offset` and `scale`).
//!
//! Where we differ from the reference, and why:
//! - Skips: bit `j` of layer `i` joins layer `j`'s output, as in our search and the reference's
//!   controller (see [`crate::space::MacroArch::from_reference_text`]); the reference's child stores the stem
//!   as `prev_layers[0]`, so it also reduces the stem at the pooling layers. Ours never reads
//!   the stem after layer 0 and has no FactorizedReduce for it.
//! - Operations: the reference's fixed layer builds ops 0..3 as plain convs of size
//!   `[3, 3, 5, 5]` (the separable ones lose their separability) and leaves the pools
//!   unimplemented (`pass`); its final run only uses ops 0..3 (`--child_num_branches=4`). We
//!   build what was searched: the separable ops as depthwise kxk + pointwise 1x1, and every op,
//!   pools included, in the fixed layer's pre-activation form (ReLU, conv 1x1, BN, ReLU, op,
//!   and BN after a conv).
//! - FactorizedReduce is DARTS's ([`FactorizedReduce`]), which starts with a ReLU; the
//!   reference's `_factorized_reduction` has none.
//! - Left out: the dropout before the classifier (`--child_keep_prob=0.50`); drop path, which the
//!   reference's macro child does not have either (the trainer rejects `drop_path_prob > 0`).
//!   BN uses eps 1e-5 (the reference 1e-3) and weights PyTorch's default init (the reference He
//!   normal), as the rest of this crate.
//! - Added, off by default: the [`AuxiliaryHeadCifar`] after the second pooling layer (the
//!   reference's macro child has no auxiliary head).

use super::model::{count_parameters_in_mb, Architecture, AuxiliaryHeadCifar, ModelConfig};
use crate::enas::macro_space::{pool_layers, BranchOp};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{join, BatchNorm, Conv, FactorizedReduce, Linear, Module, ReluConvBn};
use crate::ops::{conv::Conv2d, elementwise, layout, pool};
use crate::rng::Rng;
use crate::space::{MacroLayer, ENAS_MACRO_OPS};
use crate::tensor::Tensor;

/// One layer of `_fixed_layer`: its operation on the previous layer's output, then on every
/// layer but the first the concatenation with the skipped-from layers' outputs, brought back to
/// C channels (the reference's `skip` scope, there even when no skip is chosen).
pub struct FixedLayer {
    /// One of [`ENAS_MACRO_OPS`]; it names the operation's parameters.
    pub op: &'static str,
    /// ReLU -> conv 1x1 -> BN (`conv_1x1`).
    conv_1x1: ReluConvBn,
    branch: BranchOp,
    /// The BN after a convolution; a pool has none.
    bn: Option<BatchNorm>,
    /// The earlier layers whose outputs join this one's, in order.
    pub skips: Vec<usize>,
    /// ReLU -> conv 1x1 ((skips + 1) C -> C) -> BN; `None` on layer 0.
    skip: Option<ReluConvBn>,
}

impl FixedLayer {
    /// Layer `index` of a validated architecture at C = `c` channels.
    fn new(gpu: &Gpu, rng: &mut Rng, layer: &MacroLayer, index: usize, c: usize) -> Result<FixedLayer> {
        let op = ENAS_MACRO_OPS[layer.op];
        let conv_1x1 = ReluConvBn::new(gpu, rng, c, c, 1, 1, 0, true)?;
        let branch = BranchOp::new(gpu, rng, op, c)?;
        let bn = if branch.is_conv() { Some(BatchNorm::new(gpu, c, true)?) } else { None };
        let skips: Vec<usize> = layer.skips.iter().enumerate().filter(|(_, &s)| s).map(|(j, _)| j).collect();
        let skip =
            if index > 0 { Some(ReluConvBn::new(gpu, rng, (skips.len() + 1) * c, c, 1, 1, 0, true)?) } else { None };
        Ok(FixedLayer { op, conv_1x1, branch, bn, skips, skip })
    }

    /// input: the previous layer's output (the stem's for layer 0), [N, C, H, W]; `outputs`: the
    /// earlier layers' outputs at the same resolution and channels. -> [N, C, H, W].
    fn forward(&self, input: &Tensor, outputs: &[Tensor], train: bool) -> Result<Tensor> {
        let y = self.branch.forward(&elementwise::relu(&self.conv_1x1.forward(input, train)?)?)?;
        let out = match &self.bn {
            Some(bn) => bn.forward(&y, train)?,
            None => y,
        };
        let Some(skip) = &self.skip else {
            return Ok(out);
        };
        let mut joined: Vec<&Tensor> = self.skips.iter().map(|&j| &outputs[j]).collect();
        joined.push(&out);
        skip.forward(&layout::concat_channels(&joined)?, train) // [N, (skips + 1) C, H, W] -> [N, C, H, W]
    }
}

impl Module for FixedLayer {
    fn params(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        self.conv_1x1.params(&join(prefix, "conv_1x1"), out);
        let op = join(prefix, self.op);
        self.branch.params(&op, out);
        if let Some(bn) = &self.bn {
            bn.params(&join(&op, "bn"), out);
        }
        if let Some(skip) = &self.skip {
            skip.params(&join(prefix, "skip"), out);
        }
    }
    fn buffers(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        self.conv_1x1.buffers(&join(prefix, "conv_1x1"), out);
        if let Some(bn) = &self.bn {
            bn.buffers(&join(&join(prefix, self.op), "bn"), out);
        }
        if let Some(skip) = &self.skip {
            skip.buffers(&join(prefix, "skip"), out);
        }
    }
}

/// `GeneralChild` with a fixed architecture (see the module documentation).
pub struct FixedMacroNetwork {
    /// The configuration it was built from.
    pub config: ModelConfig,
    stem_conv: Conv,
    stem_bn: BatchNorm,
    /// The layers, input side first.
    pub layers: Vec<FixedLayer>,
    /// At each pooling layer, one FactorizedReduce (C -> 2C, stride 2) per layer output so far:
    /// (layer, modules).
    pools: Vec<(usize, Vec<FactorizedReduce>)>,
    /// The auxiliary classifier after the second pooling layer, when configured.
    pub auxiliary_head: Option<AuxiliaryHeadCifar>,
    classifier: Linear,
}

impl FixedMacroNetwork {
    /// Builds the network of `config.architecture` (a macro one) with PyTorch's default
    /// initialisation, drawn from `rng`.
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: ModelConfig) -> Result<FixedMacroNetwork> {
        config.validate()?;
        let Architecture::Macro(arch) = &config.architecture else {
            return Err(Error::Config(
                "FixedMacroNetwork is built from a macro architecture; build cells with NetworkCifar \
                 (EvalNetwork::new picks)"
                    .into(),
            ));
        };
        let pool_at = pool_layers(arch.layers.len());
        let mut c = config.channels; // out_filters
        let stem_conv = Conv::new(gpu, rng, config.in_channels, c, 3, Conv2d::new(1, 1, 1, 1))?;
        let stem_bn = BatchNorm::new(gpu, c, true)?;
        let mut layers = Vec::with_capacity(arch.layers.len());
        let mut pools = Vec::with_capacity(pool_at.len());
        let mut auxiliary_head = None;
        for (i, layer) in arch.layers.iter().enumerate() {
            layers.push(FixedLayer::new(gpu, rng, layer, i, c)?);
            if pool_at.contains(&i) {
                c *= 2;
                let reduce = (0..=i).map(|_| FactorizedReduce::new(gpu, rng, c / 2, c, true)).collect::<Result<_>>()?;
                pools.push((i, reduce));
                if config.auxiliary && pool_at.get(1) == Some(&i) {
                    auxiliary_head = Some(AuxiliaryHeadCifar::new(gpu, rng, c, config.num_classes)?);
                }
            }
        }
        let classifier = Linear::new(gpu, rng, c, config.num_classes, false)?;
        Ok(FixedMacroNetwork { config, stem_conv, stem_bn, layers, pools, auxiliary_head, classifier })
    }

    /// x: [N, in_channels, H, W] -> (logits [N, classes], auxiliary logits [N, classes] in
    /// training with the head). `train` selects BN's batch statistics.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<(Tensor, Option<Tensor>)> {
        let stem = self.stem_bn.forward(&self.stem_conv.forward(x)?, train)?; // [N, C, H, W]

        // Every layer's output so far, at the current resolution and channel count.
        let mut outputs: Vec<Tensor> = Vec::with_capacity(self.layers.len());
        let mut logits_aux = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let out = layer.forward(outputs.last().unwrap_or(&stem), &outputs, train)?;
            outputs.push(out);
            if let Some((k, (_, reduce))) = self.pools.iter().enumerate().find(|(_, (at, _))| *at == i) {
                // [N, C, H, W] -> [N, 2C, ceil(H/2), ceil(W/2)] for each output
                outputs = outputs.iter().zip(reduce).map(|(o, r)| r.forward(o, train)).collect::<Result<_>>()?;
                // The head reads after the second pooling layer.
                if train && k == 1 {
                    if let Some(head) = &self.auxiliary_head {
                        logits_aux = Some(head.forward(&outputs[i], train)?); // reads [N, 4C, H/4, W/4]
                    }
                }
            }
        }
        let last = outputs.last().expect("a macro architecture has at least one layer");
        let [n, c] = [last.shape()[0], last.shape()[1]];
        // The reference pools the last layer's BN output directly, with no ReLU before.
        let features = pool::global_avg_pool(last)?.reshape(&[n, c])?; // [N, C_last]
        Ok((self.classifier.forward(&features)?, logits_aux))
    }

    /// `utils.count_parameters_in_MB`: trainable values outside the auxiliary head, / 1e6.
    pub fn count_parameters_in_mb(&self) -> f64 {
        count_parameters_in_mb(self)
    }
}

impl Module for FixedMacroNetwork {
    fn params(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        self.stem_conv.params(&join(prefix, "stem.conv"), out);
        self.stem_bn.params(&join(prefix, "stem.bn"), out);
        for (i, layer) in self.layers.iter().enumerate() {
            layer.params(&join(prefix, &format!("layer_{i}")), out);
        }
        for (at, reduce) in &self.pools {
            for (j, r) in reduce.iter().enumerate() {
                r.params(&join(prefix, &format!("pool_at_{at}.from_{j}")), out);
            }
        }
        if let Some(head) = &self.auxiliary_head {
            head.params(&join(prefix, "auxiliary_head"), out);
        }
        self.classifier.params(&join(prefix, "classifier"), out);
    }
    fn buffers(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        self.stem_bn.buffers(&join(prefix, "stem.bn"), out);
        for (i, layer) in self.layers.iter().enumerate() {
            layer.buffers(&join(prefix, &format!("layer_{i}")), out);
        }
        for (at, reduce) in &self.pools {
            for (j, r) in reduce.iter().enumerate() {
                r.buffers(&join(prefix, &format!("pool_at_{at}.from_{j}")), out);
            }
        }
        if let Some(head) = &self.auxiliary_head {
            head.buffers(&join(prefix, "auxiliary_head"), out);
        }
    }
}

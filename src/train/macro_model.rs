//! The retraining network of a fixed ENAS macro architecture: melodyguan/enas
//! `general_child.py` with `fixed_arc` and `whole_channels`, as `cifar10_macro_final.sh` runs
//! it. A stem (conv 3x3 to `out_filters`, BN; `_model`, lines 197-201), one [`FixedLayer`] per
//! layer (`_fixed_layer`, 371-481), and at the two pooling layers (`L/3 - 1`, `2L/3 - 1`, lines
//! 95-96) `out_filters` doubles while a factorized reduction (`_factorized_reduction`, 129-177)
//! brings every stored output, the stem's included, to half the resolution and the new channel
//! count (lines 214-224); then global average pooling and a linear classifier without bias
//! (`fc`, 231-242). Every BN is affine (`image_ops.batch_norm` has `offset` and `scale`).
//!
//! [`MacroVariant::Reference`], the default, is that network:
//! - ops 0..3 are ReLU, conv 1x1, BN, ReLU, a plain conv of size `[3, 3, 5, 5][op]`, BN (lines
//!   390-405): the reference's fixed layer builds `sep_conv_3x3`/`sep_conv_5x5` as full convs;
//! - skip bit `j` of layer `i` joins `prev_layers[j]`, whose entry 0 is the stem: the stem for
//!   `j = 0`, layer `j - 1` otherwise (lines 453-464), so a layer's bits never name its own
//!   input; the join is concat, ReLU, conv 1x1 to C, BN (lines 466-479);
//! - the factorized reduction has no ReLU before its two paths.
//!
//! [`MacroVariant::Searched`] is the network our search scores, where bit `j` joins layer `j`'s
//! output (as the reference's controller's attention anchors and the paper read it, and as
//! the ENAS shared model does), the separable ops are depthwise kxk + pointwise 1x1, the
//! stem is never read after layer 0 (so it is not reduced), and the reduction is DARTS's
//! [`FactorizedReduce`] with its leading ReLU.
//!
//! Both:
//! - ops 4 and 5 (the pools): the reference's fixed layer leaves them unimplemented (`pass`,
//!   lines 406-409, which fails there) and its final run uses only ops 0..3
//!   (`--child_num_branches=4`); we build them in the same pre-activation form (ReLU, conv 1x1,
//!   BN, ReLU, 3x3 pool, no BN).
//! - Left out: the dropout before the classifier (`--child_keep_prob=0.50`); drop path, which the
//!   reference's macro child does not have either (the trainer rejects `drop_path_prob > 0`).
//!   BN uses eps 1e-5 (the reference 1e-3) and weights PyTorch's default init (the reference He
//!   normal), as the rest of this crate.
//! - Added, off by default: the [`AuxiliaryHeadCifar`] after the second pooling layer (the
//!   reference's macro child has no auxiliary head).

use super::config::{Architecture, EvalNetworkConfig, MacroVariant};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{
    count_parameters_in_mb, join, AuxiliaryHeadCifar, BatchNorm, BranchOp, Conv, FactorizedReduce, Linear, Module,
    ReluConvBn, Visit,
};
use crate::ops::{conv::Conv2d, elementwise, layout, pool};
use crate::rng::Rng;
use crate::space::{pool_layers, MacroLayer, ENAS_MACRO_OPS};
use crate::tensor::Tensor;

impl MacroVariant {
    /// The operation a fixed layer builds for `op` (an index into [`ENAS_MACRO_OPS`]): the
    /// reference builds the separable ones as plain convs of the same size.
    fn built_op(self, op: usize) -> &'static str {
        match (self, ENAS_MACRO_OPS[op]) {
            (MacroVariant::Reference, "sep_conv_3x3") => "conv_3x3",
            (MacroVariant::Reference, "sep_conv_5x5") => "conv_5x5",
            (_, name) => name,
        }
    }

    /// The index in [stem, layer 0, layer 1, ..] of the output that skip bit `j` joins.
    fn skip_source(self, j: usize) -> usize {
        match self {
            MacroVariant::Reference => j,
            MacroVariant::Searched => j + 1,
        }
    }
}

/// One layer of `_fixed_layer`: its operation on the previous layer's output, then on every
/// layer but the first the concatenation with the skipped-from outputs, brought back to C
/// channels (the reference's `skip` scope, there even when no skip is chosen).
pub struct FixedLayer {
    /// One of [`ENAS_MACRO_OPS`], as the architecture names it; it names the operation's
    /// parameters (a reference `sep_conv_3x3` holds a plain 3x3 conv).
    pub op: &'static str,
    /// ReLU -> conv 1x1 -> BN (`conv_1x1`).
    conv_1x1: ReluConvBn,
    branch: BranchOp,
    /// The BN after a convolution; a pool has none.
    bn: Option<BatchNorm>,
    /// The stored outputs that join this one's, in order, as indices into [stem, layer 0,
    /// layer 1, ..].
    pub skips: Vec<usize>,
    /// ReLU -> conv 1x1 ((skips + 1) C -> C) -> BN; `None` on layer 0.
    skip: Option<ReluConvBn>,
}

impl FixedLayer {
    /// Layer `index` of a validated architecture at C = `c` channels.
    fn new(
        gpu: &Gpu,
        rng: &mut Rng,
        layer: &MacroLayer,
        index: usize,
        c: usize,
        variant: MacroVariant,
    ) -> Result<FixedLayer> {
        let op = ENAS_MACRO_OPS[layer.op];
        let conv_1x1 = ReluConvBn::new(gpu, rng, c, c, 1, 1, 0, true)?;
        let branch = BranchOp::new(gpu, rng, variant.built_op(layer.op), c)?;
        let bn = if branch.is_conv() { Some(BatchNorm::new(gpu, c, true)?) } else { None };
        let skips: Vec<usize> =
            layer.skips.iter().enumerate().filter(|(_, &s)| s).map(|(j, _)| variant.skip_source(j)).collect();
        let skip =
            if index > 0 { Some(ReluConvBn::new(gpu, rng, (skips.len() + 1) * c, c, 1, 1, 0, true)?) } else { None };
        Ok(FixedLayer { op, conv_1x1, branch, bn, skips, skip })
    }

    /// input: the previous layer's output (the stem's for layer 0), [N, C, H, W]; `outputs`:
    /// [stem, layer 0, ..] so far, at the same resolution and channels. -> [N, C, H, W].
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
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.conv_1x1.visit(&join(prefix, "conv_1x1"), f);
        let op = join(prefix, self.op);
        self.branch.visit(&op, f);
        if let Some(bn) = &self.bn {
            bn.visit(&join(&op, "bn"), f);
        }
        if let Some(skip) = &self.skip {
            skip.visit(&join(prefix, "skip"), f);
        }
    }
}

/// `GeneralChild` with a fixed architecture (see the module documentation).
pub struct FixedMacroNetwork {
    /// The configuration it was built from.
    pub config: EvalNetworkConfig,
    stem_conv: Conv,
    stem_bn: BatchNorm,
    /// The layers, input side first.
    pub layers: Vec<FixedLayer>,
    /// At each pooling layer, one FactorizedReduce (C -> 2C, stride 2) per stored output that
    /// is read later: (layer, modules for [stem, layer 0, ..] (reference) or [layer 0, ..]
    /// (searched)).
    pools: Vec<(usize, Vec<FactorizedReduce>)>,
    /// The auxiliary classifier after the second pooling layer, when configured.
    pub auxiliary_head: Option<AuxiliaryHeadCifar>,
    classifier: Linear,
}

impl FixedMacroNetwork {
    /// Builds the network of `config.architecture` (a macro one) with PyTorch's default
    /// initialisation, drawn from `rng`.
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: EvalNetworkConfig) -> Result<FixedMacroNetwork> {
        config.validate()?;
        let Architecture::Macro(arch) = &config.architecture else {
            return Err(Error::Config(
                "FixedMacroNetwork is built from a macro architecture; build cells with NetworkCifar \
                 (EvalNetwork::new picks)"
                    .into(),
            ));
        };
        let pool_at = pool_layers(arch.layers.len());
        let variant = config.macro_variant;
        let mut c = config.channels; // out_filters
        let stem_conv = Conv::new(gpu, rng, config.in_channels, c, 3, Conv2d::new(1, 1, 1, 1))?;
        let stem_bn = BatchNorm::new(gpu, c, true)?;
        let mut layers = Vec::with_capacity(arch.layers.len());
        let mut pools = Vec::with_capacity(pool_at.len());
        let mut auxiliary_head = None;
        for (i, layer) in arch.layers.iter().enumerate() {
            layers.push(FixedLayer::new(gpu, rng, layer, i, c, variant)?);
            if pool_at.contains(&i) {
                c *= 2;
                // The stem and layers 0..=i are stored; the searched network never reads the stem again.
                let stored = match variant {
                    MacroVariant::Reference => i + 2,
                    MacroVariant::Searched => i + 1,
                };
                let reduce =
                    (0..stored).map(|_| FactorizedReduce::new(gpu, rng, c / 2, c, true)).collect::<Result<_>>()?;
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

        // [stem, layer 0, ..] so far (`prev_layers`), at the current resolution and channels; the
        // searched network leaves the stem unreduced, as it never reads it after layer 0.
        let mut outputs: Vec<Tensor> = Vec::with_capacity(self.layers.len() + 1);
        outputs.push(stem);
        let mut logits_aux = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let out = layer.forward(outputs.last().expect("the stem is stored"), &outputs, train)?;
            outputs.push(out);
            if let Some((k, (_, reduce))) = self.pools.iter().enumerate().find(|(_, (at, _))| *at == i) {
                // [N, C, H, W] -> [N, 2C, ceil(H/2), ceil(W/2)] for each output read later
                let from = outputs.len() - reduce.len();
                let reduced = outputs[from..]
                    .iter()
                    .zip(reduce)
                    .map(|(o, r)| match self.config.macro_variant {
                        MacroVariant::Reference => r.forward_activated(o, train), // no ReLU first
                        MacroVariant::Searched => r.forward(o, train),
                    })
                    .collect::<Result<Vec<_>>>()?;
                outputs.truncate(from);
                outputs.extend(reduced);
                // The head reads after the second pooling layer.
                if train && k == 1 {
                    if let Some(head) = &self.auxiliary_head {
                        // outputs[i + 1] is layer i's: [N, 4C, H/4, W/4]
                        logits_aux = Some(head.forward(&outputs[i + 1], train)?);
                    }
                }
            }
        }
        let last = outputs.last().expect("the stem is stored");
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
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.stem_conv.visit(&join(prefix, "stem.conv"), f);
        self.stem_bn.visit(&join(prefix, "stem.bn"), f);
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit(&join(prefix, &format!("layer_{i}")), f);
        }
        for (at, reduce) in &self.pools {
            for (j, r) in reduce.iter().enumerate() {
                r.visit(&join(prefix, &format!("pool_at_{at}.from_{j}")), f);
            }
        }
        if let Some(head) = &self.auxiliary_head {
            head.visit(&join(prefix, "auxiliary_head"), f);
        }
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}

//! The macro space's shared model (melodyguan/enas `general_child.py`, search with whole
//! channels): a stem, `num_layers` layers each running one of six branches on the previous
//! layer's output plus the sampled skip connections, FactorizedReduce of every stored output at
//! the two pooling positions, global average pooling and a classifier. The channel count stays
//! `channels` throughout the search (the reference doubles it only for a fixed architecture).
//!
//! Branches, as the reference: conv k x k: ReLU(BN(conv1x1)) -> conv kxk -> BN -> ReLU;
//! separable: the same with a depthwise kxk and a pointwise 1x1; pools: ReLU(BN(conv1x1)) ->
//! 3x3 pool. A layer with skips adds the skipped-from outputs to its branch and applies BN. BN is
//! affine-free except the stem's.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{join, BatchNorm, BranchOp, Conv, FactorizedReduce, Linear, Module, Visit};
use crate::ops::{conv::Conv2d, elementwise, pool};
use crate::rng::Rng;
use crate::space::{pool_layers, MacroArch, ENAS_MACRO_OPS};
use crate::tensor::Tensor;

/// Shape of the macro shared model. The reference's search: 12 layers, 36 channels.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MacroConfig {
    /// Channels of the input images.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// `out_filters`; even (FactorizedReduce).
    pub channels: usize,
    /// Number of layers, each one sampled branch (12).
    pub num_layers: usize,
}

impl MacroConfig {
    /// The reference's macro search model (12 layers, 36 channels) for these inputs and classes.
    pub fn enas(in_channels: usize, num_classes: usize) -> Self {
        MacroConfig { in_channels, num_classes, channels: 36, num_layers: 12 }
    }

    /// Layers after which every stored output is halved (see [`pool_layers`]).
    pub fn pool_layers(&self) -> Vec<usize> {
        pool_layers(self.num_layers)
    }

    /// Checks that sizes are at least 1 and the channel count even.
    pub fn validate(&self) -> Result<()> {
        if self.in_channels == 0 || self.num_classes == 0 || self.num_layers == 0 {
            return Err(Error::Config("the macro model needs input channels, classes and layers >= 1".into()));
        }
        if self.channels == 0 || !self.channels.is_multiple_of(2) {
            return Err(Error::Config(format!(
                "the macro model needs an even channel count (FactorizedReduce), got {}",
                self.channels
            )));
        }
        Ok(())
    }
}

/// ReLU(BN(conv1x1(x))): every branch starts with it.
struct Input {
    conv: Conv,
    bn: BatchNorm,
}

impl Input {
    fn new(gpu: &Gpu, rng: &mut Rng, c: usize) -> Result<Input> {
        Ok(Input { conv: Conv::new(gpu, rng, c, c, 1, Conv2d::new(1, 0, 1, 1))?, bn: BatchNorm::new(gpu, c, false)? })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_relu(&self.conv.forward(x)?, train)
    }
}

/// One branch of a layer with its weights: input, operation, and for convs BN and ReLU.
struct Branch {
    input: Input,
    op: BranchOp,
    bn: Option<BatchNorm>,
}

impl Branch {
    fn new(gpu: &Gpu, rng: &mut Rng, op: &str, c: usize) -> Result<Branch> {
        let input = Input::new(gpu, rng, c)?;
        let op = BranchOp::new(gpu, rng, op, c)?;
        let bn = if op.is_conv() { Some(BatchNorm::new(gpu, c, false)?) } else { None };
        Ok(Branch { input, op, bn })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = self.op.forward(&self.input.forward(x, train)?)?;
        match &self.bn {
            Some(bn) => bn.forward_relu(&y, train),
            None => Ok(y),
        }
    }
}

impl Module for Branch {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.op.visit(prefix, f);
        // Affine-free BNs: running statistics only.
        if let Some(bn) = &self.bn {
            bn.visit(&join(prefix, "bn"), f);
        }
        self.input.conv.visit(&join(prefix, "inp_conv"), f);
        self.input.bn.visit(&join(prefix, "inp_bn"), f);
    }
}

/// The macro shared model.
pub struct MacroNetwork {
    /// The configuration it was built from.
    pub config: MacroConfig,
    stem_conv: Conv,
    stem_bn: BatchNorm,
    /// `branches[layer][op]`, op in [`ENAS_MACRO_OPS`] order.
    branches: Vec<Vec<Branch>>,
    /// BN after the sum of a layer's branch and skips (layers 1..).
    skip_bn: Vec<BatchNorm>,
    /// At each pooling layer, one FactorizedReduce per stored output: (layer, modules).
    pools: Vec<(usize, Vec<FactorizedReduce>)>,
    classifier: Linear,
}

impl MacroNetwork {
    /// Builds the shared model with the weights of every layer's six branches.
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: MacroConfig) -> Result<MacroNetwork> {
        config.validate()?;
        let c = config.channels;
        let stem_conv = Conv::new(gpu, rng, config.in_channels, c, 3, Conv2d::new(1, 1, 1, 1))?;
        let stem_bn = BatchNorm::new(gpu, c, true)?;
        let mut branches = Vec::with_capacity(config.num_layers);
        let mut skip_bn = Vec::new();
        let mut pools = Vec::new();
        for layer in 0..config.num_layers {
            branches.push(ENAS_MACRO_OPS.iter().map(|op| Branch::new(gpu, rng, op, c)).collect::<Result<_>>()?);
            if layer > 0 {
                skip_bn.push(BatchNorm::new(gpu, c, false)?);
            }
            if config.pool_layers().contains(&layer) {
                let reduce =
                    (0..=layer).map(|_| FactorizedReduce::new(gpu, rng, c, c, false)).collect::<Result<_>>()?;
                pools.push((layer, reduce));
            }
        }
        let classifier = Linear::new(gpu, rng, c, config.num_classes, true)?;
        Ok(MacroNetwork { config, stem_conv, stem_bn, branches, skip_bn, pools, classifier })
    }

    /// x: [N, in_channels, H, W] -> logits [N, classes], running only `arch`'s branches.
    pub fn forward(&self, x: &Tensor, arch: &MacroArch, train: bool) -> Result<Tensor> {
        if arch.layers.len() != self.config.num_layers {
            return Err(Error::Config(format!(
                "the architecture has {} layers, the shared model {}",
                arch.layers.len(),
                self.config.num_layers
            )));
        }
        arch.validate()?;
        let x = self.stem_bn.forward(&self.stem_conv.forward(x)?, train)?;
        // layers: every layer's output so far, at the current resolution.
        let mut layers: Vec<Tensor> = Vec::with_capacity(arch.layers.len());
        for (i, layer) in arch.layers.iter().enumerate() {
            let input = layers.last().unwrap_or(&x);
            let mut out = self.branches[i][layer.op].forward(input, train)?;
            if i > 0 {
                let mut terms: Vec<&Tensor> =
                    layers.iter().zip(&layer.skips).filter(|(_, &s)| s).map(|(l, _)| l).collect();
                terms.push(&out);
                out = self.skip_bn[i - 1].forward(&elementwise::add_n(&terms)?, train)?;
            }
            layers.push(out);
            if let Some((_, reduce)) = self.pools.iter().find(|(at, _)| *at == i) {
                layers = layers.iter().zip(reduce).map(|(l, r)| r.forward(l, train)).collect::<Result<_>>()?;
            }
        }
        let last = layers.last().expect("at least one layer");
        let (n, c) = (last.shape()[0], last.shape()[1]);
        let features = pool::global_avg_pool(&elementwise::relu(last)?)?.reshape(&[n, c])?;
        self.classifier.forward(&features)
    }
}

impl Module for MacroNetwork {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.stem_conv.visit(&join(prefix, "stem.conv"), f);
        self.stem_bn.visit(&join(prefix, "stem.bn"), f);
        for (i, layer) in self.branches.iter().enumerate() {
            for (b, branch) in layer.iter().enumerate() {
                branch.visit(&join(prefix, &format!("layer_{i}.{}", ENAS_MACRO_OPS[b])), f);
            }
        }
        for (i, bn) in self.skip_bn.iter().enumerate() {
            bn.visit(&join(prefix, &format!("layer_{}.skip_bn", i + 1)), f);
        }
        for (at, reduce) in &self.pools {
            for (j, r) in reduce.iter().enumerate() {
                r.visit(&join(prefix, &format!("pool_at_{at}.from_{j}")), f);
            }
        }
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}

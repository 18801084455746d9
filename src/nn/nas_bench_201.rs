//! NAS-Bench-201's fixed reduction block (AutoDL-Projects `cell_operations.py`
//! `ResNetBasicblock`): the macro skeleton halves the resolution and doubles the channels between
//! its stages with it, in search and retraining alike.

use super::{join, Conv, Module, ReluConvBn, Visit};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::{conv::Conv2d, elementwise, pool};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// `out = shortcut(x) + conv_b(conv_a(x))`: conv_a = ReLU, 3x3 conv with stride 2, BN; conv_b =
/// ReLU, 3x3 conv, BN; shortcut = 2x2 average pool with stride 2, then a 1x1 conv (no ReLU, no
/// BN). Its BNs are affine with running statistics, also in the search network.
pub struct ResNetBasicBlock {
    /// ReLU, 3x3 conv `c_in -> c_out` with stride 2, BN.
    pub conv_a: ReluConvBn,
    /// ReLU, 3x3 conv `c_out -> c_out`, BN.
    pub conv_b: ReluConvBn,
    /// The 1x1 conv `c_in -> c_out` after the shortcut's average pool.
    pub downsample: Conv,
}

impl ResNetBasicBlock {
    /// The block from `c_in` to `c_out` channels at half the resolution.
    pub fn new(gpu: &Gpu, rng: &mut Rng, c_in: usize, c_out: usize) -> Result<Self> {
        Ok(ResNetBasicBlock {
            conv_a: ReluConvBn::new(gpu, rng, c_in, c_out, 3, 2, 1, true)?,
            conv_b: ReluConvBn::new(gpu, rng, c_out, c_out, 3, 1, 1, true)?,
            downsample: Conv::new(gpu, rng, c_in, c_out, 1, Conv2d::new(1, 0, 1, 1))?,
        })
    }

    /// x: [N, c_in, H, W] -> [N, c_out, H/2, W/2] (H, W even; the pool floors an odd side, the
    /// strided conv rounds it up).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let residual = self.conv_b.forward(&self.conv_a.forward(x, train)?, train)?;
        let shortcut = self.downsample.forward(&pool::avg_pool2d(x, 2, 2, 0)?)?;
        elementwise::add(&shortcut, &residual)
    }
}

impl Module for ResNetBasicBlock {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.conv_a.visit(&join(prefix, "conv_a"), f);
        self.conv_b.visit(&join(prefix, "conv_b"), f);
        self.downsample.visit(&join(prefix, "downsample.1"), f);
    }
}

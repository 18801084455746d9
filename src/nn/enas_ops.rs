//! The blocks of ENAS's macro space (melodyguan/enas `general_child.py`).

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{join, Conv, Module, Visit};
use crate::ops::{conv::Conv2d, pool};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// The operation of one of [`ENAS_MACRO_OPS`](crate::space::ENAS_MACRO_OPS), between a branch's 1x1 input conv and its BN:
/// a k x k conv, depthwise then pointwise 1x1 for the separable ones (`out_conv_k`), or a 3x3
/// pool; C -> C channels, stride 1, same size. The macro space's shared model and the network
/// that retrains a macro architecture wrap it differently.
pub enum BranchOp {
    /// A k x k convolution (`conv_kxk`), or a depthwise one and a 1x1 (`sep_conv_kxk`).
    Conv {
        /// The k x k convolution, C -> C, padding k/2; depthwise for the separable ops.
        conv: Conv,
        /// The separable ops' pointwise 1x1 convolution, C -> C.
        pointwise: Option<Conv>,
    },
    /// A 3x3 pool, stride 1, padding 1.
    Pool {
        /// Max pooling; otherwise average (count_include_pad=False).
        max: bool,
    },
}

impl BranchOp {
    /// The branch operation named `op` (one of [`ENAS_MACRO_OPS`](crate::space::ENAS_MACRO_OPS)) on `c` channels, with fresh
    /// weights.
    pub fn new(gpu: &Gpu, rng: &mut Rng, op: &str, c: usize) -> Result<BranchOp> {
        let (k, separable) = match op {
            "conv_3x3" => (3, false),
            "sep_conv_3x3" => (3, true),
            "conv_5x5" => (5, false),
            "sep_conv_5x5" => (5, true),
            "avg_pool_3x3" => return Ok(BranchOp::Pool { max: false }),
            "max_pool_3x3" => return Ok(BranchOp::Pool { max: true }),
            other => return Err(Error::Config(format!("unknown macro operation {other:?}"))),
        };
        let groups = if separable { c } else { 1 };
        let conv = Conv::new(gpu, rng, c, c, k, Conv2d::new(1, k / 2, 1, groups))?;
        let pointwise = if separable { Some(Conv::new(gpu, rng, c, c, 1, Conv2d::new(1, 0, 1, 1))?) } else { None };
        Ok(BranchOp::Conv { conv, pointwise })
    }

    /// x: [N, C, H, W] -> [N, C, H, W].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            BranchOp::Conv { conv, pointwise } => {
                let y = conv.forward(x)?;
                match pointwise {
                    Some(pw) => pw.forward(&y),
                    None => Ok(y),
                }
            }
            BranchOp::Pool { max: true } => pool::max_pool2d(x, 3, 1, 1),
            BranchOp::Pool { max: false } => pool::avg_pool2d(x, 3, 1, 1),
        }
    }

    /// Convolutions are followed by a BN, pools by none.
    pub fn is_conv(&self) -> bool {
        matches!(self, BranchOp::Conv { .. })
    }
}

impl Module for BranchOp {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        if let BranchOp::Conv { conv, pointwise } = self {
            conv.visit(&join(prefix, "conv"), f);
            if let Some(pw) = pointwise {
                pw.visit(&join(prefix, "pointwise"), f);
            }
        }
    }
}

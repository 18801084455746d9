//! Parameterised blocks built from the ops: the pieces a DARTS or ENAS network is made of.
//! Each block owns its parameter tensors and lists them by name (`conv_1.weight`, as in the
//! reference PyTorch code) for optimizers, checkpoints and the fixtures.
//!
//! - [`darts_ops`]: DARTS's candidate operations (quark0/darts `operations.py`) and the mixed op.
//! - [`enas_ops`]: the branch operations of ENAS's macro space ([`BranchOp`]).
//! - [`auxiliary`]: the evaluation networks' auxiliary classifier ([`AuxiliaryHeadCifar`]).
//! - [`nas_bench_201`]: NAS-Bench-201's fixed reduction block ([`ResNetBasicBlock`]).
//! - here: [`Module`], conv, BN and linear layers, the parameter count.

pub mod auxiliary;
pub mod darts_ops;
pub mod enas_ops;
pub mod nas_bench_201;

pub use auxiliary::{auxiliary_pool, AuxiliaryHeadCifar};
pub use darts_ops::{
    DilConv, FactorizedConv7x7, FactorizedReduce, Input, MixedOp, PartialInput, PoolBn, Preprocess, Primitive,
    ReluConvBn, SepConv, PRIMITIVES,
};
pub use enas_ops::BranchOp;
pub use nas_bench_201::ResNetBasicBlock;

use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::{batch_norm, conv, elementwise, linear};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// What a tensor of a block is to the optimizers and checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Trained: a weight, a bias, an affine BN's gamma and beta.
    Param,
    /// State that is not trained: BN running statistics.
    Buffer,
}

/// Called once per tensor of a walk: its role, its dotted name, the tensor.
pub type Visit<'a> = dyn FnMut(Role, String, &Tensor) + 'a;

/// A parameterised block: one walk over its tensors, by name, for optimizers, checkpoints and
/// the fixtures.
pub trait Module {
    /// Every tensor of the block, trained or not, with its dotted name under `prefix`, children
    /// in a fixed order: the one walk that [`Module::params`], [`Module::buffers`] and
    /// [`Module::param_list`] read.
    fn visit(&self, prefix: &str, f: &mut Visit<'_>);

    /// Trainable tensors, each with its dotted name under `prefix`, in walk order.
    fn params(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        self.visit(prefix, &mut |role, name, t| {
            if role == Role::Param {
                out.push((name, t.clone()))
            }
        });
    }

    /// Non-trained state (running statistics), each with its dotted name under `prefix`.
    fn buffers(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        self.visit(prefix, &mut |role, name, t| {
            if role == Role::Buffer {
                out.push((name, t.clone()))
            }
        });
    }

    /// All trainable tensors, unnamed, in a fixed order.
    fn param_list(&self) -> Vec<Tensor> {
        let mut v = Vec::new();
        self.params("", &mut v);
        v.into_iter().map(|(_, t)| t).collect()
    }
}

pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// `utils.count_parameters_in_MB`: trainable values outside the auxiliary head (names containing
/// `auxiliary`, as [`AuxiliaryHeadCifar`]'s under `auxiliary_head`), / 1e6.
pub fn count_parameters_in_mb(net: &impl Module) -> f64 {
    let mut named = Vec::new();
    net.params("", &mut named);
    let n: usize = named.iter().filter(|(name, _)| !name.contains("auxiliary")).map(|(_, t)| t.numel()).sum();
    n as f64 / 1e6
}

/// PyTorch's default init for conv and linear layers (kaiming-uniform with a = sqrt(5)):
/// uniform in +-1/sqrt(fan_in).
pub fn uniform_fan_in(gpu: &Gpu, rng: &mut Rng, shape: &[usize], fan_in: usize) -> Result<Tensor> {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    let n = shape.iter().product();
    Tensor::param(gpu, shape, &rng.uniform_vec(n, -bound, bound))
}

/// A convolution's weight (OIHW) and its geometry; no bias (DARTS convs have none).
pub struct Conv {
    /// [C_out, C_in/groups, k, k].
    pub weight: Tensor,
    /// Stride, padding, dilation and groups.
    pub spec: conv::Conv2d,
}

impl Conv {
    /// weight: [c_out, c_in/groups, k, k]
    pub fn new(gpu: &Gpu, rng: &mut Rng, c_in: usize, c_out: usize, k: usize, spec: conv::Conv2d) -> Result<Conv> {
        Conv::rect(gpu, rng, c_in, c_out, [k, k], spec)
    }

    /// A kernel of `[kh, kw]` (`conv_7x1_1x7`'s (1, 7) and (7, 1)); weight: [c_out, c_in/groups, kh, kw]
    pub fn rect(
        gpu: &Gpu,
        rng: &mut Rng,
        c_in: usize,
        c_out: usize,
        k: [usize; 2],
        spec: conv::Conv2d,
    ) -> Result<Conv> {
        let fan_in = c_in / spec.groups * k[0] * k[1];
        let weight = uniform_fan_in(gpu, rng, &[c_out, c_in / spec.groups, k[0], k[1]], fan_in)?;
        Ok(Conv { weight, spec })
    }

    /// x: [N, C_in, H, W] -> [N, C_out, H', W'].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        conv::conv2d(x, &self.weight, None, self.spec)
    }
}

impl Module for Conv {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        f(Role::Param, join(prefix, "weight"), &self.weight);
    }
}

/// BatchNorm2d with running statistics; affine (gamma, beta) or not, as DARTS's search
/// (affine=False) and evaluation (affine=True) networks use.
pub struct BatchNorm {
    /// gamma `[C]`, initialised to 1; `None` when not affine.
    pub weight: Option<Tensor>,
    /// beta `[C]`, initialised to 0; `None` when not affine.
    pub bias: Option<Tensor>,
    /// Running mean `[C]`, initialised to 0; updated in training mode.
    pub running_mean: Tensor,
    /// Running (unbiased) variance `[C]`, initialised to 1; updated in training mode.
    pub running_var: Tensor,
    /// Running statistics move this far toward the batch's at each training step (PyTorch's 0.1).
    pub momentum: f32,
    /// Added to the variance before the square root (1e-5).
    pub eps: f32,
}

impl BatchNorm {
    /// BN over `c` channels with PyTorch's defaults (momentum 0.1, eps 1e-5); `affine` adds gamma
    /// and beta.
    pub fn new(gpu: &Gpu, c: usize, affine: bool) -> Result<BatchNorm> {
        let (weight, bias) = if affine {
            (Some(Tensor::param(gpu, &[c], &vec![1.0; c])?), Some(Tensor::param(gpu, &[c], &vec![0.0; c])?))
        } else {
            (None, None)
        };
        Ok(BatchNorm {
            weight,
            bias,
            running_mean: Tensor::zeros(gpu, &[c])?,
            running_var: Tensor::full(gpu, &[c], 1.0)?,
            momentum: 0.1,
            eps: 1e-5,
        })
    }

    /// Training mode uses batch statistics and updates the running ones; eval uses the running ones.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let out = batch_norm::batch_norm2d(
            x,
            self.weight.as_ref(),
            self.bias.as_ref(),
            Some((&self.running_mean, &self.running_var)),
            train,
            self.momentum,
            self.eps,
        )?;
        Ok(out.y)
    }

    /// relu(BN(x)): in one pass each way for an affine-free BN in training
    /// ([`batch_norm::batch_norm2d_relu`]), the BN and then a ReLU otherwise.
    pub fn forward_relu(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if self.weight.is_some() {
            return elementwise::relu(&self.forward(x, train)?);
        }
        let running = Some((&self.running_mean, &self.running_var));
        Ok(batch_norm::batch_norm2d_relu(x, running, train, self.momentum, self.eps)?.y)
    }

    /// [`BatchNorm::forward_scaled`] in training with its output left to a DARTS edge's sum
    /// ([`batch_norm::batch_norm2d_scaled_coefficients`]: its coefficients to row `slot` of
    /// `coef`); `None` for an affine BN.
    pub fn scaled_coefficients(
        &self,
        x: &Tensor,
        s: &Tensor,
        k: usize,
        coef: &Tensor,
        slot: usize,
    ) -> Result<Option<batch_norm::ScaledTerm>> {
        if self.weight.is_some() {
            return Ok(None);
        }
        let running = Some((&self.running_mean, &self.running_var));
        batch_norm::batch_norm2d_scaled_coefficients(x, s, k, running, self.momentum, self.eps, coef, slot).map(Some)
    }

    /// `s.flat[k] * BN(x)` for an affine-free BN ([`batch_norm::batch_norm2d_scaled`]); `None`
    /// for an affine one (its gain is gamma).
    pub fn forward_scaled(&self, x: &Tensor, train: bool, s: &Tensor, k: usize) -> Result<Option<Tensor>> {
        if self.weight.is_some() {
            return Ok(None);
        }
        let running = Some((&self.running_mean, &self.running_var));
        Ok(Some(batch_norm::batch_norm2d_scaled(x, s, k, running, train, self.momentum, self.eps)?.y))
    }
}

impl Module for BatchNorm {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            f(Role::Param, join(prefix, "weight"), w);
            f(Role::Param, join(prefix, "bias"), b);
        }
        f(Role::Buffer, join(prefix, "running_mean"), &self.running_mean);
        f(Role::Buffer, join(prefix, "running_var"), &self.running_var);
    }
}

/// y = x W^T + b.
pub struct Linear {
    /// W: [out, in].
    pub weight: Tensor,
    /// b: `[out]`, if the layer has a bias.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// weight: [out, in], bias: `[out]`
    pub fn new(gpu: &Gpu, rng: &mut Rng, d_in: usize, d_out: usize, bias: bool) -> Result<Linear> {
        let weight = uniform_fan_in(gpu, rng, &[d_out, d_in], d_in)?;
        let bias = if bias { Some(uniform_fan_in(gpu, rng, &[d_out], d_in)?) } else { None };
        Ok(Linear { weight, bias })
    }

    /// x: [N, in] -> [N, out].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        linear::linear(x, &self.weight, self.bias.as_ref())
    }
}

impl Module for Linear {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        f(Role::Param, join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(Role::Param, join(prefix, "bias"), b);
        }
    }
}

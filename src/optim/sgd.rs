//! SGD with momentum (heavy-ball or Nesterov), as torch.optim.SGD.

use super::{check_loaded_state, check_pairs, check_params, check_state, zero_state, Optimizer};
use crate::error::{Error, Result};
use crate::ops::optim as kernels;
use crate::tensor::Tensor;

/// Stochastic gradient descent as torch.optim.SGD with dampening 0: d = g + wd*p;
/// buf = momentum*buf + d; d = d + momentum*buf (Nesterov) or buf; p -= lr*d.
pub struct Sgd {
    /// Learning rate, applied at the next step.
    pub lr: f32,
    /// Momentum factor (0: plain SGD, no buffers).
    pub momentum: f32,
    /// L2 weight decay, added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum (ENAS's shared weights) instead of heavy-ball (DARTS).
    pub nesterov: bool,
    /// [lr, momentum, weight_decay], rewritten at every step.
    hyper: Tensor,
    /// One per parameter (none while momentum is 0).
    momentum_buffers: Vec<Tensor>,
    steps: u64,
}

impl Sgd {
    /// An optimizer for `params` (the tensors later steps update, in this order). Its state is
    /// made here, zero-filled, so that it takes no pooled buffers that the first step's
    /// temporaries will want again: the second step then creates no GPU objects.
    pub fn new(params: &[Tensor], lr: f32, momentum: f32, weight_decay: f32, nesterov: bool) -> Result<Sgd> {
        let first = check_params("sgd", params)?;
        let momentum_buffers = if momentum != 0.0 { zero_state(params, 1)? } else { Vec::new() };
        let hyper = Tensor::empty(first.gpu(), &[4])?; // [lr, momentum, weight_decay, gradient norm]
        Ok(Sgd { lr, momentum, weight_decay, nesterov, hyper, momentum_buffers, steps: 0 })
    }

    /// Sets the learning rate of the next steps (a schedule calls it every epoch).
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    /// One update of every parameter with its gradient, in place on the GPU.
    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<()> {
        self.update(params, grads, None)
    }

    /// [`Sgd::step`] after clipping the gradients to `max_norm` by their global norm `norm`
    /// (from [`grad_norm`](super::grad_norm)), as `clip_grad_norm` then `step` would, the clip folded into the
    /// update kernel; the gradients themselves are left as they are.
    pub fn step_clipped(&mut self, params: &[Tensor], grads: &[Tensor], norm: &Tensor, max_norm: f32) -> Result<()> {
        if !(max_norm >= 0.0 && max_norm.is_finite()) {
            return Err(Error::Config(format!("gradient clipping needs a finite max_norm >= 0, got {max_norm}")));
        }
        self.update(params, grads, Some((norm, max_norm)))
    }

    fn update(&mut self, params: &[Tensor], grads: &[Tensor], clip: Option<(&Tensor, f32)>) -> Result<()> {
        if !(self.lr >= 0.0 && self.momentum >= 0.0 && self.weight_decay >= 0.0) {
            return Err(Error::Config(format!(
                "SGD needs lr, momentum and weight_decay >= 0 (got {}, {}, {})",
                self.lr, self.momentum, self.weight_decay
            )));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::Config("SGD with Nesterov momentum needs momentum > 0".into()));
        }
        check_pairs("sgd", params, grads)?;
        check_state("sgd", params, &self.momentum_buffers, 1)?;
        let with_momentum = self.momentum != 0.0;
        if with_momentum && self.momentum_buffers.is_empty() {
            self.momentum_buffers = zero_state(params, 1)?;
        }
        self.hyper.write(&[self.lr, self.momentum, self.weight_decay, 0.0])?;
        if let Some((norm, _)) = clip {
            norm.copy_into(&self.hyper, 3)?;
        }
        let momentum_buffers = if with_momentum { Some(self.momentum_buffers.as_slice()) } else { None };
        kernels::sgd_update(&self.hyper, params, grads, momentum_buffers, self.nesterov, clip.map(|c| c.1));
        self.steps += 1;
        Ok(())
    }
}

impl Optimizer for Sgd {
    /// The momentum buffers, one per parameter in the order of `step` (none while momentum is 0).
    fn state(&self) -> Vec<&Tensor> {
        self.momentum_buffers.iter().collect()
    }

    /// Steps taken (SGD's update does not depend on it; kept for checkpoints).
    fn step_count(&self) -> u64 {
        self.steps
    }

    fn load_state(&mut self, tensors: Vec<Tensor>, step: u64) -> Result<()> {
        check_loaded_state("sgd", &tensors, 1)?;
        self.momentum_buffers = tensors;
        self.steps = step;
        Ok(())
    }
}

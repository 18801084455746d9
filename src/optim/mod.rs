//! Optimizers: SGD with momentum and Nesterov ([`Sgd`]), Adam with coupled L2 weight decay
//! ([`Adam`], torch.optim semantics), gradient clipping by global norm ([`clip_grad_norm`],
//! [`grad_norm`]), and learning-rate schedules ([`CosineAnnealing`], [`CosineWarmRestarts`]).
//!
//! Everything runs in place on the GPU, through the kernels of `ops/optim.rs`
//! (`shaders/optim.wgsl`): no readback, nothing recorded on the tape. The hyper-parameters and
//! per-step scalars (learning rate, bias corrections) go into a small `hyper` tensor of each
//! optimizer, written in stream order at every step, so the kernels' uniform Params (cached by
//! content) hold only sizes, a warm step creates no GPU objects, and several steps can be
//! recorded into one submission.

mod adam;
mod clip;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use clip::{clip_grad_norm, grad_norm};
pub use schedule::{CosineAnnealing, CosineWarmRestarts, Schedule};
pub use sgd::Sgd;

/// What a checkpoint saves of an optimizer and gives back on resume: its state tensors (made,
/// zero-filled, with the optimizer) and its step count.
pub trait Optimizer {
    /// The state tensors, in a fixed order.
    fn state(&self) -> Vec<&Tensor>;
    /// Steps taken.
    fn step_count(&self) -> u64;
    /// Restores what [`Optimizer::state`] and [`Optimizer::step_count`] gave; checked against
    /// the parameters at the next step.
    fn load_state(&mut self, tensors: Vec<Tensor>, step: u64) -> Result<()>;
}

use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// Fails unless `params` and `grads` pair up: same count, same shapes, f32, distinct buffers.
fn check_pairs(op: &'static str, params: &[Tensor], grads: &[Tensor]) -> Result<()> {
    check_params(op, params)?;
    if params.len() != grads.len() {
        return Err(Error::shape(op, format!("{} parameters but {} gradients", params.len(), grads.len())));
    }
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        if p.shape() != g.shape() {
            return Err(Error::shape(op, format!("parameter {i} is {:?} but its gradient {:?}", p.shape(), g.shape())));
        }
        if g.dtype() != DType::F32 {
            return Err(Error::shape(op, format!("the gradient of parameter {i} must be f32")));
        }
        if p.buf().id == g.buf().id {
            return Err(Error::shape(op, format!("parameter {i} and its gradient share one buffer")));
        }
    }
    Ok(())
}

/// Fails unless the optimizer state (`per` tensors for each parameter, in order) matches
/// `params`. Empty state is created on the step.
fn check_state(op: &'static str, params: &[Tensor], state: &[Tensor], per: usize) -> Result<()> {
    if state.is_empty() {
        return Ok(());
    }
    if state.len() != per * params.len() {
        return Err(Error::shape(
            op,
            format!("the optimizer holds state for {} parameters, the step got {}", state.len() / per, params.len()),
        ));
    }
    for (i, p) in params.iter().enumerate() {
        for s in &state[per * i..per * (i + 1)] {
            if s.shape() != p.shape() {
                return Err(Error::shape(
                    op,
                    format!("parameter {i} is {:?} but its optimizer state {:?}", p.shape(), s.shape()),
                ));
            }
        }
    }
    Ok(())
}

/// Zero-filled state (`per` tensors per parameter), as PyTorch creates it on the first step.
fn zero_state(params: &[Tensor], per: usize) -> Result<Vec<Tensor>> {
    let mut state = Vec::with_capacity(per * params.len());
    for p in params {
        for _ in 0..per {
            state.push(Tensor::zeros(p.gpu(), p.shape())?);
        }
    }
    Ok(state)
}

/// The first parameter, when `params` is a non-empty list of f32 tensors.
fn check_params<'a>(op: &'static str, params: &'a [Tensor]) -> Result<&'a Tensor> {
    let first = params.first().ok_or_else(|| Error::shape(op, "no parameters to optimize"))?;
    if params.iter().any(|p| p.dtype() != DType::F32) {
        return Err(Error::shape(op, "parameters must be f32"));
    }
    Ok(first)
}

/// Fails unless `tensors` can be optimizer state of `per` f32 tensors per parameter (the
/// shapes are checked against the parameters at the next step).
fn check_loaded_state(op: &'static str, tensors: &[Tensor], per: usize) -> Result<()> {
    if !tensors.len().is_multiple_of(per) {
        return Err(Error::shape(op, format!("{} state tensors, expected a multiple of {per}", tensors.len())));
    }
    if tensors.iter().any(|t| t.dtype() != DType::F32) {
        return Err(Error::shape(op, "optimizer state must be f32"));
    }
    Ok(())
}

/// A learning rate that can train: finite and above 0.
pub fn check_lr(what: &str, lr: f32) -> Result<()> {
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(Error::Config(format!("{what} must be a finite number above 0, got {lr}")));
    }
    Ok(())
}

//! Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_.

use crate::error::{Error, Result};
use crate::ops::optim as kernels;
use crate::tensor::{DType, Tensor};

/// Scales `grads` in place so that their global L2 norm is at most `max_norm`, as
/// torch.nn.utils.clip_grad_norm_: total = ||concat(grads)||_2, grads *= min(1, max_norm /
/// (total + 1e-6)). All on the GPU; returns the total norm before clipping, a GPU scalar of
/// shape [] (read it back later for metrics).
pub fn clip_grad_norm(grads: &[Tensor], max_norm: f32) -> Result<Tensor> {
    if !(max_norm >= 0.0 && max_norm.is_finite()) {
        return Err(Error::Config(format!("clip_grad_norm needs a finite max_norm >= 0, got {max_norm}")));
    }
    let norm = grad_norm(grads)?;
    for g in grads {
        kernels::clip_scale(&norm, g, max_norm);
    }
    Ok(norm)
}

/// The global L2 norm of `grads` (as one tensor), as `clip_grad_norm` measures it: each
/// gradient's sum of squares in order, eight gradients per dispatch, then their sum's root.
pub fn grad_norm(grads: &[Tensor]) -> Result<Tensor> {
    let first = grads.first().ok_or_else(|| Error::shape("grad_norm", "no gradients"))?;
    if grads.iter().any(|g| g.dtype() != DType::F32) {
        return Err(Error::shape("grad_norm", "gradients must be f32"));
    }
    kernels::global_norm(first.gpu(), grads)
}

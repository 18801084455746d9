//! Op families: each file here pairs with `shaders/<same stem>.wgsl` and holds the shape checks,
//! the dispatches, and the backward rule that it records on the tape.

pub mod architect;
pub mod batch_norm;
pub mod controller;
pub mod conv;
mod depthwise;
pub mod drop_path;
pub mod elementwise;
pub mod embedding;
pub mod layout;
pub mod linear;
pub mod lstm;
pub mod mixed_op;
pub(crate) mod optim;
mod pointwise;
pub mod pool;
pub mod reduce;
pub mod sample;
pub mod softmax;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Fails unless `a` and `b` have the same shape.
pub(crate) fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(op, format!("shapes differ: {:?} and {:?}", a.shape(), b.shape())));
    }
    Ok(())
}

/// Fails unless `t` has `rank` dimensions; returns them.
pub(crate) fn dims<const R: usize>(op: &'static str, t: &Tensor) -> Result<[usize; R]> {
    t.shape().try_into().map_err(|_| Error::shape(op, format!("expected {R} dimensions, got {:?}", t.shape())))
}

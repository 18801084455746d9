//! Drop path (`shaders/drop_path.wgsl`), the regulariser of DARTS's evaluation network
//! (quark0/darts `utils.drop_path`, after FractalNet): in training, each sample's output of an
//! operation is zeroed with probability `drop_prob` and kept ones are scaled by 1/keep_prob, so
//! that the expected output is unchanged. The mask is drawn on the host from the run's [`Rng`]
//! (deterministic by seed, nothing read back) and uploaded in stream order.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch};
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    per_sample: u32,
    _pad: [u32; 2],
}

fn launch(mask: &Tensor, x: &Tensor, y: &Tensor) {
    let per_sample = x.numel() / x.shape()[0];
    let params = Params { n: x.numel() as u32, per_sample: per_sample as u32, _pad: [0; 2] };
    x.gpu().dispatch(Dispatch {
        shader: "drop_path",
        entry: "scale_samples",
        constants: &[],
        params: bytemuck::bytes_of(&params),
        buffers: &[mask.buf(), x.buf(), y.buf()],
        workgroups: grid_1d(x.numel()),
        flops: 0,
    });
}

/// `y[n, ...] = x[n, ...] * mask[n]`; x: [N, ...] f32, mask: `[N]` f32 -> y: [N, ...]. Backward:
/// `dx = dy * mask[n]`. The mask is a constant (it gets no gradient).
pub fn scale_samples(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    const OP: &str = "scale_samples";
    let n = *x.shape().first().ok_or_else(|| Error::shape(OP, "x needs a batch dimension, got a scalar"))?;
    if n == 0 || x.numel() == 0 {
        return Err(Error::shape(OP, format!("empty input {:?}", x.shape())));
    }
    if mask.shape() != [n] {
        return Err(Error::shape(OP, format!("mask {:?} for a batch of {n} (x {:?})", mask.shape(), x.shape())));
    }
    if x.dtype() != DType::F32 || mask.dtype() != DType::F32 {
        return Err(Error::shape(OP, "x and mask must be f32"));
    }
    let y = Tensor::empty(x.gpu(), x.shape())?;
    launch(mask, x, &y);
    let mask = mask.clone();
    x.gpu().record(&[x], &[&y], move |g| {
        let dx = Tensor::empty(g[0].gpu(), g[0].shape())?; // dx: [N, ...]
        launch(&mask, &g[0], &dx);
        Ok(vec![Some(dx)])
    });
    Ok(y)
}

/// The per-sample factors of one drop-path application: `n` values, each 1/keep_prob with
/// probability keep_prob = 1 - drop_prob (a Bernoulli draw, `rng.uniform() < keep_prob`) and 0
/// otherwise.
pub fn drop_mask(n: usize, drop_prob: f32, rng: &mut Rng) -> Result<Vec<f32>> {
    if !(0.0..1.0).contains(&drop_prob) {
        return Err(Error::Config(format!("drop path probability must be in [0, 1), got {drop_prob}")));
    }
    let keep_prob = 1.0 - drop_prob as f64;
    Ok((0..n).map(|_| if rng.uniform() < keep_prob { (1.0 / keep_prob) as f32 } else { 0.0 }).collect())
}

/// The reference's `drop_path(x, drop_prob)`: x: [N, ...] -> x with whole samples dropped (and
/// the rest rescaled); `x` itself when `drop_prob` is 0 (nothing drawn from `rng` then).
pub fn drop_path(x: &Tensor, drop_prob: f32, rng: &mut Rng) -> Result<Tensor> {
    if drop_prob == 0.0 {
        return Ok(x.clone());
    }
    let n = *x.shape().first().ok_or_else(|| Error::shape("drop_path", "x needs a batch dimension"))?;
    let mask = Tensor::from_slice(x.gpu(), &[n], &drop_mask(n, drop_prob, rng)?)?; // mask: [N]
    scale_samples(x, &mask)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/drop_path.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "drop_path", [n, per_sample]);
    }
}

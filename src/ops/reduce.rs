//! Deterministic reductions (`shaders/reduce.wgsl`): sum, mean, dot product, sum of squares.
//! Two passes (fixed per-workgroup partials, then one workgroup), no float atomics, so results
//! repeat bit for bit on the same adapter.

use bytemuck::{Pod, Zeroable};

use super::same_shape;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, WORKGROUP};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    chunk: u32,
    parts: u32,
    k: u32,
    scale: f32,
    accumulate: u32,
    _pad: [u32; 2],
}

/// Most partial sums of the first pass: enough workgroups to fill a GPU, few enough for one
/// workgroup to finish.
const MAX_PARTS: usize = 1024;

#[derive(Clone, Copy)]
enum Mode {
    Sum = 0,
    Dot = 1,
    SumSquares = 2,
}

/// out[k] (+)= scale * reduction of a (and b); not recorded.
fn reduce_into(mode: Mode, a: &Tensor, b: &Tensor, out: &Tensor, k: usize, scale: f32, accumulate: bool) -> Result<()> {
    if k >= out.numel() {
        return Err(Error::shape("reduce", format!("index {k} out of {:?}", out.shape())));
    }
    let gpu = a.gpu();
    let n = a.numel();
    // Chunks of at least 4 elements per thread keep the partial pass efficient.
    let chunk = n.div_ceil(MAX_PARTS).max(4 * WORKGROUP as usize);
    let parts = n.div_ceil(chunk).max(1);
    let partial = Tensor::empty(gpu, &[parts])?;
    let p = Params {
        n: n as u32,
        chunk: chunk as u32,
        parts: parts as u32,
        k: k as u32,
        scale,
        accumulate: accumulate as u32,
        _pad: [0; 2],
    };
    let c = [("MODE", mode as u32 as f64)];
    gpu.dispatch(Dispatch {
        shader: "reduce",
        entry: "partial_sums",
        constants: &c,
        params: bytemuck::bytes_of(&p),
        buffers: &[a.buf(), b.buf(), partial.buf()],
        workgroups: [parts as u32, 1, 1],
        flops: 0,
    });
    gpu.dispatch(Dispatch {
        shader: "reduce",
        entry: "finish",
        constants: &[],
        params: bytemuck::bytes_of(&p),
        buffers: &[partial.buf(), out.buf()],
        workgroups: [1, 1, 1],
        flops: 0,
    });
    Ok(())
}

/// `out[k] (+)= <a, b>`; not recorded.
pub fn dot_into(a: &Tensor, b: &Tensor, out: &Tensor, k: usize, accumulate: bool) -> Result<()> {
    same_shape("dot", a, b)?;
    reduce_into(Mode::Dot, a, b, out, k, 1.0, accumulate)
}

/// `out[k] (+)=` sum of squares of a; not recorded (gradient norms).
pub fn sum_squares_into(a: &Tensor, out: &Tensor, k: usize, accumulate: bool) -> Result<()> {
    reduce_into(Mode::SumSquares, a, a, out, k, 1.0, accumulate)
}

/// The sum of all elements, as a 1-element tensor of shape `[]`.
pub fn sum(x: &Tensor) -> Result<Tensor> {
    scaled_sum(x, 1.0)
}

/// The mean of all elements, as a 1-element tensor of shape `[]`.
pub fn mean(x: &Tensor) -> Result<Tensor> {
    scaled_sum(x, 1.0 / x.numel() as f32)
}

fn scaled_sum(x: &Tensor, scale: f32) -> Result<Tensor> {
    let out = Tensor::empty(x.gpu(), &[])?;
    reduce_into(Mode::Sum, x, x, &out, 0, scale, false)?;
    let sx = x.clone();
    x.gpu().record(&[x], &[&out], move |g| {
        // d(scale * sum x)/dx = scale * upstream, broadcast: scale the ones by the GPU scalar.
        let ones = Tensor::full(sx.gpu(), sx.shape(), scale)?;
        Ok(vec![Some(super::elementwise::scale(&ones, &g[0], 0)?)])
    });
    Ok(out)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/reduce.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "reduce", [n, chunk, parts, k, scale, accumulate]);
    }
}

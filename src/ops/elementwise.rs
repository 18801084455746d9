//! Element-wise ops (`shaders/elementwise.wgsl`): relu, tanh, sigmoid, add, mul, sum of N,
//! scaling by a scalar that stays on the GPU.

use bytemuck::{Pod, Zeroable};

use super::same_shape;
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    k: u32,
    accumulate: u32,
    _pad: u32,
}

fn launch(entry: &'static str, constants: &[(&'static str, f64)], n: usize, k: usize, bufs: &[&Tensor]) {
    launch_with(entry, constants, Params { n: n as u32, k: k as u32, accumulate: 0, _pad: 0 }, bufs)
}

fn launch_with(entry: &'static str, constants: &[(&'static str, f64)], p: Params, bufs: &[&Tensor]) {
    let n = p.n as usize;
    let gpu = bufs[0].gpu();
    let buffers: Vec<_> = bufs.iter().map(|t| t.buf()).collect();
    gpu.dispatch(Dispatch {
        shader: "elementwise",
        entry,
        constants,
        params: bytemuck::bytes_of(&p),
        buffers: &buffers,
        workgroups: grid_1d(n.div_ceil(4)),
        flops: 0,
    });
}

/// An activation function of [`activation`]; the value is the shader's `ACT` constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// max(x, 0).
    Relu = 0,
    /// tanh(x).
    Tanh = 1,
    /// 1 / (1 + exp(-x)).
    Sigmoid = 2,
}

/// y = act(x), any shape.
pub fn activation(x: &Tensor, act: Activation) -> Result<Tensor> {
    let y = Tensor::empty(x.gpu(), x.shape())?;
    let c = [("ACT", act as u32 as f64)];
    launch("act_forward", &c, x.numel(), 0, &[x, &y]);
    // Every derivative comes from y (relu's mask y > 0 is x > 0), so x can be freed: a
    // supernet's ReLU inputs are BN outputs that nothing else keeps.
    let saved = y.clone();
    x.gpu().record(&[x], &[&y], move |g| {
        let dx = Tensor::empty(saved.gpu(), saved.shape())?;
        launch("act_backward", &[("ACT", act as u32 as f64)], saved.numel(), 0, &[&saved, &g[0], &dx]);
        Ok(vec![Some(dx)])
    });
    Ok(y)
}

/// y = max(x, 0), any shape.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    activation(x, Activation::Relu)
}

/// y = tanh(x), any shape.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    activation(x, Activation::Tanh)
}

/// y = 1 / (1 + exp(-x)), any shape.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    activation(x, Activation::Sigmoid)
}

/// z = a + b (same shapes).
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("add", a, b)?;
    let z = Tensor::empty(a.gpu(), a.shape())?;
    launch("add", &[], a.numel(), 0, &[a, b, &z]);
    a.gpu().record(&[a, b], &[&z], |g| Ok(vec![Some(g[0].clone()), Some(g[0].clone())]));
    Ok(z)
}

/// z = a * b element-wise (same shapes).
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("mul", a, b)?;
    let z = Tensor::empty(a.gpu(), a.shape())?;
    launch("mul", &[], a.numel(), 0, &[a, b, &z]);
    let (sa, sb) = (a.clone(), b.clone());
    a.gpu().record(&[a, b], &[&z], move |g| {
        let da = if sa.requires_grad() { Some(mul(&g[0], &sb)?) } else { None };
        let db = if sb.requires_grad() { Some(mul(&g[0], &sa)?) } else { None };
        Ok(vec![da, db])
    });
    Ok(z)
}

/// Terms one `sum8` dispatch adds.
pub const SUM_TERMS: usize = 8;

/// The sum of N tensors of one shape (a DARTS node sums its incoming edges; the backward pass
/// sums a tensor's gradients with it): one dispatch per 8 terms, added left to right, so the
/// result equals `((x0 + x1) + x2) + ...` bit for bit.
pub fn add_n(xs: &[&Tensor]) -> Result<Tensor> {
    let first = xs.first().ok_or_else(|| Error::shape("add_n", "no tensors to sum"))?;
    for x in &xs[1..] {
        same_shape("add_n", first, x)?;
    }
    // One term is a copy (the output is a tensor of its own).
    let y = Tensor::empty(first.gpu(), first.shape())?;
    for (c, chunk) in xs.chunks(SUM_TERMS).enumerate() {
        let p = Params { n: y.numel() as u32, k: chunk.len() as u32, accumulate: (c > 0) as u32, _pad: 0 };
        let mut bufs: Vec<&Tensor> = (0..SUM_TERMS).map(|t| *chunk.get(t).unwrap_or(&chunk[0])).collect();
        bufs.push(&y);
        launch_with("sum8", &[], p, &bufs);
    }
    let n = xs.len();
    first.gpu().record(xs, &[&y], move |g| Ok(vec![Some(g[0].clone()); n]));
    Ok(y)
}

/// `y = s[k] * x` where `s` is a GPU tensor (no readback). Gradients: `dx = s[k] * dy` and
/// `ds[k] = <dy, x>`.
pub fn scale(x: &Tensor, s: &Tensor, k: usize) -> Result<Tensor> {
    if k >= s.numel() {
        return Err(Error::shape("scale", format!("scalar index {k} out of {:?}", s.shape())));
    }
    let y = Tensor::empty(x.gpu(), x.shape())?;
    launch("scale", &[], x.numel(), k, &[s, x, &y]);
    let (sx, ss) = (x.clone(), s.clone());
    x.gpu().record(&[x, s], &[&y], move |g| {
        let dx = if sx.requires_grad() { Some(scale(&g[0], &ss, k)?) } else { None };
        // ds: zeros but ds.flat[k] = <dy, x>, the barrier-free dot of the mixed op's weights.
        let ds =
            if ss.requires_grad() { Some(super::mixed_op::weight_grad(&ss, &[(k, sx.clone())], &g[0])?) } else { None };
        Ok(vec![dx, ds])
    });
    Ok(y)
}

/// `y += s[k] * x`, in place and not recorded.
pub fn scale_accumulate_(y: &Tensor, x: &Tensor, s: &Tensor, k: usize) -> Result<()> {
    same_shape("scale_accumulate_", y, x)?;
    launch("scale_accumulate", &[], x.numel(), k, &[s, x, y]);
    Ok(())
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/elementwise.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "elementwise", [n, k, accumulate]);
    }
}

//! The softmax family (`shaders/softmax.wgsl`), all over the last axis of a tensor of any rank
//! seen as `[rows, k]` (rows = numel / k): softmax, log-softmax, cross-entropy (DARTS and the
//! retraining loss), entropy (the ENAS controller's bonus) and accuracy (a metric).
//!
//! Every row subtracts its maximum before exponentiating, so logits of any magnitude are safe.
//! Row kernels run one workgroup per row with a fixed-order tree: deterministic, no atomics.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::gpu::{grid_1d, grid_groups, Dispatch};
use crate::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    k: u32,
    _pad: [u32; 2],
}

/// How a launch covers its rows.
enum Grid {
    /// One workgroup per row.
    Rows,
    /// One thread per element.
    Elements,
    /// One workgroup in all.
    Single,
}

fn launch(entry: &'static str, constants: &[(&'static str, f64)], rows: usize, k: usize, grid: Grid, bufs: &[&Tensor]) {
    let gpu = bufs[0].gpu();
    let buffers: Vec<_> = bufs.iter().map(|t| t.buf()).collect();
    let params = Params { rows: rows as u32, k: k as u32, _pad: [0; 2] };
    let workgroups = match grid {
        Grid::Rows => grid_groups(rows),
        Grid::Elements => grid_1d(rows * k),
        Grid::Single => [1, 1, 1],
    };
    gpu.dispatch(Dispatch {
        shader: "softmax",
        entry,
        constants,
        params: bytemuck::bytes_of(&params),
        buffers: &buffers,
        workgroups,
        flops: 0,
    });
}

/// `(rows, k)` of an f32 tensor reduced over its last axis.
fn rows_and_k(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
    if x.dtype() != DType::F32 {
        return Err(Error::shape(op, format!("expected f32 values, got {:?}", x.dtype())));
    }
    let Some(&k) = x.shape().last() else {
        return Err(Error::shape(op, "a 0-d tensor has no last axis to reduce over"));
    };
    if x.numel() == 0 {
        return Err(Error::shape(op, format!("empty tensor {:?}", x.shape())));
    }
    if x.numel() > u32::MAX as usize {
        return Err(Error::shape(op, format!("{:?} has more than 2^32 elements", x.shape())));
    }
    Ok((x.numel() / k, k))
}

/// Checks logits `[N, K]` against labels `[N]` (u32); returns `(N, K)`.
fn logits_and_labels(op: &'static str, logits: &Tensor, labels: &Tensor) -> Result<(usize, usize)> {
    let (rows, k) = rows_and_k(op, logits)?;
    if logits.shape().len() != 2 {
        return Err(Error::shape(op, format!("logits must be [N, K], got {:?}", logits.shape())));
    }
    if labels.dtype() != DType::U32 {
        return Err(Error::shape(op, format!("labels must be u32 class indices, got {:?}", labels.dtype())));
    }
    if labels.shape() != [rows] {
        return Err(Error::shape(
            op,
            format!("labels {:?} for logits {:?}: expected [{rows}]", labels.shape(), logits.shape()),
        ));
    }
    Ok((rows, k))
}

/// y = softmax(x) over the last axis. Backward: dx = y * (dy - sum(dy * y)) per row.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    softmax_variant("softmax", x, 0)
}

/// y = x - logsumexp(x) over the last axis. Backward: dx = dy - softmax(x) * sum(dy) per row,
/// with softmax(x) = exp(y).
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    softmax_variant("log_softmax", x, 1)
}

fn softmax_variant(op: &'static str, x: &Tensor, log: u32) -> Result<Tensor> {
    let (rows, k) = rows_and_k(op, x)?;
    let c = [("LOG", log as f64)];
    // y: same shape as x, [rows, k] in the kernel
    let y = Tensor::empty(x.gpu(), x.shape())?;
    launch("softmax_forward", &c, rows, k, Grid::Rows, &[x, &y]);
    let saved = y.clone();
    x.gpu().record(&[x], &[&y], move |g| {
        let dx = Tensor::empty(saved.gpu(), saved.shape())?;
        launch("softmax_backward", &[("LOG", log as f64)], rows, k, Grid::Rows, &[&saved, &g[0], &dx]);
        Ok(vec![Some(dx)])
    });
    Ok(y)
}

/// `loss = mean_n (logsumexp(logits[n]) - logits[n, labels[n]])`, shape `[]`; logits `[N, K]`,
/// labels u32 `[N]`. One fused row kernel (row statistics and per-row loss) and a fixed-order
/// mean. Backward: dlogits = upstream * (softmax(logits) - onehot(labels)) / N, the upstream
/// scalar read on the GPU.
///
/// Labels are not checked on the CPU (that would need a readback). A label `>= K` makes the loss
/// NaN, so the training loop's NaN check stops at that step and names it; its row's gradient is
/// then `upstream * softmax / N` (no one-hot term), finite.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (rows, k) = logits_and_labels("cross_entropy", logits, labels)?;
    let gpu = logits.gpu();
    let stats = Tensor::empty(gpu, &[rows, 2])?; // (max, log sum exp(x - max)) per row
    let row_loss = Tensor::empty(gpu, &[rows])?;
    launch("cross_entropy_rows", &[], rows, k, Grid::Rows, &[logits, labels, &stats, &row_loss]);
    let loss = Tensor::empty(gpu, &[])?;
    launch("mean_rows", &[], rows, 1, Grid::Single, &[&row_loss, &loss]);
    let (x, labels) = (logits.clone(), labels.clone());
    gpu.record(&[logits], &[&loss], move |g| {
        // dx: [N, K]
        let dx = Tensor::empty(x.gpu(), x.shape())?;
        launch("cross_entropy_backward", &[], rows, k, Grid::Elements, &[&x, &labels, &stats, &g[0], &dx]);
        Ok(vec![Some(dx)])
    });
    Ok(loss)
}

/// H = -sum_j p_j log p_j with p = softmax(logits) over the last axis: one value per row, shaped
/// like `logits` without its last axis (`[K]` gives `[]`, `[1, K]` gives `[1]`, `[N, K]` gives
/// `[N]`). Backward: dlogits_j = -dH * p_j * (log p_j + H).
pub fn entropy(logits: &Tensor) -> Result<Tensor> {
    let (rows, k) = rows_and_k("entropy", logits)?;
    let gpu = logits.gpu();
    let out_shape = &logits.shape()[..logits.shape().len() - 1];
    let stats = Tensor::empty(gpu, &[rows, 2])?; // (max, log sum exp(x - max)) per row
    let h = Tensor::empty(gpu, out_shape)?;
    launch("entropy_rows", &[], rows, k, Grid::Rows, &[logits, &stats, &h]);
    let (x, saved_h) = (logits.clone(), h.clone());
    gpu.record(&[logits], &[&h], move |g| {
        let dx = Tensor::empty(x.gpu(), x.shape())?;
        launch("entropy_backward", &[], rows, k, Grid::Elements, &[&x, &stats, &saved_h, &g[0], &dx]);
        Ok(vec![Some(dx)])
    });
    Ok(h)
}

/// The fraction of rows whose argmax (ties to the lowest index) is the label, shape `[]`; logits
/// `[N, K]`, labels u32 `[N]`. A metric: not recorded, not differentiable. A label `>= K` counts
/// as wrong. Deterministic (fixed-order sums of 0s and 1s, exact below 2^24 rows).
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (rows, k) = logits_and_labels("accuracy", logits, labels)?;
    let gpu = logits.gpu();
    let correct = Tensor::empty(gpu, &[rows])?;
    launch("correct_rows", &[], rows, k, Grid::Rows, &[logits, labels, &correct]);
    let out = Tensor::empty(gpu, &[])?;
    launch("mean_rows", &[], rows, 1, Grid::Single, &[&correct, &out]);
    Ok(out)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/softmax.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "softmax", [rows, k]);
    }
}

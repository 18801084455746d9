//! Optimizer kernels (`shaders/optim.wgsl`): the in-place parameter updates of SGD and Adam,
//! the clip scale, and the global L2 norm of a list of gradients. Each function launches its
//! kernels and nothing more: the optimizers (`src/optim/`) check parameters, gradients and
//! state, and write the `hyper` tensor the updates read. Nothing here is recorded on the tape.

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::gpu::{grid_1d, Dispatch, Gpu, GpuBuffer};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    max_norm: f32,
    offset: u32,
    count: u32,
    lens: [u32; GROUP],
}

/// Gradients one `sum_squares8` dispatch reads (8 bindings, with its output: 9 of 10).
const GROUP: usize = 8;

fn launch(entry: &'static str, constants: &[(&'static str, f64)], n: usize, max_norm: f32, bufs: &[&Tensor]) {
    let params = Params { n: n as u32, max_norm, offset: 0, count: 0, lens: [0; GROUP] };
    launch_with(entry, constants, &params, grid_1d(n), bufs);
}

fn launch_with(
    entry: &'static str,
    constants: &[(&'static str, f64)],
    params: &Params,
    wg: [u32; 3],
    bufs: &[&Tensor],
) {
    let buffers: Vec<_> = bufs.iter().map(|t| t.buf()).collect();
    launch_on(bufs[0].gpu(), entry, constants, params, wg, &buffers);
}

fn launch_on(
    gpu: &Gpu,
    entry: &'static str,
    constants: &[(&'static str, f64)],
    params: &Params,
    wg: [u32; 3],
    buffers: &[&GpuBuffer],
) {
    gpu.dispatch(Dispatch {
        shader: "optim",
        entry,
        constants,
        params: bytemuck::bytes_of(params),
        buffers,
        workgroups: wg,
        flops: 0,
    });
}

/// Parameters per `sgd4` dispatch (2 bindings each, with `hyper` 9) and per `sgd_momentum3`
/// dispatch (3 each, with `hyper` 10, the most we ask for).
const SGD_GROUP: usize = 4;
const MOMENTUM_GROUP: usize = 3;

/// SGD's update of every parameter in place (`shaders/optim.wgsl` `sgd4`, `sgd_momentum3`: four
/// or three parameters per dispatch); each p, its g and its momentum buffer: same shape, any.
/// `hyper`: [lr, momentum, weight_decay, norm]. With `clip` = Some(max_norm) each gradient is
/// scaled by min(1, max_norm / (norm + 1e-6)) first, the global norm read from `hyper[3]`.
pub(crate) fn sgd_update(
    hyper: &Tensor,
    params: &[Tensor],
    grads: &[Tensor],
    momentum_buffers: Option<&[Tensor]>,
    nesterov: bool,
    clip: Option<f32>,
) {
    let c = [("NESTEROV", nesterov as u32 as f64), ("CLIP", clip.is_some() as u32 as f64)];
    let (entry, group_len) = match momentum_buffers {
        Some(_) => ("sgd_momentum3", MOMENTUM_GROUP),
        None => ("sgd4", SGD_GROUP),
    };
    let tuples: Vec<Vec<&Tensor>> = (0..params.len())
        .map(|i| match momentum_buffers {
            Some(b) => vec![&grads[i], &params[i], &b[i]],
            None => vec![&grads[i], &params[i]],
        })
        .collect();
    for group in tuples.chunks(group_len) {
        let mut lens = [0u32; GROUP];
        for (l, t) in lens.iter_mut().zip(group) {
            *l = t[1].numel() as u32;
        }
        let n: u32 = lens.iter().sum();
        let params = Params { n, max_norm: clip.unwrap_or(0.0), offset: 0, count: group.len() as u32, lens };
        // Slots past the group's end get spare buffers (never touched).
        let tuple_len = group[0].len();
        let spares = hyper.gpu().spares((group_len - group.len()) * tuple_len);
        let mut bufs = vec![hyper.buf()];
        bufs.extend(group.iter().flatten().map(|t| t.buf()));
        bufs.extend(spares.iter().map(|b| &**b));
        launch_on(hyper.gpu(), entry, &c, &params, grid_1d(n as usize), &bufs);
    }
}

/// One parameter's Adam update in place (`adam`); p, g, m, v: same shape, any. `hyper`: [lr,
/// beta1, beta2, eps, weight_decay, 1 - beta1^t, sqrt(1 - beta2^t)].
pub(crate) fn adam_update(hyper: &Tensor, p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor) {
    launch("adam", &[], p.numel(), 0.0, &[hyper, g, p, m, v]);
}

/// g *= min(1, max_norm / (norm + 1e-6)) in place (`clip_scale`); norm: [].
pub(crate) fn clip_scale(norm: &Tensor, g: &Tensor, max_norm: f32) {
    launch("clip_scale", &[], g.numel(), max_norm, &[norm, g]);
}

/// ||concat(grads)||_2 as a tensor of shape [] (`sum_squares8`, `finish_norm`): each gradient's
/// sum of squares in order, eight gradients per dispatch, then their sum's root. `grads`: f32,
/// at least one.
pub(crate) fn global_norm(gpu: &Gpu, grads: &[Tensor]) -> Result<Tensor> {
    let sums = Tensor::empty(gpu, &[grads.len()])?; // sums: [gradients]
    for (k, group) in grads.chunks(GROUP).enumerate() {
        let mut lens = [0u32; GROUP];
        for (l, g) in lens.iter_mut().zip(group) {
            *l = g.numel() as u32;
        }
        let params = Params { n: 0, max_norm: 0.0, offset: (k * GROUP) as u32, count: group.len() as u32, lens };
        // Slots past the group's end are bound to its first gradient and never read.
        let mut bufs = vec![&sums];
        bufs.extend((0..GROUP).map(|t| group.get(t).unwrap_or(&group[0])));
        launch_with("sum_squares8", &[], &params, [1, 1, 1], &bufs);
    }
    // norm: [], sqrt of the sum of the per-gradient sums
    let norm = Tensor::empty(gpu, &[])?;
    let params = Params { n: grads.len() as u32, max_norm: 0.0, offset: 0, count: 0, lens: [0; GROUP] };
    launch_with("finish_norm", &[], &params, [1, 1, 1], &[&sums, &norm]);
    Ok(norm)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/optim.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "optim", [n, max_norm, offset, count, lens]);
    }
}

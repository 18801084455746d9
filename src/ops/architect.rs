//! The DARTS architect's second-order helpers (`shaders/architect.wgsl`): the unrolled model's
//! virtual step, the shift of the weights along v, and the Hessian-vector product's scalars,
//! computed on the GPU so that the unrolled alpha gradient needs no readback. The step and the
//! shift take a list of tensors and update several per dispatch (three and four: the bindings
//! one dispatch may hold), so that a network's hundreds of weights cost tens of dispatches.

use bytemuck::{Pod, Zeroable};

use super::same_shape;
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    count: u32,
    total: u32,
    k: u32,
    _pad0: u32,
    lens: [u32; 4],
}

/// Tensors per `virtual_step3` dispatch: 3 bindings each, with `hyper` 10, the most we ask for.
const STEP_GROUP: usize = 3;
/// Tensors per `shift4` dispatch: 2 bindings each, with `s` 9.
const SHIFT_GROUP: usize = 4;

/// Launches `entry` over `group` (one tuple of buffers per tensor, the updated one last, its
/// element count first): `lead` then each tuple's buffers; slots past the group's end get
/// spare buffers ([`crate::gpu::Gpu::spares`]), never touched.
fn launch_groups(entry: &'static str, k: usize, lead: &Tensor, group: &[(usize, Vec<&Tensor>)], slots: usize) {
    let mut p = Params { count: group.len() as u32, total: 0, k: k as u32, _pad0: 0, lens: [0; 4] };
    for (l, (n, _)) in p.lens.iter_mut().zip(group) {
        *l = *n as u32;
        p.total += *n as u32;
    }
    // Slots past the group's end get spare buffers (never touched).
    let spares = lead.gpu().spares((slots - group.len()) * group[0].1.len());
    let mut buffers = vec![lead.buf()];
    buffers.extend(group.iter().flat_map(|(_, ts)| ts.iter().map(|t| t.buf())));
    buffers.extend(spares.iter().map(|b| &**b));
    lead.gpu().dispatch(Dispatch {
        shader: "architect",
        entry,
        constants: &[],
        params: bytemuck::bytes_of(&p),
        buffers: &buffers,
        workgroups: grid_1d(p.total as usize),
        flops: 0,
    });
}

/// In place, for every weight: w = w - eta * (momentum * buf + g + wd * w), with `hyper` =
/// [eta, momentum, wd, r] on the GPU, three weights per dispatch. `grads` pairs with `weights`;
/// without momentum buffers pass `None` (then momentum must be 0 in `hyper`).
pub fn virtual_step_(weights: &[Tensor], grads: &[Tensor], bufs: Option<&[&Tensor]>, hyper: &Tensor) -> Result<()> {
    if grads.len() != weights.len() || bufs.is_some_and(|b| b.len() != weights.len()) {
        return Err(Error::shape("virtual_step", "one gradient (and momentum buffer) per weight"));
    }
    if hyper.numel() < 4 {
        return Err(Error::shape("virtual_step", "hyper must hold [eta, momentum, wd, r]"));
    }
    let mut tuples = Vec::with_capacity(weights.len());
    for (i, (w, g)) in weights.iter().zip(grads).enumerate() {
        same_shape("virtual_step", w, g)?;
        // Without momentum the kernel multiplies the buffer by 0: bind the gradient there.
        let buf = bufs.map_or(g, |b| b[i]);
        same_shape("virtual_step", w, buf)?;
        tuples.push((w.numel(), vec![g, buf, w]));
    }
    for group in tuples.chunks(STEP_GROUP) {
        launch_groups("virtual_step3", 0, hyper, group, STEP_GROUP);
    }
    Ok(())
}

/// In place, for every pair: `w += s[k] * v`, four pairs per dispatch (the weights' moves along v
/// to w +- Rv, and the alpha gradient's finite-difference terms).
pub fn shift_(ws: &[Tensor], vs: &[Tensor], s: &Tensor, k: usize) -> Result<()> {
    if vs.len() != ws.len() {
        return Err(Error::shape("shift", format!("{} directions for {} tensors", vs.len(), ws.len())));
    }
    if k >= s.numel() {
        return Err(Error::shape("shift", format!("scalar slot {k} out of {:?}", s.shape())));
    }
    let mut tuples = Vec::with_capacity(ws.len());
    for (w, v) in ws.iter().zip(vs) {
        same_shape("shift", w, v)?;
        tuples.push((w.numel(), vec![v, w]));
    }
    for group in tuples.chunks(SHIFT_GROUP) {
        launch_groups("shift4", k, s, group, SHIFT_GROUP);
    }
    Ok(())
}

/// From `s[0]` = ||v|| fills `s[1] = R = r/||v||`, `s[2] = -2R`, `s[3] = -eta/(2R)`, `s[4] = eta/(2R)`
/// (`hyper` = [eta, momentum, wd, r]).
pub fn hvp_scalars_(s: &Tensor, hyper: &Tensor) -> Result<()> {
    if s.numel() < 5 || hyper.numel() < 4 {
        return Err(Error::shape("hvp_scalars", "s needs 5 slots and hyper 4"));
    }
    let p = Params { count: 1, total: 1, k: 0, _pad0: 0, lens: [1, 0, 0, 0] };
    s.gpu().dispatch(Dispatch {
        shader: "architect",
        entry: "hvp_scalars",
        constants: &[],
        params: bytemuck::bytes_of(&p),
        buffers: &[hyper.buf(), s.buf()],
        workgroups: [1, 1, 1],
        flops: 0,
    });
    Ok(())
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/architect.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "architect", [count, total, k, lens]);
    }
}

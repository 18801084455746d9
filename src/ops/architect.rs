//! The DARTS architect's second-order helpers (`shaders/architect.wgsl`): the unrolled model's
//! virtual step and the Hessian-vector product's scalars, computed on the GPU so that the
//! unrolled alpha gradient needs no readback.

use bytemuck::{Pod, Zeroable};

use super::same_shape;
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    _pad: [u32; 3],
}

/// In place: w = w - eta * (momentum * buf + g + wd * w), with `hyper` = [eta, momentum, wd, r]
/// on the GPU. Without a momentum buffer pass `None` (then momentum must be 0 in `hyper`).
pub fn virtual_step_(w: &Tensor, g: &Tensor, buf: Option<&Tensor>, hyper: &Tensor) -> Result<()> {
    same_shape("virtual_step", w, g)?;
    if let Some(b) = buf {
        same_shape("virtual_step", w, b)?;
    }
    if hyper.numel() < 4 {
        return Err(Error::shape("virtual_step", "hyper must hold [eta, momentum, wd, r]"));
    }
    let buf = buf.unwrap_or(g);
    let p = Params { n: w.numel() as u32, _pad: [0; 3] };
    w.gpu().dispatch(Dispatch {
        shader: "architect",
        entry: "virtual_step",
        constants: &[],
        params: bytemuck::bytes_of(&p),
        buffers: &[hyper.buf(), g.buf(), buf.buf(), w.buf()],
        workgroups: grid_1d(w.numel()),
        flops: 0,
    });
    Ok(())
}

/// From `s[0]` = ||v||^2 fills `s[1] = R = r/||v||`, `s[2] = -2R`, `s[3] = -eta/(2R)`, `s[4] = eta/(2R)`
/// (`hyper` = [eta, momentum, wd, r]).
pub fn hvp_scalars_(s: &Tensor, hyper: &Tensor) -> Result<()> {
    if s.numel() < 5 || hyper.numel() < 4 {
        return Err(Error::shape("hvp_scalars", "s needs 5 slots and hyper 4"));
    }
    let p = Params { n: 1, _pad: [0; 3] };
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
        params_layout_matches!(Params, "architect", [n]);
    }
}

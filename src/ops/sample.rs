//! Sampling on the GPU (`shaders/sample.wgsl`): categorical draws by inverse CDF, and the
//! skip-averaging weights of the ENAS macro controller. Both produce discrete choices, so
//! nothing is recorded on the tape (a choice has no gradient; its log-probability is taken with
//! `softmax::cross_entropy` on the same logits, which has one).

use bytemuck::{Pod, Zeroable};

use super::dims;
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch};
use crate::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    k: u32,
    offset: u32,
    _pad: u32,
}

fn check_dtype(op: &'static str, name: &str, t: &Tensor, want: DType) -> Result<()> {
    if t.dtype() != want {
        return Err(Error::shape(op, format!("{name} must be {want:?}, got {:?}", t.dtype())));
    }
    Ok(())
}

/// One draw per row from `softmax(logits[r])`: `idx[r]` = the first j whose cumulative probability
/// exceeds uniforms[offset + r]. The choices also go to `decisions[offset + r]`, so that the
/// decisions of a whole rollout are read back at once.
/// logits: [R, K] f32, uniforms: [>= offset + R] f32 in [0, 1), decisions: [>= offset + R] u32
/// -> idx: `[R]` u32.
pub fn categorical(logits: &Tensor, uniforms: &Tensor, offset: usize, decisions: &Tensor) -> Result<Tensor> {
    const OP: &str = "categorical";
    let [rows, k] = dims::<2>(OP, logits)?;
    check_dtype(OP, "logits", logits, DType::F32)?;
    check_dtype(OP, "uniforms", uniforms, DType::F32)?;
    check_dtype(OP, "decisions", decisions, DType::U32)?;
    if rows == 0 || k == 0 {
        return Err(Error::shape(OP, format!("empty logits {:?}", logits.shape())));
    }
    for (name, t) in [("uniforms", uniforms), ("decisions", decisions)] {
        if t.numel() < offset + rows {
            return Err(Error::shape(
                OP,
                format!("{name} {:?} too short for {rows} rows at offset {offset}", t.shape()),
            ));
        }
    }
    let gpu = logits.gpu();
    let idx = Tensor::uninit(gpu, &[rows], DType::U32)?; // idx: [R]
    let params = Params { rows: rows as u32, k: k as u32, offset: offset as u32, _pad: 0 };
    gpu.dispatch(Dispatch {
        shader: "sample",
        entry: "categorical",
        constants: &[],
        params: bytemuck::bytes_of(&params),
        buffers: &[logits.buf(), uniforms.buf(), idx.buf(), decisions.buf()],
        workgroups: grid_1d(rows),
        flops: 0,
    });
    Ok(idx)
}

/// `w[j] = bits[j] / (1 + sum bits)` for 0/1 choices: the ENAS macro controller's next input is
/// the hidden states of the layers a skip was drawn from, summed and divided by 1 + their count.
/// bits: `[R]` u32 -> w: `[R]` f32.
pub fn mean_weights(bits: &Tensor) -> Result<Tensor> {
    const OP: &str = "mean_weights";
    let [rows] = dims::<1>(OP, bits)?;
    check_dtype(OP, "bits", bits, DType::U32)?;
    let gpu = bits.gpu();
    let w = Tensor::empty(gpu, &[rows])?; // w: [R]
    let params = Params { rows: rows as u32, k: 0, offset: 0, _pad: 0 };
    gpu.dispatch(Dispatch {
        shader: "sample",
        entry: "mean_weights",
        constants: &[],
        params: bytemuck::bytes_of(&params),
        buffers: &[bits.buf(), w.buf()],
        workgroups: grid_1d(rows),
        flops: 0,
    });
    Ok(w)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/sample.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "sample", [rows, k, offset]);
    }
}

//! Embedding lookup (`shaders/embedding.wgsl`): the ENAS controller turns each sampled decision
//! into the next LSTM input with it.
//!
//! Indices stay on the GPU, so their range is not checked here: an index `>= V` gives a row of
//! zeros and sends no gradient to the table.

use bytemuck::{Pod, Zeroable};

use super::dims;
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch};
use crate::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    vocab: u32,
    dim: u32,
    _pad: u32,
}

fn launch(entry: &'static str, params: Params, threads: usize, bufs: [&Tensor; 3]) {
    let gpu = bufs[0].gpu();
    gpu.dispatch(Dispatch {
        shader: "embedding",
        entry,
        constants: &[],
        params: bytemuck::bytes_of(&params),
        buffers: &bufs.map(|t| t.buf()),
        workgroups: grid_1d(threads),
        flops: 0,
    });
}

/// `y[n] = table[idx[n]]`. table: [V, D] f32, idx: `[N]` u32 -> y: [N, D].
/// Gradient to the table: `dtable[v]` = sum of `dy[n]` over the n with `idx[n] == v` (none to idx).
pub fn embedding(table: &Tensor, idx: &Tensor) -> Result<Tensor> {
    const OP: &str = "embedding";
    let [vocab, dim] = dims::<2>(OP, table)?;
    let [n] = dims::<1>(OP, idx)?;
    if idx.dtype() != DType::U32 {
        return Err(Error::shape(OP, format!("indices must be u32, got {:?}", idx.dtype())));
    }
    if table.dtype() != DType::F32 {
        return Err(Error::shape(OP, format!("table must be f32, got {:?}", table.dtype())));
    }
    let params = Params { n: n as u32, vocab: vocab as u32, dim: dim as u32, _pad: 0 };
    let y = Tensor::empty(table.gpu(), &[n, dim])?; // y: [N, D]
    launch("gather", params, n * dim, [table, idx, &y]);

    let (st, si) = (table.clone(), idx.clone());
    table.gpu().record(&[table, idx], &[&y], move |g| {
        if !st.requires_grad() {
            return Ok(vec![None, None]);
        }
        let dtable = Tensor::empty(st.gpu(), st.shape())?; // dtable: [V, D]
        launch("scatter_grad", params, vocab * dim, [&g[0], &si, &dtable]);
        Ok(vec![Some(dtable), None])
    });
    Ok(y)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/embedding.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "embedding", [n, vocab, dim]);
    }
}

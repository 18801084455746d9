//! The pointwise (1x1) convolution's fast kernels (`shaders/pointwise.wgsl`): register-blocked
//! matrix products for the forward pass and the input gradient, and a chunked, deterministic
//! reduction for the weight gradient. `conv::conv2d` routes here when the shape fits; the
//! backward rule and the shape checks stay in `conv.rs`.

use bytemuck::{Pod, Zeroable};

use super::conv::{sum_chunks, Geometry, UniformFilter};
use crate::error::Result;
use crate::gpu::{grid_1d_of, Dispatch, Gpu, GpuBuffer};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    c_in: u32,
    p4: u32,
    c_out: u32,
    chunk: u32,
    chunks: u32,
    outputs: u32,
    _pad: u32,
}

/// Weights of at most this many values can reach `product` through a uniform buffer (`pr_wu` in
/// the shader, 64 KiB: WebGPU's default uniform binding limit).
const UNIFORM_WEIGHTS: usize = 16384;
/// Invocations per workgroup (`@workgroup_size(64)` in the shader).
const WORKGROUP: u32 = 64;
/// Vec4 columns of one `product` invocation (the shader's `Block`); its rows are `ROWS`, 8 or 16.
const BLOCK_COLS: usize = 4;
/// Weight-gradient invocations aimed for: enough to fill a GPU, few enough that each chunk
/// is long and the partials stay small.
const TARGET_THREADS: usize = 4096;
/// Fewest vec4 positions a weight-gradient chunk covers: long chunks spread each invocation's
/// setup and 64 stores over more work and leave fewer partials to sum (on lavapipe 64 beat 16
/// and 32; 128 left the DARTS shapes a single workgroup, one core).
const MIN_CHUNK: usize = 64;
/// Weight-gradient block: 8 output by 8 input channels per invocation (the shader's `s00..s77`).
const DW_BLOCK: usize = 8;

/// Whether the planes can be read as vec4 (H*W a multiple of 4).
pub(crate) fn fits(geo: &Geometry) -> bool {
    (geo.h * geo.w).is_multiple_of(4)
}

fn params(geo: &Geometry) -> Params {
    Params {
        n: geo.n as u32,
        c_in: geo.c_in as u32,
        p4: (geo.h * geo.w / 4) as u32,
        c_out: geo.c_out as u32,
        chunk: 0,
        chunks: 0,
        outputs: (geo.c_out * geo.c_in) as u32,
        _pad: 0,
    }
}

#[allow(clippy::too_many_arguments)]
fn launch(
    gpu: &Gpu,
    entry: &'static str,
    constants: &[(&'static str, f64)],
    p: &Params,
    buffers: &[&GpuBuffer],
    threads: usize,
    flops: u64,
) {
    gpu.dispatch(Dispatch {
        shader: "pointwise",
        entry,
        constants,
        params: bytemuck::bytes_of(p),
        buffers,
        workgroups: grid_1d_of(threads, WORKGROUP),
        flops,
    });
}

/// Forward, y = W x (`transpose` false, `input` = x: [N, C_in, H, W], `out` = y), or the input
/// gradient, dx = W^T dy (`transpose` true, `input` = dy: [N, C_out, H, W], `out` = dx).
pub(crate) fn product(geo: &Geometry, input: &Tensor, w: &Tensor, out: &Tensor, transpose: bool) -> Result<()> {
    let p = params(geo);
    let rows = if transpose { geo.c_in } else { geo.c_out };
    let k = if transpose { geo.c_out } else { geo.c_in };
    // 16 rows halve the loads of `in` per FMA; with K = 8 the stores dominate and 8 rows won (on
    // the DARTS shapes, lavapipe: 16 rows 8-15% faster at K >= 16, 10-50% slower at K = 8).
    let block_rows = if rows >= 16 && k >= 16 { 16 } else { 8 };
    let threads = geo.n * rows.div_ceil(block_rows) * (p.p4 as usize).div_ceil(BLOCK_COLS);
    // WIDE: the weights' rows start on a vec4 (see the shader).
    let wide = geo.c_in.is_multiple_of(4);
    // The weights from a uniform copy where they fit and the adapter gains by it (see Tuning).
    let gpu = input.gpu();
    let w_uniform = UniformFilter::of(w, UNIFORM_WEIGHTS, gpu.tuning().pointwise_uniform_weights)?;
    let constants = [
        ("TRANSPOSE", transpose as u32 as f64),
        ("WIDE", wide as u32 as f64),
        ("ROWS", block_rows as f64),
        ("UNIFORM_W", w_uniform.flag()),
    ];
    let bufs = [input.buf(), w.buf(), out.buf(), w_uniform.buf()];
    launch(gpu, "product", &constants, &p, &bufs, threads, geo.flops());
    Ok(())
}

/// dw: [C_out, C_in, 1, 1] = sum over images and positions of dy x^T.
pub(crate) fn weight_grad(geo: &Geometry, dy: &Tensor, x: &Tensor) -> Result<Tensor> {
    let gpu = dy.gpu();
    let mut p = params(geo);
    let positions = geo.n * p.p4 as usize;
    let tiles = geo.c_out.div_ceil(DW_BLOCK) * geo.c_in.div_ceil(DW_BLOCK);
    let chunks = (TARGET_THREADS / tiles).clamp(1, positions.div_ceil(MIN_CHUNK).max(1));
    let chunk = positions.div_ceil(chunks);
    let chunks = positions.div_ceil(chunk);
    p.chunk = chunk as u32;
    p.chunks = chunks as u32;
    let dw = Tensor::empty(gpu, &[geo.c_out, geo.c_in, 1, 1])?;
    if chunks == 1 {
        launch(gpu, "weight_backward", &[], &p, &[dy.buf(), x.buf(), dw.buf()], tiles, geo.flops());
    } else {
        // partial: [chunks, C_out * C_in]
        let partial = Tensor::empty(gpu, &[chunks, geo.c_out * geo.c_in])?;
        let bufs = [dy.buf(), x.buf(), partial.buf()];
        launch(gpu, "weight_backward", &[], &p, &bufs, chunks * tiles, geo.flops());
        sum_chunks(&partial, &dw, chunks);
    }
    Ok(dw)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/pointwise.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "pointwise", [n, c_in, p4, c_out, chunk, chunks, outputs]);
    }

    /// The shader's uniform weight array holds `UNIFORM_WEIGHTS` values.
    #[test]
    fn uniform_weights_size_matches_the_shader() {
        let src = crate::gpu::shaders::source("pointwise");
        let decl = format!("var<uniform> pr_wu: array<vec4<f32>, {}>;", UNIFORM_WEIGHTS / 4);
        assert!(src.contains(&decl), "pr_wu is not {decl}");
    }
}

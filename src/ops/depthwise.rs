//! The depthwise convolution's fast kernels (`shaders/depthwise.wgsl`): 8-column register strips
//! for the forward pass (and, at stride 1, the input gradient as the forward pass of dy with the
//! kernel rotated), and a per-channel chunked reduction for the weight gradient. `conv::conv2d`
//! routes here when the shape fits; the backward rule and the shape checks stay in `conv.rs`.

use bytemuck::{Pod, Zeroable};

use super::conv::{sum_chunks, Geometry, UniformFilter};
use crate::error::Result;
use crate::gpu::{grid_1d_of, Dispatch, Gpu, GpuBuffer};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    padding: u32,
    rows: u32,
    rblocks: u32,
    c_in: u32,
    cin_g: u32,
    cout_g: u32,
}

impl Params {
    /// The convolution's channels and planes; `rows`/`rblocks` zero (set by the weight gradient).
    fn of(geo: &Geometry, hw: [usize; 2], ohw: [usize; 2], padding: usize) -> Params {
        let g = geo.spec.groups;
        Params {
            n: geo.n as u32,
            c: geo.c_out as u32,
            h: hw[0] as u32,
            w: hw[1] as u32,
            oh: ohw[0] as u32,
            ow: ohw[1] as u32,
            padding: padding as u32,
            rows: 0,
            rblocks: 0,
            c_in: geo.c_in as u32,
            cin_g: (geo.c_in / g) as u32,
            cout_g: (geo.c_out / g) as u32,
        }
    }
}

/// Output columns per invocation, register segment and tap budget (`OUTS`, `SEG`, `MAX_TAPS`).
const OUTS: usize = 8;
const SEG: usize = 24;
const MAX_TAPS: usize = 25;
/// Weight-gradient invocations aimed for (one per channel, image and band of rows): 16
/// workgroups, enough for lavapipe's threads; 4096 made bands of 2 rows on the DARTS shapes,
/// 12% slower with 2.3x the partial sums to add.
const TARGET_THREADS: usize = 1024;

/// Whether the strip kernels' registers hold this convolution (forward and weight gradient, any
/// grouping): the same stride (1 or 2) and padding along both axes, at most 25 taps, and a
/// strip's input segment within `SEG`.
pub(crate) fn fits(geo: &Geometry) -> bool {
    let (s, d) = (geo.spec.stride[0], geo.spec.dilation);
    geo.spec.is_square()
        && (1..=2).contains(&s)
        && geo.kh * geo.kw <= MAX_TAPS
        && (OUTS - 1) * s + (geo.kw - 1) * d < SEG
}

/// Whether the input gradient is the rotated kernel's forward pass: stride 1, a square kernel
/// at least as wide as twice the padding (as every 'same' convolution is).
fn rotated_input_grad(geo: &Geometry) -> bool {
    let s = geo.spec;
    s.stride[0] == 1 && geo.kh == geo.kw && (geo.kh - 1) * s.dilation >= s.padding[0]
}

/// Whether `input_backward`'s segment holds the dy columns a strip of 8 input columns meets.
fn strided_input_grad(geo: &Geometry) -> bool {
    let (s, d, pad) = (geo.spec.stride[0] as i64, geo.spec.dilation as i64, geo.spec.padding[0] as i64);
    let lo = (pad - (geo.kw as i64 - 1) * d).div_euclid(s);
    let hi = (OUTS as i64 - 1 + pad) / s;
    pad <= 16 && hi - lo < SEG as i64
}

/// Whether one of the fast kernels computes the input gradient (depthwise convs only).
pub(crate) fn fits_input_grad(geo: &Geometry) -> bool {
    let depthwise = geo.spec.groups == geo.c_in && geo.spec.groups == geo.c_out;
    depthwise && (rotated_input_grad(geo) || strided_input_grad(geo))
}

/// The pipeline constants of a kernel over input rows of `row_len` values with `padding`. Rows of
/// a multiple of 4 load their segments as vec4s (`VEC4`, x bound a second time as such), which
/// needs the padding as a constant (`PAD`); other rows leave `PAD` at one value, so that their
/// paddings share a pipeline.
fn constants(geo: &Geometry, stride: usize, flip: bool, row_len: usize, padding: usize) -> [(&'static str, f64); 7] {
    let vec4 = row_len.is_multiple_of(4);
    [
        ("KH", geo.kh as f64),
        ("KW", geo.kw as f64),
        ("STRIDE", stride as f64),
        ("DIL", geo.spec.dilation as f64),
        ("FLIP", flip as u32 as f64),
        ("VEC4", vec4 as u32 as f64),
        ("PAD", if vec4 { padding as f64 } else { 1.0 }),
    ]
}

fn launch(
    gpu: &Gpu,
    entry: &'static str,
    c: &[(&'static str, f64)],
    p: &Params,
    buffers: &[&GpuBuffer],
    threads: usize,
    flops: u64,
) {
    launch_on(gpu, entry, c, p, buffers, grid_1d_of(threads, 64), flops)
}

/// [`launch`] on a given workgroup grid.
fn launch_on(
    gpu: &Gpu,
    entry: &'static str,
    c: &[(&'static str, f64)],
    p: &Params,
    buffers: &[&GpuBuffer],
    workgroups: [u32; 3],
    flops: u64,
) {
    gpu.dispatch(Dispatch {
        shader: "depthwise",
        entry,
        constants: c,
        params: bytemuck::bytes_of(p),
        buffers,
        workgroups,
        flops,
    });
}

/// Filters of at most this many values reach the forward and input-gradient kernels through a
/// uniform copy (`f_wu` and `ib_wu` in the shader, 16 KiB: within WebGPU's default uniform
/// binding limit, 64 KiB).
const UNIFORM_TAPS: usize = 4096;

/// The forward kernel from an `[h, w]` input plane to an `[oh, ow]` output plane.
#[allow(clippy::too_many_arguments)]
fn strips(
    geo: &Geometry,
    input: &Tensor,
    w: &Tensor,
    out: &Tensor,
    hw: [usize; 2],
    ohw: [usize; 2],
    padding: usize,
    stride: usize,
    flip: bool,
) -> Result<()> {
    let gpu = input.gpu();
    let w_uniform = UniformFilter::of(w, UNIFORM_TAPS, true)?;
    let p = Params::of(geo, hw, ohw, padding);
    // Stride 1: output rows (i0, i0 + dilation, ..) per invocation share their input rows, as
    // many as the adapter's `Tuning::depthwise_rows` (on lavapipe 4 beat 2 by 12-15% on every
    // DARTS class, 8 lost: its 64 accumulators spill).
    let d = geo.spec.dilation;
    let rows = if stride == 1 { input.gpu().tuning().depthwise_rows } else { 1 };
    let groups = ohw[0].div_ceil(rows * d) * d;
    // Workgroups: x (folded into z) over one output channel's strips, y over the channels.
    let [x, z, _] = grid_1d_of(geo.n * groups * ohw[1].div_ceil(OUTS), 64);
    let mut c = constants(geo, stride, flip, hw[1], padding).to_vec();
    c.push(("ROWS", rows as f64));
    c.push(("VEC4_OUT", ohw[1].is_multiple_of(OUTS) as u32 as f64));
    c.push(("UNIFORM_W", w_uniform.flag()));
    let bufs = [input.buf(), w.buf(), out.buf(), input.buf(), w_uniform.buf()];
    launch_on(gpu, "forward", &c, &p, &bufs, [x, geo.c_out as u32, z], geo.flops());
    Ok(())
}

/// y: [N, C, OH, OW] from x: [N, C, H, W] and w: [C, 1, KH, KW].
pub(crate) fn forward(geo: &Geometry, x: &Tensor, w: &Tensor, y: &Tensor) -> Result<()> {
    let s = geo.spec;
    strips(geo, x, w, y, [geo.h, geo.w], [geo.oh, geo.ow], s.padding[0], s.stride[0], false)
}

/// dx: [N, C, H, W] from dy: [N, C, OH, OW] (when [`fits_input_grad`]).
pub(crate) fn input_grad(geo: &Geometry, dy: &Tensor, w: &Tensor, dx: &Tensor) -> Result<()> {
    let s = geo.spec;
    let (stride, pad) = (s.stride[0], s.padding[0]);
    if rotated_input_grad(geo) {
        let padding = (geo.kh - 1) * s.dilation - pad;
        return strips(geo, dy, w, dx, [geo.oh, geo.ow], [geo.h, geo.w], padding, 1, true);
    }
    let w_uniform = UniformFilter::of(w, UNIFORM_TAPS, true)?;
    let p = Params::of(geo, [geo.h, geo.w], [geo.oh, geo.ow], pad);
    let [kh, kw, stride_constant, dil, ..] = constants(geo, stride, false, geo.w, pad);
    let flag = |yes: bool| yes as u32 as f64;
    // dy rows as vec4s (OW a multiple of 4), dx strips as two (W a multiple of 8).
    let c = [
        kh,
        kw,
        stride_constant,
        dil,
        ("PAD", pad as f64),
        ("VEC4", flag(geo.ow.is_multiple_of(4))),
        ("VEC4_OUT", flag(geo.w.is_multiple_of(OUTS))),
        ("UNIFORM_W", w_uniform.flag()),
    ];
    // One invocation per (plane, row phase, row of that phase, strip), see the shader.
    let threads = geo.n * geo.c_in * stride * geo.h.div_ceil(stride) * geo.w.div_ceil(OUTS);
    let bufs = [dy.buf(), w.buf(), dx.buf(), w_uniform.buf()];
    launch(dy.gpu(), "input_backward", &c, &p, &bufs, threads, geo.flops());
    Ok(())
}

/// dw: [C, 1, KH, KW] from dy and x.
pub(crate) fn weight_grad(geo: &Geometry, dy: &Tensor, x: &Tensor) -> Result<Tensor> {
    let gpu = dy.gpu();
    let slices = geo.c_out * (geo.c_in / geo.spec.groups);
    let rblocks = (TARGET_THREADS / (geo.n * slices)).clamp(1, geo.oh);
    let rows = geo.oh.div_ceil(rblocks);
    let rblocks = geo.oh.div_ceil(rows);
    let chunks = geo.n * rblocks;
    let mut p = Params::of(geo, [geo.h, geo.w], [geo.oh, geo.ow], geo.spec.padding[0]);
    p.rows = rows as u32;
    p.rblocks = rblocks as u32;
    let dw = Tensor::empty(gpu, &[geo.c_out, geo.c_in / geo.spec.groups, geo.kh, geo.kw])?;
    // partial: [N * rblocks, C_out, C_in/groups, KH, KW]
    let partial = Tensor::empty(gpu, &[chunks, slices * geo.kh * geo.kw])?;
    let mut c = constants(geo, geo.spec.stride[0], false, geo.w, geo.spec.padding[0]).to_vec();
    c.push(("VEC4_OUT", geo.ow.is_multiple_of(OUTS) as u32 as f64));
    let bufs = [dy.buf(), x.buf(), partial.buf(), x.buf()];
    launch(gpu, "weight_backward", &c, &p, &bufs, chunks * slices, geo.flops());
    sum_chunks(&partial, &dw, chunks);
    Ok(dw)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/depthwise.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "depthwise", [n, c, h, w, oh, ow, padding, rows, rblocks, c_in, cin_g, cout_g]);
    }

    /// The shader's uniform filter arrays hold `UNIFORM_TAPS` values.
    #[test]
    fn uniform_filter_size_matches_the_shader() {
        let src = crate::gpu::shaders::source("depthwise");
        let decl = format!("array<vec4<f32>, {}>", UNIFORM_TAPS / 4);
        for var in ["f_wu", "ib_wu"] {
            assert!(src.contains(&format!("var<uniform> {var}: {decl};")), "{var} is not {decl}");
        }
    }
}

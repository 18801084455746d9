//! Pooling (`shaders/pool.wgsl`): 2-D max and average pooling with square windows, and global
//! average pooling. Backward passes gather (one thread per input element), so they need no
//! atomics and repeat bit for bit.

use bytemuck::{Pod, Zeroable};

use super::dims;
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, grid_1d_of, grid_groups, grid_planes, Dispatch};
use crate::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    nc: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    k: u32,
    stride: u32,
    pad: u32,
}

/// The shapes of one pooling: input [N, C, H, W], output [N, C, OH, OW].
#[derive(Clone, Copy)]
struct Pooling {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl Pooling {
    /// Checks the arguments the way PyTorch does: padding at most half the window, and at least
    /// one window; output side floor((H + 2p - k) / s) + 1.
    fn new(op: &'static str, x: &Tensor, k: usize, stride: usize, pad: usize) -> Result<Pooling> {
        let [n, c, h, w] = dims::<4>(op, x)?;
        if k == 0 || stride == 0 {
            return Err(Error::shape(op, format!("kernel {k} and stride {stride} must be at least 1")));
        }
        if pad > k / 2 {
            return Err(Error::shape(op, format!("padding {pad} is more than half the kernel {k}")));
        }
        if h + 2 * pad < k || w + 2 * pad < k {
            return Err(Error::shape(
                op,
                format!("input {h}x{w} with padding {pad} is smaller than the {k}x{k} window"),
            ));
        }
        let out = |side: usize| (side + 2 * pad - k) / stride + 1;
        Ok(Pooling { n, c, h, w, oh: out(h), ow: out(w), k, stride, pad })
    }

    fn in_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    fn out_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }

    /// [rows, cols] of an input plane and of an output plane.
    fn in_plane(&self) -> [usize; 2] {
        [self.h, self.w]
    }

    fn out_plane(&self) -> [usize; 2] {
        [self.oh, self.ow]
    }

    fn params(&self) -> Params {
        Params {
            nc: (self.n * self.c) as u32,
            h: self.h as u32,
            w: self.w as u32,
            oh: self.oh as u32,
            ow: self.ow as u32,
            k: self.k as u32,
            stride: self.stride as u32,
            pad: self.pad as u32,
        }
    }
}

/// One 1-D dispatch of `threads` threads over `bufs` (bindings 1..).
fn launch(entry: &'static str, params: Params, threads: usize, bufs: &[&Tensor]) {
    let gpu = bufs[0].gpu();
    let buffers: Vec<_> = bufs.iter().map(|t| t.buf()).collect();
    gpu.dispatch(Dispatch {
        shader: "pool",
        entry,
        constants: &[],
        params: bytemuck::bytes_of(&params),
        buffers: &buffers,
        workgroups: grid_1d(threads),
        flops: 0,
    });
}

/// Register budget of the strip kernels (`SEG` in the shader): (8 - 1) * stride + k values.
const SEG: usize = 24;

/// The forward `entry` as 8-column strips (`strips`, 64 invocations a workgroup) where the
/// window fits the register segment, else on 8x8 plane workgroups.
fn launch_forward(entry: &'static str, strips: &'static str, pool: &Pooling, bufs: &[&Tensor]) {
    if 7 * pool.stride + pool.k > SEG {
        return launch_window(entry, pool, plane_grid(pool, pool.out_plane()), bufs);
    }
    let grid = grid_1d_of(pool.n * pool.c * pool.oh * pool.ow.div_ceil(8), 64);
    launch_strips(strips, pool, grid, [pool.w, pool.ow], bufs);
}

/// The backward `entry` as 8-column strips of input columns: `strips` at stride 1, `strided`
/// above (its span of output columns, (8 + k - 2) / stride + 1, in registers), else on 8x8
/// plane workgroups (a window wider than the segment). At stride 2 on [32, 16, 32, 32] the
/// strided strips replace plane kernels of ~3.4 ms.
fn launch_backward([entry, strips, strided]: [&'static str; 3], pool: &Pooling, bufs: &[&Tensor]) {
    let grid = grid_1d_of(pool.n * pool.c * pool.h * pool.w.div_ceil(8), 64);
    match pool.stride {
        1 if 8 + pool.k - 1 <= SEG => launch_strips(strips, pool, grid, [pool.ow, pool.w], bufs),
        s if s > 1 && (8 + pool.k - 2) / s < SEG => {
            let [k, stride] = window_constants(pool);
            dispatch_window(strided, pool, grid, &[k, stride, vec4_out(pool.w)], bufs)
        }
        _ => launch_window(entry, pool, plane_grid(pool, pool.in_plane()), bufs),
    }
}

/// A strip kernel whose segments come from rows of `widths[0]` values and whose outputs go to
/// rows of `widths[1]`: as vec4s where the width is a multiple of 4 (`VEC4`, `VEC4_OUT`), the
/// padding a pipeline constant (`PAD`).
fn launch_strips(entry: &'static str, pool: &Pooling, workgroups: [u32; 3], widths: [usize; 2], bufs: &[&Tensor]) {
    let [k, stride] = window_constants(pool);
    let vec4_in = ("VEC4", widths[0].is_multiple_of(4) as u32 as f64);
    let constants = [k, stride, vec4_in, ("PAD", pool.pad as f64), vec4_out(widths[1])];
    dispatch_window(entry, pool, workgroups, &constants, bufs);
}

/// The strip kernels' `VEC4_OUT`: their output rows, of `width` values, stored as vec4s.
fn vec4_out(width: usize) -> (&'static str, f64) {
    ("VEC4_OUT", width.is_multiple_of(4) as u32 as f64)
}

/// The plane kernels' grid: [`grid_planes`] over a `[rows, cols]` plane and the N*C planes.
fn plane_grid(pool: &Pooling, [rows, cols]: [usize; 2]) -> [u32; 3] {
    grid_planes(cols, rows, pool.n * pool.c)
}

/// The window kernels' side and stride as pipeline constants.
fn window_constants(pool: &Pooling) -> [(&'static str, f64); 2] {
    [("K", pool.k as f64), ("STRIDE", pool.stride as f64)]
}

/// One dispatch of a window kernel (window side and stride as pipeline constants) over `bufs`.
fn launch_window(entry: &'static str, pool: &Pooling, workgroups: [u32; 3], bufs: &[&Tensor]) {
    dispatch_window(entry, pool, workgroups, &window_constants(pool), bufs);
}

/// A window kernel's dispatch with these pipeline constants.
fn dispatch_window(
    entry: &'static str,
    pool: &Pooling,
    workgroups: [u32; 3],
    constants: &[(&'static str, f64)],
    bufs: &[&Tensor],
) {
    let params = pool.params();
    let gpu = bufs[0].gpu();
    let buffers: Vec<_> = bufs.iter().map(|t| t.buf()).collect();
    gpu.dispatch(Dispatch {
        shader: "pool",
        entry,
        constants,
        params: bytemuck::bytes_of(&params),
        buffers: &buffers,
        workgroups,
        flops: 0,
    });
}

/// Max pooling with a `kernel` x `kernel` window; padded cells never win. The gradient goes to
/// the arg-max of each window (the first maximum in row-major window order on ties).
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let pool = Pooling::new("max_pool2d", x, kernel, stride, padding)?;
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &pool.out_shape())?; // y: [N, C, OH, OW]
    if !(gpu.is_grad_enabled() && x.requires_grad()) {
        launch_forward("max_forward", "max_forward_strips", &pool, &[x, &y]);
        return Ok(y);
    }
    // arg: [N, C, OH, OW], the plane index iy * W + ix of each window's maximum.
    let arg = Tensor::uninit(gpu, &pool.out_shape(), DType::U32)?;
    launch_forward("max_forward_arg", "max_forward_arg_strips", &pool, &[x, &y, &arg]);
    gpu.record(&[x], &[&y], move |g| {
        let dx = Tensor::empty(arg.gpu(), &pool.in_shape())?; // dx: [N, C, H, W]
        let names = ["max_backward", "max_backward_strips", "max_backward_strided"];
        launch_backward(names, &pool, &[&g[0], &dx, &arg]);
        Ok(vec![Some(dx)])
    });
    Ok(y)
}

/// Average pooling with a `kernel` x `kernel` window and `count_include_pad = False`: each
/// window's mean over its in-bounds cells.
pub fn avg_pool2d(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let pool = Pooling::new("avg_pool2d", x, kernel, stride, padding)?;
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &pool.out_shape())?; // y: [N, C, OH, OW]
    launch_forward("avg_forward", "avg_forward_strips", &pool, &[x, &y]);
    gpu.record(&[x], &[&y], move |g| {
        let dx = Tensor::empty(g[0].gpu(), &pool.in_shape())?; // dx: [N, C, H, W]
        let names = ["avg_backward", "avg_backward_strips", "avg_backward_strided"];
        launch_backward(names, &pool, &[&g[0], &dx]);
        Ok(vec![Some(dx)])
    });
    Ok(y)
}

/// Global average pooling: [N, C, H, W] -> [N, C, 1, 1], the mean of each plane.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    let [n, c, h, w] = dims::<4>("global_avg_pool", x)?;
    if h * w == 0 {
        return Err(Error::shape("global_avg_pool", format!("empty planes in {:?}", x.shape())));
    }
    let gpu = x.gpu();
    let params = Params { nc: (n * c) as u32, h: h as u32, w: w as u32, oh: 1, ow: 1, k: 0, stride: 0, pad: 0 };
    let y = Tensor::empty(gpu, &[n, c, 1, 1])?; // y: [N, C, 1, 1]
    gpu.dispatch(Dispatch {
        shader: "pool",
        entry: "global_forward",
        constants: &[],
        params: bytemuck::bytes_of(&params),
        buffers: &[x.buf(), y.buf()],
        workgroups: grid_groups(n * c),
        flops: 0,
    });
    gpu.record(&[x], &[&y], move |g| {
        let dx = Tensor::empty(g[0].gpu(), &[n, c, h, w])?; // dx: [N, C, H, W]
        launch("global_backward", params, dx.numel(), &[&g[0], &dx]);
        Ok(vec![Some(dx)])
    });
    Ok(y)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/pool.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "pool", [nc, h, w, oh, ow, k, stride, pad]);
    }
}

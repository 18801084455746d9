//! 2-D convolution (`shaders/conv.wgsl`) with PyTorch's semantics: cross-correlation, zero
//! padding, stride, dilation and groups (depthwise when groups = c_in), optional bias; kernel,
//! stride and padding per axis (`conv_7x1_1x7`'s (1, 7) and (7, 1) convs).
//! Activations NCHW, weights OIHW `[c_out, c_in / groups, kh, kw]`.
//!
//! The shapes of DARTS's separable convs go to register-blocked kernels (`Path`): 1x1 convs to
//! `pointwise.rs`, depthwise ones (and the forward pass and weight gradient of other groupings
//! with stride at most 2, such as the stem) to `depthwise.rs`'s strips. Everything else runs the
//! direct kernels here: forward and input gradient one thread per element; the weight and bias
//! gradients deterministic reductions over the N*OH*OW output positions, split into fixed chunks
//! so that small filters still fill the GPU, the chunk partials summed in order by `sum_chunks`
//! (which the fast paths share).

use std::rc::Rc;

use bytemuck::{Pod, Zeroable};

use super::{depthwise, dims, pointwise};
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, grid_groups, Dispatch, Gpu, GpuBuffer, WORKGROUP};
use crate::tensor::Tensor;

/// The geometry of a convolution (the kernel size comes from the weight). Stride and padding
/// are per axis, `[along H, along W]`, as PyTorch's tuples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Step between output positions, in input pixels: [along H, along W].
    pub stride: [usize; 2],
    /// Zero padding added on both sides, in pixels: [along H, along W].
    pub padding: [usize; 2],
    /// Spacing between kernel taps (1: a dense kernel).
    pub dilation: usize,
    /// Channel groups: 1 is a full conv, C_in a depthwise one; divides C_in and C_out.
    pub groups: usize,
}

impl Conv2d {
    /// The same stride and padding along both axes (PyTorch's `Conv2d` argument order).
    pub fn new(stride: usize, padding: usize, dilation: usize, groups: usize) -> Conv2d {
        Conv2d { stride: [stride; 2], padding: [padding; 2], dilation, groups }
    }

    /// Stride and padding `[along H, along W]`.
    pub fn per_axis(stride: [usize; 2], padding: [usize; 2], dilation: usize, groups: usize) -> Conv2d {
        Conv2d { stride, padding, dilation, groups }
    }

    /// Whether both axes have the same stride and padding (what the strip kernels take).
    pub fn is_square(&self) -> bool {
        self.stride[0] == self.stride[1] && self.padding[0] == self.padding[1]
    }

    /// Output length along `axis` (0: H, 1: W):
    /// floor((size + 2*padding - dilation*(k-1) - 1) / stride) + 1, or `None` when the dilated
    /// kernel does not fit in the padded input (or k or the stride is 0).
    pub fn output_size(&self, axis: usize, size: usize, k: usize) -> Option<usize> {
        let (stride, padding) = (self.stride[axis], self.padding[axis]);
        if k == 0 || stride == 0 {
            return None;
        }
        let span = self.dilation * (k - 1) + 1;
        (size + 2 * padding).checked_sub(span).map(|room| room / stride + 1)
    }
}

impl Default for Conv2d {
    /// Stride 1, no padding, no dilation, one group.
    fn default() -> Self {
        Conv2d::new(1, 0, 1, 1)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    cin_g: u32,
    cout_g: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    dilation: u32,
    chunk: u32,
    chunks: u32,
    outputs: u32,
    _pad: [u32; 3],
}

/// Taps one `weight_backward` workgroup reduces together (`MAX_TAPS` in the shader).
const MAX_TAPS: usize = 25;
/// Workgroups the weight and bias reductions aim for, so that a handful of filters (a
/// depthwise conv of 16 channels) still spreads over the whole GPU.
const TARGET_WORKGROUPS: usize = 2048;
/// Fewest output positions per chunk: four per thread keeps each workgroup busy.
const MIN_CHUNK: usize = 4 * WORKGROUP as usize;

/// Everything the kernels need to know about one convolution, checked.
#[derive(Clone, Copy)]
pub(crate) struct Geometry {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub spec: Conv2d,
}

/// Which kernels run a convolution: the register-blocked pointwise and depthwise kernels where
/// the shape allows them (the DARTS separable convs), the direct loops otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    Pointwise,
    /// `depthwise.rs`'s 8-column strips: depthwise convs, and the forward pass and weight
    /// gradient of grouped and full ones (the stem).
    Strips,
    Direct,
}

impl Geometry {
    fn new(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, spec: Conv2d) -> Result<Geometry> {
        let op = "conv2d";
        let [n, c_in, h, width] = dims::<4>(op, x)
            .map_err(|_| Error::shape(op, format!("input must be [N, C_in, H, W], got {:?}", x.shape())))?;
        let [c_out, cin_g, kh, kw] = dims::<4>(op, w).map_err(|_| {
            Error::shape(op, format!("weight must be [C_out, C_in/groups, kH, kW], got {:?}", w.shape()))
        })?;
        if spec.stride.contains(&0) || spec.dilation == 0 || spec.groups == 0 {
            return Err(Error::shape(op, format!("stride, dilation and groups must be at least 1: {spec:?}")));
        }
        let g = spec.groups;
        if c_in % g != 0 || c_out % g != 0 {
            return Err(Error::shape(
                op,
                format!("groups = {g} must divide C_in = {c_in} and C_out = {c_out} (input {:?})", x.shape()),
            ));
        }
        if cin_g != c_in / g {
            return Err(Error::shape(
                op,
                format!(
                    "weight {:?} has {cin_g} input channels per group; input {:?} with groups = {g} needs {}",
                    w.shape(),
                    x.shape(),
                    c_in / g
                ),
            ));
        }
        if kh == 0 || kw == 0 || c_out == 0 || n == 0 || c_in == 0 {
            return Err(Error::shape(op, format!("empty input {:?} or weight {:?}", x.shape(), w.shape())));
        }
        let (Some(oh), Some(ow)) = (spec.output_size(0, h, kh), spec.output_size(1, width, kw)) else {
            return Err(Error::shape(
                op,
                format!(
                    "kernel {kh}x{kw} with dilation {} does not fit the input {h}x{width} padded by {:?}",
                    spec.dilation, spec.padding
                ),
            ));
        };
        if let Some(b) = bias {
            if b.shape() != [c_out] {
                return Err(Error::shape(op, format!("bias must be [{c_out}] (C_out), got {:?}", b.shape())));
            }
        }
        Ok(Geometry { n, c_in, h, w: width, c_out, kh, kw, oh, ow, spec })
    }

    fn path(&self) -> Path {
        let s = self.spec;
        let unit = s.stride == [1, 1] && s.padding == [0, 0];
        if self.kh == 1 && self.kw == 1 && unit && s.groups == 1 && pointwise::fits(self) {
            Path::Pointwise
        } else if depthwise::fits(self) {
            Path::Strips
        } else {
            Path::Direct
        }
    }

    /// Multiply-adds of the convolution, times 2: the FLOPs of the forward pass, and of each of
    /// the two gradients.
    pub fn flops(&self) -> u64 {
        2 * (self.n * self.c_out * self.oh * self.ow * (self.c_in / self.spec.groups) * self.kh * self.kw) as u64
    }

    fn x_shape(&self) -> [usize; 4] {
        [self.n, self.c_in, self.h, self.w]
    }

    fn w_shape(&self) -> [usize; 4] {
        [self.c_out, self.c_in / self.spec.groups, self.kh, self.kw]
    }

    fn y_shape(&self) -> [usize; 4] {
        [self.n, self.c_out, self.oh, self.ow]
    }

    /// How many taps a weight-gradient workgroup reduces together.
    fn taps(&self) -> usize {
        (self.kh * self.kw).min(MAX_TAPS)
    }

    /// Output positions per chunk and the number of chunks of a reduction that produces
    /// `groups_per_chunk` workgroups' worth of values.
    fn chunking(&self, groups_per_chunk: usize) -> (usize, usize) {
        let positions = self.n * self.oh * self.ow;
        let wanted = TARGET_WORKGROUPS.div_ceil(groups_per_chunk);
        let chunks = wanted.min(positions.div_ceil(MIN_CHUNK)).max(1);
        let chunk = positions.div_ceil(chunks);
        (chunk, positions.div_ceil(chunk))
    }

    fn params(&self, chunk: usize, chunks: usize, outputs: usize) -> Params {
        let g = self.spec.groups;
        Params {
            n: self.n as u32,
            c_in: self.c_in as u32,
            h: self.h as u32,
            w: self.w as u32,
            c_out: self.c_out as u32,
            oh: self.oh as u32,
            ow: self.ow as u32,
            cin_g: (self.c_in / g) as u32,
            cout_g: (self.c_out / g) as u32,
            stride_h: self.spec.stride[0] as u32,
            stride_w: self.spec.stride[1] as u32,
            pad_h: self.spec.padding[0] as u32,
            pad_w: self.spec.padding[1] as u32,
            dilation: self.spec.dilation as u32,
            chunk: chunk as u32,
            chunks: chunks as u32,
            outputs: outputs as u32,
            _pad: [0; 3],
        }
    }

    /// The pipeline constants: kernel size, then one more (`HAS_BIAS` or `TAPS`) where the
    /// entry point has it.
    fn constants(&self, extra: Option<(&'static str, usize)>) -> Vec<(&'static str, f64)> {
        let mut c = vec![("KH", self.kh as f64), ("KW", self.kw as f64)];
        c.extend(extra.map(|(k, v)| (k, v as f64)));
        c
    }
}

fn launch(
    gpu: &Gpu,
    entry: &'static str,
    constants: &[(&'static str, f64)],
    p: &Params,
    buffers: &[&GpuBuffer],
    wg: [u32; 3],
    flops: u64,
) {
    gpu.dispatch(Dispatch {
        shader: "conv",
        entry,
        constants,
        params: bytemuck::bytes_of(p),
        buffers,
        workgroups: wg,
        flops,
    });
}

/// What a kernel binds to its uniform array of a filter: a copy of the filter (read instead of
/// storage), or the device's spare of that size (not read; the filter stays in storage).
/// Lavapipe loads a storage value whose address it cannot prove equal across the SIMD lanes one
/// lane at a time; a uniform one it gathers in a few instructions.
pub(crate) enum UniformFilter {
    Copy(Tensor),
    Unused(Rc<GpuBuffer>),
}

impl UniformFilter {
    /// The copy of `w` for a uniform array of `values` floats when `wanted` and `w` fits in it.
    pub(crate) fn of(w: &Tensor, values: usize, wanted: bool) -> Result<UniformFilter> {
        if !wanted || w.numel() > values {
            return Ok(UniformFilter::Unused(w.gpu().uniform_spare(values as u64 * 4)));
        }
        let copy = Tensor::empty(w.gpu(), &[values])?;
        w.copy_into(&copy, 0)?;
        Ok(UniformFilter::Copy(copy))
    }

    pub(crate) fn buf(&self) -> &GpuBuffer {
        match self {
            UniformFilter::Copy(t) => t.buf(),
            UniformFilter::Unused(b) => b,
        }
    }

    /// The kernel's `UNIFORM_W` constant: 1 when it reads the copy.
    pub(crate) fn flag(&self) -> f64 {
        matches!(self, UniformFilter::Copy(_)) as u32 as f64
    }
}

/// out = the per-chunk partials [chunks, outputs] summed in chunk order (every fast path's
/// weight gradient ends with it).
pub(crate) fn sum_chunks(partial: &Tensor, out: &Tensor, chunks: usize) {
    let mut p = Params::zeroed();
    p.chunks = chunks as u32;
    p.outputs = out.numel() as u32;
    launch(out.gpu(), "sum_chunks", &[], &p, &[partial.buf(), out.buf()], grid_1d(out.numel()), 0);
}

/// y = conv2d(x, w) + bias, PyTorch's `F.conv2d`.
/// x: [N, C_in, H, W], w: [C_out, C_in/groups, kH, kW], bias: `[C_out]` -> y: [N, C_out, OH, OW]
/// with OH = floor((H + 2*padding - dilation*(kH-1) - 1) / stride) + 1 (OW alike).
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, spec: Conv2d) -> Result<Tensor> {
    let geo = Geometry::new(x, w, bias, spec)?;
    let gpu = x.gpu();
    // y: [N, C_out, OH, OW]
    let y = Tensor::empty(gpu, &geo.y_shape())?;
    match geo.path() {
        Path::Pointwise if bias.is_none() => pointwise::product(&geo, x, w, &y, false)?,
        Path::Strips if bias.is_none() && gpu.tuning().depthwise_strips => depthwise::forward(&geo, x, w, &y)?,
        _ => {
            let p = geo.params(0, 0, 0);
            // Without a bias the binding still needs a buffer; the shader does not read it.
            let b = bias.unwrap_or(w);
            let wg = grid_1d(y.numel());
            let c = geo.constants(Some(("HAS_BIAS", bias.is_some() as usize)));
            launch(gpu, "forward", &c, &p, &[x.buf(), w.buf(), b.buf(), y.buf()], wg, geo.flops());
        }
    }

    let mut inputs = vec![x, w];
    inputs.extend(bias);
    let (sx, sw, sb) = (x.clone(), w.clone(), bias.cloned());
    gpu.record(&inputs, &[&y], move |g| {
        let dy = &g[0];
        let dx = if sx.requires_grad() { Some(input_grad(&geo, dy, &sw)?) } else { None };
        let dw = if sw.requires_grad() { Some(weight_grad(&geo, dy, &sx)?) } else { None };
        let mut grads = vec![dx, dw];
        if let Some(b) = &sb {
            grads.push(if b.requires_grad() { Some(bias_grad(&geo, dy)?) } else { None });
        }
        Ok(grads)
    });
    Ok(y)
}

/// dx: [N, C_in, H, W] from dy: [N, C_out, OH, OW] and w.
fn input_grad(geo: &Geometry, dy: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dx = Tensor::empty(dy.gpu(), &geo.x_shape())?;
    match geo.path() {
        Path::Pointwise => pointwise::product(geo, dy, w, &dx, true)?,
        Path::Strips if depthwise::fits_input_grad(geo) && dy.gpu().tuning().depthwise_strips => {
            depthwise::input_grad(geo, dy, w, &dx)?
        }
        _ => {
            let p = geo.params(0, 0, 0);
            let wg = grid_1d(dx.numel());
            let c = geo.constants(None);
            launch(dy.gpu(), "input_backward", &c, &p, &[dy.buf(), w.buf(), dx.buf()], wg, geo.flops());
        }
    }
    Ok(dx)
}

/// dw: [C_out, C_in/groups, kH, kW] from dy and x.
fn weight_grad(geo: &Geometry, dy: &Tensor, x: &Tensor) -> Result<Tensor> {
    match geo.path() {
        Path::Pointwise => return pointwise::weight_grad(geo, dy, x),
        Path::Strips => return depthwise::weight_grad(geo, dy, x),
        Path::Direct => {}
    }
    let gpu = dy.gpu();
    let w_shape = geo.w_shape();
    let n_weights: usize = w_shape.iter().product();
    // One workgroup per (chunk, filter slice (o, c), block of taps).
    let slices = w_shape[0] * w_shape[1];
    let blocks = (geo.kh * geo.kw).div_ceil(geo.taps());
    let (chunk, chunks) = geo.chunking(slices * blocks);
    let p = geo.params(chunk, chunks, n_weights);
    let dw = Tensor::empty(gpu, &w_shape)?;
    let c = geo.constants(Some(("TAPS", geo.taps())));
    let wg = grid_groups(chunks * slices * blocks);
    if chunks == 1 {
        launch(gpu, "weight_backward", &c, &p, &[dy.buf(), x.buf(), dw.buf()], wg, geo.flops());
    } else {
        // partial: [chunks, C_out * C_in/groups * kH * kW]
        let partial = Tensor::empty(gpu, &[chunks, n_weights])?;
        launch(gpu, "weight_backward", &c, &p, &[dy.buf(), x.buf(), partial.buf()], wg, geo.flops());
        sum_chunks(&partial, &dw, chunks);
    }
    Ok(dw)
}

/// dbias: [C_out] from dy.
fn bias_grad(geo: &Geometry, dy: &Tensor) -> Result<Tensor> {
    let gpu = dy.gpu();
    let (chunk, chunks) = geo.chunking(geo.c_out);
    let p = geo.params(chunk, chunks, geo.c_out);
    let db = Tensor::empty(gpu, &[geo.c_out])?;
    let wg = grid_groups(chunks * geo.c_out);
    if chunks == 1 {
        launch(gpu, "bias_backward", &[], &p, &[dy.buf(), db.buf()], wg, 0);
    } else {
        // partial: [chunks, C_out]
        let partial = Tensor::empty(gpu, &[chunks, geo.c_out])?;
        launch(gpu, "bias_backward", &[], &p, &[dy.buf(), partial.buf()], wg, 0);
        sum_chunks(&partial, &db, chunks);
    }
    Ok(db)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/conv.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(
            Params,
            "conv",
            [
                n, c_in, h, w, c_out, oh, ow, cin_g, cout_g, stride_h, stride_w, pad_h, pad_w, dilation, chunk, chunks,
                outputs
            ]
        );
    }
}

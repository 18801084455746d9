//! Layout ops (`shaders/layout.wgsl`): concatenating and slicing channels (a DARTS cell's output
//! is the concat of its nodes; FactorizedReduce concatenates two halves), the channel shuffle
//! (ShuffleNet's; PC-DARTS mixes an edge's sampled and bypassed channels with it), and the
//! spatial window, a shifted and strided crop with zero fill (FactorizedReduce's shifted path,
//! the strided `none` op).

use bytemuck::{Pod, Zeroable};

use super::dims;
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, grid_planes, Dispatch};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CopyParams {
    n: u32,
    hw: u32,
    len: u32,
    src_c: u32,
    src_start: u32,
    dst_c: u32,
    dst_start: u32,
    _pad: u32,
}

/// dst[:, dst_start..dst_start + len] = src[:, src_start..src_start + len], both NCHW with the
/// same N, H, W (checked by the callers); not recorded.
fn copy_channels(src: &Tensor, src_start: usize, dst: &Tensor, dst_start: usize, len: usize) {
    let (s, d) = (src.shape(), dst.shape());
    let p = CopyParams {
        n: s[0] as u32,
        hw: (s[2] * s[3]) as u32,
        len: len as u32,
        src_c: s[1] as u32,
        src_start: src_start as u32,
        dst_c: d[1] as u32,
        dst_start: dst_start as u32,
        _pad: 0,
    };
    // One thread per value (or vec4) of a batch item's block (x, z), one row of them per item (y).
    let four = p.hw.is_multiple_of(4);
    let block = len * s[2] * s[3] / if four { 4 } else { 1 };
    src.gpu().dispatch(Dispatch {
        shader: "layout",
        entry: if four { "copy_channels4" } else { "copy_channels" },
        constants: &[],
        params: bytemuck::bytes_of(&p),
        buffers: &[src.buf(), dst.buf()],
        workgroups: {
            let [x, z, _] = grid_1d(block);
            [x, s[0] as u32, z]
        },
        flops: 0,
    });
}

/// Concatenation along channels: [N, Ci, H, W] for each input -> [N, sum Ci, H, W]. Each
/// input's gradient is its channel slice of dy.
pub fn concat_channels(xs: &[&Tensor]) -> Result<Tensor> {
    const OP: &str = "concat_channels";
    let first = xs.first().ok_or_else(|| Error::shape(OP, "no tensors to concatenate"))?;
    let [n, _, h, w] = dims::<4>(OP, first)?;
    let mut channels = Vec::with_capacity(xs.len());
    for x in xs {
        let [xn, xc, xh, xw] = dims::<4>(OP, x)?;
        if (xn, xh, xw) != (n, h, w) {
            return Err(Error::shape(
                OP,
                format!("{:?} and {:?} differ outside the channel axis", first.shape(), x.shape()),
            ));
        }
        channels.push(xc);
    }
    let total: usize = channels.iter().sum();
    let y = Tensor::empty(first.gpu(), &[n, total, h, w])?; // y: [N, sum Ci, H, W]
    let mut start = 0;
    for (x, &c) in xs.iter().zip(&channels) {
        copy_channels(x, 0, &y, start, c);
        start += c;
    }
    let needs: Vec<bool> = xs.iter().map(|x| x.requires_grad()).collect();
    first.gpu().record(xs, &[&y], move |g| {
        let mut grads = Vec::with_capacity(channels.len());
        let mut start = 0;
        for (&c, needed) in channels.iter().zip(needs) {
            grads.push(if needed {
                let dx = Tensor::empty(g[0].gpu(), &[n, c, h, w])?; // dx: [N, Ci, H, W]
                copy_channels(&g[0], start, &dx, 0, c);
                Some(dx)
            } else {
                None
            });
            start += c;
        }
        Ok(grads)
    });
    Ok(y)
}

/// Channels `start..start + len` of x: [N, C, H, W] -> [N, len, H, W]. The gradient is dy in
/// those channels and zero elsewhere.
pub fn slice_channels(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    let [n, c, h, w] = dims::<4>("slice_channels", x)?;
    if len == 0 || start + len > c {
        return Err(Error::shape(
            "slice_channels",
            format!("channels {start}..{} of {:?} (need 1 or more, within {c})", start + len, x.shape()),
        ));
    }
    let y = Tensor::empty(x.gpu(), &[n, len, h, w])?; // y: [N, len, H, W]
    copy_channels(x, start, &y, 0, len);
    x.gpu().record(&[x], &[&y], move |g| {
        let dx = Tensor::zeros(g[0].gpu(), &[n, c, h, w])?; // dx: [N, C, H, W]
        copy_channels(&g[0], 0, &dx, start, len);
        Ok(vec![Some(dx)])
    });
    Ok(y)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ShuffleParams {
    n: u32,
    c: u32,
    hw: u32,
    groups: u32,
}

/// y = x viewed as [N, groups, C/groups, H, W], axes 1 and 2 swapped, flattened back, i.e.
/// `y[n, j*groups + i] = x[n, i*(C/groups) + j]`; not recorded.
fn shuffle(x: &Tensor, groups: usize) -> Result<Tensor> {
    let [n, c, h, w] = dims::<4>("channel_shuffle", x)?;
    let p = ShuffleParams { n: n as u32, c: c as u32, hw: (h * w) as u32, groups: groups as u32 };
    let y = Tensor::empty(x.gpu(), &[n, c, h, w])?; // y: [N, C, H, W]
    x.gpu().dispatch(Dispatch {
        shader: "layout",
        entry: "channel_shuffle",
        constants: &[],
        params: bytemuck::bytes_of(&p),
        buffers: &[x.buf(), y.buf()],
        workgroups: grid_1d(y.numel()),
        flops: 0,
    });
    Ok(y)
}

/// The channel shuffle of ShuffleNet (PC-DARTS `channel_shuffle`): x [N, C, H, W] -> y of the
/// same shape with `y[n, j*groups + i] = x[n, i*(C/groups) + j]`, so that each run of `groups`
/// output channels takes one channel from every group. `groups` must divide C; 1 is a copy.
/// Backward: the inverse permutation, which is the shuffle with C/groups groups.
pub fn channel_shuffle(x: &Tensor, groups: usize) -> Result<Tensor> {
    let [_, c, _, _] = dims::<4>("channel_shuffle", x)?;
    if groups == 0 || !c.is_multiple_of(groups) {
        return Err(Error::shape(
            "channel_shuffle",
            format!("{groups} groups do not divide the {c} channels of {:?}", x.shape()),
        ));
    }
    let y = shuffle(x, groups)?;
    x.gpu().record(&[x], &[&y], move |g| Ok(vec![Some(shuffle(&g[0], c / groups)?)]));
    Ok(y)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct WindowParams {
    nc: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    off_h: i32,
    off_w: i32,
    stride: u32,
}

/// The spatial window `y[n,c,i,j] = x[n,c, off_h + i*stride, off_w + j*stride]`, zero where that
/// falls outside x: x [N, C, H, W] -> y [N, C, OH, OW] with (OH, OW) = `out_hw`. Offsets may be
/// negative. FactorizedReduce's shifted path on an H x W input is
/// `window(x, (1, 1), (H.div_ceil(2), W.div_ceil(2)), 2)`.
pub fn window(x: &Tensor, offset: (isize, isize), out_hw: (usize, usize), stride: usize) -> Result<Tensor> {
    let [n, c, h, w] = dims::<4>("window", x)?;
    let (oh, ow) = out_hw;
    if stride == 0 || oh == 0 || ow == 0 {
        return Err(Error::shape("window", format!("output {oh}x{ow} and stride {stride} must be at least 1")));
    }
    let fits = |v: isize| i32::try_from(v).is_ok();
    if !fits(offset.0) || !fits(offset.1) {
        return Err(Error::shape("window", format!("offset {offset:?} out of range")));
    }
    let p = WindowParams {
        nc: (n * c) as u32,
        h: h as u32,
        w: w as u32,
        oh: oh as u32,
        ow: ow as u32,
        off_h: offset.0 as i32,
        off_w: offset.1 as i32,
        stride: stride as u32,
    };
    let gpu = x.gpu();
    let y = Tensor::empty(gpu, &[n, c, oh, ow])?; // y: [N, C, OH, OW]
    gpu.dispatch(Dispatch {
        shader: "layout",
        entry: "window_forward",
        constants: &[],
        params: bytemuck::bytes_of(&p),
        buffers: &[x.buf(), y.buf()],
        workgroups: grid_planes(ow, oh, n * c),
        flops: 0,
    });
    gpu.record(&[x], &[&y], move |g| {
        // With stride s each input cell is read by at most one output: a plain gather.
        let dx = Tensor::empty(g[0].gpu(), &[n, c, h, w])?; // dx: [N, C, H, W]
        g[0].gpu().dispatch(Dispatch {
            shader: "layout",
            entry: "window_backward",
            constants: &[("STRIDE", stride as f64)],
            params: bytemuck::bytes_of(&p),
            buffers: &[g[0].buf(), dx.buf()],
            workgroups: grid_planes(w, h, n * c),
            flops: 0,
        });
        Ok(vec![Some(dx)])
    });
    Ok(y)
}

/// x shifted up by `dh` rows and left by `dw` columns, same size, zero fill at the bottom and
/// right: `y[n,c,i,j] = x[n,c,i+dh,j+dw]` (PyTorch's `pad(x, (0, dw, 0, dh))[:, :, dh:, dw:]`).
pub fn shift_crop(x: &Tensor, dh: usize, dw: usize) -> Result<Tensor> {
    let [_, _, h, w] = dims::<4>("shift_crop", x)?;
    window(x, (dh as isize, dw as isize), (h, w), 1)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform blocks here and in `shaders/layout.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(CopyParams, "layout", [n, hw, len, src_c, src_start, dst_c, dst_start]);
        params_layout_matches!(ShuffleParams, "layout", [n, c, hw, groups]);
        params_layout_matches!(WindowParams, "layout", [nc, h, w, oh, ow, off_h, off_w, stride]);
    }
}

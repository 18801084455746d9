//! Plain-loop f64 reference of 2-D convolution (PyTorch's conv2d: cross-correlation, zero
//! padding, stride, dilation, groups, optional bias; stride and padding per axis), forward and
//! backward.
#![allow(dead_code)]

use wgpu_nas::ops::conv::Conv2d;

/// Shapes of one convolution: x [N, C_in, H, W], w [C_out, C_in/groups, kH, kW].
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub x: [usize; 4],
    pub w: [usize; 4],
    pub spec: Conv2d,
}

impl ConvShape {
    /// y: [N, C_out, OH, OW]
    pub fn y(&self) -> [usize; 4] {
        let [n, _, h, w] = self.x;
        let [c_out, _, kh, kw] = self.w;
        let s = self.spec;
        let out =
            |a: usize, size: usize, k: usize| (size + 2 * s.padding[a] - s.dilation * (k - 1) - 1) / s.stride[a] + 1;
        [n, c_out, out(0, h, kh), out(1, w, kw)]
    }

    /// Calls `f(y_index, x_index, w_index)` for every product w * x that forms an output (padding
    /// taps skipped): the one loop nest both directions share.
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        let [n, c_in, h, w] = self.x;
        let [c_out, cin_g, kh, kw] = self.w;
        let [_, _, oh, ow] = self.y();
        let s = self.spec;
        let cout_g = c_out / s.groups;
        for b in 0..n {
            for o in 0..c_out {
                let group = o / cout_g;
                for i in 0..oh {
                    for j in 0..ow {
                        let yi = ((b * c_out + o) * oh + i) * ow + j;
                        for c in 0..cin_g {
                            let ci = group * cin_g + c;
                            for u in 0..kh {
                                let y = (i * s.stride[0] + u * s.dilation) as isize - s.padding[0] as isize;
                                if y < 0 || y >= h as isize {
                                    continue;
                                }
                                for v in 0..kw {
                                    let x = (j * s.stride[1] + v * s.dilation) as isize - s.padding[1] as isize;
                                    if x < 0 || x >= w as isize {
                                        continue;
                                    }
                                    let xi = ((b * c_in + ci) * h + y as usize) * w + x as usize;
                                    let wi = ((o * cin_g + c) * kh + u) * kw + v;
                                    f(yi, xi, wi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y[n, o, i, j] = bias[o] + sum_{c, u, v} w[o, c, u, v] * x[n, g*cin_g + c, i*sh - ph + u*d, j*sw - pw + v*d]
pub fn conv2d_forward(shape: &ConvShape, x: &[f64], w: &[f64], bias: Option<&[f64]>) -> Vec<f64> {
    let [n, c_out, oh, ow] = shape.y();
    let mut y = vec![0.0; n * c_out * oh * ow];
    if let Some(bias) = bias {
        for (k, v) in y.iter_mut().enumerate() {
            *v = bias[(k / (oh * ow)) % c_out];
        }
    }
    shape.for_each_tap(|yi, xi, wi| y[yi] += w[wi] * x[xi]);
    y
}

/// (dx [N, C_in, H, W], dw [C_out, C_in/groups, kH, kW], dbias [C_out]) from dy [N, C_out, OH, OW].
pub fn conv2d_backward(shape: &ConvShape, x: &[f64], w: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    shape.for_each_tap(|yi, xi, wi| {
        dx[xi] += dy[yi] * w[wi];
        dw[wi] += dy[yi] * x[xi];
    });
    let [_, c_out, oh, ow] = shape.y();
    let mut db = vec![0.0; c_out];
    for (k, g) in dy.iter().enumerate() {
        db[(k / (oh * ow)) % c_out] += g;
    }
    (dx, dw, db)
}

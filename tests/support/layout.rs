//! CPU reference of the layout family: plain loops in f64 over NCHW index tuples.
#![allow(dead_code)]

fn at([_, c, h, w]: [usize; 4], n: usize, ci: usize, y: usize, x: usize) -> usize {
    ((n * c + ci) * h + y) * w + x
}

/// xs[k]: [N, Ck, H, W] -> y: [N, sum Ck, H, W].
pub fn concat_channels(xs: &[(&[f64], [usize; 4])]) -> Vec<f64> {
    let [n, _, h, w] = xs[0].1;
    let mut y = Vec::new();
    for b in 0..n {
        for (x, shape) in xs {
            for c in 0..shape[1] {
                for i in 0..h {
                    for j in 0..w {
                        y.push(x[at(*shape, b, c, i, j)]);
                    }
                }
            }
        }
    }
    y
}

/// dy: [N, sum Ck, H, W] -> one dx per input, its channels of dy.
pub fn concat_channels_backward(dy: &[f64], shapes: &[[usize; 4]]) -> Vec<Vec<f64>> {
    let [n, _, h, w] = shapes[0];
    let total = [n, shapes.iter().map(|s| s[1]).sum(), h, w];
    let mut start = 0;
    let mut dxs = Vec::new();
    for shape in shapes {
        dxs.push(slice_channels(dy, total, start, shape[1]));
        start += shape[1];
    }
    dxs
}

/// x: [N, C, H, W] -> y: [N, len, H, W], channels start..start + len.
pub fn slice_channels(x: &[f64], shape: [usize; 4], start: usize, len: usize) -> Vec<f64> {
    let [n, _, h, w] = shape;
    let mut y = Vec::new();
    for b in 0..n {
        for c in start..start + len {
            for i in 0..h {
                for j in 0..w {
                    y.push(x[at(shape, b, c, i, j)]);
                }
            }
        }
    }
    y
}

/// dy: [N, len, H, W] -> dx: [N, C, H, W], zero outside channels start..start + len.
pub fn slice_channels_backward(dy: &[f64], shape: [usize; 4], start: usize, len: usize) -> Vec<f64> {
    let [n, c, h, w] = shape;
    let mut dx = vec![0.0; n * c * h * w];
    let dy_shape = [n, len, h, w];
    for b in 0..n {
        for k in 0..len {
            for i in 0..h {
                for j in 0..w {
                    dx[at(shape, b, start + k, i, j)] = dy[at(dy_shape, b, k, i, j)];
                }
            }
        }
    }
    dx
}

/// The input cell that output (i, j) of a window reads, if it is inside x.
fn source(shape: [usize; 4], (oh, ow): (isize, isize), s: usize, i: usize, j: usize) -> Option<(usize, usize)> {
    let y = oh + (i * s) as isize;
    let x = ow + (j * s) as isize;
    let inside = y >= 0 && x >= 0 && (y as usize) < shape[2] && (x as usize) < shape[3];
    inside.then_some((y as usize, x as usize))
}

/// x: [N, C, H, W] -> y: [N, C, OH, OW], y[n,c,i,j] = x[n,c, off_h + i*s, off_w + j*s] or 0.
pub fn window(x: &[f64], shape: [usize; 4], offset: (isize, isize), (oh, ow): (usize, usize), s: usize) -> Vec<f64> {
    let [n, c, _, _] = shape;
    let mut y = Vec::new();
    for b in 0..n {
        for ci in 0..c {
            for i in 0..oh {
                for j in 0..ow {
                    y.push(source(shape, offset, s, i, j).map_or(0.0, |(yy, xx)| x[at(shape, b, ci, yy, xx)]));
                }
            }
        }
    }
    y
}

/// dy: [N, C, OH, OW] -> dx: [N, C, H, W], each dy added to the cell its output read.
pub fn window_backward(
    dy: &[f64],
    shape: [usize; 4],
    offset: (isize, isize),
    (oh, ow): (usize, usize),
    s: usize,
) -> Vec<f64> {
    let [n, c, h, w] = shape;
    let mut dx = vec![0.0; n * c * h * w];
    let dy_shape = [n, c, oh, ow];
    for b in 0..n {
        for ci in 0..c {
            for i in 0..oh {
                for j in 0..ow {
                    if let Some((yy, xx)) = source(shape, offset, s, i, j) {
                        dx[at(shape, b, ci, yy, xx)] += dy[at(dy_shape, b, ci, i, j)];
                    }
                }
            }
        }
    }
    dx
}

/// x: [N, C, H, W] -> y of the same shape, y[n, j*groups + i] = x[n, i*(C/groups) + j].
pub fn channel_shuffle(x: &[f64], shape: [usize; 4], groups: usize) -> Vec<f64> {
    shuffle_map(x, shape, groups, false)
}

/// dy -> dx of the shuffle: dx[n, i*(C/groups) + j] = dy[n, j*groups + i].
pub fn channel_shuffle_backward(dy: &[f64], shape: [usize; 4], groups: usize) -> Vec<f64> {
    shuffle_map(dy, shape, groups, true)
}

/// Moves channel i*(C/groups) + j to j*groups + i, or back when `inverse`.
fn shuffle_map(x: &[f64], shape: [usize; 4], groups: usize, inverse: bool) -> Vec<f64> {
    let [n, c, h, w] = shape;
    let per = c / groups;
    let mut y = vec![0.0; x.len()];
    for b in 0..n {
        for i in 0..groups {
            for j in 0..per {
                let (from, to) = if inverse { (j * groups + i, i * per + j) } else { (i * per + j, j * groups + i) };
                for r in 0..h {
                    for s in 0..w {
                        y[at(shape, b, to, r, s)] = x[at(shape, b, from, r, s)];
                    }
                }
            }
        }
    }
    y
}

//! CPU reference of the pooling family: plain loops in f64, written the direct way (backward
//! passes scatter from each window, where the GPU gathers per input).
#![allow(dead_code)]

/// Output side of a pooling: floor((side + 2p - k) / s) + 1.
pub fn out_side(side: usize, k: usize, s: usize, p: usize) -> usize {
    (side + 2 * p - k) / s + 1
}

/// The in-bounds input cells (iy, ix) of window (oy, ox), in row-major window order.
fn window_cells((h, w): (usize, usize), (oy, ox): (usize, usize), k: usize, s: usize, p: usize) -> Vec<(usize, usize)> {
    let mut cells = Vec::new();
    for ky in 0..k {
        for kx in 0..k {
            let iy = (oy * s + ky) as isize - p as isize;
            let ix = (ox * s + kx) as isize - p as isize;
            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                cells.push((iy as usize, ix as usize));
            }
        }
    }
    cells
}

/// x: [N, C, H, W] -> y: [N, C, OH, OW] and, for each output, the flat index into x of its
/// window's first maximum (padding is -inf, so it never wins).
pub fn max_pool2d(x: &[f64], [n, c, h, w]: [usize; 4], k: usize, s: usize, p: usize) -> (Vec<f64>, Vec<usize>) {
    let (oh, ow) = (out_side(h, k, s, p), out_side(w, k, s, p));
    let mut y = Vec::with_capacity(n * c * oh * ow);
    let mut arg = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut at) = (f64::NEG_INFINITY, usize::MAX);
                for (iy, ix) in window_cells((h, w), (oy, ox), k, s, p) {
                    let i = (plane * h + iy) * w + ix;
                    if x[i] > best {
                        (best, at) = (x[i], i);
                    }
                }
                y.push(best);
                arg.push(at);
            }
        }
    }
    (y, arg)
}

/// dx: [N, C, H, W] from dy: [N, C, OH, OW]: each dy goes to its window's arg-max.
pub fn max_pool2d_backward(arg: &[usize], dy: &[f64], x_numel: usize) -> Vec<f64> {
    let mut dx = vec![0.0; x_numel];
    for (&i, &d) in arg.iter().zip(dy) {
        dx[i] += d;
    }
    dx
}

/// x: [N, C, H, W] -> y: [N, C, OH, OW], each window's mean over its in-bounds cells
/// (count_include_pad = False).
pub fn avg_pool2d(x: &[f64], [n, c, h, w]: [usize; 4], k: usize, s: usize, p: usize) -> Vec<f64> {
    let (oh, ow) = (out_side(h, k, s, p), out_side(w, k, s, p));
    let mut y = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let cells = window_cells((h, w), (oy, ox), k, s, p);
                let sum: f64 = cells.iter().map(|&(iy, ix)| x[(plane * h + iy) * w + ix]).sum();
                y.push(sum / cells.len() as f64);
            }
        }
    }
    y
}

/// dx: [N, C, H, W] from dy: [N, C, OH, OW]: each dy spread evenly over its window's cells.
pub fn avg_pool2d_backward(dy: &[f64], [n, c, h, w]: [usize; 4], k: usize, s: usize, p: usize) -> Vec<f64> {
    let (oh, ow) = (out_side(h, k, s, p), out_side(w, k, s, p));
    let mut dx = vec![0.0; n * c * h * w];
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let cells = window_cells((h, w), (oy, ox), k, s, p);
                let share = dy[(plane * oh + oy) * ow + ox] / cells.len() as f64;
                for (iy, ix) in cells {
                    dx[(plane * h + iy) * w + ix] += share;
                }
            }
        }
    }
    dx
}

/// x: [N, C, H, W] -> y: [N, C] (the GPU's [N, C, 1, 1]), the mean of each plane.
pub fn global_avg_pool(x: &[f64], [n, c, h, w]: [usize; 4]) -> Vec<f64> {
    x.chunks(h * w).take(n * c).map(|plane| plane.iter().sum::<f64>() / (h * w) as f64).collect()
}

/// dx: [N, C, H, W] = dy[n, c] / (H * W) over each plane.
pub fn global_avg_pool_backward(dy: &[f64], [n, c, h, w]: [usize; 4]) -> Vec<f64> {
    dy.iter().take(n * c).flat_map(|&d| std::iter::repeat_n(d / (h * w) as f64, h * w)).collect()
}

//! Plain-loop f64 reference of the dense layer: y = x @ w^T + b.
#![allow(dead_code)]

/// y: [N, out] from x: [N, in], w: [out, in], b: [out] (optional).
pub fn linear_forward(x: &[f64], w: &[f64], b: Option<&[f64]>, n: usize, fan_in: usize, fan_out: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * fan_out];
    for s in 0..n {
        for o in 0..fan_out {
            let mut acc = b.map_or(0.0, |b| b[o]);
            for i in 0..fan_in {
                acc += x[s * fan_in + i] * w[o * fan_in + i];
            }
            y[s * fan_out + o] = acc;
        }
    }
    y
}

/// (dx: [N, in], dw: [out, in], db: [out]) from dy: [N, out].
pub fn linear_backward(
    x: &[f64],
    w: &[f64],
    dy: &[f64],
    n: usize,
    fan_in: usize,
    fan_out: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; n * fan_in];
    let mut dw = vec![0.0; fan_out * fan_in];
    let mut db = vec![0.0; fan_out];
    for s in 0..n {
        for o in 0..fan_out {
            let g = dy[s * fan_out + o];
            db[o] += g;
            for i in 0..fan_in {
                dx[s * fan_in + i] += g * w[o * fan_in + i];
                dw[o * fan_in + i] += g * x[s * fan_in + i];
            }
        }
    }
    (dx, dw, db)
}

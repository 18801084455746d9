//! Plain-loop f64 reference of BatchNorm2d over x: [N, C, H, W].
#![allow(dead_code)]

/// Index of x[b, c, s] (s = y * W + x) in a row-major [N, C, H*W] array.
fn at(c: usize, hw: usize, channels: usize, b: usize, s: usize) -> usize {
    (b * channels + c) * hw + s
}

/// Per-channel (mean: [C], biased var: [C]) of x: [N, C, H, W] over (N, H, W); two passes.
pub fn batch_stats(x: &[f64], [n, c, h, w]: [usize; 4]) -> (Vec<f64>, Vec<f64>) {
    let hw = h * w;
    let count = (n * hw) as f64;
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for ch in 0..c {
        for b in 0..n {
            for s in 0..hw {
                mean[ch] += x[at(ch, hw, c, b, s)];
            }
        }
        mean[ch] /= count;
        for b in 0..n {
            for s in 0..hw {
                var[ch] += (x[at(ch, hw, c, b, s)] - mean[ch]).powi(2);
            }
        }
        var[ch] /= count;
    }
    (mean, var)
}

/// y: [N, C, H, W] = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]; `affine` is
/// (gamma, beta), or None for gamma = 1, beta = 0.
pub fn batch_norm_forward(
    x: &[f64],
    shape: [usize; 4],
    mean: &[f64],
    var: &[f64],
    affine: Option<(&[f64], &[f64])>,
    eps: f64,
) -> Vec<f64> {
    let [n, c, h, w] = shape;
    let hw = h * w;
    let mut y = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            let (gamma, beta) = affine.map_or((1.0, 0.0), |(g, bt)| (g[ch], bt[ch]));
            for s in 0..hw {
                let i = at(ch, hw, c, b, s);
                y[i] = (x[i] - mean[ch]) / (var[ch] + eps).sqrt() * gamma + beta;
            }
        }
    }
    y
}

/// Running statistics after one update, in place: r = (1 - momentum) * r + momentum * stat,
/// with the unbiased variance (count / (count - 1)) for running_var; count = N * H * W.
pub fn update_running(
    running_mean: &mut [f64],
    running_var: &mut [f64],
    mean: &[f64],
    var: &[f64],
    count: usize,
    momentum: f64,
) {
    let unbias = count as f64 / (count as f64 - 1.0);
    for ch in 0..mean.len() {
        running_mean[ch] = (1.0 - momentum) * running_mean[ch] + momentum * mean[ch];
        running_var[ch] = (1.0 - momentum) * running_var[ch] + momentum * var[ch] * unbias;
    }
}

/// (dx: [N, C, H, W], dgamma: [C], dbeta: [C]) from dy, with `(mean, var)` the statistics the
/// forward normalised with. Training: the statistics are functions of x, so
/// dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat)) per channel;
/// eval: they are constants and dx = dy * gamma / sqrt(var + eps).
pub fn batch_norm_backward(
    x: &[f64],
    dy: &[f64],
    shape: [usize; 4],
    (mean, var): (&[f64], &[f64]),
    gamma: Option<&[f64]>,
    eps: f64,
    training: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let [n, c, h, w] = shape;
    let hw = h * w;
    let count = (n * hw) as f64;
    let mut dx = vec![0.0; x.len()];
    let mut dgamma = vec![0.0; c];
    let mut dbeta = vec![0.0; c];
    for ch in 0..c {
        let inv_std = 1.0 / (var[ch] + eps).sqrt();
        let xhat = |i: usize| (x[i] - mean[ch]) * inv_std;
        for b in 0..n {
            for s in 0..hw {
                let i = at(ch, hw, c, b, s);
                dgamma[ch] += dy[i] * xhat(i);
                dbeta[ch] += dy[i];
            }
        }
        let scale = gamma.map_or(1.0, |g| g[ch]) * inv_std;
        for b in 0..n {
            for s in 0..hw {
                let i = at(ch, hw, c, b, s);
                dx[i] = if training {
                    scale * (dy[i] - dbeta[ch] / count - xhat(i) * dgamma[ch] / count)
                } else {
                    scale * dy[i]
                };
            }
        }
    }
    (dx, dgamma, dbeta)
}

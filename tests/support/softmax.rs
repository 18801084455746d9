//! Plain-loop f64 CPU references of the softmax family (over the last axis of x seen as
//! [rows, k]) and of the DARTS weighted sum. One forward/backward pair per op.
#![allow(dead_code)]

/// y: [rows, k] = softmax(x) per row, with the row max subtracted.
pub fn softmax(x: &[f64], k: usize) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(k) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
        y.extend(row.iter().map(|v| (v - m).exp() / s));
    }
    y
}

/// dx: [rows, k] = y * (dy - sum(dy * y)) per row.
pub fn softmax_backward(y: &[f64], dy: &[f64], k: usize) -> Vec<f64> {
    let mut dx = Vec::with_capacity(y.len());
    for (yr, dyr) in y.chunks(k).zip(dy.chunks(k)) {
        let dot: f64 = yr.iter().zip(dyr).map(|(a, b)| a * b).sum();
        dx.extend(yr.iter().zip(dyr).map(|(y, dy)| y * (dy - dot)));
    }
    dx
}

/// y: [rows, k] = x - logsumexp(x) per row.
pub fn log_softmax(x: &[f64], k: usize) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(k) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        y.extend(row.iter().map(|v| v - lse));
    }
    y
}

/// dx: [rows, k] = dy - softmax(x) * sum(dy) per row.
pub fn log_softmax_backward(x: &[f64], dy: &[f64], k: usize) -> Vec<f64> {
    let p = softmax(x, k);
    let mut dx = Vec::with_capacity(x.len());
    for (pr, dyr) in p.chunks(k).zip(dy.chunks(k)) {
        let total: f64 = dyr.iter().sum();
        dx.extend(pr.iter().zip(dyr).map(|(p, dy)| dy - p * total));
    }
    dx
}

/// loss = mean_n (logsumexp(logits[n]) - logits[n, labels[n]]); logits [n, k], labels [n].
pub fn cross_entropy(logits: &[f64], labels: &[u32], k: usize) -> f64 {
    let logp = log_softmax(logits, k);
    let n = labels.len();
    (0..n).map(|r| -logp[r * k + labels[r] as usize]).sum::<f64>() / n as f64
}

/// dlogits: [n, k] = upstream * (softmax(logits) - onehot(labels)) / n.
pub fn cross_entropy_backward(logits: &[f64], labels: &[u32], k: usize, upstream: f64) -> Vec<f64> {
    let n = labels.len();
    let mut d = softmax(logits, k);
    for r in 0..n {
        d[r * k + labels[r] as usize] -= 1.0;
    }
    d.iter().map(|v| upstream * v / n as f64).collect()
}

/// h: [rows] = -sum_j p_j ln p_j per row, p = softmax(x).
pub fn entropy(x: &[f64], k: usize) -> Vec<f64> {
    let logp = log_softmax(x, k);
    logp.chunks(k).map(|row| -row.iter().map(|l| l.exp() * l).sum::<f64>()).collect()
}

/// dx: [rows, k] = -dh[r] * p_j * (ln p_j + h[r]).
pub fn entropy_backward(x: &[f64], dh: &[f64], k: usize) -> Vec<f64> {
    let logp = log_softmax(x, k);
    let h = entropy(x, k);
    logp.iter().enumerate().map(|(i, l)| -dh[i / k] * l.exp() * (l + h[i / k])).collect()
}

/// Fraction of rows whose argmax (ties to the lowest index) equals the label; logits [n, k].
pub fn accuracy(logits: &[f64], labels: &[u32], k: usize) -> f64 {
    let mut correct = 0;
    for (row, &label) in logits.chunks(k).zip(labels) {
        let mut best = 0;
        for j in 1..k {
            if row[j] > row[best] {
                best = j;
            }
        }
        if best == label as usize {
            correct += 1;
        }
    }
    correct as f64 / labels.len() as f64
}

/// out = sum_t w[idx_t] * y_t; every y_t of the same length.
pub fn weighted_sum(w: &[f64], terms: &[(usize, Vec<f64>)]) -> Vec<f64> {
    let mut out = vec![0.0; terms[0].1.len()];
    for (i, y) in terms {
        for (o, v) in out.iter_mut().zip(y) {
            *o += w[*i] * v;
        }
    }
    out
}

/// (dw: w's length, zero except dw[idx_t] += <dout, y_t>; dy_t = w[idx_t] * dout).
pub fn weighted_sum_backward(w: &[f64], terms: &[(usize, Vec<f64>)], dout: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut dw = vec![0.0; w.len()];
    let mut dys = Vec::with_capacity(terms.len());
    for (i, y) in terms {
        dw[*i] += y.iter().zip(dout).map(|(a, b)| a * b).sum::<f64>();
        dys.push(dout.iter().map(|d| w[*i] * d).collect());
    }
    (dw, dys)
}

/// GDAS's edge: out = h[row + k] * y + sum_{i != k} h[row + i] (y = None: the `none` op, zero),
/// over `n` elements; `row` = e * K, `k_total` = K.
pub fn hard_select(h: &[f64], row: usize, k: usize, k_total: usize, y: Option<&[f64]>, n: usize) -> Vec<f64> {
    let rest: f64 = (0..k_total).filter(|&i| i != k).map(|i| h[row + i]).sum();
    (0..n).map(|j| rest + y.map_or(0.0, |y| h[row + k] * y[j])).collect()
}

/// (dh: h's length, zero outside the row, dh[row + k] = <dout, y>, dh[row + i != k] = sum(dout);
/// dy = h[row + k] * dout).
pub fn hard_select_backward(
    h: &[f64],
    row: usize,
    k: usize,
    k_total: usize,
    y: Option<&[f64]>,
    dout: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let mut dh = vec![0.0; h.len()];
    let total: f64 = dout.iter().sum();
    for i in 0..k_total {
        dh[row + i] = if i == k { y.map_or(0.0, |y| y.iter().zip(dout).map(|(a, b)| a * b).sum()) } else { total };
    }
    (dh, dout.iter().map(|d| h[row + k] * d).collect())
}

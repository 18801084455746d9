//! Plain-loop f64 reference of one torch.nn.LSTMCell step, gate order i, f, g, o.
#![allow(dead_code)]

/// Sizes of one cell step.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub n: usize,
    pub fan_in: usize,
    pub hidden: usize,
}

/// Inputs and parameters, row-major: x [N, in], h0 c0 [N, H], w_ih [4H, in], w_hh [4H, H],
/// b_ih b_hh [4H].
pub struct Cell<'a> {
    pub x: &'a [f64],
    pub h0: &'a [f64],
    pub c0: &'a [f64],
    pub w_ih: &'a [f64],
    pub w_hh: &'a [f64],
    pub b_ih: Option<&'a [f64]>,
    pub b_hh: Option<&'a [f64]>,
}

/// Gradients of every input and parameter (db_ih = db_hh = d(gates) summed over N).
pub struct CellGrads {
    pub x: Vec<f64>,
    pub h0: Vec<f64>,
    pub c0: Vec<f64>,
    pub w_ih: Vec<f64>,
    pub w_hh: Vec<f64>,
    pub b_ih: Vec<f64>,
    pub b_hh: Vec<f64>,
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// Pre-activation gates [N, 4H] = x @ w_ih^T + b_ih + h0 @ w_hh^T + b_hh.
fn gates(c: &Cell, d: Dims) -> Vec<f64> {
    let rows = 4 * d.hidden;
    let mut z = vec![0.0; d.n * rows];
    for s in 0..d.n {
        for r in 0..rows {
            let mut acc = c.b_ih.map_or(0.0, |b| b[r]) + c.b_hh.map_or(0.0, |b| b[r]);
            for i in 0..d.fan_in {
                acc += c.x[s * d.fan_in + i] * c.w_ih[r * d.fan_in + i];
            }
            for j in 0..d.hidden {
                acc += c.h0[s * d.hidden + j] * c.w_hh[r * d.hidden + j];
            }
            z[s * rows + r] = acc;
        }
    }
    z
}

/// Activated gates (i, f, g, o) of element (s, j).
fn activated(z: &[f64], d: Dims, s: usize, j: usize) -> [f64; 4] {
    let at = |q: usize| z[(s * 4 + q) * d.hidden + j];
    [sigmoid(at(0)), sigmoid(at(1)), at(2).tanh(), sigmoid(at(3))]
}

/// (h1, c1), each [N, H].
pub fn lstm_forward(c: &Cell, d: Dims) -> (Vec<f64>, Vec<f64>) {
    let z = gates(c, d);
    let mut h1 = vec![0.0; d.n * d.hidden];
    let mut c1 = vec![0.0; d.n * d.hidden];
    for s in 0..d.n {
        for j in 0..d.hidden {
            let [i, f, g, o] = activated(&z, d, s, j);
            let e = s * d.hidden + j;
            c1[e] = f * c.c0[e] + i * g;
            h1[e] = o * c1[e].tanh();
        }
    }
    (h1, c1)
}

/// Gradients of L = <h1, dh1> + <c1, dc1>.
pub fn lstm_backward(c: &Cell, d: Dims, dh1: &[f64], dc1: &[f64]) -> CellGrads {
    let z = gates(c, d);
    let rows = 4 * d.hidden;
    // dz: [N, 4H], gradient w.r.t. the pre-activation gates.
    let mut dz = vec![0.0; d.n * rows];
    let mut dc0 = vec![0.0; d.n * d.hidden];
    for s in 0..d.n {
        for j in 0..d.hidden {
            let [i, f, g, o] = activated(&z, d, s, j);
            let e = s * d.hidden + j;
            let c1 = f * c.c0[e] + i * g;
            let tc = c1.tanh();
            let dc = dc1[e] + dh1[e] * o * (1.0 - tc * tc);
            dz[s * rows + j] = dc * g * i * (1.0 - i);
            dz[s * rows + d.hidden + j] = dc * c.c0[e] * f * (1.0 - f);
            dz[s * rows + 2 * d.hidden + j] = dc * i * (1.0 - g * g);
            dz[s * rows + 3 * d.hidden + j] = dh1[e] * tc * o * (1.0 - o);
            dc0[e] = dc * f;
        }
    }
    let mut grads = CellGrads {
        x: vec![0.0; d.n * d.fan_in],
        h0: vec![0.0; d.n * d.hidden],
        c0: dc0,
        w_ih: vec![0.0; rows * d.fan_in],
        w_hh: vec![0.0; rows * d.hidden],
        b_ih: vec![0.0; rows],
        b_hh: vec![0.0; rows],
    };
    for s in 0..d.n {
        for r in 0..rows {
            let g = dz[s * rows + r];
            grads.b_ih[r] += g;
            grads.b_hh[r] += g;
            for i in 0..d.fan_in {
                grads.x[s * d.fan_in + i] += g * c.w_ih[r * d.fan_in + i];
                grads.w_ih[r * d.fan_in + i] += g * c.x[s * d.fan_in + i];
            }
            for j in 0..d.hidden {
                grads.h0[s * d.hidden + j] += g * c.w_hh[r * d.hidden + j];
                grads.w_hh[r * d.hidden + j] += g * c.h0[s * d.hidden + j];
            }
        }
    }
    grads
}

//! One LSTM cell step (`shaders/lstm.wgsl`), torch.nn.LSTMCell semantics, gate order i, f, g, o:
//! the ENAS controller's recurrence. The gates are two `linear`s and an `add` (recorded by
//! those ops); the pointwise rest is one fused kernel with a fused backward.

use bytemuck::{Pod, Zeroable};

use super::{dims, elementwise, linear::linear, same_shape};
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch};
use crate::tensor::Tensor;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    hidden: u32,
    _pad: [u32; 2],
}

fn launch(entry: &'static str, [n, hidden]: [usize; 2], bufs: &[&Tensor]) {
    let gpu = bufs[0].gpu();
    let buffers: Vec<_> = bufs.iter().map(|t| t.buf()).collect();
    let params = Params { n: n as u32, hidden: hidden as u32, _pad: [0; 2] };
    gpu.dispatch(Dispatch {
        shader: "lstm",
        entry,
        constants: &[],
        params: bytemuck::bytes_of(&params),
        buffers: &buffers,
        workgroups: grid_1d(n * hidden),
        flops: 0,
    });
}

/// (h1, c1) = LSTMCell(x, (h0, c0)).
/// x: [N, in], h0, c0: [N, H], w_ih: [4H, in], w_hh: [4H, H], b_ih, b_hh: `[4H]` -> h1, c1: [N, H].
/// gates = x @ w_ih^T + b_ih + h0 @ w_hh^T + b_hh, split i, f, g, o; i, f, o = sigmoid,
/// g = tanh; c1 = f*c0 + i*g; h1 = o*tanh(c1).
pub fn lstm_cell(
    x: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    w_ih: &Tensor,
    w_hh: &Tensor,
    b_ih: Option<&Tensor>,
    b_hh: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "lstm_cell";
    let [batch, _] = dims::<2>(OP, x)?;
    let [h_batch, hidden] = dims::<2>(OP, h0)?;
    same_shape(OP, h0, c0)?;
    if h_batch != batch {
        return Err(Error::shape(OP, format!("x {:?} and h0 {:?} differ in batch size", x.shape(), h0.shape())));
    }
    // linear() checks the inner dimensions; the gate count is the cell's own convention.
    for (name, w) in [("weight_ih", w_ih), ("weight_hh", w_hh)] {
        if w.shape().first() != Some(&(4 * hidden)) {
            return Err(Error::shape(OP, format!("{name} {:?} should have 4*H = {} rows", w.shape(), 4 * hidden)));
        }
    }

    // gates: [N, 4H], order i, f, g, o
    let gates = elementwise::add(&linear(x, w_ih, b_ih)?, &linear(h0, w_hh, b_hh)?)?;
    let h1 = Tensor::empty(x.gpu(), &[batch, hidden])?; // h1: [N, H]
    let c1 = Tensor::empty(x.gpu(), &[batch, hidden])?; // c1: [N, H]
    launch("cell_forward", [batch, hidden], &[&gates, c0, &h1, &c1]);

    let (sg, sc0, sc1) = (gates.clone(), c0.clone(), c1.clone());
    x.gpu().record(&[&gates, c0], &[&h1, &c1], move |g| {
        let dgates = Tensor::empty(sg.gpu(), sg.shape())?; // dgates: [N, 4H]
        let dc0 = Tensor::empty(sg.gpu(), sc0.shape())?; // dc0: [N, H]
        launch("cell_backward", [batch, hidden], &[&sg, &sc0, &sc1, &g[0], &g[1], &dgates, &dc0]);
        let dgates = sg.requires_grad().then_some(dgates);
        let dc0 = sc0.requires_grad().then_some(dc0);
        Ok(vec![dgates, dc0])
    });
    Ok((h1, c1))
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/lstm.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "lstm", [n, hidden]);
    }
}

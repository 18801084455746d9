//! One LSTM cell step: GPU h1, c1 and all seven gradients against a plain f64 LSTMCell, with the
//! upstream gradient on h1 only, on c1 only and on both; and against finite differences.

#[path = "support/lstm.rs"]
mod reference;
mod support;

use reference::{Cell, Dims};
use support::*;
use wgpu_nas::ops::{elementwise, lstm::lstm_cell};
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor};

/// Which outputs get an upstream gradient (the other one gets none: zero on the tape).
#[derive(Clone, Copy, Debug)]
enum Upstream {
    H1,
    C1,
    Both,
}

/// f32 sums of up to in + H + 2 gate terms through smooth activations, then gradient sums over
/// at most 4H terms: 2e-5 absolute covers the rounding; a wrong gate or term is off by ~1e-2.
const ATOL: f64 = 2e-5;
const RTOL: f64 = 1e-4;

fn check_case(gpu: &Gpu, rng: &mut Rng, d: Dims, with_bias: bool, upstream: Upstream) {
    let (n, h, fan_in) = (d.n, d.hidden, d.fan_in);
    let x = rand_vec(rng, n * fan_in);
    let h0 = rand_vec(rng, n * h);
    let c0 = rand_vec(rng, n * h);
    let w_ih = rand_vec(rng, 4 * h * fan_in);
    let w_hh = rand_vec(rng, 4 * h * h);
    let b_ih = rand_vec(rng, 4 * h);
    let b_hh = rand_vec(rng, 4 * h);
    let dh1 = rand_vec(rng, n * h);
    let dc1 = rand_vec(rng, n * h);

    let t = |shape: &[usize], v: &[f32]| Tensor::param(gpu, shape, v).unwrap();
    let (xt, h0t, c0t) = (t(&[n, fan_in], &x), t(&[n, h], &h0), t(&[n, h], &c0)); // x: [N, in], h0 c0: [N, H]
    let (w_iht, w_hht) = (t(&[4 * h, fan_in], &w_ih), t(&[4 * h, h], &w_hh)); // [4H, in], [4H, H]
    let (b_iht, b_hht) = (t(&[4 * h], &b_ih), t(&[4 * h], &b_hh)); // [4H]
    let (bi, bh) = if with_bias { (Some(&b_iht), Some(&b_hht)) } else { (None, None) };
    let (h1, c1) = lstm_cell(&xt, &h0t, &c0t, &w_iht, &w_hht, bi, bh).unwrap();
    let up = |v: &[f32]| Tensor::from_slice(gpu, &[n, h], v).unwrap();
    let seeds = match upstream {
        Upstream::H1 => vec![(&h1, up(&dh1))],
        Upstream::C1 => vec![(&c1, up(&dc1))],
        Upstream::Both => vec![(&h1, up(&dh1)), (&c1, up(&dc1))],
    };
    let g = gpu.backward_from(&seeds).unwrap();

    let f = to_f64;
    let (b_ih64, b_hh64) = (f(&b_ih), f(&b_hh));
    let (x64, h064, c064, w_ih64, w_hh64) = (f(&x), f(&h0), f(&c0), f(&w_ih), f(&w_hh));
    let cell = Cell {
        x: &x64,
        h0: &h064,
        c0: &c064,
        w_ih: &w_ih64,
        w_hh: &w_hh64,
        b_ih: with_bias.then_some(b_ih64.as_slice()),
        b_hh: with_bias.then_some(b_hh64.as_slice()),
    };
    let zeros = vec![0.0; n * h];
    let (dh1, dc1) = match upstream {
        Upstream::H1 => (f(&dh1), zeros),
        Upstream::C1 => (zeros, f(&dc1)),
        Upstream::Both => (f(&dh1), f(&dc1)),
    };
    let (want_h1, want_c1) = reference::lstm_forward(&cell, d);
    let want = reference::lstm_backward(&cell, d, &dh1, &dc1);

    let case = format!("{d:?} bias {with_bias} upstream {upstream:?}");
    let check = |name: &str, got: &Tensor, want: &[f64]| {
        assert_close(&format!("{case}: {name}"), &got.to_vec().unwrap(), want, ATOL, RTOL);
    };
    let grad = |t: &Tensor| g.get(t).unwrap_or_else(|| panic!("{case}: a gradient for every input")).clone();
    check("h1", &h1, &want_h1);
    check("c1", &c1, &want_c1);
    check("dx", &grad(&xt), &want.x);
    check("dh0", &grad(&h0t), &want.h0);
    check("dc0", &grad(&c0t), &want.c0);
    check("dw_ih", &grad(&w_iht), &want.w_ih);
    check("dw_hh", &grad(&w_hht), &want.w_hh);
    if with_bias {
        check("db_ih", &grad(&b_iht), &want.b_ih);
        check("db_hh", &grad(&b_hht), &want.b_hh);
    } else {
        assert!(g.get(&b_iht).is_none() && g.get(&b_hht).is_none(), "{case}: unused biases get no gradient");
    }
}

#[test]
fn lstm_cell_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    for case in 0..9 {
        let d = Dims { n: 1 + rng.below(3), fan_in: 4 + rng.below(7), hidden: 3 + rng.below(7) };
        let upstream = [Upstream::H1, Upstream::C1, Upstream::Both][case % 3];
        check_case(&gpu, &mut rng, d, case < 6, upstream);
    }
    // The ENAS controller's size: 4H = 256 gate rows, the gradient sums cross several tiles.
    check_case(&gpu, &mut rng, Dims { n: 1, fan_in: 64, hidden: 64 }, true, Upstream::Both);
}

#[test]
fn lstm_cell_matches_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(22);
    let (n, fan_in, h) = (2, 3, 2);
    let shapes =
        [vec![n, fan_in], vec![n, h], vec![n, h], vec![4 * h, fan_in], vec![4 * h, h], vec![4 * h], vec![4 * h]];
    let inputs: Vec<_> = shapes.into_iter().map(|s| (s.clone(), rand_vec(&mut rng, s.iter().product()))).collect();
    // h1 + c1 puts an upstream gradient on both outputs.
    let f = |t: &[Tensor]| {
        let (h1, c1) = lstm_cell(&t[0], &t[1], &t[2], &t[3], &t[4], Some(&t[5]), Some(&t[6])).unwrap();
        elementwise::add(&h1, &c1).unwrap()
    };
    check_finite_differences(&gpu, &inputs, f, 1e-3, 6, 1e-2, 23);
}

#[test]
fn lstm_cell_rejects_bad_shapes() {
    let gpu = gpu();
    let z = |s: &[usize]| Tensor::zeros(&gpu, s).unwrap();
    let (x, h0, c0) = (z(&[2, 5]), z(&[2, 3]), z(&[2, 3]));
    let (w_ih, w_hh) = (z(&[12, 5]), z(&[12, 3]));
    assert!(lstm_cell(&x, &h0, &c0, &w_ih, &w_hh, None, None).is_ok());
    assert!(lstm_cell(&x, &h0, &z(&[2, 4]), &w_ih, &w_hh, None, None).is_err(), "c0 differs from h0");
    assert!(lstm_cell(&z(&[3, 5]), &h0, &c0, &w_ih, &w_hh, None, None).is_err(), "batch differs");
    assert!(lstm_cell(&x, &h0, &c0, &z(&[8, 5]), &w_hh, None, None).is_err(), "weight_ih is not [4H, in]");
    assert!(lstm_cell(&x, &h0, &c0, &w_ih, &z(&[12, 4]), None, None).is_err(), "weight_hh is not [4H, H]");
    assert!(lstm_cell(&x, &h0, &c0, &w_ih, &w_hh, Some(&z(&[11])), None).is_err(), "bias is not [4H]");
}

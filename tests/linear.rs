//! The dense layer: GPU forward and every gradient against plain f64 loops on ragged shapes
//! (around the 16x16 tiles of the matmul), and against finite differences.

#[path = "support/linear.rs"]
mod reference;
mod support;

use support::*;
use wgpu_nas::ops::linear::linear;
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor};

/// Absolute tolerance for f32 sums of `len` products of values in [-1, 1]: the rounding error
/// grows at most about linearly in the length; a wrong or missing term is off by ~0.1 or more.
fn atol(len: usize) -> f64 {
    1e-6 * len.max(1) as f64
}

/// Runs one case on the GPU and compares y, dx, dw, db with the CPU.
fn check_case(gpu: &Gpu, rng: &mut Rng, n: usize, fan_in: usize, fan_out: usize, with_bias: bool) {
    let x = rand_vec(rng, n * fan_in);
    let w = rand_vec(rng, fan_out * fan_in);
    let b = rand_vec(rng, fan_out);
    let dy = rand_vec(rng, n * fan_out);
    let xt = Tensor::param(gpu, &[n, fan_in], &x).unwrap(); // x: [N, in]
    let wt = Tensor::param(gpu, &[fan_out, fan_in], &w).unwrap(); // w: [out, in]
    let bt = Tensor::param(gpu, &[fan_out], &b).unwrap(); // b: [out]
    let y = linear(&xt, &wt, with_bias.then_some(&bt)).unwrap();
    assert_eq!(y.shape(), [n, fan_out]);
    let g = gpu.backward_from(&[(&y, Tensor::from_slice(gpu, &[n, fan_out], &dy).unwrap())]).unwrap();

    let (x, w, b, dy) = (to_f64(&x), to_f64(&w), to_f64(&b), to_f64(&dy));
    let bias = with_bias.then_some(b.as_slice());
    let case = format!("N{n} in{fan_in} out{fan_out} bias {with_bias}");
    let want_y = reference::linear_forward(&x, &w, bias, n, fan_in, fan_out);
    let (dx, dw, db) = reference::linear_backward(&x, &w, &dy, n, fan_in, fan_out);
    assert_close(&format!("{case}: y"), &y.to_vec().unwrap(), &want_y, atol(fan_in + 1), 1e-5);
    assert_close(&format!("{case}: dx"), &g.get(&xt).unwrap().to_vec().unwrap(), &dx, atol(fan_out), 1e-5);
    assert_close(&format!("{case}: dw"), &g.get(&wt).unwrap().to_vec().unwrap(), &dw, atol(n), 1e-5);
    match g.get(&bt) {
        Some(got) => assert_close(&format!("{case}: db"), &got.to_vec().unwrap(), &db, atol(n), 1e-5),
        None => assert!(!with_bias, "{case}: no bias gradient"),
    }
}

#[test]
fn linear_matches_cpu_on_ragged_shapes() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    for &n in &[1usize, 3, 7] {
        for &fan_in in &[1usize, 5, 33, 257] {
            for &fan_out in &[1usize, 10, 17] {
                for with_bias in [true, false] {
                    check_case(&gpu, &mut rng, n, fan_in, fan_out, with_bias);
                }
            }
        }
    }
    // A batch past one tile: several row blocks forward, several K tiles in dw and db.
    check_case(&gpu, &mut rng, 40, 20, 18, true);
}

#[test]
fn linear_matches_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    let inputs = [
        (vec![2, 3], rand_vec(&mut rng, 6)),  // x: [N, in]
        (vec![4, 3], rand_vec(&mut rng, 12)), // w: [out, in]
        (vec![4], rand_vec(&mut rng, 4)),     // b: [out]
    ];
    // The layer is linear in each input, so a large step is exact up to f32 rounding.
    check_finite_differences(&gpu, &inputs, |t| linear(&t[0], &t[1], Some(&t[2])).unwrap(), 1e-2, 12, 1e-3, 13);
}

#[test]
fn linear_skips_gradients_nobody_needs_and_rejects_bad_shapes() {
    let gpu = gpu();
    let mut rng = Rng::new(14);
    let x = Tensor::from_slice(&gpu, &[3, 5], &rand_vec(&mut rng, 15)).unwrap(); // no gradient wanted
    let w = Tensor::param(&gpu, &[2, 5], &rand_vec(&mut rng, 10)).unwrap();
    let y = linear(&x, &w, None).unwrap();
    let g = gpu.backward_from(&[(&y, Tensor::full(&gpu, &[3, 2], 1.0).unwrap())]).unwrap();
    assert!(g.get(&x).is_none(), "x does not require a gradient");
    assert!(g.get(&w).is_some());

    let bad_w = Tensor::zeros(&gpu, &[2, 4]).unwrap();
    assert!(linear(&x, &bad_w, None).is_err(), "in features differ");
    let bad_b = Tensor::zeros(&gpu, &[3]).unwrap();
    assert!(linear(&x, &w, Some(&bad_b)).is_err(), "bias length differs from out");
    let flat = Tensor::zeros(&gpu, &[15]).unwrap();
    assert!(linear(&flat, &w, None).is_err(), "x must be [N, in]");
    let labels = Tensor::from_u32(&gpu, &[3, 5], &[0; 15]).unwrap();
    assert!(linear(&labels, &w, None).is_err(), "x must be f32");
}

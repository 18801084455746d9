//! Pooling: GPU against plain f64 loops (forward and backward), and against finite differences.

#[path = "support/pool.rs"]
mod reference;
mod support;

use support::*;
use wgpu_nas::ops::pool;
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Result, Tensor};

/// Runs `op` on x with gradients and returns (y, dx) for upstream gradient dy.
fn forward_backward(
    gpu: &Gpu,
    op: impl Fn(&Tensor) -> Result<Tensor>,
    shape: [usize; 4],
    x: &[f32],
    dy: impl FnOnce(usize) -> Vec<f32>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let xt = Tensor::param(gpu, &shape, x).unwrap();
    let y = op(&xt).unwrap();
    let dy = dy(y.numel());
    let g = gpu.backward_from(&[(&y, Tensor::from_slice(gpu, y.shape(), &dy).unwrap())]).unwrap();
    (y.to_vec().unwrap(), g.get(&xt).expect("gradient of x").to_vec().unwrap(), dy)
}

/// (N, C, H, W): even, odd, non-square, single-cell and tiny planes; C not a multiple of anything.
// [2, 3, 6, 19]: rows of three 8-column strips, the last one cut short (the strip kernels).
// Rows of a multiple of 4 values (the strips' vec4 loads and stores): 8 (4 at stride 2), 12 (a
// strip of 8, then one of 4) and 16 (8 at stride 2).
const SHAPES: [[usize; 4]; 8] =
    [[1, 3, 8, 8], [2, 5, 7, 7], [3, 3, 5, 6], [2, 5, 1, 1], [1, 3, 2, 3], [2, 3, 6, 19], [2, 3, 5, 12], [1, 2, 4, 16]];

/// (kernel, stride, padding): DARTS's 3x3 pools at both strides, plus other windows.
const WINDOWS: [(usize, usize, usize); 4] = [(3, 1, 1), (3, 2, 1), (2, 2, 0), (1, 2, 0)];

/// Every (shape, window) pair that PyTorch accepts.
fn cases() -> impl Iterator<Item = ([usize; 4], (usize, usize, usize))> {
    SHAPES
        .into_iter()
        .flat_map(|s| WINDOWS.into_iter().map(move |win| (s, win)))
        .filter(|&([_, _, h, w], (k, _, p))| h + 2 * p >= k && w + 2 * p >= k)
}

#[test]
fn max_pool_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    for (shape, (k, s, p)) in cases() {
        let numel = shape.iter().product();
        // Three inputs: spread values, all negative (the zero padding must not win), and values
        // from {-1, 0, 1} (many ties: the first maximum in row-major window order wins).
        let inputs = [
            rand_vec(&mut rng, numel),
            rng.uniform_vec(numel, -2.0, -1.0),
            (0..numel).map(|_| rng.below(3) as f32 - 1.0).collect(),
        ];
        for x in inputs {
            let what = format!("max_pool2d {shape:?} k{k} s{s} p{p}");
            let (y, dx, dy) =
                forward_backward(&gpu, |t| pool::max_pool2d(t, k, s, p), shape, &x, |n| rand_vec(&mut rng, n));
            let (want_y, arg) = reference::max_pool2d(&to_f64(&x), shape, k, s, p);
            // The max copies an input value: exact.
            assert_close(&what, &y, &want_y, 0.0, 0.0);
            // A cell sums at most ceil(k/s)^2 <= 9 upstream values in f32.
            assert_close(
                &format!("d {what}"),
                &dx,
                &reference::max_pool2d_backward(&arg, &to_f64(&dy), numel),
                1e-6,
                1e-6,
            );
            // Without a gradient the arg-max is not saved; the values are the same.
            let y_eval = gpu.no_grad(|| pool::max_pool2d(&Tensor::from_slice(&gpu, &shape, &x).unwrap(), k, s, p));
            assert_eq!(y_eval.unwrap().to_vec().unwrap(), y, "{what}: no-grad forward");
        }
    }
}

#[test]
fn avg_pool_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    for (shape, (k, s, p)) in cases() {
        let x = rand_vec(&mut rng, shape.iter().product());
        let what = format!("avg_pool2d {shape:?} k{k} s{s} p{p}");
        let (y, dx, dy) =
            forward_backward(&gpu, |t| pool::avg_pool2d(t, k, s, p), shape, &x, |n| rand_vec(&mut rng, n));
        // Sums of at most 9 f32 terms of magnitude <= 1, then one division.
        assert_close(&what, &y, &reference::avg_pool2d(&to_f64(&x), shape, k, s, p), 1e-6, 1e-5);
        let want_dx = reference::avg_pool2d_backward(&to_f64(&dy), shape, k, s, p);
        assert_close(&format!("d {what}"), &dx, &want_dx, 1e-6, 1e-5);
    }
}

#[test]
fn global_avg_pool_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(13);
    // 9x9 = 81 cells: more than the 64 threads of a plane's workgroup.
    for shape in [[2, 4, 8, 8], [3, 5, 7, 7], [1, 3, 1, 1], [2, 3, 9, 9], [1, 7, 2, 3]] {
        let x = rand_vec(&mut rng, shape.iter().product());
        let (y, dx, dy) = forward_backward(&gpu, pool::global_avg_pool, shape, &x, |n| rand_vec(&mut rng, n));
        // A fixed-order sum of at most 81 f32 terms of magnitude <= 1.
        assert_close(
            &format!("global_avg_pool {shape:?}"),
            &y,
            &reference::global_avg_pool(&to_f64(&x), shape),
            1e-6,
            1e-5,
        );
        let want_dx = reference::global_avg_pool_backward(&to_f64(&dy), shape);
        assert_close(&format!("d global_avg_pool {shape:?}"), &dx, &want_dx, 1e-7, 1e-6);
    }
    // More planes than one grid row holds (65535 workgroups): the grid folds into y.
    let shape = [1, 70_000, 1, 2];
    let x = rand_vec(&mut rng, 140_000);
    let y = pool::global_avg_pool(&Tensor::from_slice(&gpu, &shape, &x).unwrap()).unwrap();
    assert_close(
        "global_avg_pool folded grid",
        &y.to_vec().unwrap(),
        &reference::global_avg_pool(&to_f64(&x), shape),
        1e-6,
        1e-5,
    );
}

#[test]
fn pools_match_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(14);
    // Distinct values 0.05 apart: no ties and no kink within eps of any point.
    let mut distinct: Vec<f32> = (0..40).map(|i| i as f32 * 0.05 - 1.0).collect();
    rng.shuffle(&mut distinct);
    for (k, s, p) in [(3, 1, 1), (3, 2, 1)] {
        let input = [(vec![2, 2, 5, 2], distinct.clone())];
        check_finite_differences(&gpu, &input, |t| pool::max_pool2d(&t[0], k, s, p).unwrap(), 1e-3, 40, 1e-2, 1);
        let input = [(vec![1, 2, 4, 5], rand_vec(&mut rng, 40))];
        check_finite_differences(&gpu, &input, |t| pool::avg_pool2d(&t[0], k, s, p).unwrap(), 1e-3, 40, 1e-2, 2);
    }
    let input = [(vec![2, 3, 2, 3], rand_vec(&mut rng, 36))];
    check_finite_differences(&gpu, &input, |t| pool::global_avg_pool(&t[0]).unwrap(), 1e-3, 36, 1e-2, 3);
}

#[test]
fn bad_pooling_arguments_are_errors() {
    let gpu = gpu();
    let x = Tensor::zeros(&gpu, &[1, 2, 4, 4]).unwrap();
    assert!(pool::max_pool2d(&x, 3, 1, 2).is_err(), "padding more than half the kernel");
    assert!(pool::avg_pool2d(&x, 7, 1, 1).is_err(), "window larger than the padded input");
    assert!(pool::max_pool2d(&x, 3, 0, 1).is_err(), "stride 0");
    assert!(pool::avg_pool2d(&x, 0, 1, 0).is_err(), "kernel 0");
    assert!(pool::max_pool2d(&Tensor::zeros(&gpu, &[2, 4, 4]).unwrap(), 3, 1, 1).is_err(), "rank 3");
    assert!(pool::global_avg_pool(&Tensor::zeros(&gpu, &[2, 4]).unwrap()).is_err(), "rank 2");
}

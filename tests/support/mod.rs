//! Shared test helpers: the GPU, seeded data, comparisons, and a finite-difference check of
//! the GPU backward against the GPU forward. CPU references (plain loops in f64) live in the
//! sibling files, one per op family.
#![allow(dead_code)]

use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor};

pub fn gpu() -> Gpu {
    Gpu::new().expect("a wgpu adapter (on Debian: apt-get install mesa-vulkan-drivers libvulkan1)")
}

pub fn rand_vec(rng: &mut Rng, n: usize) -> Vec<f32> {
    rng.uniform_vec(n, -1.0, 1.0)
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Largest |got - want| and the index where it occurs.
pub fn max_abs_diff(got: &[f32], want: &[f64]) -> (f64, usize) {
    assert_eq!(got.len(), want.len(), "length mismatch");
    got.iter().zip(want).enumerate().map(|(i, (&g, &w))| ((g as f64 - w).abs(), i)).fold((0.0, 0), |a, b| {
        if b.0 > a.0 {
            b
        } else {
            a
        }
    })
}

/// Asserts |got - want| <= atol + rtol * |want| everywhere, naming the worst element.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= atol + rtol * w.abs() && g.is_finite(),
            "{what}[{i}]: got {g}, want {w} (|err| {err:.3e} > {atol:.1e} + {rtol:.1e}*|want|)"
        );
    }
}

/// Checks the tape's gradients of `L = <f(inputs), r>` (r random) against central finite
/// differences of the same GPU forward, on up to `samples` coordinates of each input.
/// `inputs` are (shape, data); every input gets a gradient.
pub fn check_finite_differences(
    gpu: &Gpu,
    inputs: &[(Vec<usize>, Vec<f32>)],
    f: impl Fn(&[Tensor]) -> Tensor,
    eps: f32,
    samples: usize,
    tol: f64,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let make = |data: &[Vec<f32>]| -> Vec<Tensor> {
        inputs.iter().zip(data).map(|((s, _), d)| Tensor::param(gpu, s, d).unwrap()).collect()
    };
    let base: Vec<Vec<f32>> = inputs.iter().map(|(_, d)| d.clone()).collect();
    let ts = make(&base);
    let y = f(&ts);
    let r = rng.uniform_vec(y.numel(), -1.0, 1.0);
    let grads = gpu.backward_from(&[(&y, Tensor::from_slice(gpu, y.shape(), &r).unwrap())]).unwrap();
    let analytic: Vec<Vec<f32>> =
        ts.iter().map(|t| grads.get(t).expect("gradient for every input").to_vec().unwrap()).collect();
    drop(grads);

    let loss = |data: &[Vec<f32>]| -> f64 {
        gpu.no_grad(|| {
            let y = f(&make(data)).to_vec().unwrap();
            y.iter().zip(&r).map(|(&a, &b)| a as f64 * b as f64).sum()
        })
    };
    for (k, (_, d)) in inputs.iter().enumerate() {
        let n = d.len();
        let picks: Vec<usize> =
            if n <= samples { (0..n).collect() } else { (0..samples).map(|_| rng.below(n)).collect() };
        for i in picks {
            let mut plus = base.clone();
            plus[k][i] += eps;
            let mut minus = base.clone();
            minus[k][i] -= eps;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * eps as f64);
            let a = analytic[k][i] as f64;
            let scale = numeric.abs().max(a.abs()).max(1.0);
            assert!(
                (a - numeric).abs() <= tol * scale,
                "input {k} element {i}: analytic {a:.6}, finite difference {numeric:.6} (tol {tol} x {scale:.3})"
            );
        }
    }
}

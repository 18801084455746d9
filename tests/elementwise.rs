//! Element-wise ops and reductions: GPU against plain f64 loops, and against finite differences.

mod support;

use support::*;
use wgpu_nas::ops::{elementwise as ew, reduce};
use wgpu_nas::rng::Rng;
use wgpu_nas::Tensor;

fn act_ref(name: &str, x: f64) -> (f64, f64) {
    match name {
        "relu" => (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }),
        "tanh" => (x.tanh(), 1.0 - x.tanh().powi(2)),
        _ => {
            let s = 1.0 / (1.0 + (-x).exp());
            (s, s * (1.0 - s))
        }
    }
}

#[test]
fn activations_match_cpu_and_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(1);
    // Odd sizes, one past the workgroup size, and one that folds the grid.
    for &n in &[1usize, 7, 257, 1000] {
        for (name, act) in [("relu", ew::relu as fn(&Tensor) -> _), ("tanh", ew::tanh), ("sigmoid", ew::sigmoid)] {
            let x = rand_vec(&mut rng, n);
            let dy = rand_vec(&mut rng, n);
            let xt = Tensor::param(&gpu, &[n], &x).unwrap();
            let y = act(&xt).unwrap();
            let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, &[n], &dy).unwrap())]).unwrap();
            let want: Vec<(f64, f64)> = x.iter().map(|&v| act_ref(name, v as f64)).collect();
            assert_close(name, &y.to_vec().unwrap(), &want.iter().map(|w| w.0).collect::<Vec<_>>(), 1e-6, 1e-5);
            let dx_want: Vec<f64> = want.iter().zip(&dy).map(|(w, &d)| w.1 * d as f64).collect();
            assert_close(&format!("d{name}"), &g.get(&xt).unwrap().to_vec().unwrap(), &dx_want, 1e-6, 1e-5);
        }
    }
    for (i, act) in [ew::relu as fn(&Tensor) -> _, ew::tanh, ew::sigmoid].into_iter().enumerate() {
        let x = rand_vec(&mut rng, 12);
        check_finite_differences(&gpu, &[(vec![3, 4], x)], |t| act(&t[0]).unwrap(), 1e-3, 12, 1e-2, i as u64);
    }
}

#[test]
fn add_mul_add_n_scale_and_reductions() {
    let gpu = gpu();
    let mut rng = Rng::new(2);
    let n = 515;
    let a = rand_vec(&mut rng, n);
    let b = rand_vec(&mut rng, n);
    let c = rand_vec(&mut rng, n);
    let s = rand_vec(&mut rng, 3);
    let (at, bt, ct) = (
        Tensor::param(&gpu, &[5, 103], &a).unwrap(),
        Tensor::param(&gpu, &[5, 103], &b).unwrap(),
        Tensor::param(&gpu, &[5, 103], &c).unwrap(),
    );
    let st = Tensor::param(&gpu, &[3], &s).unwrap();
    let sum = ew::add(&at, &bt).unwrap();
    let prod = ew::mul(&at, &bt).unwrap();
    let three = ew::add_n(&[&at, &bt, &ct]).unwrap();
    let scaled = ew::scale(&ct, &st, 2).unwrap();
    let want_sum: Vec<f64> = (0..n).map(|i| a[i] as f64 + b[i] as f64).collect();
    let want_prod: Vec<f64> = (0..n).map(|i| a[i] as f64 * b[i] as f64).collect();
    let want_three: Vec<f64> = (0..n).map(|i| a[i] as f64 + b[i] as f64 + c[i] as f64).collect();
    let want_scaled: Vec<f64> = (0..n).map(|i| s[2] as f64 * c[i] as f64).collect();
    assert_close("add", &sum.to_vec().unwrap(), &want_sum, 1e-6, 1e-6);
    assert_close("mul", &prod.to_vec().unwrap(), &want_prod, 1e-6, 1e-6);
    assert_close("add_n", &three.to_vec().unwrap(), &want_three, 1e-6, 1e-6);
    assert_close("scale", &scaled.to_vec().unwrap(), &want_scaled, 1e-6, 1e-6);

    // A loss through all four: L = sum(sum + prod + three + scaled).
    let total = reduce::sum(&ew::add_n(&[&sum, &prod, &three, &scaled]).unwrap()).unwrap();
    let want_total: f64 = (0..n).map(|i| want_sum[i] + want_prod[i] + want_three[i] + want_scaled[i]).sum();
    assert_close("sum", &total.to_vec().unwrap(), &[want_total], 1e-3, 1e-5);
    let g = gpu.backward(&total).unwrap();
    let da: Vec<f64> = (0..n).map(|i| 2.0 + b[i] as f64).collect();
    let db: Vec<f64> = (0..n).map(|i| 2.0 + a[i] as f64).collect();
    let dc: Vec<f64> = (0..n).map(|_| 1.0 + s[2] as f64).collect();
    let ds = [0.0, 0.0, c.iter().map(|&v| v as f64).sum::<f64>()];
    assert_close("da", &g.get(&at).unwrap().to_vec().unwrap(), &da, 1e-5, 1e-5);
    assert_close("db", &g.get(&bt).unwrap().to_vec().unwrap(), &db, 1e-5, 1e-5);
    assert_close("dc", &g.get(&ct).unwrap().to_vec().unwrap(), &dc, 1e-5, 1e-5);
    assert_close("ds", &g.get(&st).unwrap().to_vec().unwrap(), &ds, 1e-4, 1e-5);
    assert_eq!(gpu.tape_len(), 0, "backward consumes the tape");

    // Reductions over sizes that need several partials (and many chunks).
    for &n in &[1usize, 255, 256, 1025, 300_001] {
        let x = rand_vec(&mut rng, n);
        let xt = Tensor::from_slice(&gpu, &[n], &x).unwrap();
        let out = Tensor::zeros(&gpu, &[2]).unwrap();
        reduce::sum_squares_into(&xt, &out, 1, false).unwrap();
        let m = reduce::mean(&xt).unwrap().item().unwrap() as f64;
        let ss: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum();
        let mean: f64 = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        assert_close("sum_squares", &out.to_vec().unwrap(), &[0.0, ss], 1e-6, 1e-5);
        assert!((m - mean).abs() < 1e-5, "mean {m} vs {mean}");
    }
    check_finite_differences(
        &gpu,
        &[(vec![7], rand_vec(&mut rng, 7)), (vec![2], rand_vec(&mut rng, 2))],
        |t| ew::scale(&ew::mul(&t[0], &t[0]).unwrap(), &t[1], 1).unwrap(),
        1e-3,
        7,
        1e-2,
        9,
    );
}

#[test]
fn reductions_are_deterministic_and_steps_reuse_caches() {
    let gpu = gpu();
    let mut rng = Rng::new(3);
    let x = rand_vec(&mut rng, 100_000);
    let xt = Tensor::from_slice(&gpu, &[100_000], &x).unwrap();
    let first = reduce::sum(&xt).unwrap().to_vec().unwrap();
    let bind_groups = gpu.bind_groups_created();
    let pipelines = gpu.pipelines_created();
    for _ in 0..3 {
        assert_eq!(reduce::sum(&xt).unwrap().to_vec().unwrap(), first, "same bits every time");
    }
    assert_eq!(gpu.pipelines_created(), pipelines, "no new pipelines once warm");
    // The readback staging is not a bind group; the warm loop creates none.
    assert_eq!(gpu.bind_groups_created(), bind_groups, "no new bind groups once warm");
}

//! Drop path: the per-sample scaling kernel against a plain CPU loop and finite differences, and
//! the statistics of the host-drawn mask.

mod support;

use support::*;
use wgpu_nas::ops::drop_path::{drop_mask, drop_path, scale_samples};
use wgpu_nas::rng::Rng;
use wgpu_nas::Tensor;

#[test]
fn scale_samples_matches_cpu_forward_and_backward() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    // A small odd shape, a batch of one, and one past several workgroups.
    for shape in [vec![5usize, 3, 4, 3], vec![1, 2, 3, 3], vec![3, 7, 13, 11]] {
        let n = shape[0];
        let per = shape[1..].iter().product::<usize>();
        let x = rand_vec(&mut rng, n * per);
        let dy = rand_vec(&mut rng, n * per);
        let mask = drop_mask(n, 0.3, &mut rng).unwrap();
        let xt = Tensor::param(&gpu, &shape, &x).unwrap();
        let mt = Tensor::from_slice(&gpu, &[n], &mask).unwrap();
        let y = scale_samples(&xt, &mt).unwrap();
        let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, &shape, &dy).unwrap())]).unwrap();
        let want: Vec<f64> = (0..n * per).map(|i| x[i] as f64 * mask[i / per] as f64).collect();
        let dx_want: Vec<f64> = (0..n * per).map(|i| dy[i] as f64 * mask[i / per] as f64).collect();
        assert_close("scale_samples", &y.to_vec().unwrap(), &want, 1e-6, 1e-6);
        assert_close("d scale_samples", &g.get(&xt).unwrap().to_vec().unwrap(), &dx_want, 1e-6, 1e-6);
    }
}

#[test]
fn scale_samples_matches_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    let mask = Tensor::from_slice(&gpu, &[3], &[1.25, 0.0, 1.25]).unwrap();
    let x = rand_vec(&mut rng, 3 * 2 * 3 * 3);
    check_finite_differences(
        &gpu,
        &[(vec![3, 2, 3, 3], x)],
        |t| scale_samples(&t[0], &mask).unwrap(),
        1e-3,
        20,
        1e-2,
        3,
    );
}

#[test]
fn scale_samples_rejects_bad_shapes() {
    let gpu = gpu();
    let x = Tensor::zeros(&gpu, &[4, 2, 2, 2]).unwrap();
    assert!(scale_samples(&x, &Tensor::zeros(&gpu, &[3]).unwrap()).is_err());
    assert!(scale_samples(&Tensor::zeros(&gpu, &[]).unwrap(), &Tensor::zeros(&gpu, &[1]).unwrap()).is_err());
}

#[test]
fn the_mask_drops_at_the_given_rate_and_keeps_the_expectation() {
    let mut rng = Rng::new(13);
    let n = 40_000;
    let mask = drop_mask(n, 0.2, &mut rng).unwrap();
    let dropped = mask.iter().filter(|&&m| m == 0.0).count() as f64 / n as f64;
    // Binomial: the standard deviation of the rate is sqrt(0.2 * 0.8 / n) = 0.002.
    assert!((dropped - 0.2).abs() < 0.01, "dropped {dropped}");
    assert!(mask.iter().all(|&m| m == 0.0 || m == 1.25), "kept samples are scaled by 1/keep_prob");
    let mean = mask.iter().map(|&m| m as f64).sum::<f64>() / n as f64;
    assert!((mean - 1.0).abs() < 0.015, "E[mask] = {mean}");
    assert!(drop_mask(4, 0.0, &mut rng).unwrap().iter().all(|&m| m == 1.0));
    assert!(drop_mask(4, 1.0, &mut rng).is_err() && drop_mask(4, -0.1, &mut rng).is_err());
}

#[test]
fn drop_path_at_zero_is_the_input_and_draws_nothing() {
    let gpu = gpu();
    let mut rng = Rng::new(14);
    let x = Tensor::from_slice(&gpu, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let before = rng.clone();
    assert_eq!(drop_path(&x, 0.0, &mut rng).unwrap().id(), x.id());
    assert_eq!(rng, before);
    // At 0.5, each row is either zero or doubled, as a whole.
    let y = drop_path(&x, 0.5, &mut rng).unwrap().to_vec().unwrap();
    for (row, x_row) in y.chunks(3).zip([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]) {
        let doubled: Vec<f32> = x_row.iter().map(|v| 2.0 * v).collect();
        assert!(row == [0.0; 3] || row == doubled.as_slice(), "row {row:?}");
    }
}

//! BatchNorm2d: GPU forward (output, batch statistics, running statistics after one and two
//! updates) and backward (dx, dgamma, dbeta) against plain f64 loops, in training and eval mode,
//! affine and not, on odd shapes and on data whose mean is far from zero; and against finite
//! differences, through the batch statistics.

#[path = "support/batch_norm.rs"]
mod reference;
mod support;

use support::*;
use wgpu_nas::ops::batch_norm::{batch_norm2d, batch_norm2d_relu, batch_norm2d_scaled};
use wgpu_nas::ops::elementwise::relu;
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor, Tuning};

const EPS: f32 = 1e-5;
const MOMENTUM: f32 = 0.1;

/// (shape [N, C, H, W], offset added to x): channel counts 1, 3, 5, 17 (none a multiple of the
/// workgroup), odd H and W, a channel of 4*9*9 = 324 values (more than one per thread), and
/// planes of 4*4 and 2*6 values (the vec4 element kernels), and batches whose mean is ~50 (a one-pass E[x^2] - E[x]^2 variance would lose it all in f32; the
/// kernels' one pass sums x - K for a K taken from the data, see `a_shift_far_from_the_mean`).
const SHAPES: &[([usize; 4], f32)] = &[
    ([1, 1, 5, 7], 0.0),
    ([2, 3, 5, 7], 50.0),
    ([3, 5, 3, 5], 0.0),
    ([4, 17, 5, 7], 50.0),
    ([4, 1, 9, 9], 50.0),
    ([1, 5, 5, 7], -50.0),
    // Planes of a multiple of 4 values: the four-at-a-time element kernels, and in training the
    // one-workgroup-per-channel kernels, whose 64 invocations walk several planes each (4x4,
    // 2x6, 8x8) or part of one plane (16x20: 80 vec4s a plane); channels of more than 4096
    // values (48x48 twice) take the per-plane partials instead. The element kernels take runs
    // of 4 vec4s: 2x6 is a run cut to 3, 6x6 (9 vec4s) two runs and one of 1.
    ([2, 3, 4, 4], 50.0),
    ([2, 3, 6, 6], -50.0),
    ([3, 2, 2, 6], 0.0),
    ([5, 2, 8, 8], 0.0),
    ([2, 3, 16, 20], 50.0),
    ([2, 2, 48, 48], 50.0),
];

/// Tolerance on the mean and on normalised values (y, dx): f32 spaces values near `offset` by
/// |offset| * 6e-8 (3.8e-6 at 50); the mean is off by a few such steps, which xhat inherits
/// divided by std ~ 0.58. 1e-5 covers the rounding of the O(1) arithmetic. Measured errors
/// stay below a third of this; a wrong formula is off by 1e-3 or more.
fn atol_normalised(offset: f32) -> f64 {
    1e-5 + 5e-7 * offset.abs() as f64
}

/// Tolerance on per-channel sums (dgamma, dbeta) of `count` O(1) terms: f32 rounding grows at
/// most linearly in the length, plus the xhat error above carried by each term.
fn atol_sum(count: usize, offset: f32) -> f64 {
    count as f64 * (1e-6 + 5e-7 * offset.abs() as f64)
}

/// The random inputs of one case.
struct Data {
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    dy: Vec<f32>,
}

impl Data {
    fn new(rng: &mut Rng, [n, c, h, w]: [usize; 4], offset: f32) -> Data {
        let numel = n * c * h * w;
        Data {
            x: rng.uniform_vec(numel, -1.0, 1.0).iter().map(|v| v + offset).collect(),
            gamma: rng.uniform_vec(c, 0.5, 1.5),
            beta: rand_vec(rng, c),
            running_mean: rand_vec(rng, c),
            running_var: rng.uniform_vec(c, 0.5, 2.0),
            dy: rand_vec(rng, numel),
        }
    }
}

/// One training-mode case: forward, running statistics after one and two updates, backward.
fn check_training(gpu: &Gpu, rng: &mut Rng, shape: [usize; 4], offset: f32, affine: bool) {
    let [n, c, h, w] = shape;
    let count = n * h * w;
    let case = format!("training {shape:?} offset {offset} affine {affine}");
    let d = Data::new(rng, shape, offset);
    let xt = Tensor::param(gpu, &shape, &d.x).unwrap(); // x: [N, C, H, W]
    let gt = Tensor::param(gpu, &[c], &d.gamma).unwrap(); // gamma: [C]
    let bt = Tensor::param(gpu, &[c], &d.beta).unwrap(); // beta: [C]
    let rm = Tensor::from_slice(gpu, &[c], &d.running_mean).unwrap(); // running_mean: [C]
    let rv = Tensor::from_slice(gpu, &[c], &d.running_var).unwrap(); // running_var: [C]
    let (weight, bias) = if affine { (Some(&gt), Some(&bt)) } else { (None, None) };
    let out = batch_norm2d(&xt, weight, bias, Some((&rm, &rv)), true, MOMENTUM, EPS).unwrap();
    let g = gpu.backward_from(&[(&out.y, Tensor::from_slice(gpu, &shape, &d.dy).unwrap())]).unwrap();

    let (x, gamma, beta, dy) = (to_f64(&d.x), to_f64(&d.gamma), to_f64(&d.beta), to_f64(&d.dy));
    let aff = affine.then_some((gamma.as_slice(), beta.as_slice()));
    let (mean, var) = reference::batch_stats(&x, shape);
    let y = reference::batch_norm_forward(&x, shape, &mean, &var, aff, EPS as f64);
    let (mut run_mean, mut run_var) = (to_f64(&d.running_mean), to_f64(&d.running_var));
    reference::update_running(&mut run_mean, &mut run_var, &mean, &var, count, MOMENTUM as f64);
    let (dx, dgamma, dbeta) =
        reference::batch_norm_backward(&x, &dy, shape, (&mean, &var), aff.map(|a| a.0), EPS as f64, true);

    let tol = atol_normalised(offset);
    // The mean of values near `offset` carries their f32 resolution; the variance does not.
    assert_close(&format!("{case}: mean"), &out.mean.to_vec().unwrap(), &mean, tol, 0.0);
    assert_close(&format!("{case}: var"), &out.var.to_vec().unwrap(), &var, 1e-5, 1e-5);
    assert_close(&format!("{case}: y"), &out.y.to_vec().unwrap(), &y, tol, 1e-5);
    assert_close(&format!("{case}: running_mean after 1"), &rm.to_vec().unwrap(), &run_mean, tol, 1e-6);
    assert_close(&format!("{case}: running_var after 1"), &rv.to_vec().unwrap(), &run_var, 1e-5, 1e-5);
    assert_close(&format!("{case}: dx"), &g.get(&xt).unwrap().to_vec().unwrap(), &dx, tol, 1e-5);
    if affine {
        let sum_tol = atol_sum(count, offset);
        assert_close(&format!("{case}: dgamma"), &g.get(&gt).unwrap().to_vec().unwrap(), &dgamma, sum_tol, 1e-5);
        assert_close(&format!("{case}: dbeta"), &g.get(&bt).unwrap().to_vec().unwrap(), &dbeta, sum_tol, 1e-5);
    } else {
        assert!(g.get(&gt).is_none() && g.get(&bt).is_none(), "{case}: gradients for unused parameters");
    }
    drop(g);

    // A second batch moves the running statistics again.
    let x2: Vec<f32> = rng.uniform_vec(x.len(), -2.0, 2.0).iter().map(|v| v + offset).collect();
    let x2t = Tensor::from_slice(gpu, &shape, &x2).unwrap();
    let out2 = gpu.no_grad(|| batch_norm2d(&x2t, weight, bias, Some((&rm, &rv)), true, MOMENTUM, EPS).unwrap());
    let (mean2, var2) = reference::batch_stats(&to_f64(&x2), shape);
    reference::update_running(&mut run_mean, &mut run_var, &mean2, &var2, count, MOMENTUM as f64);
    assert_close(&format!("{case}: second mean"), &out2.mean.to_vec().unwrap(), &mean2, tol, 0.0);
    assert_close(&format!("{case}: second var"), &out2.var.to_vec().unwrap(), &var2, 1e-5, 1e-5);
    assert_close(&format!("{case}: running_mean after 2"), &rm.to_vec().unwrap(), &run_mean, tol, 1e-6);
    assert_close(&format!("{case}: running_var after 2"), &rv.to_vec().unwrap(), &run_var, 1e-5, 1e-5);
}

/// One eval-mode case: normalised with the running statistics, which stay unchanged.
fn check_eval(gpu: &Gpu, rng: &mut Rng, shape: [usize; 4], offset: f32, affine: bool) {
    let [n, c, h, w] = shape;
    let case = format!("eval {shape:?} offset {offset} affine {affine}");
    let mut d = Data::new(rng, shape, offset);
    // Running statistics of the same scale as the data, as after training.
    for m in &mut d.running_mean {
        *m += offset;
    }
    let xt = Tensor::param(gpu, &shape, &d.x).unwrap(); // x: [N, C, H, W]
    let gt = Tensor::param(gpu, &[c], &d.gamma).unwrap(); // gamma: [C]
    let bt = Tensor::param(gpu, &[c], &d.beta).unwrap(); // beta: [C]
    let rm = Tensor::from_slice(gpu, &[c], &d.running_mean).unwrap(); // running_mean: [C]
    let rv = Tensor::from_slice(gpu, &[c], &d.running_var).unwrap(); // running_var: [C]
    let (weight, bias) = if affine { (Some(&gt), Some(&bt)) } else { (None, None) };
    let out = batch_norm2d(&xt, weight, bias, Some((&rm, &rv)), false, MOMENTUM, EPS).unwrap();
    let g = gpu.backward_from(&[(&out.y, Tensor::from_slice(gpu, &shape, &d.dy).unwrap())]).unwrap();

    let (x, gamma, beta, dy) = (to_f64(&d.x), to_f64(&d.gamma), to_f64(&d.beta), to_f64(&d.dy));
    let (run_mean, run_var) = (to_f64(&d.running_mean), to_f64(&d.running_var));
    let aff = affine.then_some((gamma.as_slice(), beta.as_slice()));
    let y = reference::batch_norm_forward(&x, shape, &run_mean, &run_var, aff, EPS as f64);
    let (dx, dgamma, dbeta) =
        reference::batch_norm_backward(&x, &dy, shape, (&run_mean, &run_var), aff.map(|a| a.0), EPS as f64, false);

    let tol = atol_normalised(offset);
    assert_close(&format!("{case}: y"), &out.y.to_vec().unwrap(), &y, tol, 1e-5);
    // The reported statistics are the running ones, and evaluation leaves those alone.
    assert_eq!(out.mean.to_vec().unwrap(), d.running_mean, "{case}: mean output");
    assert_eq!(out.var.to_vec().unwrap(), d.running_var, "{case}: var output");
    assert_eq!(rm.to_vec().unwrap(), d.running_mean, "{case}: running_mean changed");
    assert_eq!(rv.to_vec().unwrap(), d.running_var, "{case}: running_var changed");
    assert_close(&format!("{case}: dx"), &g.get(&xt).unwrap().to_vec().unwrap(), &dx, 1e-6, 1e-5);
    if affine {
        let sum_tol = atol_sum(n * h * w, offset);
        assert_close(&format!("{case}: dgamma"), &g.get(&gt).unwrap().to_vec().unwrap(), &dgamma, sum_tol, 1e-5);
        assert_close(&format!("{case}: dbeta"), &g.get(&bt).unwrap().to_vec().unwrap(), &dbeta, sum_tol, 1e-5);
    }
}

#[test]
fn training_matches_cpu_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    for &(shape, offset) in SHAPES {
        for affine in [false, true] {
            check_training(&gpu, &mut rng, shape, offset, affine);
        }
    }
}

/// With the per-channel kernels turned off (SwiftShader's tuning), every shape takes the
/// per-plane partials: the same values.
#[test]
fn training_matches_cpu_reference_per_plane_only() {
    let gpu = gpu();
    gpu.set_tuning(Tuning { bn_channel_max_values: 0, ..gpu.tuning() }).unwrap();
    let mut rng = Rng::new(23);
    for &(shape, offset) in SHAPES {
        for affine in [false, true] {
            check_training(&gpu, &mut rng, shape, offset, affine);
        }
    }
}

#[test]
fn eval_matches_cpu_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(22);
    for &(shape, offset) in SHAPES {
        for affine in [false, true] {
            check_eval(&gpu, &mut rng, shape, offset, affine);
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(23);
    let shape = vec![2, 3, 3, 3];
    let x = rand_vec(&mut rng, 54);
    let gamma = rng.uniform_vec(3, 0.5, 1.5);
    let beta = rand_vec(&mut rng, 3);
    // Training, affine: gradients through the batch mean and variance.
    check_finite_differences(
        &gpu,
        &[(shape.clone(), x.clone()), (vec![3], gamma.clone()), (vec![3], beta.clone())],
        |t| batch_norm2d(&t[0], Some(&t[1]), Some(&t[2]), None, true, MOMENTUM, EPS).unwrap().y,
        1e-2,
        20,
        1e-2,
        1,
    );
    // Training, not affine, a batch with mean ~50 (the step is inexact by f32's 4e-6 there).
    let far: Vec<f32> = rand_vec(&mut rng, 30).iter().map(|v| v + 50.0).collect();
    check_finite_differences(
        &gpu,
        &[(vec![3, 2, 1, 5], far)],
        |t| batch_norm2d(&t[0], None, None, None, true, MOMENTUM, EPS).unwrap().y,
        1e-2,
        30,
        1e-2,
        2,
    );
    // Training on planes of a multiple of 4 values (the per-channel kernels), affine and not.
    let x4 = rand_vec(&mut rng, 48);
    check_finite_differences(
        &gpu,
        &[(vec![2, 3, 2, 4], x4.clone()), (vec![3], gamma.clone()), (vec![3], beta.clone())],
        |t| batch_norm2d(&t[0], Some(&t[1]), Some(&t[2]), None, true, MOMENTUM, EPS).unwrap().y,
        1e-2,
        20,
        1e-2,
        4,
    );
    check_finite_differences(
        &gpu,
        &[(vec![2, 3, 2, 4], x4)],
        |t| batch_norm2d(&t[0], None, None, None, true, MOMENTUM, EPS).unwrap().y,
        1e-2,
        20,
        1e-2,
        5,
    );
    // Eval, affine: the running statistics are constants.
    let rm = Tensor::from_slice(&gpu, &[3], &rand_vec(&mut rng, 3)).unwrap();
    let rv = Tensor::from_slice(&gpu, &[3], &rng.uniform_vec(3, 0.5, 2.0)).unwrap();
    check_finite_differences(
        &gpu,
        &[(shape, x), (vec![3], gamma), (vec![3], beta)],
        |t| batch_norm2d(&t[0], Some(&t[1]), Some(&t[2]), Some((&rm, &rv)), false, MOMENTUM, EPS).unwrap().y,
        1e-2,
        20,
        1e-2,
        3,
    );
}

/// The statistics kernels sum x - K and (x - K)^2 in one pass, K a plane's (or a channel's)
/// first value: when that value is an outlier the subtraction cancels, and they sum the squared
/// deviations again from the mean. The channel's first value 100 above the rest (the
/// per-channel kernels, 16x16), or every plane's first value 10 above it (17 standard
/// deviations; per plane: 48x48, and 8x8 with the per-channel kernels off): within the usual
/// tolerance. Without the second pass the variance was off by 2.8e-3, 2.2e-5 and 3.0e-5.
#[test]
fn a_shift_far_from_the_mean() {
    let gpu = gpu();
    let mut rng = Rng::new(25);
    for (shape, per_plane, outlier) in
        [([16, 2, 16, 16], false, 100.0), ([2, 2, 48, 48], true, 10.0), ([5, 2, 8, 8], true, 10.0)]
    {
        if per_plane {
            gpu.set_tuning(Tuning { bn_channel_max_values: 0, ..gpu.tuning() }).unwrap();
        }
        let [n, c, h, w] = shape;
        let mut x = rng.uniform_vec(n * c * h * w, -1.0, 1.0).iter().map(|v| v + 50.0).collect::<Vec<_>>();
        // Per plane every plane's first value; per channel only the channel's (sample 0's).
        for plane in 0..if per_plane { n * c } else { c } {
            x[plane * h * w] += outlier;
        }
        let xt = Tensor::from_slice(&gpu, &shape, &x).unwrap();
        let out = batch_norm2d(&xt, None, None, None, true, MOMENTUM, EPS).unwrap();
        let (mean, var) = reference::batch_stats(&to_f64(&x), shape);
        let case = format!("{shape:?} per plane {per_plane}");
        assert_close(&format!("{case}: mean"), &out.mean.to_vec().unwrap(), &mean, atol_normalised(50.0), 0.0);
        assert_close(&format!("{case}: var"), &out.var.to_vec().unwrap(), &var, 1e-5, 1e-5);
    }
}

#[test]
fn only_requested_gradients_and_repeatable_bits() {
    let gpu = gpu();
    let mut rng = Rng::new(24);
    let shape = [2, 3, 5, 7];
    let d = Data::new(&mut rng, shape, 0.0);
    let xt = Tensor::from_slice(&gpu, &shape, &d.x).unwrap();
    let gt = Tensor::param(&gpu, &[3], &d.gamma).unwrap();
    let bt = Tensor::from_slice(&gpu, &[3], &d.beta).unwrap();
    let out = batch_norm2d(&xt, Some(&gt), Some(&bt), None, true, MOMENTUM, EPS).unwrap();
    let g = gpu.backward_from(&[(&out.y, Tensor::from_slice(&gpu, &shape, &d.dy).unwrap())]).unwrap();
    assert!(g.get(&gt).is_some(), "gamma asked for a gradient");
    assert!(g.get(&xt).is_none() && g.get(&bt).is_none(), "x and beta did not");
    let first = out.y.to_vec().unwrap();
    for _ in 0..2 {
        let again = gpu.no_grad(|| batch_norm2d(&xt, Some(&gt), Some(&bt), None, true, MOMENTUM, EPS).unwrap());
        assert_eq!(again.y.to_vec().unwrap(), first, "same bits every run");
    }
}

#[test]
fn bad_arguments_are_shape_errors() {
    let gpu = gpu();
    let x = Tensor::zeros(&gpu, &[2, 3, 5, 7]).unwrap();
    let c3 = Tensor::full(&gpu, &[3], 1.0).unwrap();
    let c4 = Tensor::full(&gpu, &[4], 1.0).unwrap();
    let bn = |x: &Tensor, w, b, r, training| batch_norm2d(x, w, b, r, training, MOMENTUM, EPS).err();
    let cases = [
        ("x not 4-D", bn(&Tensor::zeros(&gpu, &[2, 3, 35]).unwrap(), None, None, None, true)),
        ("weight without bias", bn(&x, Some(&c3), None, None, true)),
        ("bias without weight", bn(&x, None, Some(&c3), None, true)),
        ("weight of 4 channels", bn(&x, Some(&c4), Some(&c3), None, true)),
        ("running_var of 4 channels", bn(&x, None, None, Some((&c3, &c4)), true)),
        ("eval without running stats", bn(&x, None, None, None, false)),
        ("one value per channel", bn(&Tensor::zeros(&gpu, &[1, 3, 1, 1]).unwrap(), None, None, None, true)),
    ];
    for (what, err) in cases {
        match err {
            Some(wgpu_nas::Error::Shape { op: "batch_norm2d", msg }) => println!("{what}: {msg}"),
            other => panic!("{what}: expected a batch_norm2d shape error, got {other:?}"),
        }
    }
}

/// `batch_norm2d_scaled` (a DARTS edge's op weight as the BN's gain): y = s[k] * xhat, its
/// gradients to x and to s (zero but at k) against finite differences, in training on the three
/// kernel paths (per channel: 2x4 planes; per plane: 48x48; scalar: 3x3) and in eval; and its
/// output against the unscaled BN times s[k].
#[test]
fn scaled_bn_matches_finite_differences_and_the_unscaled_one() {
    let gpu = gpu();
    let mut rng = Rng::new(29);
    let gains = rng.uniform_vec(6, 0.2, 1.5); // s: [2, 3], k = 4
    for (shape, training) in [([2, 3, 2, 4], true), ([2, 3, 3, 3], true), ([2, 3, 2, 4], false)] {
        let n = shape.iter().product();
        let x = rand_vec(&mut rng, n);
        let rm = Tensor::from_slice(&gpu, &[3], &rand_vec(&mut rng, 3)).unwrap();
        let rv = Tensor::from_slice(&gpu, &[3], &rng.uniform_vec(3, 0.5, 2.0)).unwrap();
        check_finite_differences(
            &gpu,
            &[(shape.to_vec(), x), (vec![2, 3], gains.clone())],
            |t| batch_norm2d_scaled(&t[0], &t[1], 4, Some((&rm, &rv)), training, MOMENTUM, EPS).unwrap().y,
            1e-2,
            20,
            1e-2,
            6,
        );
    }
    for shape in [[2, 2, 48, 48], [2, 3, 2, 4], [2, 3, 3, 3]] {
        let n = shape.iter().product();
        let x = Tensor::from_slice(&gpu, &shape, &rand_vec(&mut rng, n)).unwrap();
        let s = Tensor::from_slice(&gpu, &[2, 3], &gains).unwrap();
        let y = batch_norm2d_scaled(&x, &s, 4, None, true, MOMENTUM, EPS).unwrap().y.to_vec().unwrap();
        let plain = batch_norm2d(&x, None, None, None, true, MOMENTUM, EPS).unwrap().y.to_vec().unwrap();
        for (i, (a, b)) in y.iter().zip(&plain).enumerate() {
            let want = gains[4] * b;
            assert!((a - want).abs() <= 1e-5 + 1e-5 * want.abs(), "{shape:?} y[{i}]: got {a}, want {want}");
        }
    }
}

/// `batch_norm2d_relu` (BN then ReLU, fused in training): y = relu(BN(x)), the statistics, the
/// running update, and dx = BN's backward of dy gated by y > 0, against the f64 reference on the
/// three kernel paths (per channel: 2x4 and 8x8 planes; per plane: 48x48; scalar: 3x3 and 5x7)
/// and in eval (the BN, then a ReLU); gradients against finite differences on each path.
#[test]
fn relu_bn_matches_the_reference_and_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(31);
    let cases = [([2, 3, 2, 4], true), ([5, 2, 8, 8], true), ([2, 2, 48, 48], true), ([2, 3, 3, 3], true)];
    for (shape, training) in
        cases.into_iter().chain([([3, 5, 5, 7], true), ([2, 3, 2, 4], false), ([2, 3, 3, 3], false)])
    {
        let [_, c, _, _] = shape;
        let d = Data::new(&mut rng, shape, 0.0);
        let case = format!("{shape:?} training={training}");
        let xt = Tensor::param(&gpu, &shape, &d.x).unwrap();
        let rm = Tensor::from_slice(&gpu, &[c], &d.running_mean).unwrap();
        let rv = Tensor::from_slice(&gpu, &[c], &d.running_var).unwrap();
        let out = batch_norm2d_relu(&xt, Some((&rm, &rv)), training, MOMENTUM, EPS).unwrap();
        let g = gpu.backward_from(&[(&out.y, Tensor::from_slice(&gpu, &shape, &d.dy).unwrap())]).unwrap();
        let y_gpu = out.y.to_vec().unwrap();

        let x = to_f64(&d.x);
        let (mut run_mean, mut run_var) = (to_f64(&d.running_mean), to_f64(&d.running_var));
        let (mean, var) = if training {
            let stats = reference::batch_stats(&x, shape);
            let count = shape[0] * shape[2] * shape[3];
            reference::update_running(&mut run_mean, &mut run_var, &stats.0, &stats.1, count, MOMENTUM as f64);
            stats
        } else {
            (run_mean.clone(), run_var.clone())
        };
        let y: Vec<f64> = reference::batch_norm_forward(&x, shape, &mean, &var, None, EPS as f64)
            .iter()
            .map(|v| v.max(0.0))
            .collect();
        // The ReLU's gradient: dy where the output is positive (the GPU's own output decides the
        // values within rounding of 0).
        let dy: Vec<f64> = d.dy.iter().zip(&y_gpu).map(|(&g, &y)| if y > 0.0 { g as f64 } else { 0.0 }).collect();
        let (dx, _, _) = reference::batch_norm_backward(&x, &dy, shape, (&mean, &var), None, EPS as f64, training);

        assert_close(&format!("{case}: y"), &y_gpu, &y, 1e-5, 1e-5);
        assert!(y_gpu.iter().all(|&v| v >= 0.0), "{case}: a negative output");
        assert_close(&format!("{case}: mean"), &out.mean.to_vec().unwrap(), &mean, 1e-5, 0.0);
        assert_close(&format!("{case}: var"), &out.var.to_vec().unwrap(), &var, 1e-5, 1e-5);
        assert_close(&format!("{case}: running_mean"), &rm.to_vec().unwrap(), &run_mean, 1e-5, 1e-6);
        assert_close(&format!("{case}: running_var"), &rv.to_vec().unwrap(), &run_var, 1e-5, 1e-5);
        assert_close(&format!("{case}: dx"), &g.get(&xt).unwrap().to_vec().unwrap(), &dx, 1e-5, 1e-5);
        drop(g);

        // The unfused composition gives the same output.
        let plain = gpu.no_grad(|| {
            let rm = Tensor::from_slice(&gpu, &[c], &d.running_mean).unwrap();
            let rv = Tensor::from_slice(&gpu, &[c], &d.running_var).unwrap();
            let y = batch_norm2d(&xt, None, None, Some((&rm, &rv)), training, MOMENTUM, EPS).unwrap().y;
            relu(&y).unwrap().to_vec().unwrap()
        });
        assert_eq!(y_gpu, plain, "{case}: relu(batch_norm2d) differs");
    }
    for (seed, (shape, training)) in cases.into_iter().chain([([2, 3, 2, 4], false)]).enumerate() {
        let n: usize = shape.iter().product();
        let x = rand_vec(&mut rng, n);
        let rm = Tensor::from_slice(&gpu, &[3], &rand_vec(&mut rng, 3)).unwrap();
        let rv = Tensor::from_slice(&gpu, &[3], &rng.uniform_vec(3, 0.5, 2.0)).unwrap();
        let running = (shape[1] == 3).then_some((&rm, &rv));
        check_finite_differences(
            &gpu,
            &[(shape.to_vec(), x)],
            |t| batch_norm2d_relu(&t[0], running, training, MOMENTUM, EPS).unwrap().y,
            // A step small enough that no sampled value crosses the ReLU's kink.
            1e-3,
            20,
            1e-2,
            40 + seed as u64,
        );
    }
}

//! Optimizers, gradient clipping and schedules: GPU steps against the f64 CPU reference, the
//! stream-order hyper tensor, resume from saved state, and warm steps that create nothing.

#[path = "support/optim.rs"]
mod reference;
mod support;

use reference::{AdamConfig, SgdConfig};
use support::*;
use wgpu_nas::optim::{clip_grad_norm, grad_norm, Adam, CosineAnnealing, CosineWarmRestarts, Optimizer, Schedule, Sgd};
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor};

/// Parameter shapes: sizes 1, 7, 300 and 1025 (one past four workgroups).
/// Five, so that SGD's dispatches of four (plain) and three (momentum) parameters both end short.
const SHAPES: [&[usize]; 5] = [&[1], &[7], &[12, 25], &[1025], &[2, 3]];
/// A different learning rate at each step, to check that the hyper tensor is rewritten.
const LRS: [f32; 3] = [0.1, 0.05, 0.02];

/// Seeded parameters and one gradient set per step, on the CPU.
fn problem(seed: u64) -> (Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>) {
    let mut rng = Rng::new(seed);
    let params = SHAPES.iter().map(|s| rand_vec(&mut rng, s.iter().product())).collect();
    let grads = LRS.iter().map(|_| SHAPES.iter().map(|s| rand_vec(&mut rng, s.iter().product())).collect()).collect();
    (params, grads)
}

fn upload(gpu: &Gpu, data: &[Vec<f32>]) -> Vec<Tensor> {
    SHAPES.iter().zip(data).map(|(s, d)| Tensor::from_slice(gpu, s, d).unwrap()).collect()
}

/// Runs the three steps with `step(lr, params, grads)`, all recorded before any submission.
fn three_steps(gpu: &Gpu, params: &[Tensor], grads: &[Vec<Tensor>], mut step: impl FnMut(f32, &[Tensor], &[Tensor])) {
    let (submissions, readbacks) = (gpu.submissions(), gpu.readbacks());
    for (lr, g) in LRS.iter().zip(grads) {
        step(*lr, params, g);
    }
    assert_eq!(gpu.submissions(), submissions, "the steps are recorded, not submitted");
    assert_eq!(gpu.readbacks(), readbacks, "a step reads nothing back");
}

#[test]
fn sgd_matches_cpu_over_three_steps() {
    let gpu = gpu();
    // (momentum, weight_decay, nesterov): plain, L2 only, DARTS weights, ENAS (Nesterov).
    let configs =
        [(0.0f32, 0.0f32, false), (0.0, 1e-2, false), (0.9, 3e-4, false), (0.9, 1e-3, true), (0.5, 0.0, true)];
    for (k, &(momentum, weight_decay, nesterov)) in configs.iter().enumerate() {
        let (p0, g) = problem(10 + k as u64);
        let params = upload(&gpu, &p0);
        let grads: Vec<Vec<Tensor>> = g.iter().map(|gs| upload(&gpu, gs)).collect();
        let mut sgd = Sgd::new(&params, 1.0, momentum, weight_decay, nesterov).unwrap();
        three_steps(&gpu, &params, &grads, |lr, p, g| {
            sgd.set_lr(lr);
            sgd.step(p, g).unwrap();
        });

        let cfg = SgdConfig { momentum: momentum as f64, weight_decay: weight_decay as f64, nesterov };
        assert_eq!(sgd.state().len(), if momentum == 0.0 { 0 } else { SHAPES.len() }, "one buffer per parameter");
        assert_eq!(sgd.step_count(), 3);
        for i in 0..SHAPES.len() {
            let mut p = to_f64(&p0[i]);
            let mut buf = None;
            for (s, lr) in LRS.iter().enumerate() {
                reference::sgd_step(cfg, *lr as f64, &mut p, &to_f64(&g[s][i]), &mut buf);
            }
            // f32 rounding of a few multiply-adds per step on values of order 1.
            let what = format!("sgd {:?} param {i}", configs[k]);
            assert_close(&what, &params[i].to_vec().unwrap(), &p, 2e-6, 2e-6);
            if let Some(buf) = buf {
                assert_close(&format!("{what} momentum buffer"), &sgd.state()[i].to_vec().unwrap(), &buf, 2e-6, 2e-6);
            }
        }
        let before = gpu.dispatches();
        sgd.step(&params, &grads[0]).unwrap();
        assert_eq!(gpu.dispatches() - before, 2, "five parameters: four or three per dispatch");
    }
}

#[test]
fn adam_matches_cpu_over_three_steps() {
    let gpu = gpu();
    // (beta1, beta2, eps, weight_decay): PyTorch defaults, DARTS alphas, ENAS controller, other.
    let configs = [
        (0.9f32, 0.999f32, 1e-8f32, 0.0f32),
        (0.5, 0.999, 1e-8, 1e-3),
        (0.0, 0.999, 1e-3, 0.0),
        (0.8, 0.9, 1e-6, 1e-2),
    ];
    for (k, &(beta1, beta2, eps, weight_decay)) in configs.iter().enumerate() {
        let (p0, g) = problem(20 + k as u64);
        let params = upload(&gpu, &p0);
        let grads: Vec<Vec<Tensor>> = g.iter().map(|gs| upload(&gpu, gs)).collect();
        let mut adam = Adam::new(&params, 1.0, beta1, beta2, eps, weight_decay).unwrap();
        three_steps(&gpu, &params, &grads, |lr, p, g| {
            adam.set_lr(lr);
            adam.step(p, g).unwrap();
        });

        let cfg =
            AdamConfig { beta1: beta1 as f64, beta2: beta2 as f64, eps: eps as f64, weight_decay: weight_decay as f64 };
        assert_eq!(adam.state().len(), 2 * SHAPES.len(), "m and v per parameter");
        assert_eq!(adam.step_count(), 3);
        for i in 0..SHAPES.len() {
            let mut p = to_f64(&p0[i]);
            let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
            for (s, lr) in LRS.iter().enumerate() {
                reference::adam_step(cfg, *lr as f64, s as u64 + 1, &mut p, &to_f64(&g[s][i]), &mut m, &mut v);
            }
            // The update is lr times a ratio of order 1, computed to f32 precision.
            let what = format!("adam {:?} param {i}", configs[k]);
            assert_close(&what, &params[i].to_vec().unwrap(), &p, 2e-6, 2e-6);
            assert_close(&format!("{what} m"), &adam.state()[2 * i].to_vec().unwrap(), &m, 2e-6, 2e-6);
            assert_close(&format!("{what} v"), &adam.state()[2 * i + 1].to_vec().unwrap(), &v, 2e-6, 2e-6);
        }
    }
}

/// Two steps, state saved and restored into a fresh optimizer, a third step: the same bits as
/// three steps straight through.
fn resume_matches<O>(
    gpu: &Gpu,
    make: impl Fn(&[Tensor]) -> O,
    step: impl Fn(&mut O, &[Tensor], &[Tensor]),
    save: impl Fn(&O) -> (Vec<Tensor>, u64),
    load: impl Fn(&mut O, Vec<Tensor>, u64),
) {
    let (p0, g) = problem(30);
    let grads: Vec<Vec<Tensor>> = g.iter().map(|gs| upload(gpu, gs)).collect();
    let (straight, resumed) = (upload(gpu, &p0), upload(gpu, &p0));
    let mut a = make(&straight);
    for gs in &grads {
        step(&mut a, &straight, gs);
    }
    let mut b = make(&resumed);
    step(&mut b, &resumed, &grads[0]);
    step(&mut b, &resumed, &grads[1]);
    let (state, count) = save(&b);
    drop(b);
    let mut c = make(&resumed);
    load(&mut c, state, count);
    step(&mut c, &resumed, &grads[2]);
    for (x, y) in straight.iter().zip(&resumed) {
        assert_eq!(x.to_vec().unwrap(), y.to_vec().unwrap(), "a resumed run continues exactly");
    }
    let (sa, sc) = (save(&a), save(&c));
    assert_eq!(sa.1, sc.1, "step counts");
    assert_eq!(sa.0.len(), sc.0.len(), "state tensors");
    for (x, y) in sa.0.iter().zip(&sc.0) {
        assert_eq!(x.to_vec().unwrap(), y.to_vec().unwrap(), "optimizer state");
    }
}

#[test]
fn resumed_optimizers_continue_exactly() {
    let gpu = gpu();
    resume_matches(
        &gpu,
        |p| Sgd::new(p, 0.05, 0.9, 3e-4, true).unwrap(),
        |o, p, g| o.step(p, g).unwrap(),
        |o| (o.state().iter().map(|t| t.duplicate().unwrap()).collect(), o.step_count()),
        |o, s, n| o.load_state(s, n).unwrap(),
    );
    // Adam's bias corrections depend on the restored step count.
    resume_matches(
        &gpu,
        |p| Adam::new(p, 3e-4, 0.5, 0.999, 1e-8, 1e-3).unwrap(),
        |o, p, g| o.step(p, g).unwrap(),
        |o| (o.state().iter().map(|t| t.duplicate().unwrap()).collect(), o.step_count()),
        |o, s, n| o.load_state(s, n).unwrap(),
    );
}

#[test]
fn bad_steps_are_errors() {
    let gpu = gpu();
    // One-tensor lists: a and b are [3], c and d are [4].
    let t = |n: usize| [Tensor::zeros(&gpu, &[n]).unwrap()];
    let (a, b, c, d) = (t(3), t(3), t(4), t(4));
    let msg = |r: wgpu_nas::Result<()>| r.unwrap_err().to_string();
    assert!(Sgd::new(&[], 0.1, 0.9, 0.0, false).is_err(), "no parameters");
    let mut sgd = Sgd::new(&a, 0.1, 0.9, 0.0, false).unwrap();
    assert!(msg(sgd.step(&a, &[])).contains("1 parameters but 0 gradients"));
    assert!(msg(sgd.step(&a, &c)).contains("[3] but its gradient [4]"));
    assert!(msg(sgd.step(&a, &a)).contains("share one buffer"));
    assert!(msg(sgd.step(&c, &d)).contains("optimizer state"), "state made for [3]");
    let (ac, bd) = ([a[0].clone(), c[0].clone()], [b[0].clone(), d[0].clone()]);
    assert!(msg(sgd.step(&ac, &bd)).contains("state for 1 parameters"));
    sgd.step(&a, &b).unwrap();
    let mut nesterov = Sgd::new(&a, 0.1, 0.0, 0.0, true).unwrap();
    assert!(msg(nesterov.step(&a, &b)).contains("Nesterov"));
    let mut adam = Adam::new(&a, 1e-3, 1.0, 0.999, 1e-8, 0.0).unwrap();
    assert!(msg(adam.step(&a, &b)).contains("betas"));
    assert!(msg(adam.load_state(a.to_vec(), 1)).contains("multiple of 2"));
    assert!(clip_grad_norm(&[], 1.0).is_err());
    assert!(clip_grad_norm(&a, f32::NAN).is_err());
    assert!(CosineAnnealing::new(0.1, 0.0, 0.0).is_err());
    assert!(CosineWarmRestarts::new(0.1, 0.0, 10.0, 0.5).is_err());
}

#[test]
fn clip_grad_norm_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(40);
    let shapes: [&[usize]; 4] = [&[3, 4], &[5], &[300], &[1]];
    let data: Vec<Vec<f32>> = shapes.iter().map(|s| rand_vec(&mut rng, s.iter().product())).collect();
    // The norm of these is about 10: one bound clips, the other does not.
    for max_norm in [2.5f32, 50.0] {
        let grads: Vec<Tensor> =
            shapes.iter().zip(&data).map(|(s, d)| Tensor::from_slice(&gpu, s, d).unwrap()).collect();
        let readbacks = gpu.readbacks();
        let norm = clip_grad_norm(&grads, max_norm).unwrap();
        assert_eq!(gpu.readbacks(), readbacks, "clipping reads nothing back");
        assert_eq!(norm.shape(), &[] as &[usize], "the norm is a scalar");
        let mut want: Vec<Vec<f64>> = data.iter().map(|d| to_f64(d)).collect();
        let total = reference::clip_grad_norm(&mut want, max_norm as f64);
        assert!((total > max_norm as f64) == (max_norm < 10.0), "norm {total} is on the intended side");
        // A sum of ~300 squares in f32.
        assert_close("total norm", &norm.to_vec().unwrap(), &[total], 1e-5, 1e-5);
        for (i, (g, w)) in grads.iter().zip(&want).enumerate() {
            assert_close(&format!("clipped grad {i} (max {max_norm})"), &g.to_vec().unwrap(), w, 1e-6, 1e-5);
        }
    }
}

#[test]
fn clipped_sgd_step_equals_clipping_then_stepping() {
    let gpu = gpu();
    let mut rng = Rng::new(41);
    // 11 gradients: more than one group of 8 in the norm's dispatches.
    let shapes: Vec<Vec<usize>> = (0..11).map(|i| vec![1 + 7 * i]).collect();
    let p0: Vec<Vec<f32>> = shapes.iter().map(|s| rand_vec(&mut rng, s[0])).collect();
    let g0: Vec<Vec<f32>> = shapes.iter().map(|s| rand_vec(&mut rng, s[0])).collect();
    let upload = |v: &[Vec<f32>]| -> Vec<Tensor> {
        shapes.iter().zip(v).map(|(s, d)| Tensor::from_slice(&gpu, s, d).unwrap()).collect()
    };
    let mut want_norm = 0.0f64;
    for g in &g0 {
        want_norm += g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>();
    }
    let want_norm = want_norm.sqrt();
    for (momentum, max_norm) in [(0.9f32, 1.0f32), (0.9, 1e3), (0.0, 1.0)] {
        let (pa, ga, pb, gb) = (upload(&p0), upload(&g0), upload(&p0), upload(&g0));
        let mut a = Sgd::new(&pa, 0.1, momentum, 3e-4, false).unwrap();
        let mut b = Sgd::new(&pb, 0.1, momentum, 3e-4, false).unwrap();
        for _ in 0..2 {
            clip_grad_norm(&ga, max_norm).unwrap();
            a.step(&pa, &ga).unwrap();
            let norm = grad_norm(&gb).unwrap();
            b.step_clipped(&pb, &gb, &norm, max_norm).unwrap();
        }
        let norm = grad_norm(&upload(&g0)).unwrap();
        assert_close("grad_norm over 11 gradients", &norm.to_vec().unwrap(), &[want_norm], 1e-6, 1e-5);
        for (i, (x, y)) in pa.iter().zip(&pb).enumerate() {
            let want: Vec<f64> = x.to_vec().unwrap().iter().map(|&v| v as f64).collect();
            assert_close(
                &format!("param {i} (momentum {momentum}, max {max_norm})"),
                &y.to_vec().unwrap(),
                &want,
                1e-6,
                1e-6,
            );
        }
    }
    assert!(Sgd::new(&upload(&p0), 0.1, 0.9, 0.0, false)
        .unwrap()
        .step_clipped(&upload(&p0), &upload(&g0), &grad_norm(&upload(&g0)).unwrap(), f32::NAN)
        .is_err());
}

#[test]
fn schedules_match_closed_forms() {
    let close = |got: f32, want: f64, what: &str| {
        assert!((got as f64 - want).abs() <= 1e-7 + 1e-6 * want.abs(), "{what}: got {got}, want {want}");
    };
    // DARTS: 0.025 to 0.001 over 50 epochs.
    let cos = CosineAnnealing::new(0.025, 0.001, 50.0).unwrap();
    close(cos.lr(0.0), 0.025, "cosine start");
    close(cos.lr(25.0), 0.013, "cosine midpoint");
    close(cos.lr(50.0), 0.001, "cosine end");
    let quarter = 0.001 + 0.024 * (1.0 + std::f64::consts::FRAC_1_SQRT_2) / 2.0;
    close(cos.lr(12.5), quarter, "cosine at a quarter");

    for t_mult in [1u64, 2, 3] {
        let sgdr = CosineWarmRestarts::new(0.05, 0.0005, 10.0, t_mult as f64).unwrap();
        // Integer epochs against PyTorch's recursive stepping, over several restarts.
        let by_steps = reference::warm_restarts_by_steps(0.05, 0.0005, 10, t_mult, 200);
        for (epoch, want) in by_steps.iter().enumerate() {
            close(sgdr.lr(epoch as f64), *want, &format!("t_mult {t_mult} epoch {epoch}"));
        }
        // At and around the restarts: lr_max at a restart, nearly lr_min just before.
        let mut start = 0.0;
        let mut period = 10.0;
        for _ in 0..4 {
            close(sgdr.lr(start), 0.05, &format!("t_mult {t_mult} restart at {start}"));
            close(sgdr.lr(start + period / 2.0), (0.05 + 0.0005) / 2.0, &format!("t_mult {t_mult} mid-period"));
            let before = sgdr.lr(start + period - 1e-6) as f64;
            assert!((before - 0.0005).abs() < 1e-9 + 1e-6, "t_mult {t_mult}: {before} just before {}", start + period);
            start += period;
            period *= t_mult as f64;
        }
    }
}

#[test]
fn warm_steps_create_nothing() {
    let gpu = gpu();
    let (p0, g) = problem(50);
    let params = upload(&gpu, &p0);
    let grads = upload(&gpu, &g[0]);
    let alphas = upload(&gpu, &g[1]);
    let alpha_grads = upload(&gpu, &g[2]);
    let mut sgd = Sgd::new(&params, 0.025, 0.9, 3e-4, false).unwrap();
    let mut adam = Adam::new(&alphas, 3e-4, 0.5, 0.999, 1e-8, 1e-3).unwrap();
    let mut step = |lr: f32| {
        adam.step(&alphas, &alpha_grads).unwrap();
        drop(clip_grad_norm(&grads, 5.0).unwrap());
        sgd.set_lr(lr);
        sgd.step(&params, &grads).unwrap();
    };
    step(0.025);
    gpu.synchronize();
    let (bind_groups, pipelines, in_use) = (gpu.bind_groups_created(), gpu.pipelines_created(), gpu.memory().in_use);
    step(0.02);
    step(0.01);
    gpu.synchronize();
    assert_eq!(gpu.bind_groups_created(), bind_groups, "no new bind groups once warm");
    assert_eq!(gpu.pipelines_created(), pipelines, "no new pipelines once warm");
    assert_eq!(gpu.memory().in_use, in_use, "no new GPU memory once warm");
}

//! DARTS: the seed's supernet test, and the architect's first- and second-order alpha gradients
//! against central finite differences of the losses they differentiate (also through PC-DARTS's
//! partial channels, for its alphas and betas).

use wgpu_nas::darts::{Architect, ArchitectConfig, Network, NetworkConfig, Order, PartialChannels, WeightStep};
use wgpu_nas::nn::Module;
use wgpu_nas::ops::softmax::cross_entropy;
use wgpu_nas::rng::Rng;
use wgpu_nas::space::SearchSpace;
use wgpu_nas::{Gpu, Tensor};

/// The seed's `test_darts_supernet_forward`: one normal cell of 4 nodes over skip_connect and
/// sep_conv_3x3, random alphas, a [2, 3, 32, 32] input, logits [2, 10].
#[test]
fn seed_supernet_forward() {
    let gpu = Gpu::new().unwrap();
    let mut rng = Rng::new(0);
    let config = NetworkConfig {
        in_channels: 3,
        num_classes: 10,
        channels: 16,
        layers: 1,
        stem_multiplier: 1,
        reductions: Some(vec![]),
        space: SearchSpace::with_ops(&["skip_connect", "sep_conv_3x3"]).unwrap(),
        partial: None,
    };
    let net = Network::new(&gpu, &mut rng, config).unwrap();
    assert_eq!(net.alphas_normal.shape(), &[14, 2]);
    net.alphas_normal.write(&rng.normal_vec(28, 1.0)).unwrap();
    let x = Tensor::from_slice(&gpu, &[2, 3, 32, 32], &rng.normal_vec(2 * 3 * 32 * 32, 1.0)).unwrap();
    let out = gpu.no_grad(|| net.forward(&x, true)).unwrap();
    assert_eq!(out.shape(), &[2, 10]);
    assert!(out.to_vec().unwrap().iter().all(|v| v.is_finite()));
}

/// A tiny search network whose loss is smooth in the weights and the alphas: the stem's BN is
/// shifted to +10 so the preprocessing ReLUs see only positive values, and the candidate ops
/// (none, avg_pool_3x3 + BN, skip_connect) have no kinks. Finite differences of the unrolled
/// loss are meaningful only on such a net: with ReLU or max-pool kinks, the inner gradient
/// dw L_train jumps, and so does the unrolled loss.
pub fn tiny(gpu: &Gpu, seed: u64) -> (Network, Tensor, Tensor, Tensor, Tensor) {
    tiny_with(gpu, seed, None)
}

/// [`tiny`] with PC-DARTS's partial channels (and its betas away from uniform too).
pub fn tiny_with(gpu: &Gpu, seed: u64, partial: Option<PartialChannels>) -> (Network, Tensor, Tensor, Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let config = NetworkConfig {
        in_channels: 3,
        num_classes: 3,
        channels: 4,
        layers: 1,
        stem_multiplier: 2,
        reductions: Some(vec![]),
        space: SearchSpace::with_ops(&["none", "avg_pool_3x3", "skip_connect"]).unwrap().with_steps(3, 2).unwrap(),
        partial,
    };
    let net = Network::new(gpu, &mut rng, config).unwrap();
    let mut named = Vec::new();
    net.params("", &mut named);
    let (_, stem_bias) = named.iter().find(|(n, _)| n == "stem.bn.bias").expect("stem BN is affine");
    stem_bias.write(&vec![10.0; stem_bias.numel()]).unwrap();
    // Alphas away from uniform, so the softmax weights differ and the gradients are not tiny.
    for a in net.arch_parameters() {
        a.write(&rng.normal_vec(a.numel(), 0.5)).unwrap();
    }
    let batch = |rng: &mut Rng| {
        let x = Tensor::from_slice(gpu, &[4, 3, 8, 8], &rng.normal_vec(4 * 3 * 64, 1.0)).unwrap();
        let y = Tensor::from_u32(gpu, &[4], &[0, 1, 2, 1]).unwrap();
        (x, y)
    };
    let (xt, yt) = batch(&mut rng);
    let (xv, yv) = batch(&mut rng);
    (net, xt, yt, xv, yv)
}

pub fn loss_value(gpu: &Gpu, net: &Network, x: &Tensor, y: &Tensor) -> f64 {
    gpu.no_grad(|| cross_entropy(&net.forward(x, true).unwrap(), y).unwrap().item().unwrap() as f64)
}

/// L_val(w - eta * dw L_train(w, a), a), leaving w as it was.
pub fn unrolled_loss(gpu: &Gpu, net: &Network, eta: f32, t: (&Tensor, &Tensor), v: (&Tensor, &Tensor)) -> f64 {
    let weights = net.weights();
    let saved: Vec<Vec<f32>> = weights.iter().map(|w| w.to_vec().unwrap()).collect();
    let g = gpu.backward(&cross_entropy(&net.forward(t.0, true).unwrap(), t.1).unwrap()).unwrap();
    for (w, s) in weights.iter().zip(&saved) {
        let gw = g.get(w).map(|g| g.to_vec().unwrap()).unwrap_or(vec![0.0; s.len()]);
        w.write(&s.iter().zip(&gw).map(|(a, b)| a - eta * b).collect::<Vec<_>>()).unwrap();
    }
    drop(g);
    let l = loss_value(gpu, net, v.0, v.1);
    for (w, s) in weights.iter().zip(&saved) {
        w.write(s).unwrap();
    }
    l
}

/// Central differences of `f` over a few coordinates of each architecture parameter (alpha
/// matrices, then betas), against `grads`. Asserts |analytic - numeric| <= atol + rtol *
/// |numeric|; returns the largest error.
fn check_alpha_grads(
    net: &Network,
    grads: &[Vec<f32>],
    mut f: impl FnMut() -> f64,
    eps: f32,
    atol: f64,
    rtol: f64,
) -> f64 {
    let mut worst = 0.0f64;
    assert_eq!(grads.len(), net.arch_parameters().len(), "one gradient per architecture parameter");
    for (k, alpha) in net.arch_parameters().iter().enumerate() {
        let base = alpha.to_vec().unwrap();
        for i in [0, 2, 4, 7, 11, 13].into_iter().filter(|&i| i < base.len()) {
            let mut a = base.clone();
            a[i] += eps;
            alpha.write(&a).unwrap();
            let plus = f();
            a[i] -= 2.0 * eps;
            alpha.write(&a).unwrap();
            let minus = f();
            alpha.write(&base).unwrap();
            let numeric = (plus - minus) / (2.0 * eps as f64);
            let analytic = grads[k][i] as f64;
            let err = (analytic - numeric).abs();
            worst = worst.max(err);
            assert!(
                err <= atol + rtol * numeric.abs(),
                "alphas[{k}][{i}]: architect {analytic:.6e}, finite difference {numeric:.6e}"
            );
        }
    }
    worst
}

#[test]
fn first_order_alpha_gradient_matches_finite_differences() {
    let gpu = Gpu::new().unwrap();
    let (net, xt, yt, xv, yv) = tiny(&gpu, 1);
    let mut arch = Architect::new(&net, ArchitectConfig::default()).unwrap();
    let step = WeightStep { lr: 0.1, momentum: 0.0, weight_decay: 0.0, momentum_buffers: vec![] };
    let (g, _) = arch.alpha_gradient(&net, (&xt, &yt), (&xv, &yv), &step).unwrap();
    let g = [g[0].to_vec().unwrap(), g[1].to_vec().unwrap()];
    // f32 losses: a 1e-2 step keeps rounding noise (~1e-7 / 1e-2) well below the tolerance,
    // and on this smooth net its truncation error (~eps^2) too.
    check_alpha_grads(&net, &g, || loss_value(&gpu, &net, &xv, &yv), 1e-2, 1e-4, 1e-2);
}

/// PC-DARTS on the tiny net: K=2 (2 of 4 channels through each mixed op, the rest bypassing it,
/// shuffled) with edge normalisation. Both orders' gradients of the alphas and the betas against
/// finite differences of the loss each differentiates.
#[test]
fn pc_darts_alpha_and_beta_gradients_match_finite_differences() {
    let gpu = Gpu::new().unwrap();
    let partial = Some(PartialChannels { k: 2, edge_normalization: true });
    let (net, xt, yt, xv, yv) = tiny_with(&gpu, 3, partial);
    assert_eq!(net.arch_parameters().len(), 4, "alphas and betas of both cell types");
    assert_eq!(net.betas_normal.as_ref().unwrap().shape(), &[9], "one beta per edge of 3 nodes");
    let eta = 0.5;
    let step = WeightStep { lr: eta, momentum: 0.0, weight_decay: 0.0, momentum_buffers: vec![] };
    let mut first = Architect::new(&net, ArchitectConfig::default()).unwrap();
    let (g, _) = first.alpha_gradient(&net, (&xt, &yt), (&xv, &yv), &step).unwrap();
    let g: Vec<Vec<f32>> = g.iter().map(|t| t.to_vec().unwrap()).collect();
    assert!(g[2].iter().any(|v| v.abs() > 1e-4), "the betas get a gradient: {:?}", g[2]);
    check_alpha_grads(&net, &g, || loss_value(&gpu, &net, &xv, &yv), 1e-2, 1e-4, 1e-2);

    let config = ArchitectConfig { order: Order::Second, hvp_radius: 1e-3, ..Default::default() };
    let mut second = Architect::new(&net, config).unwrap();
    let (g2, _) = second.alpha_gradient(&net, (&xt, &yt), (&xv, &yv), &step).unwrap();
    let g2: Vec<Vec<f32>> = g2.iter().map(|t| t.to_vec().unwrap()).collect();
    check_alpha_grads(&net, &g2, || unrolled_loss(&gpu, &net, eta, (&xt, &yt), (&xv, &yv)), 1e-2, 1e-4, 1e-2);
}

#[test]
fn second_order_alpha_gradient_matches_finite_differences_of_the_unrolled_loss() {
    let gpu = Gpu::new().unwrap();
    let (net, xt, yt, xv, yv) = tiny(&gpu, 2);
    let eta = 0.5;
    let step = WeightStep { lr: eta, momentum: 0.0, weight_decay: 0.0, momentum_buffers: vec![] };
    // A small radius: with the default 0.01/||v||, ReLU and max-pool kinks on a net this small
    // move the estimate far from the exact Hessian-vector product.
    let config = ArchitectConfig { order: Order::Second, hvp_radius: 1e-3, ..Default::default() };
    let mut arch = Architect::new(&net, config).unwrap();
    let weights_before: Vec<Vec<f32>> = net.weights().iter().map(|w| w.to_vec().unwrap()).collect();
    let (g2, _) = arch.alpha_gradient(&net, (&xt, &yt), (&xv, &yv), &step).unwrap();
    let g2 = [g2[0].to_vec().unwrap(), g2[1].to_vec().unwrap()];
    let weights_after: Vec<Vec<f32>> = net.weights().iter().map(|w| w.to_vec().unwrap()).collect();
    assert_eq!(weights_before, weights_after, "the architect restores the weights exactly");

    let worst =
        check_alpha_grads(&net, &g2, || unrolled_loss(&gpu, &net, eta, (&xt, &yt), (&xv, &yv)), 1e-2, 1e-4, 1e-2);

    // The check means something only if the unrolled gradient differs from the first-order one
    // by more than the tolerance somewhere.
    let mut first = Architect::new(&net, ArchitectConfig::default()).unwrap();
    let (g1, _) = first.alpha_gradient(&net, (&xt, &yt), (&xv, &yv), &step).unwrap();
    let g1 = [g1[0].to_vec().unwrap(), g1[1].to_vec().unwrap()];
    let gap = g1.iter().flatten().zip(g2.iter().flatten()).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    assert!(gap > 10.0 * worst.max(1e-5), "second order differs from first by only {gap:.2e} (FD error {worst:.2e})");
}

/// The seed's `test_darts_derive_architecture`: random alphas for 4 nodes over the 8 primitives
/// derive a genotype whose cells are valid model graphs.
#[test]
fn seed_derive_architecture() {
    let mut rng = Rng::new(4);
    let space = SearchSpace::darts();
    for rule in [wgpu_nas::space::DeriveRule::Top2, wgpu_nas::space::DeriveRule::Argmax] {
        let alphas = |rng: &mut Rng| -> Vec<Vec<f32>> { (0..14).map(|_| rng.normal_vec(8, 1.0)).collect() };
        let genotype = space.derive_genotype(&alphas(&mut rng), &alphas(&mut rng), rule).unwrap();
        let (normal, reduce) = wgpu_nas::space::ModelGraph::from_genotype(&genotype);
        for graph in [normal, reduce] {
            assert!(!graph.nodes.is_empty());
            assert!(graph.is_valid(&space.primitives()), "{:?}", graph.validate(&space.primitives()));
        }
    }
}

/// `none` costs nothing: a network with `none` among its candidates records exactly as many
/// dispatches, forward and backward, as the same network without it.
#[test]
fn the_none_op_spends_no_compute() {
    let gpu = Gpu::new().unwrap();
    let dispatches = |ops: &[&str]| {
        let mut rng = Rng::new(1);
        let mut config = NetworkConfig::darts(3, 10);
        config.channels = 4;
        config.layers = 3;
        config.space = SearchSpace::with_ops(ops).unwrap();
        let net = Network::new(&gpu, &mut rng, config).unwrap();
        let x = Tensor::from_slice(&gpu, &[2, 3, 8, 8], &rng.normal_vec(2 * 3 * 64, 1.0)).unwrap();
        let y = Tensor::from_u32(&gpu, &[2], &[1, 7]).unwrap();
        let before = gpu.dispatches();
        let loss = cross_entropy(&net.forward(&x, true).unwrap(), &y).unwrap();
        drop(gpu.backward(&loss).unwrap());
        gpu.dispatches() - before
    };
    let with_none = dispatches(&["none", "skip_connect", "avg_pool_3x3", "sep_conv_3x3"]);
    let without = dispatches(&["skip_connect", "avg_pool_3x3", "sep_conv_3x3"]);
    assert_eq!(with_none, without);
}

/// The collapse diagnostics' Hessian eigenvalue (power iteration on finite-difference
/// Hessian-vector products) against the largest eigenvalue of the explicit finite-difference
/// Hessian of the same loss, built column by column; the network is left as it was.
#[test]
fn hessian_eigenvalue_matches_the_explicit_finite_difference_hessian() {
    use wgpu_nas::darts::diagnostics::hessian_eigenvalue;
    let gpu = Gpu::new().unwrap();
    // A case whose eigenvalue of largest magnitude is negative (-0.0249): the largest, 0.0171,
    // takes the second, shifted pass.
    let (net, _, _, xv, yv) = tiny(&gpu, 7);
    let alphas = net.alphas();
    let start: Vec<f32> = [alphas[0].to_vec().unwrap(), alphas[1].to_vec().unwrap()].concat();
    let mut buffers = Vec::new();
    net.buffers("", &mut buffers);
    let bn_before: Vec<Vec<f32>> = buffers.iter().map(|(_, t)| t.to_vec().unwrap()).collect();

    let eps = 1e-2;
    let lambda = pollster::block_on(hessian_eigenvalue(&net, &xv, &yv, 60, eps, &mut Rng::new(1))).unwrap() as f64;

    assert_eq!([alphas[0].to_vec().unwrap(), alphas[1].to_vec().unwrap()].concat(), start, "alphas restored");
    let bn_after: Vec<Vec<f32>> = buffers.iter().map(|(_, t)| t.to_vec().unwrap()).collect();
    assert_eq!(bn_after, bn_before, "BN running statistics restored");

    // g(alpha): the alpha gradient of the validation loss, flattened.
    let n0 = alphas[0].numel();
    let grad_at = |a: &[f32]| -> Vec<f64> {
        alphas[0].write(&a[..n0]).unwrap();
        alphas[1].write(&a[n0..]).unwrap();
        let loss = cross_entropy(&net.forward(&xv, true).unwrap(), &yv).unwrap();
        let g = gpu.grad(&loss, &alphas).unwrap();
        g.iter().flat_map(|t| t.to_vec().unwrap()).map(|x| x as f64).collect()
    };
    let n = start.len();
    let mut h = vec![vec![0.0f64; n]; n];
    for j in 0..n {
        let (mut plus, mut minus) = (start.clone(), start.clone());
        plus[j] += eps;
        minus[j] -= eps;
        let (gp, gm) = (grad_at(&plus), grad_at(&minus));
        for i in 0..n {
            h[i][j] = (gp[i] - gm[i]) / (2.0 * eps as f64);
        }
    }
    // Symmetrised; its largest eigenvalue by many power iterations in f64 (on H, then on
    // H - lambda I when H's eigenvalue of largest magnitude is negative).
    let hs: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| 0.5 * (h[i][j] + h[j][i])).collect()).collect();
    let power = |shift: f64| {
        let mut v = vec![1.0f64; n];
        let mut mu = 0.0;
        for _ in 0..3000 {
            let hv: Vec<f64> = hs
                .iter()
                .zip(&v)
                .map(|(row, vi)| row.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() - shift * vi)
                .collect();
            let norm = hv.iter().map(|x| x * x).sum::<f64>().sqrt();
            mu = v.iter().zip(&hv).map(|(a, b)| a * b).sum::<f64>() / v.iter().map(|x| x * x).sum::<f64>();
            v = hv.iter().map(|x| x / norm).collect();
        }
        mu + shift
    };
    let dominant = power(0.0);
    let want = if dominant < 0.0 { power(dominant) } else { dominant };
    assert!(want.abs() > 1e-3, "the tiny case has curvature: {want}");
    assert!((lambda - want).abs() <= 0.01 * want.abs(), "power iteration {lambda}, explicit Hessian {want}");
}

/// The unrolled step's kernels take several tensors per dispatch: the virtual SGD step (with and
/// without momentum) and the shift w += s[k] * v over tensors of sizes that straddle the groups
/// and the workgroups match the CPU, tensor by tensor, in a handful of dispatches.
#[test]
fn the_unrolled_steps_multi_tensor_kernels_match_the_cpu() {
    use wgpu_nas::ops::architect::{shift_, virtual_step_};
    let gpu = Gpu::new().unwrap();
    let mut rng = Rng::new(11);
    let lens = [1usize, 5, 256, 257, 3, 1000, 2];
    let host = |rng: &mut Rng| -> Vec<Vec<f32>> { lens.iter().map(|&n| rng.normal_vec(n, 1.0)).collect() };
    let upload = |v: &[Vec<f32>]| -> Vec<Tensor> {
        v.iter().map(|x| Tensor::from_slice(&gpu, &[x.len()], x).unwrap()).collect()
    };
    let (w0, g, b, v) = (host(&mut rng), host(&mut rng), host(&mut rng), host(&mut rng));
    let (eta, wd) = (0.25f32, 0.01f32);
    for momentum in [0.0f32, 0.9] {
        let (w, gt, bt) = (upload(&w0), upload(&g), upload(&b));
        let hyper = Tensor::from_slice(&gpu, &[4], &[eta, momentum, wd, 0.01]).unwrap();
        let before = gpu.dispatches();
        let bufs: Vec<&Tensor> = bt.iter().collect();
        virtual_step_(&w, &gt, (momentum != 0.0).then_some(bufs.as_slice()), &hyper).unwrap();
        assert_eq!(gpu.dispatches() - before, 3, "7 tensors, 3 per dispatch");
        for t in 0..lens.len() {
            let got = w[t].to_vec().unwrap();
            for i in 0..lens[t] {
                let buf = if momentum != 0.0 { b[t][i] } else { 0.0 };
                let want = w0[t][i] - eta * (momentum * buf + g[t][i] + wd * w0[t][i]);
                assert!((got[i] - want).abs() <= 1e-6 * (1.0 + want.abs()), "momentum {momentum}, w[{t}][{i}]");
            }
        }
    }
    let (w, vt) = (upload(&w0), upload(&v));
    let s = Tensor::from_slice(&gpu, &[3], &[0.0, -0.5, 2.0]).unwrap();
    let before = gpu.dispatches();
    shift_(&w, &vt, &s, 2).unwrap();
    assert_eq!(gpu.dispatches() - before, 2, "7 tensors, 4 per dispatch");
    for t in 0..lens.len() {
        let got = w[t].to_vec().unwrap();
        for i in 0..lens[t] {
            assert!((got[i] - (w0[t][i] + 2.0 * v[t][i])).abs() <= 1e-6 * (1.0 + got[i].abs()), "shift w[{t}][{i}]");
        }
    }
    let mismatched = upload(&v[..6]);
    assert!(shift_(&w, &mismatched, &s, 2).is_err(), "one direction per tensor");
    assert!(shift_(&w, &vt, &s, 3).is_err(), "the scalar slot must exist");
}

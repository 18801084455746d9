//! The DARTS mixed operation (weighted_sum), alone and after softmax(alphas): GPU against plain
//! f64 loops, and against finite differences.

#[path = "support/softmax.rs"]
mod reference;
mod support;

use support::*;
use wgpu_nas::ops::{mixed_op, softmax as sm};
use wgpu_nas::rng::Rng;
use wgpu_nas::Tensor;

/// One alpha matrix: 14 edges x 8 primitives.
const EDGES: usize = 14;
const PRIMITIVES: usize = 8;

/// `count` weight indices of one random edge, distinct non-`none` primitives (k >= 1), the way a
/// DARTS edge passes them; with `count` > 7 the indices wrap and repeat.
fn edge_indices(rng: &mut Rng, count: usize) -> Vec<usize> {
    let edge = rng.below(EDGES);
    let mut ks: Vec<usize> = (1..PRIMITIVES).collect();
    rng.shuffle(&mut ks);
    (0..count).map(|t| edge * PRIMITIVES + ks[t % ks.len()]).collect()
}

#[test]
fn weighted_sum_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    // 1..7 terms (one DARTS edge), then 10 terms (two dispatches, repeated indices) on a shape
    // whose dot products need several partial sums.
    let cases: Vec<(usize, Vec<usize>)> =
        (1..=7).map(|t| (t, vec![2, 3, 5, 5])).chain([(10, vec![4, 8, 9, 9]), (3, vec![4, 8, 9, 9])]).collect();
    for (count, shape) in cases {
        let n: usize = shape.iter().product();
        let alphas = rng.normal_vec(EDGES * PRIMITIVES, 1.0);
        let w: Vec<f64> = reference::softmax(&to_f64(&alphas), PRIMITIVES);
        let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        let idx = edge_indices(&mut rng, count);
        let ys: Vec<Vec<f32>> = (0..count).map(|_| rand_vec(&mut rng, n)).collect();
        let dout = rand_vec(&mut rng, n);
        let what = format!("{count} terms of {shape:?}");

        let wt = Tensor::param(&gpu, &[EDGES, PRIMITIVES], &w32).unwrap();
        // The last term needs no gradient (a term whose input is data, not activations).
        let yts: Vec<Tensor> = ys
            .iter()
            .enumerate()
            .map(|(t, y)| {
                let yt = Tensor::from_slice(&gpu, &shape, y).unwrap();
                yt.set_requires_grad(t + 1 < count || count == 1);
                yt
            })
            .collect();
        let terms: Vec<(usize, &Tensor)> = idx.iter().copied().zip(&yts).collect();
        let out = mixed_op::weighted_sum(&wt, &terms).unwrap();
        assert_eq!(out.shape(), &shape[..]);
        let g = gpu.backward_from(&[(&out, Tensor::from_slice(&gpu, &shape, &dout).unwrap())]).unwrap();

        let w_used: Vec<f64> = w32.iter().map(|&v| v as f64).collect();
        let terms64: Vec<(usize, Vec<f64>)> = idx.iter().copied().zip(ys.iter().map(|y| to_f64(y))).collect();
        // Up to 10 products of magnitude 1 summed in f32.
        let want = reference::weighted_sum(&w_used, &terms64);
        assert_close(&format!("out, {what}"), &out.to_vec().unwrap(), &want, 1e-6, 1e-5);
        let (dw, dys) = reference::weighted_sum_backward(&w_used, &terms64, &to_f64(&dout));
        // Dot products over up to 2592 products of magnitude 1 (a sum of ~30 in f32).
        assert_close(&format!("dw, {what}"), &g.get(&wt).unwrap().to_vec().unwrap(), &dw, 1e-4, 1e-5);
        for (t, (yt, dy)) in yts.iter().zip(&dys).enumerate() {
            match g.get(yt) {
                Some(got) => assert_close(&format!("dy{t}, {what}"), &got.to_vec().unwrap(), dy, 1e-7, 1e-5),
                None => assert!(!yt.requires_grad(), "dy{t}: no gradient for a term that requires one"),
            }
        }
    }
}

#[test]
fn darts_edge_gradient_reaches_the_alphas() {
    let gpu = gpu();
    let mut rng = Rng::new(22);
    let shape = [2, 3, 5, 5];
    let n = 150;
    let alphas: Vec<f32> = rng.normal_vec(EDGES * PRIMITIVES, 1e-3);
    // Two edges of the cell, 7 and 4 primitives, summed into one node (as the tape sums dw).
    let idx_a = edge_indices(&mut rng, 7);
    let idx_b = edge_indices(&mut rng, 4);
    let ys_a: Vec<Vec<f32>> = (0..7).map(|_| rand_vec(&mut rng, n)).collect();
    let ys_b: Vec<Vec<f32>> = (0..4).map(|_| rand_vec(&mut rng, n)).collect();
    let dnode = rand_vec(&mut rng, n);

    let at = Tensor::param(&gpu, &[EDGES, PRIMITIVES], &alphas).unwrap();
    let w = sm::softmax(&at).unwrap();
    let up = |ys: &[Vec<f32>]| -> Vec<Tensor> { ys.iter().map(|y| Tensor::param(&gpu, &shape, y).unwrap()).collect() };
    let (yta, ytb) = (up(&ys_a), up(&ys_b));
    let edge_a = mixed_op::weighted_sum(&w, &idx_a.iter().copied().zip(&yta).collect::<Vec<_>>()).unwrap();
    let edge_b = mixed_op::weighted_sum(&w, &idx_b.iter().copied().zip(&ytb).collect::<Vec<_>>()).unwrap();
    let node = wgpu_nas::ops::elementwise::add(&edge_a, &edge_b).unwrap();
    let g = gpu.backward_from(&[(&node, Tensor::from_slice(&gpu, &shape, &dnode).unwrap())]).unwrap();

    let w64 = reference::softmax(&to_f64(&alphas), PRIMITIVES);
    let terms = |idx: &[usize], ys: &[Vec<f32>]| -> Vec<(usize, Vec<f64>)> {
        idx.iter().copied().zip(ys.iter().map(|y| to_f64(y))).collect()
    };
    let (dw_a, _) = reference::weighted_sum_backward(&w64, &terms(&idx_a, &ys_a), &to_f64(&dnode));
    let (dw_b, dys_b) = reference::weighted_sum_backward(&w64, &terms(&idx_b, &ys_b), &to_f64(&dnode));
    let dw: Vec<f64> = dw_a.iter().zip(&dw_b).map(|(a, b)| a + b).collect();
    let dalphas = reference::softmax_backward(&w64, &dw, PRIMITIVES);
    // Dot products over 150 terms, then one softmax backward row of 8.
    assert_close("dalphas", &g.get(&at).unwrap().to_vec().unwrap(), &dalphas, 1e-5, 1e-4);
    assert_close("dy of edge b", &g.get(&ytb[3]).unwrap().to_vec().unwrap(), &dys_b[3], 1e-7, 1e-5);
    // `none` (k = 0) is never a term, yet gets a gradient through the softmax.
    let none_grad = g.get(&at).unwrap().to_vec().unwrap()[(idx_a[0] / PRIMITIVES) * PRIMITIVES];
    assert!(none_grad != 0.0, "the none weight of a used edge gets a gradient through softmax");

    // Finite differences through softmax(alphas) -> weighted_sum, on a smaller edge.
    let small = [2, 3, 3, 3];
    let idx = edge_indices(&mut rng, 3);
    let mut inputs = vec![(vec![EDGES, PRIMITIVES], rng.normal_vec(EDGES * PRIMITIVES, 0.5))];
    inputs.extend((0..3).map(|_| (small.to_vec(), rand_vec(&mut rng, 54))));
    check_finite_differences(
        &gpu,
        &inputs,
        |t| {
            let w = sm::softmax(&t[0]).unwrap();
            let terms: Vec<(usize, &Tensor)> = idx.iter().copied().zip(&t[1..]).collect();
            mixed_op::weighted_sum(&w, &terms).unwrap()
        },
        1e-3,
        24,
        1e-2,
        5,
    );
}

#[test]
fn weighted_sum_rejects_bad_terms() {
    let gpu = gpu();
    let w = Tensor::zeros(&gpu, &[2, 4]).unwrap();
    let y = Tensor::zeros(&gpu, &[3]).unwrap();
    let z = Tensor::zeros(&gpu, &[4]).unwrap();
    assert!(mixed_op::weighted_sum(&w, &[]).is_err(), "no terms");
    assert!(mixed_op::weighted_sum(&w, &[(8, &y)]).is_err(), "index past w");
    assert!(mixed_op::weighted_sum(&w, &[(0, &y), (1, &z)]).is_err(), "shapes differ");
    let labels = Tensor::from_u32(&gpu, &[3], &[0, 1, 2]).unwrap();
    assert!(mixed_op::weighted_sum(&w, &[(0, &labels)]).is_err(), "u32 term");
}

/// GDAS's edge against the plain loop: with and without the chosen op's output (`none`), on a
/// shape small enough for one partial sum and one that needs several.
#[test]
fn hard_select_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(23);
    for (shape, with_y) in [(vec![2, 3, 5, 5], true), (vec![4, 8, 9, 9], true), (vec![2, 3, 4, 4], false)] {
        let n: usize = shape.iter().product();
        let h = rand_vec(&mut rng, EDGES * PRIMITIVES);
        let (edge, k) = (rng.below(EDGES), rng.below(PRIMITIVES));
        let y = rand_vec(&mut rng, n);
        let dout = rand_vec(&mut rng, n);
        let what = format!("edge {edge}, op {k}, {shape:?}, y: {with_y}");

        let ht = Tensor::param(&gpu, &[EDGES, PRIMITIVES], &h).unwrap();
        let yt = Tensor::param(&gpu, &shape, &y).unwrap();
        let out = mixed_op::hard_select(&ht, edge, k, with_y.then_some(&yt), &shape).unwrap();
        let g = gpu.backward_from(&[(&out, Tensor::from_slice(&gpu, &shape, &dout).unwrap())]).unwrap();

        let (h64, y64) = (to_f64(&h), to_f64(&y));
        let y_ref = with_y.then_some(&y64[..]);
        let want = reference::hard_select(&h64, edge * PRIMITIVES, k, PRIMITIVES, y_ref, n);
        assert_close(&format!("out, {what}"), &out.to_vec().unwrap(), &want, 1e-6, 1e-5);
        let (dh, dy) = reference::hard_select_backward(&h64, edge * PRIMITIVES, k, PRIMITIVES, y_ref, &to_f64(&dout));
        // Sums over up to 2592 values of magnitude 1.
        assert_close(&format!("dh, {what}"), &g.get(&ht).unwrap().to_vec().unwrap(), &dh, 1e-4, 1e-5);
        match (with_y, g.get(&yt)) {
            (true, Some(got)) => assert_close(&format!("dy, {what}"), &got.to_vec().unwrap(), &dy, 1e-7, 1e-5),
            (false, None) => {}
            (_, got) => panic!("{what}: dy present {}", got.is_some()),
        }
    }
}

#[test]
fn hard_select_matches_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(24);
    let shape = [2, 3, 3, 3];
    let inputs = vec![
        (vec![EDGES, PRIMITIVES], rng.normal_vec(EDGES * PRIMITIVES, 0.5)),
        (shape.to_vec(), rand_vec(&mut rng, 54)),
    ];
    check_finite_differences(
        &gpu,
        &inputs,
        |t| mixed_op::hard_select(&t[0], 5, 3, Some(&t[1]), &shape).unwrap(),
        1e-3,
        24,
        1e-2,
        6,
    );
}

/// The straight-through sample of GDAS: one-hot in value at argmax(alpha + g), and the
/// gradient the tape gives its alphas is that of the Gumbel-softmax p in h's place. An edge's
/// output is linear in h, so that gradient is the finite difference of
/// `hard_select(p(alpha))`, with the same sampled op.
#[test]
fn gdas_hard_sample_is_one_hot_and_its_gradient_reaches_the_alphas() {
    use wgpu_nas::darts::gdas::{gumbel_noise, hard_sample, sampled_ops};
    let gpu = gpu();
    let mut rng = Rng::new(25);
    let (edges, k, tau) = (3, 4, 0.7);
    let shape = [2, 2, 3, 3];
    let alphas = rng.normal_vec(edges * k, 0.5);
    let gumbels = gumbel_noise(&mut rng, edges * k);
    let index = sampled_ops(&alphas, &gumbels, k);
    let y = rand_vec(&mut rng, 36);
    let r = rand_vec(&mut rng, 36);
    let edge = 1;

    // Value: one-hot rows, the 1 at argmax((log_softmax(alpha) + g) / tau).
    let at = Tensor::param(&gpu, &[edges, k], &alphas).unwrap();
    let s = hard_sample(&at, &alphas, &gumbels, tau).unwrap();
    assert_eq!(s.index, index);
    let h = s.h.to_vec().unwrap();
    let logp = reference::log_softmax(&to_f64(&alphas), k);
    for e in 0..edges {
        let row: Vec<f64> = (0..k).map(|i| (logp[e * k + i] + gumbels[e * k + i] as f64) / tau as f64).collect();
        let best = (0..k).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        assert_eq!(index[e], best, "edge {e}");
        for i in 0..k {
            let want = if i == best { 1.0 } else { 0.0 };
            assert!((h[e * k + i] - want).abs() <= 1e-6, "h[{e}, {i}] = {} (want {want})", h[e * k + i]);
        }
    }

    // Gradient: the tape through the hard sample against finite differences of the soft edge.
    let yt = Tensor::from_slice(&gpu, &shape, &y).unwrap();
    let out = mixed_op::hard_select(&s.h, edge, index[edge], Some(&yt), &shape).unwrap();
    let g = gpu.backward_from(&[(&out, Tensor::from_slice(&gpu, &shape, &r).unwrap())]).unwrap();
    let analytic = g.get(&at).expect("the alphas get a gradient").to_vec().unwrap();
    drop(g);
    let soft = |a: &[f32]| -> f64 {
        let logp = reference::log_softmax(&to_f64(a), k);
        let logits: Vec<f64> = logp.iter().zip(&gumbels).map(|(l, &g)| (l + g as f64) / tau as f64).collect();
        let p = reference::softmax(&logits, k);
        let out = reference::hard_select(&p, edge * k, index[edge], k, Some(&to_f64(&y)), 36);
        out.iter().zip(&r).map(|(o, &r)| o * r as f64).sum()
    };
    let eps = 1e-3;
    for i in 0..edges * k {
        let (mut plus, mut minus) = (alphas.clone(), alphas.clone());
        plus[i] += eps;
        minus[i] -= eps;
        let numeric = (soft(&plus) - soft(&minus)) / (2.0 * eps as f64);
        let a = analytic[i] as f64;
        assert!(
            (a - numeric).abs() <= 1e-3 * numeric.abs().max(1.0),
            "dalpha[{i}]: tape {a}, finite difference {numeric}"
        );
        if i / k == edge {
            assert!(a != 0.0, "every alpha of the used edge gets a gradient (dalpha[{i}] = 0)");
        } else {
            assert_eq!(a, 0.0, "an unused edge's alphas get none");
        }
    }
}

/// A DARTS edge in training sums its ops through `bn_sum` (the ops' last BNs applied as the sum
/// reads their inputs, their outputs never written): the same bits as each op's weighted output
/// summed by `add_n`, and the same gradients to the input and the weights, at stride 1 and 2
/// (FactorizedReduce's BN among the terms), and with planes of 9 values (no fusion): the same
/// bits there too.
#[test]
fn fused_edge_sum_matches_the_ops_summed_one_by_one() {
    use wgpu_nas::nn::{Input, MixedOp, PRIMITIVES as OPS};
    use wgpu_nas::ops::elementwise;
    let gpu = gpu();
    let mut rng = Rng::new(41);
    // 48x48 planes: 4608 values a channel, the per-plane statistics (combine_coefficients).
    let cases = [([2, 4, 8, 8], 1), ([2, 4, 8, 8], 2), ([2, 4, 6, 6], 2), ([3, 4, 3, 3], 1), ([2, 4, 48, 48], 1)];
    for (shape, stride) in cases {
        let edge = 3;
        let op = MixedOp::new(&gpu, &mut rng, &OPS, 4, stride).unwrap();
        let n: usize = shape.iter().product();
        let xv = rand_vec(&mut rng, n);
        let wv = rng.uniform_vec(EDGES * PRIMITIVES, 0.1, 1.0);
        let dyv = rand_vec(&mut rng, n / stride / stride);
        let run = |fused: bool| {
            let x = Tensor::param(&gpu, &shape, &xv).unwrap();
            let w = Tensor::param(&gpu, &[EDGES, PRIMITIVES], &wv).unwrap();
            let input = Input::new(&x);
            let y = if fused {
                op.forward_shared(&input, &w, edge, true).unwrap()
            } else {
                let terms: Vec<Tensor> = op
                    .ops
                    .iter()
                    .filter_map(|(k, _, p)| p.forward_weighted(&input, true, &w, edge * PRIMITIVES + k).unwrap())
                    .collect();
                elementwise::add_n(&terms.iter().collect::<Vec<_>>()).unwrap()
            };
            // Not a constant: through a BN a constant dy has no gradient.
            let dy = Tensor::from_slice(&gpu, y.shape(), &dyv).unwrap();
            let g = gpu.backward_from(&[(&y, dy)]).unwrap();
            let dx = g.get(&x).unwrap().to_vec().unwrap();
            let dw = g.get(&w).unwrap().to_vec().unwrap();
            (y.to_vec().unwrap(), dx, dw)
        };
        let (y, dx, dw) = run(true);
        let (y_ref, dx_ref, dw_ref) = run(false);
        let case = format!("{shape:?} stride {stride}");
        assert_eq!(y, y_ref, "{case}: the output differs");
        // The BN terms' backward in one pass (bn_sum_sums, large planes) sums as each BN's own.
        assert_eq!(dx, dx_ref, "{case}: dx differs");
        assert_eq!(dw, dw_ref, "{case}: dw differs");
        assert!(
            dw_ref[edge * PRIMITIVES + 1..(edge + 1) * PRIMITIVES].iter().all(|v| *v != 0.0),
            "{case}: a weight without gradient"
        );
    }
}

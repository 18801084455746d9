//! 2-D convolution: GPU forward and gradients (x, weight, bias) against a plain f64 loop, and
//! against central finite differences; shape errors; deterministic weight gradients.

#[path = "support/conv.rs"]
mod reference;
mod support;

use reference::{conv2d_backward, conv2d_forward, ConvShape};
use support::*;
use wgpu_nas::ops::conv::{conv2d, Conv2d};
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor, Tuning};

/// One row of the table: x [N, C_in, H, W], w [C_out, C_in/groups, kH, kW], geometry, bias.
struct Row {
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    spec: Conv2d,
    bias: bool,
}

const fn row(name: &'static str, x: [usize; 4], w: [usize; 4], spec: [usize; 4], bias: bool) -> Row {
    let spec = Conv2d { stride: [spec[0]; 2], padding: [spec[1]; 2], dilation: spec[2], groups: spec[3] };
    Row { name, x, w, spec, bias }
}

/// A row whose stride and padding differ between the axes: `[along H, along W]`.
const fn row_per_axis(
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 2],
    groups: usize,
    bias: bool,
) -> Row {
    Row { name, x, w, spec: Conv2d { stride, padding, dilation: 1, groups }, bias }
}

// spec: [stride, padding, dilation, groups]
const ROWS: &[Row] = &[
    row("stem k3 3->5", [2, 3, 7, 7], [5, 3, 3, 3], [1, 1, 1, 1], true),
    row("full k3 s2 on 9x9", [2, 5, 9, 9], [6, 5, 3, 3], [2, 1, 1, 1], false),
    row("full k5 on 5x6", [1, 3, 5, 6], [4, 3, 5, 5], [1, 2, 1, 1], true),
    row("depthwise k3 s2 on 9x9", [2, 6, 9, 9], [6, 1, 3, 3], [2, 1, 1, 6], false),
    row("depthwise k5 d2 on 7x7", [2, 5, 7, 7], [5, 1, 5, 5], [1, 4, 2, 5], true),
    row("depthwise k3 s2 d2 on 5x6", [2, 3, 5, 6], [3, 1, 3, 3], [2, 2, 2, 3], false),
    row("depthwise k5 s2 d2 on 9x9", [1, 6, 9, 9], [6, 1, 5, 5], [2, 4, 2, 6], false),
    row("depthwise, 2 filters per channel", [1, 3, 7, 7], [6, 1, 3, 3], [1, 1, 1, 3], true),
    row("groups 2 k3 6->4", [2, 6, 7, 7], [4, 3, 3, 3], [1, 1, 1, 2], true),
    row("groups 3 k1 s2 on 9x9 (FactorizedReduce)", [3, 6, 9, 9], [6, 2, 1, 1], [2, 0, 1, 3], false),
    row("pointwise 5->3 on 5x6", [2, 5, 5, 6], [3, 5, 1, 1], [1, 0, 1, 1], true),
    row("pointwise with padding", [1, 3, 4, 5], [4, 3, 1, 1], [1, 1, 1, 1], true),
    row("non-square 1x3 s2 d2, groups 2", [2, 4, 6, 9], [6, 2, 1, 3], [2, 0, 2, 2], true),
    // 49 taps: the weight gradient splits each filter slice into two blocks of taps.
    row("k7 on 9x9", [1, 2, 9, 9], [3, 2, 7, 7], [1, 3, 1, 1], false),
    // 4*17*17 = 1156 output positions, past one chunk (1024): the weight and bias gradients
    // sum per-chunk partials.
    row("depthwise k3 on 4x17x17 (chunked reductions)", [4, 2, 17, 17], [2, 1, 3, 3], [1, 1, 1, 2], true),
    // The register-blocked kernels (pointwise: 1x1, stride 1, H*W a multiple of 4, no bias;
    // depthwise: one filter per channel, no bias), at block edges: rows past a block of 8,
    // a last vec4 without its pair, strips of 8 columns cut short.
    row("pointwise fast 8->12 on 4x4", [2, 8, 4, 4], [12, 8, 1, 1], [1, 0, 1, 1], false),
    row("pointwise fast 6->5 on 2x2", [3, 6, 2, 2], [5, 6, 1, 1], [1, 0, 1, 1], false),
    row("pointwise fast 3->16 on 6x6", [3, 3, 6, 6], [16, 3, 1, 1], [1, 0, 1, 1], false),
    row("pointwise fast 16->9 on 8x8", [4, 16, 8, 8], [9, 16, 1, 1], [1, 0, 1, 1], false),
    // 3*144/4 = 108 vec4 positions, past one chunk (64): the weight gradient sums two partials,
    // the second starting inside an image.
    row(
        "pointwise fast 10->12 on 12x12 (chunked weight gradient)",
        [3, 10, 12, 12],
        [12, 10, 1, 1],
        [1, 0, 1, 1],
        false,
    ),
    // C_in a multiple of 4: the weights read as vec4 (rows of w forward, columns transposed),
    // with a last block of rows half past the end, and blocks of 4 vec4 columns cut short.
    row("pointwise wide 12->10 on 6x6", [2, 12, 6, 6], [10, 12, 1, 1], [1, 0, 1, 1], false),
    row("pointwise wide 4->20 on 2x10", [3, 4, 2, 10], [20, 4, 1, 1], [1, 0, 1, 1], false),
    row("pointwise wide 24->8 on 4x6", [2, 24, 4, 6], [8, 24, 1, 1], [1, 0, 1, 1], false),
    // Blocks of 16 rows (R and K >= 16): vec4 weights and scalar ones, a last block cut short.
    row("pointwise wide 20->18 on 6x6, 16-row blocks", [2, 20, 6, 6], [18, 20, 1, 1], [1, 0, 1, 1], false),
    row("pointwise 18->17 on 2x2, 16-row blocks", [3, 18, 2, 2], [17, 18, 1, 1], [1, 0, 1, 1], false),
    // Weights of more than 16384 values (132 * 128 = 16896): read from storage, not a uniform copy.
    row(
        "pointwise wide 132->128 on 2x2, weights past the uniform copy",
        [1, 132, 2, 2],
        [128, 132, 1, 1],
        [1, 0, 1, 1],
        false,
    ),
    row("depthwise fast k3 on 9x11", [2, 3, 9, 11], [3, 1, 3, 3], [1, 1, 1, 3], false),
    row("depthwise fast k5 on 6x17", [2, 2, 6, 17], [2, 1, 5, 5], [1, 2, 1, 2], false),
    row("depthwise fast k3 d2 on 8x8", [2, 4, 8, 8], [4, 1, 3, 3], [1, 2, 2, 4], false),
    row("depthwise fast k5 d2 on 10x10", [2, 3, 10, 10], [3, 1, 5, 5], [1, 4, 2, 3], false),
    row("depthwise fast k5 s2 on 11x11", [2, 3, 11, 11], [3, 1, 5, 5], [2, 2, 1, 3], false),
    row("depthwise fast k5 s2 d2 on 16x16", [2, 2, 16, 16], [2, 1, 5, 5], [2, 4, 2, 2], false),
    // Rows of a multiple of 4 values: segments loaded as vec4s (padding 1, 2, 4; and the
    // rotated-kernel input gradients with the same paddings).
    row("depthwise vec4 k3 on 6x12", [2, 3, 6, 12], [3, 1, 3, 3], [1, 1, 1, 3], false),
    row("depthwise vec4 k5 on 5x8", [2, 2, 5, 8], [2, 1, 5, 5], [1, 2, 1, 2], false),
    row("depthwise vec4 k5 d2 on 9x20", [1, 2, 9, 20], [2, 1, 5, 5], [1, 4, 2, 2], false),
    // Output planes a multiple of 8 wide, stored as vec4s (and their dy read as such), at
    // stride 2 with the input 8k (both vec4) or not (dy as vec4s, dx scalar); 4 output rows per
    // forward invocation over 11 rows (a partial last group) and dilated over 10.
    row("depthwise vec4 out k3 s2 on 7x16", [2, 3, 7, 16], [3, 1, 3, 3], [2, 1, 1, 3], false),
    row("depthwise vec4 out k5 s2 on 9x15", [1, 2, 9, 15], [2, 1, 5, 5], [2, 2, 1, 2], false),
    row("depthwise vec4 out k3 on 11x16", [2, 2, 11, 16], [2, 1, 3, 3], [1, 1, 1, 2], false),
    row("depthwise vec4 out k3 d2 on 10x8", [2, 2, 10, 8], [2, 1, 3, 3], [1, 2, 2, 2], false),
    // The strips' forward pass and weight gradient on full and grouped convs (the stem).
    row("full strips k3 3->6 on 9x10", [2, 3, 9, 10], [6, 3, 3, 3], [1, 1, 1, 1], false),
    row("grouped strips k5 s2 6->4 on 11x11", [2, 6, 11, 11], [4, 3, 5, 5], [2, 2, 1, 2], false),
    // Filters of at most 4096 values reach the strips' forward pass as a uniform copy; this
    // one (24 * 24 * 9 = 5184) is read from storage, as are ENAS's full convs.
    row("full strips k3 24->24 on 6x8 (filter over 4096 values)", [1, 24, 6, 8], [24, 24, 3, 3], [1, 1, 1, 1], false),
    // conv_7x1_1x7's two convs, at stride 1 and 2 (stride and padding per axis: the direct kernels).
    row_per_axis("1x7 pad (0, 3) on 5x8", [2, 3, 5, 8], [4, 3, 1, 7], [1, 1], [0, 3], 1, false),
    row_per_axis("1x7 stride (1, 2) pad (0, 3) on 6x9", [2, 3, 6, 9], [4, 3, 1, 7], [1, 2], [0, 3], 1, false),
    row_per_axis("7x1 stride (2, 1) pad (3, 0) on 9x5", [2, 3, 9, 5], [3, 3, 7, 1], [2, 1], [3, 0], 1, true),
    row_per_axis("7x1 pad (3, 0) on 7x4", [1, 4, 7, 4], [4, 4, 7, 1], [1, 1], [3, 0], 1, false),
    // A depthwise conv the strips would take but for its per-axis stride and padding.
    row_per_axis("depthwise k3 stride (2, 1) pad (1, 0) on 7x8", [2, 3, 7, 8], [3, 1, 3, 3], [2, 1], [1, 0], 3, false),
];

fn check_row(gpu: &Gpu, rng: &mut Rng, r: &Row) {
    let shape = ConvShape { x: r.x, w: r.w, spec: r.spec };
    let y_shape = shape.y();
    let x = rand_vec(rng, r.x.iter().product());
    let w = rand_vec(rng, r.w.iter().product());
    let b = rand_vec(rng, r.w[0]);
    let dy = rand_vec(rng, y_shape.iter().product());

    let xt = Tensor::param(gpu, &r.x, &x).unwrap();
    let wt = Tensor::param(gpu, &r.w, &w).unwrap();
    let bt = Tensor::param(gpu, &[r.w[0]], &b).unwrap();
    let bias = r.bias.then_some(&bt);
    let y = conv2d(&xt, &wt, bias, r.spec).unwrap();
    assert_eq!(y.shape(), y_shape, "{}: output shape", r.name);
    let g = gpu.backward_from(&[(&y, Tensor::from_slice(gpu, &y_shape, &dy).unwrap())]).unwrap();

    let (xd, wd, bd, dyd) = (to_f64(&x), to_f64(&w), to_f64(&b), to_f64(&dy));
    let want_y = conv2d_forward(&shape, &xd, &wd, r.bias.then_some(&bd[..]));
    let (want_dx, want_dw, want_db) = conv2d_backward(&shape, &xd, &wd, &dyd);
    let name = r.name;
    // Forward and dx sum at most C*k*k (<= 150) f32 products of magnitude <= 1.
    assert_close(&format!("{name}: y"), &y.to_vec().unwrap(), &want_y, 1e-5, 1e-5);
    assert_close(&format!("{name}: dx"), &g.get(&xt).unwrap().to_vec().unwrap(), &want_dx, 1e-5, 1e-5);
    // dw and dbias sum up to N*OH*OW (<= 1156) products: f32 rounding grows like its sqrt.
    assert_close(&format!("{name}: dw"), &g.get(&wt).unwrap().to_vec().unwrap(), &want_dw, 5e-5, 1e-5);
    if r.bias {
        assert_close(&format!("{name}: dbias"), &g.get(&bt).unwrap().to_vec().unwrap(), &want_db, 5e-5, 1e-5);
    } else {
        assert!(g.get(&bt).is_none(), "{name}: no bias, no bias gradient");
    }
}

#[test]
fn conv2d_matches_cpu_reference() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    for r in ROWS {
        check_row(&gpu, &mut rng, r);
    }
}

/// Depthwise convolutions under every tuning an adapter may pick: the strips at each row count
/// (lavapipe 4) and the direct kernels (SwiftShader): the same values as the reference.
#[test]
fn depthwise_matches_cpu_reference_under_every_tuning() {
    let gpu = gpu();
    let mut rng = Rng::new(13);
    for (strips, rows) in [(true, 1), (true, 2), (true, 4), (false, 1)] {
        gpu.set_tuning(Tuning { depthwise_strips: strips, depthwise_rows: rows, ..gpu.tuning() }).unwrap();
        for r in ROWS.iter().filter(|r| r.name.starts_with("depthwise")) {
            check_row(&gpu, &mut rng, r);
        }
    }
    let err = gpu.set_tuning(Tuning { depthwise_rows: 3, ..gpu.tuning() }).unwrap_err().to_string();
    assert!(err.contains("depthwise_rows must be 1, 2 or 4, got 3"), "{err}");
}

/// Pointwise convolutions with the weights from storage and from a uniform copy (CPU adapters):
/// the same values as the reference.
#[test]
fn pointwise_matches_cpu_reference_with_either_weight_source() {
    let gpu = gpu();
    let mut rng = Rng::new(14);
    for uniform in [false, true] {
        gpu.set_tuning(Tuning { pointwise_uniform_weights: uniform, ..gpu.tuning() }).unwrap();
        for r in ROWS.iter().filter(|r| r.name.starts_with("pointwise")) {
            check_row(&gpu, &mut rng, r);
        }
    }
}

#[test]
fn conv2d_computes_only_the_gradients_asked_for() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    let spec = Conv2d::new(2, 1, 1, 1);
    let shape = ConvShape { x: [2, 3, 7, 7], w: [4, 3, 3, 3], spec };
    let x = rand_vec(&mut rng, 2 * 3 * 7 * 7);
    let w = rand_vec(&mut rng, 4 * 3 * 3 * 3);
    let b = rand_vec(&mut rng, 4);
    // The input (a data batch) needs no gradient; the weight does; the bias is frozen.
    let xt = Tensor::from_slice(&gpu, &shape.x, &x).unwrap();
    let wt = Tensor::param(&gpu, &shape.w, &w).unwrap();
    let bt = Tensor::from_slice(&gpu, &[4], &b).unwrap();
    let y = conv2d(&xt, &wt, Some(&bt), spec).unwrap();
    let dy = rand_vec(&mut rng, y.numel());
    let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, y.shape(), &dy).unwrap())]).unwrap();
    assert!(g.get(&xt).is_none() && g.get(&bt).is_none(), "gradients only where asked");
    let (_, want_dw, _) = conv2d_backward(&shape, &to_f64(&x), &to_f64(&w), &to_f64(&dy));
    assert_close("dw", &g.get(&wt).unwrap().to_vec().unwrap(), &want_dw, 5e-5, 1e-5);

    // Nothing requires a gradient: nothing is recorded.
    let _ = conv2d(&xt, &Tensor::from_slice(&gpu, &shape.w, &w).unwrap(), None, spec).unwrap();
    assert_eq!(gpu.tape_len(), 0);
}

#[test]
fn conv2d_matches_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(13);
    // (x, w, spec): a full stride-2 conv, a dilated depthwise one, conv_7x1_1x7's (1, 7) and
    // (7, 1) convs at stride 2, and a pointwise one (its gradients on the register-blocked
    // kernels), each with a bias.
    let cases = [
        ([1, 2, 5, 5], [3, 2, 3, 3], Conv2d::new(2, 1, 1, 1)),
        ([1, 3, 5, 5], [3, 1, 3, 3], Conv2d::new(1, 2, 2, 3)),
        ([1, 2, 4, 7], [2, 2, 1, 7], Conv2d::per_axis([1, 2], [0, 3], 1, 1)),
        ([1, 2, 7, 4], [2, 2, 7, 1], Conv2d::per_axis([2, 1], [3, 0], 1, 1)),
        ([2, 4, 2, 6], [3, 4, 1, 1], Conv2d::new(1, 0, 1, 1)),
    ];
    for (i, (xs, ws, spec)) in cases.into_iter().enumerate() {
        let inputs = vec![
            (xs.to_vec(), rand_vec(&mut rng, xs.iter().product())),
            (ws.to_vec(), rand_vec(&mut rng, ws.iter().product())),
            (vec![ws[0]], rand_vec(&mut rng, ws[0])),
        ];
        // The conv is linear in each input, so the differences are exact up to f32 rounding of
        // the loss (~1e-6) over 2*eps.
        check_finite_differences(
            &gpu,
            &inputs,
            |t| conv2d(&t[0], &t[1], Some(&t[2]), spec).unwrap(),
            1e-2,
            30,
            2e-3,
            i as u64,
        );
    }
}

#[test]
fn conv2d_rejects_bad_shapes() {
    let gpu = gpu();
    let t = |shape: &[usize]| Tensor::zeros(&gpu, shape).unwrap();
    let x = t(&[2, 6, 8, 8]);
    let bad: [(&str, Tensor, Tensor, Option<Tensor>, Conv2d); 10] = [
        ("groups must divide C_in", x.clone(), t(&[4, 1, 3, 3]), None, Conv2d::new(1, 1, 1, 4)),
        ("groups must divide C_out", x.clone(), t(&[5, 2, 3, 3]), None, Conv2d::new(1, 1, 1, 3)),
        ("weight in-channels", x.clone(), t(&[4, 3, 3, 3]), None, Conv2d::new(1, 1, 1, 1)),
        ("kernel larger than padded input", x.clone(), t(&[4, 6, 5, 5]), None, Conv2d::new(1, 0, 3, 1)),
        ("bias length", x.clone(), t(&[4, 6, 3, 3]), Some(t(&[5])), Conv2d::new(1, 1, 1, 1)),
        ("stride 0", x.clone(), t(&[4, 6, 3, 3]), None, Conv2d::new(0, 1, 1, 1)),
        ("stride 0 along W", x.clone(), t(&[4, 6, 1, 7]), None, Conv2d::per_axis([1, 0], [0, 3], 1, 1)),
        (
            "7 taps along W without padding there",
            x.clone(),
            t(&[4, 6, 1, 9]),
            None,
            Conv2d::per_axis([1, 1], [4, 0], 1, 1),
        ),
        ("input rank", t(&[6, 8, 8]), t(&[4, 6, 3, 3]), None, Conv2d::default()),
        ("weight rank", x.clone(), t(&[4, 6, 3]), None, Conv2d::default()),
    ];
    for (what, x, w, b, spec) in bad {
        let err = conv2d(&x, &w, b.as_ref(), spec).expect_err(what);
        assert!(err.to_string().contains("conv2d"), "{what}: {err}");
    }
    // The boundary: a 5x5 kernel exactly fills an unpadded 5x5 input.
    let y = conv2d(&t(&[1, 1, 5, 5]), &t(&[1, 1, 5, 5]), None, Conv2d::default()).unwrap();
    assert_eq!(y.shape(), [1, 1, 1, 1]);
}

#[test]
fn conv2d_weight_gradient_is_deterministic() {
    let gpu = gpu();
    let mut rng = Rng::new(14);
    // Enough positions for several chunks, so the partials' order matters: a depthwise conv
    // (the strips) and a pointwise one.
    let cases = [
        ([4, 2, 17, 17], [2, 1, 3, 3], Conv2d::new(1, 1, 1, 2)),
        ([4, 8, 16, 16], [8, 8, 1, 1], Conv2d::new(1, 0, 1, 1)),
    ];
    for (xs, ws, spec) in cases {
        let x = rand_vec(&mut rng, xs.iter().product());
        let w = rand_vec(&mut rng, ws.iter().product());
        let dw = || {
            let wt = Tensor::param(&gpu, &ws, &w).unwrap();
            let y = conv2d(&Tensor::from_slice(&gpu, &xs, &x).unwrap(), &wt, None, spec).unwrap();
            let dy = Tensor::full(&gpu, y.shape(), 0.1).unwrap();
            gpu.backward_from(&[(&y, dy)]).unwrap().get(&wt).unwrap().to_vec().unwrap()
        };
        let first = dw();
        assert_eq!(dw(), first, "same bits every time");
    }
}

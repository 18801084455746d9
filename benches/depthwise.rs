//! The depthwise kernels of one DARTS search step (`bench darts`' defaults: C=8, 5 cells, batch
//! 32, 32x32 images), alone: every depthwise convolution of the step with its count of forward
//! passes, input gradients and weight gradients, each shape first validated against the f64 CPU
//! reference of tests/support, then traced and replayed per kernel class as `bench darts
//! --profile` does.
//!
//!     cargo bench --bench depthwise

#[path = "../tests/support/conv.rs"]
mod reference;

use reference::ConvShape;
use wgpu_nas::ops::conv::{conv2d, Conv2d};
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor};

/// One convolution of the step: channels in and out, groups, input side, kernel, dilation,
/// stride, and how often the step runs its forward pass, input gradient and weight gradient.
struct Use {
    c_in: usize,
    c_out: usize,
    groups: usize,
    hw: usize,
    k: usize,
    dil: usize,
    stride: usize,
    fwd: usize,
    dx: usize,
    dw: usize,
}

/// The step's depthwise convolutions (counted from a traced step): the sep_conv and dil_conv
/// halves of the three cell sizes (stride 2 on the reduction cells' input edges) and the stem.
fn step_uses() -> Vec<Use> {
    let mut uses = vec![];
    let dw = |c, hw, k, dil, stride, fwd, dx, dw| Use { c_in: c, c_out: c, groups: c, hw, k, dil, stride, fwd, dx, dw };
    for (c, hw, undilated, dilated) in
        [(32, 8, (96, 96, 48), (40, 40, 20)), (16, 16, (96, 92, 48), (40, 40, 20)), (8, 32, (56, 40, 28), (28, 20, 14))]
    {
        for k in [3, 5] {
            for (dil, (f, x, w)) in [(1, undilated), (2, dilated)] {
                uses.push(dw(c, hw, k, dil, 1, f, x, w));
            }
        }
    }
    for (c, hw, dx) in [(32, 16, 16), (16, 32, 12)] {
        for k in [3, 5] {
            for dil in [1, 2] {
                uses.push(dw(c, hw, k, dil, 2, 16, dx, 8));
            }
        }
    }
    // The stem: a full 3x3 conv, 3 -> 24 channels, through the same strips.
    uses.push(Use { c_in: 3, c_out: 24, groups: 1, hw: 32, k: 3, dil: 1, stride: 1, fwd: 2, dx: 0, dw: 1 });
    uses
}

fn max_err(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).abs()).fold(0.0, f64::max) / scale
}

fn main() {
    let gpu = Gpu::new().expect("a wgpu adapter");
    println!("adapter: {}", gpu.adapter());
    let mut rng = Rng::new(0);
    let f64v = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
    let mut tensors = vec![];
    for u in step_uses() {
        let spec = Conv2d::new(u.stride, u.dil * (u.k - 1) / 2, u.dil, u.groups);
        let shape = ConvShape { x: [32, u.c_in, u.hw, u.hw], w: [u.c_out, u.c_in / u.groups, u.k, u.k], spec };
        let xv = rng.uniform_vec(shape.x.iter().product(), -1.0, 1.0);
        let wv = rng.uniform_vec(shape.w.iter().product(), -1.0, 1.0);
        let dyv = rng.uniform_vec(shape.y().iter().product(), -1.0, 1.0);
        let x = Tensor::param(&gpu, &shape.x, &xv).unwrap();
        let w = Tensor::param(&gpu, &shape.w, &wv).unwrap();
        let dy = Tensor::from_slice(&gpu, &shape.y(), &dyv).unwrap();
        let y = conv2d(&x, &w, None, spec).unwrap();
        let grads = gpu.backward_from(&[(&y, dy.clone())]).unwrap();
        let want_y = reference::conv2d_forward(&shape, &f64v(&xv), &f64v(&wv), None);
        let (want_dx, want_dw, _) = reference::conv2d_backward(&shape, &f64v(&xv), &f64v(&wv), &f64v(&dyv));
        let err = max_err(&y.to_vec().unwrap(), &want_y)
            .max(max_err(&grads.get(&x).unwrap().to_vec().unwrap(), &want_dx))
            .max(max_err(&grads.get(&w).unwrap().to_vec().unwrap(), &want_dw));
        assert!(err < 1e-4, "{:?} {:?} {spec:?}: relative error {err:.2e}", shape.x, shape.w);
        // The same data without gradients: for the input-gradient-only and forward-only uses.
        let xc = Tensor::from_slice(&gpu, &shape.x, &xv).unwrap();
        let wc = Tensor::from_slice(&gpu, &shape.w, &wv).unwrap();
        tensors.push((u, spec, x, w, xc, wc, dy));
    }
    gpu.synchronize();

    // One step's depthwise work, traced: both gradients, then dx only (or dw only), then
    // forward passes alone, each as often as the step runs them.
    let record = || {
        for (u, spec, x, w, xc, wc, dy) in &tensors {
            let both = u.dx.min(u.dw);
            for _ in 0..both {
                let y = conv2d(x, w, None, *spec).unwrap();
                drop(gpu.backward_from(&[(&y, dy.clone())]).unwrap());
            }
            let (xs, ws, n) = if u.dx > u.dw { (x, wc, u.dx - both) } else { (xc, w, u.dw - both) };
            for _ in 0..n {
                let y = conv2d(xs, ws, None, *spec).unwrap();
                drop(gpu.backward_from(&[(&y, dy.clone())]).unwrap());
            }
            for _ in 0..u.fwd - u.dx.max(u.dw) {
                gpu.no_grad(|| conv2d(xc, wc, None, *spec).unwrap());
            }
        }
    };
    record();
    gpu.synchronize();
    gpu.start_trace();
    record();
    let trace = gpu.take_trace();
    gpu.synchronize();
    let reps = std::env::var("DW_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let kernels = gpu.replay(&trace, reps);

    let mut totals: Vec<(String, usize, f64, u64)> = vec![];
    for k in kernels.iter().filter(|k| k.kernel.starts_with("depthwise::")) {
        match totals.iter_mut().find(|t| t.0 == k.kernel) {
            Some(t) => {
                t.1 += k.calls;
                t.2 += k.seconds;
                t.3 += k.flops;
            }
            None => totals.push((k.kernel.clone(), k.calls, k.seconds, k.flops)),
        }
    }
    let row = |name: &str, calls: usize, s: f64, flops: u64, class: &str| {
        println!("{name:<28} {calls:>6} {:>9.2} {:>8.2}  {class}", 1e3 * s, flops as f64 / s / 1e9);
    };
    println!("{:<28} {:>6} {:>9} {:>8}  class", "kernel", "calls", "ms", "GFLOP/s");
    let all: (usize, f64, u64) = totals.iter().fold((0, 0.0, 0), |a, t| (a.0 + t.1, a.1 + t.2, a.2 + t.3));
    for (name, calls, s, flops) in &totals {
        row(name, *calls, *s, *flops, "(all)");
    }
    row("depthwise (all)", all.0, all.1, all.2, "");
    println!();
    for k in kernels.iter().filter(|k| k.kernel.starts_with("depthwise::")) {
        row(&k.kernel, k.calls, k.seconds, k.flops, &k.class);
    }
    let others: f64 = kernels.iter().filter(|k| !k.kernel.starts_with("depthwise::")).map(|k| k.seconds).sum();
    println!("\nother kernels of these convs (sum_chunks, gradient plumbing): {:.2} ms", 1e3 * others);
}

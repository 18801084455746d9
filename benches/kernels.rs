//! Kernel benchmark on the DARTS shapes: each kernel is first validated against the plain f64
//! CPU reference of tests/support (forward and both gradients), then timed.
//!
//!     cargo bench --bench kernels              # the shapes of a DARTS search network
//!     cargo bench --bench kernels -- --full    # batch 32/64 x C 16/32/64 x 32/16/8 pixels
//!
//! Timing: pipelines are compiled and the buffer pool warmed first; then `reps` iterations are
//! recorded back to back (the caches make them allocation-free) and submitted, and the wall time
//! until the GPU is idle is divided by `reps`. Backward = time(forward + backward) - time(forward);
//! it computes dx and dw, twice the forward's multiply-adds.

#[path = "../tests/support/conv.rs"]
mod reference;

use std::time::Instant;

use reference::ConvShape;
use wgpu_nas::ops::conv::{conv2d, Conv2d};
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor};

struct Kind {
    name: &'static str,
    k: usize,
    dilation: usize,
    depthwise: bool,
}

const KINDS: [Kind; 5] = [
    Kind { name: "dw 3x3", k: 3, dilation: 1, depthwise: true },
    Kind { name: "dw 5x5", k: 5, dilation: 1, depthwise: true },
    Kind { name: "dw 3x3 dil 2", k: 3, dilation: 2, depthwise: true },
    Kind { name: "dw 5x5 dil 2", k: 5, dilation: 2, depthwise: true },
    Kind { name: "pw 1x1", k: 1, dilation: 1, depthwise: false },
];

fn max_err(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).abs()).fold(0.0, f64::max) / scale
}

/// Seconds per iteration of `f`, recorded `reps` times back to back.
fn time(gpu: &Gpu, reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    gpu.synchronize();
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    gpu.synchronize();
    start.elapsed().as_secs_f64() / reps as f64
}

fn main() {
    let full = std::env::args().any(|a| a == "--full");
    let gpu = Gpu::new().expect("a wgpu adapter");
    println!("adapter: {}", gpu.adapter());
    // A search network's cells: C=16 at 32x32, C=32 at 16x16, C=64 at 8x8.
    let mut shapes = vec![];
    for batch in [32, 64] {
        if full {
            for c in [16, 32, 64] {
                for hw in [32, 16, 8] {
                    shapes.push((batch, c, hw));
                }
            }
        } else {
            shapes.extend([(batch, 16, 32), (batch, 32, 16), (batch, 64, 8)]);
        }
    }
    let cpu_like = gpu.adapter().device_type == "Cpu";
    println!(
        "{:<14} {:>5} {:>4} {:>6} | {:>9} {:>8} | {:>9} {:>8} | {:>9}",
        "kernel", "batch", "C", "HxW", "fwd ms", "GFLOP/s", "bwd ms", "GFLOP/s", "max rel err"
    );
    let mut rng = Rng::new(0);
    for (batch, c, hw) in shapes {
        for kind in &KINDS {
            let groups = if kind.depthwise { c } else { 1 };
            let pad = kind.dilation * (kind.k - 1) / 2;
            let spec = Conv2d::new(1, pad, kind.dilation, groups);
            let shape = ConvShape { x: [batch, c, hw, hw], w: [c, c / groups, kind.k, kind.k], spec };
            let xn = batch * c * hw * hw;
            let wn = c * (c / groups) * kind.k * kind.k;
            let (xv, wv) = (rng.uniform_vec(xn, -1.0, 1.0), rng.uniform_vec(wn, -1.0, 1.0));
            let dyv = rng.uniform_vec(xn, -1.0, 1.0);
            let x = Tensor::param(&gpu, &shape.x, &xv).unwrap();
            let w = Tensor::param(&gpu, &shape.w, &wv).unwrap();
            let dy = Tensor::from_slice(&gpu, &shape.y(), &dyv).unwrap();

            // Validate first: forward, dx and dw against the CPU.
            let y = conv2d(&x, &w, None, spec).unwrap();
            let grads = gpu.backward_from(&[(&y, dy.clone())]).unwrap();
            let f64v = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
            let want_y = reference::conv2d_forward(&shape, &f64v(&xv), &f64v(&wv), None);
            let (want_dx, want_dw, _) = reference::conv2d_backward(&shape, &f64v(&xv), &f64v(&wv), &f64v(&dyv));
            let err = max_err(&y.to_vec().unwrap(), &want_y)
                .max(max_err(&grads.get(&x).unwrap().to_vec().unwrap(), &want_dx))
                .max(max_err(&grads.get(&w).unwrap().to_vec().unwrap(), &want_dw));
            assert!(err < 1e-4, "{} {batch}x{c}x{hw}x{hw}: relative error {err:.2e}", kind.name);
            drop(grads);

            let flops = 2.0 * (batch * c * hw * hw * (c / groups) * kind.k * kind.k) as f64;
            let reps = if cpu_like { 2 } else { 50 };
            let t_fwd = time(&gpu, reps, || {
                gpu.no_grad(|| conv2d(&x, &w, None, spec).unwrap());
            });
            let t_both = time(&gpu, reps, || {
                let y = conv2d(&x, &w, None, spec).unwrap();
                drop(gpu.backward_from(&[(&y, dy.clone())]).unwrap());
            });
            let t_bwd = (t_both - t_fwd).max(1e-9);
            println!(
                "{:<14} {:>5} {:>4} {:>6} | {:>9.3} {:>8.2} | {:>9.3} {:>8.2} | {:>9.1e}",
                kind.name,
                batch,
                c,
                format!("{hw}x{hw}"),
                t_fwd * 1e3,
                flops / t_fwd / 1e9,
                t_bwd * 1e3,
                2.0 * flops / t_bwd / 1e9,
                err
            );
        }
    }
    let m = gpu.memory();
    println!(
        "GPU memory through the pool: peak {:.1} MiB, total {:.1} MiB",
        m.peak as f64 / 1048576.0,
        m.total as f64 / 1048576.0
    );
}

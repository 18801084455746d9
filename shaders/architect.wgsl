// The DARTS architect's second-order helpers: the virtual weight step of the unrolled model and
// the scalars of the finite-difference Hessian-vector product, all on the GPU (no readback).

struct Params {
    n: u32,     // elements
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// hyper = [eta (the weights' current learning rate), momentum, weight decay, radius r]
@group(0) @binding(1) var<storage, read> vs_hyper: array<f32>;
@group(0) @binding(2) var<storage, read> vs_g: array<f32>;
@group(0) @binding(3) var<storage, read> vs_buf: array<f32>;
@group(0) @binding(4) var<storage, read_write> vs_w: array<f32>;

// w' = w - eta * (momentum * buf + g + wd * w): the SGD step the weights would take, without
// touching the optimizer's state; one thread per element.
@compute @workgroup_size(256)
fn virtual_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let w = vs_w[i];
    vs_w[i] = w - vs_hyper[0] * (vs_hyper[1] * vs_buf[i] + vs_g[i] + vs_hyper[2] * w);
}

@group(0) @binding(1) var<storage, read> hs_hyper: array<f32>;
@group(0) @binding(2) var<storage, read_write> hs_s: array<f32>;

// From s[0] = ||v||^2: s[1] = R = r / ||v||, s[2] = -2R, s[3] = -eta / (2R), s[4] = eta / (2R).
// A single thread; a zero v gives R = r (the difference quotient is then zero).
@compute @workgroup_size(1)
fn hvp_scalars() {
    if (p.n == 0u) { return; }
    let norm = sqrt(hs_s[0]);
    var radius = hs_hyper[3];
    if (norm > 0.0) {
        radius = hs_hyper[3] / norm;
    }
    let c = hs_hyper[0] / (2.0 * radius);
    hs_s[1] = radius;
    hs_s[2] = -2.0 * radius;
    hs_s[3] = -c;
    hs_s[4] = c;
}

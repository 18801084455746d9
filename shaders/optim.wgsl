// Optimizer updates and gradient clipping, in place on the GPU. Hyper-parameters and the
// per-step scalars (learning rate, bias corrections) come from a small storage tensor `h`
// written before each step, never from Params (uniforms are cached by content). One thread per
// element; i = gid.x + gid.y * nwg.x * 256 (see gpu::grid_1d).

struct Params {
    n: u32,          // elements updated (sgd4, sgd_momentum3: of all its tensors; finish_norm: partial sums)
    max_norm: f32,   // clip_scale and clipped SGD
    offset: u32,     // sum_squares8: where this group's sums go
    count: u32,      // sum_squares8, sgd4, sgd_momentum3: tensors in this group (1..8, 1..4, 1..3)
    lens: array<vec4<u32>, 2>, // and the elements of tensor t, at lens[t / 4][t % 4]
}

// sgd_momentum3: 1 for Nesterov momentum.
override NESTEROV: u32 = 0u;
// sgd4, sgd_momentum3: scale the gradient by min(1, max_norm / (norm + 1e-6)) first, the norm in
// h[3] (gradient clipping folded into the update: no dispatch of its own).
override CLIP: bool = false;

@group(0) @binding(0) var<uniform> p: Params;

// adam: h (hyper-parameters), grad, param, then its first and second moments.
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg_sq: array<f32>;

// sgd4 and sgd_momentum3 update several parameters per dispatch (count of them, lens[0][t]
// elements each, n in all; the prelude's `segment`): h = [lr, momentum, weight_decay, norm],
// then (grad, param) for each of up to four parameters (sgd4), or (grad, param, momentum
// buffer) for each of up to three (sgd_momentum3).
@group(0) @binding(1) var<storage, read> sh: array<f32>;
@group(0) @binding(2) var<storage, read> sg0: array<f32>;
@group(0) @binding(3) var<storage, read_write> sp0: array<f32>;
@group(0) @binding(4) var<storage, read> sg1: array<f32>;
@group(0) @binding(5) var<storage, read_write> sp1: array<f32>;
@group(0) @binding(6) var<storage, read> sg2: array<f32>;
@group(0) @binding(7) var<storage, read_write> sp2: array<f32>;
@group(0) @binding(8) var<storage, read> sg3: array<f32>;
@group(0) @binding(9) var<storage, read_write> sp3: array<f32>;

@group(0) @binding(1) var<storage, read> mh: array<f32>;
@group(0) @binding(2) var<storage, read> mg0: array<f32>;
@group(0) @binding(3) var<storage, read_write> mp0: array<f32>;
@group(0) @binding(4) var<storage, read_write> mb0: array<f32>;
@group(0) @binding(5) var<storage, read> mg1: array<f32>;
@group(0) @binding(6) var<storage, read_write> mp1: array<f32>;
@group(0) @binding(7) var<storage, read_write> mb1: array<f32>;
@group(0) @binding(8) var<storage, read> mg2: array<f32>;
@group(0) @binding(9) var<storage, read_write> mp2: array<f32>;
@group(0) @binding(10) var<storage, read_write> mb2: array<f32>;

// The gradient g, scaled by min(1, max_norm / (norm + 1e-6)) when CLIP (norm = hyper[3]).
fn clipped(g: f32, hyper3: f32) -> f32 {
    if (CLIP) {
        return g * min(1.0, p.max_norm / (hyper3 + 1e-6));
    }
    return g;
}

// SGD without momentum: p -= lr * (g + wd * p).
fn sgd_rule(w: f32, g: f32) -> f32 {
    return w - sh[0] * (clipped(g, sh[3]) + sh[2] * w);
}

// SGD without momentum, h = [lr, momentum, weight_decay, norm], up to four parameters; one
// thread per element.
@compute @workgroup_size(256)
fn sgd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    let at = segment(i, p.count, p.lens[0]);
    let j = at.y;
    switch at.x {
        case 0u: { sp0[j] = sgd_rule(sp0[j], sg0[j]); }
        case 1u: { sp1[j] = sgd_rule(sp1[j], sg1[j]); }
        case 2u: { sp2[j] = sgd_rule(sp2[j], sg2[j]); }
        default: { sp3[j] = sgd_rule(sp3[j], sg3[j]); }
    }
}

// SGD with momentum (dampening 0): buf = m * buf + d with d = g + wd * p, then
// p -= lr * (d + m * buf) (Nesterov) or lr * buf. Returns (p, buf).
fn momentum_rule(w: f32, g: f32, b: f32) -> vec2<f32> {
    let m = mh[1];
    var d = clipped(g, mh[3]) + mh[2] * w;
    let buf = m * b + d;
    if (NESTEROV == 1u) {
        d = d + m * buf;
    } else {
        d = buf;
    }
    return vec2<f32>(w - mh[0] * d, buf);
}

// SGD with momentum, h = [lr, momentum, weight_decay, norm], up to three parameters; one thread
// per element.
@compute @workgroup_size(256)
fn sgd_momentum3(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    let at = segment(i, p.count, p.lens[0]);
    let j = at.y;
    switch at.x {
        case 0u: {
            let r = momentum_rule(mp0[j], mg0[j], mb0[j]);
            mp0[j] = r.x;
            mb0[j] = r.y;
        }
        case 1u: {
            let r = momentum_rule(mp1[j], mg1[j], mb1[j]);
            mp1[j] = r.x;
            mb1[j] = r.y;
        }
        default: {
            let r = momentum_rule(mp2[j], mg2[j], mb2[j]);
            mp2[j] = r.x;
            mb2[j] = r.y;
        }
    }
}

// Adam with coupled L2 decay, h = [lr, beta1, beta2, eps, weight_decay, 1 - beta1^t,
// sqrt(1 - beta2^t)]: p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps); one thread per element.
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    let b1 = h[1];
    let b2 = h[2];
    let w = param[i];
    let d = grad[i] + h[4] * w;
    let m = b1 * exp_avg[i] + (1.0 - b1) * d;
    let v = b2 * exp_avg_sq[i] + (1.0 - b2) * d * d;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    let step_size = h[0] / h[5];
    let denom = sqrt(v) / h[6] + h[3];
    param[i] = w - step_size * m / denom;
}

// sum_squares8: out[offset + t] = sum of squares of gradient t, for up to 8 gradients at once
@group(0) @binding(1) var<storage, read_write> sq_out: array<f32>;
@group(0) @binding(2) var<storage, read> sq_g0: array<f32>;
@group(0) @binding(3) var<storage, read> sq_g1: array<f32>;
@group(0) @binding(4) var<storage, read> sq_g2: array<f32>;
@group(0) @binding(5) var<storage, read> sq_g3: array<f32>;
@group(0) @binding(6) var<storage, read> sq_g4: array<f32>;
@group(0) @binding(7) var<storage, read> sq_g5: array<f32>;
@group(0) @binding(8) var<storage, read> sq_g6: array<f32>;
@group(0) @binding(9) var<storage, read> sq_g7: array<f32>;

fn squares(t: u32, n: u32) -> f32 {
    var acc = 0.0;
    switch t {
        case 0u: { for (var i = 0u; i < n; i++) { acc = fma(sq_g0[i], sq_g0[i], acc); } }
        case 1u: { for (var i = 0u; i < n; i++) { acc = fma(sq_g1[i], sq_g1[i], acc); } }
        case 2u: { for (var i = 0u; i < n; i++) { acc = fma(sq_g2[i], sq_g2[i], acc); } }
        case 3u: { for (var i = 0u; i < n; i++) { acc = fma(sq_g3[i], sq_g3[i], acc); } }
        case 4u: { for (var i = 0u; i < n; i++) { acc = fma(sq_g4[i], sq_g4[i], acc); } }
        case 5u: { for (var i = 0u; i < n; i++) { acc = fma(sq_g5[i], sq_g5[i], acc); } }
        case 6u: { for (var i = 0u; i < n; i++) { acc = fma(sq_g6[i], sq_g6[i], acc); } }
        default: { for (var i = 0u; i < n; i++) { acc = fma(sq_g7[i], sq_g7[i], acc); } }
    }
    return acc;
}

// One invocation per gradient, summing its squares in order (the gradients of a search network
// are small: thousands of values each, and hundreds of them).
@compute @workgroup_size(8)
fn sum_squares8(@builtin(local_invocation_index) t: u32) {
    if (t >= p.count) { return; }
    sq_out[p.offset + t] = squares(t, p.lens[t / 4u][t % 4u]);
}

// finish_norm: norm = sqrt(sum of the n per-gradient sums), in order
@group(0) @binding(1) var<storage, read> fn_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> fn_norm: array<f32>;

@compute @workgroup_size(1)
fn finish_norm() {
    var acc = 0.0;
    for (var i = 0u; i < p.n; i++) {
        acc = acc + fn_partial[i];
    }
    fn_norm[0] = sqrt(acc);
}

// clip_scale: one gradient scaled in place by min(1, max_norm / (norm + 1e-6)).
@group(0) @binding(1) var<storage, read> cs_norm: array<f32>;
@group(0) @binding(2) var<storage, read_write> cs_grad: array<f32>;

// g *= min(1, max_norm / (norm + 1e-6)), one thread per element (the coefficient is recomputed
// by each thread: cheaper than a separate buffer and dispatch).
@compute @workgroup_size(256)
fn clip_scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    cs_grad[i] = cs_grad[i] * min(1.0, p.max_norm / (cs_norm[0] + 1e-6));
}

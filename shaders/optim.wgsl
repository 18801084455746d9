// Optimizer updates and gradient clipping, in place on the GPU. Hyper-parameters and the
// per-step scalars (learning rate, bias corrections) come from a small storage tensor `h`
// written before each step, never from Params (uniforms are cached by content). One thread per
// element; i = gid.x + gid.y * nwg.x * 256 (see gpu::grid_1d).

struct Params {
    n: u32,          // elements of the tensor updated (finish_norm: partial sums)
    max_norm: f32,   // clip_scale and clipped SGD
    offset: u32,     // sum_squares8: where this group's sums go
    count: u32,      // sum_squares8: tensors in this group (1..8)
    lens: array<vec4<u32>, 2>, // sum_squares8: elements of tensor t at lens[t / 4][t % 4]
}

// sgd_momentum: 1 for Nesterov momentum.
override NESTEROV: u32 = 0u;
// sgd, sgd_momentum: scale the gradient by min(1, max_norm / (norm + 1e-6)) first (gradient
// clipping folded into the update: one dispatch per parameter instead of two).
override CLIP: bool = false;

@group(0) @binding(0) var<uniform> p: Params;

// sgd, sgd_momentum, adam: h (hyper-parameters), grad, param, then the optimizer state.
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
// sgd, sgd_momentum: the global gradient norm (any buffer when !CLIP); then sgd_momentum's
// momentum buffer. adam: its first and second moments.
@group(0) @binding(4) var<storage, read> sgd_norm: array<f32>;
@group(0) @binding(5) var<storage, read_write> momentum_buf: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg_sq: array<f32>;

// The gradient of element i, scaled by min(1, max_norm / (norm + 1e-6)) when CLIP.
fn clipped_grad(i: u32) -> f32 {
    if (CLIP) {
        return grad[i] * min(1.0, p.max_norm / (sgd_norm[0] + 1e-6));
    }
    return grad[i];
}

// SGD without momentum, h = [lr, momentum, weight_decay]: p -= lr * (g + wd * p); one thread per element.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    let w = param[i];
    let d = clipped_grad(i) + h[2] * w;
    param[i] = w - h[0] * d;
}

// SGD with momentum (dampening 0), h = [lr, momentum, weight_decay]: buf = m * buf + d, then
// p -= lr * (d + m * buf) (Nesterov) or lr * buf; one thread per element.
@compute @workgroup_size(256)
fn sgd_momentum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    let lr = h[0];
    let m = h[1];
    let w = param[i];
    var d = clipped_grad(i) + h[2] * w;
    let buf = m * momentum_buf[i] + d;
    momentum_buf[i] = buf;
    if (NESTEROV == 1u) {
        d = d + m * buf;
    } else {
        d = buf;
    }
    param[i] = w - lr * d;
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

// Optimizer updates and gradient clipping, in place on the GPU. Hyper-parameters and the
// per-step scalars (learning rate, bias corrections) come from a small storage tensor `h`
// written before each step, never from Params (uniforms are cached by content). One thread per
// element; i = gid.x + gid.y * nwg.x * 256 (see gpu::grid_1d).

struct Params {
    n: u32,          // elements of the tensor updated
    max_norm: f32,   // clip_scale only
    _pad0: u32,
    _pad1: u32,
}

// sgd_momentum: 1 for Nesterov momentum.
override NESTEROV: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// sgd, sgd_momentum, adam: h (hyper-parameters), grad, param, then the optimizer state.
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
// sgd_momentum's momentum buffer; adam's first and second moments.
@group(0) @binding(4) var<storage, read_write> momentum_buf: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(5) var<storage, read_write> exp_avg_sq: array<f32>;

// SGD without momentum, h = [lr, momentum, weight_decay]: p -= lr * (g + wd * p); one thread per element.
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    let w = param[i];
    let d = grad[i] + h[2] * w;
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
    var d = grad[i] + h[2] * w;
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

// clip_norm: the sum of squares of all gradients in, their L2 norm out.
@group(0) @binding(1) var<storage, read_write> cn_norm: array<f32>;

// norm = sqrt(sum of squares) in place, one thread per element (n = 1: the one total).
@compute @workgroup_size(256)
fn clip_norm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    cn_norm[i] = sqrt(cn_norm[i]);
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

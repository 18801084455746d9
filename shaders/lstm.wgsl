// The pointwise part of an LSTM cell (torch.nn.LSTMCell), fused: from the pre-activation gates
// [N, 4H] (order i, f, g, o) and c0 [N, H] to h1 and c1, and back. The matmuls that make the
// gates are linear.wgsl's. One thread per (sample, hidden unit); i = gid.x + gid.y * nwg.x * 256.

struct Params {
    n: u32,       // samples
    hidden: u32,  // H
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// Offset of gate `q` (0 i, 1 f, 2 g, 3 o) of element (s, j) in gates [N, 4H].
fn gate(s: u32, q: u32, j: u32) -> u32 {
    return (s * 4u + q) * p.hidden + j;
}

// cell_forward: c1 = f*c0 + i*g, h1 = o*tanh(c1)
@group(0) @binding(1) var<storage, read> cf_gates: array<f32>;
@group(0) @binding(2) var<storage, read> cf_c0: array<f32>;
@group(0) @binding(3) var<storage, read_write> cf_h1: array<f32>;
@group(0) @binding(4) var<storage, read_write> cf_c1: array<f32>;

// h1, c1 [N, H] from gates [N, 4H] and c0 [N, H]: one thread per element of h1.
@compute @workgroup_size(256)
fn cell_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = index(gid, nwg);
    if (e >= p.n * p.hidden) { return; }
    let s = e / p.hidden;
    let j = e % p.hidden;
    let i = sigmoid(cf_gates[gate(s, 0u, j)]);
    let f = sigmoid(cf_gates[gate(s, 1u, j)]);
    let g = tanh(cf_gates[gate(s, 2u, j)]);
    let o = sigmoid(cf_gates[gate(s, 3u, j)]);
    let c1 = f * cf_c0[e] + i * g;
    cf_c1[e] = c1;
    cf_h1[e] = o * tanh(c1);
}

// cell_backward: d(gates) and dc0 from dh1 and dc1 (the saved c1 spares recomputing it)
@group(0) @binding(1) var<storage, read> cb_gates: array<f32>;
@group(0) @binding(2) var<storage, read> cb_c0: array<f32>;
@group(0) @binding(3) var<storage, read> cb_c1: array<f32>;
@group(0) @binding(4) var<storage, read> cb_dh1: array<f32>;
@group(0) @binding(5) var<storage, read> cb_dc1: array<f32>;
@group(0) @binding(6) var<storage, read_write> cb_dgates: array<f32>;
@group(0) @binding(7) var<storage, read_write> cb_dc0: array<f32>;

// dgates [N, 4H] (w.r.t. the pre-activations) and dc0 [N, H]: one thread per element of h1,
// writing its four gate gradients.
@compute @workgroup_size(256)
fn cell_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = index(gid, nwg);
    if (e >= p.n * p.hidden) { return; }
    let s = e / p.hidden;
    let j = e % p.hidden;
    let i = sigmoid(cb_gates[gate(s, 0u, j)]);
    let f = sigmoid(cb_gates[gate(s, 1u, j)]);
    let g = tanh(cb_gates[gate(s, 2u, j)]);
    let o = sigmoid(cb_gates[gate(s, 3u, j)]);
    let tc = tanh(cb_c1[e]);
    let dh = cb_dh1[e];
    // c1 reaches the loss directly and through h1 = o * tanh(c1).
    let dc = cb_dc1[e] + dh * o * (1.0 - tc * tc);
    cb_dgates[gate(s, 0u, j)] = dc * g * i * (1.0 - i);
    cb_dgates[gate(s, 1u, j)] = dc * cb_c0[e] * f * (1.0 - f);
    cb_dgates[gate(s, 2u, j)] = dc * i * (1.0 - g * g);
    cb_dgates[gate(s, 3u, j)] = dh * tc * o * (1.0 - o);
    cb_dc0[e] = dc * f;
}

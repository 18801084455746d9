// Element-wise ops: activations (forward and backward), sums, scaling by a scalar that lives on
// the GPU. One thread per 4 elements, read and written as a vec4 (CPU adapters move vec4s much
// faster than scalars); i = gid.x + gid.y * nwg.x * 256 (see gpu::grid_1d) indexes vec4s, and
// there are ceil(n / 4) of them. The buffer pool sizes every buffer in multiples of 16 bytes,
// so the last vec4 is in the buffer even when n is not a multiple of 4; its lanes past n are
// padding that nothing reads.

struct Params {
    n: u32,          // elements (the kernels cover ceil(n / 4) vec4s)
    k: u32,          // index of the scalar in `s` (scale ops); terms of `sum8`
    accumulate: u32, // `sum8` adds to y instead of overwriting it
    _pad: u32,
}

// Which activation the `act_*` entry points compute: 0 relu, 1 tanh, 2 sigmoid.
override ACT: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;

// act_forward: y = act(x)
@group(0) @binding(1) var<storage, read> af_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> af_y: array<vec4<f32>>;

// vec4s the kernels cover.
fn count4() -> u32 {
    return (p.n + 3u) / 4u;
}

// y = act(x), one thread per element.
@compute @workgroup_size(256)
fn act_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= count4()) { return; }
    let x = af_x[i];
    var y: vec4<f32>;
    if (ACT == 0u) {
        y = max(x, vec4<f32>(0.0));
    } else if (ACT == 1u) {
        y = tanh(x);
    } else {
        y = 1.0 / (1.0 + exp(-x));
    }
    af_y[i] = y;
}

// act_backward: dx = dy * act'(.) from the saved output t = y (relu: the mask y > 0, the same as x > 0).
@group(0) @binding(1) var<storage, read> ab_t: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ab_dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> ab_dx: array<vec4<f32>>;

// dx = dy * act'(x), one thread per element.
@compute @workgroup_size(256)
fn act_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= count4()) { return; }
    let t = ab_t[i];
    var d: vec4<f32>;
    if (ACT == 0u) {
        d = select(vec4<f32>(0.0), vec4<f32>(1.0), t > vec4<f32>(0.0));
    } else if (ACT == 1u) {
        d = 1.0 - t * t;
    } else {
        d = t * (1.0 - t);
    }
    ab_dx[i] = ab_dy[i] * d;
}

// add: z = a + b
@group(0) @binding(1) var<storage, read> add_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> add_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> add_z: array<vec4<f32>>;

// z = a + b, one thread per element.
@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= count4()) { return; }
    add_z[i] = add_a[i] + add_b[i];
}

// mul: z = a * b
// z = a * b, one thread per element.
@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= count4()) { return; }
    add_z[i] = add_a[i] * add_b[i];
}

// sum8: y = x0 + ... + x_{k-1}, k <= 8 (y += that with p.accumulate). The terms are added in
// order, left to right, so that a sum of more than 8 in several dispatches equals the chain of
// pairwise adds bit for bit. Unused slots are bound to x0 and never read.
@group(0) @binding(1) var<storage, read> s8_x0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> s8_x1: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> s8_x2: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> s8_x3: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> s8_x4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> s8_x5: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> s8_x6: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> s8_x7: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> s8_y: array<vec4<f32>>;

// y (+)= sum of the first k terms, one thread per 4 elements.
@compute @workgroup_size(256)
fn sum8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= count4()) { return; }
    var s = s8_x0[i];
    if (p.accumulate != 0u) { s = s8_y[i] + s; }
    if (p.k > 1u) { s = s + s8_x1[i]; }
    if (p.k > 2u) { s = s + s8_x2[i]; }
    if (p.k > 3u) { s = s + s8_x3[i]; }
    if (p.k > 4u) { s = s + s8_x4[i]; }
    if (p.k > 5u) { s = s + s8_x5[i]; }
    if (p.k > 6u) { s = s + s8_x6[i]; }
    if (p.k > 7u) { s = s + s8_x7[i]; }
    s8_y[i] = s;
}

// scale: y = s[k] * x, the scalar read on the GPU (no readback).
@group(0) @binding(1) var<storage, read> sc_s: array<f32>;
@group(0) @binding(2) var<storage, read> sc_x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> sc_y: array<vec4<f32>>;

// y = s[k] * x, one thread per element.
@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= count4()) { return; }
    sc_y[i] = sc_s[p.k] * sc_x[i];
}

// y += s[k] * x (the weighted sum of a DARTS edge is built from these).
// y += s[k] * x, one thread per element.
@compute @workgroup_size(256)
fn scale_accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= count4()) { return; }
    sc_y[i] = sc_y[i] + sc_s[p.k] * sc_x[i];
}

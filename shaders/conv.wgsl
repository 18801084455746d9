// 2-D convolution (PyTorch's conv2d: cross-correlation, zero padding, groups, dilation; kernel,
// stride and padding per axis), NCHW activations and OIHW weights [c_out, cin_g, KH, KW]. Forward and input gradient are direct
// loops (one thread per element: no im2col buffer); the weight and bias gradients are
// deterministic reductions over the N*OH*OW output positions: fixed chunks, a fixed-order tree
// inside each workgroup, then the chunk partials summed in order. No atomics.

struct Params {
    n: u32,         // batch
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    cin_g: u32,     // input channels per group (c_in / groups)
    cout_g: u32,    // output channels per group (c_out / groups)
    stride_h: u32,  // stride along H (rows)
    stride_w: u32,  // stride along W (columns)
    pad_h: u32,     // zero padding above and below
    pad_w: u32,     // zero padding left and right
    dilation: u32,
    chunk: u32,     // output positions per workgroup in the reductions
    chunks: u32,    // number of chunks (partials per reduced value)
    outputs: u32,   // values a reduction produces (weights or channels)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Kernel height and width: fixed per pipeline, so the tap loops have constant bounds.
override KH: u32 = 3u;
override KW: u32 = 3u;
// Whether `forward` adds a bias.
override HAS_BIAS: bool = false;
// Taps of one filter slice that a `weight_backward` workgroup reduces together: min(KH*KW, MAX_TAPS).
override TAPS: u32 = 9u;

// Register budget of `weight_backward`: larger kernels are split into blocks of MAX_TAPS taps.
const MAX_TAPS: u32 = 25u;

@group(0) @binding(0) var<uniform> p: Params;

var<workgroup> tree: array<f32, 256>;

// The sum of `v` over the workgroup, in a fixed order; valid in thread 0.
fn tree_sum(lid: u32, v: f32) -> f32 {
    // The previous call's result may still be being read.
    workgroupBarrier();
    tree[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            tree[lid] = tree[lid] + tree[lid + s];
        }
        workgroupBarrier();
    }
    return tree[0];
}

// Input row (column) that output row i (column j) reads through tap u (v); negative or >= size
// when it falls in the zero padding.
fn input_row(i: u32, u: u32) -> i32 {
    return i32(i * p.stride_h + u * p.dilation) - i32(p.pad_h);
}

fn input_col(j: u32, v: u32) -> i32 {
    return i32(j * p.stride_w + v * p.dilation) - i32(p.pad_w);
}

// forward: y = conv(x, w) (+ bias)
@group(0) @binding(1) var<storage, read> f_x: array<f32>;      // [N, c_in, H, W]
@group(0) @binding(2) var<storage, read> f_w: array<f32>;      // [c_out, cin_g, KH, KW]
@group(0) @binding(3) var<storage, read> f_bias: array<f32>;   // [c_out]; any buffer when !HAS_BIAS
@group(0) @binding(4) var<storage, read_write> f_y: array<f32>; // [N, c_out, OH, OW]

// y[n, o, i, j] = bias[o] + sum over (c, u, v) of w * x: one thread per output element,
// neighbouring threads along j (coalesced reads of x, shared weights).
@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = index(gid, nwg);
    if (idx >= p.n * p.c_out * p.oh * p.ow) { return; }
    let j = idx % p.ow;
    let i = (idx / p.ow) % p.oh;
    let o = (idx / (p.ow * p.oh)) % p.c_out;
    let b = idx / (p.ow * p.oh * p.c_out);
    let c0 = (o / p.cout_g) * p.cin_g; // first input channel of o's group
    var acc = 0.0;
    for (var c = 0u; c < p.cin_g; c = c + 1u) {
        let x_base = (b * p.c_in + c0 + c) * p.h * p.w;
        let w_base = (o * p.cin_g + c) * KH * KW;
        for (var u = 0u; u < KH; u = u + 1u) {
            let y = input_row(i, u);
            if (y < 0 || y >= i32(p.h)) { continue; }
            for (var v = 0u; v < KW; v = v + 1u) {
                let x = input_col(j, v);
                if (x < 0 || x >= i32(p.w)) { continue; }
                acc = acc + f_w[w_base + u * KW + v] * f_x[x_base + u32(y) * p.w + u32(x)];
            }
        }
    }
    if (HAS_BIAS) {
        acc = acc + f_bias[o];
    }
    f_y[idx] = acc;
}

// input_backward: dx = conv_transpose(dy, w)
@group(0) @binding(1) var<storage, read> ib_dy: array<f32>;      // [N, c_out, OH, OW]
@group(0) @binding(2) var<storage, read> ib_w: array<f32>;       // [c_out, cin_g, KH, KW]
@group(0) @binding(3) var<storage, read_write> ib_dx: array<f32>; // [N, c_in, H, W]

// dx[n, c, y, x] = sum over the outputs (o, i, j) and taps (u, v) that read x[n, c, y, x] of
// dy * w: one thread per input element, gathering (no atomics).
@compute @workgroup_size(256)
fn input_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = index(gid, nwg);
    if (idx >= p.n * p.c_in * p.h * p.w) { return; }
    let x = idx % p.w;
    let y = (idx / p.w) % p.h;
    let c = (idx / (p.w * p.h)) % p.c_in;
    let b = idx / (p.w * p.h * p.c_in);
    let o0 = (c / p.cin_g) * p.cout_g; // first output channel of c's group
    let cl = c % p.cin_g;              // c's index inside its group
    let sh = i32(p.stride_h);
    let sw = i32(p.stride_w);
    var acc = 0.0;
    for (var ol = 0u; ol < p.cout_g; ol = ol + 1u) {
        let o = o0 + ol;
        let dy_base = (b * p.c_out + o) * p.oh * p.ow;
        let w_base = (o * p.cin_g + cl) * KH * KW;
        for (var u = 0u; u < KH; u = u + 1u) {
            // Output row i reads row y through tap u when i * stride_h = y + pad_h - u * dilation.
            let ti = i32(y + p.pad_h) - i32(u * p.dilation);
            if (ti < 0 || ti % sh != 0 || ti / sh >= i32(p.oh)) { continue; }
            let i = u32(ti / sh);
            for (var v = 0u; v < KW; v = v + 1u) {
                let tj = i32(x + p.pad_w) - i32(v * p.dilation);
                if (tj < 0 || tj % sw != 0 || tj / sw >= i32(p.ow)) { continue; }
                let j = u32(tj / sw);
                acc = acc + ib_dy[dy_base + i * p.ow + j] * ib_w[w_base + u * KW + v];
            }
        }
    }
    ib_dx[idx] = acc;
}

// weight_backward: dw[o, c, u, v] = sum over (n, i, j) of dy[n, o, i, j] * x[n, g*cin_g + c, ...]
@group(0) @binding(1) var<storage, read> wb_dy: array<f32>;           // [N, c_out, OH, OW]
@group(0) @binding(2) var<storage, read> wb_x: array<f32>;            // [N, c_in, H, W]
@group(0) @binding(3) var<storage, read_write> wb_partial: array<f32>; // [chunks, c_out * cin_g * KH * KW]

// Partial dw of one filter slice (o, c), up to TAPS taps, over one chunk of the output
// positions: one workgroup per (chunk, o, c, tap block), w = wid.x + wid.y * nwg.x. Each
// thread strides through the chunk, reads dy once per position and accumulates every tap;
// then one tree per tap.
@compute @workgroup_size(256)
fn weight_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let taps = KH * KW;
    let blocks = (taps + TAPS - 1u) / TAPS;
    let slices = p.c_out * p.cin_g;
    let group = wid.x + wid.y * nwg.x;
    if (group >= p.chunks * slices * blocks) { return; }
    let tap0 = (group % blocks) * TAPS;
    let slice = (group / blocks) % slices; // o * cin_g + c
    let chunk = group / (blocks * slices);
    let o = slice / p.cin_g;
    let ci = (o / p.cout_g) * p.cin_g + slice % p.cin_g; // the input channel of the slice
    let positions = p.n * p.oh * p.ow;
    let start = chunk * p.chunk;
    let end = min(start + p.chunk, positions);

    var acc: array<f32, MAX_TAPS>;
    for (var q = start + lid; q < end; q = q + 256u) {
        let j = q % p.ow;
        let i = (q / p.ow) % p.oh;
        let b = q / (p.ow * p.oh);
        let g = wb_dy[((b * p.c_out + o) * p.oh + i) * p.ow + j];
        let x_base = (b * p.c_in + ci) * p.h * p.w;
        for (var t = 0u; t < TAPS; t = t + 1u) {
            let tap = tap0 + t;
            let y = input_row(i, tap / KW);
            let x = input_col(j, tap % KW);
            if (tap < taps && y >= 0 && y < i32(p.h) && x >= 0 && x < i32(p.w)) {
                acc[t] = acc[t] + g * wb_x[x_base + u32(y) * p.w + u32(x)];
            }
        }
    }
    for (var t = 0u; t < TAPS; t = t + 1u) {
        if (tap0 + t >= taps) { break; }
        let total = tree_sum(lid, acc[t]);
        if (lid == 0u) {
            wb_partial[chunk * p.outputs + slice * taps + tap0 + t] = total;
        }
    }
}

// bias_backward: dbias[o] = sum over (n, i, j) of dy[n, o, i, j]
@group(0) @binding(1) var<storage, read> bb_dy: array<f32>;           // [N, c_out, OH, OW]
@group(0) @binding(2) var<storage, read_write> bb_partial: array<f32>; // [chunks, c_out]

// Partial dbias of one channel over one chunk of the output positions: one workgroup per
// (chunk, o), w = wid.x + wid.y * nwg.x; threads stride through the chunk, then one tree.
@compute @workgroup_size(256)
fn bias_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = wid.x + wid.y * nwg.x;
    if (group >= p.chunks * p.c_out) { return; }
    let o = group % p.c_out;
    let chunk = group / p.c_out;
    let plane = p.oh * p.ow;
    let start = chunk * p.chunk;
    let end = min(start + p.chunk, p.n * plane);
    var acc = 0.0;
    for (var q = start + lid; q < end; q = q + 256u) {
        let b = q / plane;
        acc = acc + bb_dy[(b * p.c_out + o) * plane + q % plane];
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        bb_partial[chunk * p.outputs + o] = total;
    }
}

// sum_chunks: out[k] = sum over chunks of partial[chunk, k]
@group(0) @binding(1) var<storage, read> sc_partial: array<f32>;   // [chunks, outputs]
@group(0) @binding(2) var<storage, read_write> sc_out: array<f32>; // [outputs]

// out[k] = the chunk partials of k summed in chunk order: one thread per output value.
@compute @workgroup_size(256)
fn sum_chunks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = index(gid, nwg);
    if (k >= p.outputs) { return; }
    var acc = 0.0;
    for (var chunk = 0u; chunk < p.chunks; chunk = chunk + 1u) {
        acc = acc + sc_partial[chunk * p.outputs + k];
    }
    sc_out[k] = acc;
}

// Pointwise (1x1, stride 1, no padding, one group) convolution as register-blocked matrix
// products over NCHW planes read as vec4 (H*W a multiple of 4). Per image n the forward pass is
// Y_n = W X_n ([c_out, c_in] x [c_in, P]) and the input gradient dX_n = W^T dY_n: one kernel,
// `TRANSPOSE` picks the weight's orientation. The weight gradient dW = sum_n dY_n X_n^T reduces
// over all N*P positions in fixed chunks (partials summed in order by conv's `sum_chunks`): no
// atomics, the same bits every run. Lavapipe runs each invocation on one SIMD lane, so the win
// is in FMAs per loaded value (../shared/lavapipe-kernels.md): 8x8 blocks, no workgroup memory.

struct Params {
    n: u32,         // batch
    c_in: u32,
    p4: u32,        // H*W / 4: vec4 positions per plane
    c_out: u32,
    chunk: u32,     // weight_backward: vec4 positions per chunk
    chunks: u32,
    outputs: u32,   // weight_backward: c_out * c_in (the stride between chunk partials)
    _pad: u32,
}

// false: out = W in (forward, in = x); true: out = W^T in (input gradient, in = dy).
override TRANSPOSE: bool = false;

@group(0) @binding(0) var<uniform> p: Params;

// product: out[n, r, q] = sum_k a(r, k) in[n, k, q]
@group(0) @binding(1) var<storage, read> pr_in: array<vec4<f32>>;       // [N, K, P/4]
@group(0) @binding(2) var<storage, read> pr_w: array<f32>;              // [c_out, c_in]
@group(0) @binding(3) var<storage, read_write> pr_out: array<vec4<f32>>; // [N, R, P/4]

// One invocation per (n, block of 8 rows r, block of 8 positions): 16 vec4 accumulators, per
// k two vec4 loads of `in` and eight weights. Rows past R read the last row and are not stored.
@compute @workgroup_size(64)
fn product(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // Forward: R = c_out, K = c_in, a(r, k) = w[r * c_in + k]; transposed: R = c_in,
    // K = c_out, a(r, k) = w[k * c_in + r].
    let rows = select(p.c_out, p.c_in, TRANSPOSE);
    let kk = select(p.c_in, p.c_out, TRANSPOSE);
    let r_stride = select(p.c_in, 1u, TRANSPOSE);
    let k_stride = select(1u, p.c_in, TRANSPOSE);
    let qblocks = (p.p4 + 1u) / 2u;
    let rblocks = (rows + 7u) / 8u;
    let t = index64(gid, nwg);
    if (t >= p.n * rblocks * qblocks) { return; }
    let qb = t % qblocks;
    let rb = (t / qblocks) % rblocks;
    let b = t / (qblocks * rblocks);
    let q0 = qb * 2u;
    let q1 = min(q0 + 1u, p.p4 - 1u);
    let r0 = rb * 8u;
    let last = rows - 1u;
    let w0 = min(r0, last) * r_stride;
    let w1 = min(r0 + 1u, last) * r_stride;
    let w2 = min(r0 + 2u, last) * r_stride;
    let w3 = min(r0 + 3u, last) * r_stride;
    let w4 = min(r0 + 4u, last) * r_stride;
    let w5 = min(r0 + 5u, last) * r_stride;
    let w6 = min(r0 + 6u, last) * r_stride;
    let w7 = min(r0 + 7u, last) * r_stride;
    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0);
    var a30 = vec4<f32>(0.0); var a31 = vec4<f32>(0.0);
    var a40 = vec4<f32>(0.0); var a41 = vec4<f32>(0.0);
    var a50 = vec4<f32>(0.0); var a51 = vec4<f32>(0.0);
    var a60 = vec4<f32>(0.0); var a61 = vec4<f32>(0.0);
    var a70 = vec4<f32>(0.0); var a71 = vec4<f32>(0.0);
    var xi = b * kk * p.p4;
    var wk = 0u;
    for (var k = 0u; k < kk; k = k + 1u) {
        let x0 = pr_in[xi + q0];
        let x1 = pr_in[xi + q1];
        var w = vec4<f32>(pr_w[w0 + wk]);
        a00 = fma(w, x0, a00); a01 = fma(w, x1, a01);
        w = vec4<f32>(pr_w[w1 + wk]);
        a10 = fma(w, x0, a10); a11 = fma(w, x1, a11);
        w = vec4<f32>(pr_w[w2 + wk]);
        a20 = fma(w, x0, a20); a21 = fma(w, x1, a21);
        w = vec4<f32>(pr_w[w3 + wk]);
        a30 = fma(w, x0, a30); a31 = fma(w, x1, a31);
        w = vec4<f32>(pr_w[w4 + wk]);
        a40 = fma(w, x0, a40); a41 = fma(w, x1, a41);
        w = vec4<f32>(pr_w[w5 + wk]);
        a50 = fma(w, x0, a50); a51 = fma(w, x1, a51);
        w = vec4<f32>(pr_w[w6 + wk]);
        a60 = fma(w, x0, a60); a61 = fma(w, x1, a61);
        w = vec4<f32>(pr_w[w7 + wk]);
        a70 = fma(w, x0, a70); a71 = fma(w, x1, a71);
        xi = xi + p.p4;
        wk = wk + k_stride;
    }
    let second = q0 + 1u < p.p4;
    var o = (b * rows + r0) * p.p4 + q0;
    pr_out[o] = a00;
    if (second) { pr_out[o + 1u] = a01; }
    if (r0 + 1u >= rows) { return; }
    o = o + p.p4;
    pr_out[o] = a10;
    if (second) { pr_out[o + 1u] = a11; }
    if (r0 + 2u >= rows) { return; }
    o = o + p.p4;
    pr_out[o] = a20;
    if (second) { pr_out[o + 1u] = a21; }
    if (r0 + 3u >= rows) { return; }
    o = o + p.p4;
    pr_out[o] = a30;
    if (second) { pr_out[o + 1u] = a31; }
    if (r0 + 4u >= rows) { return; }
    o = o + p.p4;
    pr_out[o] = a40;
    if (second) { pr_out[o + 1u] = a41; }
    if (r0 + 5u >= rows) { return; }
    o = o + p.p4;
    pr_out[o] = a50;
    if (second) { pr_out[o + 1u] = a51; }
    if (r0 + 6u >= rows) { return; }
    o = o + p.p4;
    pr_out[o] = a60;
    if (second) { pr_out[o + 1u] = a61; }
    if (r0 + 7u >= rows) { return; }
    o = o + p.p4;
    pr_out[o] = a70;
    if (second) { pr_out[o + 1u] = a71; }
}

// weight_backward: dw[o, c] = sum over (n, q) of dot(dy[n, o, q], x[n, c, q])
@group(0) @binding(1) var<storage, read> wb_dy: array<vec4<f32>>;      // [N, c_out, P/4]
@group(0) @binding(2) var<storage, read> wb_x: array<vec4<f32>>;       // [N, c_in, P/4]
@group(0) @binding(3) var<storage, read_write> wb_partial: array<f32>; // [chunks, c_out, c_in]

// Partial dw of a 4x4 block (o0..o0+3, c0..c0+3) over one chunk of the N*P/4 vec4 positions:
// one invocation per (chunk, o block, c block), 16 accumulators, 8 vec4 loads per position.
// Channels past the end read the last channel and are not stored.
@compute @workgroup_size(64)
fn weight_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let oblocks = (p.c_out + 3u) / 4u;
    let cblocks = (p.c_in + 3u) / 4u;
    let t = index64(gid, nwg);
    if (t >= p.chunks * oblocks * cblocks) { return; }
    let cb = t % cblocks;
    let ob = (t / cblocks) % oblocks;
    let chunk = t / (cblocks * oblocks);
    let o0 = ob * 4u;
    let c0 = cb * 4u;
    let o1 = min(o0 + 1u, p.c_out - 1u);
    let o2 = min(o0 + 2u, p.c_out - 1u);
    let o3 = min(o0 + 3u, p.c_out - 1u);
    let c1 = min(c0 + 1u, p.c_in - 1u);
    let c2 = min(c0 + 2u, p.c_in - 1u);
    let c3 = min(c0 + 3u, p.c_in - 1u);
    let start = chunk * p.chunk;
    let end = min(start + p.chunk, p.n * p.p4);
    var s00 = 0.0; var s01 = 0.0; var s02 = 0.0; var s03 = 0.0;
    var s10 = 0.0; var s11 = 0.0; var s12 = 0.0; var s13 = 0.0;
    var s20 = 0.0; var s21 = 0.0; var s22 = 0.0; var s23 = 0.0;
    var s30 = 0.0; var s31 = 0.0; var s32 = 0.0; var s33 = 0.0;
    var b = start / p.p4;
    var q = start % p.p4;
    for (var e = start; e < end; e = e + 1u) {
        let dy_base = b * p.c_out * p.p4 + q;
        let x_base = b * p.c_in * p.p4 + q;
        let g0 = wb_dy[dy_base + o0 * p.p4];
        let g1 = wb_dy[dy_base + o1 * p.p4];
        let g2 = wb_dy[dy_base + o2 * p.p4];
        let g3 = wb_dy[dy_base + o3 * p.p4];
        let x0 = wb_x[x_base + c0 * p.p4];
        let x1 = wb_x[x_base + c1 * p.p4];
        let x2 = wb_x[x_base + c2 * p.p4];
        let x3 = wb_x[x_base + c3 * p.p4];
        s00 += dot(g0, x0); s01 += dot(g0, x1); s02 += dot(g0, x2); s03 += dot(g0, x3);
        s10 += dot(g1, x0); s11 += dot(g1, x1); s12 += dot(g1, x2); s13 += dot(g1, x3);
        s20 += dot(g2, x0); s21 += dot(g2, x1); s22 += dot(g2, x2); s23 += dot(g2, x3);
        s30 += dot(g3, x0); s31 += dot(g3, x1); s32 += dot(g3, x2); s33 += dot(g3, x3);
        q = q + 1u;
        if (q == p.p4) { q = 0u; b = b + 1u; }
    }
    let base = chunk * p.outputs;
    store4(base, o0, c0, vec4<f32>(s00, s01, s02, s03));
    store4(base, o0 + 1u, c0, vec4<f32>(s10, s11, s12, s13));
    store4(base, o0 + 2u, c0, vec4<f32>(s20, s21, s22, s23));
    store4(base, o0 + 3u, c0, vec4<f32>(s30, s31, s32, s33));
}

// Stores dw[o, c0..c0+3] of one chunk, skipping channels past the end.
fn store4(base: u32, o: u32, c0: u32, v: vec4<f32>) {
    if (o >= p.c_out) { return; }
    let row = base + o * p.c_in;
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (c0 + i < p.c_in) {
            wb_partial[row + c0 + i] = v[i];
        }
    }
}

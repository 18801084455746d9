// Pointwise (1x1, stride 1, no padding, one group) convolution as register-blocked matrix
// products over NCHW planes read as vec4 (H*W a multiple of 4). Per image n the forward pass is
// Y_n = W X_n ([c_out, c_in] x [c_in, P]) and the input gradient dX_n = W^T dY_n: one kernel,
// `TRANSPOSE` picks the weight's orientation. The weight gradient dW = sum_n dY_n X_n^T reduces
// over all N*P positions in fixed chunks (partials summed in order by conv's `sum_chunks`): no
// atomics, the same bits every run. Lavapipe runs each invocation on one SIMD lane, so the win
// is in FMAs per loaded value (../shared/lavapipe-kernels.md): 8x16 or 16x16 blocks, no workgroup memory.

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
// c_in is a multiple of 4: rows of w (forward) and columns of w (transposed) then start on a
// vec4, so the weights are read four per load instead of one at a time. Each storage load costs
// a loop over the SIMD lanes on lavapipe, whatever its width, so this halves the loads per k.
override WIDE: bool = false;
// Output rows per invocation, 8 or 16: 16 reads each vec4 of `in` once for 16 rows, 8 keeps more
// invocations for small grids and small K.
override ROWS: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;

// product: out[n, r, q] = sum_k a(r, k) in[n, k, q]
@group(0) @binding(1) var<storage, read> pr_in: array<vec4<f32>>;       // [N, K, P/4]
@group(0) @binding(2) var<storage, read> pr_w: array<vec4<f32>>;        // [c_out, c_in], padded to vec4
@group(0) @binding(3) var<storage, read_write> pr_out: array<vec4<f32>>; // [N, R, P/4]
// The weights copied into a uniform buffer (UNIFORM_W; otherwise a spare is bound and not
// read): on lavapipe a storage load whose address differs between lanes runs lane by lane, a
// uniform one is a gather of a few instructions.
@group(0) @binding(4) var<uniform> pr_wu: array<vec4<f32>, 4096>; // the first c_out * c_in / 4
override UNIFORM_W: bool = false;

// The vec4 i of the weights, from storage or the uniform copy.
fn weight4(i: u32) -> vec4<f32> {
    if (UNIFORM_W) {
        return pr_wu[i];
    }
    return pr_w[i];
}

// One invocation's output: rows r0..r0+15 (aR_) by four vec4 columns q0..q0+3 (a_C). With
// ROWS = 8 rows 8..15 are never stored, so the compiler drops them and their loads.
struct Block {
    a0_0: vec4<f32>, a0_1: vec4<f32>, a0_2: vec4<f32>, a0_3: vec4<f32>,
    a1_0: vec4<f32>, a1_1: vec4<f32>, a1_2: vec4<f32>, a1_3: vec4<f32>,
    a2_0: vec4<f32>, a2_1: vec4<f32>, a2_2: vec4<f32>, a2_3: vec4<f32>,
    a3_0: vec4<f32>, a3_1: vec4<f32>, a3_2: vec4<f32>, a3_3: vec4<f32>,
    a4_0: vec4<f32>, a4_1: vec4<f32>, a4_2: vec4<f32>, a4_3: vec4<f32>,
    a5_0: vec4<f32>, a5_1: vec4<f32>, a5_2: vec4<f32>, a5_3: vec4<f32>,
    a6_0: vec4<f32>, a6_1: vec4<f32>, a6_2: vec4<f32>, a6_3: vec4<f32>,
    a7_0: vec4<f32>, a7_1: vec4<f32>, a7_2: vec4<f32>, a7_3: vec4<f32>,
    a8_0: vec4<f32>, a8_1: vec4<f32>, a8_2: vec4<f32>, a8_3: vec4<f32>,
    a9_0: vec4<f32>, a9_1: vec4<f32>, a9_2: vec4<f32>, a9_3: vec4<f32>,
    a10_0: vec4<f32>, a10_1: vec4<f32>, a10_2: vec4<f32>, a10_3: vec4<f32>,
    a11_0: vec4<f32>, a11_1: vec4<f32>, a11_2: vec4<f32>, a11_3: vec4<f32>,
    a12_0: vec4<f32>, a12_1: vec4<f32>, a12_2: vec4<f32>, a12_3: vec4<f32>,
    a13_0: vec4<f32>, a13_1: vec4<f32>, a13_2: vec4<f32>, a13_3: vec4<f32>,
    a14_0: vec4<f32>, a14_1: vec4<f32>, a14_2: vec4<f32>, a14_3: vec4<f32>,
    a15_0: vec4<f32>, a15_1: vec4<f32>, a15_2: vec4<f32>, a15_3: vec4<f32>,
}

// The four vec4 of in[n, k, q0..q0+3] (q clamped to the plane).
struct Cols { c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32> }

fn cols(i: u32, q: vec4<u32>) -> Cols {
    return Cols(pr_in[i + q.x], pr_in[i + q.y], pr_in[i + q.z], pr_in[i + q.w]);
}

// Sixteen weights a(r0..r0+15, k), four to a vec4.
struct Rows { w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32> }

// The block's rank-1 update by one k: w = a(r0.., k), x = in[n, k, q0..].
fn rank1(b: Block, w: Rows, x: Cols) -> Block {
    var o: Block;
    o.a0_0 = fma(vec4<f32>(w.w0.x), x.c0, b.a0_0); o.a0_1 = fma(vec4<f32>(w.w0.x), x.c1, b.a0_1);
    o.a0_2 = fma(vec4<f32>(w.w0.x), x.c2, b.a0_2); o.a0_3 = fma(vec4<f32>(w.w0.x), x.c3, b.a0_3);
    o.a1_0 = fma(vec4<f32>(w.w0.y), x.c0, b.a1_0); o.a1_1 = fma(vec4<f32>(w.w0.y), x.c1, b.a1_1);
    o.a1_2 = fma(vec4<f32>(w.w0.y), x.c2, b.a1_2); o.a1_3 = fma(vec4<f32>(w.w0.y), x.c3, b.a1_3);
    o.a2_0 = fma(vec4<f32>(w.w0.z), x.c0, b.a2_0); o.a2_1 = fma(vec4<f32>(w.w0.z), x.c1, b.a2_1);
    o.a2_2 = fma(vec4<f32>(w.w0.z), x.c2, b.a2_2); o.a2_3 = fma(vec4<f32>(w.w0.z), x.c3, b.a2_3);
    o.a3_0 = fma(vec4<f32>(w.w0.w), x.c0, b.a3_0); o.a3_1 = fma(vec4<f32>(w.w0.w), x.c1, b.a3_1);
    o.a3_2 = fma(vec4<f32>(w.w0.w), x.c2, b.a3_2); o.a3_3 = fma(vec4<f32>(w.w0.w), x.c3, b.a3_3);
    o.a4_0 = fma(vec4<f32>(w.w1.x), x.c0, b.a4_0); o.a4_1 = fma(vec4<f32>(w.w1.x), x.c1, b.a4_1);
    o.a4_2 = fma(vec4<f32>(w.w1.x), x.c2, b.a4_2); o.a4_3 = fma(vec4<f32>(w.w1.x), x.c3, b.a4_3);
    o.a5_0 = fma(vec4<f32>(w.w1.y), x.c0, b.a5_0); o.a5_1 = fma(vec4<f32>(w.w1.y), x.c1, b.a5_1);
    o.a5_2 = fma(vec4<f32>(w.w1.y), x.c2, b.a5_2); o.a5_3 = fma(vec4<f32>(w.w1.y), x.c3, b.a5_3);
    o.a6_0 = fma(vec4<f32>(w.w1.z), x.c0, b.a6_0); o.a6_1 = fma(vec4<f32>(w.w1.z), x.c1, b.a6_1);
    o.a6_2 = fma(vec4<f32>(w.w1.z), x.c2, b.a6_2); o.a6_3 = fma(vec4<f32>(w.w1.z), x.c3, b.a6_3);
    o.a7_0 = fma(vec4<f32>(w.w1.w), x.c0, b.a7_0); o.a7_1 = fma(vec4<f32>(w.w1.w), x.c1, b.a7_1);
    o.a7_2 = fma(vec4<f32>(w.w1.w), x.c2, b.a7_2); o.a7_3 = fma(vec4<f32>(w.w1.w), x.c3, b.a7_3);
    o.a8_0 = fma(vec4<f32>(w.w2.x), x.c0, b.a8_0); o.a8_1 = fma(vec4<f32>(w.w2.x), x.c1, b.a8_1);
    o.a8_2 = fma(vec4<f32>(w.w2.x), x.c2, b.a8_2); o.a8_3 = fma(vec4<f32>(w.w2.x), x.c3, b.a8_3);
    o.a9_0 = fma(vec4<f32>(w.w2.y), x.c0, b.a9_0); o.a9_1 = fma(vec4<f32>(w.w2.y), x.c1, b.a9_1);
    o.a9_2 = fma(vec4<f32>(w.w2.y), x.c2, b.a9_2); o.a9_3 = fma(vec4<f32>(w.w2.y), x.c3, b.a9_3);
    o.a10_0 = fma(vec4<f32>(w.w2.z), x.c0, b.a10_0); o.a10_1 = fma(vec4<f32>(w.w2.z), x.c1, b.a10_1);
    o.a10_2 = fma(vec4<f32>(w.w2.z), x.c2, b.a10_2); o.a10_3 = fma(vec4<f32>(w.w2.z), x.c3, b.a10_3);
    o.a11_0 = fma(vec4<f32>(w.w2.w), x.c0, b.a11_0); o.a11_1 = fma(vec4<f32>(w.w2.w), x.c1, b.a11_1);
    o.a11_2 = fma(vec4<f32>(w.w2.w), x.c2, b.a11_2); o.a11_3 = fma(vec4<f32>(w.w2.w), x.c3, b.a11_3);
    o.a12_0 = fma(vec4<f32>(w.w3.x), x.c0, b.a12_0); o.a12_1 = fma(vec4<f32>(w.w3.x), x.c1, b.a12_1);
    o.a12_2 = fma(vec4<f32>(w.w3.x), x.c2, b.a12_2); o.a12_3 = fma(vec4<f32>(w.w3.x), x.c3, b.a12_3);
    o.a13_0 = fma(vec4<f32>(w.w3.y), x.c0, b.a13_0); o.a13_1 = fma(vec4<f32>(w.w3.y), x.c1, b.a13_1);
    o.a13_2 = fma(vec4<f32>(w.w3.y), x.c2, b.a13_2); o.a13_3 = fma(vec4<f32>(w.w3.y), x.c3, b.a13_3);
    o.a14_0 = fma(vec4<f32>(w.w3.z), x.c0, b.a14_0); o.a14_1 = fma(vec4<f32>(w.w3.z), x.c1, b.a14_1);
    o.a14_2 = fma(vec4<f32>(w.w3.z), x.c2, b.a14_2); o.a14_3 = fma(vec4<f32>(w.w3.z), x.c3, b.a14_3);
    o.a15_0 = fma(vec4<f32>(w.w3.w), x.c0, b.a15_0); o.a15_1 = fma(vec4<f32>(w.w3.w), x.c1, b.a15_1);
    o.a15_2 = fma(vec4<f32>(w.w3.w), x.c2, b.a15_2); o.a15_3 = fma(vec4<f32>(w.w3.w), x.c3, b.a15_3);
    return o;
}

fn weight(i: u32) -> f32 {
    return weight4(i >> 2u)[i & 3u];
}

// Stores out[o..o+n-1] of one row (n = the block's columns inside the plane).
fn store_row(o: u32, n: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    pr_out[o] = a0;
    if (n > 1u) { pr_out[o + 1u] = a1; }
    if (n > 2u) { pr_out[o + 2u] = a2; }
    if (n > 3u) { pr_out[o + 3u] = a3; }
}

// One invocation per (n, block of ROWS rows r, block of 16 positions): a Block of ROWS x 4 vec4
// accumulators. Per k, four vec4 loads of `in`; the weights come as ROWS/4 vec4 loads (WIDE) or
// ROWS scalar ones. Rows past R read the last row (the last vec4 of rows, transposed) and
// columns past the plane the last column; neither is stored.
@compute @workgroup_size(64)
fn product(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // Forward: R = c_out, K = c_in, a(r, k) = w[r * c_in + k]; transposed: R = c_in,
    // K = c_out, a(r, k) = w[k * c_in + r].
    let rows = select(p.c_out, p.c_in, TRANSPOSE);
    let kk = select(p.c_in, p.c_out, TRANSPOSE);
    let qblocks = (p.p4 + 3u) / 4u;
    let rblocks = (rows + ROWS - 1u) / ROWS;
    let t = index64(gid, nwg);
    if (t >= p.n * rblocks * qblocks) { return; }
    let qb = t % qblocks;
    let rb = (t / qblocks) % rblocks;
    let b = t / (qblocks * rblocks);
    let q0 = qb * 4u;
    let ql = p.p4 - 1u;
    let q = vec4<u32>(q0, min(q0 + 1u, ql), min(q0 + 2u, ql), min(q0 + 3u, ql));
    let r0 = rb * ROWS;
    let last = rows - 1u;
    var acc: Block;
    var xi = b * kk * p.p4;
    if (WIDE && !TRANSPOSE) {
        // a(r, k0..k0+3) is one vec4 of row r.
        let c4 = p.c_in / 4u;
        let w0 = min(r0, last) * c4;
        let w1 = min(r0 + 1u, last) * c4;
        let w2 = min(r0 + 2u, last) * c4;
        let w3 = min(r0 + 3u, last) * c4;
        let w4 = min(r0 + 4u, last) * c4;
        let w5 = min(r0 + 5u, last) * c4;
        let w6 = min(r0 + 6u, last) * c4;
        let w7 = min(r0 + 7u, last) * c4;
        let w8 = min(r0 + 8u, last) * c4;
        let w9 = min(r0 + 9u, last) * c4;
        let w10 = min(r0 + 10u, last) * c4;
        let w11 = min(r0 + 11u, last) * c4;
        let w12 = min(r0 + 12u, last) * c4;
        let w13 = min(r0 + 13u, last) * c4;
        let w14 = min(r0 + 14u, last) * c4;
        let w15 = min(r0 + 15u, last) * c4;
        for (var k4 = 0u; k4 < c4; k4 = k4 + 1u) {
            let v0 = weight4(w0 + k4); let v1 = weight4(w1 + k4);
            let v2 = weight4(w2 + k4); let v3 = weight4(w3 + k4);
            let v4 = weight4(w4 + k4); let v5 = weight4(w5 + k4);
            let v6 = weight4(w6 + k4); let v7 = weight4(w7 + k4);
            let v8 = weight4(w8 + k4); let v9 = weight4(w9 + k4);
            let v10 = weight4(w10 + k4); let v11 = weight4(w11 + k4);
            let v12 = weight4(w12 + k4); let v13 = weight4(w13 + k4);
            let v14 = weight4(w14 + k4); let v15 = weight4(w15 + k4);
            acc = rank1(acc, Rows(vec4<f32>(v0.x, v1.x, v2.x, v3.x), vec4<f32>(v4.x, v5.x, v6.x, v7.x), vec4<f32>(v8.x, v9.x, v10.x, v11.x), vec4<f32>(v12.x, v13.x, v14.x, v15.x)), cols(xi, q));
            xi = xi + p.p4;
            acc = rank1(acc, Rows(vec4<f32>(v0.y, v1.y, v2.y, v3.y), vec4<f32>(v4.y, v5.y, v6.y, v7.y), vec4<f32>(v8.y, v9.y, v10.y, v11.y), vec4<f32>(v12.y, v13.y, v14.y, v15.y)), cols(xi, q));
            xi = xi + p.p4;
            acc = rank1(acc, Rows(vec4<f32>(v0.z, v1.z, v2.z, v3.z), vec4<f32>(v4.z, v5.z, v6.z, v7.z), vec4<f32>(v8.z, v9.z, v10.z, v11.z), vec4<f32>(v12.z, v13.z, v14.z, v15.z)), cols(xi, q));
            xi = xi + p.p4;
            acc = rank1(acc, Rows(vec4<f32>(v0.w, v1.w, v2.w, v3.w), vec4<f32>(v4.w, v5.w, v6.w, v7.w), vec4<f32>(v8.w, v9.w, v10.w, v11.w), vec4<f32>(v12.w, v13.w, v14.w, v15.w)), cols(xi, q));
            xi = xi + p.p4;
        }
    } else if (WIDE) {
        // a(r0..r0+15, k) is four vec4 of row k (R = c_in, a multiple of 4).
        let c4 = p.c_in / 4u;
        let l0 = r0 / 4u;
        let l1 = min(l0 + 1u, c4 - 1u);
        let l2 = min(l0 + 2u, c4 - 1u);
        let l3 = min(l0 + 3u, c4 - 1u);
        var wk = 0u;
        for (var k = 0u; k < kk; k = k + 1u) {
            acc = rank1(acc, Rows(weight4(wk + l0), weight4(wk + l1), weight4(wk + l2), weight4(wk + l3)), cols(xi, q));
            xi = xi + p.p4;
            wk = wk + c4;
        }
    } else {
        let r_stride = select(p.c_in, 1u, TRANSPOSE);
        let k_stride = select(1u, p.c_in, TRANSPOSE);
        let w0 = min(r0, last) * r_stride;
        let w1 = min(r0 + 1u, last) * r_stride;
        let w2 = min(r0 + 2u, last) * r_stride;
        let w3 = min(r0 + 3u, last) * r_stride;
        let w4 = min(r0 + 4u, last) * r_stride;
        let w5 = min(r0 + 5u, last) * r_stride;
        let w6 = min(r0 + 6u, last) * r_stride;
        let w7 = min(r0 + 7u, last) * r_stride;
        let w8 = min(r0 + 8u, last) * r_stride;
        let w9 = min(r0 + 9u, last) * r_stride;
        let w10 = min(r0 + 10u, last) * r_stride;
        let w11 = min(r0 + 11u, last) * r_stride;
        let w12 = min(r0 + 12u, last) * r_stride;
        let w13 = min(r0 + 13u, last) * r_stride;
        let w14 = min(r0 + 14u, last) * r_stride;
        let w15 = min(r0 + 15u, last) * r_stride;
        var wk = 0u;
        for (var k = 0u; k < kk; k = k + 1u) {
            let v0 = vec4<f32>(weight(w0 + wk), weight(w1 + wk), weight(w2 + wk), weight(w3 + wk));
            let v1 = vec4<f32>(weight(w4 + wk), weight(w5 + wk), weight(w6 + wk), weight(w7 + wk));
            let v2 = vec4<f32>(weight(w8 + wk), weight(w9 + wk), weight(w10 + wk), weight(w11 + wk));
            let v3 = vec4<f32>(weight(w12 + wk), weight(w13 + wk), weight(w14 + wk), weight(w15 + wk));
            acc = rank1(acc, Rows(v0, v1, v2, v3), cols(xi, q));
            xi = xi + p.p4;
            wk = wk + k_stride;
        }
    }
    let n = min(4u, p.p4 - q0);
    var o = (b * rows + r0) * p.p4 + q0;
    store_row(o, n, acc.a0_0, acc.a0_1, acc.a0_2, acc.a0_3);
    if (r0 + 1u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a1_0, acc.a1_1, acc.a1_2, acc.a1_3);
    if (r0 + 2u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a2_0, acc.a2_1, acc.a2_2, acc.a2_3);
    if (r0 + 3u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a3_0, acc.a3_1, acc.a3_2, acc.a3_3);
    if (r0 + 4u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a4_0, acc.a4_1, acc.a4_2, acc.a4_3);
    if (r0 + 5u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a5_0, acc.a5_1, acc.a5_2, acc.a5_3);
    if (r0 + 6u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a6_0, acc.a6_1, acc.a6_2, acc.a6_3);
    if (r0 + 7u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a7_0, acc.a7_1, acc.a7_2, acc.a7_3);
    if (ROWS == 8u || r0 + 8u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a8_0, acc.a8_1, acc.a8_2, acc.a8_3);
    if (r0 + 9u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a9_0, acc.a9_1, acc.a9_2, acc.a9_3);
    if (r0 + 10u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a10_0, acc.a10_1, acc.a10_2, acc.a10_3);
    if (r0 + 11u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a11_0, acc.a11_1, acc.a11_2, acc.a11_3);
    if (r0 + 12u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a12_0, acc.a12_1, acc.a12_2, acc.a12_3);
    if (r0 + 13u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a13_0, acc.a13_1, acc.a13_2, acc.a13_3);
    if (r0 + 14u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a14_0, acc.a14_1, acc.a14_2, acc.a14_3);
    if (r0 + 15u >= rows) { return; }
    o = o + p.p4;
    store_row(o, n, acc.a15_0, acc.a15_1, acc.a15_2, acc.a15_3);
}

// weight_backward: dw[o, c] = sum over (n, q) of dot(dy[n, o, q], x[n, c, q])
@group(0) @binding(1) var<storage, read> wb_dy: array<vec4<f32>>;      // [N, c_out, P/4]
@group(0) @binding(2) var<storage, read> wb_x: array<vec4<f32>>;       // [N, c_in, P/4]
@group(0) @binding(3) var<storage, read_write> wb_partial: array<f32>; // [chunks, c_out, c_in]

// Partial dw of an 8x8 block (o0..o0+7, c0..c0+7) over one chunk of the N*P/4 vec4 positions:
// one invocation per (chunk, o block, c block), 64 accumulators, 16 vec4 loads per position (a
// 4x4 block took 8 loads for 16 dot products, this one 16 for 64). Channels past the end read
// the last channel and are not stored.
@compute @workgroup_size(64)
fn weight_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let oblocks = (p.c_out + 7u) / 8u;
    let cblocks = (p.c_in + 7u) / 8u;
    let t = index64(gid, nwg);
    if (t >= p.chunks * oblocks * cblocks) { return; }
    let cb = t % cblocks;
    let ob = (t / cblocks) % oblocks;
    let chunk = t / (cblocks * oblocks);
    let o0 = ob * 8u;
    let c0 = cb * 8u;
    let yo0 = min(o0, p.c_out - 1u) * p.p4;
    let xo0 = min(c0, p.c_in - 1u) * p.p4;
    let yo1 = min(o0 + 1u, p.c_out - 1u) * p.p4;
    let xo1 = min(c0 + 1u, p.c_in - 1u) * p.p4;
    let yo2 = min(o0 + 2u, p.c_out - 1u) * p.p4;
    let xo2 = min(c0 + 2u, p.c_in - 1u) * p.p4;
    let yo3 = min(o0 + 3u, p.c_out - 1u) * p.p4;
    let xo3 = min(c0 + 3u, p.c_in - 1u) * p.p4;
    let yo4 = min(o0 + 4u, p.c_out - 1u) * p.p4;
    let xo4 = min(c0 + 4u, p.c_in - 1u) * p.p4;
    let yo5 = min(o0 + 5u, p.c_out - 1u) * p.p4;
    let xo5 = min(c0 + 5u, p.c_in - 1u) * p.p4;
    let yo6 = min(o0 + 6u, p.c_out - 1u) * p.p4;
    let xo6 = min(c0 + 6u, p.c_in - 1u) * p.p4;
    let yo7 = min(o0 + 7u, p.c_out - 1u) * p.p4;
    let xo7 = min(c0 + 7u, p.c_in - 1u) * p.p4;
    let start = chunk * p.chunk;
    let end = min(start + p.chunk, p.n * p.p4);
    var s00 = 0.0; var s01 = 0.0; var s02 = 0.0; var s03 = 0.0; var s04 = 0.0; var s05 = 0.0; var s06 = 0.0; var s07 = 0.0;
    var s10 = 0.0; var s11 = 0.0; var s12 = 0.0; var s13 = 0.0; var s14 = 0.0; var s15 = 0.0; var s16 = 0.0; var s17 = 0.0;
    var s20 = 0.0; var s21 = 0.0; var s22 = 0.0; var s23 = 0.0; var s24 = 0.0; var s25 = 0.0; var s26 = 0.0; var s27 = 0.0;
    var s30 = 0.0; var s31 = 0.0; var s32 = 0.0; var s33 = 0.0; var s34 = 0.0; var s35 = 0.0; var s36 = 0.0; var s37 = 0.0;
    var s40 = 0.0; var s41 = 0.0; var s42 = 0.0; var s43 = 0.0; var s44 = 0.0; var s45 = 0.0; var s46 = 0.0; var s47 = 0.0;
    var s50 = 0.0; var s51 = 0.0; var s52 = 0.0; var s53 = 0.0; var s54 = 0.0; var s55 = 0.0; var s56 = 0.0; var s57 = 0.0;
    var s60 = 0.0; var s61 = 0.0; var s62 = 0.0; var s63 = 0.0; var s64 = 0.0; var s65 = 0.0; var s66 = 0.0; var s67 = 0.0;
    var s70 = 0.0; var s71 = 0.0; var s72 = 0.0; var s73 = 0.0; var s74 = 0.0; var s75 = 0.0; var s76 = 0.0; var s77 = 0.0;
    var b = start / p.p4;
    var q = start % p.p4;
    for (var e = start; e < end; e = e + 1u) {
        let yb = b * p.c_out * p.p4 + q;
        let xb = b * p.c_in * p.p4 + q;
        let x0 = wb_x[xb + xo0];
        let x1 = wb_x[xb + xo1];
        let x2 = wb_x[xb + xo2];
        let x3 = wb_x[xb + xo3];
        let x4 = wb_x[xb + xo4];
        let x5 = wb_x[xb + xo5];
        let x6 = wb_x[xb + xo6];
        let x7 = wb_x[xb + xo7];
        let g0 = wb_dy[yb + yo0];
        s00 += dot(g0, x0); s01 += dot(g0, x1); s02 += dot(g0, x2); s03 += dot(g0, x3); s04 += dot(g0, x4); s05 += dot(g0, x5); s06 += dot(g0, x6); s07 += dot(g0, x7);
        let g1 = wb_dy[yb + yo1];
        s10 += dot(g1, x0); s11 += dot(g1, x1); s12 += dot(g1, x2); s13 += dot(g1, x3); s14 += dot(g1, x4); s15 += dot(g1, x5); s16 += dot(g1, x6); s17 += dot(g1, x7);
        let g2 = wb_dy[yb + yo2];
        s20 += dot(g2, x0); s21 += dot(g2, x1); s22 += dot(g2, x2); s23 += dot(g2, x3); s24 += dot(g2, x4); s25 += dot(g2, x5); s26 += dot(g2, x6); s27 += dot(g2, x7);
        let g3 = wb_dy[yb + yo3];
        s30 += dot(g3, x0); s31 += dot(g3, x1); s32 += dot(g3, x2); s33 += dot(g3, x3); s34 += dot(g3, x4); s35 += dot(g3, x5); s36 += dot(g3, x6); s37 += dot(g3, x7);
        let g4 = wb_dy[yb + yo4];
        s40 += dot(g4, x0); s41 += dot(g4, x1); s42 += dot(g4, x2); s43 += dot(g4, x3); s44 += dot(g4, x4); s45 += dot(g4, x5); s46 += dot(g4, x6); s47 += dot(g4, x7);
        let g5 = wb_dy[yb + yo5];
        s50 += dot(g5, x0); s51 += dot(g5, x1); s52 += dot(g5, x2); s53 += dot(g5, x3); s54 += dot(g5, x4); s55 += dot(g5, x5); s56 += dot(g5, x6); s57 += dot(g5, x7);
        let g6 = wb_dy[yb + yo6];
        s60 += dot(g6, x0); s61 += dot(g6, x1); s62 += dot(g6, x2); s63 += dot(g6, x3); s64 += dot(g6, x4); s65 += dot(g6, x5); s66 += dot(g6, x6); s67 += dot(g6, x7);
        let g7 = wb_dy[yb + yo7];
        s70 += dot(g7, x0); s71 += dot(g7, x1); s72 += dot(g7, x2); s73 += dot(g7, x3); s74 += dot(g7, x4); s75 += dot(g7, x5); s76 += dot(g7, x6); s77 += dot(g7, x7);
        q = q + 1u;
        if (q == p.p4) { q = 0u; b = b + 1u; }
    }
    let base = chunk * p.outputs;
    store8(base, o0, c0, vec4<f32>(s00, s01, s02, s03), vec4<f32>(s04, s05, s06, s07));
    store8(base, o0 + 1u, c0, vec4<f32>(s10, s11, s12, s13), vec4<f32>(s14, s15, s16, s17));
    store8(base, o0 + 2u, c0, vec4<f32>(s20, s21, s22, s23), vec4<f32>(s24, s25, s26, s27));
    store8(base, o0 + 3u, c0, vec4<f32>(s30, s31, s32, s33), vec4<f32>(s34, s35, s36, s37));
    store8(base, o0 + 4u, c0, vec4<f32>(s40, s41, s42, s43), vec4<f32>(s44, s45, s46, s47));
    store8(base, o0 + 5u, c0, vec4<f32>(s50, s51, s52, s53), vec4<f32>(s54, s55, s56, s57));
    store8(base, o0 + 6u, c0, vec4<f32>(s60, s61, s62, s63), vec4<f32>(s64, s65, s66, s67));
    store8(base, o0 + 7u, c0, vec4<f32>(s70, s71, s72, s73), vec4<f32>(s74, s75, s76, s77));
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

// Stores dw[o, c0..c0+7] of one chunk.
fn store8(base: u32, o: u32, c0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    store4(base, o, c0, lo);
    store4(base, o, c0 + 4u, hi);
}

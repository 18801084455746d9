// The DARTS mixed operation: out = sum_t w[idx_t] * y_t over up to 8 terms per dispatch (a DARTS
// edge has 7 non-`none` primitives), and its weight gradient dw[idx_t] += <dout, y_t>. The
// weights are read on the GPU. Slots past `count` are bound to a real buffer (the first term)
// and never read.
//
// GDAS's edge (hard_select): only the sampled op k runs; out = h[k] * y + sum_{i != k} h[i] over
// the edge's row of the hard sample h, with dh[k] = <dout, y>, dh[i != k] = sum(dout) (dy =
// h[k] * dout is elementwise.wgsl's scale).

struct Params {
    n: u32,          // elements of each term
    count: u32,      // terms used in this dispatch (1..8)
    accumulate: u32, // weighted_sum: 1 adds to out (a later chunk of terms), 0 overwrites it
    chunk: u32,      // dots: elements per workgroup of the partial pass; bn_sum: vec4s per plane
    parts: u32,      // dots: partials per term
    has_y: u32,      // hard_select: 1 when the chosen op has an output, 0 for `none` (y is zero)
    mask: u32,       // bn_sum: bit t set when term t is a BN's input x (normalised here)
    channels: u32,   // bn_sum: C
    idx: array<vec4<u32>, 2>, // idx[t / 4][t % 4]: the flat index into w of term t
    // hard_select: idx[0] = e * K (the edge's row in h), idx[1] = k (the chosen op), count = K
}

@group(0) @binding(0) var<uniform> p: Params;

fn term_index(t: u32) -> u32 {
    return p.idx[t / 4u][t % 4u];
}

// weighted_sum: out (+)= sum_t w[idx_t] * y_t
@group(0) @binding(1) var<storage, read> ws_w: array<f32>;
@group(0) @binding(2) var<storage, read> ws_y0: array<f32>;
@group(0) @binding(3) var<storage, read> ws_y1: array<f32>;
@group(0) @binding(4) var<storage, read> ws_y2: array<f32>;
@group(0) @binding(5) var<storage, read> ws_y3: array<f32>;
@group(0) @binding(6) var<storage, read> ws_y4: array<f32>;
@group(0) @binding(7) var<storage, read> ws_y5: array<f32>;
@group(0) @binding(8) var<storage, read> ws_y6: array<f32>;
@group(0) @binding(9) var<storage, read> ws_y7: array<f32>;
@group(0) @binding(10) var<storage, read_write> ws_out: array<f32>;

// out[i] (+)= sum over the first `count` terms of w[idx_t] * y_t[i], in term order; one thread
// per element, i = gid.x + gid.y * nwg.x * 256.
@compute @workgroup_size(256)
fn weighted_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    var acc = 0.0;
    if (p.accumulate == 1u) { acc = ws_out[i]; }
    acc = acc + ws_w[term_index(0u)] * ws_y0[i];
    if (p.count > 1u) { acc = acc + ws_w[term_index(1u)] * ws_y1[i]; }
    if (p.count > 2u) { acc = acc + ws_w[term_index(2u)] * ws_y2[i]; }
    if (p.count > 3u) { acc = acc + ws_w[term_index(3u)] * ws_y3[i]; }
    if (p.count > 4u) { acc = acc + ws_w[term_index(4u)] * ws_y4[i]; }
    if (p.count > 5u) { acc = acc + ws_w[term_index(5u)] * ws_y5[i]; }
    if (p.count > 6u) { acc = acc + ws_w[term_index(6u)] * ws_y6[i]; }
    if (p.count > 7u) { acc = acc + ws_w[term_index(7u)] * ws_y7[i]; }
    ws_out[i] = acc;
}

// scale_terms: dy_t = w[idx_t] * dout for every term of the chunk (the terms' input gradients)
@group(0) @binding(1) var<storage, read> st_w: array<f32>;
@group(0) @binding(2) var<storage, read> st_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> st_dy0: array<f32>;
@group(0) @binding(4) var<storage, read_write> st_dy1: array<f32>;
@group(0) @binding(5) var<storage, read_write> st_dy2: array<f32>;
@group(0) @binding(6) var<storage, read_write> st_dy3: array<f32>;
@group(0) @binding(7) var<storage, read_write> st_dy4: array<f32>;
@group(0) @binding(8) var<storage, read_write> st_dy5: array<f32>;
@group(0) @binding(9) var<storage, read_write> st_dy6: array<f32>;
@group(0) @binding(10) var<storage, read_write> st_dy7: array<f32>;

// One thread per element, dout read once for all the terms (one dispatch instead of one per
// term). Slots past `count` are bound to distinct one-element buffers and never written.
@compute @workgroup_size(256)
fn scale_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let g = st_dout[i];
    st_dy0[i] = st_w[term_index(0u)] * g;
    if (p.count > 1u) { st_dy1[i] = st_w[term_index(1u)] * g; }
    if (p.count > 2u) { st_dy2[i] = st_w[term_index(2u)] * g; }
    if (p.count > 3u) { st_dy3[i] = st_w[term_index(3u)] * g; }
    if (p.count > 4u) { st_dy4[i] = st_w[term_index(4u)] * g; }
    if (p.count > 5u) { st_dy5[i] = st_w[term_index(5u)] * g; }
    if (p.count > 6u) { st_dy6[i] = st_w[term_index(6u)] * g; }
    if (p.count > 7u) { st_dy7[i] = st_w[term_index(7u)] * g; }
}

// dot_partials: partial[t * parts + c] = <dout, y_t> over chunk c
@group(0) @binding(1) var<storage, read> dp_dout: array<f32>;
@group(0) @binding(2) var<storage, read> dp_y0: array<f32>;
@group(0) @binding(3) var<storage, read> dp_y1: array<f32>;
@group(0) @binding(4) var<storage, read> dp_y2: array<f32>;
@group(0) @binding(5) var<storage, read> dp_y3: array<f32>;
@group(0) @binding(6) var<storage, read> dp_y4: array<f32>;
@group(0) @binding(7) var<storage, read> dp_y5: array<f32>;
@group(0) @binding(8) var<storage, read> dp_y6: array<f32>;
@group(0) @binding(9) var<storage, read> dp_y7: array<f32>;
@group(0) @binding(10) var<storage, read_write> dp_partial: array<f32>;

// sum over i in [start, end) of dout[i] * y_t[i], in order.
fn chunk_dot(t: u32, start: u32, end: u32) -> f32 {
    var acc = 0.0;
    switch t {
        case 0u: { for (var i = start; i < end; i++) { acc = fma(dp_dout[i], dp_y0[i], acc); } }
        case 1u: { for (var i = start; i < end; i++) { acc = fma(dp_dout[i], dp_y1[i], acc); } }
        case 2u: { for (var i = start; i < end; i++) { acc = fma(dp_dout[i], dp_y2[i], acc); } }
        case 3u: { for (var i = start; i < end; i++) { acc = fma(dp_dout[i], dp_y3[i], acc); } }
        case 4u: { for (var i = start; i < end; i++) { acc = fma(dp_dout[i], dp_y4[i], acc); } }
        case 5u: { for (var i = start; i < end; i++) { acc = fma(dp_dout[i], dp_y5[i], acc); } }
        case 6u: { for (var i = start; i < end; i++) { acc = fma(dp_dout[i], dp_y6[i], acc); } }
        default: { for (var i = start; i < end; i++) { acc = fma(dp_dout[i], dp_y7[i], acc); } }
    }
    return acc;
}

// One invocation per (term t, chunk c), thread = t * parts + c: a sequential dot product over
// the chunk, no workgroup barriers (costly on CPU adapters).
@compute @workgroup_size(64)
fn dot_partials(@builtin(global_invocation_id) gid: vec3<u32>) {
    let thread = gid.x;
    if (thread >= p.count * p.parts) { return; }
    let t = thread / p.parts;
    let c = thread % p.parts;
    let start = c * p.chunk;
    dp_partial[thread] = chunk_dot(t, start, min(start + p.chunk, p.n));
}

// dot_finish: dw[idx_t] += sum of term t's partials
@group(0) @binding(1) var<storage, read> df_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> df_dw: array<f32>;

// dw[idx_t] += sum_c partial[t * parts + c] for each term in order (a repeated index sums its
// terms): one invocation does it all (at most 8 x MAX_PARTS additions).
@compute @workgroup_size(1)
fn dot_finish() {
    for (var t = 0u; t < p.count; t = t + 1u) {
        var acc = 0.0;
        for (var c = 0u; c < p.parts; c = c + 1u) {
            acc = acc + df_partial[t * p.parts + c];
        }
        let k = term_index(t);
        df_dw[k] = df_dw[k] + acc;
    }
}

// hard_select: out = h[row + k] * y + sum_{i != k} h[row + i], four elements per thread (buffers
// are padded to 16 bytes: the last vec4 may run past n into the padding)
@group(0) @binding(1) var<storage, read> hs_h: array<f32>;
@group(0) @binding(2) var<storage, read> hs_y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> hs_out: array<vec4<f32>>;

// One thread per 4 elements, i = index(gid, nwg); the other ops' weights (forward zero in a
// straight-through sample, there for their gradient) summed in column order once per thread;
// without y (`none` chosen) only that sum.
@compute @workgroup_size(256)
fn hard_select(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= (p.n + 3u) / 4u) { return; }
    let row = p.idx[0].x;
    let k = p.idx[0].y;
    var rest = 0.0;
    for (var j = 0u; j < p.count; j = j + 1u) {
        if (j != k) { rest = rest + hs_h[row + j]; }
    }
    var acc = vec4<f32>(rest);
    if (p.has_y == 1u) { acc = fma(vec4<f32>(hs_h[row + k]), hs_y[i], acc); }
    hs_out[i] = acc;
}

// select_partials: partial[c] = <dout, y> over chunk c, partial[parts + c] = sum of dout over it
@group(0) @binding(1) var<storage, read> sp_dout: array<f32>;
@group(0) @binding(2) var<storage, read> sp_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> sp_partial: array<f32>;

// One invocation per (quantity q, chunk c), thread = q * parts + c, sequential over the chunk;
// the dot is 0 without y.
@compute @workgroup_size(64)
fn select_partials(@builtin(global_invocation_id) gid: vec3<u32>) {
    let thread = gid.x;
    if (thread >= 2u * p.parts) { return; }
    let q = thread / p.parts;
    let start = (thread % p.parts) * p.chunk;
    let end = min(start + p.chunk, p.n);
    var acc = 0.0;
    if (q == 1u) {
        for (var i = start; i < end; i++) { acc = acc + sp_dout[i]; }
    } else if (p.has_y == 1u) {
        for (var i = start; i < end; i++) { acc = fma(sp_dout[i], sp_y[i], acc); }
    }
    sp_partial[thread] = acc;
}

// select_finish: dh[row + k] = sum of the dot partials, dh[row + i != k] = sum of the dout partials
@group(0) @binding(1) var<storage, read> sf_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> sf_dh: array<f32>;

// One invocation: both sums in chunk order, then the edge's row of dh (other rows stay zero).
@compute @workgroup_size(1)
fn select_finish() {
    var dot = 0.0;
    var total = 0.0;
    for (var c = 0u; c < p.parts; c = c + 1u) {
        dot = dot + sf_partial[c];
        total = total + sf_partial[p.parts + c];
    }
    let row = p.idx[0].x;
    let k = p.idx[0].y;
    for (var i = 0u; i < p.count; i = i + 1u) {
        if (i == k) { sf_dh[row + i] = dot; } else { sf_dh[row + i] = total; }
    }
}

// bn_sum: a DARTS edge's sum, its ops' last BNs applied on the way: out = sum_t z_t in term
// order, z_t = a_t[c] x_t + b_t[c] for a term in p.mask (x_t the BN's input, (a, b) its
// coefficients, batch_norm.wgsl's COEF, row t of coef: the op's weight folded into a) and
// z_t = x_t for the others. The BNs' outputs are never written: the edge reads each x once
// instead of the BN reading x and writing y and the sum reading y. The same bits as sum8 over
// the BNs' outputs (each z_t is the fma the BN would have written).
@group(0) @binding(1) var<storage, read> bs_coef: array<vec4<f32>>; // [8, C]: (a, b, mean, istd)
@group(0) @binding(2) var<storage, read> bs_x0: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bs_x1: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bs_x2: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> bs_x3: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> bs_x4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> bs_x5: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> bs_x6: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> bs_x7: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> bs_out: array<vec4<f32>>;

// Vec4s per invocation of bn_sum, one run in one plane: its terms' coefficients are loaded once.
const BS_RUN: u32 = 4u;

// One workgroup row per plane (n, c) = wid.y + wid.z * nwg.y, so that the channel is uniform
// across a workgroup; invocation x covers vec4s x * BS_RUN .. + BS_RUN of the plane.
@compute @workgroup_size(64)
fn bn_sum(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let plane = wid.y + wid.z * nwg.y;
    let hw4 = p.chunk;
    let j0 = gid.x * BS_RUN;
    if (plane * hw4 * 4u >= p.n || j0 >= hw4) { return; }
    let c = plane % p.channels;
    var ab: array<vec2<f32>, 8>;
    for (var t = 0u; t < p.count; t = t + 1u) {
        if (((p.mask >> t) & 1u) != 0u) {
            ab[t] = bs_coef[t * p.channels + c].xy;
        } else {
            ab[t] = vec2<f32>(1.0, 0.0);
        }
    }
    // A plain term's (1, 0) leaves it as it is (fma(x, 1, 0) = x).
    for (var e = 0u; e < BS_RUN; e = e + 1u) {
        let j = j0 + e;
        if (j >= hw4) { break; }
        let i = plane * hw4 + j;
        var acc = fma(bs_x0[i], vec4<f32>(ab[0].x), vec4<f32>(ab[0].y));
        if (p.count > 1u) { acc = acc + fma(bs_x1[i], vec4<f32>(ab[1].x), vec4<f32>(ab[1].y)); }
        if (p.count > 2u) { acc = acc + fma(bs_x2[i], vec4<f32>(ab[2].x), vec4<f32>(ab[2].y)); }
        if (p.count > 3u) { acc = acc + fma(bs_x3[i], vec4<f32>(ab[3].x), vec4<f32>(ab[3].y)); }
        if (p.count > 4u) { acc = acc + fma(bs_x4[i], vec4<f32>(ab[4].x), vec4<f32>(ab[4].y)); }
        if (p.count > 5u) { acc = acc + fma(bs_x5[i], vec4<f32>(ab[5].x), vec4<f32>(ab[5].y)); }
        if (p.count > 6u) { acc = acc + fma(bs_x6[i], vec4<f32>(ab[6].x), vec4<f32>(ab[6].y)); }
        if (p.count > 7u) { acc = acc + fma(bs_x7[i], vec4<f32>(ab[7].x), vec4<f32>(ab[7].y)); }
        bs_out[i] = acc;
    }
}

// The backward of bn_sum's BN terms, all at once. A scaled BN's y = s[k] xhat takes the edge's
// dout as its dy, so every term's sum of dy is the same and dout is read once for all terms,
// not once per term. BN term b (b < count <= 7) is x_b, its coefficients' row idx[b].
// bn_sum_sums: per plane (n, c), partial[plane, 0] = sum dout and partial[plane, 1 + b] =
// istd_b sum dout (x_b - mean_b), each term as batch_norm.wgsl's plane_sums4 sums it (the same
// bits); one invocation per plane.
@group(0) @binding(1) var<storage, read> bb_coef: array<vec4<f32>>;  // [8, C]: (a, b, mean, istd)
@group(0) @binding(2) var<storage, read> bb_dout: array<vec4<f32>>;  // [N, C, H * W / 4]
@group(0) @binding(3) var<storage, read> bb_x0: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bb_x1: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> bb_x2: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> bb_x3: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> bb_x4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> bb_x5: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> bb_x6: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> bb_partial: array<f32>; // [N * C, 8]

// Term b's (mean, istd) for channel c.
fn bb_stats(b: u32, c: u32) -> vec2<f32> {
    return bb_coef[p.idx[b / 4u][b % 4u] * p.channels + c].zw;
}

@compute @workgroup_size(64)
fn bn_sum_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = index64(gid, nwg);
    let hw4 = p.chunk;
    if (plane * hw4 * 4u >= p.n) { return; }
    let c = plane % p.channels;
    var m: array<vec2<f32>, 7>;
    for (var b = 0u; b < p.count; b = b + 1u) {
        m[b] = bb_stats(b, c);
    }
    let m0 = vec4<f32>(m[0].x);
    let m1 = vec4<f32>(m[1].x);
    let m2 = vec4<f32>(m[2].x);
    let m3 = vec4<f32>(m[3].x);
    let m4 = vec4<f32>(m[4].x);
    let m5 = vec4<f32>(m[5].x);
    let m6 = vec4<f32>(m[6].x);
    var sum = vec4<f32>(0.0);
    var d0 = vec4<f32>(0.0);
    var d1 = vec4<f32>(0.0);
    var d2 = vec4<f32>(0.0);
    var d3 = vec4<f32>(0.0);
    var d4 = vec4<f32>(0.0);
    var d5 = vec4<f32>(0.0);
    var d6 = vec4<f32>(0.0);
    let base = plane * hw4;
    for (var j = 0u; j < hw4; j = j + 1u) {
        let i = base + j;
        let dy = bb_dout[i];
        sum = sum + dy;
        d0 = fma(dy, bb_x0[i] - m0, d0);
        if (p.count > 1u) { d1 = fma(dy, bb_x1[i] - m1, d1); }
        if (p.count > 2u) { d2 = fma(dy, bb_x2[i] - m2, d2); }
        if (p.count > 3u) { d3 = fma(dy, bb_x3[i] - m3, d3); }
        if (p.count > 4u) { d4 = fma(dy, bb_x4[i] - m4, d4); }
        if (p.count > 5u) { d5 = fma(dy, bb_x5[i] - m5, d5); }
        if (p.count > 6u) { d6 = fma(dy, bb_x6[i] - m6, d6); }
    }
    let out = plane * 8u;
    bb_partial[out] = hsum4(sum);
    let dots = array<vec4<f32>, 7>(d0, d1, d2, d3, d4, d5, d6);
    for (var b = 0u; b < p.count; b = b + 1u) {
        bb_partial[out + 1u + b] = hsum4(dots[b]) * m[b].y;
    }
}

// (v.x + v.y) + (v.z + v.w), as batch_norm.wgsl's hsum.
fn hsum4(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// bn_sum_combine: per channel c, the plane partials summed over n in order (as combine_sums):
// dbeta[c] = sum dout, dgamma[b, c] = sum dout * xhat_b; one invocation per channel.
@group(0) @binding(1) var<storage, read> bc_partial: array<f32>;         // [N * C, 8]
@group(0) @binding(2) var<storage, read_write> bc_dgamma: array<f32>;    // [8, C]
@group(0) @binding(3) var<storage, read_write> bc_dbeta: array<f32>;     // [C]

@compute @workgroup_size(64)
fn bn_sum_combine(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.channels) { return; }
    let batch = p.n / (p.chunk * 4u * p.channels);
    for (var b = 0u; b <= p.count; b = b + 1u) {
        var acc = 0.0;
        for (var n = 0u; n < batch; n = n + 1u) {
            acc = acc + bc_partial[(n * p.channels + c) * 8u + b];
        }
        if (b == 0u) {
            bc_dbeta[c] = acc;
        } else {
            bc_dgamma[(b - 1u) * p.channels + c] = acc;
        }
    }
}

// bn_sum_gain_grad: ds, the gradient of the gain buffer (any shape) the terms share: zeros but
// ds[idx[b]] = sum over channels of dgamma[b, c], added in channel order (as scale_grad). One
// workgroup.
@group(0) @binding(1) var<storage, read> bg_dgamma: array<f32>;    // [8, C]
@group(0) @binding(2) var<storage, read_write> bg_ds: array<f32>;

@compute @workgroup_size(64)
fn bn_sum_gain_grad(@builtin(local_invocation_index) l: u32) {
    for (var i = l; i < arrayLength(&bg_ds); i = i + 64u) {
        var total = 0.0;
        for (var b = 0u; b < p.count; b = b + 1u) {
            if (p.idx[b / 4u][b % 4u] == i) {
                var acc = 0.0;
                for (var c = 0u; c < p.channels; c = c + 1u) {
                    acc = acc + bg_dgamma[b * p.channels + c];
                }
                total = total + acc;
            }
        }
        bg_ds[i] = total;
    }
}

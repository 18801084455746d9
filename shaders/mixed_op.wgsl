// The DARTS mixed operation: out = sum_t w[idx_t] * y_t over up to 8 terms per dispatch (a DARTS
// edge has 7 non-`none` primitives), and its weight gradient dw[idx_t] += <dout, y_t>. The
// weights are read on the GPU. Slots past `count` are bound to a real buffer (the first term)
// and never read.

struct Params {
    n: u32,          // elements of each term
    count: u32,      // terms used in this dispatch (1..8)
    accumulate: u32, // weighted_sum: 1 adds to out (a later chunk of terms), 0 overwrites it
    chunk: u32,      // dots: elements per workgroup of the partial pass
    parts: u32,      // dots: partials per term
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    idx: array<vec4<u32>, 2>, // idx[t / 4][t % 4]: the flat index into w of term t
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

var<workgroup> tree: array<f32, 256>;

fn tree_sum(lid: u32, v: f32) -> f32 {
    tree[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            tree[lid] = tree[lid] + tree[lid + s];
        }
        workgroupBarrier();
    }
    let r = tree[0];
    // Everyone has read the result before the tree is reused.
    workgroupBarrier();
    return r;
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

fn term_value(t: u32, i: u32) -> f32 {
    switch t {
        case 0u: { return dp_y0[i]; }
        case 1u: { return dp_y1[i]; }
        case 2u: { return dp_y2[i]; }
        case 3u: { return dp_y3[i]; }
        case 4u: { return dp_y4[i]; }
        case 5u: { return dp_y5[i]; }
        case 6u: { return dp_y6[i]; }
        default: { return dp_y7[i]; }
    }
}

// partial[t * parts + c] = sum over chunk c of dout * y_t; one workgroup per (chunk c = wid.x,
// term t = wid.y), threads stride through the chunk, then a fixed-order tree.
@compute @workgroup_size(256)
fn dot_partials(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let t = wid.y;
    let start = c * p.chunk;
    let end = min(start + p.chunk, p.n);
    var acc = 0.0;
    for (var i = start + lid; i < end; i = i + 256u) {
        acc = acc + dp_dout[i] * term_value(t, i);
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        dp_partial[t * p.parts + c] = total;
    }
}

// dot_finish: dw[idx_t] += sum of term t's partials
@group(0) @binding(1) var<storage, read> df_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> df_dw: array<f32>;

// dw[idx_t] += sum_c partial[t * parts + c] for each term in order (a repeated index sums its
// terms); a single workgroup.
@compute @workgroup_size(256)
fn dot_finish(@builtin(local_invocation_index) lid: u32) {
    for (var t = 0u; t < p.count; t = t + 1u) {
        var acc = 0.0;
        for (var c = lid; c < p.parts; c = c + 256u) {
            acc = acc + df_partial[t * p.parts + c];
        }
        let total = tree_sum(lid, acc);
        if (lid == 0u) {
            let k = term_index(t);
            df_dw[k] = df_dw[k] + total;
        }
    }
}

// Deterministic reductions (no float atomics): a fixed split into per-workgroup partial sums,
// each a fixed-order tree in workgroup memory, then one workgroup sums the partials in order.
// The same inputs on the same adapter always give the same bits.

struct Params {
    n: u32,        // elements reduced
    chunk: u32,    // elements per workgroup in the partial pass
    parts: u32,    // number of partials
    k: u32,        // index of the result in `out`
    scale: f32,    // the result is multiplied by this (1/n for a mean)
    accumulate: u32, // 1: out[k] += result; 0: out[k] = result
    _pad0: u32,
    _pad1: u32,
}

// What is summed: 0 a[i], 1 a[i]*b[i], 2 a[i]*a[i].
override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;

var<workgroup> tree: array<f32, 256>;

// Sums v over the workgroup in a fixed order. The leading barrier makes a second call in the
// same kernel safe (thread 0 may not overwrite tree[0] while others still read it).
fn tree_sum(lid: u32, v: f32) -> f32 {
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

@group(0) @binding(1) var<storage, read> pa: array<f32>;
@group(0) @binding(2) var<storage, read> pb: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

// partial[w] = sum over this workgroup's chunk of the MODE term; one workgroup per chunk,
// threads stride through it.
@compute @workgroup_size(256)
fn partial_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let start = wid.x * p.chunk;
    let end = min(start + p.chunk, p.n);
    var acc = 0.0;
    for (var i = start + lid; i < end; i = i + 256u) {
        let a = pa[i];
        if (MODE == 0u) {
            acc = acc + a;
        } else if (MODE == 1u) {
            acc = acc + a * pb[i];
        } else {
            acc = acc + a * a;
        }
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        partial[wid.x] = total;
    }
}

@group(0) @binding(1) var<storage, read> fp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// out[k] (+)= scale * sum of the partials; a single workgroup.
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var i = lid; i < p.parts; i = i + 256u) {
        acc = acc + fp[i];
    }
    let total = tree_sum(lid, acc) * p.scale;
    if (lid == 0u) {
        if (p.accumulate == 1u) {
            out[p.k] = out[p.k] + total;
        } else {
            out[p.k] = total;
        }
    }
}

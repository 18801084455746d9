// Embedding lookup: rows of a table [V, D] picked by u32 indices [N]. An index past the table
// (idx >= V) reads as a row of zeros and receives no gradient: the host cannot check indices
// that live on the GPU without a readback, so the kernel makes them harmless instead.
// One thread per output element; i = gid.x + gid.y * nwg.x * 256.

struct Params {
    n: u32,      // indices
    vocab: u32,  // V, rows of the table
    dim: u32,    // D
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// gather: y[n, d] = table[idx[n], d]
@group(0) @binding(1) var<storage, read> ga_table: array<f32>;
@group(0) @binding(2) var<storage, read> ga_idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> ga_y: array<f32>;

// y [N, D] from table [V, D] and idx [N]: one thread per element of y; zero for idx >= V.
@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = index(gid, nwg);
    if (e >= p.n * p.dim) { return; }
    let row = ga_idx[e / p.dim];
    var v = 0.0;
    if (row < p.vocab) {
        v = ga_table[row * p.dim + e % p.dim];
    }
    ga_y[e] = v;
}

// scatter_grad: dtable[v, d] = sum over n with idx[n] == v of dy[n, d]
@group(0) @binding(1) var<storage, read> sg_dy: array<f32>;
@group(0) @binding(2) var<storage, read> sg_idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> sg_dtable: array<f32>;

// dtable [V, D] from dy [N, D] and idx [N]: one thread per table element, looping over the N
// indices in order (deterministic, no atomics); rows never picked get zero.
@compute @workgroup_size(256)
fn scatter_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = index(gid, nwg);
    if (e >= p.vocab * p.dim) { return; }
    let row = e / p.dim;
    let d = e % p.dim;
    var acc = 0.0;
    for (var s = 0u; s < p.n; s = s + 1u) {
        if (sg_idx[s] == row) {
            acc = acc + sg_dy[s * p.dim + d];
        }
    }
    sg_dtable[e] = acc;
}

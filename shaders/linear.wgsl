// Dense layers as matrix products: one tiled matmul with transpose flags serves the forward
// (y = x @ w^T + b), and the backward (dx = dy @ w, dw = dy^T @ x); a column sum gives db.
// Every output is a sum in a fixed order (k = 0, 1, ...), so results repeat bit for bit.

struct Params {
    m: u32,     // rows of C
    n: u32,     // columns of C
    k: u32,     // length of the inner (summed) dimension
    _pad0: u32,
}

// A is stored [K, M] (read transposed) instead of [M, K].
override TRANS_A: bool = false;
// B is stored [N, K] (read transposed) instead of [K, N].
override TRANS_B: bool = false;
// C gets bias[col] added.
override HAS_BIAS: bool = false;

const TILE: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;

// matmul: C[M, N] = op(A)[M, K] @ op(B)[K, N] (+ bias[N])
@group(0) @binding(1) var<storage, read> mm_a: array<f32>;
@group(0) @binding(2) var<storage, read> mm_b: array<f32>;
@group(0) @binding(3) var<storage, read> mm_bias: array<f32>; // any buffer when !HAS_BIAS
@group(0) @binding(4) var<storage, read_write> mm_c: array<f32>;

var<workgroup> tile_a: array<array<f32, 16>, 16>; // [row in tile][k in tile]
var<workgroup> tile_b: array<array<f32, 16>, 16>; // [k in tile][column in tile]

fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) { return 0.0; }
    if (TRANS_A) { return mm_a[kk * p.m + row]; }
    return mm_a[row * p.k + kk];
}

fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) { return 0.0; }
    if (TRANS_B) { return mm_b[col * p.k + kk]; }
    return mm_b[kk * p.n + col];
}

// C = op(A) @ op(B) (+ bias): one thread per element of C, a 16x16 workgroup per 16x16 block of C
// (wid.x over column blocks, wid.y over row blocks); K is walked in 16-wide tiles staged in
// workgroup memory, zero-padded past the ragged edges.
@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wid.y * TILE + lid.y;
    let col = wid.x * TILE + lid.x;
    var acc = 0.0;
    let tiles = (p.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t = t + 1u) {
        let k0 = t * TILE;
        // Each thread stages one element of each tile; the A tile row is this block's row
        // lid.y, the B tile column this block's column lid.x.
        tile_a[lid.y][lid.x] = load_a(wid.y * TILE + lid.y, k0 + lid.x);
        tile_b[lid.y][lid.x] = load_b(k0 + lid.y, wid.x * TILE + lid.x);
        workgroupBarrier();
        for (var kk = 0u; kk < TILE; kk = kk + 1u) {
            acc = acc + tile_a[lid.y][kk] * tile_b[kk][lid.x];
        }
        workgroupBarrier();
    }
    if (row < p.m && col < p.n) {
        if (HAS_BIAS) {
            acc = acc + mm_bias[col];
        }
        mm_c[row * p.n + col] = acc;
    }
}

// sum_rows: out[N] = sum over rows of x[M, N] (the bias gradient, summed over the batch)
@group(0) @binding(1) var<storage, read> sr_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sr_out: array<f32>;

// out[col] = sum_row x[row, col] in row order: one thread per column (i = gid.x + gid.y * nwg.x * 256),
// neighbouring threads read neighbouring columns.
@compute @workgroup_size(256)
fn sum_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let col = gid.x + gid.y * nwg.x * 256u;
    if (col >= p.n) { return; }
    var acc = 0.0;
    for (var row = 0u; row < p.m; row = row + 1u) {
        acc = acc + sr_x[row * p.n + col];
    }
    sr_out[col] = acc;
}

// Softmax family over the last axis of a tensor seen as [rows, k]: softmax, log-softmax,
// cross-entropy, entropy and accuracy, forward and backward. Rows are short (8..1000) and may be
// many, so the row kernels run one workgroup of 64 threads per row (row r = wid.x + wid.y * nwg.x,
// see gpu::grid_groups): threads stride through the row, then a fixed-order tree in workgroup
// memory combines them, so results repeat bit for bit. Every row subtracts its maximum first.
// The element-wise kernels run one thread per element: i = gid.x + gid.y * nwg.x * 256.

struct Params {
    rows: u32,   // number of rows
    k: u32,      // row length (the last axis)
    _pad0: u32,
    _pad1: u32,
}

// softmax_forward / softmax_backward: 0 softmax, 1 log-softmax.
override LOG: u32 = 0u;

const WG: u32 = 64u;
// The lowest finite f32, where a running maximum starts. This literal rounds to -f32::MAX; the
// usual -3.4028235e38 lies just past it, and Chrome's WGSL compiler (Tint) rejects it.
const LOWEST: f32 = -3.4028234e38;

@group(0) @binding(0) var<uniform> p: Params;

var<workgroup> tree: array<f32, 64>;
var<workgroup> tree_index: array<u32, 64>;

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

fn element_of(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// The maximum of every thread's `v`, returned to all threads.
fn tree_max(lid: u32, v: f32) -> f32 {
    tree[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            tree[lid] = max(tree[lid], tree[lid + s]);
        }
        workgroupBarrier();
    }
    let r = tree[0];
    // Everyone has read the result before the tree is reused.
    workgroupBarrier();
    return r;
}

// The sum of every thread's `v` (fixed order), returned to all threads.
fn tree_sum(lid: u32, v: f32) -> f32 {
    tree[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            tree[lid] = tree[lid] + tree[lid + s];
        }
        workgroupBarrier();
    }
    let r = tree[0];
    workgroupBarrier();
    return r;
}

// softmax_forward: y = softmax(x) or log_softmax(x) per row (LOG).
@group(0) @binding(1) var<storage, read> sf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sf_y: array<f32>;

// y[r, :] = softmax(x[r, :]) (LOG 0) or x - logsumexp(x) (LOG 1); one workgroup per row.
@compute @workgroup_size(64)
fn softmax_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = row_of(wid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.k;
    var m = LOWEST;
    for (var j = lid; j < p.k; j = j + WG) {
        m = max(m, sf_x[base + j]);
    }
    m = tree_max(lid, m);
    var s = 0.0;
    for (var j = lid; j < p.k; j = j + WG) {
        s = s + exp(sf_x[base + j] - m);
    }
    s = tree_sum(lid, s);
    let log_s = log(s);
    for (var j = lid; j < p.k; j = j + WG) {
        let z = sf_x[base + j] - m;
        if (LOG == 1u) {
            sf_y[base + j] = z - log_s;
        } else {
            sf_y[base + j] = exp(z) / s;
        }
    }
}

// softmax_backward: dx from the saved output y and dy.
@group(0) @binding(1) var<storage, read> sb_y: array<f32>;
@group(0) @binding(2) var<storage, read> sb_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> sb_dx: array<f32>;

// dx = y * (dy - sum(dy * y)) (LOG 0) or dy - exp(y) * sum(dy) (LOG 1, y = log-softmax);
// one workgroup per row.
@compute @workgroup_size(64)
fn softmax_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = row_of(wid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.k;
    var acc = 0.0;
    for (var j = lid; j < p.k; j = j + WG) {
        if (LOG == 1u) {
            acc = acc + sb_dy[base + j];
        } else {
            acc = acc + sb_dy[base + j] * sb_y[base + j];
        }
    }
    let total = tree_sum(lid, acc);
    for (var j = lid; j < p.k; j = j + WG) {
        let y = sb_y[base + j];
        let dy = sb_dy[base + j];
        if (LOG == 1u) {
            sb_dx[base + j] = dy - exp(y) * total;
        } else {
            sb_dx[base + j] = y * (dy - total);
        }
    }
}

// Row statistics shared by cross-entropy and entropy: stats[r] = (max, log sum exp(x - max)),
// so that log p = (x - max) - stats.y without the cancellation of x - logsumexp at large |x|.

// cross_entropy_rows: per-row loss and the row statistics its backward needs.
@group(0) @binding(1) var<storage, read> ce_x: array<f32>;
@group(0) @binding(2) var<storage, read> ce_labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> ce_stats: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> ce_loss: array<f32>;

// loss[r] = logsumexp(x[r, :]) - x[r, label[r]] (NaN when label[r] >= k, so that the loss check of
// the training loop reports the bad label); one workgroup per row.
@compute @workgroup_size(64)
fn cross_entropy_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = row_of(wid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.k;
    var m = LOWEST;
    for (var j = lid; j < p.k; j = j + WG) {
        m = max(m, ce_x[base + j]);
    }
    m = tree_max(lid, m);
    var s = 0.0;
    for (var j = lid; j < p.k; j = j + WG) {
        s = s + exp(ce_x[base + j] - m);
    }
    s = tree_sum(lid, s);
    if (lid == 0u) {
        let log_s = log(s);
        ce_stats[r] = vec2<f32>(m, log_s);
        let label = ce_labels[r];
        if (label < p.k) {
            ce_loss[r] = (m - ce_x[base + label]) + log_s;
        } else {
            // A quiet NaN built at run time (a constant NaN is a shader-creation error).
            ce_loss[r] = bitcast<f32>(0x7fc00000u | (label & 0u));
        }
    }
}

// cross_entropy_backward: dlogits from the saved row statistics and the GPU scalar upstream.
@group(0) @binding(1) var<storage, read> cb_x: array<f32>;
@group(0) @binding(2) var<storage, read> cb_labels: array<u32>;
@group(0) @binding(3) var<storage, read> cb_stats: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> cb_up: array<f32>;
@group(0) @binding(5) var<storage, read_write> cb_dx: array<f32>;

// dx[r, j] = up * (softmax(x[r, :])[j] - [j == label[r]]) / rows (no one-hot term when the label
// is out of range); one thread per element.
@compute @workgroup_size(256)
fn cross_entropy_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element_of(gid, nwg);
    if (i >= p.rows * p.k) { return; }
    let r = i / p.k;
    let j = i % p.k;
    let st = cb_stats[r];
    let prob = exp((cb_x[i] - st.x) - st.y);
    let hit = select(0.0, 1.0, cb_labels[r] == j);
    cb_dx[i] = cb_up[0] * (prob - hit) / f32(p.rows);
}

// entropy_rows: per-row entropy and the row statistics its backward needs.
@group(0) @binding(1) var<storage, read> en_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> en_stats: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> en_h: array<f32>;

// h[r] = -sum_j p_j log p_j = log s - sum_j e^{z_j} z_j / s with z = x - max, s = sum e^z;
// one workgroup per row.
@compute @workgroup_size(64)
fn entropy_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = row_of(wid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.k;
    var m = LOWEST;
    for (var j = lid; j < p.k; j = j + WG) {
        m = max(m, en_x[base + j]);
    }
    m = tree_max(lid, m);
    var s = 0.0;
    var t = 0.0;
    for (var j = lid; j < p.k; j = j + WG) {
        let z = en_x[base + j] - m;
        let e = exp(z);
        s = s + e;
        t = t + e * z;
    }
    s = tree_sum(lid, s);
    t = tree_sum(lid, t);
    if (lid == 0u) {
        let log_s = log(s);
        en_stats[r] = vec2<f32>(m, log_s);
        en_h[r] = log_s - t / s;
    }
}

// entropy_backward: dx from the saved row statistics, the entropies and their gradients.
@group(0) @binding(1) var<storage, read> eb_x: array<f32>;
@group(0) @binding(2) var<storage, read> eb_stats: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> eb_h: array<f32>;
@group(0) @binding(4) var<storage, read> eb_dh: array<f32>;
@group(0) @binding(5) var<storage, read_write> eb_dx: array<f32>;

// dx[r, j] = -dh[r] * p_j * (log p_j + h[r]); one thread per element.
@compute @workgroup_size(256)
fn entropy_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element_of(gid, nwg);
    if (i >= p.rows * p.k) { return; }
    let r = i / p.k;
    let st = eb_stats[r];
    let log_prob = (eb_x[i] - st.x) - st.y;
    eb_dx[i] = -eb_dh[r] * exp(log_prob) * (log_prob + eb_h[r]);
}

// correct_rows: 1 where the row's argmax is its label.
@group(0) @binding(1) var<storage, read> ac_x: array<f32>;
@group(0) @binding(2) var<storage, read> ac_labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> ac_correct: array<f32>;

// correct[r] = 1 if argmax(x[r, :]) == label[r] else 0, ties to the lowest index (an out-of-range
// label is never correct); one workgroup per row.
@compute @workgroup_size(64)
fn correct_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = row_of(wid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.k;
    // Each thread's candidates come in increasing j, so a strict > keeps the lowest index.
    var best = LOWEST;
    var best_j = 0xffffffffu;
    for (var j = lid; j < p.k; j = j + WG) {
        let v = ac_x[base + j];
        if (best_j == 0xffffffffu || v > best) {
            best = v;
            best_j = j;
        }
    }
    tree[lid] = best;
    tree_index[lid] = best_j;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            let v = tree[lid + s];
            let vj = tree_index[lid + s];
            let keep = tree_index[lid];
            // Threads without a candidate (k < 64) carry index 0xffffffff and never win.
            let take = vj != 0xffffffffu &&
                (keep == 0xffffffffu || v > tree[lid] || (v == tree[lid] && vj < keep));
            if (take) {
                tree[lid] = v;
                tree_index[lid] = vj;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        ac_correct[r] = select(0.0, 1.0, tree_index[0] == ac_labels[r]);
    }
}

// mean_rows: the mean of one value per row.
@group(0) @binding(1) var<storage, read> mr_v: array<f32>;
@group(0) @binding(2) var<storage, read_write> mr_out: array<f32>;

// out[0] = sum(v[0..rows]) / rows in a fixed order; a single workgroup.
@compute @workgroup_size(64)
fn mean_rows(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var i = lid; i < p.rows; i = i + WG) {
        acc = acc + mr_v[i];
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        mr_out[0] = total / f32(p.rows);
    }
}

// BatchNorm2d over x: [N, C, H, W]: per-channel batch statistics (with the running-statistics
// update, in training), normalisation, and the backward (through the batch statistics in
// training mode). Per-channel sums are one workgroup per channel, a fixed-order tree in
// workgroup memory: no atomics, the same bits every run.

struct Params {
    n: u32,        // batch size N
    c: u32,        // channels C
    hw: u32,       // H * W
    total: u32,    // N * C * H * W
    eps: f32,      // added to the variance under the square root
    momentum: f32, // weight of the new statistic in the running update
    _pad0: u32,
    _pad1: u32,
}

// gamma and beta are read (affine); otherwise gamma = 1, beta = 0 and any buffer is bound there.
override AFFINE: bool = false;

@group(0) @binding(0) var<uniform> p: Params;

var<workgroup> tree: array<vec2<f32>, 256>;

// Sum of `v` over the workgroup in a fixed order; every thread gets the result. The leading
// barrier keeps a previous call's readers of tree[0] safe from this call's writes.
fn tree_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
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

// Index in x of the j-th element (j < N * H * W) of channel c.
fn channel_index(c: u32, j: u32) -> u32 {
    let b = j / p.hw;
    return (b * p.c + c) * p.hw + (j - b * p.hw);
}

// Channel of element i of x.
fn channel_of(i: u32) -> u32 {
    return (i / p.hw) % p.c;
}

fn element(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn inv_std(var_c: f32) -> f32 {
    return 1.0 / sqrt(var_c + p.eps);
}

// batch_stats: mean[C] and biased var[C] of x over (N, H, W); batch_stats_running also updates
// the running statistics: r = (1 - momentum) * r + momentum * stat, the unbiased variance for
// running_var (one kernel instead of two: the update is a few flops per channel).
@group(0) @binding(1) var<storage, read> bs_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> bs_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> bs_var: array<f32>;
@group(0) @binding(4) var<storage, read_write> bs_running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> bs_running_var: array<f32>;

// Mean and biased variance of channel c, written to bs_mean[c] and bs_var[c] and returned to
// every thread of its workgroup: threads stride through its N*H*W elements; two passes (mean,
// then squared deviations) so a large mean costs no precision.
fn channel_stats(c: u32, lid: u32) -> vec2<f32> {
    let count = p.n * p.hw;
    var acc = 0.0;
    for (var j = lid; j < count; j = j + 256u) {
        acc = acc + bs_x[channel_index(c, j)];
    }
    let mean = tree_sum(lid, vec2<f32>(acc, 0.0)).x / f32(count);
    var dev = 0.0;
    for (var j = lid; j < count; j = j + 256u) {
        let d = bs_x[channel_index(c, j)] - mean;
        dev = dev + d * d;
    }
    let var_c = tree_sum(lid, vec2<f32>(dev, 0.0)).x / f32(count);
    if (lid == 0u) {
        bs_mean[c] = mean;
        bs_var[c] = var_c;
    }
    return vec2<f32>(mean, var_c);
}

// One workgroup per channel (c = wid.x + wid.y * nwg.x).
@compute @workgroup_size(256)
fn batch_stats(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.x + wid.y * nwg.x;
    if (c >= p.c) { return; }
    _ = channel_stats(c, lid);
}

@compute @workgroup_size(256)
fn batch_stats_running(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.x + wid.y * nwg.x;
    if (c >= p.c) { return; }
    let stats = channel_stats(c, lid);
    if (lid == 0u) {
        let count = f32(p.n * p.hw);
        let unbiased = stats.y * count / (count - 1.0);
        bs_running_mean[c] = (1.0 - p.momentum) * bs_running_mean[c] + p.momentum * stats.x;
        bs_running_var[c] = (1.0 - p.momentum) * bs_running_var[c] + p.momentum * unbiased;
    }
}

// normalize_forward: y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]
@group(0) @binding(1) var<storage, read> nf_x: array<f32>;
@group(0) @binding(2) var<storage, read> nf_mean: array<f32>;
@group(0) @binding(3) var<storage, read> nf_var: array<f32>;
@group(0) @binding(4) var<storage, read> nf_gamma: array<f32>;
@group(0) @binding(5) var<storage, read> nf_beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> nf_y: array<f32>;

// y = xhat * gamma + beta, one thread per element (i = gid.x + gid.y * nwg.x * 256).
@compute @workgroup_size(256)
fn normalize_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= p.total) { return; }
    let c = channel_of(i);
    var y = (nf_x[i] - nf_mean[c]) * inv_std(nf_var[c]);
    if (AFFINE) {
        y = y * nf_gamma[c] + nf_beta[c];
    }
    nf_y[i] = y;
}

// backward_sums: dbeta[c] = sum dy, dgamma[c] = sum dy * xhat over (N, H, W)
@group(0) @binding(1) var<storage, read> bsum_x: array<f32>;
@group(0) @binding(2) var<storage, read> bsum_dy: array<f32>;
@group(0) @binding(3) var<storage, read> bsum_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bsum_var: array<f32>;
@group(0) @binding(5) var<storage, read_write> bsum_dgamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> bsum_dbeta: array<f32>;

// Both per-channel sums in one pass, xhat recomputed from x: one workgroup per channel
// (c = wid.x + wid.y * nwg.x), threads stride through its N*H*W elements.
@compute @workgroup_size(256)
fn backward_sums(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.x + wid.y * nwg.x;
    if (c >= p.c) { return; }
    let count = p.n * p.hw;
    let mean = bsum_mean[c];
    let istd = inv_std(bsum_var[c]);
    var acc = vec2<f32>(0.0, 0.0); // (sum dy * xhat, sum dy)
    for (var j = lid; j < count; j = j + 256u) {
        let i = channel_index(c, j);
        let dy = bsum_dy[i];
        acc = acc + vec2<f32>(dy * (bsum_x[i] - mean) * istd, dy);
    }
    let total = tree_sum(lid, acc);
    if (lid == 0u) {
        bsum_dgamma[c] = total.x;
        bsum_dbeta[c] = total.y;
    }
}

// backward_dx: dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat)) (training)
@group(0) @binding(1) var<storage, read> bdx_x: array<f32>;
@group(0) @binding(2) var<storage, read> bdx_dy: array<f32>;
@group(0) @binding(3) var<storage, read> bdx_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bdx_var: array<f32>;
@group(0) @binding(5) var<storage, read> bdx_gamma: array<f32>;
@group(0) @binding(6) var<storage, read> bdx_dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> bdx_dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> bdx_dx: array<f32>;

// Input gradient through the batch statistics, from the per-channel sums of backward_sums:
// one thread per element (i = gid.x + gid.y * nwg.x * 256).
@compute @workgroup_size(256)
fn backward_dx(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= p.total) { return; }
    let c = channel_of(i);
    let istd = inv_std(bdx_var[c]);
    var scale = istd;
    if (AFFINE) {
        scale = scale * bdx_gamma[c];
    }
    let count = f32(p.n * p.hw);
    let xhat = (bdx_x[i] - bdx_mean[c]) * istd;
    bdx_dx[i] = scale * (bdx_dy[i] - bdx_dbeta[c] / count - xhat * bdx_dgamma[c] / count);
}

// backward_dx_eval: dx = dy * gamma / sqrt(running_var + eps) (the statistics are constants)
@group(0) @binding(1) var<storage, read> bde_dy: array<f32>;
@group(0) @binding(2) var<storage, read> bde_var: array<f32>;
@group(0) @binding(3) var<storage, read> bde_gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> bde_dx: array<f32>;

// Input gradient in eval mode, one thread per element (i = gid.x + gid.y * nwg.x * 256).
@compute @workgroup_size(256)
fn backward_dx_eval(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = element(gid, nwg);
    if (i >= p.total) { return; }
    let c = channel_of(i);
    var scale = inv_std(bde_var[c]);
    if (AFFINE) {
        scale = scale * bde_gamma[c];
    }
    bde_dx[i] = bde_dy[i] * scale;
}

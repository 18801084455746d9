// BatchNorm2d over x: [N, C, H, W]: per-channel batch statistics (with the running-statistics
// update, in training), normalisation, and the backward (through the batch statistics in
// training mode). Two ways:
// - forward_channel and backward_channel (training, planes of a multiple of 4 values, channels
//   small enough to stay in a CPU core's L1): one workgroup per channel makes the statistics
//   and uses them in the same dispatch, one barrier each (a dispatch costs ~50 us on CPU
//   adapters: one instead of three);
// - otherwise, per-channel sums in two fixed-order steps without workgroup barriers: one
//   invocation per plane (n, c) sums its H*W values, then one per channel combines its N plane
//   partials in order, then the element kernels.
// No atomics: the same bits every run.

struct Params {
    n: u32,        // batch size N
    c: u32,        // channels C
    hw: u32,       // H * W
    total: u32,    // N * C * H * W
    eps: f32,      // added to the variance under the square root
    momentum: f32, // weight of the new statistic in the running update
    k: u32,        // SCALED: the index of the gain in the gamma buffer
    slot: u32,     // COEF: the row of the coefficients buffer this BN writes; backward_dx4: of dgamma
}

// gamma and beta are read (affine); otherwise gamma = 1, beta = 0 and any buffer is bound there.
override AFFINE: bool = false;
// With AFFINE: one gain for every channel, gamma[p.k], and no beta (a DARTS edge's op ending in
// an affine-free BN, its output times the op's softmax weight: y = w[k] * xhat).
override SCALED: bool = false;
// Backward kernels: the saved tensor is xhat itself (the output of an affine-free BN in training),
// not x. Saving the output lets the input be freed after the forward pass: in a DARTS supernet
// every op ends in such a BN, and the mixed op keeps its output anyway.
override XHAT: bool = false;
// forward_channel: update the running statistics (else they are bound but not touched).
override RUNNING: bool = false;
// The BN followed by a ReLU (inside a DARTS sep_conv), affine-free, in training: the forward
// kernels write max(fma(x, a, b), 0), and the backward kernels gate dy by that pre-ReLU value,
// recomputed from x (so not XHAT) with the same a = istd, b = -mean istd (see relu_gate). One
// pass over the tensor each way instead of a ReLU's separate read and write.
override RELU: bool = false;
// forward_channel: write the normalisation's per-channel coefficients (a, b, y = a x + b) to
// row p.slot of a [terms, C] buffer of vec4s (a, b, mean, 1 / sqrt(var + eps)), bound in y's
// place, instead of y: a DARTS edge's sum applies them as it reads x (mixed_op.wgsl's bn_sum),
// so y is never written; its backward reads the mean and istd there (bn_sum_sums).
override COEF: bool = false;

@group(0) @binding(0) var<uniform> p: Params;

// The element-wise kernels run one workgroup row per plane (n, c): the plane (and so the
// channel) is uniform across a workgroup, and no thread divides by H*W or C (integer division
// is scalarised on CPU adapters). Returns (plane, index in the plane); plane = wid.y + wid.z *
// nwg.y (folded past 65535 planes), j = gid.x.
fn plane_element(gid: vec3<u32>, wid: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
    return vec2<u32>(wid.y + wid.z * nwg.y, gid.x);
}

// The four-at-a-time element kernels: vec4s per invocation, a run of consecutive ones in one
// plane. Their per-channel values (mean, variance, gains) are loaded once per run: on lavapipe
// each of those loads costs about as much as a vec4 of data (it runs lane by lane).
const RUN: u32 = 4u;

fn inv_std(var_c: f32) -> f32 {
    return 1.0 / sqrt(var_c + p.eps);
}

// RELU: dy where the forward's pre-ReLU value fma(x, a, b) was positive, else 0 (a ReLU's
// gradient); a and b as the forward computed them (affine-free: a = istd, b = -mean a).
fn relu_gate(dy: f32, x: f32, a: f32, b: f32) -> f32 {
    if (!RELU) { return dy; }
    return select(0.0, dy, fma(x, a, b) > 0.0);
}

fn relu_gate4(dy: vec4<f32>, x: vec4<f32>, a: f32, b: f32) -> vec4<f32> {
    if (!RELU) { return dy; }
    return select(vec4<f32>(0.0), dy, fma(x, vec4<f32>(a), vec4<f32>(b)) > vec4<f32>(0.0));
}

// Where channel c's gamma is: c, or the one gain p.k (SCALED).
fn gamma_at(c: u32) -> u32 {
    return select(c, p.k, SCALED);
}

// plane_stats: partial[n, c] = (mean, sum of squared deviations) of the plane x[n, c]
@group(0) @binding(1) var<storage, read> ps_x: array<f32>;             // [N, C, H, W]
@group(0) @binding(2) var<storage, read_write> ps_partial: array<vec2<f32>>; // [N, C]

// One invocation per plane, one pass in the common case: the sums of d = x - K and d^2 for a
// shift K from the plane (its first value), the variance then (sum d^2 - (sum d)^2 / n) / n.
// d is the size of the spread, not of the mean, so a large mean costs no precision; but when K
// is an outlier of its plane the subtraction cancels (sum d^2 / M2 = 1 + (K - mean)^2 / var),
// and then a second pass sums the squared deviations from the mean (see second_pass). Half the
// loads of a pass for the mean and one for the squared deviations.
@compute @workgroup_size(64)
fn plane_stats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = index64(gid, nwg);
    if (plane >= p.n * p.c) { return; }
    let base = plane * p.hw;
    let shift = ps_x[base];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0u; j < p.hw; j = j + 1u) {
        let d = ps_x[base + j] - shift;
        s1 = s1 + d;
        s2 = fma(d, d, s2);
    }
    var m = shifted_moments(shift, s1, s2, f32(p.hw));
    if (second_pass(m, s2)) {
        var m2 = 0.0;
        for (var j = 0u; j < p.hw; j = j + 1u) {
            let d = ps_x[base + j] - m.x;
            m2 = fma(d, d, m2);
        }
        m.y = m2;
    }
    ps_partial[plane] = m;
}

// (mean, sum of squared deviations) of `count` values from their shifted sums (see plane_stats).
fn shifted_moments(shift: f32, s1: f32, s2: f32, count: f32) -> vec2<f32> {
    let d = s1 / count;
    return vec2<f32>(shift + d, max(fma(-s1, d, s2), 0.0));
}

// Whether the shifted sum of squares s2 cancelled to moments m.y with more than 4 bits lost (a
// shift more than 3.9 standard deviations from the mean: for normal data, 1 plane in 10^4);
// then the squared deviations are summed again, from the mean.
fn second_pass(m: vec2<f32>, s2: f32) -> bool {
    return s2 > 16.0 * m.y;
}

// plane_stats4, plane_sums4: the same per-plane sums four values at a time (planes of a multiple
// of 4 values), four running sums added up at the end.
@group(0) @binding(1) var<storage, read> ps4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> ps4_partial: array<vec2<f32>>;

fn hsum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(64)
fn plane_stats4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = index64(gid, nwg);
    if (plane >= p.n * p.c) { return; }
    let hw4 = p.hw / 4u;
    let base = plane * hw4;
    let shift = ps4_x[base].x;
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    for (var j = 0u; j < hw4; j = j + 1u) {
        let d = ps4_x[base + j] - vec4<f32>(shift);
        s1 = s1 + d;
        s2 = fma(d, d, s2);
    }
    var m = shifted_moments(shift, hsum(s1), hsum(s2), f32(p.hw));
    if (second_pass(m, hsum(s2))) {
        var m2 = vec4<f32>(0.0);
        for (var j = 0u; j < hw4; j = j + 1u) {
            let d = ps4_x[base + j] - vec4<f32>(m.x);
            m2 = fma(d, d, m2);
        }
        m.y = hsum(m2);
    }
    ps4_partial[plane] = m;
}

// combine_stats: mean[c] and biased var[c] over (N, H, W) from the plane partials;
// combine_stats_running also updates the running statistics: r = (1 - momentum) * r +
// momentum * stat, the unbiased variance for running_var.
@group(0) @binding(1) var<storage, read> cs_partial: array<vec2<f32>>;  // [N, C]
@group(0) @binding(2) var<storage, read_write> cs_mean: array<f32>;     // [C]
@group(0) @binding(3) var<storage, read_write> cs_var: array<f32>;      // [C]
@group(0) @binding(4) var<storage, read_write> cs_running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> cs_running_var: array<f32>;

// Channel c's statistics from its N planes (all of H*W values): the mean of the plane means, and
// sum M2 + H*W * sum (plane mean - mean)^2 for the squared deviations; written and returned.
fn channel_stats(c: u32) -> vec2<f32> {
    var acc = 0.0;
    for (var b = 0u; b < p.n; b = b + 1u) {
        acc = acc + cs_partial[b * p.c + c].x;
    }
    let mean = acc / f32(p.n);
    var m2 = 0.0;
    var spread = 0.0;
    for (var b = 0u; b < p.n; b = b + 1u) {
        let part = cs_partial[b * p.c + c];
        m2 = m2 + part.y;
        let d = part.x - mean;
        spread = fma(d, d, spread);
    }
    let count = f32(p.n * p.hw);
    let var_c = (m2 + f32(p.hw) * spread) / count;
    cs_mean[c] = mean;
    cs_var[c] = var_c;
    return vec2<f32>(mean, var_c);
}

// One invocation per channel.
@compute @workgroup_size(64)
fn combine_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    _ = channel_stats(c);
}

@compute @workgroup_size(64)
fn combine_stats_running(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    update_running(c, channel_stats(c));
}

// r = (1 - momentum) * r + momentum * stat for channel c's (mean, biased var), the unbiased
// variance for running_var.
fn update_running(c: u32, stats: vec2<f32>) {
    let count = f32(p.n * p.hw);
    let unbiased = stats.y * count / (count - 1.0);
    cs_running_mean[c] = (1.0 - p.momentum) * cs_running_mean[c] + p.momentum * stats.x;
    cs_running_var[c] = (1.0 - p.momentum) * cs_running_var[c] + p.momentum * unbiased;
}

// y = a x + b's per-channel coefficients, as every normalising kernel computes them.
fn coefficients(mean: f32, var_c: f32, gamma: f32, beta: f32) -> vec2<f32> {
    var a = inv_std(var_c);
    var b = -mean * a;
    if (AFFINE) {
        a = a * gamma;
        b = b * gamma;
        if (!SCALED) {
            b = b + beta;
        }
    }
    return vec2<f32>(a, b);
}

// combine_coefficients: combine_stats (with the running update when RUNNING), then row p.slot
// of the coefficients buffer (see COEF) in place of normalize_forward's pass over y.
@group(0) @binding(6) var<storage, read> cc_gamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> cc_coef: array<vec4<f32>>; // [terms, C]

@compute @workgroup_size(64)
fn combine_coefficients(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    let stats = channel_stats(c);
    if (RUNNING) {
        update_running(c, stats);
    }
    var gamma = 1.0;
    if (AFFINE) {
        gamma = cc_gamma[gamma_at(c)];
    }
    cc_coef[p.slot * p.c + c] = vec4<f32>(coefficients(stats.x, stats.y, gamma, 0.0), stats.x, inv_std(stats.y));
}

// normalize_forward: y = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]
@group(0) @binding(1) var<storage, read> nf_x: array<f32>;
@group(0) @binding(2) var<storage, read> nf_mean: array<f32>;
@group(0) @binding(3) var<storage, read> nf_var: array<f32>;
@group(0) @binding(4) var<storage, read> nf_gamma: array<f32>;
@group(0) @binding(5) var<storage, read> nf_beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> nf_y: array<f32>;

// y = xhat * gamma + beta, one thread per element (see plane_element).
@compute @workgroup_size(64)
fn normalize_forward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let pe = plane_element(gid, wid, nwg);
    if (pe.x >= p.n * p.c || pe.y >= p.hw) { return; }
    let c = pe.x % p.c;
    let i = pe.x * p.hw + pe.y;
    // y = a x + b, as the four-at-a-time kernels.
    var gamma = 1.0;
    var beta = 0.0;
    if (AFFINE) {
        gamma = nf_gamma[gamma_at(c)];
        if (!SCALED) {
            beta = nf_beta[c];
        }
    }
    let ab = coefficients(nf_mean[c], nf_var[c], gamma, beta);
    let a = ab.x;
    let b = ab.y;
    var y = fma(nf_x[i], a, b);
    if (RELU) {
        y = max(y, 0.0);
    }
    nf_y[i] = y;
}

// plane_sums: partial[n, c] = (sum dy * xhat, sum dy) over the plane (n, c)
@group(0) @binding(1) var<storage, read> psum_x: array<f32>;
@group(0) @binding(2) var<storage, read> psum_dy: array<f32>;
@group(0) @binding(3) var<storage, read> psum_mean: array<f32>;
@group(0) @binding(4) var<storage, read> psum_var: array<f32>;
@group(0) @binding(5) var<storage, read_write> psum_partial: array<vec2<f32>>; // [N, C]

// Both sums of one plane in one pass, xhat recomputed from x: one invocation per plane.
@compute @workgroup_size(64)
fn plane_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = index64(gid, nwg);
    if (plane >= p.n * p.c) { return; }
    let c = plane % p.c;
    let mean = psum_mean[c];
    let istd = inv_std(psum_var[c]);
    let base = plane * p.hw;
    var dot_xhat = 0.0;
    var sum_dy = 0.0;
    for (var j = 0u; j < p.hw; j = j + 1u) {
        let dy = relu_gate(psum_dy[base + j], psum_x[base + j], istd, -mean * istd);
        if (XHAT) {
            dot_xhat = fma(dy, psum_x[base + j], dot_xhat);
        } else {
            dot_xhat = fma(dy, psum_x[base + j] - mean, dot_xhat);
        }
        sum_dy = sum_dy + dy;
    }
    psum_partial[plane] = vec2<f32>(dot_xhat * select(istd, 1.0, XHAT), sum_dy);
}

@group(0) @binding(1) var<storage, read> psum4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> psum4_dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> psum4_mean: array<f32>;
@group(0) @binding(4) var<storage, read> psum4_var: array<f32>;
@group(0) @binding(5) var<storage, read_write> psum4_partial: array<vec2<f32>>;

@compute @workgroup_size(64)
fn plane_sums4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = index64(gid, nwg);
    if (plane >= p.n * p.c) { return; }
    let c = plane % p.c;
    // xhat = x (XHAT) or x - mean, times istd at the end.
    let mean = psum4_mean[c];
    let istd = inv_std(psum4_var[c]);
    let shift = vec4<f32>(select(mean, 0.0, XHAT));
    let hw4 = p.hw / 4u;
    let base = plane * hw4;
    var dot_xhat = vec4<f32>(0.0);
    var sum_dy = vec4<f32>(0.0);
    for (var j = 0u; j < hw4; j = j + 1u) {
        let x = psum4_x[base + j];
        let dy = relu_gate4(psum4_dy[base + j], x, istd, -mean * istd);
        dot_xhat = fma(dy, x - shift, dot_xhat);
        sum_dy = sum_dy + dy;
    }
    let scale = select(istd, 1.0, XHAT);
    psum4_partial[plane] = vec2<f32>(hsum(dot_xhat) * scale, hsum(sum_dy));
}

// combine_sums: dgamma[c] = sum dy * xhat, dbeta[c] = sum dy over (N, H, W)
@group(0) @binding(1) var<storage, read> csum_partial: array<vec2<f32>>; // [N, C]
@group(0) @binding(2) var<storage, read_write> csum_dgamma: array<f32>;  // [C]
@group(0) @binding(3) var<storage, read_write> csum_dbeta: array<f32>;   // [C]

// The N plane partials of channel c summed in order: one invocation per channel.
@compute @workgroup_size(64)
fn combine_sums(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    var acc = vec2<f32>(0.0, 0.0);
    for (var b = 0u; b < p.n; b = b + 1u) {
        acc = acc + csum_partial[b * p.c + c];
    }
    csum_dgamma[c] = acc.x;
    csum_dbeta[c] = acc.y;
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
// one thread per element (see plane_element).
@compute @workgroup_size(64)
fn backward_dx(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let pe = plane_element(gid, wid, nwg);
    if (pe.x >= p.n * p.c || pe.y >= p.hw) { return; }
    let c = pe.x % p.c;
    let i = pe.x * p.hw + pe.y;
    let istd = inv_std(bdx_var[c]);
    var scale = istd;
    if (AFFINE) {
        scale = scale * bdx_gamma[gamma_at(c)];
    }
    let count = f32(p.n * p.hw);
    let xhat = select((bdx_x[i] - bdx_mean[c]) * istd, bdx_x[i], XHAT);
    let dy = relu_gate(bdx_dy[i], bdx_x[i], istd, -bdx_mean[c] * istd);
    bdx_dx[i] = scale * (dy - bdx_dbeta[c] / count - xhat * bdx_dgamma[c] / count);
}

// normalize_forward4, backward_dx4: the same two kernels four elements at a time, for planes of
// a multiple of 4 values (each vec4 then lies in one plane, one channel): CPU adapters move a
// vec4 much faster than four scalars. Thread (plane, j) covers elements 4j..4j+3 of the plane.
@group(0) @binding(1) var<storage, read> nf4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> nf4_mean: array<f32>;
@group(0) @binding(3) var<storage, read> nf4_var: array<f32>;
@group(0) @binding(4) var<storage, read> nf4_gamma: array<f32>;
@group(0) @binding(5) var<storage, read> nf4_beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> nf4_y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn normalize_forward4(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let pe = plane_element(gid, wid, nwg);
    let hw4 = p.hw / 4u;
    let j0 = pe.y * RUN;
    if (pe.x >= p.n * p.c || j0 >= hw4) { return; }
    let c = pe.x % p.c;
    let base = pe.x * hw4;
    var gamma = 1.0;
    var beta = 0.0;
    if (AFFINE) {
        gamma = nf4_gamma[gamma_at(c)];
        if (!SCALED) {
            beta = nf4_beta[c];
        }
    }
    let ab = coefficients(nf4_mean[c], nf4_var[c], gamma, beta);
    let a = ab.x;
    let b = ab.y;
    for (var e = 0u; e < RUN; e = e + 1u) {
        let j = j0 + e;
        if (j < hw4) {
            var y = fma(nf4_x[base + j], vec4<f32>(a), vec4<f32>(b));
            if (RELU) {
                y = max(y, vec4<f32>(0.0));
            }
            nf4_y[base + j] = y;
        }
    }
}

@group(0) @binding(1) var<storage, read> bdx4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bdx4_dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bdx4_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bdx4_var: array<f32>;
@group(0) @binding(5) var<storage, read> bdx4_gamma: array<f32>;
@group(0) @binding(6) var<storage, read> bdx4_dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> bdx4_dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> bdx4_dx: array<vec4<f32>>;

// dx = scale * (dy - dbeta / count - xhat * dgamma / count), as dy * scale + x * t + u with the
// per-channel t and u folded once (x: the saved tensor, see XHAT). dgamma is row p.slot of a
// [rows, C] buffer (a DARTS edge's BN terms, mixed_op.wgsl's bn_sum_combine), else [C], slot 0.
@compute @workgroup_size(64)
fn backward_dx4(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let pe = plane_element(gid, wid, nwg);
    let hw4 = p.hw / 4u;
    let j0 = pe.y * RUN;
    if (pe.x >= p.n * p.c || j0 >= hw4) { return; }
    let c = pe.x % p.c;
    let base = pe.x * hw4;
    let istd = inv_std(bdx4_var[c]);
    var scale = istd;
    if (AFFINE) {
        scale = scale * bdx4_gamma[gamma_at(c)];
    }
    let count = f32(p.n * p.hw);
    let g = bdx4_dgamma[p.slot * p.c + c] / count;
    // xhat = a x + b: x saved (a = istd, b = -mean istd) or xhat saved (a = 1, b = 0).
    let a = select(istd, 1.0, XHAT);
    let b = select(-bdx4_mean[c] * istd, 0.0, XHAT);
    let t = -scale * a * g;
    let u = -scale * (b * g + bdx4_dbeta[c] / count);
    for (var e = 0u; e < RUN; e = e + 1u) {
        let i = base + j0 + e;
        if (j0 + e < hw4) {
            let x = bdx4_x[i];
            let dy = relu_gate4(bdx4_dy[i], x, istd, -bdx4_mean[c] * istd);
            bdx4_dx[i] = fma(dy, vec4<f32>(scale), fma(x, vec4<f32>(t), vec4<f32>(u)));
        }
    }
}

// backward_dx_eval: dx = dy * gamma / sqrt(running_var + eps) (the statistics are constants)
@group(0) @binding(1) var<storage, read> bde_dy: array<f32>;
@group(0) @binding(2) var<storage, read> bde_var: array<f32>;
@group(0) @binding(3) var<storage, read> bde_gamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> bde_dx: array<f32>;

// Input gradient in eval mode, one thread per element (see plane_element).
@compute @workgroup_size(64)
fn backward_dx_eval(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let pe = plane_element(gid, wid, nwg);
    if (pe.x >= p.n * p.c || pe.y >= p.hw) { return; }
    let c = pe.x % p.c;
    let i = pe.x * p.hw + pe.y;
    var scale = inv_std(bde_var[c]);
    if (AFFINE) {
        scale = scale * bde_gamma[gamma_at(c)];
    }
    bde_dx[i] = bde_dy[i] * scale;
}

// forward_channel: the batch statistics of channel c = workgroup_id.x, the running update and
// y = xhat * gamma + beta, in one workgroup of 64 (planes of a multiple of 4 values).
@group(0) @binding(1) var<storage, read> fc_x: array<vec4<f32>>;       // [N, C, H, W / 4]
@group(0) @binding(2) var<storage, read_write> fc_mean: array<f32>;    // [C]
@group(0) @binding(3) var<storage, read_write> fc_var: array<f32>;     // [C], biased
@group(0) @binding(4) var<storage, read_write> fc_running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> fc_running_var: array<f32>;
@group(0) @binding(6) var<storage, read> fc_gamma: array<f32>;
@group(0) @binding(7) var<storage, read> fc_beta: array<f32>;
@group(0) @binding(8) var<storage, read_write> fc_y: array<vec4<f32>>; // [N, C, H, W / 4]

// Each invocation's partial sums; every invocation then adds the 64 in the same order.
var<workgroup> wg_part: array<vec2<f32>, 64>;
// forward_channel: invocation 0's (mean, M2, shifted sum of squares) for all (see plane_stats).
var<workgroup> wg_stats: vec4<f32>;

// The 64 invocations' partials, summed in a fixed order (after a barrier; read by all): eight
// runs of eight, then the eight run sums, so that rounding grows with 16 additions, not 64.
fn wg_total() -> vec2<f32> {
    var t = vec2<f32>(0.0);
    for (var r = 0u; r < 64u; r = r + 8u) {
        var run = wg_part[r];
        for (var i = 1u; i < 8u; i = i + 1u) {
            run = run + wg_part[r + i];
        }
        t = t + run;
    }
    return t;
}

// Channel c's vec4s are N runs of H*W/4, C*H*W/4 apart. Invocation l walks vec4s j0, j0 + 64,
// ... of planes n0, n0 + dn, ...: planes of 64 vec4s or more one after another (n0 = 0, dn = 1,
// j0 = l), smaller ones 64 / (H*W/4) side by side (each invocation then one vec4 of a plane).
// The divisions happen once, here; n0 >= N leaves an invocation idle.
struct Walk {
    n0: u32,
    dn: u32,
    j0: u32,
}

fn walk(l: u32, hw4: u32) -> Walk {
    if (hw4 >= 64u) {
        return Walk(0u, 1u, l);
    }
    let side = 64u / hw4;
    return Walk(select(l / hw4, p.n, l / hw4 >= side), side, l % hw4);
}

@compute @workgroup_size(64)
fn forward_channel(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    let hw4 = p.hw / 4u;
    let count = f32(p.n * p.hw);
    // The sums of d = x - K and d^2, K the channel's first value, and a second pass over the
    // squared deviations only when K is an outlier (see plane_stats). Invocation 0 adds the 64
    // partials and hands the result to all (workgroupUniformLoad: the branch is uniform).
    let w = walk(l, hw4);
    let shift = fc_x[c * hw4].x;
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    for (var n = w.n0; n < p.n; n = n + w.dn) {
        let base = (n * p.c + c) * hw4;
        for (var j = w.j0; j < hw4; j = j + 64u) {
            let d = fc_x[base + j] - vec4<f32>(shift);
            s1 = s1 + d;
            s2 = fma(d, d, s2);
        }
    }
    wg_part[l] = vec2<f32>(hsum(s1), hsum(s2));
    workgroupBarrier();
    if (l == 0u) {
        let sums = wg_total();
        let m = shifted_moments(shift, sums.x, sums.y, count);
        wg_stats = vec4<f32>(m, sums.y, 0.0);
    }
    var stats = workgroupUniformLoad(&wg_stats);
    if (second_pass(stats.xy, stats.z)) {
        var m2 = vec4<f32>(0.0);
        for (var n = w.n0; n < p.n; n = n + w.dn) {
            let base = (n * p.c + c) * hw4;
            for (var j = w.j0; j < hw4; j = j + 64u) {
                let d = fc_x[base + j] - vec4<f32>(stats.x);
                m2 = fma(d, d, m2);
            }
        }
        wg_part[l] = vec2<f32>(hsum(m2), 0.0);
        workgroupBarrier();
        if (l == 0u) {
            wg_stats.y = wg_total().x;
        }
        stats = workgroupUniformLoad(&wg_stats);
    }
    let mean = stats.x;
    let var_c = stats.y / count;
    if (l == 0u) {
        fc_mean[c] = mean;
        fc_var[c] = var_c;
        if (RUNNING) {
            let unbiased = var_c * count / (count - 1.0);
            fc_running_mean[c] = (1.0 - p.momentum) * fc_running_mean[c] + p.momentum * mean;
            fc_running_var[c] = (1.0 - p.momentum) * fc_running_var[c] + p.momentum * unbiased;
        }
    }
    var gamma = 1.0;
    var beta = 0.0;
    if (AFFINE) {
        gamma = fc_gamma[gamma_at(c)];
        if (!SCALED) {
            beta = fc_beta[c];
        }
    }
    let ab = coefficients(mean, var_c, gamma, beta);
    if (COEF) {
        // y's buffer holds the coefficients; y is never written.
        if (l == 0u) {
            fc_y[p.slot * p.c + c] = vec4<f32>(ab, mean, inv_std(var_c));
        }
        return;
    }
    // Then y = a x + b.
    let a = ab.x;
    let b = ab.y;
    for (var n = w.n0; n < p.n; n = n + w.dn) {
        let base = (n * p.c + c) * hw4;
        for (var j = w.j0; j < hw4; j = j + 64u) {
            var y = fma(fc_x[base + j], vec4<f32>(a), vec4<f32>(b));
            if (RELU) {
                y = max(y, vec4<f32>(0.0));
            }
            fc_y[base + j] = y;
        }
    }
}

// backward_channel: channel c's sums dgamma = sum dy * xhat, dbeta = sum dy over (N, H, W), and
// dx = scale * (dy - dbeta / count - xhat * dgamma / count), in one workgroup of 64.
@group(0) @binding(1) var<storage, read> bc_x: array<vec4<f32>>;  // x, or xhat (XHAT)
@group(0) @binding(2) var<storage, read> bc_dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bc_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bc_var: array<f32>;
@group(0) @binding(5) var<storage, read> bc_gamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> bc_dgamma: array<f32>; // [C]
@group(0) @binding(7) var<storage, read_write> bc_dbeta: array<f32>;  // [C]
@group(0) @binding(8) var<storage, read_write> bc_dx: array<vec4<f32>>;

@compute @workgroup_size(64)
fn backward_channel(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    let hw4 = p.hw / 4u;
    let count = f32(p.n * p.hw);
    let istd = inv_std(bc_var[c]);
    let mean = bc_mean[c];
    // xhat = a x + b: x saved (a = istd, b = -mean istd) or xhat saved (a = 1, b = 0).
    let shift = vec4<f32>(select(mean, 0.0, XHAT));
    let w = walk(l, hw4);
    var dot_xhat = vec4<f32>(0.0);
    var sum_dy = vec4<f32>(0.0);
    for (var n = w.n0; n < p.n; n = n + w.dn) {
        let base = (n * p.c + c) * hw4;
        for (var j = w.j0; j < hw4; j = j + 64u) {
            let x = bc_x[base + j];
            let dy = relu_gate4(bc_dy[base + j], x, istd, -mean * istd);
            dot_xhat = fma(dy, x - shift, dot_xhat);
            sum_dy = sum_dy + dy;
        }
    }
    wg_part[l] = vec2<f32>(hsum(dot_xhat), hsum(sum_dy));
    workgroupBarrier();
    let sums = wg_total();
    let dgamma = sums.x * select(istd, 1.0, XHAT);
    let dbeta = sums.y;
    if (l == 0u) {
        bc_dgamma[c] = dgamma;
        bc_dbeta[c] = dbeta;
    }
    var scale = istd;
    if (AFFINE) {
        scale = scale * bc_gamma[gamma_at(c)];
    }
    let g = dgamma / count;
    let a = select(istd, 1.0, XHAT);
    let b = select(-mean * istd, 0.0, XHAT);
    let t = -scale * a * g;
    let u = -scale * (b * g + dbeta / count);
    for (var n = w.n0; n < p.n; n = n + w.dn) {
        let base = (n * p.c + c) * hw4;
        for (var j = w.j0; j < hw4; j = j + 64u) {
            let i = base + j;
            let x = bc_x[i];
            let dy = relu_gate4(bc_dy[i], x, istd, -mean * istd);
            bc_dx[i] = fma(dy, vec4<f32>(scale), fma(x, vec4<f32>(t), vec4<f32>(u)));
        }
    }
}

// scale_grad (SCALED): ds = the gradient of the gain buffer: zeros but ds[k] = sum over channels
// of dgamma[c] (y = s[k] * xhat, so dL/ds[k] = sum dy * xhat), added in channel order. One
// workgroup.
@group(0) @binding(1) var<storage, read> sg_dgamma: array<f32>;    // [C]
@group(0) @binding(2) var<storage, read_write> sg_ds: array<f32>;  // the gain buffer's shape

@compute @workgroup_size(64)
fn scale_grad(@builtin(local_invocation_index) l: u32) {
    for (var i = l; i < arrayLength(&sg_ds); i = i + 64u) {
        if (i == p.k) {
            var acc = 0.0;
            for (var c = 0u; c < p.c; c = c + 1u) {
                acc = acc + sg_dgamma[c];
            }
            sg_ds[i] = acc;
        } else {
            sg_ds[i] = 0.0;
        }
    }
}


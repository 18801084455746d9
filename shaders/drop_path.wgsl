// Drop path: each sample of a batch scaled by its own factor, y[n, i] = x[n, i] * mask[n], with
// mask[n] = 0 (path dropped) or 1 / keep_prob (kept), drawn on the host. The op is linear and
// self-adjoint in x, so the backward pass (dx = dy * mask[n]) runs the same entry point.
// One thread per element; i = gid.x + gid.y * nwg.x * 256 (see gpu::grid_1d).

struct Params {
    n: u32,           // elements of x
    per_sample: u32,  // elements of one sample (C * H * W)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> mask: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// y[i] = x[i] * mask[i / per_sample], one thread per element (forward and backward).
@compute @workgroup_size(256)
fn scale_samples(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    y[i] = x[i] * mask[i / p.per_sample];
}

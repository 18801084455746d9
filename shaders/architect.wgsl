// The DARTS architect's second-order helpers: the virtual weight step of the unrolled model, the
// shift of the weights along v for the finite-difference Hessian-vector product, and that
// product's scalars, all on the GPU (no readback). The step and the shift take several tensors
// per dispatch (a search network has hundreds of small weight tensors), over their elements one
// after another (the prelude's `segment`).

struct Params {
    count: u32,       // tensors in this dispatch (virtual_step3: 1..3, shift4: 1..4)
    total: u32,       // their elements together
    k: u32,           // shift4: the slot of s that scales v
    _pad0: u32,
    lens: vec4<u32>,  // elements of tensor t at lens[t]
}

@group(0) @binding(0) var<uniform> p: Params;

// virtual_step3: hyper = [eta (the weights' current learning rate), momentum, weight decay,
// radius r], then (gradient, momentum buffer, weight) for each of up to three tensors.
@group(0) @binding(1) var<storage, read> vs_hyper: array<f32>;
@group(0) @binding(2) var<storage, read> vs_g0: array<f32>;
@group(0) @binding(3) var<storage, read> vs_b0: array<f32>;
@group(0) @binding(4) var<storage, read_write> vs_w0: array<f32>;
@group(0) @binding(5) var<storage, read> vs_g1: array<f32>;
@group(0) @binding(6) var<storage, read> vs_b1: array<f32>;
@group(0) @binding(7) var<storage, read_write> vs_w1: array<f32>;
@group(0) @binding(8) var<storage, read> vs_g2: array<f32>;
@group(0) @binding(9) var<storage, read> vs_b2: array<f32>;
@group(0) @binding(10) var<storage, read_write> vs_w2: array<f32>;

fn stepped(w: f32, g: f32, buf: f32) -> f32 {
    return w - vs_hyper[0] * (vs_hyper[1] * buf + g + vs_hyper[2] * w);
}

// w' = w - eta * (momentum * buf + g + wd * w) for up to three tensors: the SGD step the weights
// would take, without touching the optimizer's state; one thread per element.
@compute @workgroup_size(256)
fn virtual_step3(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.total) { return; }
    let at = segment(i, p.count, p.lens);
    let j = at.y;
    switch at.x {
        case 0u: { vs_w0[j] = stepped(vs_w0[j], vs_g0[j], vs_b0[j]); }
        case 1u: { vs_w1[j] = stepped(vs_w1[j], vs_g1[j], vs_b1[j]); }
        default: { vs_w2[j] = stepped(vs_w2[j], vs_g2[j], vs_b2[j]); }
    }
}

// shift4: the scalars s, then (v, w) for each of up to four tensors.
@group(0) @binding(1) var<storage, read> sh_s: array<f32>;
@group(0) @binding(2) var<storage, read> sh_v0: array<f32>;
@group(0) @binding(3) var<storage, read_write> sh_w0: array<f32>;
@group(0) @binding(4) var<storage, read> sh_v1: array<f32>;
@group(0) @binding(5) var<storage, read_write> sh_w1: array<f32>;
@group(0) @binding(6) var<storage, read> sh_v2: array<f32>;
@group(0) @binding(7) var<storage, read_write> sh_w2: array<f32>;
@group(0) @binding(8) var<storage, read> sh_v3: array<f32>;
@group(0) @binding(9) var<storage, read_write> sh_w3: array<f32>;

// w += s[k] * v for up to four tensors; one thread per element.
@compute @workgroup_size(256)
fn shift4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.total) { return; }
    let at = segment(i, p.count, p.lens);
    let j = at.y;
    let c = sh_s[p.k];
    switch at.x {
        case 0u: { sh_w0[j] = sh_w0[j] + c * sh_v0[j]; }
        case 1u: { sh_w1[j] = sh_w1[j] + c * sh_v1[j]; }
        case 2u: { sh_w2[j] = sh_w2[j] + c * sh_v2[j]; }
        default: { sh_w3[j] = sh_w3[j] + c * sh_v3[j]; }
    }
}

@group(0) @binding(1) var<storage, read> hs_hyper: array<f32>;
@group(0) @binding(2) var<storage, read_write> hs_s: array<f32>;

// From s[0] = ||v||: s[1] = R = r / ||v||, s[2] = -2R, s[3] = -eta / (2R), s[4] = eta / (2R).
// A single thread; a zero v gives R = r (the difference quotient is then zero).
@compute @workgroup_size(1)
fn hvp_scalars() {
    if (p.count == 0u) { return; } // (every dispatch binds Params; this one is never empty)
    let norm = hs_s[0];
    var radius = hs_hyper[3];
    if (norm > 0.0) {
        radius = hs_hyper[3] / norm;
    }
    let c = hs_hyper[0] / (2.0 * radius);
    hs_s[1] = radius;
    hs_s[2] = -2.0 * radius;
    hs_s[3] = -c;
    hs_s[4] = c;
}

// Layout ops over NCHW activations: copying a block of channels (concat along C, slicing C and
// their backward passes), the channel shuffle (its backward is the shuffle with C/groups groups), and the strided, shifted spatial window with zero fill. Gathers only:
// each thread writes its own element. 1-D kernels: i = gid.x + gid.y * nwg.x * 256 (see
// gpu::grid_1d).

struct CopyParams {
    n: u32,        // batch
    hw: u32,       // H * W
    len: u32,      // channels copied
    src_c: u32,    // channels of src
    src_start: u32, // first channel read in src
    dst_c: u32,    // channels of dst
    dst_start: u32, // first channel written in dst
    _pad: u32,
}

@group(0) @binding(0) var<uniform> cp: CopyParams;

// copy_channels: dst[n, dst_start + c] = src[n, src_start + c] for c < len

// Where batch item n's copied block starts in a tensor of `channels` channels, the block's first
// channel being `start`, in units of `plane` (H*W values, or H*W/4 vec4s).
fn block_start(n: u32, channels: u32, start: u32, plane: u32) -> u32 {
    return (n * channels + start) * plane;
}

@group(0) @binding(1) var<storage, read> cc_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cc_dst: array<f32>;

// dst[n, dst_start + c, :, :] = src[n, src_start + c, :, :]. Batch item n's channels form one
// contiguous block of len * hw values in each tensor: one thread per value of it (x, folded
// into z past 65535 workgroups) and batch item (y), so that no thread divides (a vector division
// is one scalar division per lane on a CPU adapter).
@compute @workgroup_size(256)
fn copy_channels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.z * nwg.x * 256u;
    if (j >= cp.len * cp.hw) { return; }
    let n = gid.y;
    cc_dst[block_start(n, cp.dst_c, cp.dst_start, cp.hw) + j] = cc_src[block_start(n, cp.src_c, cp.src_start, cp.hw) + j];
}

// copy_channels with four values per thread, for planes of a multiple of 4 values (on lavapipe
// 43-49 ms per DARTS step against 103-112 for the scalar kernel on the same grid).
@group(0) @binding(1) var<storage, read> cc4_src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> cc4_dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy_channels4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.z * nwg.x * 256u;
    let hw4 = cp.hw / 4u;
    if (j >= cp.len * hw4) { return; }
    let n = gid.y;
    cc4_dst[block_start(n, cp.dst_c, cp.dst_start, hw4) + j] = cc4_src[block_start(n, cp.src_c, cp.src_start, hw4) + j];
}

struct ShuffleParams {
    n: u32,      // batch
    c: u32,      // channels
    hw: u32,     // H * W
    groups: u32, // groups of C/groups channels
}

@group(0) @binding(0) var<uniform> sp: ShuffleParams;

// channel_shuffle: y[n, j*groups + i] = x[n, i*(C/groups) + j]
@group(0) @binding(1) var<storage, read> cs_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cs_y: array<f32>;

// x viewed as [N, groups, C/groups, HW], axes 1 and 2 swapped; one thread per output element.
@compute @workgroup_size(256)
fn channel_shuffle(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= sp.n * sp.c * sp.hw) { return; }
    let cell = i % sp.hw;
    let co = (i / sp.hw) % sp.c;
    let n = i / (sp.hw * sp.c);
    let ci = (co % sp.groups) * (sp.c / sp.groups) + co / sp.groups;
    cs_y[i] = cs_x[(n * sp.c + ci) * sp.hw + cell];
}

struct WindowParams {
    nc: u32,     // N * C planes
    h: u32,      // input plane
    w: u32,
    oh: u32,     // output plane
    ow: u32,
    off_h: i32,  // input row of output row 0
    off_w: i32,  // input column of output column 0
    stride: u32,
}

@group(0) @binding(0) var<uniform> wp: WindowParams;

// window_forward: y[n,c,i,j] = x[n,c, off_h + i*stride, off_w + j*stride], 0 outside x
@group(0) @binding(1) var<storage, read> wf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> wf_y: array<f32>;

// y[n,c,i,j] = x[n,c, off_h + i*s, off_w + j*s] or 0 where that is outside x: 8x8 workgroups
// over an output plane's (j, i) = (gid.x, gid.y), planes along z (plane = wid.z, then + nwg.z),
// as window_backward: no thread divides by the plane's sizes.
@compute @workgroup_size(8, 8)
fn window_forward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (gid.x >= wp.ow || gid.y >= wp.oh) { return; }
    let iy = wp.off_h + i32(gid.y * wp.stride);
    let ix = wp.off_w + i32(gid.x * wp.stride);
    let inside = iy >= 0 && iy < i32(wp.h) && ix >= 0 && ix < i32(wp.w);
    for (var plane = wid.z; plane < wp.nc; plane = plane + nwg.z) {
        var v = 0.0;
        if (inside) {
            v = wf_x[(plane * wp.h + u32(iy)) * wp.w + u32(ix)];
        }
        wf_y[(plane * wp.oh + gid.y) * wp.ow + gid.x] = v;
    }
}

// window_backward: dx[n,c,y,x] = dy at the one output that read (y, x), 0 if none did
@group(0) @binding(1) var<storage, read> wb_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> wb_dx: array<f32>;

// The output index along one axis that reads input `at`, or -1 if none does.
fn reader(at: u32, off: i32, stride: u32, out: u32) -> i32 {
    let t = i32(at) - off;
    if (t < 0 || t % i32(stride) != 0 || t / i32(stride) >= i32(out)) {
        return -1;
    }
    return t / i32(stride);
}

// The window's stride as a pipeline constant for window_backward (equal to wp.stride), so that
// its divisions become shifts.
override STRIDE: u32 = 2u;

// dx[n,c,y,x] = dy[n,c,i,j] where (y, x) = (off_h + i*s, off_w + j*s), else 0: 8x8 workgroups
// over a plane's (x, y) = (gid.x, gid.y), planes along z (plane = wid.z, then + nwg.z): no
// thread divides by the plane's sizes.
@compute @workgroup_size(8, 8)
fn window_backward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (gid.x >= wp.w || gid.y >= wp.h) { return; }
    let oy = reader(gid.y, wp.off_h, STRIDE, wp.oh);
    let ox = reader(gid.x, wp.off_w, STRIDE, wp.ow);
    for (var plane = wid.z; plane < wp.nc; plane = plane + nwg.z) {
        var v = 0.0;
        if (oy >= 0 && ox >= 0) {
            v = wb_dy[(plane * wp.oh + u32(oy)) * wp.ow + u32(ox)];
        }
        wb_dx[(plane * wp.h + gid.y) * wp.w + gid.x] = v;
    }
}

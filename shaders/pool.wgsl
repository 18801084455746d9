// Pooling over NCHW activations: 2-D max and average pooling (forward and backward) and global
// average pooling. Every kernel gathers: a thread (or workgroup) computes its own outputs from
// what it reads, so the backward passes need no atomics and repeat bit for bit.
// Window kernels run 8x8 workgroups over a plane's (column, row) = (gid.x, gid.y), planes along
// z (plane = wid.z, then + nwg.z past 65535 planes): no thread divides to find its place
// (integer division is scalarised on CPU adapters). 1-D kernels: i = gid.x + gid.y * nwg.x * 256.

struct Params {
    nc: u32,     // N * C planes
    h: u32,      // input plane height
    w: u32,      // input plane width
    oh: u32,     // output plane height
    ow: u32,     // output plane width
    k: u32,      // window side
    stride: u32,
    pad: u32,    // zero cells on each side, never part of a max or an average
}

@group(0) @binding(0) var<uniform> p: Params;

// The window kernels' side and stride as pipeline constants (equal to p.k and p.stride), so
// that the divisions by the stride become shifts and the window loops have known bounds.
override K: u32 = 3u;
override STRIDE: u32 = 1u;

// The in-bounds part of the window of output (oy, ox): rows [r.x, r.y), columns [r.z, r.w).
// With pad < k (checked on the Rust side) it is never empty.
fn window_of(oy: u32, ox: u32) -> vec4<u32> {
    let h0 = i32(oy * STRIDE) - i32(p.pad);
    let w0 = i32(ox * STRIDE) - i32(p.pad);
    let k = i32(K);
    return vec4<u32>(
        u32(max(h0, 0)), u32(min(h0 + k, i32(p.h))),
        u32(max(w0, 0)), u32(min(w0 + k, i32(p.w))),
    );
}

// The outputs whose windows hold input cell (iy, ix): rows [r.x, r.y), columns [r.z, r.w).
fn windows_holding(iy: u32, ix: u32) -> vec4<u32> {
    let s = i32(STRIDE);
    let k = i32(K);
    // oy * s - pad <= iy <= oy * s - pad + k - 1
    let lo_y = i32(iy + p.pad) - k + 1;
    let lo_x = i32(ix + p.pad) - k + 1;
    let first_y = select(0, (lo_y + s - 1) / s, lo_y > 0);
    let first_x = select(0, (lo_x + s - 1) / s, lo_x > 0);
    let end_y = min((iy + p.pad) / STRIDE + 1u, p.oh);
    let end_x = min((ix + p.pad) / STRIDE + 1u, p.ow);
    return vec4<u32>(u32(first_y), end_y, u32(first_x), end_x);
}

struct Max {
    value: f32,
    arg: u32, // iy * W + ix within the plane
}

// The first maximum of window (oy, ox) of `plane` in row-major order (ties keep the first).
fn window_max(plane: u32, oy: u32, ox: u32) -> Max {
    let r = window_of(oy, ox);
    let base = plane * p.h * p.w;
    var best = Max(mf_x[base + r.x * p.w + r.z], r.x * p.w + r.z);
    for (var iy = r.x; iy < r.y; iy = iy + 1u) {
        for (var ix = r.z; ix < r.w; ix = ix + 1u) {
            let v = mf_x[base + iy * p.w + ix];
            if (v > best.value) {
                best = Max(v, iy * p.w + ix);
            }
        }
    }
    return best;
}

// max_forward, max_forward_arg: y = max over each window (arg = where it was, for backward)
@group(0) @binding(1) var<storage, read> mf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mf_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> mf_arg: array<u32>;

// y[n,c,oy,ox] = max of the window, without saving the arg-max (no gradient); one thread per output.
@compute @workgroup_size(8, 8)
fn max_forward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (gid.x >= p.ow || gid.y >= p.oh) { return; }
    for (var plane = wid.z; plane < p.nc; plane = plane + nwg.z) {
        let i = (plane * p.oh + gid.y) * p.ow + gid.x;
        mf_y[i] = window_max(plane, gid.y, gid.x).value;
    }
}

// y[n,c,oy,ox] = max of the window and arg = its plane index; one thread per output.
@compute @workgroup_size(8, 8)
fn max_forward_arg(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (gid.x >= p.ow || gid.y >= p.oh) { return; }
    for (var plane = wid.z; plane < p.nc; plane = plane + nwg.z) {
        let i = (plane * p.oh + gid.y) * p.ow + gid.x;
        let m = window_max(plane, gid.y, gid.x);
        mf_y[i] = m.value;
        mf_arg[i] = m.arg;
    }
}

// max_backward: dx = sum of dy over the windows whose arg-max is this cell (dy first: it is the
// strips' segment source, sx4; dx second, where every strip kernel stores, so2)
@group(0) @binding(1) var<storage, read> mb_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> mb_dx: array<f32>;
@group(0) @binding(3) var<storage, read> mb_arg: array<u32>;

// dx[n,c,iy,ix] = sum of dy[n,c,oy,ox] over windows holding (iy, ix) with arg-max there; one thread per input.
@compute @workgroup_size(8, 8)
fn max_backward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (gid.x >= p.w || gid.y >= p.h) { return; }
    let cell = gid.y * p.w + gid.x;
    let r = windows_holding(gid.y, gid.x);
    for (var plane = wid.z; plane < p.nc; plane = plane + nwg.z) {
        let base = plane * p.oh * p.ow;
        var acc = 0.0;
        for (var oy = r.x; oy < r.y; oy = oy + 1u) {
            for (var ox = r.z; ox < r.w; ox = ox + 1u) {
                let o = base + oy * p.ow + ox;
                if (mb_arg[o] == cell) {
                    acc = acc + mb_dy[o];
                }
            }
        }
        mb_dx[plane * p.h * p.w + cell] = acc;
    }
}

// avg_forward: y = mean over each window's in-bounds cells (count_include_pad = False)
@group(0) @binding(1) var<storage, read> af_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> af_y: array<f32>;

fn cells(r: vec4<u32>) -> f32 {
    return f32((r.y - r.x) * (r.w - r.z));
}

// y[n,c,oy,ox] = sum of the window's in-bounds cells / their count; one thread per output.
@compute @workgroup_size(8, 8)
fn avg_forward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (gid.x >= p.ow || gid.y >= p.oh) { return; }
    let r = window_of(gid.y, gid.x);
    for (var plane = wid.z; plane < p.nc; plane = plane + nwg.z) {
        let base = plane * p.h * p.w;
        var acc = 0.0;
        for (var iy = r.x; iy < r.y; iy = iy + 1u) {
            for (var ix = r.z; ix < r.w; ix = ix + 1u) {
                acc = acc + af_x[base + iy * p.w + ix];
            }
        }
        af_y[(plane * p.oh + gid.y) * p.ow + gid.x] = acc / cells(r);
    }
}

// avg_backward: dx = sum of dy / count over the windows holding this cell
@group(0) @binding(1) var<storage, read> ab_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> ab_dx: array<f32>;

// dx[n,c,iy,ix] = sum of dy[n,c,oy,ox] / count(oy,ox) over windows holding (iy, ix); one thread per input.
@compute @workgroup_size(8, 8)
fn avg_backward(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if (gid.x >= p.w || gid.y >= p.h) { return; }
    let r = windows_holding(gid.y, gid.x);
    for (var plane = wid.z; plane < p.nc; plane = plane + nwg.z) {
        let base = plane * p.oh * p.ow;
        var acc = 0.0;
        for (var oy = r.x; oy < r.y; oy = oy + 1u) {
            for (var ox = r.z; ox < r.w; ox = ox + 1u) {
                acc = acc + ab_dy[base + oy * p.ow + ox] / cells(window_of(oy, ox));
            }
        }
        ab_dx[(plane * p.h + gid.y) * p.w + gid.x] = acc;
    }
}

// global_forward: y[n,c] = mean of plane (n, c)
@group(0) @binding(1) var<storage, read> gf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> gf_y: array<f32>;

const GLOBAL_WG: u32 = 64u;
var<workgroup> tree: array<f32, 64>;

// y[n,c] = mean over the H*W plane; one workgroup of 64 per plane (threads stride through it,
// then a fixed-order tree sums their partials).
@compute @workgroup_size(64)
fn global_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let plane = wid.x + wid.y * nwg.x;
    let hw = p.h * p.w;
    var acc = 0.0;
    if (plane < p.nc) {
        for (var j = lid; j < hw; j = j + GLOBAL_WG) {
            acc = acc + gf_x[plane * hw + j];
        }
    }
    tree[lid] = acc;
    workgroupBarrier();
    for (var s = GLOBAL_WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            tree[lid] = tree[lid] + tree[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u && plane < p.nc) {
        gf_y[plane] = tree[0] / f32(hw);
    }
}

// global_backward: dx = dy[n,c] / (H * W), broadcast over the plane
@group(0) @binding(1) var<storage, read> gb_dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> gb_dx: array<f32>;

// dx[n,c,iy,ix] = dy[n,c] / (H * W); one thread per input.
@compute @workgroup_size(256)
fn global_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    let hw = p.h * p.w;
    if (i >= p.nc * hw) { return; }
    gb_dx[i] = gb_dy[i / hw] / f32(hw);
}

// The forward window kernels as 8-column strips (as the depthwise conv): one invocation per
// (plane, output row, block of 8 output columns, i = index64), each kernel row's input segment
// loaded once for the 8 windows that share it. For windows whose segment fits SEG values
// ((8 - 1) * STRIDE + K <= SEG, checked on the Rust side).
const OUTS: u32 = 8u;
const SEG: u32 = 24u;

// The strip kernels' input (x forward, dy backward) and max_backward_strips' arg-max, as vec4s
// (pool buffers are multiples of 16 bytes).
@group(0) @binding(1) var<storage, read> sx4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> sa4: array<vec4<u32>>;
// VEC4: the segments' row width is a multiple of 4, and they are loaded as the aligned vec4s
// that cover them (about a third of the loads). PAD (= p.pad) fixes where a segment starts in
// its first vec4, so every index is known when the pipeline is built.
override VEC4: bool = false;
override PAD: u32 = 0u;

// floor(a / 4).
fn floor4(a: i32) -> i32 {
    return select(a / 4, (a - 3) / 4, a < 0);
}

// Where a segment's values lie: the vec4 of its value 0, and value 0's place in it.
struct Span4 {
    first: i32,
    skip: u32,
}

// Segment value s is column a0 + lead + s (a0 a multiple of 8, lead a constant).
fn span4(a0: u32, lead: i32) -> Span4 {
    return Span4(i32(a0 / 4u) + floor4(lead), u32(lead - floor4(lead) * 4));
}

// Columns a0 + lead .. a0 + lead + span - 1 of the row of `width` values at sx4's flat index
// `row`; columns outside the row are `fill`.
fn row_segment(row: u32, a0: u32, lead: i32, span: u32, width: u32, fill: f32) -> array<f32, SEG> {
    var seg: array<f32, SEG>;
    if (VEC4) {
        let at = span4(a0, lead);
        let last4 = i32(width / 4u) - 1;
        for (var k = 0u; k < (at.skip + span + 3u) / 4u; k = k + 1u) {
            let q = at.first + i32(k);
            let v = sx4[row / 4u + u32(clamp(q, 0, last4))];
            for (var e = 0u; e < 4u; e = e + 1u) {
                let s = i32(k * 4u + e) - i32(at.skip);
                let c = q * 4 + i32(e);
                if (s >= 0 && s < i32(span)) {
                    seg[s] = select(fill, v[e], c >= 0 && c < i32(width));
                }
            }
        }
        return seg;
    }
    for (var s = 0u; s < span; s = s + 1u) {
        let c = i32(a0) + lead + i32(s);
        let i = row + u32(clamp(c, 0, i32(width) - 1));
        seg[s] = select(fill, sx4[i / 4u][i % 4u], c >= 0 && c < i32(width));
    }
    return seg;
}

// `row_segment` of the arg-max (sa4), 0xffffffff (no cell) outside the row. A twin rather than
// one loader of bits for both: an entry point may not use sa4 and its own binding 3 at once,
// and a loader that names both buffers uses both in every kernel that calls it. Nor one loader
// per value (a `slot` of each column, one load each): the loads of one vec4 are not merged, and
// the strips ran 10-60% slower (examples of the DARTS shapes, 3 interleaved pairs).
fn arg_row_segment(row: u32, a0: u32, lead: i32, span: u32, width: u32) -> array<u32, SEG> {
    var seg: array<u32, SEG>;
    if (VEC4) {
        let at = span4(a0, lead);
        let last4 = i32(width / 4u) - 1;
        for (var k = 0u; k < (at.skip + span + 3u) / 4u; k = k + 1u) {
            let q = at.first + i32(k);
            let v = sa4[row / 4u + u32(clamp(q, 0, last4))];
            for (var e = 0u; e < 4u; e = e + 1u) {
                let s = i32(k * 4u + e) - i32(at.skip);
                let c = q * 4 + i32(e);
                if (s >= 0 && s < i32(span)) {
                    seg[s] = select(0xffffffffu, v[e], c >= 0 && c < i32(width));
                }
            }
        }
        return seg;
    }
    for (var s = 0u; s < span; s = s + 1u) {
        let c = i32(a0) + lead + i32(s);
        let i = row + u32(clamp(c, 0, i32(width) - 1));
        seg[s] = select(0xffffffffu, sa4[i / 4u][i % 4u], c >= 0 && c < i32(width));
    }
    return seg;
}

// The strip kernels' outputs, as vec4s: y (forward) or dx (backward) at binding 2, the arg-max
// (max forward) at binding 3. VEC4_OUT: the output rows' width is a multiple of 4, so a strip's
// 8 values (from a column that is a multiple of 8) are stored as two aligned vec4s, the second
// where the row goes on: a quarter of the stores. Otherwise value by value. Two twins, one per
// binding, for the reason given at arg_row_segment.
override VEC4_OUT: bool = false;
@group(0) @binding(2) var<storage, read_write> so2: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> sarg3: array<vec4<u32>>;

// The first n (> 0) of 8 values v at flat index `out` of so2.
fn store_strip2(out: u32, n: u32, v: array<f32, OUTS>) {
    if (VEC4_OUT) {
        so2[out / 4u] = vec4<f32>(v[0], v[1], v[2], v[3]);
        if (n > 4u) {
            so2[out / 4u + 1u] = vec4<f32>(v[4], v[5], v[6], v[7]);
        }
        return;
    }
    for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
        let e = out + jj;
        if (jj < n) { so2[e / 4u][e % 4u] = v[jj]; }
    }
}

fn store_arg_strip3(out: u32, n: u32, v: array<u32, OUTS>) {
    if (VEC4_OUT) {
        sarg3[out / 4u] = vec4<u32>(v[0], v[1], v[2], v[3]);
        if (n > 4u) {
            sarg3[out / 4u + 1u] = vec4<u32>(v[4], v[5], v[6], v[7]);
        }
        return;
    }
    for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
        let e = out + jj;
        if (jj < n) { sarg3[e / 4u][e % 4u] = v[jj]; }
    }
}

// (plane, output row, first output column) of strip invocation t, or plane >= nc past the end.
fn strip_of(t: u32) -> vec3<u32> {
    let jblocks = (p.ow + OUTS - 1u) / OUTS;
    return vec3<u32>(t / (jblocks * p.oh), (t / jblocks) % p.oh, (t % jblocks) * OUTS);
}

// The 8 windows of strip st: each takes its first in-bounds cell, then a later cell only when
// strictly greater, in row-major order: the first maximum, as window_max.
struct StripMax {
    best: array<f32, OUTS>,
    arg: array<u32, OUTS>,
}

fn strip_max(st: vec3<u32>) -> StripMax {
    let base = st.x * p.h * p.w;
    let h0 = i32(st.y * STRIDE) - i32(p.pad);
    let x0 = i32(st.z * STRIDE) - i32(p.pad);
    let span = (OUTS - 1u) * STRIDE + K;
    let last = i32(p.w) - 1;
    var m: StripMax;
    var seen: array<bool, OUTS>;
    for (var u = 0u; u < K; u = u + 1u) {
        let iy = h0 + i32(u);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        let row = u32(iy) * p.w;
        let seg = row_segment(base + row, st.z * STRIDE, -i32(PAD), span, p.w, 0.0);
        for (var v = 0u; v < K; v = v + 1u) {
            for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
                let x = x0 + i32(jj * STRIDE + v);
                let value = seg[jj * STRIDE + v];
                if (x >= 0 && x <= last && (!seen[jj] || value > m.best[jj])) {
                    m.best[jj] = value;
                    m.arg[jj] = row + u32(x);
                    seen[jj] = true;
                }
            }
        }
    }
    return m;
}

// max_forward_arg_strips, max_forward_strips: max_forward_arg's y and arg, max_forward's y, 8
// windows per invocation (x is sx4, y so2, arg sarg3).
@compute @workgroup_size(64)
fn max_forward_arg_strips(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let st = strip_of(index64(gid, nwg));
    if (st.x >= p.nc) { return; }
    let m = strip_max(st);
    let out = (st.x * p.oh + st.y) * p.ow + st.z;
    store_strip2(out, min(OUTS, p.ow - st.z), m.best);
    store_arg_strip3(out, min(OUTS, p.ow - st.z), m.arg);
}

@compute @workgroup_size(64)
fn max_forward_strips(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let st = strip_of(index64(gid, nwg));
    if (st.x >= p.nc) { return; }
    let out = (st.x * p.oh + st.y) * p.ow + st.z;
    store_strip2(out, min(OUTS, p.ow - st.z), strip_max(st).best);
}

// avg_forward_strips: avg_forward, 8 windows per invocation (x is sx4, y so2).
@compute @workgroup_size(64)
fn avg_forward_strips(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let st = strip_of(index64(gid, nwg));
    if (st.x >= p.nc) { return; }
    let base = st.x * p.h * p.w;
    let h0 = i32(st.y * STRIDE) - i32(p.pad);
    let span = (OUTS - 1u) * STRIDE + K;
    var acc: array<f32, OUTS>;
    for (var u = 0u; u < K; u = u + 1u) {
        let iy = h0 + i32(u);
        if (iy < 0 || iy >= i32(p.h)) { continue; }
        let seg = row_segment(base + u32(iy) * p.w, st.z * STRIDE, -i32(PAD), span, p.w, 0.0);
        for (var v = 0u; v < K; v = v + 1u) {
            for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
                acc[jj] = acc[jj] + seg[jj * STRIDE + v];
            }
        }
    }
    // Past the row's end (not stored) a window's count is garbage: the division is harmless.
    for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
        acc[jj] = acc[jj] / cells(window_of(st.y, st.z + jj));
    }
    store_strip2((st.x * p.oh + st.y) * p.ow + st.z, min(OUTS, p.ow - st.z), acc);
}

// The backward window kernels as 8-column strips, stride 1: invocation (plane, input row y,
// input columns x0..x0+7). Input (y, x) lies in the windows of outputs (y + pad - u, x + pad -
// v), u, v < K; for each u the needed output row segment (x0 + pad - K + 1 .. x0 + 7 + pad) is
// loaded once for the 8 inputs.
fn input_strip_of(t: u32) -> vec3<u32> {
    let xblocks = (p.w + OUTS - 1u) / OUTS;
    return vec3<u32>(t / (xblocks * p.h), (t / xblocks) % p.h, (t % xblocks) * OUTS);
}

// avg_backward_strips: avg_backward at stride 1 (dy is sx4, dx so2). A window's count is its rows'
// times its columns': the columns' are found once per invocation.
@compute @workgroup_size(64)
fn avg_backward_strips(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let st = input_strip_of(index64(gid, nwg));
    if (st.x >= p.nc) { return; }
    let span = OUTS + K - 1u;
    let lead = i32(PAD) - i32(K - 1u);
    let o0 = i32(st.z) + lead; // output column of segment slot 0
    let last = i32(p.ow) - 1;
    var cols: array<u32, SEG>;
    for (var s = 0u; s < span; s = s + 1u) {
        let r = window_of(0u, u32(clamp(o0 + i32(s), 0, last)));
        cols[s] = r.w - r.z;
    }
    var acc: array<f32, OUTS>;
    for (var u = 0u; u < K; u = u + 1u) {
        let oy = i32(st.y + p.pad) - i32(u);
        if (oy < 0 || oy >= i32(p.oh)) { continue; }
        let r = window_of(u32(oy), 0u);
        let rows = r.y - r.x;
        var seg = row_segment((st.x * p.oh + u32(oy)) * p.ow, st.z, lead, span, p.ow, 0.0);
        for (var s = 0u; s < span; s = s + 1u) {
            seg[s] = seg[s] / f32(rows * cols[s]);
        }
        for (var v = 0u; v < K; v = v + 1u) {
            for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
                acc[jj] = acc[jj] + seg[jj + K - 1u - v];
            }
        }
    }
    store_strip2((st.x * p.h + st.y) * p.w + st.z, min(OUTS, p.w - st.z), acc);
}

// max_backward_strips: max_backward at stride 1 (dy is sx4, dx so2, arg sa4).
@compute @workgroup_size(64)
fn max_backward_strips(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let st = input_strip_of(index64(gid, nwg));
    if (st.x >= p.nc) { return; }
    let span = OUTS + K - 1u;
    let lead = i32(PAD) - i32(K - 1u);
    let cell0 = st.y * p.w + st.z;
    var acc: array<f32, OUTS>;
    for (var u = 0u; u < K; u = u + 1u) {
        let oy = i32(st.y + p.pad) - i32(u);
        if (oy < 0 || oy >= i32(p.oh)) { continue; }
        let row = (st.x * p.oh + u32(oy)) * p.ow;
        let seg_dy = row_segment(row, st.z, lead, span, p.ow, 0.0);
        let seg_arg = arg_row_segment(row, st.z, lead, span, p.ow);
        for (var v = 0u; v < K; v = v + 1u) {
            for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
                let s = jj + K - 1u - v;
                acc[jj] = acc[jj] + select(0.0, seg_dy[s], seg_arg[s] == cell0 + jj);
            }
        }
    }
    store_strip2((st.x * p.h + st.y) * p.w + st.z, min(OUTS, p.w - st.z), acc);
}

// avg_backward_strided, max_backward_strided: the backward window kernels as 8-column strips at
// any stride (the stride-2 pools of a reduction cell's edges). Invocation (plane, input row y,
// input columns x0..x0+7): the outputs whose windows can hold those columns are the span of
// (7 + K - 1) / STRIDE + 1 from column ox_lo on, each loaded once for the 8 inputs; input x lies
// in window ox when 0 <= x + pad - ox * STRIDE < K.
struct Strided {
    oy_lo: u32, // output rows oy_lo ..= oy_hi hold input row y
    oy_hi: i32,
    ox_lo: i32, // first output column of the span
    base: i32,  // x0 + pad - ox_lo * STRIDE: column x0's place in window ox_lo
    span: u32,
}

fn strided_windows(y: u32, x0: u32) -> Strided {
    let s = i32(STRIDE);
    let lo_y = i32(y + p.pad) - i32(K) + 1;
    let lo_x = i32(x0 + p.pad) - i32(K) + 1;
    let oy_lo = select(0, (lo_y + s - 1) / s, lo_y > 0);
    let oy_hi = min(i32((y + p.pad) / STRIDE), i32(p.oh) - 1);
    let ox_lo = select(0, (lo_x + s - 1) / s, lo_x > 0);
    return Strided(u32(oy_lo), oy_hi, ox_lo, i32(x0 + p.pad) - ox_lo * s, (OUTS + K - 2u) / STRIDE + 1u);
}

@compute @workgroup_size(64)
fn avg_backward_strided(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let st = input_strip_of(index64(gid, nwg));
    if (st.x >= p.nc) { return; }
    let r = strided_windows(st.y, st.z);
    let last = i32(p.ow) - 1;
    var acc: array<f32, OUTS>;
    for (var oy = r.oy_lo; i32(oy) <= r.oy_hi; oy = oy + 1u) {
        let row = (st.x * p.oh + oy) * p.ow;
        for (var s = 0u; s < r.span; s = s + 1u) {
            let ox = r.ox_lo + i32(s);
            let oxc = u32(clamp(ox, 0, last));
            let d = select(0.0, ab_dy[row + oxc] / cells(window_of(oy, oxc)), ox <= last);
            for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
                let at = r.base + i32(jj) - i32(s * STRIDE);
                acc[jj] = acc[jj] + select(0.0, d, at >= 0 && at < i32(K));
            }
        }
    }
    store_strip2((st.x * p.h + st.y) * p.w + st.z, min(OUTS, p.w - st.z), acc);
}

@compute @workgroup_size(64)
fn max_backward_strided(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let st = input_strip_of(index64(gid, nwg));
    if (st.x >= p.nc) { return; }
    let r = strided_windows(st.y, st.z);
    let last = i32(p.ow) - 1;
    let cell0 = st.y * p.w + st.z;
    var acc: array<f32, OUTS>;
    for (var oy = r.oy_lo; i32(oy) <= r.oy_hi; oy = oy + 1u) {
        let row = (st.x * p.oh + oy) * p.ow;
        for (var s = 0u; s < r.span; s = s + 1u) {
            let ox = r.ox_lo + i32(s);
            let o = row + u32(clamp(ox, 0, last));
            let d = mb_dy[o];
            // The window's argmax is one of its cells, so matching it is membership enough.
            let arg = select(0xffffffffu, mb_arg[o], ox <= last);
            for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
                acc[jj] = acc[jj] + select(0.0, d, arg == cell0 + jj);
            }
        }
    }
    store_strip2((st.x * p.h + st.y) * p.w + st.z, min(OUTS, p.w - st.z), acc);
}

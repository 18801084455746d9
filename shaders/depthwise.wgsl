// Depthwise convolution (groups = channels, one filter per channel: the kxk halves of DARTS'
// SepConv and DilConv), NCHW, weights [C, 1, KH, KW]. The forward pass and the weight gradient
// also take any grouping (cin_g input channels per group: the stem's full 3x3 conv, ENAS's). Each invocation computes a strip of 8
// output columns: per kernel row it loads the input segment the strip needs once into registers
// and applies every tap of that row to it (lavapipe rewards FMAs per loaded value, see
// ../shared/lavapipe-kernels.md). Kernel size, stride and dilation are pipeline constants, so
// every loop has a constant trip count and unrolls. The weight gradient reduces each channel's
// taps over fixed chunks (one image, a band of rows), summed in order by conv's `sum_chunks`.

struct Params {
    n: u32,
    c: u32,        // output channels (= input channels for the depthwise-only entry points)
    h: u32,        // input plane
    w: u32,
    oh: u32,       // output plane
    ow: u32,
    padding: u32,
    rows: u32,     // weight_backward: output rows per chunk
    rblocks: u32,  // weight_backward: chunks per image, ceil(oh / rows)
    c_in: u32,     // input channels
    cin_g: u32,    // input channels per group (1: depthwise)
    cout_g: u32,   // output channels per group
}

override KH: u32 = 3u;
override KW: u32 = 3u;
override STRIDE: u32 = 1u;
override DIL: u32 = 1u;
// forward only: read the kernel rotated by 180 degrees. At stride 1 the input gradient is the
// forward pass of dy with the rotated kernel and padding (K-1)*DIL - padding.
override FLIP: bool = false;

// Output columns per invocation, and the register segment that covers them: (8-1)*STRIDE +
// (KW-1)*DIL + 1 <= SEG (checked on the Rust side).
const OUTS: u32 = 8u;
const SEG: u32 = 24u;
const MAX_TAPS: u32 = 25u;

@group(0) @binding(0) var<uniform> p: Params;

// forward: y[n, o, i, j] = sum over (c in o's group, u, v) of w[o, c, u, v] * x[n, c, i*S + u*D - pad, j*S + v*D - pad]
@group(0) @binding(1) var<storage, read> f_x: array<f32>;       // [N, C_in, H, W]
@group(0) @binding(2) var<storage, read> f_w: array<f32>;       // [C, cin_g, KH, KW]
@group(0) @binding(3) var<storage, read_write> f_y: array<vec4<f32>>; // [N, C, OH, OW]
// forward and weight_backward: x bound a second time, as vec4s (VEC4).
@group(0) @binding(4) var<storage, read> x4: array<vec4<f32>>;
// forward (and input_backward's ib_wu): the filter copied into a uniform buffer where it holds
// at most UNIFORM_TAPS values (UNIFORM_W; otherwise a spare is bound and not read). Lavapipe
// loads a storage value that is not known to be the same in every lane one lane at a time, 8
// times per SIMD batch; a uniform one it gathers with constant lane offsets. `cargo bench
// --bench depthwise` on 2 Zen 3 cores: a step's forward passes took 4.3-4.7 s with the filter
// read from storage, 3.2 s from here.
@group(0) @binding(5) var<uniform> f_wu: array<vec4<f32>, 1024>; // UNIFORM_TAPS / 4
override UNIFORM_W: bool = false;

fn tap_weight(i: u32) -> f32 {
    if (UNIFORM_W) {
        return f_wu[i / 4u][i % 4u];
    }
    return f_w[i];
}

// forward: with W a multiple of 4, load each segment as the aligned vec4s that cover it (a
// third of the loads). PAD (the padding, a pipeline constant here) fixes where the segment
// starts inside its first vec4, so every index below is known when the pipeline is built.
override VEC4: bool = false;

// The input segment of the strip at output column j0 in the row starting at x[row] (W a
// multiple of 4), from the aligned vec4s that cover it: x0 = j0 * S - PAD with j0 * S a multiple
// of 8, so the segment starts `lead` values into the vec4 at (j0 * S) / 4 + floor(-PAD / 4).
// Values in the padding are zero.
fn vec4_segment(row: u32, j0: u32) -> array<f32, SEG> {
    var seg: array<f32, SEG>;
    let span = (OUTS - 1u) * STRIDE + (KW - 1u) * DIL + 1u;
    let first = i32(j0 * STRIDE / 4u) - i32((PAD + 3u) / 4u);
    let lead = (4u - PAD % 4u) % 4u;
    let row4 = row / 4u;
    let last4 = i32(p.w / 4u) - 1;
    for (var k = 0u; k < (lead + span + 3u) / 4u; k = k + 1u) {
        let q = first + i32(k);
        let v4 = x4[row4 + u32(clamp(q, 0, last4))];
        for (var e = 0u; e < 4u; e = e + 1u) {
            let sidx = i32(k * 4u + e) - i32(lead);
            let x = q * 4 + i32(e);
            if (sidx >= 0 && sidx < i32(span)) {
                seg[sidx] = select(0.0, v4[e], x >= 0 && x < i32(p.w));
            }
        }
    }
    return seg;
}

// forward: output rows per invocation, 1, 2 or 4 (more than 1 at stride 1 only). The rows of
// a group, i0 + r * DIL, share all but r of their input rows: each input row is loaded once and
// feeds every row of the group whose kernel covers it.
override ROWS: u32 = 1u;
// forward: the output plane's width is a multiple of 8, so every strip is stored as two
// aligned vec4s (`f_y` is bound as vec4s: pool buffers are multiples of 16 bytes).
override VEC4_OUT: bool = false;

// acc + the taps of kernel row u applied to a segment: the 8 outputs of one row, as two vec4s
// (columns 0-3, 4-7), each a chain of FMAs in tap order.
fn row_taps(seg: array<f32, SEG>, w_base: u32, u: u32, acc: mat2x4<f32>) -> mat2x4<f32> {
    var lo = acc[0];
    var hi = acc[1];
    for (var v = 0u; v < KW; v = v + 1u) {
        let tap = select(u * KW + v, (KH - 1u - u) * KW + (KW - 1u - v), FLIP);
        let wt = vec4<f32>(tap_weight(w_base + tap));
        let o = v * DIL;
        lo = fma(wt, vec4<f32>(seg[o], seg[o + STRIDE], seg[o + 2u * STRIDE], seg[o + 3u * STRIDE]), lo);
        hi = fma(wt, vec4<f32>(seg[o + 4u * STRIDE], seg[o + 5u * STRIDE], seg[o + 6u * STRIDE], seg[o + 7u * STRIDE]), hi);
    }
    return mat2x4<f32>(lo, hi);
}

// Writes the first n of a row's 8 outputs at y[out] (all 8, as two vec4s, with VEC4_OUT).
fn store_row(out: u32, n: u32, r: mat2x4<f32>) {
    if (VEC4_OUT) {
        f_y[out / 4u] = r[0];
        f_y[out / 4u + 1u] = r[1];
        return;
    }
    for (var k = 0u; k < 4u; k = k + 1u) {
        let e = out + k;
        if (k < n) { f_y[e / 4u][e % 4u] = r[0][k]; }
        let e4 = e + 4u;
        if (k + 4u < n) { f_y[e4 / 4u][e4 % 4u] = r[1][k]; }
    }
}

// One invocation per (output channel o, image n, group of ROWS output rows, block of 8 output
// columns); workgroups y = o, so every invocation of a workgroup reads the same filter (one
// address per weight on a GPU's uniform path). The groups of a plane are rows (i0, i0 + DIL,
// ..), i0 = b * ROWS * DIL + q for q < DIL.
@compute @workgroup_size(64)
fn forward(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let jblocks = (p.ow + OUTS - 1u) / OUTS;
    let groups = (p.oh + ROWS * DIL - 1u) / (ROWS * DIL) * DIL;
    let ch = wid.y;
    let t = (wid.x + wid.z * nwg.x) * 64u + lid; // n * groups * jblocks + g * jblocks + jb
    if (t >= p.n * groups * jblocks) { return; }
    let jb = t % jblocks;
    let g = (t / jblocks) % groups;
    let i0 = g / DIL * ROWS * DIL + g % DIL;
    if (i0 >= p.oh) { return; }
    let plane = (t / (jblocks * groups)) * p.c + ch;
    let c0 = (plane / p.c) * p.c_in + (ch / p.cout_g) * p.cin_g; // first input plane of the group
    let j0 = jb * OUTS;
    let x0 = i32(j0 * STRIDE) - i32(p.padding);
    let span = (OUTS - 1u) * STRIDE + (KW - 1u) * DIL + 1u;
    let last = i32(p.w) - 1;
    var r0 = mat2x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0));
    var r1 = r0;
    var r2 = r0;
    var r3 = r0;
    var r4 = r0;
    var r5 = r0;
    var r6 = r0;
    var r7 = r0;
    for (var ci = 0u; ci < p.cin_g; ci = ci + 1u) {
        // The filter slice, read once (rotated by 180 degrees with FLIP).
        let w_base = (ch * p.cin_g + ci) * KH * KW;
        // Input row k of the group: kernel row k - r of output row i0 + r * DIL.
        for (var k = 0u; k < KH + ROWS - 1u; k = k + 1u) {
            let y = i32(i0 * STRIDE + k * DIL) - i32(p.padding);
            if (y < 0 || y >= i32(p.h)) { continue; }
            let row = ((c0 + ci) * p.h + u32(y)) * p.w;
            var seg: array<f32, SEG>;
            if (VEC4) {
                seg = vec4_segment(row, j0);
            } else {
                for (var s = 0u; s < span; s = s + 1u) {
                    let x = x0 + i32(s);
                    seg[s] = select(0.0, f_x[row + u32(clamp(x, 0, last))], x >= 0 && x <= last);
                }
            }
            if (k < KH) { r0 = row_taps(seg, w_base, k, r0); }
            if (ROWS >= 2u && k >= 1u && k - 1u < KH) { r1 = row_taps(seg, w_base, k - 1u, r1); }
            if (ROWS >= 4u && k >= 2u && k - 2u < KH) { r2 = row_taps(seg, w_base, k - 2u, r2); }
            if (ROWS >= 4u && k >= 3u && k - 3u < KH) { r3 = row_taps(seg, w_base, k - 3u, r3); }
            if (ROWS >= 8u && k >= 4u && k - 4u < KH) { r4 = row_taps(seg, w_base, k - 4u, r4); }
            if (ROWS >= 8u && k >= 5u && k - 5u < KH) { r5 = row_taps(seg, w_base, k - 5u, r5); }
            if (ROWS >= 8u && k >= 6u && k - 6u < KH) { r6 = row_taps(seg, w_base, k - 6u, r6); }
            if (ROWS >= 8u && k >= 7u && k - 7u < KH) { r7 = row_taps(seg, w_base, k - 7u, r7); }
        }
    }
    let n_out = min(OUTS, p.ow - j0);
    let out = (plane * p.oh + i0) * p.ow + j0;
    let step = DIL * p.ow;
    store_row(out, n_out, r0);
    if (ROWS >= 2u && i0 + DIL < p.oh) { store_row(out + step, n_out, r1); }
    if (ROWS >= 4u && i0 + 2u * DIL < p.oh) { store_row(out + 2u * step, n_out, r2); }
    if (ROWS >= 4u && i0 + 3u * DIL < p.oh) { store_row(out + 3u * step, n_out, r3); }
    if (ROWS >= 8u && i0 + 4u * DIL < p.oh) { store_row(out + 4u * step, n_out, r4); }
    if (ROWS >= 8u && i0 + 5u * DIL < p.oh) { store_row(out + 5u * step, n_out, r5); }
    if (ROWS >= 8u && i0 + 6u * DIL < p.oh) { store_row(out + 6u * step, n_out, r6); }
    if (ROWS >= 8u && i0 + 7u * DIL < p.oh) { store_row(out + 7u * step, n_out, r7); }
}

// weight_backward: dw[o, c, u, v] = sum over (n, i, j) of dy[n, o, i, j] * x[n, c', i*S + u*D - pad, j*S + v*D - pad]
// (c' = c's input channel in o's group)
@group(0) @binding(1) var<storage, read> wb_dy: array<vec4<f32>>;     // [N, C, OH, OW]
@group(0) @binding(2) var<storage, read> wb_x: array<f32>;            // [N, C_in, H, W]
@group(0) @binding(3) var<storage, read_write> wb_partial: array<f32>; // [N * rblocks, C, cin_g, KH, KW]

// Partial dw of every tap of one filter slice (o, c) over one chunk (image n, output rows
// [rb*rows, (rb+1)*rows)): one invocation per (chunk, slice). Per strip of 8 outputs it loads dy once and, per
// kernel row, the input segment once; every tap is a dot product of the two in registers.
@compute @workgroup_size(64)
fn weight_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = index64(gid, nwg);
    let slices = p.c * p.cin_g;
    if (t >= p.n * p.rblocks * slices) { return; }
    let slice = t % slices; // o * cin_g + c
    let chunk = t / slices; // n * rblocks + rb
    let b = chunk / p.rblocks;
    let rb = chunk % p.rblocks;
    let o = slice / p.cin_g;
    let plane = b * p.c + o;
    let x_plane = b * p.c_in + (o / p.cout_g) * p.cin_g + slice % p.cin_g;
    let span = (OUTS - 1u) * STRIDE + (KW - 1u) * DIL + 1u;
    let last = i32(p.w) - 1;
    var acc: array<f32, MAX_TAPS>;
    let i_end = min((rb + 1u) * p.rows, p.oh);
    for (var i = rb * p.rows; i < i_end; i = i + 1u) {
        let dy_row = (plane * p.oh + i) * p.ow;
        for (var j0 = 0u; j0 < p.ow; j0 = j0 + OUTS) {
            var g: array<f32, OUTS>;
            if (VEC4_OUT) {
                let a = wb_dy[(dy_row + j0) / 4u];
                let c = wb_dy[(dy_row + j0) / 4u + 1u];
                for (var jj = 0u; jj < 4u; jj = jj + 1u) {
                    g[jj] = a[jj];
                    g[jj + 4u] = c[jj];
                }
            } else {
                for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
                    let j = j0 + jj;
                    let e = dy_row + min(j, p.ow - 1u);
                    g[jj] = select(0.0, wb_dy[e / 4u][e % 4u], j < p.ow);
                }
            }
            let x0 = i32(j0 * STRIDE) - i32(p.padding);
            for (var u = 0u; u < KH; u = u + 1u) {
                let y = i32(i * STRIDE + u * DIL) - i32(p.padding);
                if (y < 0 || y >= i32(p.h)) { continue; }
                let row = (x_plane * p.h + u32(y)) * p.w;
                var seg: array<f32, SEG>;
                if (VEC4) {
                    seg = vec4_segment(row, j0);
                } else {
                    for (var s = 0u; s < span; s = s + 1u) {
                        let x = x0 + i32(s);
                        seg[s] = select(0.0, wb_x[row + u32(clamp(x, 0, last))], x >= 0 && x <= last);
                    }
                }
                for (var v = 0u; v < KW; v = v + 1u) {
                    var d = 0.0;
                    for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
                        d = fma(g[jj], seg[jj * STRIDE + v * DIL], d);
                    }
                    acc[u * KW + v] = acc[u * KW + v] + d;
                }
            }
        }
    }
    let base = (chunk * slices + slice) * KH * KW;
    for (var tap = 0u; tap < KH * KW; tap = tap + 1u) {
        wb_partial[base + tap] = acc[tap];
    }
}

// input_backward: dx[n, c, y, x] = sum over the taps (u, v) and outputs (i, j) with
// i*S + u*D - pad = y and j*S + v*D - pad = x of w[c, u, v] * dy[n, c, i, j] (strided convs;
// at stride 1 the rotated-kernel forward pass is used instead). The padding is a pipeline
// constant here so that which taps meet an output, and where in the register segment, is known
// when the pipeline is built.
override PAD: u32 = 1u;

@group(0) @binding(1) var<storage, read> ib_dy: array<vec4<f32>>;       // [N, C, OH, OW]
@group(0) @binding(2) var<storage, read> ib_w: array<f32>;              // [C, 1, KH, KW]
@group(0) @binding(3) var<storage, read_write> ib_dx: array<vec4<f32>>; // [N, C, H, W]
// The filter's uniform copy, as the forward pass's (UNIFORM_W).
@group(0) @binding(4) var<uniform> ib_wu: array<vec4<f32>, 1024>;

fn ib_weight(i: u32) -> f32 {
    if (UNIFORM_W) {
        return ib_wu[i / 4u][i % 4u];
    }
    return ib_w[i];
}

// floor(a / b) for b > 0.
fn floor_div(a: i32, b: i32) -> i32 {
    let q = a / b;
    return select(q, q - 1, a % b != 0 && a < 0);
}

// One invocation per (plane, input row y, block of 8 input columns x0..x0+7, x0 a multiple of
// 8 and of STRIDE). Column x0 + jj meets tap v at output column (x0 + jj + PAD - v*D) / S when
// that divides: relative to x0 / S a constant, read from a segment of dy loaded once per row.
// Which kernel rows meet row y depends on y mod S (its phase): the invocations of a plane run
// phase by phase (rows phase, phase + S, ...), so that the lanes of a SIMD batch take the same
// rows. In row order, half the lanes of a batch skipped each kernel row at stride 2, and a CPU
// adapter runs a branch that some lanes take for all of them.
@compute @workgroup_size(64)
fn input_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let xblocks = (p.w + OUTS - 1u) / OUTS;
    let rows = (p.h + STRIDE - 1u) / STRIDE; // rows per phase, the last phases' last one past H
    let t = index64(gid, nwg);
    if (t >= p.n * p.c * STRIDE * rows * xblocks) { return; }
    let xb = t % xblocks;
    let r = t / xblocks;
    let phase = (r / rows) % STRIDE;
    let y = (r % rows) * STRIDE + phase;
    let plane = r / (rows * STRIDE);
    if (y >= p.h) { return; }
    let ch = plane % p.c;
    let x0 = xb * OUTS;
    let s = i32(STRIDE);
    let lo = floor_div(i32(PAD) - i32((KW - 1u) * DIL), s); // lowest offset from x0 / S
    let hi = (i32(OUTS) - 1 + i32(PAD)) / s;
    let span = u32(hi - lo + 1);
    let j_first = i32(x0 / STRIDE) + lo;
    let last = i32(p.ow) - 1;
    var acc: array<f32, OUTS>;
    for (var u = 0u; u < KH; u = u + 1u) {
        let ti = i32(y + PAD) - i32(u * DIL);
        if (ti < 0 || ti % s != 0 || ti / s >= i32(p.oh)) { continue; }
        let row = (plane * p.oh + u32(ti / s)) * p.ow;
        var seg: array<f32, SEG>;
        if (VEC4) {
            // OW a multiple of 4 and x0 / S of 4: the segment starts `lead` values into the
            // vec4 at (x0 / S) / 4 + floor(lo / 4) of its row.
            let lead = u32(lo - floor_div(lo, 4) * 4);
            let first = i32(x0 / STRIDE / 4u) + floor_div(lo, 4);
            let last4 = i32(p.ow / 4u) - 1;
            for (var q = 0u; q < (lead + span + 3u) / 4u; q = q + 1u) {
                let v4 = ib_dy[row / 4u + u32(clamp(first + i32(q), 0, last4))];
                for (var e = 0u; e < 4u; e = e + 1u) {
                    let k = i32(q * 4u + e) - i32(lead);
                    let j = j_first + k;
                    if (k >= 0 && k < i32(span)) {
                        seg[k] = select(0.0, v4[e], j >= 0 && j <= last);
                    }
                }
            }
        } else {
            for (var k = 0u; k < span; k = k + 1u) {
                let j = j_first + i32(k);
                let e = row + u32(clamp(j, 0, last));
                seg[k] = select(0.0, ib_dy[e / 4u][e % 4u], j >= 0 && j <= last);
            }
        }
        for (var v = 0u; v < KW; v = v + 1u) {
            let wt = ib_weight((ch * KH + u) * KW + v);
            for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
                let tj = i32(jj + PAD) - i32(v * DIL);
                if (tj % s == 0) {
                    acc[jj] = fma(wt, seg[u32(floor_div(tj, s) - lo)], acc[jj]);
                }
            }
        }
    }
    let out = (plane * p.h + y) * p.w + x0;
    if (VEC4_OUT) {
        ib_dx[out / 4u] = vec4<f32>(acc[0], acc[1], acc[2], acc[3]);
        ib_dx[out / 4u + 1u] = vec4<f32>(acc[4], acc[5], acc[6], acc[7]);
        return;
    }
    for (var jj = 0u; jj < OUTS; jj = jj + 1u) {
        if (x0 + jj < p.w) {
            let e = out + jj;
            ib_dx[e / 4u][e % 4u] = acc[jj];
        }
    }
}

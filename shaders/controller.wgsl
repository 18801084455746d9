// The ENAS controller fused (melodyguan/enas micro_controller.py, general_controller.py): a
// whole rollout in one workgroup, its REINFORCE backward pass (backpropagation through time)
// in one workgroup per sample, and the weight gradients as fixed-order sums over samples and
// steps. The control flow of a search space is a program of per-step records (see
// ops/controller.rs `Step`), so one loop serves the macro and the micro space.
//
// Weights, packed [total] at the offsets of Params: w_ih, w_hh [4H, H] (gate order i, f, g, o),
// g_emb [H], w_emb [K, H], w_soft [K, H], b_soft [K] (micro), w_attn_1, w_attn_2 [H, H], v_attn [H].
//
// What a rollout saves for the backward pass, per sample [save_len]:
//   steps:  [T, 8H]  per step x, h, c, i, f, g, o (the gate activations), q = w_attn_2 h
//   raw:    [D, W]   the logits of every decision row before shaping
//   choice: [D]      the decisions, as f32 values
//   keys:   [A, H]   w_attn_1 h of every anchor (the attention's keys)
// What the backward pass leaves for the gradients, per sample [factor_len]:
//   steps:  [T, 6H]  per step d(gate pre-activations) [4H], dx [H], dq [H]
//   dl:     [D, W]   d(raw logits)
//   dk:     [A, H]   d(keys)
//   dha:    [A, H]   d(anchor hidden states) through the inputs they fed
//   dv:     [H]      d(v_attn) of this sample

struct Params {
    hidden: u32,      // H
    num_ops: u32,     // K
    steps: u32,       // T, LSTM steps of a rollout
    rows: u32,        // D, decision rows (= the flat encoding's length)
    width: u32,       // W, the widest row (rows are padded to it)
    anchors: u32,     // A, anchors of a rollout (attention targets)
    force: u32,       // 1: `draws` holds the decisions (teacher forcing); 0: uniforms to draw with
    samples: u32,     // backward: samples in the batch
    w_ih: u32,
    w_hh: u32,
    g_emb: u32,
    w_emb: u32,
    w_soft: u32,
    b_soft: u32,      // NONE when the space has no operation bias (macro)
    w_attn_1: u32,
    w_attn_2: u32,
    v_attn: u32,
    total: u32,       // weights in all
    save_len: u32,
    factor_len: u32,
    inv_temperature: f32,  // 1 without a temperature
    log_target_0: f32,     // log(1 - skip_target)
    log_target_1: f32,     // log(skip_target)
    _pad0: u32,
    b_soft_no_learn: array<vec4<f32>, 2>, // added to the micro normal cell's operation logits
}

@group(0) @binding(0) var<uniform> p: Params;

const NONE: u32 = 0xffffffffu;
const STEP_WORDS: u32 = 12u;
const ANCHOR_WORDS: u32 = 2u;
// Threads of the rollout and backward workgroups: the smallest of 64, 128, 256 that gives each
// hidden unit its own thread (ops/controller.rs `threads`). On lavapipe a workgroup runs on one
// CPU thread, 8 invocations at a time, so idle invocations and every barrier cost time: 64 for
// the reference's H = 64 made the rollout 1.4x faster than 256.
override WG: u32 = 256u;
const MAX_HIDDEN: u32 = 256u;
const MAX_WIDTH: u32 = 256u;

// Input kinds (what the step's LSTM input x is).
const IN_G_EMB: u32 = 0u;   // g_emb
const IN_W_EMB: u32 = 1u;   // w_emb[choice of row in_row]
const IN_ANCHOR: u32 = 2u;  // the hidden state of anchor in_base + choice of row in_row (zeros for a zero anchor)
const IN_SKIPS: u32 = 3u;   // sum_j b_j h(anchor in_base + j) / (1 + sum b), b_j the choices of rows in_row + j
// Decision kinds (what follows the step).
const DEC_NONE: u32 = 0u;
const DEC_OP: u32 = 1u;     // one row of K: w_soft h (+ b_soft)
const DEC_ATTN: u32 = 2u;   // one row over `count` anchors: v . tanh(key_j + w_attn_2 h)
const DEC_SKIP: u32 = 3u;   // `count` rows of 2: [-a_j, a_j], a_j the attention score of anchor j
// Flags.
const F_BIAS: u32 = 1u;     // add b_soft
const F_NO_LEARN: u32 = 2u; // add b_soft_no_learn after shaping
const F_TANH: u32 = 4u;     // tanh_constant * tanh(.) with the step's constant

// The program: T step records of STEP_WORDS, then A anchor records (its step, 1 if its value is
// zeros).
// `weights` is binding 2 of rollout and backward; gradients, which reads no weight, binds its
// saves there.
@group(0) @binding(1) var<storage, read> program: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;

struct Step {
    in_kind: u32,
    in_row: u32,
    in_base: u32,
    in_count: u32,
    kind: u32,
    row: u32,
    base: u32,
    count: u32,
    flags: u32,
    tanh_c: f32,
    push: u32,   // the anchor this step's h becomes, or NONE
}

fn step_at(t: u32) -> Step {
    let o = t * STEP_WORDS;
    return Step(program[o], program[o + 1u], program[o + 2u], program[o + 3u], program[o + 4u], program[o + 5u],
        program[o + 6u], program[o + 7u], program[o + 8u], bitcast<f32>(program[o + 9u]), program[o + 10u]);
}

fn anchor_step(g: u32) -> u32 {
    return program[p.steps * STEP_WORDS + g * ANCHOR_WORDS];
}

fn anchor_is_zero(g: u32) -> bool {
    return program[p.steps * STEP_WORDS + g * ANCHOR_WORDS + 1u] == 1u;
}

// Offsets inside one sample's save.
fn sv_step(t: u32) -> u32 { return t * 8u * p.hidden; }
fn sv_raw() -> u32 { return p.steps * 8u * p.hidden; }
fn sv_choice() -> u32 { return sv_raw() + p.rows * p.width; }
fn sv_keys() -> u32 { return sv_choice() + p.rows; }
// Offsets inside one sample's factors.
fn fa_step(t: u32) -> u32 { return t * 6u * p.hidden; }
fn fa_dl() -> u32 { return p.steps * 6u * p.hidden; }
fn fa_dk() -> u32 { return fa_dl() + p.rows * p.width; }
fn fa_dha() -> u32 { return fa_dk() + p.anchors * p.hidden; }
fn fa_dv() -> u32 { return fa_dha() + p.anchors * p.hidden; }

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn b_no_learn(k: u32) -> f32 {
    return p.b_soft_no_learn[k / 4u][k % 4u];
}

// logits / temperature, then tanh_c * tanh(.) when the step asks for it (and b_soft_no_learn).
fn shape_logit(s: Step, l: f32, k: u32) -> f32 {
    var z = l * p.inv_temperature;
    if ((s.flags & F_TANH) != 0u) {
        z = s.tanh_c * tanh(z);
    }
    if ((s.flags & F_NO_LEARN) != 0u) {
        z = z + b_no_learn(k);
    }
    return z;
}

// d shaped / d raw at raw logit l.
fn shape_slope(s: Step, l: f32) -> f32 {
    if ((s.flags & F_TANH) != 0u) {
        let t = tanh(l * p.inv_temperature);
        return s.tanh_c * (1.0 - t * t) * p.inv_temperature;
    }
    return p.inv_temperature;
}

// ---------------------------------------------------------------------------------------------
// rollout: one architecture, sampled (from uniforms) or forced

@group(0) @binding(3) var<storage, read> draws: array<u32>;           // [D] f32 uniforms as bits, or u32 decisions
@group(0) @binding(4) var<storage, read_write> decisions: array<u32>; // [D]
@group(0) @binding(5) var<storage, read_write> logits_out: array<f32>; // [D, W] shaped, padded with 0
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;     // [4] -log p, entropy, skip penalty, 0
@group(0) @binding(7) var<storage, read_write> save: array<f32>;      // [save_len]

var<workgroup> h: array<f32, MAX_HIDDEN>;
var<workgroup> c: array<f32, MAX_HIDDEN>;
var<workgroup> x: array<f32, MAX_HIDDEN>;
var<workgroup> q: array<f32, MAX_HIDDEN>;
var<workgroup> lg: array<f32, MAX_WIDTH>;

// The choice of decision row r, made earlier in this rollout.
fn chosen(r: u32) -> u32 {
    return decisions[r];
}

// The LSTM input element k of step s.
fn input_value(s: Step, k: u32) -> f32 {
    let hd = p.hidden;
    switch s.in_kind {
        case IN_W_EMB: {
            return weights[p.w_emb + chosen(s.in_row) * hd + k];
        }
        case IN_ANCHOR: {
            let g = s.in_base + chosen(s.in_row);
            if (anchor_is_zero(g)) { return 0.0; }
            return save[sv_step(anchor_step(g)) + hd + k];
        }
        case IN_SKIPS: {
            var count = 0.0;
            for (var j = 0u; j < s.in_count; j++) {
                count += f32(chosen(s.in_row + j));
            }
            var acc = 0.0;
            for (var j = 0u; j < s.in_count; j++) {
                let w = f32(chosen(s.in_row + j)) / (1.0 + count);
                acc += w * save[sv_step(anchor_step(s.in_base + j)) + hd + k];
            }
            return acc;
        }
        default: {
            return weights[p.g_emb + k];
        }
    }
}

// Shapes decision row r (raw logits in lg[0..n], or the skip pair of lg[j]), draws or takes its
// choice, and returns (-log p(choice), entropy, KL(softmax(z / 2) || target)).
fn decide_row(s: Step, r: u32, n: u32, skip_j: u32) -> vec3<f32> {
    var z: array<f32, MAX_WIDTH>;
    let raw0 = sv_raw() + r * p.width;
    var m = -3.4e38;
    for (var k = 0u; k < n; k++) {
        var l: f32;
        if (skip_j == NONE) {
            l = lg[k];
        } else {
            // [-a, a]
            l = select(-lg[skip_j], lg[skip_j], k == 1u);
        }
        save[raw0 + k] = l;
        z[k] = shape_logit(s, l, k);
        m = max(m, z[k]);
    }
    var total = 0.0;
    for (var k = 0u; k < n; k++) {
        total += exp(z[k] - m);
    }
    var choice = n - 1u;
    if (p.force == 1u) {
        choice = draws[r];
    } else {
        // As sample.wgsl's categorical: the first k whose running sum passes u * total.
        let threshold = bitcast<f32>(draws[r]) * total;
        var acc = 0.0;
        for (var k = 0u; k < n; k++) {
            acc += exp(z[k] - m);
            if (threshold < acc) {
                choice = k;
                break;
            }
        }
    }
    let log_total = log(total);
    var entropy = 0.0;
    for (var k = 0u; k < n; k++) {
        let lp = z[k] - m - log_total;
        entropy -= exp(lp) * lp;
    }
    var kl = 0.0;
    if (skip_j != NONE) {
        // sigmoid([-a, a]) = softmax([-a, a] / 2)
        let m2 = max(z[0], z[1]) * 0.5;
        let t2 = log(exp(z[0] * 0.5 - m2) + exp(z[1] * 0.5 - m2));
        let lp0 = z[0] * 0.5 - m2 - t2;
        let lp1 = z[1] * 0.5 - m2 - t2;
        kl = exp(lp0) * (lp0 - p.log_target_0) + exp(lp1) * (lp1 - p.log_target_1);
    }
    for (var k = 0u; k < p.width; k++) {
        logits_out[r * p.width + k] = select(0.0, z[k], k < n);
    }
    decisions[r] = choice;
    save[sv_choice() + r] = f32(choice);
    return vec3<f32>(-(z[choice] - m - log_total), entropy, kl);
}

// weights[w .. w + H] . h.
fn dot_h(w: u32) -> f32 {
    var a = 0.0;
    for (var k = 0u; k < p.hidden; k++) {
        a = fma(weights[w + k], h[k], a);
    }
    return a;
}

// The whole rollout, one workgroup of WG >= H: thread j owns hidden unit j (x_j, the four gate
// rows of unit j, c_j, h_j, and row j of the attention query and key); decoder rows and
// attention scores spread over the threads; thread 0 shapes, draws and scores each decision
// row in order. Barriers per step: after x, after the gates have read h, after h, after the
// decoders, after the attention scores (attention steps), after the decision.
@compute @workgroup_size(WG)
fn rollout(@builtin(local_invocation_index) lid: u32) {
    let hd = p.hidden;
    let j = lid;
    let owns = j < hd;
    if (owns) {
        h[j] = 0.0;
        c[j] = 0.0;
    }
    var nll = 0.0;
    var entropy = 0.0;
    var kl_sum = 0.0;
    var skip_layers = 0.0;
    workgroupBarrier();
    for (var t = 0u; t < p.steps; t++) {
        let s = step_at(t);
        let st = sv_step(t);
        if (owns) {
            let v = input_value(s, j);
            x[j] = v;
            save[st + j] = v;
        }
        workgroupBarrier();
        // Unit j's gate rows r = j + m H (m = i, f, g, o): a_r = w_ih[r] . x + w_hh[r] . h,
        // each x_k and h_k read once for the four rows; g is tanh, the others sigmoid.
        var c1 = 0.0;
        var h1 = 0.0;
        if (owns) {
            let gate = hd * hd; // from a gate's rows to the next gate's
            let wi = p.w_ih + j * hd;
            let wh = p.w_hh + j * hd;
            var ai = 0.0;
            var af = 0.0;
            var ag = 0.0;
            var ao = 0.0;
            var bi = 0.0;
            var bf = 0.0;
            var bg = 0.0;
            var bo = 0.0;
            for (var k = 0u; k < hd; k++) {
                let xk = x[k];
                let hk = h[k];
                ai = fma(weights[wi + k], xk, ai);
                af = fma(weights[wi + gate + k], xk, af);
                ag = fma(weights[wi + 2u * gate + k], xk, ag);
                ao = fma(weights[wi + 3u * gate + k], xk, ao);
                bi = fma(weights[wh + k], hk, bi);
                bf = fma(weights[wh + gate + k], hk, bf);
                bg = fma(weights[wh + 2u * gate + k], hk, bg);
                bo = fma(weights[wh + 3u * gate + k], hk, bo);
            }
            let gi = sigmoid(ai + bi);
            let gf = sigmoid(af + bf);
            let gg = tanh(ag + bg);
            let go = sigmoid(ao + bo);
            save[st + 3u * hd + j] = gi;
            save[st + 4u * hd + j] = gf;
            save[st + 5u * hd + j] = gg;
            save[st + 6u * hd + j] = go;
            c1 = gf * c[j] + gi * gg;
            h1 = go * tanh(c1);
        }
        workgroupBarrier();
        if (owns) {
            c[j] = c1;
            h[j] = h1;
            save[st + hd + j] = h1;
            save[st + 2u * hd + j] = c1;
        }
        workgroupBarrier();

        // Decoders of h_t: the operation logits; the attention query; the key when h_t becomes
        // an anchor (read only by later steps, after this step's last barrier).
        let attend = s.kind == DEC_ATTN || s.kind == DEC_SKIP;
        if (s.kind == DEC_OP) {
            for (var o = lid; o < p.num_ops; o += WG) {
                var a = dot_h(p.w_soft + o * hd);
                if ((s.flags & F_BIAS) != 0u) {
                    a += weights[p.b_soft + o];
                }
                lg[o] = a;
            }
        }
        if (owns && attend) {
            let a = dot_h(p.w_attn_2 + j * hd);
            q[j] = a;
            save[st + 7u * hd + j] = a;
        }
        if (owns && s.push != NONE) {
            save[sv_keys() + s.push * hd + j] = dot_h(p.w_attn_1 + j * hd);
        }
        workgroupBarrier();
        if (attend) {
            for (var i = lid; i < s.count; i += WG) {
                let key = sv_keys() + (s.base + i) * hd;
                var a = 0.0;
                for (var k = 0u; k < hd; k++) {
                    a = fma(weights[p.v_attn + k], tanh(save[key + k] + q[k]), a);
                }
                lg[i] = a;
            }
            workgroupBarrier();
        }
        if (lid == 0u) {
            if (s.kind == DEC_OP) {
                let d = decide_row(s, s.row, p.num_ops, NONE);
                nll += d.x;
                entropy += d.y;
            } else if (s.kind == DEC_ATTN) {
                let d = decide_row(s, s.row, s.count, NONE);
                nll += d.x;
                entropy += d.y;
            } else if (s.kind == DEC_SKIP) {
                var kl = 0.0;
                for (var i = 0u; i < s.count; i++) {
                    let d = decide_row(s, s.row + i, 2u, i);
                    nll += d.x;
                    entropy += d.y;
                    kl += d.z;
                }
                kl_sum += kl;
                skip_layers += 1.0;
            }
        }
        storageBarrier();
        workgroupBarrier();
    }
    if (lid == 0u) {
        stats[0] = nll;
        stats[1] = entropy;
        // The mean over the layers with skips (the reference's reduce_mean).
        stats[2] = select(0.0, kl_sum / max(skip_layers, 1.0), skip_layers > 0.0);
        stats[3] = 0.0;
    }
}

// ---------------------------------------------------------------------------------------------
// backward: d loss / d(everything of a rollout) for each sample, loss = adv * (-log p) + kl_coef
// * skip penalty (the per-sample coefficients [samples, 2]); the entropy is not differentiated.

@group(0) @binding(3) var<storage, read> bw_saves: array<f32>;              // [samples, save_len]
@group(0) @binding(4) var<storage, read> bw_coefs: array<f32>;              // [samples, 2]
@group(0) @binding(5) var<storage, read_write> bw_factors: array<f32>;      // [samples, factor_len]

var<workgroup> dh: array<f32, MAX_HIDDEN>;
var<workgroup> dhn: array<f32, MAX_HIDDEN>;
var<workgroup> dc: array<f32, MAX_HIDDEN>;
var<workgroup> dq: array<f32, MAX_HIDDEN>;
var<workgroup> ga: array<f32, MAX_WIDTH>;

// d loss / d raw logits of row r (width n; a skip row when skip): written to the factors.
fn row_backward(s: Step, sv: u32, fa: u32, r: u32, n: u32, skip: bool, adv: f32, kl_coef: f32) {
    var z: array<f32, MAX_WIDTH>;
    let raw0 = sv + sv_raw() + r * p.width;
    var m = -3.4e38;
    for (var k = 0u; k < n; k++) {
        z[k] = shape_logit(s, bw_saves[raw0 + k], k);
        m = max(m, z[k]);
    }
    var total = 0.0;
    for (var k = 0u; k < n; k++) {
        total += exp(z[k] - m);
    }
    let choice = u32(bw_saves[sv + sv_choice() + r]);
    var gp = array<f32, 2>(0.0, 0.0);
    if (skip) {
        // KL(P || t), P = softmax(z / 2): dKL/dz_k = P_k (g_k - <P, g>) / 2, g_k = log P_k - log t_k
        let m2 = max(z[0], z[1]) * 0.5;
        let t2 = log(exp(z[0] * 0.5 - m2) + exp(z[1] * 0.5 - m2));
        let lp0 = z[0] * 0.5 - m2 - t2;
        let lp1 = z[1] * 0.5 - m2 - t2;
        let g0 = lp0 - p.log_target_0;
        let g1 = lp1 - p.log_target_1;
        let mean = exp(lp0) * g0 + exp(lp1) * g1;
        gp[0] = kl_coef * 0.5 * exp(lp0) * (g0 - mean);
        gp[1] = kl_coef * 0.5 * exp(lp1) * (g1 - mean);
    }
    for (var k = 0u; k < n; k++) {
        // d(-log p(choice)) / dz_k = softmax_k - [k == choice]
        var dz = adv * (exp(z[k] - m) / total - select(0.0, 1.0, k == choice));
        if (skip) {
            dz += gp[k];
        }
        bw_factors[fa + fa_dl() + r * p.width + k] = dz * shape_slope(s, bw_saves[raw0 + k]);
    }
}

// Backpropagation through one sample's rollout (one workgroup of WG per sample), last
// step first: each step's dh from the next step, its decision and the anchor it became; the
// LSTM's gate gradients over H units, then dx and the next dh as column sums over 4H rows.
@compute @workgroup_size(WG)
fn backward(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let smp = wid.x;
    let hd = p.hidden;
    let sv = smp * p.save_len;
    let fa = smp * p.factor_len;
    let adv = bw_coefs[2u * smp];
    let kl_coef = bw_coefs[2u * smp + 1u];
    for (var k = lid; k < hd; k += WG) {
        dhn[k] = 0.0;
        dc[k] = 0.0;
    }
    for (var e = lid; e < 2u * p.anchors * hd + hd; e += WG) {
        bw_factors[fa + fa_dk() + e] = 0.0; // dk, dha, dv
    }
    storageBarrier();
    workgroupBarrier();
    for (var tt = 0u; tt < p.steps; tt++) {
        let t = p.steps - 1u - tt;
        let s = step_at(t);
        let st = sv + sv_step(t);
        let ft = fa + fa_step(t);
        // dh_t: from step t + 1, and from the anchor this step became (its key and its uses as
        // an input, complete now: only later steps read an anchor).
        for (var k = lid; k < hd; k += WG) {
            var d = dhn[k];
            if (s.push != NONE) {
                let dk0 = fa + fa_dk() + s.push * hd;
                var a = 0.0;
                for (var i = 0u; i < hd; i++) {
                    a = fma(weights[p.w_attn_1 + i * hd + k], bw_factors[dk0 + i], a);
                }
                d += bw_factors[fa + fa_dha() + s.push * hd + k] + a;
            }
            dh[k] = d;
        }
        if (lid == 0u) {
            if (s.kind == DEC_OP) {
                row_backward(s, sv, fa, s.row, p.num_ops, false, adv, kl_coef);
            } else if (s.kind == DEC_ATTN) {
                row_backward(s, sv, fa, s.row, s.count, false, adv, kl_coef);
                for (var j = 0u; j < s.count; j++) {
                    ga[j] = bw_factors[fa + fa_dl() + s.row * p.width + j];
                }
            } else if (s.kind == DEC_SKIP) {
                for (var j = 0u; j < s.count; j++) {
                    row_backward(s, sv, fa, s.row + j, 2u, true, adv, kl_coef);
                    let dl0 = fa + fa_dl() + (s.row + j) * p.width;
                    // raw row [-a, a]
                    ga[j] = bw_factors[dl0 + 1u] - bw_factors[dl0];
                }
            }
        }
        storageBarrier();
        workgroupBarrier();
        if (s.kind == DEC_OP) {
            for (var k = lid; k < hd; k += WG) {
                var a = 0.0;
                for (var o = 0u; o < p.num_ops; o++) {
                    a = fma(weights[p.w_soft + o * hd + k], bw_factors[fa + fa_dl() + s.row * p.width + o], a);
                }
                dh[k] += a;
            }
        } else if (s.kind != DEC_NONE) {
            // score_j = v . tanh(key_j + q): per element k of q, keys and v
            for (var k = lid; k < hd; k += WG) {
                let qk = bw_saves[st + 7u * hd + k];
                let vk = weights[p.v_attn + k];
                var dqk = 0.0;
                var dvk = 0.0;
                for (var j = 0u; j < s.count; j++) {
                    let g = s.base + j;
                    let th = tanh(bw_saves[sv + sv_keys() + g * hd + k] + qk);
                    let d = ga[j] * vk * (1.0 - th * th);
                    bw_factors[fa + fa_dk() + g * hd + k] += d;
                    dvk = fma(ga[j], th, dvk);
                    dqk += d;
                }
                bw_factors[fa + fa_dv() + k] += dvk;
                bw_factors[ft + 5u * hd + k] = dqk;
                dq[k] = dqk;
            }
            workgroupBarrier();
            for (var k = lid; k < hd; k += WG) {
                var a = 0.0;
                for (var i = 0u; i < hd; i++) {
                    a = fma(weights[p.w_attn_2 + i * hd + k], dq[i], a);
                }
                dh[k] += a;
            }
        }
        workgroupBarrier();
        // The cell: c_t = f c_{t-1} + i g, h_t = o tanh(c_t).
        for (var j = lid; j < hd; j += WG) {
            let gi = bw_saves[st + 3u * hd + j];
            let gf = bw_saves[st + 4u * hd + j];
            let gg = bw_saves[st + 5u * hd + j];
            let go = bw_saves[st + 6u * hd + j];
            let c1 = bw_saves[st + 2u * hd + j];
            var c0 = 0.0;
            if (t > 0u) {
                c0 = bw_saves[st - 8u * hd + 2u * hd + j];
            }
            let tc = tanh(c1);
            let dhj = dh[j];
            let dcj = dc[j] + dhj * go * (1.0 - tc * tc);
            bw_factors[ft + j] = dcj * gg * gi * (1.0 - gi);
            bw_factors[ft + hd + j] = dcj * c0 * gf * (1.0 - gf);
            bw_factors[ft + 2u * hd + j] = dcj * gi * (1.0 - gg * gg);
            bw_factors[ft + 3u * hd + j] = dhj * tc * go * (1.0 - go);
            dc[j] = dcj * gf;
        }
        storageBarrier();
        workgroupBarrier();
        // dx = w_ih^T da, dh_{t-1} = w_hh^T da; dx then flows to the anchor(s) it came from.
        for (var k = lid; k < hd; k += WG) {
            var a = 0.0;
            var b = 0.0;
            for (var r = 0u; r < 4u * hd; r++) {
                let dar = bw_factors[ft + r];
                a = fma(weights[p.w_ih + r * hd + k], dar, a);
                b = fma(weights[p.w_hh + r * hd + k], dar, b);
            }
            bw_factors[ft + 4u * hd + k] = a;
            dhn[k] = b;
            if (s.in_kind == IN_ANCHOR) {
                let g = s.in_base + u32(bw_saves[sv + sv_choice() + s.in_row]);
                if (!anchor_is_zero(g)) {
                    bw_factors[fa + fa_dha() + g * hd + k] += a;
                }
            } else if (s.in_kind == IN_SKIPS) {
                var count = 0.0;
                for (var j = 0u; j < s.in_count; j++) {
                    count += bw_saves[sv + sv_choice() + s.in_row + j];
                }
                for (var j = 0u; j < s.in_count; j++) {
                    let w = bw_saves[sv + sv_choice() + s.in_row + j] / (1.0 + count);
                    bw_factors[fa + fa_dha() + (s.in_base + j) * hd + k] += w * a;
                }
            }
        }
        storageBarrier();
        workgroupBarrier();
    }
}

// ---------------------------------------------------------------------------------------------
// gradients: d loss / d weights, every element a sum over samples then steps (fixed order)

@group(0) @binding(2) var<storage, read> gr_saves: array<f32>;          // [samples, save_len]
@group(0) @binding(3) var<storage, read> gr_factors: array<f32>;        // [samples, factor_len]
@group(0) @binding(4) var<storage, read_write> gr_grad: array<f32>;     // [total]

// The first H * H threads each take column k of the four gate rows r = u + m H (m = i, f, g,
// o) of unit u in both LSTM matrices: w_ih[r, k] = sum da_t[r] x_t[k], w_hh[r, k] = sum
// da_t[r] h_{t-1}[k], 8 weights from 6 loads per step. Every other thread owns one weight from
// g_emb on: an outer-product element (sum over samples and steps of a saved gradient times a
// saved activation) or a sum of saved gradients. Each weight sums over samples, then steps.
@compute @workgroup_size(256)
fn gradients(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let hd = p.hidden;
    let lstm_threads = hd * hd;
    let thread = index(gid, nwg);
    if (thread < lstm_threads) {
        let u = thread / hd;
        let k = thread % hd;
        var acc_ih = vec4<f32>(0.0); // rows u, u + H, u + 2H, u + 3H
        var acc_hh = vec4<f32>(0.0);
        for (var n = 0u; n < p.samples; n++) {
            let sv = n * p.save_len;
            let fa = n * p.factor_len;
            for (var t = 0u; t < p.steps; t++) {
                let f = fa + fa_step(t) + u;
                let da = vec4<f32>(gr_factors[f], gr_factors[f + hd], gr_factors[f + 2u * hd], gr_factors[f + 3u * hd]);
                acc_ih = fma(da, vec4<f32>(gr_saves[sv + sv_step(t) + k]), acc_ih);
                if (t > 0u) {
                    acc_hh = fma(da, vec4<f32>(gr_saves[sv + sv_step(t - 1u) + hd + k]), acc_hh);
                }
            }
        }
        for (var m = 0u; m < 4u; m++) {
            let e = (m * hd + u) * hd + k;
            gr_grad[p.w_ih + e] = acc_ih[m];
            gr_grad[p.w_hh + e] = acc_hh[m];
        }
        return;
    }
    let e = thread - lstm_threads + p.g_emb;
    if (e >= p.total) { return; }
    var acc = 0.0;
    if (e < p.w_emb) {
        // g_emb [H]: dx of the steps it fed
        let k = e - p.g_emb;
        for (var n = 0u; n < p.samples; n++) {
            for (var t = 0u; t < p.steps; t++) {
                if (program[t * STEP_WORDS] == IN_G_EMB) {
                    acc += gr_factors[n * p.factor_len + fa_step(t) + 4u * hd + k];
                }
            }
        }
    } else if (e < p.w_soft) {
        // w_emb [K, H]: dx of the steps fed row o
        let o = (e - p.w_emb) / hd;
        let k = (e - p.w_emb) % hd;
        for (var n = 0u; n < p.samples; n++) {
            for (var t = 0u; t < p.steps; t++) {
                let s = step_at(t);
                if (s.in_kind == IN_W_EMB && u32(gr_saves[n * p.save_len + sv_choice() + s.in_row]) == o) {
                    acc += gr_factors[n * p.factor_len + fa_step(t) + 4u * hd + k];
                }
            }
        }
    } else if (e < p.w_soft + p.num_ops * hd) {
        // w_soft [K, H]: dl_t[o] h_t[k] over operation steps
        let o = (e - p.w_soft) / hd;
        let k = (e - p.w_soft) % hd;
        for (var n = 0u; n < p.samples; n++) {
            for (var t = 0u; t < p.steps; t++) {
                let s = step_at(t);
                if (s.kind == DEC_OP) {
                    let dl = gr_factors[n * p.factor_len + fa_dl() + s.row * p.width + o];
                    acc = fma(dl, gr_saves[n * p.save_len + sv_step(t) + hd + k], acc);
                }
            }
        }
    } else if (e < p.w_attn_1) {
        // b_soft [K]
        let o = e - p.b_soft;
        for (var n = 0u; n < p.samples; n++) {
            for (var t = 0u; t < p.steps; t++) {
                let s = step_at(t);
                if (s.kind == DEC_OP && (s.flags & F_BIAS) != 0u) {
                    acc += gr_factors[n * p.factor_len + fa_dl() + s.row * p.width + o];
                }
            }
        }
    } else if (e < p.w_attn_2) {
        // w_attn_1 [H, H]: dk_g[i] h(anchor g)[k]
        let i = (e - p.w_attn_1) / hd;
        let k = (e - p.w_attn_1) % hd;
        for (var n = 0u; n < p.samples; n++) {
            for (var g = 0u; g < p.anchors; g++) {
                let dk = gr_factors[n * p.factor_len + fa_dk() + g * hd + i];
                acc = fma(dk, gr_saves[n * p.save_len + sv_step(anchor_step(g)) + hd + k], acc);
            }
        }
    } else if (e < p.v_attn) {
        // w_attn_2 [H, H]: dq_t[i] h_t[k] over attention steps
        let i = (e - p.w_attn_2) / hd;
        let k = (e - p.w_attn_2) % hd;
        for (var n = 0u; n < p.samples; n++) {
            for (var t = 0u; t < p.steps; t++) {
                let kind = program[t * STEP_WORDS + 4u];
                if (kind == DEC_ATTN || kind == DEC_SKIP) {
                    let dqi = gr_factors[n * p.factor_len + fa_step(t) + 5u * hd + i];
                    acc = fma(dqi, gr_saves[n * p.save_len + sv_step(t) + hd + k], acc);
                }
            }
        }
    } else {
        // v_attn [H]
        let k = e - p.v_attn;
        for (var n = 0u; n < p.samples; n++) {
            acc += gr_factors[n * p.factor_len + fa_dv() + k];
        }
    }
    gr_grad[e] = acc;
}

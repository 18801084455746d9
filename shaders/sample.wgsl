// Sampling on the GPU for the ENAS controller: categorical draws by inverse CDF from uniforms
// uploaded beforehand, so a sampled decision feeds the next controller step without a readback.

struct Params {
    rows: u32,    // independent draws (rows of the logits)
    k: u32,       // categories per row
    offset: u32,  // position of row 0 in `uniforms` and `decisions`
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// categorical: idx[r] = the first j with u * sum_i exp(x_i - m) < sum_{i<=j} exp(x_i - m)
@group(0) @binding(1) var<storage, read> ca_logits: array<f32>;
@group(0) @binding(2) var<storage, read> ca_uniforms: array<f32>;
@group(0) @binding(3) var<storage, read_write> ca_idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> ca_decisions: array<u32>;

// One draw from softmax(logits[r]) per row r: one thread per row, a sequential pass over its k
// logits (k is a handful of choices), so the draw is exact and deterministic. The choice goes
// to idx[r] (read by the next step) and to decisions[offset + r] (read back once at the end).
@compute @workgroup_size(256)
fn categorical(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = index(gid, nwg);
    if (r >= p.rows) { return; }
    let base = r * p.k;
    var m = ca_logits[base];
    for (var j = 1u; j < p.k; j++) {
        m = max(m, ca_logits[base + j]);
    }
    var total = 0.0;
    for (var j = 0u; j < p.k; j++) {
        total += exp(ca_logits[base + j] - m);
    }
    let threshold = ca_uniforms[p.offset + r] * total;
    // Rounding can leave the running sum just below `threshold` at the end: the last category.
    var choice = p.k - 1u;
    var acc = 0.0;
    for (var j = 0u; j < p.k; j++) {
        acc += exp(ca_logits[base + j] - m);
        if (threshold < acc) {
            choice = j;
            break;
        }
    }
    ca_idx[r] = choice;
    ca_decisions[p.offset + r] = choice;
}

// mean_weights: w[j] = b[j] / (1 + sum_i b[i]) for 0/1 choices b (ENAS macro: the next
// controller input averages the hidden states of the layers a skip was drawn from)
@group(0) @binding(1) var<storage, read> mw_bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> mw_w: array<f32>;

// w[j] from the rows bits: one thread per j, each summing all rows (rows < a few dozen).
@compute @workgroup_size(256)
fn mean_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = index(gid, nwg);
    if (j >= p.rows) { return; }
    var count = 0.0;
    for (var i = 0u; i < p.rows; i++) {
        count += f32(mw_bits[i]);
    }
    mw_w[j] = f32(mw_bits[j]) / (1.0 + count);
}

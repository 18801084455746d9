//! The ENAS controller fused (`shaders/controller.wgsl`): a whole rollout in one dispatch of one
//! workgroup, the REINFORCE backward pass through a batch of rollouts in one more (a workgroup
//! per sample), and the weight gradients in a third (a thread per column of a unit's four gate
//! rows in both LSTM matrices, then one per other weight; each weight a sum over samples and
//! steps in a fixed order). The caller (`enas::controller`) describes its search
//! space as a [`Program`] of per-step records; these kernels only follow it.
//!
//! Nothing here is recorded on the tape: the backward pass is this family's own, written for
//! the one loss the controller has (advantage times -log p, plus the weighted skip penalty).

use bytemuck::{Pod, Zeroable};

use super::dims;
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch, Gpu};
use crate::tensor::{DType, Tensor};

/// Marks an absent index in a step record (no anchor pushed, no operation bias).
pub const NONE: u32 = u32::MAX;
/// Largest LSTM size: one hidden unit per thread of the rollout's and backward's workgroup (64,
/// 128 or 256 threads, the fewest that give every unit its own; the kernels keep
/// four `[H]` vectors in workgroup memory, 5 KiB with a row, within WebGPU's 16 KiB). Past 256,
/// with two units on some threads, the updates went wrong on lavapipe (g_emb's and w_ih's
/// gradients through the first step, H = 290 and 300; the rollouts themselves were right), and
/// a 64-thread workgroup with H = 256 (four units a thread) drew garbage decisions, for reasons
/// not yet found: refused until they are.
pub const MAX_HIDDEN: usize = 256;
/// Widest decision row (operations, or anchors an attention chooses from).
pub const MAX_WIDTH: usize = 256;
/// Largest operation count (`b_soft_no_learn` travels in the uniform block).
pub const MAX_OPS: usize = 8;
const STEP_WORDS: usize = 12;

/// What an LSTM step reads as its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The learned `g_emb`.
    GEmb,
    /// `w_emb[choice of row]`: the embedding of an operation just chosen.
    OpEmbedding {
        /// Decision row whose choice picks the embedding.
        row: usize,
    },
    /// The hidden state of anchor `base + choice of row` (zeros for a zero anchor): a micro
    /// node's chosen input.
    Anchor {
        /// Decision row whose choice picks the anchor.
        row: usize,
        /// The first anchor that row chose among.
        base: usize,
    },
    /// `sum_j b_j h(anchor base + j) / (1 + sum b)` over `count` skip bits b_j at rows
    /// `row..row + count`: the macro layer's skip average.
    Skips {
        /// Row of the first skip bit.
        row: usize,
        /// The anchor of the first bit.
        base: usize,
        /// Bits (earlier layers).
        count: usize,
    },
}

/// What follows an LSTM step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing (the micro node's last step, the macro layer 0's second).
    None,
    /// One row of K operation logits `w_soft h (+ b_soft)`.
    Op {
        /// Its row (flat position).
        row: usize,
        /// Add `b_soft` (micro).
        bias: bool,
        /// Add `b_soft_no_learn` after shaping (micro normal cell).
        no_learn: bool,
    },
    /// One row over `count` anchors from `base`: `v . tanh(key_j + w_attn_2 h)`.
    Attention {
        /// Its row.
        row: usize,
        /// First anchor.
        base: usize,
        /// Anchors chosen among.
        count: usize,
    },
    /// `count` rows of two, `[-a_j, a_j]` for the attention score a_j of anchor `base + j`.
    Skips {
        /// Row of the first bit.
        row: usize,
        /// First anchor.
        base: usize,
        /// Bits.
        count: usize,
    },
}

/// One LSTM step of a rollout: its input, its decision, its logit shaping, and whether its
/// hidden state becomes an anchor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The step's input.
    pub input: Input,
    /// The decision after it.
    pub decision: Decision,
    /// `tanh_constant * tanh(.)` for its logits, when set.
    pub tanh_constant: Option<f32>,
    /// The anchor its hidden state becomes (after the decision).
    pub push: Option<usize>,
}

/// A search space's rollout as data: the steps, and for each anchor the step whose hidden state
/// it is and whether its value (as an input) is zeros (the micro cell inputs).
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// In rollout order.
    pub steps: Vec<Step>,
    /// (step, zero value) of every anchor, by index.
    pub anchors: Vec<(usize, bool)>,
    /// Width of every decision row, by row (flat position).
    pub widths: Vec<usize>,
}

impl Program {
    /// Decision rows (D).
    pub fn rows(&self) -> usize {
        self.widths.len()
    }

    /// The widest row (W), at least 1.
    pub fn width(&self) -> usize {
        self.widths.iter().copied().max().unwrap_or(1).max(1)
    }

    /// The records the shader reads: steps then anchors, as u32 words.
    fn words(&self) -> Vec<u32> {
        let mut w = Vec::with_capacity(self.steps.len() * STEP_WORDS + 2 * self.anchors.len());
        for s in &self.steps {
            let (in_kind, in_row, in_base, in_count) = match s.input {
                Input::GEmb => (0, 0, 0, 0),
                Input::OpEmbedding { row } => (1, row, 0, 0),
                Input::Anchor { row, base } => (2, row, base, 0),
                Input::Skips { row, base, count } => (3, row, base, count),
            };
            let (kind, row, base, count, mut flags) = match s.decision {
                Decision::None => (0, 0, 0, 0, 0),
                Decision::Op { row, bias, no_learn } => (1, row, 0, 0, bias as u32 | (no_learn as u32) << 1),
                Decision::Attention { row, base, count } => (2, row, base, count, 0),
                Decision::Skips { row, base, count } => (3, row, base, count, 0),
            };
            if s.tanh_constant.is_some() {
                flags |= 4;
            }
            w.extend([in_kind, in_row as u32, in_base as u32, in_count as u32]);
            w.extend([kind, row as u32, base as u32, count as u32, flags]);
            w.push(s.tanh_constant.unwrap_or(0.0).to_bits());
            w.push(s.push.map_or(NONE, |a| a as u32));
            w.push(0);
        }
        for &(step, zero) in &self.anchors {
            w.extend([step as u32, zero as u32]);
        }
        w
    }
}

/// Where each weight sits in the packed weight buffer, and the shaping constants: everything a
/// controller's kernels share.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// LSTM size H.
    pub hidden: usize,
    /// Operations K.
    pub num_ops: usize,
    /// Whether the packed weights hold `b_soft` `[K]` (micro).
    pub b_soft: bool,
    /// `1 / temperature`, 1 without one.
    pub inv_temperature: f32,
    /// The macro skip penalty's target probability of a skip.
    pub skip_target: f32,
    /// Added to the micro normal cell's operation logits (zeros elsewhere), `[K]`.
    pub b_soft_no_learn: Vec<f32>,
}

impl Layout {
    /// Offsets of w_ih, w_hh, g_emb, w_emb, w_soft, b_soft (NONE when absent), w_attn_1,
    /// w_attn_2, v_attn, and the total: the order of `enas::Controller`'s parameters.
    pub fn offsets(&self) -> [usize; 10] {
        let (h, k) = (self.hidden, self.num_ops);
        let w_hh = 4 * h * h;
        let g_emb = w_hh + 4 * h * h;
        let w_emb = g_emb + h;
        let w_soft = w_emb + k * h;
        let after_soft = w_soft + k * h;
        let (b_soft, w_attn_1) = if self.b_soft { (after_soft, after_soft + k) } else { (NONE as usize, after_soft) };
        let w_attn_2 = w_attn_1 + h * h;
        let v_attn = w_attn_2 + h * h;
        [0, w_hh, g_emb, w_emb, w_soft, b_soft, w_attn_1, w_attn_2, v_attn, v_attn + h]
    }

    /// Weights in all.
    pub fn total(&self) -> usize {
        self.offsets()[9]
    }
}

/// Floats one rollout saves for its backward pass (see the shader's header).
pub fn save_len(layout: &Layout, program: &Program) -> usize {
    let h = layout.hidden;
    program.steps.len() * 8 * h + program.rows() * program.width() + program.rows() + program.anchors.len() * h
}

fn factor_len(layout: &Layout, program: &Program) -> usize {
    let h = layout.hidden;
    program.steps.len() * 6 * h + program.rows() * program.width() + 2 * program.anchors.len() * h + h
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    hidden: u32,
    num_ops: u32,
    steps: u32,
    rows: u32,
    width: u32,
    anchors: u32,
    force: u32,
    samples: u32,
    w_ih: u32,
    w_hh: u32,
    g_emb: u32,
    w_emb: u32,
    w_soft: u32,
    b_soft: u32,
    w_attn_1: u32,
    w_attn_2: u32,
    v_attn: u32,
    total: u32,
    save_len: u32,
    factor_len: u32,
    inv_temperature: f32,
    log_target_0: f32,
    log_target_1: f32,
    _pad0: u32,
    b_soft_no_learn: [f32; MAX_OPS],
}

/// A controller's program and layout, checked and uploaded once.
pub struct Kernels {
    layout: Layout,
    program: Program,
    words: Tensor,
}

/// A rollout's outputs on the GPU.
pub struct Rollout {
    /// The decisions, `[D]` u32.
    pub decisions: Tensor,
    /// The shaped logits every decision was drawn from, `[D, W]`, rows padded with zeros.
    pub logits: Tensor,
    /// [-log p(decisions), entropy, skip penalty, 0]: `[4]`.
    pub stats: Tensor,
    /// What the backward pass needs, `[save_len]`.
    pub saved: Tensor,
}

impl Kernels {
    /// Checks the program against the layout (every index in range, sizes within the
    /// kernels' limits) and uploads it.
    pub fn new(gpu: &Gpu, layout: Layout, program: Program) -> Result<Kernels> {
        const OP: &str = "controller";
        let bad = |m: String| Err(Error::shape(OP, m));
        let (d, a) = (program.rows(), program.anchors.len());
        if layout.hidden == 0 || layout.hidden > MAX_HIDDEN {
            return bad(format!("hidden {} outside 1..={MAX_HIDDEN}", layout.hidden));
        }
        if layout.num_ops == 0 || layout.num_ops > MAX_OPS || layout.b_soft_no_learn.len() != layout.num_ops {
            return bad(format!("{} operations (1..={MAX_OPS}, with as many b_soft_no_learn)", layout.num_ops));
        }
        if program.steps.is_empty() || program.width() > MAX_WIDTH {
            return bad(format!(
                "{} steps, rows of up to {} (at most {MAX_WIDTH})",
                program.steps.len(),
                program.width()
            ));
        }
        for (i, s) in program.steps.iter().enumerate() {
            let ok_rows =
                |row: usize, n: usize, w: usize| row + n <= d && program.widths[row..row + n].iter().all(|&x| x == w);
            let ok_anchors =
                |base: usize, n: usize| base + n <= a && program.anchors[base..base + n].iter().all(|&(st, _)| st < i);
            let ok = match s.decision {
                Decision::None => true,
                Decision::Op { row, .. } => ok_rows(row, 1, layout.num_ops),
                Decision::Attention { row, base, count } => {
                    count > 0 && ok_rows(row, 1, count) && ok_anchors(base, count)
                }
                Decision::Skips { row, base, count } => count > 0 && ok_rows(row, count, 2) && ok_anchors(base, count),
            } && match s.input {
                Input::GEmb => true,
                Input::OpEmbedding { row } => row < d && program.widths[row] == layout.num_ops,
                Input::Anchor { row, base } => row < d && ok_anchors(base, program.widths[row]),
                Input::Skips { row, base, count } => ok_rows(row, count, 2) && ok_anchors(base, count),
            } && s.push.is_none_or(|g| g < a && program.anchors[g].0 == i);
            if !ok {
                return bad(format!("step {i} ({s:?}) reads outside the program's rows or earlier anchors"));
            }
        }
        let words = Tensor::from_u32(gpu, &[program.steps.len() * STEP_WORDS + 2 * a], &program.words())?;
        Ok(Kernels { layout, program, words })
    }

    /// The program these kernels follow.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Floats one rollout saves.
    pub fn save_len(&self) -> usize {
        save_len(&self.layout, &self.program)
    }

    fn params(&self, force: bool, samples: usize) -> Params {
        let o = self.layout.offsets().map(|x| x as u32);
        let mut b_nl = [0.0; MAX_OPS];
        b_nl[..self.layout.num_ops].copy_from_slice(&self.layout.b_soft_no_learn);
        let t = self.layout.skip_target;
        Params {
            hidden: self.layout.hidden as u32,
            num_ops: self.layout.num_ops as u32,
            steps: self.program.steps.len() as u32,
            rows: self.program.rows() as u32,
            width: self.program.width() as u32,
            anchors: self.program.anchors.len() as u32,
            force: force as u32,
            samples: samples as u32,
            w_ih: o[0],
            w_hh: o[1],
            g_emb: o[2],
            w_emb: o[3],
            w_soft: o[4],
            b_soft: o[5],
            w_attn_1: o[6],
            w_attn_2: o[7],
            v_attn: o[8],
            total: o[9],
            save_len: self.save_len() as u32,
            factor_len: factor_len(&self.layout, &self.program) as u32,
            inv_temperature: self.layout.inv_temperature,
            log_target_0: (1.0 - t).ln(),
            log_target_1: t.ln(),
            _pad0: 0,
            b_soft_no_learn: b_nl,
        }
    }

    /// The rollout's and backward's workgroup size (`WG`): the smallest of 64, 128, 256 with a
    /// thread for every hidden unit. One unit per thread is the regime the kernels are tested
    /// in (see [`MAX_HIDDEN`]); below 64 lavapipe gets slower again.
    fn threads(&self) -> [(&'static str, f64); 1] {
        let wg = self.layout.hidden.next_power_of_two().clamp(64, MAX_HIDDEN);
        [("WG", wg as f64)]
    }

    fn check_weights(&self, weights: &Tensor) -> Result<()> {
        if weights.dtype() != DType::F32 || weights.shape() != [self.layout.total()] {
            return Err(Error::shape(
                "controller",
                format!("weights {:?} {:?}, expected [{}] f32", weights.shape(), weights.dtype(), self.layout.total()),
            ));
        }
        Ok(())
    }

    /// One rollout (`rollout`, one workgroup). `draws`: `[D]`, the uniforms in [0, 1) to draw
    /// row r with (f32, `force` false) or the decisions to take (u32, `force` true).
    /// weights: `[total]` -> decisions `[D]` u32, logits `[D, W]`, stats `[4]`, saved `[save_len]`.
    pub fn rollout(&self, weights: &Tensor, draws: &Tensor, force: bool) -> Result<Rollout> {
        self.check_weights(weights)?;
        let (d, w) = (self.program.rows(), self.program.width());
        let want = if force { DType::U32 } else { DType::F32 };
        if draws.shape() != [d] || draws.dtype() != want {
            return Err(Error::shape(
                "controller",
                format!("draws {:?} {:?}, expected [{d}] {want:?}", draws.shape(), draws.dtype()),
            ));
        }
        let gpu = weights.gpu();
        let decisions = Tensor::uninit(gpu, &[d], DType::U32)?; // decisions: [D]
        let logits = Tensor::empty(gpu, &[d, w])?; // logits: [D, W]
        let stats = Tensor::empty(gpu, &[4])?; // stats: [4]
        let saved = Tensor::empty(gpu, &[self.save_len()])?; // saved: [save_len]
        let params = self.params(force, 1);
        let h = self.layout.hidden as u64;
        gpu.dispatch(Dispatch {
            shader: "controller",
            entry: "rollout",
            constants: &self.threads(),
            params: bytemuck::bytes_of(&params),
            buffers: &[
                self.words.buf(),
                weights.buf(),
                draws.buf(),
                decisions.buf(),
                logits.buf(),
                stats.buf(),
                saved.buf(),
            ],
            workgroups: [1, 1, 1],
            // gates, then attention queries and keys
            flops: self.program.steps.len() as u64 * (16 * h * h + 4 * h * h),
        });
        Ok(Rollout { decisions, logits, stats, saved })
    }

    /// d loss / d weights for a batch of rollouts, loss = sum_n adv_n * (-log p_n) + kl_n *
    /// skip penalty_n (`backward`, a workgroup per sample, then `gradients`, a thread per
    /// weight). saves: `[N, save_len]` (rollouts' `saved`), coefs: `[N, 2]` (adv_n, kl_n) -> `[total]`.
    pub fn gradients(&self, weights: &Tensor, saves: &Tensor, coefs: &Tensor) -> Result<Tensor> {
        self.check_weights(weights)?;
        let [n, s] = dims::<2>("controller", saves)?;
        if s != self.save_len() || coefs.shape() != [n, 2] || n == 0 {
            return Err(Error::shape(
                "controller",
                format!(
                    "saves {:?} and coefs {:?} for rollouts of {} floats",
                    saves.shape(),
                    coefs.shape(),
                    self.save_len()
                ),
            ));
        }
        let gpu = weights.gpu();
        let params = self.params(false, n);
        let factors = Tensor::empty(gpu, &[n, params.factor_len as usize])?; // factors: [N, factor_len]
        let h = self.layout.hidden as u64;
        let t = self.program.steps.len() as u64;
        gpu.dispatch(Dispatch {
            shader: "controller",
            entry: "backward",
            constants: &self.threads(),
            params: bytemuck::bytes_of(&params),
            buffers: &[self.words.buf(), weights.buf(), saves.buf(), coefs.buf(), factors.buf()],
            workgroups: [n as u32, 1, 1],
            flops: n as u64 * t * (16 * h * h + 4 * h * h),
        });
        let total = self.layout.total();
        let grad = Tensor::empty(gpu, &[total])?; // grad: [total]
        gpu.dispatch(Dispatch {
            shader: "controller",
            entry: "gradients",
            constants: &[],
            params: bytemuck::bytes_of(&params),
            buffers: &[self.words.buf(), saves.buf(), factors.buf(), grad.buf()],
            // H * H threads for both LSTM matrices (8 weights each), then one per other weight
            workgroups: grid_1d(total - 7 * h as usize * h as usize),
            flops: 2 * n as u64 * t * total as u64,
        });
        Ok(grad)
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/controller.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(
            Params,
            "controller",
            [
                hidden,
                num_ops,
                steps,
                rows,
                width,
                anchors,
                force,
                samples,
                w_ih,
                w_hh,
                g_emb,
                w_emb,
                w_soft,
                b_soft,
                w_attn_1,
                w_attn_2,
                v_attn,
                total,
                save_len,
                factor_len,
                inv_temperature,
                log_target_0,
                log_target_1,
                b_soft_no_learn
            ]
        );
    }
}

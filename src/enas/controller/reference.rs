//! The controller as it was first built: every LSTM step, attention, draw and loss term an op
//! recorded on the autodiff tape (hundreds of dispatches per rollout, a tape-walking backward
//! pass). Kept as the reference the fused controller ([`super::Controller`]) is tested against:
//! for the same seed both draw the same decisions with the same log-probabilities, and one
//! update moves the parameters alike.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;

use super::{ControllerConfig, UpdateStats};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::nn::{join, Module, Role, Visit};
use crate::ops::{elementwise, embedding::embedding, layout, linear::linear, lstm::lstm_cell, mixed_op, reduce};
use crate::ops::{sample, softmax};
use crate::optim::Adam;
use crate::rng::Rng;
use crate::space::Arch;
use crate::space::EnasSpace;
use crate::tensor::{read_all, DType, Tensor};

/// One sampled (or scored) architecture.
pub struct Sample {
    /// The architecture: the decisions drawn (or, from `score`, given).
    pub arch: Arch,
    /// sum over decisions of log p(decision).
    pub log_prob: f32,
    /// sum over decisions of the entropy of their distributions.
    pub entropy: f32,
    /// Macro: mean over layers of KL(p(skip) || skip_target) summed over the layer's skips.
    pub skip_penalty: f32,
    /// -log p(arch), shape [], on the tape when the rollout was recorded.
    pub nll: Tensor,
    skip_penalty_gpu: Option<Tensor>,
    /// (position of its first row in the flat encoding, shaped logits [rows, K]) of every
    /// decision, in rollout order: the distributions the decisions were drawn from.
    pub logits: Vec<(usize, Tensor)>,
}

/// The controller's parameters (names as the reference's variables) and its optimizer.
pub struct Controller {
    gpu: Gpu,
    /// The settings it was built with.
    pub config: ControllerConfig,
    /// LSTM weights, torch layout: [4H, H] each, gate order i, f, g, o; no biases (as `stack_lstm`).
    w_ih: Tensor,
    w_hh: Tensor,
    /// Input of the first step and after each node: [1, H].
    g_emb: Tensor,
    /// Embedding of a sampled operation: [K, H].
    w_emb: Tensor,
    /// Operation decoder: [K, H], and (micro) its bias [K], initialised to favour the two
    /// separable convolutions as the reference does.
    w_soft: Tensor,
    b_soft: Option<Tensor>,
    /// Micro normal cell: a constant added to the operation logits (`b_soft_no_learn`), [1, K].
    b_soft_no_learn: Option<Tensor>,
    /// Attention: [H, H], [H, H], [1, H].
    w_attn_1: Tensor,
    w_attn_2: Tensor,
    v_attn: Tensor,
    /// [1, H] of zeros: the initial state, and the anchors of the micro cell inputs.
    zeros: Tensor,
    /// Scalars on the GPU by bit pattern, for `elementwise::scale`.
    constants: RefCell<HashMap<u32, Tensor>>,
    /// Adam over the controller's parameters (beta1 0, eps 1e-3, as the reference).
    pub optimizer: Adam,
    /// The moving-average baseline; `None` until the first reward (it starts at that reward).
    pub baseline: Option<f32>,
}

/// A rollout recorded on the GPU, before its readback.
struct Prepared {
    nll: Tensor,
    entropy: Tensor,
    skip_penalty: Option<Tensor>,
    decisions: Option<Tensor>,
    forced: Option<Arch>,
    logits: Vec<(usize, Tensor)>,
}

/// How a rollout makes its decisions.
enum Mode<'a> {
    /// Drawn on the GPU from `uniforms` [D], written to `decisions` [D] u32.
    Sample { uniforms: Tensor, decisions: Tensor },
    /// Given (teacher forcing): the log-probability of a known architecture.
    Force(&'a [usize]),
}

/// One rollout's state: the LSTM's (h, c) and what the decisions left behind.
struct Rollout<'a> {
    ctl: &'a Controller,
    mode: Mode<'a>,
    h: Tensor,
    c: Tensor,
    nll: Vec<Tensor>,
    entropy: Vec<Tensor>,
    logits: Vec<(usize, Tensor)>,
    skip_kl: Vec<Tensor>,
}

impl Controller {
    /// A controller with the reference's init: every weight uniform in [-0.1, 0.1].
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: ControllerConfig) -> Result<Controller> {
        config.validate()?;
        let h = config.hidden;
        let k = config.space.num_ops();
        let mut uniform = |shape: &[usize]| -> Result<Tensor> {
            let n = shape.iter().product();
            Tensor::param(gpu, shape, &rng.uniform_vec(n, -0.1, 0.1))
        };
        let w_ih = uniform(&[4 * h, h])?;
        let w_hh = uniform(&[4 * h, h])?;
        let g_emb = uniform(&[1, h])?;
        let w_emb = uniform(&[k, h])?;
        let w_soft = uniform(&[k, h])?;
        let w_attn_1 = uniform(&[h, h])?;
        let w_attn_2 = uniform(&[h, h])?;
        let v_attn = uniform(&[1, h])?;
        let micro = matches!(config.space, EnasSpace::Micro { .. });
        let (b_soft, b_soft_no_learn) = if micro {
            // [10, 10, 0, 0, 0] and [0.25, 0.25, -0.25, -0.25, -0.25]: both separable convs
            // start out likelier (micro_controller.py).
            let b: Vec<f32> = (0..k).map(|i| if i < 2 { 10.0 } else { 0.0 }).collect();
            let c: Vec<f32> = (0..k).map(|i| if i < 2 { 0.25 } else { -0.25 }).collect();
            (Some(Tensor::param(gpu, &[k], &b)?), Some(Tensor::from_slice(gpu, &[1, k], &c)?))
        } else {
            (None, None)
        };
        // The order of `Module::params`.
        let mut params = vec![w_ih.clone(), w_hh.clone(), g_emb.clone(), w_emb.clone(), w_soft.clone()];
        params.extend(b_soft.clone());
        params.extend([w_attn_1.clone(), w_attn_2.clone(), v_attn.clone()]);
        let optimizer = Adam::new(&params, config.lr, 0.0, 0.999, 1e-3, 0.0)?;
        Ok(Controller {
            gpu: gpu.clone(),
            zeros: Tensor::zeros(gpu, &[1, h])?,
            constants: RefCell::new(HashMap::new()),
            optimizer,
            baseline: None,
            config,
            w_ih,
            w_hh,
            g_emb,
            w_emb,
            w_soft,
            b_soft,
            b_soft_no_learn,
            w_attn_1,
            w_attn_2,
            v_attn,
        })
    }

    /// A GPU scalar [1] holding `v` (made once per value).
    fn constant(&self, v: f32) -> Result<Tensor> {
        let mut map = self.constants.borrow_mut();
        if let Some(t) = map.get(&v.to_bits()) {
            return Ok(t.clone());
        }
        let t = Tensor::from_slice(&self.gpu, &[1], &[v])?;
        map.insert(v.to_bits(), t.clone());
        Ok(t)
    }

    /// Samples an architecture. The rollout is recorded on the tape when gradients are enabled
    /// at the call (for [`Controller::update`]); `gpu.no_grad(|| ctl.sample(rng)).await` only
    /// samples: the GPU work is recorded before this returns, and the future only reads back
    /// (one readback: decisions, log-probability and entropy together).
    pub fn sample(&self, rng: &mut Rng) -> impl Future<Output = Result<Sample>> + '_ {
        let d = self.config.space.num_decisions();
        let u: Vec<f32> = (0..d).map(|_| rng.uniform() as f32).collect();
        let prepared = (|| {
            let uniforms = Tensor::from_slice(&self.gpu, &[d], &u)?; // uniforms: [D]
            let decisions = Tensor::uninit(&self.gpu, &[d], DType::U32)?; // decisions: [D] u32
            let rollout = self.rollout(Mode::Sample { uniforms, decisions: decisions.clone() })?;
            self.sum_terms(rollout, Some(decisions), None)
        })();
        async move { self.read_back(prepared?).await }
    }

    /// The log-probability (and entropy) of a given architecture, by feeding its decisions to
    /// the controller instead of drawing them; recorded as [`Controller::sample`].
    pub fn score(&self, arch: &Arch) -> impl Future<Output = Result<Sample>> + '_ {
        let flat = arch.to_flat();
        let prepared = (|| {
            self.config.space.decode(&flat)?;
            let rollout = self.rollout(Mode::Force(&flat))?;
            self.sum_terms(rollout, None, Some(arch.clone()))
        })();
        async move { self.read_back(prepared?).await }
    }

    /// [`Controller::sample`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sample_blocking(&self, rng: &mut Rng) -> Result<Sample> {
        pollster::block_on(self.sample(rng))
    }

    fn rollout<'a>(&'a self, mode: Mode<'a>) -> Result<Rollout<'a>> {
        let mut r = Rollout {
            ctl: self,
            mode,
            h: self.zeros.clone(),
            c: self.zeros.clone(),
            nll: vec![],
            entropy: vec![],
            logits: vec![],
            skip_kl: vec![],
        };
        match self.config.space {
            EnasSpace::Micro { num_nodes } => {
                // The reduction cell's sampler continues from the normal cell's LSTM state.
                r.micro_cell(num_nodes, 0, true)?;
                r.micro_cell(num_nodes, 4 * num_nodes, false)?;
            }
            EnasSpace::Macro { num_layers } => r.macro_layers(num_layers)?,
        }
        Ok(r)
    }

    /// Sums the rollout's terms on the GPU (recorded like the rollout).
    fn sum_terms(&self, r: Rollout<'_>, decisions: Option<Tensor>, forced: Option<Arch>) -> Result<Prepared> {
        let nll = elementwise::add_n(&r.nll.iter().collect::<Vec<_>>())?; // nll: []
        let entropy = self.gpu.no_grad(|| elementwise::add_n(&r.entropy.iter().collect::<Vec<_>>()))?;
        let skip_penalty = if r.skip_kl.is_empty() {
            None
        } else {
            // The reference averages the per-layer penalties (`reduce_mean`).
            let sum = elementwise::add_n(&r.skip_kl.iter().collect::<Vec<_>>())?;
            Some(elementwise::scale(&sum, &self.constant(1.0 / r.skip_kl.len() as f32)?, 0)?)
        };
        Ok(Prepared { nll, entropy, skip_penalty, decisions, forced, logits: r.logits })
    }

    /// Reads decisions and statistics back at once.
    async fn read_back(&self, p: Prepared) -> Result<Sample> {
        let mut reads = vec![&p.nll, &p.entropy];
        reads.extend(p.skip_penalty.as_ref());
        reads.extend(p.decisions.as_ref());
        let values = read_all(&reads).await?;
        let arch = match p.forced {
            Some(a) => a,
            None => {
                // The u32 decisions came back through an f32 read: reinterpret the bits.
                let flat: Vec<usize> = values[reads.len() - 1].iter().map(|x| x.to_bits() as usize).collect();
                self.config.space.decode(&flat)?
            }
        };
        Ok(Sample {
            arch,
            log_prob: -values[0][0],
            entropy: values[1][0],
            skip_penalty: if p.skip_penalty.is_some() { values[2][0] } else { 0.0 },
            nll: p.nll,
            skip_penalty_gpu: p.skip_penalty,
            logits: p.logits,
        })
    }

    /// One REINFORCE update from samples recorded on the tape (sampled with gradients enabled
    /// since the last backward pass) and their accuracies. The baseline moves sample by sample as
    /// in the reference (each sample's advantage uses the baseline updated with its reward); the
    /// gradients of the samples are averaged. Consumes the tape.
    pub fn update(&mut self, samples: &[Sample], accuracies: &[f32]) -> Result<UpdateStats> {
        let entropies: Vec<f32> = samples.iter().map(|s| s.entropy).collect();
        let (advantages, reward_sum) = super::reinforce(&self.config, &mut self.baseline, &entropies, accuracies)?;
        let n = samples.len() as f32;
        // loss = sum_i adv_i / n * (-log p_i) [+ skip_weight / n * penalty_i]
        let adv = Tensor::from_slice(&self.gpu, &[advantages.len()], &advantages)?;
        let mut terms = Vec::with_capacity(2 * samples.len());
        for (i, s) in samples.iter().enumerate() {
            terms.push(elementwise::scale(&s.nll, &adv, i)?);
            if let (Some(p), true) = (&s.skip_penalty_gpu, self.config.skip_weight != 0.0) {
                terms.push(elementwise::scale(p, &self.constant(self.config.skip_weight / n)?, 0)?);
            }
        }
        let loss = elementwise::add_n(&terms.iter().collect::<Vec<_>>())?;
        let mut grads = self.gpu.backward(&loss)?;
        let params = self.param_list();
        let g: Vec<Tensor> = params
            .iter()
            .map(|p| match grads.take(p) {
                Some(g) => Ok(g),
                None => Tensor::zeros(&self.gpu, p.shape()),
            })
            .collect::<Result<_>>()?;
        self.optimizer.step(&params, &g)?;
        let archs: Vec<&Arch> = samples.iter().map(|s| &s.arch).collect();
        let log_probs: Vec<f32> = samples.iter().map(|s| s.log_prob).collect();
        Ok(super::update_stats(&self.config, self.baseline, &archs, &entropies, &log_probs, reward_sum))
    }
}

impl Module for Controller {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        let mut param = |name: &str, t: &Tensor| f(Role::Param, join(prefix, name), t);
        param("lstm.w_ih", &self.w_ih);
        param("lstm.w_hh", &self.w_hh);
        param("g_emb", &self.g_emb);
        param("emb.w", &self.w_emb);
        param("softmax.w", &self.w_soft);
        if let Some(b) = &self.b_soft {
            param("softmax.b", b);
        }
        param("attention.w_1", &self.w_attn_1);
        param("attention.w_2", &self.w_attn_2);
        param("attention.v", &self.v_attn);
    }
}

/// Stacks [1, H] rows into [n, H] (a channel concatenation of [1, H, 1, 1] views).
fn stack_rows(rows: &[Tensor]) -> Result<Tensor> {
    let h = rows[0].shape()[1];
    let views: Vec<Tensor> = rows.iter().map(|r| r.reshape(&[1, h, 1, 1])).collect::<Result<_>>()?;
    layout::concat_channels(&views.iter().collect::<Vec<_>>())?.reshape(&[rows.len(), h])
}

/// [n, 1] columns side by side: [n, 2].
fn side_by_side(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let n = a.shape()[0];
    let (a4, b4) = (a.reshape(&[n, 1, 1, 1])?, b.reshape(&[n, 1, 1, 1])?);
    layout::concat_channels(&[&a4, &b4])?.reshape(&[n, 2])
}

impl Rollout<'_> {
    /// One LSTM step on x: [1, H].
    fn step(&mut self, x: &Tensor) -> Result<()> {
        let (h, c) = lstm_cell(x, &self.h, &self.c, &self.ctl.w_ih, &self.ctl.w_hh, None, None)?;
        (self.h, self.c) = (h, c);
        Ok(())
    }

    /// logits / temperature, then `tanh_c * tanh(.)` when set.
    fn shape(&self, logits: Tensor, tanh_c: Option<f32>) -> Result<Tensor> {
        let ctl = self.ctl;
        let mut l = logits;
        if let Some(t) = ctl.config.temperature {
            l = elementwise::scale(&l, &ctl.constant(1.0 / t)?, 0)?;
        }
        if let Some(c) = tanh_c {
            l = elementwise::scale(&elementwise::tanh(&l)?, &ctl.constant(c)?, 0)?;
        }
        Ok(l)
    }

    /// v^T tanh(w_attn_1 anchor_j + w_attn_2 h) for every anchor: [n, 1]. `anchors_w1` holds
    /// the w_attn_1 products of the anchors, [1, H] each.
    fn attention(&self, anchors_w1: &[Tensor]) -> Result<Tensor> {
        let ctl = self.ctl;
        let query = linear(&self.h, &ctl.w_attn_2, None)?; // query: [1, H]
        let keys = stack_rows(anchors_w1)?; // keys: [n, H]
        let repeated = stack_rows(&vec![query; anchors_w1.len()])?; // [n, H]
        let t = elementwise::tanh(&elementwise::add(&keys, &repeated)?)?;
        linear(&t, &ctl.v_attn, None) // [n, 1]
    }

    /// Draws (or takes) the decisions of `logits` [rows, K] for flat positions `offset..`;
    /// returns their indices [rows] u32 on the GPU.
    fn decide(&mut self, logits: Tensor, offset: usize) -> Result<Tensor> {
        let ctl = self.ctl;
        let rows = logits.shape()[0];
        let idx = match &self.mode {
            Mode::Sample { uniforms, decisions } => sample::categorical(&logits, uniforms, offset, decisions)?,
            Mode::Force(flat) => {
                let v: Vec<u32> = flat[offset..offset + rows].iter().map(|&x| x as u32).collect();
                Tensor::from_u32(&ctl.gpu, &[rows], &v)?
            }
        };
        // cross_entropy is the mean over rows: times rows for the sum of -log p.
        let mut nll = softmax::cross_entropy(&logits, &idx)?;
        if rows > 1 {
            nll = elementwise::scale(&nll, &ctl.constant(rows as f32)?, 0)?;
        }
        self.nll.push(nll);
        // The entropy is a reward bonus in the reference (stop_gradient): not recorded.
        let entropy = ctl.gpu.no_grad(|| reduce::sum(&softmax::entropy(&logits)?))?;
        self.entropy.push(entropy);
        self.logits.push((offset, logits));
        Ok(idx)
    }

    /// One micro cell (`micro_controller._build_sampler`): two anchors for the cell inputs, then
    /// per node two inputs by attention and two operations, flat layout
    /// `[x_id, x_op, y_id, y_op]` per node from `start`.
    fn micro_cell(&mut self, num_nodes: usize, start: usize, normal: bool) -> Result<()> {
        let ctl = self.ctl;
        let op_tanh = ctl.config.tanh_constant.map(|c| c / ctl.config.op_tanh_reduce);
        let mut anchors: Vec<Tensor> = vec![];
        let mut anchors_w1: Vec<Tensor> = vec![];
        let mut inputs = ctl.g_emb.clone();
        for _ in 0..2 {
            self.step(&inputs)?;
            // The cell inputs' anchors are zeros: choosing one feeds a zero input next.
            anchors.push(ctl.zeros.clone());
            anchors_w1.push(linear(&self.h, &ctl.w_attn_1, None)?);
        }
        for node in 0..num_nodes {
            let at = start + 4 * node;
            for i in 0..2 {
                self.step(&inputs)?;
                let n = anchors.len();
                let logits = self.attention(&anchors_w1)?.reshape(&[1, n])?;
                let logits = self.shape(logits, ctl.config.tanh_constant)?;
                let idx = self.decide(logits, at + 2 * i)?;
                inputs = embedding(&stack_rows(&anchors)?, &idx)?; // the chosen node's anchor
            }
            for i in 0..2 {
                self.step(&inputs)?;
                let mut logits = self.shape(linear(&self.h, &ctl.w_soft, ctl.b_soft.as_ref())?, op_tanh)?;
                if let (true, Some(b)) = (normal, &ctl.b_soft_no_learn) {
                    logits = elementwise::add(&logits, b)?;
                }
                let idx = self.decide(logits, at + 2 * i + 1)?;
                inputs = embedding(&ctl.w_emb, &idx)?;
            }
            self.step(&inputs)?;
            anchors.push(self.h.clone());
            anchors_w1.push(linear(&self.h, &ctl.w_attn_1, None)?);
            inputs = ctl.g_emb.clone();
        }
        Ok(())
    }

    /// The macro network (`general_controller._build_sampler`, whole channels): per layer an
    /// operation, then (from layer 1) a skip bit to every earlier layer by attention, each
    /// drawn from softmax([-s, s]); the skip penalty uses sigmoid of those logits.
    fn macro_layers(&mut self, num_layers: usize) -> Result<()> {
        let ctl = self.ctl;
        let t = ctl.config.skip_target;
        // log of the target distribution over (no skip, skip): [1, 2] as a linear weight.
        let log_target = Tensor::from_slice(&ctl.gpu, &[1, 2], &[(1.0 - t).ln(), t.ln()])?;
        let mut anchors: Vec<Tensor> = vec![];
        let mut anchors_w1: Vec<Tensor> = vec![];
        let mut inputs = ctl.g_emb.clone();
        for layer in 0..num_layers {
            let at = layer + layer * layer.saturating_sub(1) / 2;
            self.step(&inputs)?;
            let logits = self.shape(linear(&self.h, &ctl.w_soft, None)?, ctl.config.tanh_constant)?;
            let op = self.decide(logits, at)?;
            inputs = embedding(&ctl.w_emb, &op)?;
            self.step(&inputs)?;
            if layer > 0 {
                let q = self.attention(&anchors_w1)?; // q: [layer, 1]
                let neg = elementwise::scale(&q, &ctl.constant(-1.0)?, 0)?;
                let logits = self.shape(side_by_side(&neg, &q)?, ctl.config.tanh_constant)?; // [layer, 2]
                let skip = self.decide(logits.clone(), at + 1)?;
                // sigmoid([-s, s]) = softmax([-s, s] / 2), so with P that softmax,
                // KL(P || target) = sum_j P_j (log P_j - log t_j) = -H(P) - <P, log t>.
                let half = elementwise::scale(&logits, &ctl.constant(0.5)?, 0)?;
                let entropy = reduce::sum(&softmax::entropy(&half)?)?;
                let cross = reduce::sum(&linear(&softmax::softmax(&half)?, &log_target, None)?)?;
                let kl = elementwise::add(&entropy, &cross)?;
                self.skip_kl.push(elementwise::scale(&kl, &ctl.constant(-1.0)?, 0)?);
                // Next input: the mean of the skipped-from layers' hidden states, / (1 + count).
                let w = sample::mean_weights(&skip)?;
                let terms: Vec<(usize, &Tensor)> = anchors.iter().enumerate().collect();
                inputs = mixed_op::weighted_sum(&w, &terms)?;
            } else {
                inputs = ctl.g_emb.clone();
            }
            anchors.push(self.h.clone());
            anchors_w1.push(linear(&self.h, &ctl.w_attn_1, None)?);
        }
        Ok(())
    }
}

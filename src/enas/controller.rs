//! The ENAS controller (melodyguan/enas `micro_controller.py`, `general_controller.py`): a
//! one-layer LSTM that emits an architecture one decision at a time, trained by REINFORCE.
//!
//! Each decision: an LSTM step on the embedding of the previous decision (the learned `g_emb`
//! first), logits from the decoder of its kind (`w_soft` for operations, attention over earlier
//! nodes' hidden states for inputs and skips), shaped by `logits / temperature` then
//! `tanh_constant * tanh(logits)` when set, and one draw from a uniform drawn on the CPU.
//!
//! The whole rollout is one dispatch of one workgroup ([`crate::ops::controller`]): the search
//! space is described once as a program of steps (which input, which decoder, which anchors the
//! attention reads), and the kernel follows it with the LSTM state in workgroup memory. The
//! decisions, the log-probability, the entropy and the skip penalty come back in one readback;
//! what the backward pass needs stays on the GPU with the [`Sample`]. An update is three
//! dispatches whatever the number of samples: backpropagation through every rollout, the
//! weight gradients, Adam on the packed weights.
//!
//! REINFORCE as the reference: reward = child accuracy + entropy_weight * entropy (the entropy
//! bonus is part of the reward, not differentiated), an exponential moving average baseline,
//! loss = -(reward - baseline) * log p(arch) (+ skip_weight * skip penalty, macro), gradients
//! averaged over `num_aggregate` samples, Adam with beta1 = 0 and eps = 1e-3.
//!
//! `reference` (hidden from the docs) keeps the controller built from generic taped ops, which
//! this one is tested against.

#[doc(hidden)]
pub mod reference;

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{join, Module, Role, Visit};
use crate::ops::controller::{Decision, Input, Kernels, Layout, Program, Rollout, Step, MAX_HIDDEN, MAX_WIDTH};
use crate::optim::Adam;
use crate::rng::Rng;
use crate::space::Arch;
use crate::space::EnasSpace;
use crate::tensor::{read_all, Tensor};

/// Every setting of the controller. [`ControllerConfig::micro`] and
/// [`ControllerConfig::macro_space`] give the reference's search scripts' values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// The search space whose architectures it emits, with its size.
    pub space: EnasSpace,
    /// LSTM size (64 in the reference; the seed's 100 works as well).
    pub hidden: usize,
    /// Logits are divided by it when set.
    pub temperature: Option<f32>,
    /// Logits become `tanh_constant * tanh(logits)` when set (bounds how sure a decision gets,
    /// which keeps the controller exploring).
    pub tanh_constant: Option<f32>,
    /// Micro operation logits use `tanh_constant / op_tanh_reduce` (flatter than the inputs').
    pub op_tanh_reduce: f32,
    /// Weight of the entropy bonus added to the reward (1e-4).
    pub entropy_weight: f32,
    /// Decay of the reward's moving-average baseline, in [0, 1) (0.99).
    pub baseline_decay: f32,
    /// Adam's learning rate (micro 0.0035, macro 0.001).
    pub lr: f32,
    /// Samples whose gradients are averaged into one update.
    pub num_aggregate: usize,
    /// Macro: the skip penalty is KL(p(skip) || skip_target), weighted by `skip_weight`.
    pub skip_target: f32,
    /// Weight of the macro skip penalty in the loss (macro 0.8, micro 0).
    pub skip_weight: f32,
}

impl ControllerConfig {
    /// `cifar10_micro_search.sh`: tanh constant 1.1, op_tanh_reduce 2.5, no temperature,
    /// lr 0.0035, 10 samples per update.
    pub fn micro(num_nodes: usize) -> Self {
        ControllerConfig {
            space: EnasSpace::Micro { num_nodes },
            hidden: 64,
            temperature: None,
            tanh_constant: Some(1.1),
            op_tanh_reduce: 2.5,
            entropy_weight: 1e-4,
            baseline_decay: 0.99,
            lr: 0.0035,
            num_aggregate: 10,
            skip_target: 0.4,
            skip_weight: 0.0,
        }
    }

    /// `cifar10_macro_search.sh`: tanh constant 1.5, lr 0.001, 20 samples per update, skip
    /// penalty KL to 0.4 with weight 0.8.
    pub fn macro_space(num_layers: usize) -> Self {
        ControllerConfig {
            space: EnasSpace::Macro { num_layers },
            tanh_constant: Some(1.5),
            lr: 0.001,
            num_aggregate: 20,
            skip_target: 0.4,
            skip_weight: 0.8,
            ..ControllerConfig::micro(5)
        }
    }

    /// Checks sizes (at least 1; hidden at most 256, at most 256 nodes or layers to choose
    /// among), positive temperature and op_tanh_reduce, baseline_decay in
    /// [0, 1) and skip_target in (0, 1).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        match self.space {
            EnasSpace::Micro { num_nodes: 0 } => return bad("the micro space needs at least one node per cell".into()),
            EnasSpace::Macro { num_layers: 0 } => return bad("the macro space needs at least one layer".into()),
            _ => {}
        }
        if self.hidden == 0 || self.num_aggregate == 0 {
            return bad("the controller needs hidden >= 1 and num_aggregate >= 1".into());
        }
        if self.hidden > MAX_HIDDEN {
            // One hidden unit per thread of the fused kernels' workgroup (ops::controller).
            return bad(format!("the controller's hidden size is at most {MAX_HIDDEN}, got {}", self.hidden));
        }
        let widest = match self.space {
            EnasSpace::Micro { num_nodes } => num_nodes + 1,
            EnasSpace::Macro { num_layers } => num_layers.saturating_sub(1),
        };
        if widest > MAX_WIDTH {
            return bad(format!(
                "the controller chooses among at most {MAX_WIDTH} earlier nodes or layers, got {widest}"
            ));
        }
        let positive = |v: f32| v > 0.0 && v.is_finite();
        if !self.temperature.is_none_or(positive) || !positive(self.op_tanh_reduce) {
            return bad("temperature and op_tanh_reduce must be positive".into());
        }
        if !(0.0..1.0).contains(&self.baseline_decay) {
            return bad(format!("baseline_decay must be in [0, 1), got {}", self.baseline_decay));
        }
        if !(self.skip_target > 0.0 && self.skip_target < 1.0) {
            return bad(format!("skip_target must be in (0, 1), got {}", self.skip_target));
        }
        Ok(())
    }
}

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
    /// The shaped logits every decision was drawn from, one row per position of the flat
    /// encoding, `[D, W]`: row r's first `decision_widths()[r]` entries, zeros after.
    pub logits: Tensor,
    /// What [`Controller::update`] backpropagates through: `[save_len]`.
    saved: Tensor,
}

/// What one REINFORCE update saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateStats {
    /// Mean over the samples of the reward (accuracy + entropy bonus).
    pub reward: f32,
    /// The baseline after the update's samples.
    pub baseline: f32,
    /// Mean over the samples of their summed decision entropy (nats).
    pub entropy: f32,
    /// Mean over the samples of log p(arch).
    pub log_prob: f32,
    /// Macro: fraction of skip bits set.
    pub skip_rate: f32,
}

/// The controller's parameters, packed, and its optimizer.
pub struct Controller {
    gpu: Gpu,
    /// The settings it was built with.
    pub config: ControllerConfig,
    /// Every parameter in one buffer, in this order (names as the reference's variables):
    /// w_ih, w_hh `[4H, H]` (torch layout, gate order i, f, g, o, no biases as `stack_lstm`),
    /// g_emb `[H]` (the input of the first step and after each node), w_emb `[K, H]` (embedding of
    /// a chosen operation), w_soft `[K, H]` (operation decoder), b_soft `[K]` (micro only,
    /// initialised to favour the two separable convolutions), w_attn_1, w_attn_2 `[H, H]`,
    /// v_attn `[H]` (attention).
    weights: Tensor,
    /// The space's program and the kernels that follow it.
    kernels: Kernels,
    /// Adam over the packed parameters (beta1 0, eps 1e-3, as the reference).
    pub optimizer: Adam,
    /// The moving-average baseline; `None` until the first reward (it starts at that reward).
    pub baseline: Option<f32>,
}

impl Controller {
    /// A controller with the reference's init: every weight uniform in [-0.1, 0.1] (drawn in
    /// the reference's order: w_ih, w_hh, g_emb, w_emb, w_soft, w_attn_1, w_attn_2, v_attn).
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: ControllerConfig) -> Result<Controller> {
        config.validate()?;
        let h = config.hidden;
        let k = config.space.num_ops();
        let micro = matches!(config.space, EnasSpace::Micro { .. });
        let mut uniform = |n: usize| rng.uniform_vec(n, -0.1, 0.1);
        let (w_ih, w_hh, g_emb) = (uniform(4 * h * h), uniform(4 * h * h), uniform(h));
        let (w_emb, w_soft) = (uniform(k * h), uniform(k * h));
        let (w_attn_1, w_attn_2, v_attn) = (uniform(h * h), uniform(h * h), uniform(h));
        // [10, 10, 0, 0, 0] and [0.25, 0.25, -0.25, -0.25, -0.25]: both separable convs
        // start out likelier (micro_controller.py).
        let b_soft: Vec<f32> = (0..k).map(|i| if i < 2 { 10.0 } else { 0.0 }).collect();
        let b_soft_no_learn = (0..k)
            .map(|i| {
                if !micro {
                    0.0
                } else if i < 2 {
                    0.25
                } else {
                    -0.25
                }
            })
            .collect();
        let mut packed = [w_ih, w_hh, g_emb, w_emb, w_soft].concat();
        if micro {
            packed.extend(b_soft);
        }
        packed.extend([w_attn_1, w_attn_2, v_attn].concat());
        let layout = Layout {
            hidden: h,
            num_ops: k,
            b_soft: micro,
            inv_temperature: config.temperature.map_or(1.0, |t| 1.0 / t),
            skip_target: config.skip_target,
            b_soft_no_learn,
        };
        let weights = Tensor::param(gpu, &[packed.len()], &packed)?; // weights: [total]
        let kernels = Kernels::new(gpu, layout, program(&config))?;
        let optimizer = Adam::new(std::slice::from_ref(&weights), config.lr, 0.0, 0.999, 1e-3, 0.0)?;
        Ok(Controller { gpu: gpu.clone(), config, weights, kernels, optimizer, baseline: None })
    }

    /// The width of every decision row (the flat encoding's positions): operations, the nodes
    /// an input chooses among, 2 for a skip bit.
    pub fn decision_widths(&self) -> &[usize] {
        &self.kernels.program().widths
    }

    /// Samples an architecture: one dispatch, recorded before this returns; the future only
    /// reads back (one readback: decisions, log-probability, entropy and skip penalty
    /// together). What an update needs is kept with the sample, under `no_grad` too.
    pub fn sample(&self, rng: &mut Rng) -> impl Future<Output = Result<Sample>> + '_ {
        let d = self.config.space.num_decisions();
        let u: Vec<f32> = (0..d).map(|_| rng.uniform() as f32).collect();
        let rollout = Tensor::from_slice(&self.gpu, &[d], &u) // uniforms: [D]
            .and_then(|uniforms| self.kernels.rollout(&self.weights, &uniforms, false));
        async move { self.read_back(rollout?, None).await }
    }

    /// The log-probability (and entropy) of a given architecture, by feeding its decisions to
    /// the controller instead of drawing them; otherwise as [`Controller::sample`].
    pub fn score(&self, arch: &Arch) -> impl Future<Output = Result<Sample>> + '_ {
        let flat = arch.to_flat();
        let forced = Some(arch.clone());
        let rollout = (|| {
            self.config.space.decode(&flat)?;
            let given: Vec<u32> = flat.iter().map(|&x| x as u32).collect();
            let given = Tensor::from_u32(&self.gpu, &[given.len()], &given)?; // given: [D] u32
            self.kernels.rollout(&self.weights, &given, true)
        })();
        async move { self.read_back(rollout?, forced).await }
    }

    /// [`Controller::sample`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sample_blocking(&self, rng: &mut Rng) -> Result<Sample> {
        pollster::block_on(self.sample(rng))
    }

    /// Reads decisions and statistics back at once.
    async fn read_back(&self, r: Rollout, forced: Option<Arch>) -> Result<Sample> {
        let values = read_all(&[&r.stats, &r.decisions]).await?;
        let arch = match forced {
            Some(a) => a,
            None => {
                // The u32 decisions came back through an f32 read: reinterpret the bits.
                let flat: Vec<usize> = values[1].iter().map(|x| x.to_bits() as usize).collect();
                self.config.space.decode(&flat)?
            }
        };
        Ok(Sample {
            arch,
            log_prob: -values[0][0],
            entropy: values[0][1],
            skip_penalty: values[0][2],
            logits: r.logits,
            saved: r.saved,
        })
    }

    /// One REINFORCE update from samples of this controller (drawn since its last update) and
    /// their accuracies. The baseline moves sample by sample as in the reference (each
    /// sample's advantage uses the baseline updated with its reward); the gradients of the
    /// samples are averaged. Three dispatches: the backward pass through every rollout, the
    /// weight gradients, Adam.
    pub fn update(&mut self, samples: &[Sample], accuracies: &[f32]) -> Result<UpdateStats> {
        let entropies: Vec<f32> = samples.iter().map(|s| s.entropy).collect();
        let (advantages, reward_sum) = reinforce(&self.config, &mut self.baseline, &entropies, accuracies)?;
        let n = samples.len();
        let steps = &self.kernels.program().steps;
        let skip_layers = steps.iter().filter(|s| matches!(s.decision, Decision::Skips { .. })).count();
        // loss = sum_i adv_i * (-log p_i) + skip_weight / n * penalty_i, penalty_i the mean of
        // the per-layer KLs: each layer's KL weighs skip_weight / (n * layers).
        let kl = if skip_layers == 0 { 0.0 } else { self.config.skip_weight / (n as f32 * skip_layers as f32) };
        let coefs: Vec<f32> = advantages.iter().flat_map(|&a| [a, kl]).collect();
        let coefs = Tensor::from_slice(&self.gpu, &[n, 2], &coefs)?; // coefs: [N, 2]
        let len = self.kernels.save_len();
        let saves = Tensor::empty(&self.gpu, &[n, len])?; // saves: [N, save_len]
        for (i, s) in samples.iter().enumerate() {
            if s.saved.numel() != len {
                return Err(Error::Config("a controller update got a sample of another controller".into()));
            }
            s.saved.copy_into(&saves, i * len)?;
        }
        let grad = self.kernels.gradients(&self.weights, &saves, &coefs)?;
        self.optimizer.step(std::slice::from_ref(&self.weights), &[grad])?;
        let archs: Vec<&Arch> = samples.iter().map(|s| &s.arch).collect();
        let log_probs: Vec<f32> = samples.iter().map(|s| s.log_prob).collect();
        Ok(update_stats(&self.config, self.baseline, &archs, &entropies, &log_probs, reward_sum))
    }
}

impl Module for Controller {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        f(Role::Param, join(prefix, "weights"), &self.weights);
    }
}

/// The rollout of `config`'s space as a program (`micro_controller._build_sampler`,
/// `general_controller._build_sampler` with whole channels).
fn program(config: &ControllerConfig) -> Program {
    let k = config.space.num_ops();
    let tanh = config.tanh_constant;
    let mut steps: Vec<Step> = vec![];
    let mut anchors: Vec<(usize, bool)> = vec![];
    let mut widths = vec![0; config.space.num_decisions()];
    // A step; `anchor`: its hidden state becomes an anchor (zero-valued or not).
    let mut step = |input, decision, tanh_constant, anchor: Option<bool>| {
        let push = anchor.map(|zero| {
            anchors.push((steps.len(), zero));
            anchors.len() - 1
        });
        steps.push(Step { input, decision, tanh_constant, push });
    };
    match config.space {
        EnasSpace::Micro { num_nodes } => {
            let op_tanh = tanh.map(|c| c / config.op_tanh_reduce);
            // The reduction cell continues from the normal cell's LSTM state.
            for (cell, normal) in [(0, true), (1, false)] {
                let start = 4 * num_nodes * cell;
                let base = cell * (num_nodes + 2);
                // Two anchors for the cell inputs: keys from the LSTM, values zeros (choosing one
                // feeds a zero input next).
                for _ in 0..2 {
                    step(Input::GEmb, Decision::None, None, Some(true));
                }
                let mut input = Input::GEmb;
                for node in 0..num_nodes {
                    // flat layout [x_id, x_op, y_id, y_op]: both inputs first, then both ops
                    let at = start + 4 * node;
                    let count = 2 + node;
                    for i in 0..2 {
                        let row = at + 2 * i;
                        widths[row] = count;
                        step(input, Decision::Attention { row, base, count }, tanh, None);
                        input = Input::Anchor { row, base };
                    }
                    for i in 0..2 {
                        let row = at + 2 * i + 1;
                        widths[row] = k;
                        step(input, Decision::Op { row, bias: true, no_learn: normal }, op_tanh, None);
                        input = Input::OpEmbedding { row };
                    }
                    step(input, Decision::None, None, Some(false));
                    input = Input::GEmb;
                }
            }
        }
        EnasSpace::Macro { num_layers } => {
            // Per layer an operation, then (from layer 1) a skip bit to every earlier layer; the
            // next input is the sum of the skipped-from layers' hidden states / (1 + count).
            let mut input = Input::GEmb;
            for layer in 0..num_layers {
                let at = layer + layer * layer.saturating_sub(1) / 2;
                widths[at] = k;
                step(input, Decision::Op { row: at, bias: false, no_learn: false }, tanh, None);
                widths[at + 1..at + 1 + layer].fill(2);
                let skips = Decision::Skips { row: at + 1, base: 0, count: layer };
                step(Input::OpEmbedding { row: at }, if layer > 0 { skips } else { Decision::None }, tanh, Some(false));
                input = if layer > 0 { Input::Skips { row: at + 1, base: 0, count: layer } } else { Input::GEmb };
            }
        }
    }
    Program { steps, anchors, widths }
}

/// The per-sample weights of the REINFORCE loss, (reward_i - baseline_i) / n, the baseline
/// moved by each reward in turn (set to the first reward when unset), and the rewards' sum.
fn reinforce(
    config: &ControllerConfig,
    baseline: &mut Option<f32>,
    entropies: &[f32],
    accuracies: &[f32],
) -> Result<(Vec<f32>, f32)> {
    if entropies.is_empty() || entropies.len() != accuracies.len() {
        return Err(Error::Config(format!(
            "a controller update needs one accuracy per sample (got {} samples, {} accuracies)",
            entropies.len(),
            accuracies.len()
        )));
    }
    let n = entropies.len() as f32;
    let decay = config.baseline_decay;
    let mut advantages = Vec::with_capacity(entropies.len());
    let mut reward_sum = 0.0;
    for (&entropy, &acc) in entropies.iter().zip(accuracies) {
        let reward = acc + config.entropy_weight * entropy;
        let b = match *baseline {
            Some(b) => decay * b + (1.0 - decay) * reward,
            None => reward,
        };
        *baseline = Some(b);
        // The mean over samples is folded into the per-sample weights.
        advantages.push((reward - b) / n);
        reward_sum += reward;
    }
    Ok((advantages, reward_sum))
}

/// What an update saw: the means over its samples, and the macro skip rate.
fn update_stats(
    config: &ControllerConfig,
    baseline: Option<f32>,
    archs: &[&Arch],
    entropies: &[f32],
    log_probs: &[f32],
    reward_sum: f32,
) -> UpdateStats {
    let n = archs.len() as f32;
    let skips: usize = archs
        .iter()
        .map(|a| match a {
            Arch::Macro(a) => a.layers.iter().map(|l| l.skips.iter().filter(|&&b| b).count()).sum(),
            Arch::Micro(_) => 0,
        })
        .sum();
    let skip_slots = match config.space {
        EnasSpace::Macro { num_layers } => num_layers * num_layers.saturating_sub(1) / 2,
        EnasSpace::Micro { .. } => 0,
    };
    UpdateStats {
        reward: reward_sum / n,
        baseline: baseline.unwrap_or(0.0),
        entropy: entropies.iter().sum::<f32>() / n,
        log_prob: log_probs.iter().sum::<f32>() / n,
        skip_rate: if skip_slots == 0 { 0.0 } else { skips as f32 / (skip_slots as f32 * n) },
    }
}

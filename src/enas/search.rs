//! The ENAS search (melodyguan/enas `main.py` train loop) as a [`Method`] of the run loop: per
//! epoch, shared-weight training on the training part (a fresh architecture from the
//! controller per minibatch), then a round of controller training (reward = the sampled
//! child's accuracy on one validation minibatch) as the epoch's extra work; then derivation of
//! the final architecture. Counters, metrics, checkpoints and resume are the [`RunLoop`]'s.
//!
//! Rewards and derivation scores use batch statistics in BN (train mode, no gradient): the
//! running statistics mix every architecture sampled so far and fit none of them.

use serde::{Deserialize, Serialize};

use super::controller::{Controller, ControllerConfig, Sample, UpdateStats};
use super::macro_space::{MacroConfig, MacroNetwork};
use super::micro::{MicroConfig, MicroNetwork};
use crate::checkpoint::Checkpoint;
use crate::data::{Dataset, Loader, LoaderConfig, LoaderState, Normalize};
use crate::error::{Error, Result};
use crate::gpu::{DeviceLoader, Gpu};
use crate::metrics::PendingStep;
use crate::nn::Module;
use crate::ops::softmax;
use crate::optim::{clip_grad_norm, CosineWarmRestarts, Optimizer, Schedule, Sgd};
use crate::rng::Rng;
use crate::run_loop::{mean_of, Method, Recorded, RunLoop, StepAt};
use crate::space::EnasSpace;
use crate::space::{Arch, Genotype, ModelGraph};
use crate::tensor::{read_all, Tensor};

/// The shared model's shape, for either space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SharedModelConfig {
    /// The micro space's shared model: stacks of normal and reduction cells.
    Micro(MicroConfig),
    /// The macro space's shared model: a chain of layers with skip connections.
    Macro(MacroConfig),
}

/// Every setting of an ENAS search. [`EnasConfig::micro`] and [`EnasConfig::macro_space`]
/// give the reference's search scripts' values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnasConfig {
    /// The shared model's space and shape.
    pub model: SharedModelConfig,
    /// The controller's size, sampling and REINFORCE settings.
    pub controller: ControllerConfig,
    /// Epochs to search (micro 150, macro 310).
    pub epochs: usize,
    /// Images per batch, for shared steps and for rewards (micro 160, macro 128).
    pub batch_size: usize,
    /// Shared weights: SGD Nesterov, cosine with warm restarts per epoch.
    pub lr_max: f32,
    /// The learning rate each cosine period ends at (0.0005).
    pub lr_min: f32,
    /// The first period of the warm restarts, in epochs (10).
    pub lr_t0: f64,
    /// Each period is this many times longer than the one before (2).
    pub lr_t_mult: f64,
    /// SGD momentum of the shared weights, Nesterov (0.9).
    pub momentum: f32,
    /// L2 weight decay of the shared weights (micro 1e-4, macro 2.5e-4).
    pub weight_decay: f32,
    /// The shared weights' gradients are clipped to this total L2 norm (5).
    pub grad_clip: f32,
    /// Share of the training set the shared weights learn on; the rest gives the rewards.
    pub train_portion: f64,
    /// Shared steps per epoch; `None` is a pass over the training part.
    pub steps_per_epoch: Option<usize>,
    /// Controller updates per epoch, each over `controller.num_aggregate` samples.
    pub controller_steps: usize,
    /// Shared-step metrics are read back every this many steps.
    pub log_every: usize,
    /// Seeds init, the split, data order, and the controller's draws.
    pub seed: u64,
    /// Architectures sampled by [`Enas::derive`].
    pub derive_samples: usize,
}

impl EnasConfig {
    /// `cifar10_micro_search.sh`: 6 layers, 20 channels, 5 nodes, batch 160, 150 epochs, lr
    /// 0.05 -> 0.0005 restarting after 10, 20, ... epochs, 30 controller updates per epoch.
    pub fn micro(in_channels: usize, num_classes: usize) -> Self {
        EnasConfig {
            model: SharedModelConfig::Micro(MicroConfig::enas(in_channels, num_classes)),
            controller: ControllerConfig::micro(5),
            epochs: 150,
            batch_size: 160,
            lr_max: 0.05,
            lr_min: 0.0005,
            lr_t0: 10.0,
            lr_t_mult: 2.0,
            momentum: 0.9,
            weight_decay: 1e-4,
            grad_clip: 5.0,
            train_portion: 0.9,
            steps_per_epoch: None,
            controller_steps: 30,
            log_every: 10,
            seed: 0,
            derive_samples: 100,
        }
    }

    /// `cifar10_macro_search.sh`: 12 layers, 36 channels, batch 128, 310 epochs, weight decay
    /// 2.5e-4, 50 controller updates per epoch.
    pub fn macro_space(in_channels: usize, num_classes: usize) -> Self {
        EnasConfig {
            model: SharedModelConfig::Macro(MacroConfig::enas(in_channels, num_classes)),
            controller: ControllerConfig::macro_space(12),
            epochs: 310,
            batch_size: 128,
            weight_decay: 2.5e-4,
            controller_steps: 50,
            ..EnasConfig::micro(in_channels, num_classes)
        }
    }

    /// Checks the controller's settings, that controller and model are of the same space and size,
    /// that counts are at least 1, and the learning rates.
    pub fn validate(&self) -> Result<()> {
        self.controller.validate()?;
        let matches = match (&self.model, self.controller.space) {
            (SharedModelConfig::Micro(m), EnasSpace::Micro { num_nodes }) => m.num_nodes == num_nodes,
            (SharedModelConfig::Macro(m), EnasSpace::Macro { num_layers }) => m.num_layers == num_layers,
            _ => false,
        };
        if !matches {
            return Err(Error::Config(format!(
                "the controller samples {:?} but the shared model is {:?}",
                self.controller.space, self.model
            )));
        }
        if self.epochs == 0 || self.batch_size == 0 || self.derive_samples == 0 {
            return Err(Error::Config("epochs, batch size and derive samples must be at least 1".into()));
        }
        if self.controller_steps == 0 {
            return Err(Error::Config(
                "0 controller steps per epoch: the controller would never learn; give at least 1".into(),
            ));
        }
        crate::optim::check_lr("the shared weights' learning rate", self.lr_max)?;
        crate::optim::check_lr("the controller's learning rate", self.controller.lr)?;
        Ok(())
    }
}

/// The shared model of either space.
pub enum SharedModel {
    /// The micro space's shared model.
    Micro(MicroNetwork),
    /// The macro space's shared model.
    Macro(MacroNetwork),
}

impl SharedModel {
    fn new(gpu: &Gpu, rng: &mut Rng, config: &SharedModelConfig) -> Result<SharedModel> {
        Ok(match config {
            SharedModelConfig::Micro(c) => SharedModel::Micro(MicroNetwork::new(gpu, rng, c.clone())?),
            SharedModelConfig::Macro(c) => SharedModel::Macro(MacroNetwork::new(gpu, rng, c.clone())?),
        })
    }

    /// x: [N, C, H, W] -> logits [N, classes] of the child `arch`.
    pub fn forward(&self, x: &Tensor, arch: &Arch, train: bool) -> Result<Tensor> {
        match (self, arch) {
            (SharedModel::Micro(m), Arch::Micro(a)) => m.forward(x, a, train),
            (SharedModel::Macro(m), Arch::Macro(a)) => m.forward(x, a, train),
            _ => Err(Error::Config("the architecture is of the other ENAS space".into())),
        }
    }

    /// The model as a [`Module`]: its parameters and buffers.
    pub fn module(&self) -> &dyn Module {
        match self {
            SharedModel::Micro(m) => m,
            SharedModel::Macro(m) => m,
        }
    }
}

/// One shared-weight step's numbers, as read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnasStep {
    /// Epoch of the step, from 0.
    pub epoch: usize,
    /// Global shared-weight step, from 0.
    pub step: u64,
    /// The shared weights' learning rate at this step.
    pub lr: f32,
    /// Cross-entropy of the sampled child on the training batch.
    pub loss: f32,
    /// Accuracy of the sampled child on the training batch, in [0, 1].
    pub acc: f32,
}

/// One controller update's numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControllerMetrics {
    /// The epoch whose controller phase ran the update, from 0.
    pub epoch: usize,
    /// Number of the update over the whole search, from 0.
    pub update: u64,
    /// Mean reward, baseline, entropy, log-probability and skip rate of the update.
    #[serde(flatten)]
    pub stats: UpdateStats,
}

/// The numbers of one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnasEpoch {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// The shared weights' learning rate during the epoch.
    pub lr: f32,
    /// Mean training loss of the epoch's shared steps.
    pub train_loss: f32,
    /// Mean training accuracy of the epoch's shared steps, in [0, 1].
    pub train_acc: f32,
    /// Mean reward and entropy over the epoch's controller updates.
    pub reward: f32,
    /// The controller's moving-average baseline at the end of the epoch.
    pub baseline: f32,
    /// Mean entropy of the sampled architectures (nats, summed over decisions).
    pub entropy: f32,
}

/// An architecture with its validation-batch accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The architecture.
    pub arch: Arch,
    /// Its accuracy on the validation batch, in [0, 1].
    pub score: f32,
}

/// The final architecture: the best of the sampled ones, and the top 10.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    /// The highest-scoring sample (ties to the earliest).
    pub best: Scored,
    /// The best architecture as a genotype (micro only; `None` for macro).
    pub genotype: Option<Genotype>,
    /// The best architecture as graphs: normal and reduction cell (micro) or the network (macro).
    pub graphs: Vec<ModelGraph>,
    /// The 10 best samples, best first.
    pub top: Vec<Scored>,
}

impl Derived {
    /// Pretty-printed JSON of the whole result.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises")
    }

    /// Graphviz DOT of the best architecture.
    pub fn to_dot(&self) -> String {
        self.best.arch.to_dot()
    }
}

/// The search's own cursors and counters in a checkpoint.
#[derive(Serialize, Deserialize)]
pub struct EnasState {
    updates: u64,
    baseline: Option<f32>,
    rng: Rng,
    train: LoaderState,
    valid: LoaderState,
    controller_metrics: Vec<ControllerMetrics>,
}

/// The ENAS search method (melodyguan/enas `main.py`): the controller, the shared model and
/// its optimizer, the two data parts, and the controller's numbers so far.
pub struct Enas {
    gpu: Gpu,
    /// The settings, with the model's input channels and classes taken from the data set.
    pub config: EnasConfig,
    /// The LSTM controller and its optimizer.
    pub controller: Controller,
    /// The shared weights.
    pub model: SharedModel,
    optimizer: Sgd,
    schedule: CosineWarmRestarts,
    train: DeviceLoader,
    valid: DeviceLoader,
    rng: Rng,
    updates: u64,
    /// Every controller update's numbers.
    pub controller_metrics: Vec<ControllerMetrics>,
    /// The architectures the latest controller update sampled, with their rewards' accuracies
    /// (for display; not part of a checkpoint).
    pub last_samples: Vec<Scored>,
}

/// An ENAS search in progress: [`Enas`] in the run loop.
pub type EnasSearch = RunLoop<Enas>;

impl RunLoop<Enas> {
    /// A new search on `data` (its training set), split by `train_portion`.
    pub fn new(gpu: &Gpu, config: EnasConfig, data: &Dataset) -> Result<EnasSearch> {
        RunLoop::start(gpu, Enas::new(gpu, config, data)?)
    }

    /// Continues a search from a checkpoint taken on the same data set.
    pub fn resume(gpu: &Gpu, checkpoint: &Checkpoint, data: &Dataset) -> Result<EnasSearch> {
        // Before the fused controller its parameters were saved one tensor each (controller.lstm.w_ih,
        // ...); they are one packed tensor now, and such a run cannot continue.
        if checkpoint.get("controller.weights").is_none() && checkpoint.get("controller.lstm.w_ih").is_some() {
            return Err(Error::Config(
                "this ENAS run was written by an older wgpu-nas (its controller's parameters one tensor \
                 each); this version packs them into one and cannot resume it: start a new search, or \
                 resume it with the version that started it"
                    .into(),
            ));
        }
        RunLoop::resume_with(gpu, checkpoint, |config| Enas::new(gpu, config, data))
    }

    /// One controller update now (outside the epoch's order; `bench enas` times it).
    pub async fn controller_update(&mut self) -> Result<ControllerMetrics> {
        let at = StepAt { epoch: self.epoch(), step: self.global_step() };
        self.method.controller_update(at).await
    }
}

impl Enas {
    /// The search method on `data` (its training set), split by `train_portion`.
    pub fn new(gpu: &Gpu, config: EnasConfig, data: &Dataset) -> Result<Enas> {
        let mut config = config;
        match &mut config.model {
            SharedModelConfig::Micro(m) => (m.in_channels, m.num_classes) = (data.channels, data.num_classes),
            SharedModelConfig::Macro(m) => (m.in_channels, m.num_classes) = (data.channels, data.num_classes),
        }
        config.validate()?;
        let mut rng = Rng::new(config.seed);
        let controller = Controller::new(gpu, &mut rng, config.controller.clone())?;
        let model = SharedModel::new(gpu, &mut rng, &config.model)?;
        let (train_data, valid_data) = data.split(config.train_portion, &mut rng)?;
        if config.batch_size > train_data.n.min(valid_data.n) {
            return Err(Error::Config(format!(
                "batch size {} is bigger than the training ({}) or validation ({}) part; use a smaller batch size",
                config.batch_size, train_data.n, valid_data.n
            )));
        }
        let normalize = Normalize::fit(&train_data);
        let loader_config = LoaderConfig::new(config.batch_size, normalize).with_drop_last(true);
        let train = DeviceLoader::new(Loader::new(train_data, loader_config.clone(), &mut rng)?);
        let valid = DeviceLoader::new(Loader::new(valid_data, loader_config, &mut rng)?);
        let weights = model.module().param_list();
        let optimizer = Sgd::new(&weights, config.lr_max, config.momentum, config.weight_decay, true)?;
        let schedule = CosineWarmRestarts::new(config.lr_max, config.lr_min, config.lr_t0, config.lr_t_mult)?;
        Ok(Enas {
            gpu: gpu.clone(),
            config,
            controller,
            model,
            optimizer,
            schedule,
            train,
            valid,
            rng,
            updates: 0,
            controller_metrics: vec![],
            last_samples: vec![],
        })
    }

    /// The shared weights' learning rate in `epoch`.
    pub fn lr_at(&self, epoch: usize) -> f32 {
        self.schedule.lr(epoch as f64)
    }

    /// One architecture from the controller, drawn from the search's random stream, recorded
    /// on the tape (for a [`Controller::update`] after it).
    pub async fn sample(&mut self) -> Result<Sample> {
        self.controller.sample(&mut self.rng).await
    }

    /// The accuracy of `arch` on the batch (x, y), no gradient, BN batch statistics: [].
    fn child_accuracy(&self, x: &Tensor, y: &Tensor, arch: &Arch) -> Result<Tensor> {
        self.gpu.no_grad(|| softmax::accuracy(&self.model.forward(x, arch, true)?, y))
    }

    /// One controller update: `num_aggregate` samples, each rewarded on its own validation
    /// minibatch; one readback per sample plus one for the rewards.
    pub async fn controller_update(&mut self, at: StepAt) -> Result<ControllerMetrics> {
        let mut samples: Vec<Sample> = Vec::with_capacity(self.config.controller.num_aggregate);
        let mut accs = Vec::with_capacity(samples.capacity());
        for _ in 0..self.config.controller.num_aggregate {
            let s = self.controller.sample(&mut self.rng).await?;
            let (x, y) = self.valid.next(&self.gpu)?;
            accs.push(self.child_accuracy(&x, &y, &s.arch)?);
            samples.push(s);
        }
        let values = read_all(&accs.iter().collect::<Vec<_>>()).await?;
        let rewards: Vec<f32> = values.iter().map(|v| v[0]).collect();
        let stats = self.controller.update(&samples, &rewards)?;
        for (value, what) in [
            (stats.reward, "the controller's reward"),
            (stats.entropy, "the controller's entropy"),
            (stats.log_prob, "the controller's log-probability"),
        ] {
            if !value.is_finite() {
                return Err(Error::NonFinite { step: at.step, what });
            }
        }
        self.last_samples =
            samples.into_iter().zip(&rewards).map(|(s, &score)| Scored { arch: s.arch, score }).collect();
        let m = ControllerMetrics { epoch: at.epoch, update: self.updates, stats };
        self.updates += 1;
        self.controller_metrics.push(m.clone());
        Ok(m)
    }

    /// Samples `derive_samples` architectures, scores each on the same validation batch, and
    /// keeps the best and the top 10. One readback per sample plus one for all scores.
    pub async fn derive(&mut self) -> Result<Derived> {
        let (x, y) = self.valid.next(&self.gpu)?;
        let mut archs = Vec::with_capacity(self.config.derive_samples);
        let mut scores = Vec::with_capacity(self.config.derive_samples);
        for _ in 0..self.config.derive_samples {
            let s = self.gpu.no_grad(|| self.controller.sample(&mut self.rng)).await?;
            scores.push(self.child_accuracy(&x, &y, &s.arch)?);
            archs.push(s.arch);
        }
        let values = read_all(&scores.iter().collect::<Vec<_>>()).await?;
        let mut scored: Vec<Scored> =
            archs.into_iter().zip(values).map(|(arch, v)| Scored { arch, score: v[0] }).collect();
        // Stable: among equal scores the earlier sample wins.
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        scored.truncate(10);
        let best = scored[0].clone();
        Ok(Derived { genotype: best.arch.genotype(), graphs: best.arch.graphs(), best, top: scored })
    }
}

impl Method for Enas {
    type Config = EnasConfig;
    type Step = EnasStep;
    type Epoch = EnasEpoch;
    type State = EnasState;
    const KIND: &'static str = "enas";
    const NAME: &'static str = "an ENAS search";
    const SCALARS: usize = 2;
    const LOSSES: &'static [(usize, &'static str)] = &[(0, "the shared weights' training loss")];

    fn config(&self) -> &EnasConfig {
        &self.config
    }

    fn epochs(&self) -> usize {
        self.config.epochs
    }

    /// `config.steps_per_epoch`, or one pass over the training part in full batches.
    fn steps_per_epoch(&self) -> usize {
        self.config.steps_per_epoch.unwrap_or(self.train.batches_per_epoch()).max(1)
    }

    fn log_every(&self) -> usize {
        self.config.log_every
    }

    /// One shared-weight step on a training batch with a freshly sampled architecture (one
    /// readback: the architecture).
    async fn step(&mut self, at: StepAt) -> Result<Recorded> {
        let lr = self.lr_at(at.epoch);
        self.optimizer.set_lr(lr);
        let sample = self.gpu.no_grad(|| self.controller.sample(&mut self.rng)).await?;
        let (x, y) = self.train.next(&self.gpu)?;
        let weights = self.model.module().param_list();
        let logits = self.model.forward(&x, &sample.arch, true)?;
        let loss = softmax::cross_entropy(&logits, &y)?;
        let acc = softmax::accuracy(&logits, &y)?;
        // Weights of operations the child did not run get a zero gradient (SGD's weight decay
        // and momentum still move them, as PyTorch's SGD does for a zero gradient).
        let g = self.gpu.grad(&loss, &weights)?;
        clip_grad_norm(&g, self.config.grad_clip)?;
        self.optimizer.step(&weights, &g)?;
        Ok(Recorded { lr, scalars: vec![loss, acc] })
    }

    fn step_metrics(&self, p: PendingStep, r: &[f32]) -> EnasStep {
        EnasStep { epoch: p.epoch, step: p.step, lr: p.lr, loss: r[0], acc: r[1] }
    }

    /// The controller updates of the epoch.
    fn extra_units(&self) -> usize {
        self.config.controller_steps
    }

    async fn extra(&mut self, at: StepAt) -> Result<()> {
        self.controller_update(at).await.map(|_| ())
    }

    /// The means of the epoch's steps and controller updates.
    async fn close_epoch(&mut self, at: StepAt, steps: &[EnasStep]) -> Result<EnasEpoch> {
        let updates: Vec<&ControllerMetrics> = self.controller_metrics.iter().filter(|m| m.epoch == at.epoch).collect();
        Ok(EnasEpoch {
            epoch: at.epoch,
            lr: self.lr_at(at.epoch),
            train_loss: mean_of(steps, |m| m.loss),
            train_acc: mean_of(steps, |m| m.acc),
            reward: mean_of(&updates, |m| m.stats.reward),
            baseline: self.controller.baseline.unwrap_or(0.0),
            entropy: mean_of(&updates, |m| m.stats.entropy),
        })
    }

    /// The controller's and the shared model's parameters, and the model's buffers.
    fn tensors(&self, named: &mut Vec<(String, Tensor)>) {
        self.controller.params("controller", named);
        self.model.module().params("model", named);
        self.model.module().buffers("model", named);
    }

    fn optimizers(&mut self) -> Vec<(&'static str, &mut dyn Optimizer)> {
        vec![("sgd", &mut self.optimizer), ("adam", &mut self.controller.optimizer)]
    }

    fn state(&self) -> EnasState {
        EnasState {
            updates: self.updates,
            baseline: self.controller.baseline,
            rng: self.rng.clone(),
            train: self.train.state(),
            valid: self.valid.state(),
            controller_metrics: self.controller_metrics.clone(),
        }
    }

    fn restore(&mut self, state: EnasState) -> Result<()> {
        self.updates = state.updates;
        self.controller.baseline = state.baseline;
        self.rng = state.rng;
        self.train.restore(state.train)?;
        self.valid.restore(state.valid)?;
        self.controller_metrics = state.controller_metrics;
        Ok(())
    }
}

//! Retraining (quark0/darts `train.py`) as a [`Method`] of the run loop: SGD with momentum and
//! weight decay, a cosine learning rate per epoch from `lr` to `lr_min`, gradient clipping, the
//! auxiliary loss, drop path rising linearly per epoch, crop/flip/cutout augmentation, and the
//! test accuracy after every epoch. Counters, metrics, checkpoints and resume are the
//! [`RunLoop`]'s. The same method trains an ENAS macro network ([`TrainConfig::enas_macro`]).

use serde::{Deserialize, Serialize};

use super::config::{Architecture, EvalNetworkConfig};
use super::eval_network::EvalNetwork;
use crate::checkpoint::Checkpoint;
use crate::data::{Augment, Dataset, Loader, LoaderConfig, LoaderState, Normalize};
use crate::error::{Error, Result};
use crate::gpu::{DeviceLoader, Gpu};
use crate::metrics::PendingStep;
use crate::nn::{auxiliary_pool, Module};
use crate::ops::{elementwise, softmax};
use crate::optim::{clip_grad_norm, CosineAnnealing, Optimizer, Schedule, Sgd};
use crate::rng::Rng;
use crate::run_loop::{mean_of, Evaluator, Method, Recorded, RunLoop, StepAt};
use crate::space::{Genotype, MacroArch};
use crate::tensor::Tensor;

/// Every setting of a retraining run. `TrainConfig::darts` gives the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The evaluation network's shape and architecture.
    pub network: EvalNetworkConfig,
    /// Epochs to train (600); also the period of the cosine and the drop path ramp.
    pub epochs: usize,
    /// Images per batch (96).
    pub batch_size: usize,
    /// SGD from `lr` down to `lr_min`, cosine over the epochs (stepped per epoch).
    pub lr: f32,
    /// The learning rate the cosine schedule ends at (0).
    pub lr_min: f32,
    /// SGD momentum (0.9).
    pub momentum: f32,
    /// L2 weight decay (3e-4).
    pub weight_decay: f32,
    /// Gradients are clipped to this total L2 norm (5).
    pub grad_clip: f32,
    /// Weight of the auxiliary head's loss (used when the network has the head).
    pub auxiliary_weight: f32,
    /// Drop path probability reached at the end: epoch `e` uses `drop_path_prob * e / epochs`.
    pub drop_path_prob: f32,
    /// Training augmentation; the paper's is crop (padding 4), flip and cutout 16.
    pub augment: Augment,
    /// Steps per epoch; `None` is a full pass over the training set (full batches).
    pub steps_per_epoch: Option<usize>,
    /// Test batches scored per epoch; `None` scores the whole test set.
    pub eval_batches: Option<usize>,
    /// Metrics are read back every this many steps.
    pub log_every: usize,
    /// Seeds weight init, data order, augmentation and drop-path masks.
    pub seed: u64,
}

impl TrainConfig {
    /// The paper's CIFAR-10 retraining: C=36, 20 cells, auxiliary 0.4, 600 epochs, batch 96,
    /// lr 0.025 cosine to 0, momentum 0.9, weight decay 3e-4, clip 5, drop path 0.2, cutout 16.
    pub fn darts(in_channels: usize, num_classes: usize, genotype: Genotype) -> Self {
        TrainConfig {
            network: EvalNetworkConfig::darts(in_channels, num_classes, genotype),
            epochs: 600,
            batch_size: 96,
            lr: 0.025,
            lr_min: 0.0,
            momentum: 0.9,
            weight_decay: 3e-4,
            grad_clip: 5.0,
            auxiliary_weight: 0.4,
            drop_path_prob: 0.2,
            augment: Augment::darts_train(16),
            steps_per_epoch: None,
            eval_batches: None,
            log_every: 50,
            seed: 0,
        }
    }

    /// A NAS-Bench-201 cell on the benchmark's network (C=16, N=5) with the DARTS settings
    /// otherwise, without drop path or auxiliary head (the benchmark trains with neither).
    pub fn nas_bench_201(in_channels: usize, num_classes: usize, cell: crate::space::NasBench201Cell) -> Self {
        TrainConfig {
            network: EvalNetworkConfig::nas_bench_201(in_channels, num_classes, cell),
            drop_path_prob: 0.0,
            ..TrainConfig::darts(in_channels, num_classes, crate::space::darts_v2())
        }
    }

    /// The ENAS reference's macro retraining (`cifar10_macro_final.sh`): out_filters 96, no
    /// auxiliary head, no drop path, 310 epochs, batch 100, lr 0.05 cosine to 0.001, momentum
    /// 0.9, weight decay 4e-4 (the reference adds `l2_reg * sum(w^2)` with `l2_reg` 2e-4 to the
    /// loss, which is weight decay 2 * 2e-4), crop (padding 4) and flip without cutout. Where we
    /// differ: one cosine period instead of the reference's warm restarts (`lr_T_0` 10,
    /// `lr_T_mul` 2, periods of 10, 20, ..., 160 epochs), plain momentum instead of Nesterov,
    /// and the gradient's global norm clipped at 5 (the reference's `child_grad_bound` 5 with
    /// `clip_mode="norm"` appends the unclipped gradients, so it does not clip).
    pub fn enas_macro(in_channels: usize, num_classes: usize, arch: MacroArch) -> Self {
        TrainConfig {
            network: EvalNetworkConfig::enas_macro(in_channels, num_classes, arch),
            epochs: 310,
            batch_size: 100,
            lr: 0.05,
            lr_min: 0.001,
            momentum: 0.9,
            weight_decay: 4e-4,
            grad_clip: 5.0,
            auxiliary_weight: 0.4,
            drop_path_prob: 0.0,
            augment: Augment::darts_train(0),
            steps_per_epoch: None,
            eval_batches: None,
            log_every: 50,
            seed: 0,
        }
    }
}

/// One step's numbers, as read back. `train_loss` includes the weighted auxiliary loss (as the
/// reference logs it); `train_acc` is the main classifier's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainStep {
    /// Epoch of the step, from 0.
    pub epoch: usize,
    /// Global step number, from 0.
    pub step: u64,
    /// The learning rate at this step.
    pub lr: f32,
    /// Cross-entropy of the batch, plus `auxiliary_weight` times the auxiliary head's.
    pub train_loss: f32,
    /// Accuracy of the main classifier on the batch, in [0, 1].
    pub train_acc: f32,
}

/// One epoch: the means of its steps, and the test set scored afterwards (BN running
/// statistics, no drop path).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainEpoch {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// The learning rate during the epoch.
    pub lr: f32,
    /// The drop path probability during the epoch.
    pub drop_prob: f32,
    /// Mean training loss of the epoch's steps (auxiliary loss included).
    pub train_loss: f32,
    /// Mean training accuracy of the epoch's steps, in [0, 1].
    pub train_acc: f32,
    /// Cross-entropy on the test set after the epoch.
    pub test_loss: f32,
    /// Accuracy on the test set after the epoch, in [0, 1].
    pub test_acc: f32,
}

/// Retraining's own cursors in a checkpoint.
#[derive(Serialize, Deserialize)]
pub struct RetrainState {
    rng: Rng,
    train: LoaderState,
}

/// The retraining method: the network, its optimizer and data.
pub struct Retrain {
    gpu: Gpu,
    /// The settings, with the network's input channels and classes taken from the data.
    pub config: TrainConfig,
    /// The network being trained.
    pub net: EvalNetwork,
    optimizer: Sgd,
    schedule: CosineAnnealing,
    /// Draws the drop-path masks (weight init and the loader's seed came from it first).
    rng: Rng,
    train: DeviceLoader,
    /// Scores the network on the test set after each epoch.
    evaluator: Evaluator,
    /// [1] = auxiliary_weight, a constant the auxiliary loss is scaled by on the GPU.
    aux_weight: Tensor,
}

/// A retraining run: [`Retrain`] in the run loop.
pub type Trainer = RunLoop<Retrain>;

impl RunLoop<Retrain> {
    /// A new run on `train` (augmented, shuffled) scored on `test`. The input channels and
    /// classes of the network are taken from the data.
    pub fn new(gpu: &Gpu, config: TrainConfig, train: &Dataset, test: &Dataset) -> Result<Trainer> {
        RunLoop::start(gpu, Retrain::new(gpu, config, train, test)?)
    }

    /// Continues a run from a checkpoint taken with the same training and test data.
    pub fn resume(gpu: &Gpu, checkpoint: &Checkpoint, train: &Dataset, test: &Dataset) -> Result<Trainer> {
        RunLoop::resume_with(gpu, checkpoint, |config| Retrain::new(gpu, config, train, test))
    }

    /// The learning rate of the current epoch.
    pub fn lr(&self) -> f32 {
        self.method.lr_at(self.epoch())
    }

    /// The drop path probability of the current epoch.
    pub fn drop_prob(&self) -> f32 {
        self.method.drop_prob_at(self.epoch())
    }

    /// `utils.count_parameters_in_MB` of the network (auxiliary head excluded).
    pub fn param_size_mb(&self) -> f64 {
        self.method.net.count_parameters_in_mb()
    }

    /// Runs the remaining epochs; `on_epoch` sees each epoch's metrics (write a checkpoint
    /// there). Returns the metrics of every epoch of the run.
    pub async fn run(
        &mut self,
        mut on_step: impl FnMut(&TrainStep),
        mut on_epoch: impl FnMut(&mut Trainer, &TrainEpoch) -> Result<()>,
    ) -> Result<Vec<TrainEpoch>> {
        while !self.is_finished() {
            let m = self.run_epoch(&mut on_step).await?;
            on_epoch(self, &m)?;
        }
        Ok(self.epochs.clone())
    }

    /// Writes a checkpoint to `path` atomically (temporary file, then rename).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&mut self, path: &std::path::Path) -> Result<()> {
        pollster::block_on(self.checkpoint())?.save(path)
    }

    /// Reads a checkpoint file and continues the run it holds.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(gpu: &Gpu, path: &std::path::Path, train: &Dataset, test: &Dataset) -> Result<Trainer> {
        Trainer::resume(gpu, &Checkpoint::load(path)?, train, test)
    }
}

impl Retrain {
    /// The method on `train` (augmented, shuffled) scored on `test`.
    pub fn new(gpu: &Gpu, config: TrainConfig, train: &Dataset, test: &Dataset) -> Result<Retrain> {
        let mut config = config;
        config.network.in_channels = train.channels;
        config.network.num_classes = train.num_classes;
        check(&config, train, test)?;
        let mut rng = Rng::new(config.seed);
        let net = EvalNetwork::new(gpu, &mut rng, config.network.clone())?;
        let normalize = Normalize::fit(train);
        // Full batches only (the reference keeps a smaller last one): fixed shapes for the GPU,
        // and no BN step on a handful of images.
        let loader_config =
            LoaderConfig::new(config.batch_size, normalize.clone()).with_augment(config.augment).with_drop_last(true);
        let train = DeviceLoader::new(Loader::new(train.clone(), loader_config, &mut rng)?);
        let evaluator = Evaluator::new(test.clone(), config.batch_size, normalize, false, config.eval_batches)?;
        let optimizer = Sgd::new(&net.param_list(), config.lr, config.momentum, config.weight_decay, false)?;
        let schedule = CosineAnnealing::new(config.lr, config.lr_min, config.epochs as f64)?;
        let aux_weight = Tensor::from_slice(gpu, &[1], &[config.auxiliary_weight])?;
        Ok(Retrain { gpu: gpu.clone(), config, net, optimizer, schedule, rng, train, evaluator, aux_weight })
    }

    /// The learning rate of `epoch` (cosine, stepped per epoch as the reference).
    pub fn lr_at(&self, epoch: usize) -> f32 {
        self.schedule.lr(epoch as f64)
    }

    /// The drop path probability of `epoch`: `drop_path_prob * epoch / epochs`.
    pub fn drop_prob_at(&self, epoch: usize) -> f32 {
        (self.config.drop_path_prob as f64 * epoch as f64 / self.config.epochs as f64) as f32
    }

    /// Mean loss and accuracy on the test set (each image counted once, the last batch
    /// weighted by its size): eval mode, no tape, no auxiliary head.
    pub async fn evaluate(&mut self) -> Result<(f32, f32)> {
        let net = &self.net;
        self.evaluator.evaluate(&self.gpu, |x| net.predict(x)).await
    }
}

impl Method for Retrain {
    type Config = TrainConfig;
    type Step = TrainStep;
    type Epoch = TrainEpoch;
    type State = RetrainState;
    const KIND: &'static str = "train";
    const NAME: &'static str = "a retraining run";
    const SCALARS: usize = 2;
    const LOSSES: &'static [(usize, &'static str)] = &[(0, "the training loss")];

    fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn epochs(&self) -> usize {
        self.config.epochs
    }

    /// `config.steps_per_epoch`, or one pass over the training set in full batches.
    fn steps_per_epoch(&self) -> usize {
        self.config.steps_per_epoch.unwrap_or(self.train.batches_per_epoch()).max(1)
    }

    fn log_every(&self) -> usize {
        self.config.log_every
    }

    /// One training step on the next batch; reads nothing back.
    async fn step(&mut self, at: StepAt) -> Result<Recorded> {
        let lr = self.lr_at(at.epoch);
        let drop_prob = self.drop_prob_at(at.epoch);
        self.optimizer.set_lr(lr);
        let (x, y) = self.train.next(&self.gpu)?; // x: [B, C, H, W], y: [B]
        let params = self.net.param_list();
        let (logits, logits_aux) = self.net.forward(&x, true, drop_prob, &mut self.rng)?;
        let mut loss = softmax::cross_entropy(&logits, &y)?; // []
        if let Some(aux) = &logits_aux {
            let aux_loss = softmax::cross_entropy(aux, &y)?;
            loss = elementwise::add(&loss, &elementwise::scale(&aux_loss, &self.aux_weight, 0)?)?;
        }
        let acc = softmax::accuracy(&logits, &y)?;
        let g = self.gpu.grad(&loss, &params)?;
        clip_grad_norm(&g, self.config.grad_clip)?;
        self.optimizer.step(&params, &g)?;
        Ok(Recorded { lr, scalars: vec![loss, acc] })
    }

    fn step_metrics(&self, p: PendingStep, r: &[f32]) -> TrainStep {
        TrainStep { epoch: p.epoch, step: p.step, lr: p.lr, train_loss: r[0], train_acc: r[1] }
    }

    /// Scores the test set.
    async fn close_epoch(&mut self, at: StepAt, steps: &[TrainStep]) -> Result<TrainEpoch> {
        let (test_loss, test_acc) = self.evaluate().await?;
        if !test_loss.is_finite() {
            return Err(Error::NonFinite { step: at.step, what: "the epoch's test loss" });
        }
        Ok(TrainEpoch {
            epoch: at.epoch,
            lr: self.lr_at(at.epoch),
            drop_prob: self.drop_prob_at(at.epoch),
            train_loss: mean_of(steps, |m| m.train_loss),
            train_acc: mean_of(steps, |m| m.train_acc),
            test_loss,
            test_acc,
        })
    }

    /// Parameters and BN running statistics.
    fn tensors(&self, named: &mut Vec<(String, Tensor)>) {
        self.net.params("net", named);
        self.net.buffers("net", named);
    }

    fn optimizers(&mut self) -> Vec<(&'static str, &mut dyn Optimizer)> {
        vec![("sgd", &mut self.optimizer)]
    }

    fn state(&self) -> RetrainState {
        RetrainState { rng: self.rng.clone(), train: self.train.state() }
    }

    fn restore(&mut self, state: RetrainState) -> Result<()> {
        self.rng = state.rng;
        self.train.restore(state.train)
    }
}

/// Settings that cannot work with these data sets, as one clear error each.
fn check(config: &TrainConfig, train: &Dataset, test: &Dataset) -> Result<()> {
    config.network.validate()?;
    let bad = |m: String| Err(Error::Config(m));
    if config.epochs == 0 || config.batch_size == 0 {
        return bad("epochs and batch size must be at least 1".into());
    }
    crate::optim::check_lr("the learning rate (--learning-rate)", config.lr)?;
    let side = train.height.max(train.width);
    if config.augment.cutout > side {
        return bad(format!(
            "a cutout of {} pixels is larger than the {side}-pixel images; use --cutout {side} or less \
             (16 for 32x32 images in the paper)",
            config.augment.cutout
        ));
    }
    if config.batch_size > train.n {
        return bad(format!(
            "batch size {} is bigger than the training set ({} images); use a smaller --batch-size",
            config.batch_size, train.n
        ));
    }
    if !(0.0..1.0).contains(&config.drop_path_prob) {
        return bad(format!("drop path probability must be in [0, 1), got {}", config.drop_path_prob));
    }
    if matches!(config.network.architecture, Architecture::NasBench201(_)) {
        if config.drop_path_prob > 0.0 || config.network.auxiliary {
            return bad(
                "a NAS-Bench-201 network has no drop path and no auxiliary head (the benchmark trains without); \
                 use --drop-path 0 and leave out --auxiliary"
                    .into(),
            );
        }
        if !train.height.is_multiple_of(4) || !train.width.is_multiple_of(4) {
            return bad(format!(
                "the NAS-Bench-201 skeleton halves the images twice and needs sides divisible by 4, got {}x{}",
                train.height, train.width
            ));
        }
    }
    if matches!(config.network.architecture, Architecture::Macro(_)) && config.drop_path_prob > 0.0 {
        return bad(format!(
            "an ENAS macro network has no drop path (the reference's has none), got drop path probability {}; \
             use --drop-path 0",
            config.drop_path_prob
        ));
    }
    if (test.channels, test.height, test.width, test.num_classes)
        != (train.channels, train.height, train.width, train.num_classes)
    {
        return bad(format!(
            "the test set ({}x{}x{}, {} classes) does not match the training set ({}x{}x{}, {} classes)",
            test.channels,
            test.height,
            test.width,
            test.num_classes,
            train.channels,
            train.height,
            train.width,
            train.num_classes
        ));
    }
    // Every stride-2 operation gives ceil(s/2); two reductions (cells or macro pooling layers).
    let side = |s: usize| s.div_ceil(2).div_ceil(2);
    if config.network.auxiliary {
        if train.height != train.width {
            return bad(format!(
                "the auxiliary head needs square images, got {}x{}; turn it off",
                train.height, train.width
            ));
        }
        auxiliary_pool(side(train.height))?;
    }
    Ok(())
}

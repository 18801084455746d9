//! The DARTS search (quark0/darts `train_search.py`) as a [`Method`] of the run loop: the
//! training set split in two halves, an architecture step on a validation batch then a weight
//! step on a training batch, a cosine learning rate per epoch, the alpha history read back with
//! the metrics (not inside a step), the supernet's validation accuracy and the derived genotype
//! per epoch. Counters, metrics, checkpoints and resume are the [`RunLoop`]'s.
//!
//! The DARTS family shares all of it in [`SupernetSearch`]; a member brings only its step and
//! the state that step keeps, as a [`Relaxation`]: DARTS's is the [`Architect`] (below), GDAS's
//! the Gumbel sampler of [`super::gdas`].
//!
//! PC-DARTS (yuhuixu1993/PC-DARTS `train_search.py`) is this search with a partial-channel
//! network ([`NetworkConfig::partial`]), its betas optimized with the alphas, and the
//! architecture steps starting at `arch_start_epoch` ([`SearchConfig::pc_darts`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::architect::{Architect, ArchitectConfig, WeightStep};
use super::diagnostics::{hessian_eigenvalue, mean_entropy, parameter_free_cell_ops, Collapse, EarlyStop};
use super::gdas::Temperature;
use super::model::{edge_softmax, Mixing, Network, NetworkConfig, PartialChannels};
use crate::checkpoint::Checkpoint;
use crate::data::{Augment, Dataset, Loader, LoaderConfig, LoaderState, Normalize};
use crate::error::{Error, Result};
use crate::gpu::{DeviceLoader, Gpu};
use crate::metrics::PendingStep;
use crate::nn::Module;
use crate::ops::softmax;
use crate::optim::{check_lr, grad_norm, CosineAnnealing, Optimizer, Schedule, Sgd};
use crate::rng::Rng;
use crate::run_loop::{mean_of, Evaluator, Method, Recorded, RunLoop, StepAt};
use crate::space::{derive_genotype_with_betas, CellGenotype, DeriveRule, NasBench201Cell};
use crate::tensor::{read_all, Tensor};

/// Every setting of a search. `SearchConfig::darts` gives the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// The search network's shape and candidate operations.
    pub network: NetworkConfig,
    /// The alphas' optimizer and gradient order.
    pub architect: ArchitectConfig,
    /// Epochs to search (50); also the period of the cosine schedule.
    pub epochs: usize,
    /// Images per batch, for both the weight and the architecture step (64).
    pub batch_size: usize,
    /// Weights: SGD from `lr` down to `lr_min` (cosine over the epochs).
    pub lr: f32,
    /// The learning rate the cosine schedule ends at (0.001).
    pub lr_min: f32,
    /// SGD momentum of the weights (0.9).
    pub momentum: f32,
    /// L2 weight decay of the weights (3e-4).
    pub weight_decay: f32,
    /// The weights' gradients are clipped to this total L2 norm (5).
    pub grad_clip: f32,
    /// Share of the training set the weights learn on; the rest trains the alphas.
    pub train_portion: f64,
    /// Steps per epoch; `None` is a full pass over the weights' half.
    pub steps_per_epoch: Option<usize>,
    /// Batches of the validation half scored per epoch; `None` scores all of it.
    pub eval_batches: Option<usize>,
    /// Metrics and alphas are read back every this many steps.
    pub log_every: usize,
    /// Crop (padding 4) and flip on both halves, as the reference's search does.
    pub augment: bool,
    /// Seeds weight and alpha init, the split, data order and augmentation.
    pub seed: u64,
    /// How the genotype is derived from the alphas.
    pub rule: DeriveRule,
    /// Power iterations for the dominant eigenvalue of the validation loss's Hessian with
    /// respect to the alphas at the end of every epoch (collapse diagnostics); 0 skips it.
    #[serde(default = "default_hessian_iters")]
    pub hessian_iters: usize,
    /// The radius of its finite-difference Hessian-vector products (along a unit vector).
    #[serde(default = "default_hessian_eps")]
    pub hessian_eps: f32,
    /// DARTS-ES: stop when the Hessian's eigenvalue grows too fast, keeping an earlier genotype.
    #[serde(default)]
    pub early_stop: Option<EarlyStop>,
    /// GDAS: the Gumbel-softmax temperature schedule; `None` for DARTS, which does not sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Temperature>,
    /// The first epoch with architecture steps; the weights train alone before it (0 in DARTS,
    /// 15 in PC-DARTS). The validation batch is still drawn and scored.
    #[serde(default)]
    pub arch_start_epoch: usize,
}

fn default_hessian_iters() -> usize {
    10
}

fn default_hessian_eps() -> f32 {
    1e-2
}

impl SearchConfig {
    /// The paper's search: C=16, 8 cells, 50 epochs, batch 64, first order.
    pub fn darts(in_channels: usize, num_classes: usize) -> Self {
        SearchConfig {
            network: NetworkConfig::darts(in_channels, num_classes),
            architect: ArchitectConfig::default(),
            epochs: 50,
            batch_size: 64,
            lr: 0.025,
            lr_min: 0.001,
            momentum: 0.9,
            weight_decay: 3e-4,
            grad_clip: 5.0,
            train_portion: 0.5,
            steps_per_epoch: None,
            eval_batches: None,
            log_every: 10,
            augment: true,
            seed: 2,
            rule: DeriveRule::Top2,
            hessian_iters: default_hessian_iters(),
            hessian_eps: default_hessian_eps(),
            early_stop: None,
            temperature: None,
            arch_start_epoch: 0,
        }
    }

    /// GDAS's search (Dong & Yang 2019) on the DARTS supernet: the DARTS settings, the
    /// temperature annealed from 10 to 0.1.
    pub fn gdas(in_channels: usize, num_classes: usize) -> Self {
        SearchConfig { temperature: Some(Temperature::gdas()), ..SearchConfig::darts(in_channels, num_classes) }
    }

    /// PC-DARTS's CIFAR-10 search (yuhuixu1993/PC-DARTS `train_search.py`): the DARTS network
    /// with K=4 partial channels and edge normalisation, batch 256, weights' lr 0.1 (cosine to
    /// 0.001), the alphas' and betas' Adam lr 6e-4, architecture steps from epoch 15, first order.
    pub fn pc_darts(in_channels: usize, num_classes: usize) -> Self {
        let mut c = SearchConfig::darts(in_channels, num_classes);
        c.network.partial = Some(PartialChannels::pc_darts());
        c.batch_size = 256;
        c.lr = 0.1;
        c.architect.lr = 6e-4;
        c.arch_start_epoch = 15;
        c
    }
}

/// One step's numbers, as read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DartsStep {
    /// Epoch of the step, from 0.
    pub epoch: usize,
    /// Global step number, from 0.
    pub step: u64,
    /// The weights' learning rate at this step.
    pub lr: f32,
    /// Cross-entropy of the weight step's training batch.
    pub train_loss: f32,
    /// Accuracy of the weight step's training batch, in [0, 1].
    pub train_acc: f32,
    /// On the validation batch of the architecture step (at the unrolled weights in second order).
    pub val_loss: f32,
    /// Accuracy on that validation batch, in [0, 1].
    pub val_acc: f32,
}

/// softmax(alphas) of both cell types after a step: `[edges][ops]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlphaRecord {
    /// The global step after which the alphas were read (from 0).
    pub step: u64,
    /// softmax(alphas_normal), one row of op weights per edge: `[edges][ops]`.
    pub normal: Vec<Vec<f32>>,
    /// softmax(alphas_reduce), one row of op weights per edge: `[edges][ops]` (empty in
    /// NAS-Bench-201, which has no reduce alphas).
    pub reduce: Vec<Vec<f32>>,
    /// PC-DARTS's edge weights of the normal cell (betas softmaxed per node): `[edges]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges_normal: Option<Vec<f32>>,
    /// The reduction cell's: `[edges]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges_reduce: Option<Vec<f32>>,
}

/// The numbers of one finished epoch and the genotype derived at its end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DartsEpoch {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// The weights' learning rate during the epoch.
    pub lr: f32,
    /// Mean training loss of the epoch's steps.
    pub train_loss: f32,
    /// Mean training accuracy of the epoch's steps, in [0, 1].
    pub train_acc: f32,
    /// The supernet's loss and accuracy on the validation half (BN running statistics): DARTS's
    /// softmax-weighted supernet, GDAS's argmax architecture in it.
    pub val_loss: f32,
    /// Accuracy on the validation half, in [0, 1].
    pub val_acc: f32,
    /// The genotype derived from the alphas at the end of the epoch (in NAS-Bench-201 the cell,
    /// its benchmark string in JSON).
    pub genotype: CellGenotype,
    /// How close the search is to collapsing: parameter-free operations, edge entropies and the
    /// Hessian's dominant eigenvalue.
    pub collapse: Collapse,
    /// GDAS: the Gumbel-softmax temperature of the epoch (`None` for DARTS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau: Option<f32>,
}

/// The search's own cursors in a checkpoint, with those of its [`Relaxation`] (`S`).
#[derive(Serialize, Deserialize)]
pub struct DartsState<S = ()> {
    train: LoaderState,
    valid: LoaderState,
    alpha_history: Vec<AlphaRecord>,
    #[serde(default)]
    eigenvalues: Vec<f32>,
    #[serde(default)]
    genotypes: Vec<CellGenotype>,
    #[serde(default)]
    stopped: Option<EarlyStopped>,
    #[serde(default)]
    relaxation: S,
}

/// Where DARTS-ES stopped a search, and the genotype it keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopped {
    /// The epoch after which the search stopped, from 0.
    pub epoch: usize,
    /// The genotype derived `window` epochs before.
    pub genotype: CellGenotype,
}

/// What a member of the DARTS family brings to [`SupernetSearch`]: its step (how the alphas
/// enter the forward pass, how they and the weights are updated) and the state the step keeps.
/// The data halves, the weights' optimizer and schedule, evaluation, genotype, collapse
/// diagnostics, early stopping and checkpoints are shared.
#[allow(async_fn_in_trait)] // single-threaded GPU code (the browser): no Send bound wanted
pub trait Relaxation: Sized {
    /// The step's own cursors for a checkpoint (GDAS: its noise stream).
    type State: Serialize + DeserializeOwned + Default;
    /// The checkpoint kind ("darts", "gdas").
    const KIND: &'static str;
    /// What a run is called in errors ("a DARTS search").
    const NAME: &'static str;
    /// Whether a step updates the alphas before the weights (DARTS) or after them (GDAS).
    const ALPHAS_FIRST: bool;
    /// Whether the epoch's validation score is of the argmax op of each edge alone (GDAS, whose
    /// weights learn one op at a time) instead of the softmax-weighted supernet (DARTS).
    const EVALUATES_ARGMAX: bool;
    /// The step's parts for `net` under `config` (checked: settings it cannot use are errors).
    fn new(net: &Network, config: &SearchConfig) -> Result<Self>;
    /// One step on the search's shared parts; calls `between_halves` once the first half (see
    /// [`Relaxation::ALPHAS_FIRST`]) is recorded. Returns the step's scalars: train loss and
    /// accuracy, validation loss and accuracy.
    async fn step(&mut self, parts: StepParts<'_>, between_halves: &mut dyn FnMut()) -> Result<Recorded>;
    /// The alphas' optimizer.
    fn alpha_optimizer(&mut self) -> &mut dyn Optimizer;
    /// The step's state for a checkpoint.
    fn state(&self) -> Self::State;
    /// Continues from a saved state.
    fn restore(&mut self, state: Self::State) -> Result<()>;
}

/// The shared parts of a search that a [`Relaxation`]'s step works on, borrowed for one step.
pub struct StepParts<'a> {
    /// The device.
    pub gpu: &'a Gpu,
    /// The search's settings.
    pub config: &'a SearchConfig,
    /// The supernet.
    pub net: &'a Network,
    /// The epoch of the step, from 0.
    pub epoch: usize,
    /// The weights' learning rate in this epoch.
    pub lr: f32,
    /// The weights' SGD.
    pub optimizer: &'a mut Sgd,
    /// The weights' half of the training set.
    pub train: &'a mut DeviceLoader,
    /// The alphas' half.
    pub valid: &'a mut DeviceLoader,
}

impl StepParts<'_> {
    /// The next batch of each half on the GPU: (training images, labels), (validation ...).
    pub fn batches(&mut self) -> Result<((Tensor, Tensor), (Tensor, Tensor))> {
        Ok((self.train.next(self.gpu)?, self.valid.next(self.gpu)?))
    }

    /// The weight step on a training batch (x `[B, C, H, W]`, labels y `[B]`): the cross-entropy of
    /// `forward(x)`'s logits, its gradient in the weights alone (the alphas are constants),
    /// clipped to `grad_clip` and applied by SGD. Returns the loss and accuracy (GPU scalars).
    pub fn weight_step(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        forward: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let weights = self.net.weights();
        let logits = self.gpu.recording_for(&weights, || forward(x))?;
        let loss = softmax::cross_entropy(&logits, y)?;
        let acc = softmax::accuracy(&logits, y)?;
        let g = self.gpu.grad(&loss, &weights)?;
        // clip_grad_norm then the SGD step, the clip folded into the update.
        let norm = grad_norm(&g)?;
        self.optimizer.step_clipped(&weights, &g, &norm, self.config.grad_clip)?;
        Ok((loss, acc))
    }
}

/// DARTS's step: alphas first on a validation batch (first or second order, by the
/// [`Architect`]), then the weights on a training batch, every op of every edge weighted by
/// softmax(alphas).
impl Relaxation for Architect {
    type State = ();
    const KIND: &'static str = "darts";
    const NAME: &'static str = "a DARTS search";
    const ALPHAS_FIRST: bool = true;
    const EVALUATES_ARGMAX: bool = false;

    fn new(net: &Network, config: &SearchConfig) -> Result<Architect> {
        if config.temperature.is_some() {
            return Err(Error::Config(
                "DARTS samples nothing: a temperature schedule is for GDAS (search gdas)".into(),
            ));
        }
        Architect::new(net, config.architect.clone())
    }

    async fn step(&mut self, mut s: StepParts<'_>, between_halves: &mut dyn FnMut()) -> Result<Recorded> {
        let ((xt, yt), (xv, yv)) = s.batches()?;
        let buffers = s.optimizer.state();
        let step = WeightStep {
            lr: s.lr,
            momentum: s.config.momentum,
            weight_decay: s.config.weight_decay,
            momentum_buffers: if s.optimizer.step_count() > 0 { buffers } else { vec![] },
        };
        let val = if s.epoch >= s.config.arch_start_epoch {
            Architect::step(self, s.net, (&xt, &yt), (&xv, &yv), &step)?
        } else {
            // Before the architecture steps start (PC-DARTS): the same batch scored, nothing
            // learnt from it.
            s.gpu.no_grad(|| super::architect::val_score(s.net, (&xv, &yv)))?
        };
        between_halves();
        let net = s.net;
        let (train_loss, train_acc) = s.weight_step(&xt, &yt, |x| net.forward(x, true))?;
        Ok(Recorded { lr: s.lr, scalars: vec![train_loss, train_acc, val.loss, val.acc] })
    }

    fn alpha_optimizer(&mut self) -> &mut dyn Optimizer {
        &mut self.optimizer
    }

    fn state(&self) {}

    fn restore(&mut self, _state: ()) -> Result<()> {
        Ok(())
    }
}

/// A search of the DARTS family: the supernet, its weight optimizer, the two data halves, the
/// alphas read back so far, and the method's [`Relaxation`] (its step and what it keeps).
pub struct SupernetSearch<R: Relaxation> {
    gpu: Gpu,
    /// The settings, with the network's input channels and classes taken from the data set.
    pub config: SearchConfig,
    /// The supernet: weights and alphas.
    pub net: Network,
    /// The method's step: DARTS's architect, GDAS's sampler.
    pub relaxation: R,
    optimizer: Sgd,
    schedule: CosineAnnealing,
    train: DeviceLoader,
    valid: DeviceLoader,
    /// Scores the supernet on the validation half at the end of each epoch.
    evaluator: Evaluator,
    /// The alphas after each read-back (every `log_every` steps).
    pub alpha_history: Vec<AlphaRecord>,
    /// Each epoch's Hessian eigenvalue and genotype, for early stopping.
    eigenvalues: Vec<f32>,
    genotypes: Vec<CellGenotype>,
    /// Set when early stopping ended the search.
    pub stopped: Option<EarlyStopped>,
}

/// The DARTS search method: the supernet searched by the [`Architect`].
pub type Darts = SupernetSearch<Architect>;

/// A DARTS search in progress: [`Darts`] in the run loop.
pub type DartsSearch = RunLoop<Darts>;

impl<R: Relaxation> RunLoop<SupernetSearch<R>> {
    /// A new search on `data` (its training set), split by `train_portion`.
    pub fn new(gpu: &Gpu, config: SearchConfig, data: &Dataset) -> Result<Self> {
        RunLoop::start(gpu, SupernetSearch::new(gpu, config, data)?)
    }

    /// Continues a search from a checkpoint taken on the same data set.
    pub fn resume(gpu: &Gpu, checkpoint: &Checkpoint, data: &Dataset) -> Result<Self> {
        RunLoop::resume_with(gpu, checkpoint, |config| SupernetSearch::new(gpu, config, data))
    }

    /// The weights' learning rate in the current epoch.
    pub fn lr(&self) -> f32 {
        self.method.lr_at(self.epoch())
    }

    /// The search's result: the genotype early stopping kept, else that of the current alphas
    /// under the configured rule.
    pub async fn genotype(&self) -> Result<CellGenotype> {
        match &self.method.stopped {
            Some(s) => Ok(s.genotype.clone()),
            None => self.method.genotype().await,
        }
    }
}

impl<R: Relaxation> SupernetSearch<R> {
    /// The search method on `data` (its training set), split by `train_portion`.
    pub fn new(gpu: &Gpu, config: SearchConfig, data: &Dataset) -> Result<Self> {
        let mut rng = Rng::new(config.seed);
        let mut config = config;
        config.network.in_channels = data.channels;
        config.network.num_classes = data.num_classes;
        check(&config, data)?;
        let net = Network::new(gpu, &mut rng, config.network.clone())?;
        let (train_data, valid_data) = data.split(config.train_portion, &mut rng)?;
        let normalize = Normalize::fit(&train_data);
        let augment = if config.augment { Augment::darts_search() } else { Augment::none() };
        // Fixed shapes for the GPU: every step sees full batches.
        let loader_config =
            LoaderConfig::new(config.batch_size, normalize.clone()).with_augment(augment).with_drop_last(true);
        let train = DeviceLoader::new(Loader::new(train_data, loader_config.clone(), &mut rng)?);
        let valid = DeviceLoader::new(Loader::new(valid_data.clone(), loader_config, &mut rng)?);
        let evaluator = Evaluator::new(valid_data, config.batch_size, normalize, true, config.eval_batches)?;
        let relaxation = R::new(&net, &config)?;
        let optimizer = Sgd::new(&net.weights(), config.lr, config.momentum, config.weight_decay, false)?;
        let schedule = CosineAnnealing::new(config.lr, config.lr_min, config.epochs as f64)?;
        Ok(SupernetSearch {
            gpu: gpu.clone(),
            config,
            net,
            relaxation,
            optimizer,
            schedule,
            train,
            valid,
            evaluator,
            alpha_history: vec![],
            eigenvalues: vec![],
            genotypes: vec![],
            stopped: None,
        })
    }

    /// The weights' learning rate in `epoch` (cosine per epoch, as the reference).
    pub fn lr_at(&self, epoch: usize) -> f32 {
        self.schedule.lr(epoch as f64)
    }

    /// One step of the method at the learning rate of `epoch` (DARTS: alphas on a validation
    /// batch, then weights on a training batch); calls `between_halves` once the first half is
    /// recorded and before the second (`bench darts` times each half). Records its work on the
    /// GPU and reads back only what the method needs (GDAS: the alphas, to pick the sampled
    /// ops); returns the step's scalars (train loss and accuracy, validation loss and accuracy).
    pub async fn step_with(&mut self, epoch: usize, between_halves: &mut dyn FnMut()) -> Result<Recorded> {
        let lr = self.lr_at(epoch);
        self.optimizer.set_lr(lr);
        let parts = StepParts {
            gpu: &self.gpu,
            config: &self.config,
            net: &self.net,
            epoch,
            lr,
            optimizer: &mut self.optimizer,
            train: &mut self.train,
            valid: &mut self.valid,
        };
        self.relaxation.step(parts, between_halves).await
    }

    /// The supernet's mean loss and accuracy on the validation half, BN in eval mode, no tape.
    pub async fn evaluate(&mut self) -> Result<(f32, f32)> {
        let net = &self.net;
        if !R::EVALUATES_ARGMAX {
            return self.evaluator.evaluate(&self.gpu, |x| net.forward(x, false)).await;
        }
        // The argmax op of each edge, weighted 1: a GDAS sample without noise.
        let (normal, reduce) = self.alphas().await?;
        let k = self.net.config.space.num_ops();
        let one_hot = |rows: &[Vec<f32>]| -> Result<(Tensor, Vec<usize>)> {
            let index: Vec<usize> = rows.iter().map(|r| argmax(r)).collect();
            let mut h = vec![0.0; rows.len() * k];
            index.iter().enumerate().for_each(|(e, &i)| h[e * k + i] = 1.0);
            Ok((Tensor::from_slice(&self.gpu, &[rows.len(), k], &h)?, index))
        };
        // NAS-Bench-201 has one alpha matrix; its network reads only the first mixing.
        let reduce = if reduce.is_empty() { &normal } else { &reduce };
        let ((hn, n), (hr, r)) = (one_hot(&normal)?, one_hot(reduce)?);
        let mixing = [Mixing::Hard { h: &hn, index: &n }, Mixing::Hard { h: &hr, index: &r }];
        self.evaluator.evaluate(&self.gpu, |x| net.forward_mixed(x, mixing, false)).await
    }

    /// Raw alphas on the host: (normal, reduce), each `[edges][ops]`; reduce is empty in
    /// NAS-Bench-201.
    pub async fn alphas(&self) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
        let v = read_all(&self.net.alphas().iter().collect::<Vec<_>>()).await?;
        let ops = self.net.config.space.num_ops();
        let rows = |v: &[f32]| v.chunks(ops).map(<[f32]>::to_vec).collect::<Vec<_>>();
        Ok((rows(&v[0]), v.get(1).map(|r| rows(r)).unwrap_or_default()))
    }

    /// Raw betas on the host (PC-DARTS's edge normalisation): (normal, reduce), each `[edges]`.
    pub async fn betas(&self) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        let (Some(n), Some(r)) = (&self.net.betas_normal, &self.net.betas_reduce) else { return Ok(None) };
        let mut v = read_all(&[n, r]).await?;
        let r = v.pop().expect("two tensors read");
        Ok(Some((v.pop().expect("two tensors read"), r)))
    }

    /// The genotype of the current alphas (and betas) under the configured rule; in
    /// NAS-Bench-201 the argmax operation of every edge (the betas weigh whole edges, which
    /// every cell keeps, so they do not take part).
    pub async fn genotype(&self) -> Result<CellGenotype> {
        let (n, r) = self.alphas().await?;
        let space = &self.net.config.space;
        if space.is_nas_bench_201() {
            return Ok(CellGenotype::NasBench201(NasBench201Cell::from_alphas(&n, &space.primitives())?));
        }
        let betas = self.betas().await?;
        let betas = betas.as_ref().map(|(n, r)| (n.as_slice(), r.as_slice()));
        derive_genotype_with_betas(&n, &r, betas, &space.primitives(), space.steps, space.multiplier, self.config.rule)
            .map(CellGenotype::Darts)
    }

    /// The collapse diagnostics of the current alphas and `genotype` derived from them; the
    /// Hessian on the validation half's first batch, from a vector drawn for `epoch`.
    pub async fn collapse(&mut self, epoch: usize, genotype: &CellGenotype) -> Result<Collapse> {
        let (n, r) = self.alphas().await?;
        let hessian_eigenvalue = if self.config.hessian_iters == 0 {
            None
        } else {
            let (x, y) = self.evaluator.first_batch(&self.gpu)?;
            let mut rng = Rng::new(self.config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (iters, eps) = (self.config.hessian_iters, self.config.hessian_eps);
            Some(hessian_eigenvalue(&self.net, &x, &y, iters, eps, &mut rng).await?)
        };
        Ok(Collapse {
            parameter_free: parameter_free_cell_ops(genotype),
            entropy_normal: mean_entropy(&n),
            // NAS-Bench-201 has no reduce alphas: no entropy.
            entropy_reduce: if r.is_empty() { 0.0 } else { mean_entropy(&r) },
            hessian_eigenvalue,
        })
    }
}

impl<R: Relaxation> Method for SupernetSearch<R> {
    type Config = SearchConfig;
    type Step = DartsStep;
    type Epoch = DartsEpoch;
    type State = DartsState<R::State>;
    const KIND: &'static str = R::KIND;
    const NAME: &'static str = R::NAME;
    const SCALARS: usize = 4;
    const LOSSES: &'static [(usize, &'static str)] =
        &[(0, "the training loss"), (2, "the architecture step's validation loss")];

    fn config(&self) -> &SearchConfig {
        &self.config
    }

    fn epochs(&self) -> usize {
        self.config.epochs
    }

    /// `config.steps_per_epoch`, or one pass over the weights' half in full batches.
    fn steps_per_epoch(&self) -> usize {
        self.config.steps_per_epoch.unwrap_or(self.train.batches_per_epoch()).max(1)
    }

    fn log_every(&self) -> usize {
        self.config.log_every
    }

    async fn step(&mut self, at: StepAt) -> Result<Recorded> {
        self.step_with(at.epoch, &mut || {}).await
    }

    fn step_metrics(&self, p: PendingStep, r: &[f32]) -> DartsStep {
        DartsStep {
            epoch: p.epoch,
            step: p.step,
            lr: p.lr,
            train_loss: r[0],
            train_acc: r[1],
            val_loss: r[2],
            val_acc: r[3],
        }
    }

    /// softmax of each alpha matrix (normal, reduce; NAS-Bench-201's one), then (PC-DARTS) each
    /// cell type's edge weights.
    fn flush_reads(&self) -> Result<Vec<Tensor>> {
        let sizes = self.net.config.space.node_sizes();
        self.gpu.no_grad(|| {
            let mut reads = self.net.alphas().iter().map(softmax::softmax).collect::<Result<Vec<_>>>()?;
            for b in [&self.net.betas_normal, &self.net.betas_reduce].into_iter().flatten() {
                reads.push(edge_softmax(b, &sizes)?);
            }
            Ok(reads)
        })
    }

    fn flushed(&mut self, last_step: u64, values: Vec<Vec<f32>>) {
        let ops = self.net.config.space.num_ops();
        let rows = |v: &[f32]| v.chunks(ops).map(<[f32]>::to_vec).collect::<Vec<_>>();
        let mut values = values.into_iter();
        let normal = rows(&values.next().unwrap_or_default());
        let reduce = if self.net.alphas_reduce.is_some() { rows(&values.next().unwrap_or_default()) } else { vec![] };
        let edges_normal = self.net.betas_normal.as_ref().and_then(|_| values.next());
        let edges_reduce = self.net.betas_reduce.as_ref().and_then(|_| values.next());
        self.alpha_history.push(AlphaRecord { step: last_step, normal, reduce, edges_normal, edges_reduce });
    }

    /// Scores the supernet on the validation half and derives the genotype.
    async fn close_epoch(&mut self, at: StepAt, steps: &[DartsStep]) -> Result<DartsEpoch> {
        let (val_loss, val_acc) = self.evaluate().await?;
        if !val_loss.is_finite() {
            return Err(Error::NonFinite { step: at.step, what: "the epoch's validation loss" });
        }
        let genotype = self.genotype().await?;
        let collapse = self.collapse(at.epoch, &genotype).await?;
        if let (Some(es), Some(eig)) = (self.config.early_stop, collapse.hessian_eigenvalue) {
            self.eigenvalues.push(eig);
            self.genotypes.push(genotype.clone());
            if es.triggered(&self.eigenvalues) {
                let kept = self.genotypes[self.genotypes.len() - 1 - es.window].clone();
                self.stopped = Some(EarlyStopped { epoch: at.epoch, genotype: kept });
            }
        }
        Ok(DartsEpoch {
            epoch: at.epoch,
            lr: self.lr_at(at.epoch),
            train_loss: mean_of(steps, |m| m.train_loss),
            train_acc: mean_of(steps, |m| m.train_acc),
            val_loss,
            val_acc,
            genotype,
            collapse,
            tau: self.config.temperature.map(|t| t.at(at.epoch, self.config.epochs)),
        })
    }

    fn tensors(&self, named: &mut Vec<(String, Tensor)>) {
        self.net.params("net", named);
        self.net.buffers("net", named);
        named.push(("alphas.normal".into(), self.net.alphas_normal.clone()));
        if let Some(r) = &self.net.alphas_reduce {
            named.push(("alphas.reduce".into(), r.clone()));
        }
        if let Some(n) = &self.net.betas_normal {
            named.push(("betas.normal".into(), n.clone()));
        }
        if let Some(r) = &self.net.betas_reduce {
            named.push(("betas.reduce".into(), r.clone()));
        }
    }

    fn optimizers(&mut self) -> Vec<(&'static str, &mut dyn Optimizer)> {
        vec![("sgd", &mut self.optimizer), ("adam", self.relaxation.alpha_optimizer())]
    }

    fn stopped_early(&self) -> bool {
        self.stopped.is_some()
    }

    fn state(&self) -> DartsState<R::State> {
        DartsState {
            train: self.train.state(),
            valid: self.valid.state(),
            alpha_history: self.alpha_history.clone(),
            eigenvalues: self.eigenvalues.clone(),
            genotypes: self.genotypes.clone(),
            stopped: self.stopped.clone(),
            relaxation: self.relaxation.state(),
        }
    }

    fn restore(&mut self, state: DartsState<R::State>) -> Result<()> {
        self.train.restore(state.train)?;
        self.valid.restore(state.valid)?;
        self.alpha_history = state.alpha_history;
        self.eigenvalues = state.eigenvalues;
        self.genotypes = state.genotypes;
        self.stopped = state.stopped;
        self.relaxation.restore(state.relaxation)
    }
}

/// The first largest entry's position.
fn argmax(row: &[f32]) -> usize {
    (1..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

/// Settings that cannot work with this data set, as one clear error each.
fn check(config: &SearchConfig, data: &Dataset) -> Result<()> {
    config.network.validate()?;
    let bad = |m: String| Err(Error::Config(m));
    if config.epochs == 0 || config.batch_size == 0 {
        return bad("epochs and batch size must be at least 1".into());
    }
    check_lr("the weights' learning rate (--learning-rate)", config.lr)?;
    check_lr("the alphas' learning rate (--arch-learning-rate)", config.architect.lr)?;
    if config.arch_start_epoch >= config.epochs {
        return bad(format!(
            "--arch-start-epoch {} is not before the last epoch ({} epochs): the alphas would never be trained",
            config.arch_start_epoch, config.epochs
        ));
    }
    if config.network.partial.is_some_and(|p| p.k > 1) {
        // A stride-2 edge max-pools its bypassed channels 2x2, which floors an odd side where
        // the strided operations round it up.
        let (mut h, mut w) = (data.height, data.width);
        for _ in config.network.reduction_cells() {
            if h % 2 == 1 || w % 2 == 1 {
                return bad(format!(
                    "partial channels (K > 1) need even sides at every reduction cell, got {h}x{w}; \
                     use --partial-channels 1 or images whose sides halve evenly"
                ));
            }
            (h, w) = (h / 2, w / 2);
        }
    }
    let half = ((data.n as f64) * config.train_portion.min(1.0 - config.train_portion)) as usize;
    if config.batch_size > half {
        return bad(format!(
            "batch size {} is bigger than the smaller split ({half} of {} images at portion {}); use a smaller --batch-size",
            config.batch_size, data.n, config.train_portion
        ));
    }
    if let Some(es) = config.early_stop {
        es.validate()?;
        if config.hessian_iters == 0 {
            return bad("early stopping watches the Hessian's eigenvalue: give --hessian-iters above 0".into());
        }
    }
    if config.network.space.is_nas_bench_201() {
        // Each ResNet block's shortcut pools 2x2 (flooring an odd side), its strided conv
        // rounds it up: the sides must halve evenly twice.
        if !data.height.is_multiple_of(4) || !data.width.is_multiple_of(4) {
            return bad(format!(
                "the NAS-Bench-201 skeleton halves the images twice and needs sides divisible by 4, got {}x{}",
                data.height, data.width
            ));
        }
        return Ok(());
    }
    let reductions = config.network.reduction_cells().len();
    let min_side = data.height.min(data.width);
    if min_side >> reductions == 0 {
        return bad(format!("{reductions} reductions do not fit {min_side}-pixel images"));
    }
    Ok(())
}

//! The DARTS search loop (quark0/darts `train_search.py`): the training set split in two halves,
//! an architecture step on a validation batch then a weight step on a training batch, a cosine
//! learning rate per epoch, metrics and the alpha history read back every `log_every` steps (not
//! inside a step), the supernet's validation accuracy and the derived genotype per epoch, and
//! checkpoints a resumed search continues from exactly.

use serde::{Deserialize, Serialize};

use super::architect::{Architect, ArchitectConfig, WeightStep};
use super::model::{Network, NetworkConfig};
use crate::checkpoint::Checkpoint;
use crate::data::{Augment, Dataset, Loader, LoaderConfig, LoaderState, Normalize};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::metrics::{MetricsRing, PendingStep};
use crate::nn::Module;
use crate::ops::softmax;
use crate::optim::{check_lr, grad_norm, CosineAnnealing, Schedule, Sgd};
use crate::rng::Rng;
use crate::space::{derive_genotype, DeriveRule, Genotype};
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
        }
    }
}

/// One step's numbers, as read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
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
    /// softmax(alphas_reduce), one row of op weights per edge: `[edges][ops]`.
    pub reduce: Vec<Vec<f32>>,
}

/// The numbers of one finished epoch and the genotype derived at its end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// The weights' learning rate during the epoch.
    pub lr: f32,
    /// Mean training loss of the epoch's steps.
    pub train_loss: f32,
    /// Mean training accuracy of the epoch's steps, in [0, 1].
    pub train_acc: f32,
    /// The supernet's loss and accuracy on the validation half (BN running statistics).
    pub val_loss: f32,
    /// Accuracy on the validation half, in [0, 1].
    pub val_acc: f32,
    /// The genotype derived from the alphas at the end of the epoch.
    pub genotype: Genotype,
}

/// Metrics per step in the ring: train loss, train accuracy, validation loss and accuracy.
const METRICS: usize = 4;

/// Counters and cursors saved in a checkpoint (besides the tensors).
#[derive(Serialize, Deserialize)]
struct State {
    config: SearchConfig,
    epoch: usize,
    step_in_epoch: usize,
    global_step: u64,
    sgd_steps: u64,
    adam_steps: u64,
    train: LoaderState,
    valid: LoaderState,
    metrics: Vec<StepMetrics>,
    alpha_history: Vec<AlphaRecord>,
    epochs: Vec<EpochSummary>,
}

/// A DARTS search in progress (quark0/darts `train_search.py`): the supernet, its architect
/// and weight optimizer, the two data halves, and the metrics read back so far.
pub struct DartsSearch {
    gpu: Gpu,
    /// The settings, with the network's input channels and classes taken from the data set.
    pub config: SearchConfig,
    /// The supernet: weights and alphas.
    pub net: Network,
    architect: Architect,
    optimizer: Sgd,
    schedule: CosineAnnealing,
    train: Loader,
    valid: Loader,
    valid_data: Dataset,
    normalize: Normalize,
    epoch: usize,
    step_in_epoch: usize,
    global_step: u64,
    /// Each step's METRICS scalars, waiting on the GPU for the next flush.
    metrics_ring: MetricsRing,
    /// Every step's metrics read back so far.
    pub metrics: Vec<StepMetrics>,
    /// The alphas after each read-back (every `log_every` steps).
    pub alpha_history: Vec<AlphaRecord>,
    /// Every finished epoch's summary.
    pub epochs: Vec<EpochSummary>,
}

impl DartsSearch {
    /// A new search on `data` (its training set), split by `train_portion`.
    pub fn new(gpu: &Gpu, config: SearchConfig, data: &Dataset) -> Result<DartsSearch> {
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
        let train = Loader::new(train_data, loader_config.clone(), &mut rng)?;
        let valid = Loader::new(valid_data.clone(), loader_config, &mut rng)?;
        let architect = Architect::new(&net, config.architect.clone())?;
        let optimizer = Sgd::new(&net.weights(), config.lr, config.momentum, config.weight_decay, false)?;
        let schedule = CosineAnnealing::new(config.lr, config.lr_min, config.epochs as f64)?;
        let metrics_ring = MetricsRing::new(gpu, config.log_every, METRICS)?;
        Ok(DartsSearch {
            gpu: gpu.clone(),
            config,
            net,
            architect,
            optimizer,
            schedule,
            train,
            valid,
            valid_data,
            normalize,
            epoch: 0,
            step_in_epoch: 0,
            global_step: 0,
            metrics_ring,
            metrics: vec![],
            alpha_history: vec![],
            epochs: vec![],
        })
    }

    /// Steps per epoch: `config.steps_per_epoch`, or one pass over the weights' half in full batches.
    pub fn steps_per_epoch(&self) -> usize {
        self.config.steps_per_epoch.unwrap_or(self.train.batches_per_epoch()).max(1)
    }

    /// The current epoch, from 0; equal to `config.epochs` once finished.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Steps taken so far, over all epochs.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    /// Whether every epoch has run.
    pub fn is_finished(&self) -> bool {
        self.epoch >= self.config.epochs
    }

    /// The current learning rate of the weights (cosine per epoch, as the reference).
    pub fn lr(&self) -> f32 {
        self.schedule.lr(self.epoch as f64)
    }

    /// One bi-level step: alphas on a validation batch, then weights on a training batch.
    /// Records its work on the GPU and reads nothing back; its metrics stay on the GPU until
    /// [`DartsSearch::flush_metrics`].
    pub fn step(&mut self) -> Result<()> {
        self.step_with(|| {})
    }

    /// [`DartsSearch::step`], calling `between_halves` once the architecture half is recorded
    /// and before the weight half (`bench darts` times each half).
    pub fn step_with(&mut self, between_halves: impl FnOnce()) -> Result<()> {
        let lr = self.lr();
        self.optimizer.set_lr(lr);
        let (xt, yt) = self.train.next_gpu(&self.gpu)?;
        let (xv, yv) = self.valid.next_gpu(&self.gpu)?;
        let weights = self.net.weights();
        let buffers = self.optimizer.state();
        let step = WeightStep {
            lr,
            momentum: self.config.momentum,
            weight_decay: self.config.weight_decay,
            momentum_buffers: if self.optimizer.step_count() > 0 { buffers } else { vec![] },
        };
        let val = self.architect.step(&self.net, (&xt, &yt), (&xv, &yv), &step)?;
        between_halves();

        // The weight step: the alphas are constants here.
        for a in self.net.alphas() {
            a.set_requires_grad(false);
        }
        let result = (|| -> Result<(Tensor, Tensor)> {
            let logits = self.net.forward(&xt, true)?;
            let train_loss = softmax::cross_entropy(&logits, &yt)?;
            let train_acc = softmax::accuracy(&logits, &yt)?;
            let mut grads = self.gpu.backward(&train_loss)?;
            let g = grads.take_all(&weights)?;
            // clip_grad_norm then the SGD step, the clip folded into the update.
            let norm = grad_norm(&g)?;
            self.optimizer.step_clipped(&weights, &g, &norm, self.config.grad_clip)?;
            Ok((train_loss, train_acc))
        })();
        for a in self.net.alphas() {
            a.set_requires_grad(true);
        }
        let (train_loss, train_acc) = result?;
        let pending = PendingStep { epoch: self.epoch, step: self.global_step, lr };
        self.metrics_ring.push(pending, &[&train_loss, &train_acc, &val.loss, &val.acc])?;
        self.global_step += 1;
        self.step_in_epoch += 1;
        Ok(())
    }

    /// Reads back the pending step metrics and the current softmax(alphas) in one go.
    pub async fn flush_metrics(&mut self) -> Result<()> {
        if self.metrics_ring.is_empty() {
            return Ok(());
        }
        let (wn, wr) = self.gpu.no_grad(|| -> Result<_> {
            Ok((softmax::softmax(&self.net.alphas_normal)?, softmax::softmax(&self.net.alphas_reduce)?))
        })?;
        let (values, steps) = self.metrics_ring.read_with(&[&wn, &wr]).await?;
        let ops = self.net.config.space.num_ops();
        let rows = |v: &[f32]| v.chunks(ops).map(<[f32]>::to_vec).collect::<Vec<_>>();
        let last_step = steps.last().map(|(p, _)| p.step).unwrap_or(0);
        for (p, r) in steps {
            let m = StepMetrics {
                epoch: p.epoch,
                step: p.step,
                lr: p.lr,
                train_loss: r[0],
                train_acc: r[1],
                val_loss: r[2],
                val_acc: r[3],
            };
            if !m.train_loss.is_finite() {
                return Err(Error::NonFinite { step: m.step, what: "the training loss" });
            }
            if !m.val_loss.is_finite() {
                return Err(Error::NonFinite { step: m.step, what: "the architecture step's validation loss" });
            }
            self.metrics.push(m);
        }
        self.alpha_history.push(AlphaRecord { step: last_step, normal: rows(&values[0]), reduce: rows(&values[1]) });
        Ok(())
    }

    /// Runs the rest of the current epoch; then scores the supernet on the validation half and
    /// derives the genotype. `on_step` sees every step's metrics once they are read back.
    pub async fn run_epoch(&mut self, mut on_step: impl FnMut(&StepMetrics)) -> Result<EpochSummary> {
        loop {
            let before = self.metrics.len();
            let closed = self.advance().await?;
            self.metrics[before..].iter().for_each(&mut on_step);
            if let Some(summary) = closed {
                return Ok(summary);
            }
        }
    }

    /// The next step of the current epoch (metrics read back every `log_every` steps); after the
    /// epoch's last step, closes the epoch and returns its summary. For callers that show
    /// progress within an epoch (the browser demo).
    pub async fn advance(&mut self) -> Result<Option<EpochSummary>> {
        if self.step_in_epoch < self.steps_per_epoch() {
            self.step()?;
            if self.metrics_ring.len() >= self.config.log_every.max(1) {
                self.flush_metrics().await?;
            }
        }
        if self.step_in_epoch < self.steps_per_epoch() {
            return Ok(None);
        }
        Ok(Some(self.finish_epoch().await?))
    }

    /// Reads back pending metrics, scores the supernet on the validation half, derives the
    /// genotype, and moves to the next epoch's learning rate.
    async fn finish_epoch(&mut self) -> Result<EpochSummary> {
        self.flush_metrics().await?;
        let (val_loss, val_acc) = self.evaluate().await?;
        if !val_loss.is_finite() {
            return Err(Error::NonFinite { step: self.global_step, what: "the epoch's validation loss" });
        }
        let genotype = self.genotype().await?;
        let this_epoch: Vec<&StepMetrics> = self.metrics.iter().filter(|m| m.epoch == self.epoch).collect();
        let mean =
            |f: fn(&StepMetrics) -> f32| this_epoch.iter().map(|m| f(m)).sum::<f32>() / this_epoch.len().max(1) as f32;
        let summary = EpochSummary {
            epoch: self.epoch,
            lr: self.lr(),
            train_loss: mean(|m| m.train_loss),
            train_acc: mean(|m| m.train_acc),
            val_loss,
            val_acc,
            genotype,
        };
        self.epochs.push(summary.clone());
        self.epoch += 1;
        self.step_in_epoch = 0;
        Ok(summary)
    }

    /// The supernet's mean loss and accuracy on the validation half, BN in eval mode, no tape.
    pub async fn evaluate(&mut self) -> Result<(f32, f32)> {
        let config = LoaderConfig::eval(self.config.batch_size, self.normalize.clone()).with_drop_last(true);
        let mut loader = Loader::with_seed(self.valid_data.clone(), config, 0)?;
        let batches = self.config.eval_batches.unwrap_or(usize::MAX).min(loader.batches_per_epoch()).max(1);
        let mut scalars = Vec::with_capacity(2 * batches);
        for _ in 0..batches {
            let (x, y) = loader.next_gpu(&self.gpu)?;
            let (l, a) = self.gpu.no_grad(|| -> Result<_> {
                let logits = self.net.forward(&x, false)?;
                Ok((softmax::cross_entropy(&logits, &y)?, softmax::accuracy(&logits, &y)?))
            })?;
            scalars.push(l);
            scalars.push(a);
        }
        let refs: Vec<&Tensor> = scalars.iter().collect();
        let v = read_all(&refs).await?;
        let n = batches as f32;
        let loss = v.iter().step_by(2).map(|x| x[0]).sum::<f32>() / n;
        let acc = v.iter().skip(1).step_by(2).map(|x| x[0]).sum::<f32>() / n;
        Ok((loss, acc))
    }

    /// Raw alphas on the host: (normal, reduce), each `[edges][ops]`.
    pub async fn alphas(&self) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
        let v = read_all(&[&self.net.alphas_normal, &self.net.alphas_reduce]).await?;
        let ops = self.net.config.space.num_ops();
        let rows = |v: &[f32]| v.chunks(ops).map(<[f32]>::to_vec).collect::<Vec<_>>();
        Ok((rows(&v[0]), rows(&v[1])))
    }

    /// The genotype of the current alphas under the configured rule.
    pub async fn genotype(&self) -> Result<Genotype> {
        let (n, r) = self.alphas().await?;
        let space = &self.net.config.space;
        derive_genotype(&n, &r, &space.primitives(), space.steps, space.multiplier, self.config.rule)
    }

    /// Every tensor a resumed search needs, by name.
    fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut named = Vec::new();
        self.net.params("net", &mut named);
        self.net.buffers("net", &mut named);
        named.push(("alphas.normal".into(), self.net.alphas_normal.clone()));
        named.push(("alphas.reduce".into(), self.net.alphas_reduce.clone()));
        for (i, t) in self.optimizer.state().into_iter().enumerate() {
            named.push((format!("sgd.{i}"), t.clone()));
        }
        for (i, t) in self.architect.optimizer.state().into_iter().enumerate() {
            named.push((format!("adam.{i}"), t.clone()));
        }
        named
    }

    /// A checkpoint of the whole search (pending metrics are read back first).
    pub async fn checkpoint(&mut self) -> Result<Checkpoint> {
        self.flush_metrics().await?;
        let state = State {
            config: self.config.clone(),
            epoch: self.epoch,
            step_in_epoch: self.step_in_epoch,
            global_step: self.global_step,
            sgd_steps: self.optimizer.step_count(),
            adam_steps: self.architect.optimizer.step_count(),
            train: self.train.state(),
            valid: self.valid.state(),
            metrics: self.metrics.clone(),
            alpha_history: self.alpha_history.clone(),
            epochs: self.epochs.clone(),
        };
        Checkpoint::capture("darts", serde_json::to_value(&state)?, &self.named_tensors()).await
    }

    /// Continues a search from a checkpoint taken on the same data set.
    pub fn resume(gpu: &Gpu, checkpoint: &Checkpoint, data: &Dataset) -> Result<DartsSearch> {
        if checkpoint.kind != "darts" {
            return Err(Error::Config(format!(
                "this checkpoint is from a {} run, not a DARTS search",
                checkpoint.kind
            )));
        }
        let state: State = serde_json::from_value(checkpoint.meta.clone())?;
        let mut search = DartsSearch::new(gpu, state.config, data)?;
        // Optimizer state tensors exist only after a first step: make them, then fill them.
        let sgd_state: Vec<Tensor> = (0..checkpoint.tensors.iter().filter(|(e, _)| e.name.starts_with("sgd.")).count())
            .map(|i| restored(gpu, checkpoint, &format!("sgd.{i}")))
            .collect::<Result<_>>()?;
        search.optimizer.load_state(sgd_state, state.sgd_steps)?;
        let adam_state: Vec<Tensor> =
            (0..checkpoint.tensors.iter().filter(|(e, _)| e.name.starts_with("adam.")).count())
                .map(|i| restored(gpu, checkpoint, &format!("adam.{i}")))
                .collect::<Result<_>>()?;
        search.architect.optimizer.load_state(adam_state, state.adam_steps)?;
        let named: Vec<(String, Tensor)> = search
            .named_tensors()
            .into_iter()
            .filter(|(n, _)| !n.starts_with("sgd.") && !n.starts_with("adam."))
            .collect();
        checkpoint.restore_into(&named)?;
        search.train.restore(state.train)?;
        search.valid.restore(state.valid)?;
        search.epoch = state.epoch;
        search.step_in_epoch = state.step_in_epoch;
        search.global_step = state.global_step;
        search.metrics = state.metrics;
        search.alpha_history = state.alpha_history;
        search.epochs = state.epochs;
        Ok(search)
    }
}

fn restored(gpu: &Gpu, c: &Checkpoint, name: &str) -> Result<Tensor> {
    let (entry, values) = c
        .tensors
        .iter()
        .find(|(e, _)| e.name == name)
        .ok_or_else(|| Error::Config(format!("the checkpoint has no tensor {name:?}")))?;
    Tensor::from_slice(gpu, &entry.shape, values)
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
    let half = ((data.n as f64) * config.train_portion.min(1.0 - config.train_portion)) as usize;
    if config.batch_size > half {
        return bad(format!(
            "batch size {} is bigger than the smaller split ({half} of {} images at portion {}); use a smaller --batch-size",
            config.batch_size, data.n, config.train_portion
        ));
    }
    let reductions = config.network.reduction_cells().len();
    let min_side = data.height.min(data.width);
    if min_side >> reductions == 0 {
        return bad(format!("{reductions} reductions do not fit {min_side}-pixel images"));
    }
    Ok(())
}

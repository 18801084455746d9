//! The one run loop that every method (the DARTS search, the ENAS search, retraining) runs in.
//!
//! A [`Method`] supplies its step, what closes its epoch, and its state; [`RunLoop`] does the
//! rest, the same way for all of them:
//! - the counters (epoch, step within it, global step) and the epoch's extra work after its
//!   steps (ENAS's controller updates), one unit per [`RunLoop::advance`];
//! - each step's scalars copied into a [`MetricsRing`] on the GPU and read back every
//!   `log_every` steps and at the end of the epoch's steps, never inside a step, with the
//!   method's losses checked there (a NaN or infinity stops the run: [`Error::NonFinite`]);
//! - the epoch's summary ([`Method::close_epoch`], with [`mean_of`] for the means of its steps);
//! - checkpoints ([`RunLoop::checkpoint`]) and exact resume ([`RunLoop::resume_with`]), with one way
//!   of saving and restoring optimizer state ([`Optimizer`]).
//!
//! [`Evaluator`] scores a model on a held-out set without copying the set per epoch.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::data::{Dataset, Loader, LoaderConfig, Normalize};
use crate::error::{Error, Result};
use crate::gpu::{DeviceLoader, Gpu};
use crate::metrics::{MetricsRing, PendingStep};
use crate::ops::softmax;
use crate::optim::Optimizer;
use crate::tensor::{read_all, Tensor};

/// Where a step (or a unit of the epoch's extra work) falls in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepAt {
    /// The epoch, from 0.
    pub epoch: usize,
    /// The global step number, from 0 (for extra work: the number of the next step).
    pub step: u64,
}

/// What a step recorded: its learning rate and its scalars (one-element GPU tensors, in the
/// order of [`Method::SCALARS`]), left on the GPU for the metrics ring.
pub struct Recorded {
    /// The learning rate the step used.
    pub lr: f32,
    /// The step's scalars (losses, accuracies), each a one-element tensor.
    pub scalars: Vec<Tensor>,
}

/// A training method that runs in a [`RunLoop`]: its step, the end of its epoch and its state.
/// Everything else (counters, metrics, checkpoints) is the loop's.
#[allow(async_fn_in_trait)] // single-threaded GPU code (the browser): no Send bound wanted
pub trait Method {
    /// Every setting of a run, saved in its checkpoint.
    type Config: Clone + Serialize + DeserializeOwned;
    /// One step's numbers, as read back.
    type Step: Clone + Serialize + DeserializeOwned;
    /// A finished epoch's numbers.
    type Epoch: Clone + Serialize + DeserializeOwned;
    /// The method's own cursors and counters for a checkpoint (data loaders, random stream...).
    type State: Serialize + DeserializeOwned;
    /// The checkpoint kind it writes and accepts ("darts", "enas", "train").
    const KIND: &'static str;
    /// What a run of it is called in errors ("a DARTS search").
    const NAME: &'static str;
    /// Scalars per step in the metrics ring.
    const SCALARS: usize;
    /// The scalars (by position) that must stay finite, each with what it is called in the
    /// error that stops the run.
    const LOSSES: &'static [(usize, &'static str)];

    /// The settings.
    fn config(&self) -> &Self::Config;
    /// Epochs to run.
    fn epochs(&self) -> usize;
    /// Steps per epoch (at least 1).
    fn steps_per_epoch(&self) -> usize;
    /// Metrics are read back every this many steps.
    fn log_every(&self) -> usize;
    /// Records one step on the GPU (reading back only what the algorithm needs).
    async fn step(&mut self, at: StepAt) -> Result<Recorded>;
    /// A step's numbers from its row of scalars.
    fn step_metrics(&self, at: PendingStep, row: &[f32]) -> Self::Step;
    /// Tensors read back with every flush of the metrics (DARTS: softmax of the alphas).
    fn flush_reads(&self) -> Result<Vec<Tensor>> {
        Ok(vec![])
    }
    /// Takes the values of [`Method::flush_reads`], read after step `last_step`.
    fn flushed(&mut self, _last_step: u64, _values: Vec<Vec<f32>>) {}
    /// Units of extra work after each epoch's steps (ENAS: controller updates).
    fn extra_units(&self) -> usize {
        0
    }
    /// One unit of the extra work.
    async fn extra(&mut self, _at: StepAt) -> Result<()> {
        Ok(())
    }
    /// Whether the method ended the run before its last epoch (an early-stopping rule).
    fn stopped_early(&self) -> bool {
        false
    }
    /// Closes the epoch (scores a held-out set, derives a genotype...) from its steps' metrics.
    async fn close_epoch(&mut self, at: StepAt, steps: &[Self::Step]) -> Result<Self::Epoch>;
    /// Every tensor a resumed run needs, by name, optimizer state aside.
    fn tensors(&self, named: &mut Vec<(String, Tensor)>);
    /// The optimizers, each with the prefix its state tensors are saved under.
    fn optimizers(&mut self) -> Vec<(&'static str, &mut dyn Optimizer)>;
    /// The method's state for a checkpoint.
    fn state(&self) -> Self::State;
    /// Continues from a saved state.
    fn restore(&mut self, state: Self::State) -> Result<()>;
}

/// The mean of `f` over an epoch's steps (0 for none).
pub fn mean_of<S>(steps: &[S], f: impl Fn(&S) -> f32) -> f32 {
    steps.iter().map(f).sum::<f32>() / steps.len().max(1) as f32
}

/// The loop's part of a checkpoint; the method's settings and state ride along.
#[derive(Serialize, Deserialize)]
struct Saved<C, S, E, T> {
    config: C,
    epoch: usize,
    step_in_epoch: usize,
    extra_in_epoch: usize,
    global_step: u64,
    /// Steps taken by each optimizer, by its prefix.
    optimizer_steps: BTreeMap<String, u64>,
    metrics: Vec<S>,
    epochs: Vec<E>,
    state: T,
}

/// A method's run: the method, the counters, and every metric read back so far.
pub struct RunLoop<M: Method> {
    /// The method: its model, optimizers and data.
    pub method: M,
    epoch: usize,
    step_in_epoch: usize,
    extra_in_epoch: usize,
    global_step: u64,
    /// Each step's scalars, waiting on the GPU for the next flush.
    ring: MetricsRing,
    /// Every step's metrics read back so far.
    pub metrics: Vec<M::Step>,
    /// Every finished epoch's numbers.
    pub epochs: Vec<M::Epoch>,
}

impl<M: Method> RunLoop<M> {
    /// A run of `method` from its first step.
    pub fn start(gpu: &Gpu, method: M) -> Result<RunLoop<M>> {
        let ring = MetricsRing::new(gpu, method.log_every().max(1), M::SCALARS)?;
        Ok(RunLoop {
            method,
            epoch: 0,
            step_in_epoch: 0,
            extra_in_epoch: 0,
            global_step: 0,
            ring,
            metrics: vec![],
            epochs: vec![],
        })
    }

    /// The settings.
    pub fn config(&self) -> &M::Config {
        self.method.config()
    }

    /// The current epoch, from 0; equal to the number of epochs once finished.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Steps taken so far, over all epochs.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }

    /// Steps per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.method.steps_per_epoch().max(1)
    }

    /// Whether every epoch has run, or the method stopped the run early.
    pub fn is_finished(&self) -> bool {
        self.epoch >= self.method.epochs() || self.method.stopped_early()
    }

    fn at(&self) -> StepAt {
        StepAt { epoch: self.epoch, step: self.global_step }
    }

    /// One step of the current epoch. Records its work on the GPU; its metrics stay there
    /// until [`RunLoop::flush_metrics`].
    pub async fn step(&mut self) -> Result<()> {
        let at = self.at();
        let recorded = self.method.step(at).await?;
        let scalars: Vec<&Tensor> = recorded.scalars.iter().collect();
        let pending = PendingStep { epoch: at.epoch, step: at.step, lr: recorded.lr };
        self.ring.push(pending, &scalars)?;
        self.global_step += 1;
        self.step_in_epoch += 1;
        Ok(())
    }

    /// Reads back the pending step metrics (and the method's [`Method::flush_reads`]) in one
    /// go; stops on a non-finite loss.
    pub async fn flush_metrics(&mut self) -> Result<()> {
        if self.ring.is_empty() {
            return Ok(());
        }
        let extra = self.method.flush_reads()?;
        let (values, rows) = self.ring.read_with(&extra.iter().collect::<Vec<_>>()).await?;
        let last_step = rows.last().map(|(p, _)| p.step).unwrap_or(0);
        for (p, row) in rows {
            for &(k, what) in M::LOSSES {
                if !row[k].is_finite() {
                    return Err(Error::NonFinite { step: p.step, what });
                }
            }
            let m = self.method.step_metrics(p, &row);
            self.metrics.push(m);
        }
        if !extra.is_empty() {
            self.method.flushed(last_step, values);
        }
        Ok(())
    }

    /// The next piece of the current epoch: a step while the epoch has some left (metrics
    /// read back every `log_every` steps and after the last), then one unit of the method's
    /// extra work. After the last piece it closes the epoch and returns its numbers. For callers
    /// that show progress within an epoch (the browser demo).
    pub async fn advance(&mut self) -> Result<Option<M::Epoch>> {
        if self.is_finished() {
            return Err(Error::Config(format!("{} has finished its {} epochs", M::NAME, self.method.epochs())));
        }
        let steps = self.steps_per_epoch();
        if self.step_in_epoch < steps {
            self.step().await?;
            if self.ring.len() >= self.method.log_every().max(1) || self.step_in_epoch == steps {
                self.flush_metrics().await?;
            }
        } else if self.extra_in_epoch < self.method.extra_units() {
            self.method.extra(self.at()).await?;
            self.extra_in_epoch += 1;
        }
        if self.step_in_epoch < steps || self.extra_in_epoch < self.method.extra_units() {
            return Ok(None);
        }
        Ok(Some(self.close_epoch().await?))
    }

    async fn close_epoch(&mut self) -> Result<M::Epoch> {
        self.flush_metrics().await?;
        // Everything is read back now: the epoch's steps are the last `step_in_epoch`.
        let first = self.metrics.len() - self.step_in_epoch.min(self.metrics.len());
        let summary = self.method.close_epoch(self.at(), &self.metrics[first..]).await?;
        self.epochs.push(summary.clone());
        self.epoch += 1;
        self.step_in_epoch = 0;
        self.extra_in_epoch = 0;
        Ok(summary)
    }

    /// Runs the rest of the current epoch and closes it. `on_step` sees every step's metrics
    /// once they are read back.
    pub async fn run_epoch(&mut self, mut on_step: impl FnMut(&M::Step)) -> Result<M::Epoch> {
        loop {
            let before = self.metrics.len();
            let closed = self.advance().await?;
            self.metrics[before..].iter().for_each(&mut on_step);
            if let Some(summary) = closed {
                return Ok(summary);
            }
        }
    }

    /// Every tensor of a checkpoint: the method's, then each optimizer's state.
    fn named_tensors(&mut self) -> Vec<(String, Tensor)> {
        let mut named = Vec::new();
        self.method.tensors(&mut named);
        for (prefix, opt) in self.method.optimizers() {
            for (i, t) in opt.state().into_iter().enumerate() {
                named.push((format!("{prefix}.{i}"), t.clone()));
            }
        }
        named
    }

    /// A checkpoint of the whole run (pending metrics are read back first).
    pub async fn checkpoint(&mut self) -> Result<Checkpoint> {
        self.flush_metrics().await?;
        let optimizer_steps =
            self.method.optimizers().into_iter().map(|(prefix, o)| (prefix.to_string(), o.step_count())).collect();
        let saved = Saved {
            config: self.method.config().clone(),
            epoch: self.epoch,
            step_in_epoch: self.step_in_epoch,
            extra_in_epoch: self.extra_in_epoch,
            global_step: self.global_step,
            optimizer_steps,
            metrics: self.metrics.clone(),
            epochs: self.epochs.clone(),
            state: self.method.state(),
        };
        let named = self.named_tensors();
        Checkpoint::capture(M::KIND, serde_json::to_value(&saved)?, &named).await
    }

    /// Continues a run from its checkpoint: `make` builds the method from the saved settings
    /// (on the data the run was started on), then every tensor, counter and cursor is restored.
    pub fn resume_with(
        gpu: &Gpu,
        checkpoint: &Checkpoint,
        make: impl FnOnce(M::Config) -> Result<M>,
    ) -> Result<RunLoop<M>> {
        if checkpoint.kind != M::KIND {
            return Err(Error::Config(format!("this checkpoint is from a {} run, not {}", checkpoint.kind, M::NAME)));
        }
        let saved: Saved<M::Config, M::Step, M::Epoch, M::State> = serde_json::from_value(checkpoint.meta.clone())
            .map_err(|e| {
                Error::Config(format!(
                    "the checkpoint's record of {} does not read ({e}): was it written by another version of wgpu-nas?",
                    M::NAME
                ))
            })?;
        let mut run = RunLoop::start(gpu, make(saved.config)?)?;
        // The optimizers' state tensors exist from their construction: filled in place.
        checkpoint.restore_into(&run.named_tensors())?;
        for (prefix, opt) in run.method.optimizers() {
            let steps = saved.optimizer_steps.get(prefix).copied().unwrap_or(0);
            let state = opt.state().into_iter().cloned().collect();
            opt.load_state(state, steps)?;
        }
        run.method.restore(saved.state)?;
        run.epoch = saved.epoch;
        run.step_in_epoch = saved.step_in_epoch;
        run.extra_in_epoch = saved.extra_in_epoch;
        run.global_step = saved.global_step;
        run.metrics = saved.metrics;
        run.epochs = saved.epochs;
        Ok(run)
    }
}

/// Scores a model on a held-out set: mean cross-entropy and accuracy over its first
/// `batches` batches in file order, each image counted once (a smaller last batch weighted by
/// its size). The set is held once; each evaluation rewinds to its start.
pub struct Evaluator {
    loader: DeviceLoader,
    batches: usize,
}

impl Evaluator {
    /// An evaluator over `data` in batches of `batch_size` (normalised as for training; with
    /// `drop_last` a smaller last batch is left out), at most `max_batches` of them.
    pub fn new(
        data: Dataset,
        batch_size: usize,
        normalize: Normalize,
        drop_last: bool,
        max_batches: Option<usize>,
    ) -> Result<Evaluator> {
        let config = LoaderConfig::eval(batch_size, normalize).with_drop_last(drop_last);
        let loader = Loader::with_seed(data, config, 0)?;
        let batches = max_batches.unwrap_or(usize::MAX).min(loader.batches_per_epoch()).max(1);
        Ok(Evaluator { loader: DeviceLoader::new(loader), batches })
    }

    /// The held-out set.
    pub fn dataset(&self) -> &Dataset {
        self.loader.dataset()
    }

    /// The set's first batch (images, labels) on the GPU.
    pub fn first_batch(&mut self, gpu: &Gpu) -> Result<(Tensor, Tensor)> {
        self.loader.rewind();
        self.loader.next(gpu)
    }

    /// (mean loss, accuracy) of `logits_of` (images [B, C, H, W] to logits [B, classes],
    /// called without a tape) over the batches; one readback.
    pub async fn evaluate(&mut self, gpu: &Gpu, logits_of: impl Fn(&Tensor) -> Result<Tensor>) -> Result<(f32, f32)> {
        self.loader.rewind();
        let mut scalars = Vec::with_capacity(2 * self.batches);
        let mut sizes = Vec::with_capacity(self.batches);
        for _ in 0..self.batches {
            let (x, y) = self.loader.next(gpu)?;
            sizes.push(y.numel() as f64);
            let (l, a) = gpu.no_grad(|| -> Result<_> {
                let logits = logits_of(&x)?;
                Ok((softmax::cross_entropy(&logits, &y)?, softmax::accuracy(&logits, &y)?))
            })?;
            scalars.push(l);
            scalars.push(a);
        }
        let v = read_all(&scalars.iter().collect::<Vec<_>>()).await?;
        let total: f64 = sizes.iter().sum();
        let weighted = |k: usize| -> f32 {
            (sizes.iter().enumerate().map(|(b, n)| v[2 * b + k][0] as f64 * n).sum::<f64>() / total) as f32
        };
        Ok((weighted(0), weighted(1)))
    }
}

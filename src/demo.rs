//! A short search driven a few steps at a time, as the browser demo runs it: [`Demo`] wraps a
//! [`DartsSearch`], a [`GdasSearch`] or an ENAS micro [`EnasSearch`] on the embedded Fashion-MNIST set, and each
//! [`Demo::run`] returns a [`Snapshot`] of what changed (metrics, softmax(alpha), the derived
//! genotype, the controller's rewards). The same code runs natively and in the browser
//! (`web.rs` only adds the JavaScript bindings), so a seeded run gives the same numbers on both.

use serde::{Deserialize, Serialize};

use crate::darts::search::{Relaxation, SupernetSearch};
use crate::darts::{AlphaRecord, DartsSearch, GdasSearch, Order, SearchConfig};
use crate::data::Dataset;
use crate::enas::micro::MicroConfig;
use crate::enas::search::{EnasConfig, EnasSearch, SharedModelConfig};
use crate::error::{Error, Result};
use crate::gpu::{AdapterSummary, Gpu};
use crate::run_loop::RunLoop;
use crate::space::{softmax_rows, Genotype, SearchSpace, DARTS_PRIMITIVES, ENAS_MICRO_OPS};

/// ENAS micro cells have this many intermediate nodes (the reference's 5).
const ENAS_NODES: usize = 5;
/// Controller updates after each ENAS epoch's shared-weight steps (the reference: 30).
const ENAS_CONTROLLER_STEPS: usize = 2;
/// Samples averaged into one controller update (the reference: 10).
const ENAS_AGGREGATE: usize = 4;

/// Which search the demo runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// DARTS: bi-level steps on a small supernet, alphas shown live.
    Darts,
    /// GDAS: the same supernet, one Gumbel-sampled op per edge in each step (temperature annealed
    /// from 10 to 0.1 over the epochs), alphas shown live.
    Gdas,
    /// ENAS micro: shared-weight steps and controller updates, sampled architectures shown.
    Enas,
}

/// What the page lets a person choose. Every key is optional in JSON; unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// DARTS or ENAS (micro space).
    pub algorithm: Algorithm,
    /// DARTS candidate operations (ENAS uses its own five).
    pub ops: Vec<String>,
    /// Cells (DARTS: reductions at 1/3 and 2/3) or ENAS normal cells per stage.
    pub layers: usize,
    /// Initial channels C (even).
    pub channels: usize,
    /// Images per batch (8).
    pub batch_size: usize,
    /// 28 (the data as is), 14 or 7: the images averaged down.
    pub image_size: usize,
    /// A balanced subset of the embedded 6000 training images; half of it trains the weights and
    /// half the architecture.
    pub train_images: usize,
    /// DARTS: bi-level steps per epoch (ENAS: shared-weight steps per epoch).
    pub steps_per_epoch: usize,
    /// Epochs to run (10).
    pub epochs: usize,
    /// Weights: SGD learning rate (cosine to the end).
    pub lr: f32,
    /// DARTS: Adam learning rate of the alphas (the paper: 3e-4; larger here so that a short
    /// demo moves them visibly). ENAS: the controller's Adam learning rate.
    pub arch_lr: f32,
    /// DARTS: 1 (first order) or 2 (second order).
    pub order: u8,
    /// Seeds everything random: init, the split, data order, augmentation, ENAS sampling.
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            algorithm: Algorithm::Darts,
            ops: DARTS_PRIMITIVES.iter().map(|s| s.to_string()).collect(),
            layers: 3,
            channels: 4,
            batch_size: 8,
            image_size: 14,
            train_images: 2000,
            steps_per_epoch: 20,
            epochs: 10,
            lr: 0.025,
            arch_lr: 3e-3,
            order: 1,
            seed: 2,
        }
    }
}

impl DemoConfig {
    /// Reads the JSON the page sends; the error names the key that did not fit.
    pub fn from_json(text: &str) -> Result<DemoConfig> {
        serde_json::from_str(text).map_err(|e| Error::Config(format!("demo settings: {e}")))
    }

    /// The embedded training set, subsampled and averaged down as configured.
    pub fn data(&self) -> Result<Dataset> {
        // The network configs check this too, but their message names the command line's flag.
        if self.channels == 0 || !self.channels.is_multiple_of(2) {
            return Err(Error::Config(format!(
                "channels must be even (each reduction halves them in FactorizedReduce), got {}",
                self.channels
            )));
        }
        if ![28, 14, 7].contains(&self.image_size) {
            return Err(Error::Config(format!("image size must be 28, 14 or 7, got {}", self.image_size)));
        }
        let full = Dataset::embedded_train()?;
        let per_class = self.train_images.div_ceil(full.num_classes).max(1);
        full.balanced(per_class)?.downsample(28 / self.image_size)
    }

    fn darts(&self, data: &Dataset) -> Result<SearchConfig> {
        let mut c = match self.algorithm {
            Algorithm::Gdas => SearchConfig::gdas(data.channels, data.num_classes),
            _ => SearchConfig::darts(data.channels, data.num_classes),
        };
        let ops: Vec<&str> = self.ops.iter().map(String::as_str).collect();
        c.network.space = SearchSpace::with_ops(&ops)?;
        c.network.channels = self.channels;
        c.network.layers = self.layers;
        c.architect.lr = self.arch_lr;
        c.architect.order = match self.order {
            1 => Order::First,
            2 => Order::Second,
            other => return Err(Error::Config(format!("order must be 1 or 2, got {other}"))),
        };
        c.epochs = self.epochs;
        c.batch_size = self.batch_size;
        c.lr = self.lr;
        c.steps_per_epoch = Some(self.steps_per_epoch);
        // The supernet is scored on a few validation batches at each epoch's end.
        c.eval_batches = Some(2);
        c.seed = self.seed;
        Ok(c)
    }

    fn enas(&self, data: &Dataset) -> EnasConfig {
        let mut c = EnasConfig::micro(data.channels, data.num_classes);
        c.model = SharedModelConfig::Micro(MicroConfig {
            in_channels: data.channels,
            num_classes: data.num_classes,
            channels: self.channels,
            num_layers: self.layers,
            num_nodes: ENAS_NODES,
        });
        c.controller.lr = self.arch_lr;
        c.controller.num_aggregate = ENAS_AGGREGATE;
        c.controller_steps = ENAS_CONTROLLER_STEPS;
        c.epochs = self.epochs;
        c.batch_size = self.batch_size;
        c.lr_max = self.lr;
        c.steps_per_epoch = Some(self.steps_per_epoch);
        c.seed = self.seed;
        c
    }
}

/// What the page shows once, before the first step.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    /// The search it runs.
    pub algorithm: Algorithm,
    /// The GPU it runs on.
    pub adapter: AdapterSummary,
    /// Operation names, in the column order of the alphas.
    pub ops: Vec<String>,
    /// Intermediate nodes per cell.
    pub steps: usize,
    /// Edges per cell (DARTS: node `i` has edges from states `0..i+2`, node after node).
    pub edges: usize,
    /// The settings, as given.
    pub config: DemoConfig,
    /// The data set after subsampling and downsampling.
    pub data: DataInfo,
    /// Parameters of the supernet (DARTS) or the shared model (ENAS), alphas excluded.
    pub params: usize,
}

/// The data the demo searches on.
#[derive(Clone, Debug, Serialize)]
pub struct DataInfo {
    /// The data set's name.
    pub name: String,
    /// Images of the weights' part and of the architecture's part.
    pub train: usize,
    /// Images of the architecture's part (DARTS alphas, ENAS controller rewards).
    pub valid: usize,
    /// [channels, height, width].
    pub image: [usize; 3],
    /// Class names, in label order.
    pub classes: Vec<String>,
}

/// One step's numbers. ENAS steps have no validation numbers (its validation batches reward the
/// controller).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Global step, from 0.
    pub step: u64,
    /// Epoch of the step, from 0.
    pub epoch: usize,
    /// The weights' learning rate at this step.
    pub lr: f32,
    /// Cross-entropy of the step's training batch.
    pub train_loss: f32,
    /// Accuracy of the step's training batch, in [0, 1].
    pub train_acc: f32,
    /// DARTS: loss on the architecture step's validation batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f32>,
    /// DARTS: accuracy on the architecture step's validation batch, in [0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_acc: Option<f32>,
}

/// One closed epoch: DARTS scores the supernet on validation batches; ENAS reports the mean
/// reward of its controller updates and the baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// Mean training loss of the epoch's steps.
    pub train_loss: f32,
    /// Mean training accuracy of the epoch's steps, in [0, 1].
    pub train_acc: f32,
    /// DARTS: the supernet's loss on the validation batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f32>,
    /// DARTS: the supernet's accuracy on the validation batches, in [0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_acc: Option<f32>,
    /// ENAS: mean reward (accuracy + entropy bonus) of the epoch's controller updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward: Option<f32>,
    /// ENAS: the controller's moving-average baseline at the end of the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f32>,
}

/// softmax(alpha) per cell: `[edges][ops]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alphas {
    /// softmax(alphas_normal): `[edges][ops]`.
    pub normal: Vec<Vec<f32>>,
    /// softmax(alphas_reduce): `[edges][ops]`.
    pub reduce: Vec<Vec<f32>>,
}

/// One ENAS controller update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// Number of the update, over the whole search.
    pub update: u64,
    /// The epoch whose controller phase ran it, from 0.
    pub epoch: usize,
    /// Mean reward of its samples (accuracy + entropy bonus).
    pub reward: f32,
    /// The moving-average baseline after the update.
    pub baseline: f32,
    /// Mean entropy of its samples' decisions (nats, summed over decisions).
    pub entropy: f32,
}

/// One architecture the ENAS controller sampled, and how it scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampled {
    /// The architecture as a DARTS-style genotype.
    pub genotype: Genotype,
    /// The architecture's accuracy on its validation batch.
    pub reward: f32,
}

/// What the ENAS controller did since the previous snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnasView {
    /// Controller updates since the previous snapshot.
    pub updates: Vec<Update>,
    /// The architectures the latest update sampled, best first.
    pub recent: Vec<Sampled>,
}

/// The GPU work so far, counted since the `Gpu` was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpuCounters {
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// Command buffer submissions.
    pub submissions: u64,
    /// Buffer readbacks to the host.
    pub readbacks: u64,
}

/// What changed in one [`Demo::run`]: lists hold only what is new since the previous snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Steps so far (DARTS: bi-level steps; ENAS: shared-weight steps).
    pub step: u64,
    /// Epochs finished.
    pub epoch: usize,
    /// Whether every epoch has run.
    pub finished: bool,
    /// New step metrics.
    pub metrics: Vec<Point>,
    /// Newly finished epochs.
    pub epochs: Vec<EpochPoint>,
    /// DARTS: softmax(alpha) now; ENAS: none.
    pub alphas: Option<Alphas>,
    /// DARTS: derived from the alphas now (top 2 inputs per node). ENAS: the best architecture
    /// of the latest controller update (none before the first).
    pub genotype: Option<Genotype>,
    /// `genotype` as the reference's Python `Genotype(...)` text.
    pub genotype_python: Option<String>,
    /// ENAS: controller updates and the latest samples; DARTS: none.
    pub enas: Option<EnasView>,
    /// GPU work counters so far.
    pub gpu: GpuCounters,
}

enum Search {
    Darts(Box<DartsSearch>),
    Gdas(Box<GdasSearch>),
    Enas(Box<EnasSearch>),
}

/// Ops, nodes, edges and weight count of a supernet, for [`Info`].
fn supernet_info<R: Relaxation>(search: &RunLoop<SupernetSearch<R>>) -> (Vec<String>, usize, usize, usize) {
    let space = &search.method.net.config.space;
    let ops = space.primitives().iter().map(|s| s.to_string()).collect();
    let params = search.method.net.weights().iter().map(|t| t.numel()).sum();
    (ops, space.steps, space.num_edges(), params)
}

/// A demo search and how much of it the caller has seen.
pub struct Demo {
    gpu: Gpu,
    search: Search,
    info: Info,
    seen_metrics: usize,
    seen_epochs: usize,
    seen_updates: usize,
}

impl Demo {
    /// Builds the search on the embedded Fashion-MNIST training set as `config` asks.
    pub fn new(gpu: &Gpu, config: DemoConfig) -> Result<Demo> {
        let data = config.data()?;
        let (search, ops, steps, edges, params) = match config.algorithm {
            Algorithm::Darts => {
                let search = DartsSearch::new(gpu, config.darts(&data)?, &data)?;
                let (ops, steps, edges, params) = supernet_info(&search);
                (Search::Darts(Box::new(search)), ops, steps, edges, params)
            }
            Algorithm::Gdas => {
                let search = GdasSearch::new(gpu, config.darts(&data)?, &data)?;
                let (ops, steps, edges, params) = supernet_info(&search);
                (Search::Gdas(Box::new(search)), ops, steps, edges, params)
            }
            Algorithm::Enas => {
                let search = EnasSearch::new(gpu, config.enas(&data), &data)?;
                let params = search.method.model.module().param_list().iter().map(|t| t.numel()).sum();
                let ops = ENAS_MICRO_OPS.iter().map(|s| s.to_string()).collect();
                (Search::Enas(Box::new(search)), ops, ENAS_NODES, 2 * ENAS_NODES, params)
            }
        };
        let train_part = match &search {
            Search::Darts(s) => s.config().train_portion,
            Search::Gdas(s) => s.config().train_portion,
            Search::Enas(s) => s.config().train_portion,
        };
        let train = (train_part * data.n as f64).floor() as usize;
        let info = Info {
            algorithm: config.algorithm,
            adapter: gpu.adapter().clone(),
            ops,
            steps,
            edges,
            data: DataInfo {
                name: data.name.clone(),
                train,
                valid: data.n - train,
                image: data.image_shape(),
                classes: data.class_names.clone(),
            },
            config,
            params,
        };
        Ok(Demo { gpu: gpu.clone(), search, info, seen_metrics: 0, seen_epochs: 0, seen_updates: 0 })
    }

    /// What the page shows before the first step.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// Whether every epoch has run.
    pub fn is_finished(&self) -> bool {
        match &self.search {
            Search::Darts(s) => s.is_finished(),
            Search::Gdas(s) => s.is_finished(),
            Search::Enas(s) => s.is_finished(),
        }
    }

    /// Runs `n` more steps (DARTS: bi-level steps; ENAS: shared-weight steps, then, once the
    /// epoch has its steps, controller updates; both close epochs as they fill), reads back, and
    /// reports what changed. `run(0)` reports the state as it is.
    pub async fn run(&mut self, n: usize) -> Result<Snapshot> {
        for _ in 0..n {
            if self.is_finished() {
                break;
            }
            // Either closes an epoch once it fills; the summary reaches the snapshot via `epochs`.
            match &mut self.search {
                Search::Darts(s) => {
                    s.advance().await?;
                }
                Search::Gdas(s) => {
                    s.advance().await?;
                }
                Search::Enas(s) => {
                    s.advance().await?;
                }
            }
        }
        match &mut self.search {
            Search::Darts(s) => s.flush_metrics().await?,
            Search::Gdas(s) => s.flush_metrics().await?,
            Search::Enas(s) => s.flush_metrics().await?,
        }
        self.snapshot().await
    }

    async fn snapshot(&mut self) -> Result<Snapshot> {
        let finished = self.is_finished();
        let gpu = GpuCounters {
            dispatches: self.gpu.dispatches(),
            submissions: self.gpu.submissions(),
            readbacks: self.gpu.readbacks(),
        };
        let snapshot = match &self.search {
            Search::Darts(s) => {
                supernet_snapshot(s, &mut self.seen_metrics, &mut self.seen_epochs, finished, gpu).await?
            }
            Search::Gdas(s) => {
                supernet_snapshot(s, &mut self.seen_metrics, &mut self.seen_epochs, finished, gpu).await?
            }
            Search::Enas(s) => {
                let metrics = s.metrics[self.seen_metrics..]
                    .iter()
                    .map(|m| Point {
                        step: m.step,
                        epoch: m.epoch,
                        lr: m.lr,
                        train_loss: m.loss,
                        train_acc: m.acc,
                        val_loss: None,
                        val_acc: None,
                    })
                    .collect();
                let epochs = s.epochs[self.seen_epochs..]
                    .iter()
                    .map(|e| EpochPoint {
                        epoch: e.epoch,
                        train_loss: e.train_loss,
                        train_acc: e.train_acc,
                        val_loss: None,
                        val_acc: None,
                        reward: Some(e.reward),
                        baseline: Some(e.baseline),
                    })
                    .collect();
                let updates = s.method.controller_metrics[self.seen_updates..]
                    .iter()
                    .map(|m| Update {
                        update: m.update,
                        epoch: m.epoch,
                        reward: m.stats.reward,
                        baseline: m.stats.baseline,
                        entropy: m.stats.entropy,
                    })
                    .collect();
                (self.seen_metrics, self.seen_epochs, self.seen_updates) =
                    (s.metrics.len(), s.epochs.len(), s.method.controller_metrics.len());
                let mut recent: Vec<Sampled> = s
                    .method
                    .last_samples
                    .iter()
                    .filter_map(|x| Some(Sampled { genotype: x.arch.genotype()?, reward: x.score }))
                    .collect();
                // Stable: among equal rewards the earlier sample stays first.
                recent.sort_by(|a, b| b.reward.total_cmp(&a.reward));
                let genotype = recent.first().map(|r| r.genotype.clone());
                Snapshot {
                    step: s.global_step(),
                    epoch: s.epoch(),
                    finished,
                    metrics,
                    epochs,
                    alphas: None,
                    genotype_python: genotype.as_ref().map(Genotype::to_python),
                    genotype,
                    enas: Some(EnasView { updates, recent }),
                    gpu,
                }
            }
        };
        Ok(snapshot)
    }

    /// Every softmax(alpha) read back so far, with its step (DARTS; empty for ENAS), for the
    /// download.
    pub fn alpha_history(&self) -> &[AlphaRecord] {
        match &self.search {
            Search::Darts(s) => &s.method.alpha_history,
            Search::Gdas(s) => &s.method.alpha_history,
            Search::Enas(_) => &[],
        }
    }
}

/// A DARTS or GDAS snapshot: the new metrics and epochs, softmax(alpha) and the genotype the
/// search derives now.
async fn supernet_snapshot<R: Relaxation>(
    s: &RunLoop<SupernetSearch<R>>,
    seen_metrics: &mut usize,
    seen_epochs: &mut usize,
    finished: bool,
    gpu: GpuCounters,
) -> Result<Snapshot> {
    let (normal, reduce) = s.method.alphas().await?;
    let genotype = s.genotype().await?.into_darts()?;
    let metrics = s.metrics[*seen_metrics..]
        .iter()
        .map(|m| Point {
            step: m.step,
            epoch: m.epoch,
            lr: m.lr,
            train_loss: m.train_loss,
            train_acc: m.train_acc,
            val_loss: Some(m.val_loss),
            val_acc: Some(m.val_acc),
        })
        .collect();
    let epochs = s.epochs[*seen_epochs..]
        .iter()
        .map(|e| EpochPoint {
            epoch: e.epoch,
            train_loss: e.train_loss,
            train_acc: e.train_acc,
            val_loss: Some(e.val_loss),
            val_acc: Some(e.val_acc),
            reward: None,
            baseline: None,
        })
        .collect();
    (*seen_metrics, *seen_epochs) = (s.metrics.len(), s.epochs.len());
    Ok(Snapshot {
        step: s.global_step(),
        epoch: s.epoch(),
        finished,
        metrics,
        epochs,
        alphas: Some(Alphas { normal: softmax_rows(&normal), reduce: softmax_rows(&reduce) }),
        genotype_python: Some(genotype.to_python()),
        genotype: Some(genotype),
        enas: None,
        gpu,
    })
}

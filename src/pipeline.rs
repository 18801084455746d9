//! The paper's whole workflow in one call: search a cell with DARTS on the training set, then
//! retrain the genotype it found from scratch in a deeper network and score it on the test set
//! ([`search_then_retrain`]), at the sizes of a [`Budget`]. The examples call it.

use crate::darts::{DartsEpoch, DartsSearch, SearchConfig};
use crate::data::{Augment, Dataset};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::space::{Genotype, SearchSpace};
use crate::train::{TrainConfig, TrainEpoch, Trainer};

/// The sizes of a search and of the retraining of what it finds.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    /// Search network: initial channels C.
    pub search_channels: usize,
    /// Search network: cells.
    pub search_layers: usize,
    /// Intermediate nodes per cell (the genotype keeps as many).
    pub nodes: usize,
    /// Search epochs.
    pub search_epochs: usize,
    /// Steps per search epoch; `None` is a full pass over the weights' half.
    pub search_steps: Option<usize>,
    /// Retraining network: initial channels.
    pub train_channels: usize,
    /// Retraining network: cells.
    pub train_layers: usize,
    /// Retraining epochs.
    pub train_epochs: usize,
    /// Steps per retraining epoch; `None` is a full pass over the training set.
    pub train_steps: Option<usize>,
    /// Images per batch, search and retraining (the paper's retraining uses 96 when
    /// `regularise`).
    pub batch_size: usize,
    /// Batches scored per epoch (validation half, test set); `None` scores all.
    pub eval_batches: Option<usize>,
    /// The paper's retraining regularisers (auxiliary head, drop path 0.2, cutout 16, batch
    /// 96), which pay off over hundreds of epochs only.
    pub regularise: bool,
}

impl Budget {
    /// The paper's: search C=16, 8 cells, 4 nodes, batch 64, 50 epochs; retraining C=36, 20
    /// cells, 600 epochs with the regularisers (days on one GPU).
    pub fn paper() -> Budget {
        Budget {
            search_channels: 16,
            search_layers: 8,
            nodes: 4,
            search_epochs: 50,
            search_steps: None,
            train_channels: 36,
            train_layers: 20,
            train_epochs: 600,
            train_steps: None,
            batch_size: 64,
            eval_batches: None,
            regularise: true,
        }
    }

    /// The search's settings on `data` (its training set).
    pub fn search_config(&self, data: &Dataset) -> Result<SearchConfig> {
        let mut config = SearchConfig::darts(data.channels, data.num_classes);
        config.network.channels = self.search_channels;
        config.network.layers = self.search_layers;
        config.network.space = SearchSpace::darts().with_steps(self.nodes, self.nodes)?;
        config.batch_size = self.batch_size;
        config.epochs = self.search_epochs;
        config.steps_per_epoch = self.search_steps;
        config.eval_batches = self.eval_batches;
        if let Some(steps) = self.search_steps {
            // Metrics (and the alphas) read back 4 times an epoch at least.
            config.log_every = (steps / 4).clamp(1, config.log_every);
        }
        Ok(config)
    }

    /// The retraining's settings for `genotype` on `data` (its training set).
    pub fn train_config(&self, data: &Dataset, genotype: Genotype) -> TrainConfig {
        let mut config = TrainConfig::darts(data.channels, data.num_classes, genotype);
        config.network.channels = self.train_channels;
        config.network.layers = self.train_layers;
        config.epochs = self.train_epochs;
        config.steps_per_epoch = self.train_steps;
        config.eval_batches = self.eval_batches;
        if !self.regularise {
            config.network.auxiliary = false;
            config.drop_path_prob = 0.0;
            config.augment = Augment::darts_train(0);
            config.batch_size = self.batch_size;
        }
        config
    }
}

/// What [`search_then_retrain`] reports as it goes.
pub enum Stage<'a> {
    /// A search epoch closed.
    Searched(&'a DartsEpoch),
    /// The search's genotype, and the retraining network's size in MB of parameters.
    Found(&'a Genotype, f64),
    /// A retraining epoch closed.
    Trained(&'a TrainEpoch),
}

impl std::fmt::Display for Stage<'_> {
    /// One line (two for [`Stage::Found`]) as the examples print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::Searched(e) => write!(
                f,
                "search epoch {}: train acc {:.1}%, validation acc {:.1}%",
                e.epoch,
                100.0 * e.train_acc,
                100.0 * e.val_acc
            ),
            Stage::Found(g, mb) => write!(f, "found: {}\nretraining: {mb:.3} MB of parameters", g.to_python()),
            Stage::Trained(e) => write!(
                f,
                "train epoch {}: train acc {:.1}%, test acc {:.1}%",
                e.epoch,
                100.0 * e.train_acc,
                100.0 * e.test_acc
            ),
        }
    }
}

/// What the workflow found and how well it retrained.
pub struct Outcome {
    /// The searched cell.
    pub genotype: Genotype,
    /// Every search epoch.
    pub search: Vec<DartsEpoch>,
    /// Every retraining epoch; the last one's test accuracy is the result.
    pub retrain: Vec<TrainEpoch>,
    /// The retraining network's parameters in MB (auxiliary head excluded).
    pub param_size_mb: f64,
}

impl Outcome {
    /// The test accuracy after the last retraining epoch, in [0, 1].
    pub fn test_acc(&self) -> f32 {
        self.retrain.last().map_or(f32::NAN, |e| e.test_acc)
    }
}

/// Searches a cell on `train` (split into the weights' and the alphas' halves), then retrains
/// its genotype on `train` and scores it on `test` after every epoch; `report` sees each stage.
/// The search's GPU memory is freed before the retraining starts.
pub async fn search_then_retrain(
    gpu: &Gpu,
    budget: &Budget,
    train: &Dataset,
    test: &Dataset,
    mut report: impl FnMut(Stage<'_>),
) -> Result<Outcome> {
    let mut search = DartsSearch::new(gpu, budget.search_config(train)?, train)?;
    while !search.is_finished() {
        let e = search.run_epoch(|_| {}).await?;
        report(Stage::Searched(&e));
    }
    let genotype = search.genotype().await?.into_darts()?;
    let search_epochs = std::mem::take(&mut search.epochs);
    drop(search);

    let mut trainer = Trainer::new(gpu, budget.train_config(train, genotype.clone()), train, test)?;
    let param_size_mb = trainer.param_size_mb();
    report(Stage::Found(&genotype, param_size_mb));
    while !trainer.is_finished() {
        let e = trainer.run_epoch(|_| {}).await?;
        report(Stage::Trained(&e));
    }
    Ok(Outcome { genotype, search: search_epochs, retrain: std::mem::take(&mut trainer.epochs), param_size_mb })
}

//! `wgpu-nas experiment`: searched cells against random cells from the same space (Li &
//! Talwalkar, 2019). Each method searches with every seed, R genotypes are drawn uniformly from
//! the space ([`random_genotype`]), and every found and every random genotype is retrained
//! with one [`Budget`]. Every run is an ordinary run directory inside the experiment
//! directory, made by the same code as `search ...` and `train`; the experiment adds
//! experiment.json (what it runs), random-N.genotype.json, and the results: results.json,
//! results.md and results.png.
//!
//! Restarted on the same directory it goes on where it stopped: finished runs are skipped, the
//! unfinished one resumes from its last checkpoint (`--resume`), the rest start.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, FromArgMatches, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wgpu_nas::checkpoint::Checkpoint;
use wgpu_nas::darts::{NetworkConfig, PartialChannels};
use wgpu_nas::data::Dataset;
use wgpu_nas::durable::write_atomic;
use wgpu_nas::rng::Rng;
use wgpu_nas::run_dir::{CHECKPOINT, CONFIG};
use wgpu_nas::space::{darts_v2, random_genotype, SearchSpace};
use wgpu_nas::train::{Architecture, EvalNetworkConfig};
use wgpu_nas::{Error, Result};

use crate::run::Given;

mod cluster;
mod results;
use crate::search::{self, io, load, DatasetName};
use crate::{out, plot, train};
pub use cluster::{leaderboard, task, LeaderboardArgs, TaskArgs};
use results::{collect, data_description, markdown};

/// Where Debian's `dataset-fashion-mnist` puts the IDX files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// The experiment directory: new or empty, or one this command made with the same settings
    /// (then it goes on where it stopped).
    #[arg(long)]
    out: PathBuf,
    /// The searches to compare, comma-separated: darts (first order), darts2 (second order),
    /// pc-darts, gdas.
    #[arg(long, value_delimiter = ',', default_value = "darts,gdas")]
    methods: Vec<String>,
    /// Searches per method, with seeds 0..S.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Random genotypes drawn from the same space (random-N drawn with seed N).
    #[arg(long, default_value_t = 5)]
    random: u64,
    /// Sizes: cpu (about an hour on 2 CPU cores with lavapipe for darts,gdas, 3 seeds, 5
    /// random) or gpu (the paper's protocol: search C=16, 8 cells, 50 epochs; retraining C=36,
    /// 20 cells, 600 epochs). Each size can be overridden below.
    #[arg(long, value_enum, default_value_t = Preset::Cpu)]
    budget: Preset,
    /// Data set (default: Debian's dataset-fashion-mnist when installed, else the embedded subset).
    #[arg(long, value_enum)]
    dataset: Option<DatasetName>,
    /// Directory of the data set's files (CIFAR binaries, IDX files).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Candidate operations of the space, comma-separated (default: the 8 DARTS primitives).
    #[arg(long, value_delimiter = ',')]
    ops: Option<Vec<String>>,
    /// Search network: initial channels C.
    #[arg(long)]
    search_channels: Option<usize>,
    /// Search network: cells.
    #[arg(long)]
    search_layers: Option<usize>,
    #[arg(long)]
    search_batch_size: Option<usize>,
    #[arg(long)]
    search_epochs: Option<usize>,
    /// Steps per search epoch; 0 = a full pass over the weights' half of the training set.
    #[arg(long)]
    search_steps: Option<usize>,
    /// Validation batches per search epoch; 0 = the whole validation half.
    #[arg(long)]
    search_eval_batches: Option<usize>,
    /// Retraining network: initial channels C (even).
    #[arg(long)]
    train_channels: Option<usize>,
    /// Retraining network: cells (at least 3).
    #[arg(long)]
    train_layers: Option<usize>,
    #[arg(long)]
    train_batch_size: Option<usize>,
    #[arg(long)]
    train_epochs: Option<usize>,
    /// Steps per retraining epoch; 0 = a full pass over the training set.
    #[arg(long)]
    train_steps: Option<usize>,
    /// Test batches per retraining epoch; 0 = the whole test set (the result is the last
    /// epoch's).
    #[arg(long)]
    train_eval_batches: Option<usize>,
    /// Retraining's initial learning rate (cosine down to 0).
    #[arg(long)]
    train_learning_rate: Option<f32>,
    /// Retraining's cutout side in pixels, 0 = off.
    #[arg(long)]
    cutout: Option<usize>,
    /// Retraining's drop path probability reached in the last epoch.
    #[arg(long)]
    drop_path: Option<f32>,
    /// Retraining's auxiliary head (true or false).
    #[arg(long)]
    auxiliary: Option<bool>,
    /// Print only each run's result and the table.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    cluster: cluster::ClusterArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Cpu,
    Gpu,
}

/// The sizes of every search and every retraining of an experiment: one budget for all, so
/// that the methods and the random genotypes compare on equal terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub search: SearchSize,
    pub train: TrainSize,
}

/// A search's network and length (the learning rates are each method's own defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSize {
    pub channels: usize,
    pub layers: usize,
    pub batch_size: usize,
    pub epochs: usize,
    /// 0 = a full pass over the weights' half of the training set.
    pub steps_per_epoch: usize,
    /// 0 = the whole validation half.
    pub eval_batches: usize,
}

/// A retraining's network, length, schedule and regularisers, as `train` has them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSize {
    pub channels: usize,
    pub layers: usize,
    pub batch_size: usize,
    pub epochs: usize,
    /// 0 = a full pass over the training set.
    pub steps_per_epoch: usize,
    /// 0 = the whole test set.
    pub eval_batches: usize,
    /// Initial learning rate, cosine down to 0 (SGD, momentum 0.9, as `train`).
    pub learning_rate: f32,
    pub cutout: usize,
    pub drop_path: f32,
    pub auxiliary: bool,
    /// The one seed every retraining uses: only the genotype differs between them.
    pub seed: u64,
}

impl Budget {
    /// Under an hour on 2 CPU cores with lavapipe for `--methods darts,gdas --seeds 3
    /// --random 5` on 28x28 Fashion-MNIST. Sized from `--seeds 1 --random 1` at these sizes
    /// (but 5 search epochs) with a debug build, the CPUs shared with another build (load 5):
    /// 992 s in all; a DARTS search epoch of 20 steps 66-100 s, a GDAS one 11 s, a retraining
    /// 2.5-3.5 min by genotype. At 4 search epochs the whole command comes to about 3 x 5.3 min
    /// of DARTS, 3 x 0.8 of GDAS and 11 x 3 of retraining: 53 minutes there. The test score is
    /// the first 1024 test images (all of the embedded subset's 1000; full Fashion-MNIST's 10000
    /// would cost 10 times as much).
    pub fn cpu() -> Budget {
        Budget {
            search: SearchSize {
                channels: 4,
                layers: 3,
                batch_size: 16,
                epochs: 4,
                steps_per_epoch: 20,
                eval_batches: 4,
            },
            train: TrainSize {
                channels: 8,
                layers: 3,
                batch_size: 32,
                epochs: 5,
                steps_per_epoch: 40,
                eval_batches: 32,
                learning_rate: 0.025,
                cutout: 0,
                drop_path: 0.0,
                auxiliary: false,
                seed: 0,
            },
        }
    }

    /// The paper's protocol on CIFAR-10 (Liu et al. 2019): search C=16, 8 cells, batch 64, 50
    /// epochs of a full pass; retraining C=36, 20 cells, batch 96, 600 epochs, lr 0.025 cosine,
    /// cutout 16, drop path 0.2, auxiliary head.
    pub fn gpu() -> Budget {
        Budget {
            search: SearchSize {
                channels: 16,
                layers: 8,
                batch_size: 64,
                epochs: 50,
                steps_per_epoch: 0,
                eval_batches: 0,
            },
            train: TrainSize {
                channels: 36,
                layers: 20,
                batch_size: 96,
                epochs: 600,
                steps_per_epoch: 0,
                eval_batches: 0,
                learning_rate: 0.025,
                cutout: 16,
                drop_path: 0.2,
                auxiliary: true,
                seed: 0,
            },
        }
    }

    /// Checks that every run of the budget can start, for `methods` in `space` on `data`:
    /// sizes at least 1, the search network (and PC-DARTS's channel share) and the retraining
    /// network buildable.
    pub fn validate(&self, methods: &[Searcher], space: &SearchSpace, data: &Dataset) -> Result<()> {
        let (s, t) = (&self.search, &self.train);
        for (what, n) in [
            ("--search-channels", s.channels),
            ("--search-layers", s.layers),
            ("--search-batch-size", s.batch_size),
            ("--search-epochs", s.epochs),
            ("--train-channels", t.channels),
            ("--train-layers", t.layers),
            ("--train-batch-size", t.batch_size),
            ("--train-epochs", t.epochs),
        ] {
            if n == 0 {
                return Err(Error::Config(format!("{what} 0: every run of the experiment needs at least 1")));
            }
        }
        if !(0.0..1.0).contains(&t.drop_path) {
            return Err(Error::Config(format!("--drop-path {} must be in [0, 1)", t.drop_path)));
        }
        if !(t.learning_rate > 0.0 && t.learning_rate.is_finite()) {
            return Err(Error::Config(format!("--train-learning-rate {} must be positive", t.learning_rate)));
        }
        let mut network = NetworkConfig::darts(data.channels, data.num_classes);
        network.channels = s.channels;
        network.layers = s.layers;
        network.space = space.clone();
        network.validate().map_err(|e| Error::Config(format!("the search network: {}", message(e))))?;
        if methods.contains(&Searcher::PcDarts) {
            network.partial = Some(PartialChannels::pc_darts());
            network.validate().map_err(|e| Error::Config(format!("pc-darts's search network: {}", message(e))))?;
        }
        let mut eval = EvalNetworkConfig::darts(data.channels, data.num_classes, darts_v2());
        eval.channels = t.channels;
        eval.layers = t.layers;
        eval.validate().map_err(|e| Error::Config(format!("the retraining network: {}", message(e))))
    }
}

fn message(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        e => e.to_string(),
    }
}

/// A search method of the experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Searcher {
    /// DARTS, first order.
    Darts,
    /// DARTS, second order (unrolled).
    Darts2,
    PcDarts,
    Gdas,
}

const SEARCHERS: [Searcher; 4] = [Searcher::Darts, Searcher::Darts2, Searcher::PcDarts, Searcher::Gdas];

impl Searcher {
    fn name(self) -> &'static str {
        match self {
            Searcher::Darts => "darts",
            Searcher::Darts2 => "darts2",
            Searcher::PcDarts => "pc-darts",
            Searcher::Gdas => "gdas",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Searcher::Darts => "DARTS (1st order)",
            Searcher::Darts2 => "DARTS (2nd order)",
            Searcher::PcDarts => "PC-DARTS",
            Searcher::Gdas => "GDAS",
        }
    }

    /// `--methods`' names; ENAS is refused with the reason (it searches spaces of its own).
    fn parse(name: &str) -> Result<Searcher> {
        let names: Vec<&str> = SEARCHERS.iter().map(|s| s.name()).collect();
        if let Some(&s) = SEARCHERS.iter().find(|s| s.name() == name.trim()) {
            return Ok(s);
        }
        if name.trim() == "enas" {
            return Err(Error::Config(format!(
                "--methods enas does not fit the DARTS cell space the experiment draws its random cells from (ENAS \
                 samples its own micro cells or a macro network); choose from {}",
                names.join(", ")
            )));
        }
        Err(Error::Config(format!("--methods: unknown method {name:?}; choose from {}", names.join(", "))))
    }
}

/// What an experiment runs, saved as experiment.json: a restart must ask for the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Spec {
    methods: Vec<Searcher>,
    seeds: Vec<u64>,
    random_seeds: Vec<u64>,
    space: SearchSpace,
    dataset: DatasetName,
    data_dir: Option<PathBuf>,
    budget: Budget,
}

const SPEC: &str = "experiment.json";

/// One run of the plan.
enum Job {
    Search { method: Searcher, seed: u64 },
    Train { method: Option<Searcher>, seed: u64 },
}

impl Job {
    /// The run's directory name: search-darts-s0, train-darts-s0, train-random-3.
    fn name(&self) -> String {
        match self {
            Job::Search { method, seed } => format!("search-{}-s{seed}", method.name()),
            Job::Train { method: Some(m), seed } => format!("train-{}-s{seed}", m.name()),
            Job::Train { method: None, seed } => format!("train-random-{seed}"),
        }
    }
}

/// Where a run's directory stands.
#[derive(Debug, PartialEq)]
enum State {
    Absent,
    /// Started, stopped before its first checkpoint.
    NoCheckpoint,
    Unfinished,
    Finished,
}

impl State {
    /// What the experiment does with a run in this state, in words.
    fn doing(&self) -> &'static str {
        match self {
            State::Finished => "finished earlier, skipped",
            State::Unfinished => "resuming from its last checkpoint",
            State::NoCheckpoint => "stopped before its first checkpoint: starting it again",
            State::Absent => "starting",
        }
    }
}

fn state(dir: &Path) -> Result<State> {
    if !dir.exists() {
        return Ok(State::Absent);
    }
    if !dir.join(CHECKPOINT).exists() {
        return Ok(State::NoCheckpoint);
    }
    let meta = Checkpoint::load(&dir.join(CHECKPOINT))?.meta;
    let done = meta.get("epoch").and_then(Value::as_u64);
    let epochs = meta.pointer("/config/epochs").and_then(Value::as_u64);
    Ok(match (done, epochs) {
        (Some(d), Some(e)) if d >= e => State::Finished,
        _ => State::Unfinished,
    })
}

/// The data set of an experiment: --dataset/--data-dir, or Debian's Fashion-MNIST when it is
/// installed, or the embedded subset.
fn data_source(args: &ExperimentArgs) -> (DatasetName, Option<PathBuf>) {
    match args.dataset {
        Some(name) => (name, args.data_dir.clone()),
        None if args.data_dir.is_some() => (DatasetName::FashionMnist, args.data_dir.clone()),
        None => {
            let debian = Path::new(DEBIAN_FASHION_MNIST);
            let installed =
                ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"].iter().any(|f| debian.join(f).is_file());
            if installed {
                (DatasetName::FashionMnist, Some(debian.to_path_buf()))
            } else {
                (DatasetName::Embedded, None)
            }
        }
    }
}

impl ExperimentArgs {
    fn budget(&self) -> Budget {
        let mut b = match self.budget {
            Preset::Cpu => Budget::cpu(),
            Preset::Gpu => Budget::gpu(),
        };
        let set = |slot: &mut usize, v: Option<usize>| *slot = v.unwrap_or(*slot);
        set(&mut b.search.channels, self.search_channels);
        set(&mut b.search.layers, self.search_layers);
        set(&mut b.search.batch_size, self.search_batch_size);
        set(&mut b.search.epochs, self.search_epochs);
        set(&mut b.search.steps_per_epoch, self.search_steps);
        set(&mut b.search.eval_batches, self.search_eval_batches);
        set(&mut b.train.channels, self.train_channels);
        set(&mut b.train.layers, self.train_layers);
        set(&mut b.train.batch_size, self.train_batch_size);
        set(&mut b.train.epochs, self.train_epochs);
        set(&mut b.train.steps_per_epoch, self.train_steps);
        set(&mut b.train.eval_batches, self.train_eval_batches);
        set(&mut b.train.cutout, self.cutout);
        b.train.learning_rate = self.train_learning_rate.unwrap_or(b.train.learning_rate);
        b.train.drop_path = self.drop_path.unwrap_or(b.train.drop_path);
        b.train.auxiliary = self.auxiliary.unwrap_or(b.train.auxiliary);
        b
    }

    /// The spec the options ask for, checked (nothing is written): methods known and fitting
    /// the space, at least one search, a budget every run fits, the data set readable.
    fn spec(&self) -> Result<(Spec, Dataset)> {
        let mut methods = Vec::new();
        for name in &self.methods {
            let m = Searcher::parse(name)?;
            if methods.contains(&m) {
                return Err(Error::Config(format!("--methods lists {} twice", m.name())));
            }
            methods.push(m);
        }
        if methods.is_empty() || self.seeds == 0 {
            return Err(Error::Config(
                "the experiment needs at least one method (--methods) and one seed (--seeds 1 or more)".into(),
            ));
        }
        let space = match &self.ops {
            Some(ops) => SearchSpace::with_ops(&ops.iter().map(String::as_str).collect::<Vec<_>>())?,
            None => SearchSpace::darts(),
        };
        let (dataset, data_dir) = data_source(self);
        let data = load(dataset, data_dir.as_deref())?;
        let budget = self.budget();
        budget.validate(&methods, &space, &data)?;
        let spec = Spec {
            methods,
            seeds: (0..self.seeds).collect(),
            random_seeds: (0..self.random).collect(),
            space,
            dataset,
            data_dir,
            budget,
        };
        Ok((spec, data))
    }
}

/// `experiment`: checks everything, then runs (or skips, or resumes) every run of the plan in
/// turn and writes the results. With `--plan-only` (or `--slurm`, `--kubernetes`) it writes
/// the experiment directory and its plan.jsonl (and the engine's job file) and runs nothing.
pub fn experiment(args: ExperimentArgs) -> Result<ExitCode> {
    let (spec, data) = args.spec()?;
    let dir = &args.out;
    if args.cluster.wanted() {
        // Checked before anything is written.
        args.cluster.validate()?;
    }
    open_dir(dir, &spec)?;
    let say = |s: String| if args.quiet { Ok(()) } else { out::line(s) };
    let plan = prepare(dir, &spec)?;
    if args.cluster.wanted() {
        return cluster::write_plan(dir, &spec, &plan, &args.cluster);
    }
    say(format!(
        "experiment in {}: {} on {} ({}), {} seed{}, {} random genotypes: {} runs",
        dir.display(),
        spec.methods.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
        data.name,
        data_description(&spec, &data),
        spec.seeds.len(),
        if spec.seeds.len() == 1 { "" } else { "s" },
        spec.random_seeds.len(),
        plan.len()
    ))?;
    for (i, job) in plan.iter().enumerate() {
        let name = job.name();
        let state = state(&dir.join(&name))?;
        say(format!("[{}/{}] {name}: {}", i + 1, plan.len(), state.doing()))?;
        run_job(dir, &spec, job, state, args.quiet)?;
    }

    let results = collect(std::slice::from_ref(dir), &spec, &plan, &data)?;
    write_results(dir, &results)?;
    out::line(format_args!("results in {}: results.json, results.md, results.png", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes results.json, results.md and results.png of `results` in `dir`, and prints the table.
fn write_results(dir: &Path, results: &results::Results) -> Result<()> {
    write_atomic(&dir.join("results.json"), serde_json::to_string_pretty(results)?.as_bytes())?;
    let table = markdown(results);
    write_atomic(&dir.join("results.md"), table.as_bytes())?;
    let columns = results.accuracy_columns();
    plot::strips(&dir.join("results.png"), "Test accuracy of every retrained genotype", "test accuracy (%)", &columns)?;
    out::text_raw(&table)
}

/// The runs of the experiment `spec` in `dir`, in order (searches, their retrainings, the random
/// retrainings), after drawing the random genotypes (once, kept beside the runs) and checking
/// that every retraining begun retrains the genotype its file holds now.
fn prepare(dir: &Path, spec: &Spec) -> Result<Vec<Job>> {
    for &seed in &spec.random_seeds {
        let path = genotype_file(dir, None, seed);
        let genotype = random_genotype(&spec.space, &mut Rng::new(seed))?;
        if !path.exists() {
            write_atomic(&path, genotype.to_json().as_bytes())?;
        } else if search::read_genotype(&path)? != genotype {
            return Err(Error::Config(format!(
                "{} is not the genotype that seed {seed} draws; remove it (and train-random-{seed}) to draw it again",
                path.display()
            )));
        }
    }
    let plan = jobs(spec);
    // A search to be made again, its file gone, is left to make the same one from its seed.
    for job in &plan {
        let Job::Train { method, seed } = job else { continue };
        let (run_dir, genotype) = (dir.join(job.name()), genotype_file(dir, *method, *seed));
        if run_dir.join(CHECKPOINT).exists() && genotype.exists() {
            check_retrained(&run_dir, &genotype)?;
        }
    }
    Ok(plan)
}

/// The runs of `spec`, in order: every search, their retrainings, the random retrainings.
fn jobs(spec: &Spec) -> Vec<Job> {
    let mut plan: Vec<Job> = Vec::new();
    for &method in &spec.methods {
        plan.extend(spec.seeds.iter().map(|&seed| Job::Search { method, seed }));
    }
    for &method in &spec.methods {
        plan.extend(spec.seeds.iter().map(|&seed| Job::Train { method: Some(method), seed }));
    }
    plan.extend(spec.random_seeds.iter().map(|&seed| Job::Train { method: None, seed }));
    plan
}

/// The options of `job`'s command (after the subcommand and `--out`), its genotype file under
/// `dir`.
fn job_options(dir: &Path, spec: &Spec, job: &Job) -> Vec<String> {
    match job {
        Job::Search { method, seed } => search_options(spec, *method, *seed),
        Job::Train { method, seed } => train_options(spec, &genotype_file(dir, *method, *seed)),
    }
}

/// Runs (or skips, or resumes) `job` of the experiment in `dir`, whose run directory is in
/// `state`: the same code as `search ...` and `train` on the options the plan gives it.
fn run_job(dir: &Path, spec: &Spec, job: &Job, state: State, quiet: bool) -> Result<()> {
    if state == State::Finished {
        return Ok(());
    }
    let run_dir = dir.join(job.name());
    let mut argv: Vec<String> = match state {
        State::Unfinished => vec!["--resume".into(), path(&run_dir)],
        State::NoCheckpoint => vec!["--out".into(), path(&run_dir), "--force".into()],
        _ => vec!["--out".into(), path(&run_dir)],
    };
    if state != State::Unfinished {
        argv.extend(job_options(dir, spec, job));
    }
    if quiet {
        argv.push("--quiet".into());
    }
    match job {
        Job::Search { method, .. } => run_search(*method, &argv)?,
        Job::Train { .. } => {
            let (mut a, given) = parse::<train::TrainArgs>(&argv)?;
            a.run.record_times = true;
            train::train(a, &given)?;
        }
    }
    Ok(())
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Creates the experiment directory with its experiment.json, or checks that an existing
/// one's asks for the same runs.
fn open_dir(dir: &Path, spec: &Spec) -> Result<()> {
    let file = dir.join(SPEC);
    if file.is_file() {
        let text = std::fs::read_to_string(&file).map_err(io(&file))?;
        let saved: Spec = serde_json::from_str(&text)
            .map_err(|e| Error::File { path: path(&file), msg: format!("unreadable experiment record: {e}") })?;
        if saved != *spec {
            // Both through the same serialisation, so that an f32 reads the same on both sides.
            let (saved, now) = (serde_json::to_value(&saved)?, serde_json::to_value(spec)?);
            let mut differ = Vec::new();
            differences(&saved, &now, String::new(), &mut differ);
            return Err(Error::Config(format!(
                "{} holds an experiment with other settings ({}); give the same options to continue it, or a new \
                 --out",
                dir.display(),
                differ.join(", ")
            )));
        }
        return Ok(());
    }
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(Error::Config(format!(
            "{} is not empty and holds no experiment; give --out a new or empty directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write_atomic(&file, serde_json::to_string_pretty(spec)?.as_bytes())
}

/// The JSON pointers at which `a` and `b` differ, with both values: "budget/train/epochs 3 there, 4 here".
fn differences(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                differences(va, vb, if at.is_empty() { k.clone() } else { format!("{at}/{k}") }, out);
            }
        }
        _ if a != b => out.push(format!("{at} {a} there, {b} here")),
        _ => {}
    }
}

/// The options of a search run of `method` with `seed` at the budget's sizes.
fn search_options(spec: &Spec, method: Searcher, seed: u64) -> Vec<String> {
    let s = &spec.budget.search;
    let mut o: Vec<String> = [
        ("--init-channels", s.channels),
        ("--layers", s.layers),
        ("--batch-size", s.batch_size),
        ("--epochs", s.epochs),
        ("--steps-per-epoch", s.steps_per_epoch),
        ("--eval-batches", s.eval_batches),
    ]
    .iter()
    .flat_map(|(k, v)| [k.to_string(), v.to_string()])
    .collect();
    o.extend(["--seed".into(), seed.to_string(), "--hessian-iters".into(), "0".into()]);
    o.extend(["--ops".into(), spec.space.primitives.join(",")]);
    o.extend(data_options(spec));
    match method {
        Searcher::Darts2 => o.extend(["--order".into(), "2".into()]),
        // `search pc-darts`'s own defaults, which its subcommand (not its options) sets.
        Searcher::PcDarts => o.extend(["--learning-rate", "0.1", "--arch-learning-rate", "0.0006"].map(String::from)),
        Searcher::Darts | Searcher::Gdas => {}
    }
    o
}

/// The options of a retraining of `genotype` at the budget's sizes.
fn train_options(spec: &Spec, genotype: &Path) -> Vec<String> {
    let t = &spec.budget.train;
    let mut o: Vec<String> = vec!["--genotype".into(), path(genotype)];
    for (k, v) in [
        ("--init-channels", t.channels.to_string()),
        ("--layers", t.layers.to_string()),
        ("--batch-size", t.batch_size.to_string()),
        ("--epochs", t.epochs.to_string()),
        ("--steps-per-epoch", t.steps_per_epoch.to_string()),
        ("--eval-batches", t.eval_batches.to_string()),
        ("--learning-rate", t.learning_rate.to_string()),
        ("--cutout", t.cutout.to_string()),
        ("--drop-path", t.drop_path.to_string()),
        ("--seed", t.seed.to_string()),
    ] {
        o.extend([k.to_string(), v]);
    }
    o.push(if t.auxiliary { "--auxiliary" } else { "--no-auxiliary" }.into());
    o.extend(data_options(spec));
    o
}

fn data_options(spec: &Spec) -> Vec<String> {
    let name = spec.dataset.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
    let mut o = vec!["--dataset".to_string(), name];
    if let Some(d) = &spec.data_dir {
        o.extend(["--data-dir".into(), path(d)]);
    }
    o
}

/// A command's options parsed as its subcommand would parse them, with what was given.
fn parse<A: Args + FromArgMatches>(argv: &[String]) -> Result<(A, Given)> {
    let command = A::augment_args(clap::Command::new("wgpu-nas").no_binary_name(true));
    let bad = |e: clap::Error| Error::Config(format!("the experiment made options its runs refuse: {e}"));
    let matches = command.try_get_matches_from(argv).map_err(bad)?;
    let args = A::from_arg_matches(&matches).map_err(bad)?;
    Ok((args, Given::from_matches(&matches)))
}

fn run_search(method: Searcher, argv: &[String]) -> Result<()> {
    match method {
        Searcher::Darts | Searcher::Darts2 => {
            let (mut a, given) = parse::<search::DartsArgs>(argv)?;
            a.supernet.run.record_times = true;
            search::darts(a, &given)?;
        }
        Searcher::PcDarts => {
            let (mut a, given) = parse::<search::PcDartsArgs>(argv)?;
            a.darts.supernet.run.record_times = true;
            search::pc_darts(a, &given)?;
        }
        Searcher::Gdas => {
            let (mut a, given) = parse::<search::GdasArgs>(argv)?;
            a.supernet.run.record_times = true;
            search::gdas(a, &given)?;
        }
    }
    Ok(())
}

/// Checks that the retraining in `run` is of the genotype in `genotype` (a search redone with
/// other settings, or a file changed by hand, would leave it retraining another).
fn check_retrained(run: &Path, genotype: &Path) -> Result<()> {
    let file = run.join(CONFIG);
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    let config: Value =
        serde_json::from_str(&text).map_err(|e| Error::File { path: path(&file), msg: e.to_string() })?;
    let now = serde_json::to_value(Architecture::Cells(search::read_genotype(genotype)?))?;
    if config.pointer("/train/network/architecture") != Some(&now) {
        return Err(Error::Config(format!(
            "{} retrains another genotype than {} holds now; remove {0} to retrain this one",
            run.display(),
            genotype.display()
        )));
    }
    Ok(())
}

/// The genotype file the retraining of `method`'s search with `seed` (or of random genotype
/// `seed`) is started from.
fn genotype_file(dir: &Path, method: Option<Searcher>, seed: u64) -> PathBuf {
    match method {
        Some(m) => dir.join(format!("search-{}-s{seed}", m.name())).join("genotype.json"),
        None => dir.join(format!("random-{seed}.genotype.json")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GPU preset is the paper's protocol; both presets fit every method on the embedded
    /// data; a preset that cannot run is refused with the size named.
    #[test]
    fn presets_are_the_papers_and_fit() {
        let gpu = Budget::gpu();
        let (s, t) = (&gpu.search, &gpu.train);
        assert_eq!((s.channels, s.layers, s.batch_size, s.epochs, s.steps_per_epoch), (16, 8, 64, 50, 0));
        assert_eq!((t.channels, t.layers, t.batch_size, t.epochs, t.steps_per_epoch), (36, 20, 96, 600, 0));
        assert_eq!((t.cutout, t.drop_path, t.auxiliary, t.learning_rate), (16, 0.2, true, 0.025));
        let data = Dataset::embedded_train().unwrap();
        for budget in [Budget::cpu(), Budget::gpu()] {
            budget.validate(&SEARCHERS, &SearchSpace::darts(), &data).unwrap();
        }
        let mut odd = Budget::cpu();
        odd.train.channels = 7;
        let e = odd.validate(&[Searcher::Darts], &SearchSpace::darts(), &data).unwrap_err().to_string();
        assert!(e.contains("retraining network") && e.contains("even"), "{e}");
        let mut pc = Budget::cpu();
        pc.search.channels = 6;
        let e = pc.validate(&[Searcher::PcDarts], &SearchSpace::darts(), &data).unwrap_err().to_string();
        assert!(e.contains("pc-darts"), "{e}");
        pc.validate(&[Searcher::Darts], &SearchSpace::darts(), &data).unwrap();
    }
}

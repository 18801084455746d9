//! `wgpu-nas search darts`, `search gdas` and `search pc-darts`: run a search of the DARTS family
//! and write its run directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use wgpu_nas::checkpoint::Checkpoint;
use wgpu_nas::darts::diagnostics::EarlyStop;
use wgpu_nas::darts::gdas::Gumbel;
use wgpu_nas::darts::{
    Architect, DartsEpoch, DartsStep, Order, PartialChannels, Relaxation, SearchConfig, SupernetSearch, Temperature,
};
use wgpu_nas::data::{Cifar100Labels, Dataset, Split};
use wgpu_nas::run_dir::RunDir;
use wgpu_nas::run_loop::RunLoop;
use wgpu_nas::space::{
    derive_genotype_with_betas, CellGenotype, DeriveRule, Genotype, ModelGraph, NasBench201Cell, SearchSpace,
};
use wgpu_nas::train::EvalNetworkConfig;
use wgpu_nas::{Error, Gpu, Result};

use crate::progress::Progress;
use crate::run::{self, DataSource, Given, RunArgs, Setting, Shown};
use crate::{out, plot};

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// The Fashion-MNIST subset compiled into the binary (6000 training images, 28x28 grey).
    Embedded,
    Cifar10,
    Cifar100,
    FashionMnist,
    Mnist,
}

#[derive(Args, Debug)]
pub struct DartsArgs {
    /// 1: first-order alpha gradient; 2: unrolled (second order).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    order: u8,
    #[command(flatten)]
    pub(crate) supernet: SupernetArgs,
}

#[derive(Args, Debug)]
pub struct GdasArgs {
    /// The Gumbel-softmax temperature at the first epoch (10 in the paper).
    #[arg(long, default_value_t = 10.0)]
    tau_max: f32,
    /// The temperature at the last epoch, reached linearly (0.1 in the paper).
    #[arg(long, default_value_t = 0.1)]
    tau_min: f32,
    #[command(flatten)]
    pub(crate) supernet: SupernetArgs,
}

/// The cell space a search of the DARTS family searches.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum SpaceName {
    /// DARTS's: normal and reduction cells of --layers cells in all.
    Darts,
    /// NAS-Bench-201's: one cell of 4 nodes and 6 edges, 3 stages of --layers cells each between
    /// fixed ResNet blocks; the result is the benchmark's string, in nas-bench-201.txt.
    #[value(name = "nas-bench-201")]
    NasBench201,
}

/// The options every search of the DARTS family has.
#[derive(Args, Debug)]
pub struct SupernetArgs {
    /// The cell space: darts or nas-bench-201 (Dong & Yang 2020; --ops from none,
    /// skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3, all five by default).
    #[arg(long, value_enum, default_value_t = SpaceName::Darts)]
    space: SpaceName,
    #[arg(long, value_enum, default_value_t = DatasetName::Embedded)]
    dataset: DatasetName,
    /// Directory of the data set's files (CIFAR binaries, IDX files).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Epochs (50 in the paper; the defaults make a short search that a CPU finishes in minutes).
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Batch size (64 in the DARTS paper, 256 in PC-DARTS's).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Initial channels C (16 in the paper).
    #[arg(long, default_value_t = 4)]
    init_channels: usize,
    /// Cells (8 in the paper); reduction cells at layers/3 and 2*layers/3. In --space
    /// nas-bench-201: the cells N of each of its 3 stages (5 in the benchmark).
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// Candidate operations, comma-separated (default: the space's own: the 8 DARTS primitives,
    /// or NAS-Bench-201's 5).
    #[arg(long, value_delimiter = ',')]
    ops: Option<Vec<String>>,
    /// Steps per epoch; 0 = a full pass over the weights' half of the training set (the paper).
    /// Metrics and alphas are recorded every min(10, steps/4) steps (at least every step).
    #[arg(long, default_value_t = 20)]
    steps_per_epoch: usize,
    /// Validation batches scored per epoch; 0 = the whole validation half.
    #[arg(long, default_value_t = 4)]
    eval_batches: usize,
    #[arg(long, default_value_t = 0.025)]
    learning_rate: f32,
    #[arg(long, default_value_t = 3e-4)]
    arch_learning_rate: f32,
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Genotype rule: top2 (the reference's) or argmax (per edge). NAS-Bench-201 has its own
    /// (every edge's argmax, `none` included) and refuses this option.
    #[arg(long, value_enum, default_value_t = Rule::Top2)]
    rule: Rule,
    /// Power iterations for the dominant eigenvalue of the validation loss's Hessian with
    /// respect to the alphas, every epoch (collapse diagnostics, in epochs.jsonl); 0 skips it.
    #[arg(long, default_value_t = 10)]
    hessian_iters: usize,
    /// Stop early (DARTS-ES, RobustDARTS) once the Hessian eigenvalue's mean over the last
    /// --early-stop-window epochs exceeds --early-stop-ratio times the mean of the window before;
    /// the result is the genotype from a window before the stop.
    #[arg(long)]
    early_stop: bool,
    #[arg(long, default_value_t = 5, requires = "early_stop")]
    early_stop_window: usize,
    #[arg(long, default_value_t = 1.0 / 0.75, requires = "early_stop")]
    early_stop_ratio: f32,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// `search pc-darts`: the options of `search darts` (with PC-DARTS's defaults) and its own.
#[derive(Args, Debug)]
pub struct PcDartsArgs {
    /// K: 1/K of each edge's channels go through its mixed operation, the rest bypass it (4 in
    /// the paper); K must divide --init-channels.
    #[arg(long, default_value_t = 4)]
    partial_channels: usize,
    /// Sum each node's incoming edges unweighted, as DARTS does (no betas).
    #[arg(long)]
    no_edge_normalization: bool,
    /// The first epoch whose steps train the alphas (the paper: 15 of 50); by default 3/10 of
    /// --epochs, rounded down.
    #[arg(long)]
    arch_start_epoch: Option<usize>,
    #[command(flatten)]
    pub(crate) darts: DartsArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Rule {
    Top2,
    Argmax,
}

impl From<Rule> for DeriveRule {
    fn from(r: Rule) -> DeriveRule {
        match r {
            Rule::Top2 => DeriveRule::Top2,
            Rule::Argmax => DeriveRule::Argmax,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Format {
    Json,
    Python,
    Dot,
    /// Weights (`--weights`): safetensors under the reference's PyTorch state_dict names.
    Safetensors,
    /// Weights (`--weights`): the evaluation network as an ONNX model (opset 17).
    Onnx,
}

/// `derive --run DIR`: the genotype of the alphas in DIR/checkpoint.bin, printed as Python text.
pub fn derive(run: &Path, rule: Rule) -> Result<ExitCode> {
    let checkpoint = Checkpoint::load(&run.join("checkpoint.bin"))?;
    match checkpoint.kind.as_str() {
        "darts" | "gdas" => {}
        "enas" => {
            return Err(Error::Config(format!(
                "{} holds an ENAS search, which has no alphas to derive from: its architecture is in {}",
                run.display(),
                run.join("architecture.json").display()
            )))
        }
        kind => {
            return Err(Error::Config(format!(
                "{} holds a {kind} run, not a DARTS search: derive reads the run directory of `search darts` or `search gdas`",
                run.display()
            )))
        }
    }
    let config: SearchConfig = serde_json::from_value(
        checkpoint
            .meta
            .get("config")
            .cloned()
            .ok_or_else(|| Error::Config("the checkpoint has no search config".into()))?,
    )?;
    let space = &config.network.space;
    let rows = |name: &str| -> Result<Vec<Vec<f32>>> {
        let v = checkpoint.get(name).ok_or_else(|| Error::Config(format!("the checkpoint has no {name}")))?;
        Ok(v.chunks(space.num_ops()).map(<[f32]>::to_vec).collect())
    };
    if space.is_nas_bench_201() {
        // Its own rule: every edge's argmax operation.
        out::line(NasBench201Cell::from_alphas(&rows("alphas.normal")?, &space.primitives())?)?;
        return Ok(ExitCode::SUCCESS);
    }
    // PC-DARTS's edge normalisation: its betas take part in the ranking.
    let betas = checkpoint.get("betas.normal").zip(checkpoint.get("betas.reduce"));
    let genotype = derive_genotype_with_betas(
        &rows("alphas.normal")?,
        &rows("alphas.reduce")?,
        betas,
        &space.primitives(),
        space.steps,
        space.multiplier,
        rule.into(),
    )?;
    out::line(genotype.to_python())?;
    Ok(ExitCode::SUCCESS)
}

/// `export --genotype FILE --format F`: reads JSON or the reference's Python text.
pub fn export(path: &Path, format: Option<Format>) -> Result<ExitCode> {
    let genotype = read_genotype(path)?;
    match format.unwrap_or(Format::Python) {
        Format::Json => out::line(genotype.to_json())?,
        Format::Python => out::line(genotype.to_python())?,
        Format::Dot => out::text_raw(&genotype.to_dot())?,
        Format::Safetensors | Format::Onnx => {
            return Err(Error::Config(
                "--format safetensors and onnx write weights: give --weights RUN_DIR (a `train` run), not --genotype"
                    .into(),
            ))
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `export --weights RUN_DIR [--format safetensors|onnx] [--output FILE]`: the retrained
/// network of the run's last checkpoint, written atomically.
pub fn export_weights(run: &Path, format: Option<Format>, output: Option<PathBuf>) -> Result<ExitCode> {
    let format = format.unwrap_or(Format::Safetensors);
    let file = match format {
        Format::Safetensors => "weights.safetensors",
        Format::Onnx => "model.onnx",
        f => {
            return Err(Error::Config(format!(
                "--weights writes safetensors or onnx; --format {f:?} is for --genotype"
            )))
        }
    };
    let checkpoint = Checkpoint::load(&run.join(wgpu_nas::run_dir::CHECKPOINT))?;
    let bytes = match format {
        Format::Onnx => wgpu_nas::export::onnx(&checkpoint)?,
        _ => wgpu_nas::export::safetensors(&checkpoint)?,
    };
    let path = output.unwrap_or_else(|| run.join(file));
    wgpu_nas::durable::write_atomic(&path, &bytes)?;
    out::line(format_args!("wrote {} ({} bytes)", path.display(), bytes.len()))?;
    Ok(ExitCode::SUCCESS)
}

/// Reads a genotype file: JSON (`genotype.json`) or the reference's Python text (`genotype.py`,
/// or a whole `genotypes.py`), checked as `train` checks it (nodes, inputs, operations, concat).
/// `FILE:NAME` picks the genotype assigned to NAME in a Python module; a path that exists is
/// read as it is, even with a `:` in it.
pub fn read_genotype(path: &Path) -> Result<Genotype> {
    let (file, name) = split_genotype_name(path);
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    if NasBench201Cell::from_json(&text).is_ok() || NasBench201Cell::parse(&text).is_ok() {
        return Err(Error::File {
            path: path.display().to_string(),
            msg: "this is a NAS-Bench-201 cell, not a DARTS genotype; retrain it with `train --arch FILE`".into(),
        });
    }
    let genotype = if name.is_none() && text.trim_start().starts_with('{') {
        Genotype::from_json(&text)
    } else {
        Genotype::from_python_module(&text, name.as_deref())
    };
    genotype
        .and_then(|g| g.validate(&EvalNetworkConfig::known_ops()).map(|()| g))
        .map_err(|e| Error::File { path: path.display().to_string(), msg: e.to_string() })
}

/// `FILE:NAME` -> (FILE, Some(NAME)) when FILE exists and `path` itself does not, NAME being a
/// Python identifier; otherwise (path, None).
fn split_genotype_name(path: &Path) -> (PathBuf, Option<String>) {
    let whole = (path.to_path_buf(), None);
    if path.exists() {
        return whole;
    }
    let Some((file, name)) = path.to_str().and_then(|p| p.rsplit_once(':')) else { return whole };
    let identifier = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if identifier && Path::new(file).is_file() {
        (PathBuf::from(file), Some(name.to_string()))
    } else {
        whole
    }
}

/// The file of a NAS-Bench-201 search's run directory that holds its cell as the benchmark's
/// string (one line).
pub const NAS_BENCH_201_FILE: &str = "nas-bench-201.txt";

pub fn load(name: DatasetName, dir: Option<&Path>) -> Result<Dataset> {
    load_split(name, dir, Split::Train)
}

/// The training or test split of a data set (the embedded set has both compiled in).
pub fn load_split(name: DatasetName, dir: Option<&Path>, split: Split) -> Result<Dataset> {
    let dir = || {
        dir.ok_or_else(|| Error::Config(format!("--dataset {name:?} needs --data-dir DIR (no downloads at run time)")))
    };
    match name {
        DatasetName::Embedded if split == Split::Train => Dataset::embedded_train(),
        DatasetName::Embedded => Dataset::embedded_test(),
        DatasetName::Cifar10 => Dataset::cifar10(dir()?, split),
        DatasetName::Cifar100 => Dataset::cifar100(dir()?, split, Cifar100Labels::Fine),
        DatasetName::FashionMnist => Dataset::fashion_mnist(dir()?, split),
        DatasetName::Mnist => Dataset::mnist(dir()?, split),
    }
}

pub fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::File { path: path.display().to_string(), msg: e.to_string() }
}

/// The settings of `search darts` and `search gdas` and where each lands in its [`SearchConfig`].
const SETTINGS: &[Setting] = &[
    Setting { id: "order", pointer: "/architect/order", resumable: false },
    Setting { id: "tau_max", pointer: "/temperature/tau_max", resumable: false },
    Setting { id: "tau_min", pointer: "/temperature/tau_min", resumable: false },
    Setting { id: "epochs", pointer: "/epochs", resumable: true },
    Setting { id: "batch_size", pointer: "/batch_size", resumable: false },
    Setting { id: "init_channels", pointer: "/network/channels", resumable: false },
    Setting { id: "layers", pointer: "/network/layers", resumable: false },
    Setting { id: "ops", pointer: "/network/space", resumable: false },
    Setting { id: "space", pointer: "/network/space/kind", resumable: false },
    Setting { id: "steps_per_epoch", pointer: "/steps_per_epoch", resumable: false },
    Setting { id: "eval_batches", pointer: "/eval_batches", resumable: true },
    Setting { id: "learning_rate", pointer: "/lr", resumable: true },
    Setting { id: "arch_learning_rate", pointer: "/architect/lr", resumable: true },
    Setting { id: "seed", pointer: "/seed", resumable: false },
    Setting { id: "rule", pointer: "/rule", resumable: false },
    Setting { id: "hessian_iters", pointer: "/hessian_iters", resumable: false },
    Setting { id: "early_stop", pointer: "/early_stop", resumable: false },
    Setting { id: "early_stop_window", pointer: "/early_stop/window", resumable: false },
    Setting { id: "early_stop_ratio", pointer: "/early_stop/ratio", resumable: false },
    Setting { id: "partial_channels", pointer: "/network/partial/k", resumable: false },
    Setting { id: "no_edge_normalization", pointer: "/network/partial/edge_normalization", resumable: false },
    Setting { id: "arch_start_epoch", pointer: "/arch_start_epoch", resumable: true },
];

impl DartsArgs {
    /// The search config the options ask for on `data`.
    fn config(&self, data: &Dataset) -> Result<SearchConfig> {
        let mut config = self.supernet.config(SearchConfig::darts(data.channels, data.num_classes))?;
        config.architect.order = if self.order == 2 { Order::Second } else { Order::First };
        Ok(config)
    }
}

impl PcDartsArgs {
    /// The DARTS config of the options, with PC-DARTS's partial channels, edge normalisation and
    /// late architecture start.
    fn config(&self, data: &Dataset) -> Result<SearchConfig> {
        let mut config = self.darts.config(data)?;
        config.network.partial =
            Some(PartialChannels { k: self.partial_channels, edge_normalization: !self.no_edge_normalization });
        config.arch_start_epoch = self.arch_start_epoch.unwrap_or(3 * self.darts.supernet.epochs / 10);
        Ok(config)
    }
}

impl GdasArgs {
    /// The search config the options ask for on `data`.
    fn config(&self, data: &Dataset) -> Result<SearchConfig> {
        let mut config = self.supernet.config(SearchConfig::gdas(data.channels, data.num_classes))?;
        config.temperature = Some(Temperature { tau_max: self.tau_max, tau_min: self.tau_min });
        Ok(config)
    }
}

impl SupernetArgs {
    /// `config` (a method's defaults) with the shared options applied.
    fn config(&self, config: SearchConfig) -> Result<SearchConfig> {
        let (args, mut config) = (self, config);
        config.architect.lr = args.arch_learning_rate;
        config.epochs = args.epochs;
        config.batch_size = args.batch_size;
        config.lr = args.learning_rate;
        config.network.channels = args.init_channels;
        config.network.layers = args.layers;
        let ops: Option<Vec<&str>> = args.ops.as_ref().map(|o| o.iter().map(String::as_str).collect());
        config.network.space = match (args.space, &ops) {
            (SpaceName::Darts, None) => config.network.space,
            (SpaceName::Darts, Some(ops)) => SearchSpace::with_ops(ops)?,
            (SpaceName::NasBench201, None) => SearchSpace::nas_bench_201(),
            (SpaceName::NasBench201, Some(ops)) => SearchSpace::nas_bench_201_with_ops(ops)?,
        };
        config.steps_per_epoch = (args.steps_per_epoch > 0).then_some(args.steps_per_epoch);
        // Metrics and alphas are read back every `log_every` steps (10 by default); a short run
        // would record too few points to plot, so read back 4 times an epoch at least.
        if args.steps_per_epoch > 0 {
            config.log_every = (args.steps_per_epoch / 4).clamp(1, config.log_every.max(1));
        }
        config.eval_batches = (args.eval_batches > 0).then_some(args.eval_batches);
        config.seed = args.seed;
        config.rule = args.rule.into();
        config.hessian_iters = args.hessian_iters;
        config.early_stop =
            args.early_stop.then_some(EarlyStop { window: args.early_stop_window, ratio: args.early_stop_ratio });
        Ok(config)
    }
}

/// Options that mean nothing in the NAS-Bench-201 space, refused there with a line each.
fn check_space(args: &SupernetArgs, given: &Given) -> Result<()> {
    if args.space == SpaceName::NasBench201 && given.has("rule") {
        return Err(Error::Config(
            "--rule does not apply to --space nas-bench-201: its cell keeps every edge with its argmax operation"
                .into(),
        ));
    }
    Ok(())
}

pub fn darts(args: DartsArgs, given: &Given) -> Result<ExitCode> {
    supernet::<Architect>(&args.supernet, |d| args.config(d), given)
}

pub fn gdas(args: GdasArgs, given: &Given) -> Result<ExitCode> {
    supernet::<Gumbel>(&args.supernet, |d| args.config(d), given)
}

pub fn pc_darts(args: PcDartsArgs, given: &Given) -> Result<ExitCode> {
    supernet::<Architect>(&args.darts.supernet, |d| args.config(d), given)
}

/// The method and its main settings, for the first line of a run.
fn describe(c: &SearchConfig) -> String {
    let order = if c.architect.order == Order::Second { "second" } else { "first" };
    let space = if c.network.space.is_nas_bench_201() { " in the NAS-Bench-201 space" } else { "" };
    let method = match (&c.temperature, c.network.partial) {
        (Some(t), _) => format!("GDAS (tau {} down to {})", t.tau_max, t.tau_min),
        (None, Some(p)) => format!(
            "PC-DARTS (K={}, {}, alphas from epoch {}, {order} order)",
            p.k,
            if p.edge_normalization { "edge normalisation" } else { "no edge normalisation" },
            c.arch_start_epoch
        ),
        (None, None) => format!("DARTS ({order} order)"),
    };
    format!("{method}{space}")
}

/// Runs a search of the DARTS family (`R`) with the config `config_of` gives on the data set,
/// in its run directory.
fn supernet<R: Relaxation>(
    args: &SupernetArgs,
    config_of: impl Fn(&Dataset) -> Result<SearchConfig>,
    given: &Given,
) -> Result<ExitCode> {
    check_space(args, given)?;
    let gpu = Gpu::new()?;
    let (mut search, mut run, data) = match &args.run.resume {
        Some(dir) => {
            let (resume, data) = run::open_resume(
                dir,
                R::KIND,
                (args.dataset, args.data_dir.as_deref()),
                given,
                SETTINGS,
                load,
                |d| vec![d],
                |d, _| Ok(serde_json::to_value(config_of(d)?)?),
            )?;
            let search = RunLoop::<SupernetSearch<R>>::resume(&gpu, &resume.checkpoint, &data)?;
            let run = resume.finish(search.epoch(), search.config().epochs, "search", args.run.chatty())?;
            (search, run, data)
        }
        None => {
            let data = load(args.dataset, args.data_dir.as_deref())?;
            let search = RunLoop::<SupernetSearch<R>>::new(&gpu, config_of(&data)?, &data)?;
            let meta = serde_json::json!({
                "search": search.config(),
                "dataset": data.name,
                "adapter": gpu.adapter(),
                "version": env!("CARGO_PKG_VERSION"),
            });
            let source = DataSource::new(args.dataset, args.data_dir.as_deref(), &[&data]);
            let name = if search.config().network.partial.is_some() { "pc-darts" } else { R::KIND };
            let run = run::create(&args.run, &format!("{name}-{}", args.seed), &source, &meta)?;
            (search, run, data)
        }
    };
    let dir = run.path().to_path_buf();
    let total = (search.config().epochs * search.steps_per_epoch()) as u64;
    let progress = Progress::new(total, search.global_step(), args.run.chatty());
    let say = |s: String| {
        if args.run.chatty() {
            progress.println(&s);
        }
    };
    say(format!("adapter: {}", gpu.adapter()));
    let cells = match search.config().network.space.is_nas_bench_201() {
        true => format!("3 stages of {} cells", search.config().network.layers),
        false => format!("{} cells", search.config().network.layers),
    };
    say(format!(
        "{} on {} ({} images): C={}, {cells}, batch {}, {} epochs x {} steps; run directory {}",
        describe(search.config()),
        data.name,
        data.n,
        search.config().network.channels,
        search.config().batch_size,
        search.config().epochs,
        search.steps_per_epoch(),
        dir.display()
    ));
    let started = Instant::now();
    let mut alphas_seen = search.method.alpha_history.len();
    let shown = Shown {
        step: |m: &DartsStep| {
            let text = format!(
                "epoch {}  loss {:.3}  acc {:.1}%  val acc {:.1}%",
                m.epoch,
                m.train_loss,
                100.0 * m.train_acc,
                100.0 * m.val_acc
            );
            (m.step, text)
        },
        epoch: |e: &DartsEpoch, secs: f64| {
            let eig = e.collapse.hessian_eigenvalue.map(|l| format!("  Hessian eigenvalue {l:.4}")).unwrap_or_default();
            let tau = e.tau.map(|t| format!("  tau {t:.2}")).unwrap_or_default();
            let cell = e.genotype.as_nas_bench_201().map(|c| format!("  cell {c}")).unwrap_or_default();
            format!(
                "epoch {:>3}  lr {:.4}{tau}  train loss {:.3} acc {:.1}%  val loss {:.3} acc {:.1}%  parameter-free ops {}{eig}  \
                 ({secs:.0} s){cell}",
                e.epoch,
                e.lr,
                e.train_loss,
                100.0 * e.train_acc,
                e.val_loss,
                100.0 * e.val_acc,
                e.collapse.parameter_free,
            )
        },
        files: |run: &mut RunDir, s: &RunLoop<SupernetSearch<R>>| {
            run.append("epochs.jsonl", std::slice::from_ref(s.epochs.last().expect("an epoch just closed")))?;
            run.append("alphas.jsonl", &s.method.alpha_history[alphas_seen..])?;
            alphas_seen = s.method.alpha_history.len();
            // The latest epoch's genotype, or the one early stopping keeps.
            let latest = &s.epochs.last().expect("an epoch just closed").genotype;
            let g = s.method.stopped.as_ref().map_or(latest, |st| &st.genotype);
            run.write("genotype.json", g.to_json().as_bytes())?;
            run.write("genotype.py", format!("{}\n", g.to_python()).as_bytes())?;
            run.write("genotype.dot", g.to_dot().as_bytes())?;
            if let Some(cell) = g.as_nas_bench_201() {
                run.write(NAS_BENCH_201_FILE, format!("{cell}\n").as_bytes())?;
            }
            plot::darts(run.path(), s)
        },
    };
    run::epochs(&mut search, &mut run, &progress, &args.run, shown)?;
    let genotype = pollster::block_on(search.genotype())?;
    let ops = search.method.net.config.space.primitives();
    match &genotype {
        CellGenotype::Darts(genotype) => {
            let (normal, reduce) = ModelGraph::from_genotype(genotype);
            for g in [&normal, &reduce] {
                g.validate(&ops).map_err(Error::from)?;
            }
        }
        CellGenotype::NasBench201(cell) => cell.validate(&ops)?,
    }
    let cell = genotype.as_nas_bench_201().map(|c| c.to_string());
    let m = gpu.memory();
    let stopped = search.method.stopped.as_ref().map(|s| s.epoch);
    if args.run.json {
        out::line(serde_json::json!({ "result": {
            "genotype": genotype, "nas_bench_201": cell, "dir": dir, "peak_gpu_bytes": m.peak,
            "stopped_early_after_epoch": stopped,
        } }))?;
    } else {
        if let (Some(epoch), Some(es)) = (stopped, search.config().early_stop) {
            out::line(format_args!(
                "stopped early after epoch {epoch}: the Hessian's eigenvalue grew past {:.2}x over {} epochs; \
                 the genotype is epoch {}'s",
                es.ratio,
                es.window,
                epoch - es.window
            ))?;
        }
        match &cell {
            Some(cell) => out::line(cell)?,
            None => out::line(genotype.to_python())?,
        }
        let files = match cell {
            Some(_) => format!("{NAS_BENCH_201_FILE}, genotype.json, genotype.py, genotype.dot, metrics.jsonl, epochs.jsonl, alphas.jsonl, checkpoint.bin, alphas_normal.png"),
            None => "genotype.json, genotype.py, genotype.dot, metrics.jsonl, epochs.jsonl, alphas.jsonl, checkpoint.bin, alphas_normal.png, alphas_reduce.png".into(),
        };
        out::line(format_args!(
            "results in {}: {files}, loss.png, accuracy.png, collapse.png ({:.0} s, peak GPU memory {:.1} MiB)",
            dir.display(),
            started.elapsed().as_secs_f64(),
            m.peak as f64 / 1048576.0
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

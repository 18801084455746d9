//! `wgpu-nas search darts`: runs a search and writes its run directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use wgpu_nas::checkpoint::Checkpoint;
use wgpu_nas::darts::{DartsSearch, Order, SearchConfig};
use wgpu_nas::data::{Cifar100Labels, Dataset, Split};
use wgpu_nas::space::{DeriveRule, Genotype, ModelGraph, SearchSpace};
use wgpu_nas::{Error, Gpu, Result};

use crate::plot;
use crate::progress::Progress;

#[derive(Clone, Copy, Debug, ValueEnum)]
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
    #[arg(long, value_enum, default_value_t = DatasetName::Embedded)]
    dataset: DatasetName,
    /// Directory of the data set's files (CIFAR binaries, IDX files).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Epochs (50 in the paper; the defaults make a short search that a CPU finishes in minutes).
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// Batch size (64 in the paper).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Initial channels C (16 in the paper).
    #[arg(long, default_value_t = 4)]
    init_channels: usize,
    /// Cells (8 in the paper); reduction cells at layers/3 and 2*layers/3.
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// Candidate operations, comma-separated (default: the 8 DARTS primitives).
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
    /// Genotype rule: top2 (the reference's) or argmax (per edge).
    #[arg(long, value_enum, default_value_t = Rule::Top2)]
    rule: Rule,
    /// Run directory (default: runs/darts-<seed>-<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Print only the final result.
    #[arg(long)]
    quiet: bool,
    /// Print one JSON object per line (steps, epochs, result) instead of text.
    #[arg(long)]
    json: bool,
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

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Json,
    Python,
    Dot,
}

/// `derive --run DIR`: the genotype of the alphas in DIR/checkpoint.bin, printed as Python text.
pub fn derive(run: &Path, rule: Rule) -> Result<ExitCode> {
    let checkpoint = Checkpoint::load(&run.join("checkpoint.bin"))?;
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
    let genotype = space.derive_genotype(&rows("alphas.normal")?, &rows("alphas.reduce")?, rule.into())?;
    println!("{}", genotype.to_python());
    Ok(ExitCode::SUCCESS)
}

/// `export --genotype FILE --format F`: reads JSON or the reference's Python text.
pub fn export(path: &Path, format: Format) -> Result<ExitCode> {
    let genotype = read_genotype(path)?;
    match format {
        Format::Json => println!("{}", genotype.to_json()),
        Format::Python => println!("{}", genotype.to_python()),
        Format::Dot => print!("{}", genotype.to_dot()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a genotype file: JSON (`genotype.json`) or the reference's Python text (`genotype.py`).
pub fn read_genotype(path: &Path) -> Result<Genotype> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    if text.trim_start().starts_with('{') {
        Genotype::from_json(&text)
    } else {
        Genotype::from_python(&text)
    }
}

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

pub fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(io(path))
}

pub fn append_lines<T: serde::Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io(path))?;
    for item in items {
        writeln!(f, "{}", serde_json::to_string(item)?).map_err(io(path))?;
    }
    Ok(())
}

pub fn darts(args: DartsArgs) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let data = load(args.dataset, args.data_dir.as_deref())?;
    let (mut search, dir) = match &args.resume {
        Some(dir) => {
            let checkpoint = Checkpoint::load(&dir.join("checkpoint.bin"))?;
            (DartsSearch::resume(&gpu, &checkpoint, &data)?, dir.clone())
        }
        None => {
            let mut config = SearchConfig::darts(data.channels, data.num_classes);
            config.architect.order = if args.order == 2 { Order::Second } else { Order::First };
            config.architect.lr = args.arch_learning_rate;
            config.epochs = args.epochs;
            config.batch_size = args.batch_size;
            config.lr = args.learning_rate;
            config.network.channels = args.init_channels;
            config.network.layers = args.layers;
            if let Some(ops) = &args.ops {
                let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
                config.network.space = SearchSpace::with_ops(&ops)?;
            }
            config.steps_per_epoch = (args.steps_per_epoch > 0).then_some(args.steps_per_epoch);
            // Metrics and alphas are read back every `log_every` steps (10 by default); a short
            // run would record too few points to plot, so read back 4 times an epoch at least.
            if args.steps_per_epoch > 0 {
                config.log_every = (args.steps_per_epoch / 4).clamp(1, config.log_every.max(1));
            }
            config.eval_batches = (args.eval_batches > 0).then_some(args.eval_batches);
            config.seed = args.seed;
            config.rule = args.rule.into();
            let dir = args.out.clone().unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                PathBuf::from(format!("runs/darts-{}-{t}", args.seed))
            });
            let search = DartsSearch::new(&gpu, config, &data)?;
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let meta = serde_json::json!({
                "search": search.config,
                "dataset": data.name,
                "adapter": gpu.adapter(),
                "version": env!("CARGO_PKG_VERSION"),
            });
            write(&dir.join("config.json"), &serde_json::to_string_pretty(&meta)?)?;
            (search, dir)
        }
    };
    let total = (search.config.epochs * search.steps_per_epoch()) as u64;
    let progress = Progress::new(total, search.global_step(), !args.quiet && !args.json);
    let say = |s: String| {
        if !args.quiet && !args.json {
            progress.println(&s);
        }
    };
    say(format!("adapter: {}", gpu.adapter()));
    say(format!(
        "DARTS ({} order) on {} ({} images): C={}, {} cells, batch {}, {} epochs x {} steps; run directory {}",
        if search.config.architect.order == Order::Second { "second" } else { "first" },
        data.name,
        data.n,
        search.config.network.channels,
        search.config.network.layers,
        search.config.batch_size,
        search.config.epochs,
        search.steps_per_epoch(),
        dir.display()
    ));
    let started = Instant::now();
    while !search.is_finished() {
        let (metrics_before, alphas_before) = (search.metrics.len(), search.alpha_history.len());
        let json = args.json;
        let summary = pollster::block_on(search.run_epoch(|m| {
            if json {
                println!("{}", serde_json::json!({ "step": m }));
            }
            progress.update(
                m.step + 1,
                format!(
                    "epoch {}  loss {:.3}  acc {:.1}%  val acc {:.1}%",
                    m.epoch,
                    m.train_loss,
                    100.0 * m.train_acc,
                    100.0 * m.val_acc
                ),
            );
        }))
        .inspect_err(|_| {
            progress.finish();
            eprintln!("the search stopped; the last checkpoint in {} is kept", dir.display());
        })?;
        append_lines(&dir.join("metrics.jsonl"), &search.metrics[metrics_before..])?;
        append_lines(&dir.join("alphas.jsonl"), &search.alpha_history[alphas_before..])?;
        pollster::block_on(search.checkpoint())?.save(&dir.join("checkpoint.bin"))?;
        let g = &summary.genotype;
        write(&dir.join("genotype.json"), &g.to_json())?;
        write(&dir.join("genotype.py"), &format!("{}\n", g.to_python()))?;
        write(&dir.join("genotype.dot"), &g.to_dot())?;
        plot::darts(&dir, &search)?;
        if args.json {
            println!("{}", serde_json::json!({ "epoch": summary }));
        }
        say(format!(
            "epoch {:>3}  lr {:.4}  train loss {:.3} acc {:.1}%  val loss {:.3} acc {:.1}%  ({:.0} s)",
            summary.epoch,
            summary.lr,
            summary.train_loss,
            100.0 * summary.train_acc,
            summary.val_loss,
            100.0 * summary.val_acc,
            started.elapsed().as_secs_f64()
        ));
    }
    progress.finish();
    let genotype = pollster::block_on(search.genotype())?;
    let (normal, reduce) = ModelGraph::from_genotype(&genotype);
    let ops = search.net.config.space.primitives();
    for g in [&normal, &reduce] {
        g.validate(&ops).map_err(Error::from)?;
    }
    let m = gpu.memory();
    if args.json {
        println!("{}", serde_json::json!({ "result": { "genotype": genotype, "dir": dir, "peak_gpu_bytes": m.peak } }));
    } else {
        println!("{}", genotype.to_python());
        println!(
            "results in {}: genotype.json, genotype.py, genotype.dot, metrics.jsonl, alphas.jsonl, checkpoint.bin, \
             alphas_normal.png, alphas_reduce.png, loss.png, accuracy.png ({:.0} s, peak GPU memory {:.1} MiB)",
            dir.display(),
            started.elapsed().as_secs_f64(),
            m.peak as f64 / 1048576.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

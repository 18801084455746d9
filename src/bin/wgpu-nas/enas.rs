//! `wgpu-nas search enas` and `wgpu-nas bench enas`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use wgpu_nas::data::Dataset;
use wgpu_nas::enas::controller::ControllerConfig;
use wgpu_nas::enas::macro_space::MacroConfig;
use wgpu_nas::enas::micro::MicroConfig;
use wgpu_nas::enas::search::{EnasConfig, EnasEpoch, EnasSearch, EnasStep, SharedModelConfig};
use wgpu_nas::run_dir::RunDir;
use wgpu_nas::{Gpu, Result};

use crate::progress::Progress;
use crate::run::{self, DataSource, Given, RunArgs, Setting, Shown};
use crate::search::{load, DatasetName};
use crate::{out, plot};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Space {
    /// Cells of nodes, each picking 2 inputs and 2 operations (normal and reduction cell).
    Micro,
    /// A chain of layers, each one operation plus skip connections to earlier layers.
    Macro,
}

#[derive(Args, Debug)]
pub struct EnasArgs {
    #[arg(long, value_enum, default_value_t = Space::Micro)]
    space: Space,
    #[arg(long, value_enum, default_value_t = DatasetName::Embedded)]
    dataset: DatasetName,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Epochs (150 micro / 310 macro in the paper; the default is a short CPU-sized run).
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Channels of the first stage (20 micro / 36 macro in the paper). Even.
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// Layers (micro: normal cells, 6 in the paper; macro: 12).
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// Nodes per micro cell (5 in the paper).
    #[arg(long, default_value_t = 2)]
    nodes: usize,
    /// Shared-weight steps per epoch; 0 = a full pass over the training part.
    #[arg(long, default_value_t = 10)]
    steps_per_epoch: usize,
    /// Controller updates per epoch (30 micro / 50 macro in the paper).
    #[arg(long, default_value_t = 5)]
    controller_steps: usize,
    /// Architectures sampled and scored to pick the final one.
    #[arg(long, default_value_t = 100)]
    derive_samples: usize,
    /// Learning rate of the shared weights, where each cosine cycle starts (0.05 in the paper).
    #[arg(long)]
    learning_rate: Option<f32>,
    /// Learning rate of the controller (Adam; 0.0035 micro / 0.001 macro in the paper).
    #[arg(long)]
    controller_learning_rate: Option<f32>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    run: RunArgs,
}

/// The settings of `search enas` and where each lands in its [`EnasConfig`].
/// (A setting listed twice lands where the run's space keeps it.)
const SETTINGS: &[Setting] = &[
    Setting { id: "space", pointer: "/controller/space", resumable: false },
    Setting { id: "epochs", pointer: "/epochs", resumable: true },
    Setting { id: "batch_size", pointer: "/batch_size", resumable: false },
    Setting { id: "channels", pointer: "/model/Micro/channels", resumable: false },
    Setting { id: "channels", pointer: "/model/Macro/channels", resumable: false },
    Setting { id: "layers", pointer: "/model/Micro/num_layers", resumable: false },
    Setting { id: "layers", pointer: "/model/Macro/num_layers", resumable: false },
    Setting { id: "nodes", pointer: "/model/Micro/num_nodes", resumable: false },
    Setting { id: "nodes", pointer: "/model/Macro", resumable: false },
    Setting { id: "steps_per_epoch", pointer: "/steps_per_epoch", resumable: false },
    Setting { id: "controller_steps", pointer: "/controller_steps", resumable: false },
    Setting { id: "derive_samples", pointer: "/derive_samples", resumable: false },
    Setting { id: "learning_rate", pointer: "/lr_max", resumable: true },
    Setting { id: "controller_learning_rate", pointer: "/controller/lr", resumable: true },
    Setting { id: "seed", pointer: "/seed", resumable: false },
];

/// The search config the options ask for on `data`.
fn config_of(args: &EnasArgs, data: &Dataset) -> EnasConfig {
    let (c, k) = (data.channels, data.num_classes);
    let mut config = match args.space {
        Space::Micro => {
            let mut config = EnasConfig::micro(c, k);
            config.model = SharedModelConfig::Micro(MicroConfig {
                channels: args.channels,
                num_layers: args.layers,
                num_nodes: args.nodes,
                ..MicroConfig::enas(c, k)
            });
            config.controller = ControllerConfig::micro(args.nodes);
            config
        }
        Space::Macro => {
            let mut config = EnasConfig::macro_space(c, k);
            config.model = SharedModelConfig::Macro(MacroConfig {
                channels: args.channels,
                num_layers: args.layers,
                ..MacroConfig::enas(c, k)
            });
            config.controller = ControllerConfig::macro_space(args.layers);
            config
        }
    };
    config.epochs = args.epochs;
    config.batch_size = args.batch_size;
    config.steps_per_epoch = (args.steps_per_epoch > 0).then_some(args.steps_per_epoch);
    config.controller_steps = args.controller_steps;
    config.derive_samples = args.derive_samples;
    if let Some(lr) = args.learning_rate {
        config.lr_max = lr;
    }
    if let Some(lr) = args.controller_learning_rate {
        config.controller.lr = lr;
    }
    config.seed = args.seed;
    config
}

pub fn search(args: EnasArgs, given: &Given) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let (mut search, mut run, data) = match &args.run.resume {
        Some(dir) => {
            let (resume, data) = run::open_resume(
                dir,
                "enas",
                (args.dataset, args.data_dir.as_deref()),
                given,
                SETTINGS,
                load,
                |d| vec![d],
                |d, _| Ok(serde_json::to_value(config_of(&args, d))?),
            )?;
            let search = EnasSearch::resume(&gpu, &resume.checkpoint, &data)?;
            let run = resume.finish(search.epoch(), search.config().epochs, "search", args.run.chatty())?;
            (search, run, data)
        }
        None => {
            let data = load(args.dataset, args.data_dir.as_deref())?;
            let search = EnasSearch::new(&gpu, config_of(&args, &data), &data)?;
            let meta = serde_json::json!({
                "search": search.config(),
                "dataset": data.name,
                "adapter": gpu.adapter(),
                "version": env!("CARGO_PKG_VERSION"),
            });
            let source = DataSource::new(args.dataset, args.data_dir.as_deref(), &[&data]);
            let name = format!("enas-{:?}-{}", args.space, args.seed).to_lowercase();
            let run = run::create(&args.run, &name, &source, &meta)?;
            (search, run, data)
        }
    };
    let dir = run.path().to_path_buf();
    let total = (search.config().epochs * search.steps_per_epoch()) as u64;
    let progress = Progress::new(total, search.metrics.len() as u64, args.run.chatty());
    let say = |s: String| {
        if args.run.chatty() {
            progress.println(&s);
        }
    };
    say(format!("adapter: {}", gpu.adapter()));
    say(format!("ENAS ({:?} space) on {} ({} images); run directory {}", args.space, data.name, data.n, dir.display()));
    let mut updates_seen = search.method.controller_metrics.len();
    let shown = Shown {
        step: |m: &EnasStep| (m.step, format!("epoch {}  loss {:.3}  acc {:.1}%", m.epoch, m.loss, 100.0 * m.acc)),
        epoch: |e: &EnasEpoch, secs: f64| {
            format!(
                "epoch {:>3}  lr {:.4}  train loss {:.3} acc {:.1}%  reward {:.3}  baseline {:.3}  entropy {:.2}  \
                 ({secs:.0} s)",
                e.epoch,
                e.lr,
                e.train_loss,
                100.0 * e.train_acc,
                e.reward,
                e.baseline,
                e.entropy,
            )
        },
        files: |run: &mut RunDir, s: &EnasSearch| {
            run.append("controller.jsonl", &s.method.controller_metrics[updates_seen..])?;
            updates_seen = s.method.controller_metrics.len();
            plot::enas(run.path(), s)
        },
    };
    run::epochs(&mut search, &mut run, &progress, &args.run, shown)?;
    let derived = pollster::block_on(search.method.derive())?;
    run.write("architecture.json", derived.to_json().as_bytes())?;
    run.write("architecture.dot", derived.to_dot().as_bytes())?;
    if let Some(g) = &derived.genotype {
        run.write("genotype.json", g.to_json().as_bytes())?;
        run.write("genotype.py", format!("{}\n", g.to_python()).as_bytes())?;
    }
    if args.run.json {
        out::line(serde_json::json!({ "result": { "best_score": derived.best.score, "dir": dir } }))?;
    } else {
        if let Some(g) = &derived.genotype {
            out::line(g.to_python())?;
        }
        out::line(format_args!(
            "best of {} sampled architectures scores {:.3}; results in {}: architecture.json (with the top 10), \
             architecture.dot, metrics.jsonl, controller.jsonl, checkpoint.bin, reward.png, loss.png, accuracy.png",
            search.config().derive_samples,
            derived.best.score,
            dir.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct BenchEnasArgs {
    #[arg(long, default_value_t = 12)]
    layers: usize,
    #[arg(long, default_value_t = 36)]
    channels: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// One JSON line (the whole report) instead of text.
    #[arg(long)]
    json: bool,
}

/// Milliseconds per controller sample+update and seconds per shared-weight step, macro space.
pub fn bench(args: BenchEnasArgs) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let r = bench_enas(&gpu, args.layers, args.channels, args.batch_size)?;
    if args.json {
        out::line(serde_json::to_string(&r)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    out::line(format_args!("adapter: {}", r.adapter))?;
    out::line(format_args!(
        "ENAS macro space, {} layers, {} channels, batch {}: controller sample + update {:.1} ms/sample, \
         shared-weight step {:.2} s",
        r.num_layers, r.channels, r.batch_size, r.controller_ms_per_sample, r.shared_step_s
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// What `wgpu-nas bench enas` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct BenchReport {
    /// The adapter's name.
    pub adapter: String,
    /// Layers of the macro network timed.
    pub num_layers: usize,
    /// Channels of each layer.
    pub channels: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// One controller sample with its tape, and its share of an update (averaged over
    /// `num_aggregate` samples per update), milliseconds.
    pub controller_ms_per_sample: f64,
    /// One shared-weight step (sample, forward, backward, SGD), seconds.
    pub shared_step_s: f64,
    /// Readbacks per controller sample (1 by design).
    pub readbacks_per_sample: f64,
}

/// Times the macro space (12 layers, 36 channels by default) on the embedded data: controller
/// samples + updates and shared-weight steps, after one warm-up of each.
fn bench_enas(gpu: &Gpu, num_layers: usize, channels: usize, batch_size: usize) -> Result<BenchReport> {
    let data = Dataset::embedded_train()?;
    let mut config = EnasConfig::macro_space(data.channels, data.num_classes);
    config.model = SharedModelConfig::Macro(MacroConfig { channels, num_layers, ..MacroConfig::enas(1, 10) });
    config.controller = ControllerConfig { num_aggregate: 4, ..ControllerConfig::macro_space(num_layers) };
    config.batch_size = batch_size;
    let mut search = EnasSearch::new(gpu, config, &data)?;
    pollster::block_on(async {
        let samples = search.config().controller.num_aggregate;
        // Warm-up: pipelines and pooled buffers.
        search.step().await?;
        search.controller_update().await?;
        gpu.synchronize();

        // The controller alone: samples with their tape and the update, child evaluation excluded.
        let (t, reads) = (Instant::now(), gpu.readbacks());
        let updates = 2;
        for _ in 0..updates {
            let mut batch = Vec::with_capacity(samples);
            for _ in 0..samples {
                batch.push(search.method.sample().await?);
            }
            search.method.controller.update(&batch, &vec![0.5; samples])?;
        }
        gpu.synchronize();
        let n = (updates * samples) as f64;
        let controller_ms_per_sample = t.elapsed().as_secs_f64() * 1e3 / n;
        let readbacks_per_sample = (gpu.readbacks() - reads) as f64 / n;

        let t = Instant::now();
        let steps = 3;
        for _ in 0..steps {
            search.step().await?;
        }
        search.flush_metrics().await?;
        gpu.synchronize();
        let shared_step_s = t.elapsed().as_secs_f64() / steps as f64;
        Ok(BenchReport {
            adapter: gpu.adapter().to_string(),
            num_layers,
            channels,
            batch_size,
            controller_ms_per_sample,
            shared_step_s,
            readbacks_per_sample,
        })
    })
}

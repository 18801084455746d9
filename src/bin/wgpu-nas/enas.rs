//! `wgpu-nas search enas` and `wgpu-nas bench enas`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use wgpu_nas::checkpoint::Checkpoint;
use wgpu_nas::enas::controller::ControllerConfig;
use wgpu_nas::enas::macro_space::MacroConfig;
use wgpu_nas::enas::micro::MicroConfig;
use wgpu_nas::enas::search::{bench_enas, EnasConfig, EnasSearch, ModelConfig};
use wgpu_nas::{Gpu, Result};

use crate::plot;
use crate::progress::Progress;
use crate::search::{append_lines, io, load, write, DatasetName};

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
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    resume: Option<PathBuf>,
    #[arg(long)]
    quiet: bool,
    #[arg(long)]
    json: bool,
}

pub fn search(args: EnasArgs) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let data = load(args.dataset, args.data_dir.as_deref())?;
    let (mut search, dir) = match &args.resume {
        Some(dir) => (EnasSearch::resume(&gpu, &Checkpoint::load(&dir.join("checkpoint.bin"))?, &data)?, dir.clone()),
        None => {
            let (c, k) = (data.channels, data.num_classes);
            let mut config = match args.space {
                Space::Micro => {
                    let mut config = EnasConfig::micro(c, k);
                    config.model = ModelConfig::Micro(MicroConfig {
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
                    config.model = ModelConfig::Macro(MacroConfig {
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
            config.seed = args.seed;
            let dir = args.out.clone().unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                PathBuf::from(format!("runs/enas-{:?}-{}-{t}", args.space, args.seed).to_lowercase())
            });
            let search = EnasSearch::new(&gpu, config, &data)?;
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
    let progress = Progress::new(total, search.metrics.len() as u64, !args.quiet && !args.json);
    let say = |s: String| {
        if !args.quiet && !args.json {
            progress.println(&s);
        }
    };
    say(format!("adapter: {}", gpu.adapter()));
    say(format!("ENAS ({:?} space) on {} ({} images); run directory {}", args.space, data.name, data.n, dir.display()));
    let started = Instant::now();
    while !search.is_finished() {
        let (steps_before, updates_before) = (search.metrics.len(), search.controller_metrics.len());
        let json = args.json;
        let summary = pollster::block_on(search.run_epoch(|m| {
            if json {
                println!("{}", serde_json::json!({ "step": m }));
            }
            progress.update(m.step + 1, format!("epoch {}  loss {:.3}  acc {:.1}%", m.epoch, m.loss, 100.0 * m.acc));
        }))
        .inspect_err(|_| {
            progress.finish();
            eprintln!("the search stopped; the last checkpoint in {} is kept", dir.display())
        })?;
        append_lines(&dir.join("metrics.jsonl"), &search.metrics[steps_before..])?;
        append_lines(&dir.join("controller.jsonl"), &search.controller_metrics[updates_before..])?;
        pollster::block_on(search.checkpoint())?.save(&dir.join("checkpoint.bin"))?;
        plot::enas(&dir, &search)?;
        if args.json {
            println!("{}", serde_json::json!({ "epoch": summary }));
        }
        say(format!(
            "epoch {:>3}  lr {:.4}  train loss {:.3} acc {:.1}%  reward {:.3}  baseline {:.3}  entropy {:.2}  ({:.0} s)",
            summary.epoch,
            summary.lr,
            summary.train_loss,
            100.0 * summary.train_acc,
            summary.reward,
            summary.baseline,
            summary.entropy,
            started.elapsed().as_secs_f64()
        ));
    }
    progress.finish();
    let derived = pollster::block_on(search.derive())?;
    write(&dir.join("architecture.json"), &derived.to_json())?;
    write(&dir.join("architecture.dot"), &derived.to_dot())?;
    if let Some(g) = &derived.genotype {
        write(&dir.join("genotype.json"), &g.to_json())?;
        write(&dir.join("genotype.py"), &format!("{}\n", g.to_python()))?;
    }
    if args.json {
        println!("{}", serde_json::json!({ "result": { "best_score": derived.best.score, "dir": dir } }));
    } else {
        if let Some(g) = &derived.genotype {
            println!("{}", g.to_python());
        }
        println!(
            "best of {} sampled architectures scores {:.3}; results in {}: architecture.json (with the top 10), \
             architecture.dot, metrics.jsonl, controller.jsonl, checkpoint.bin, reward.png, loss.png, accuracy.png",
            search.config.derive_samples,
            derived.best.score,
            dir.display()
        );
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
        println!("{}", serde_json::to_string(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("adapter: {}", r.adapter);
    println!(
        "ENAS macro space, {} layers, {} channels, batch {}: controller sample + update {:.1} ms/sample, \
         shared-weight step {:.2} s",
        r.num_layers, r.channels, r.batch_size, r.controller_ms_per_sample, r.shared_step_s
    );
    Ok(ExitCode::SUCCESS)
}

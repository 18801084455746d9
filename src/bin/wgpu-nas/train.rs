//! `wgpu-nas train --genotype FILE` or `--architecture FILE`: retrains a found architecture from
//! scratch (the reference's `train.py`, or `general_child.py` with `fixed_arc` for an ENAS macro
//! architecture) and writes its run directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use wgpu_nas::data::{Augment, Dataset, Split};
use wgpu_nas::run_dir::RunDir;
use wgpu_nas::space::{NasBench201Cell, SearchFor};
use wgpu_nas::train::{Architecture, CellVariant, MacroVariant, TrainConfig, TrainEpoch, TrainStep, Trainer};
use wgpu_nas::{Error, Gpu, Result};

use crate::progress::Progress;
use crate::run::{self, DataSource, Given, RunArgs, Setting, Shown};
use crate::search::{io, load_split, read_genotype, DatasetName};
use crate::{out, plot};

/// The defaults make a run a CPU finishes in a minute or two; the paper's values (CIFAR-10,
/// `train.py`) are given with each option.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The architecture: genotype.json or genotype.py of a search run (or the reference's text),
    /// or FILE:NAME for the genotype NAME of a Python module such as the reference's
    /// genotypes.py (NASNet, AmoebaNet, DARTS_V2). Not needed with --resume (the checkpoint holds
    /// the architecture).
    #[arg(long, required_unless_present_any = ["resume", "architecture", "arch"], conflicts_with_all = ["architecture", "arch"])]
    genotype: Option<PathBuf>,
    /// A NAS-Bench-201 cell instead of --genotype: the benchmark's string
    /// (`|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|...|`), or a file holding it (the
    /// nas-bench-201.txt of `search --space nas-bench-201`). It retrains on the benchmark's
    /// skeleton: --init-channels C (16 there), --layers cells per stage (5 there), no auxiliary
    /// head, no drop path.
    #[arg(long, conflicts_with = "architecture")]
    arch: Option<String>,
    /// An ENAS architecture instead of --genotype: the architecture.json of `search enas` (its
    /// best architecture), a serialized Arch or MacroArch, or the reference's fixed_arc text as
    /// its scripts write it (whitespace-separated integers: macro, an operation and the skip
    /// bits per layer, L(L+1)/2 for L layers; micro, x_id x_op y_id y_op per node of the normal
    /// then the reduction cell, 8 per node). A micro architecture retrains as cells built as
    /// micro_child.py builds them (--layers counts its two reduction cells: the reference's
    /// --child_num_layers=15 is --layers 17, at --init-channels 36); a macro one as the macro
    /// network (general_child.py), whose layers the architecture fixes (--layers is
    /// ignored) and whose out_filters is --init-channels (96 in the reference, 24 layers, no
    /// auxiliary head, no drop path).
    #[arg(long)]
    architecture: Option<PathBuf>,
    /// The space of a fixed_arc text (the reference's --search_for); without it the number of
    /// integers decides.
    #[arg(long, value_enum, requires = "architecture")]
    search_for: Option<SearchForArg>,
    /// The network a macro architecture builds: reference (general_child.py's fixed network:
    /// the separable ops as plain convs, skip bit j = prev_layers[j] with the stem at 0) or
    /// searched (the network our ENAS search scores: separable ops, skip bit j = layer j).
    #[arg(long, value_enum, default_value_t = MacroVariantArg::Reference)]
    macro_variant: MacroVariantArg,
    #[arg(long, value_enum, default_value_t = DatasetName::Embedded)]
    dataset: DatasetName,
    /// Directory of the data set's files (CIFAR binaries, IDX files).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Epochs (600 in the paper).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Batch size (96 in the paper).
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Initial channels C (36 in the paper). Even.
    #[arg(long, default_value_t = 8)]
    init_channels: usize,
    /// Cells (20 in the paper); reduction cells at layers/3 and 2*layers/3. Ignored for an ENAS
    /// macro architecture.
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// The auxiliary head after cell 2*layers/3, loss weight 0.4 (on in the paper).
    #[arg(long, overrides_with = "no_auxiliary")]
    auxiliary: bool,
    /// No auxiliary head (the default here: tiny networks gain nothing from it).
    #[arg(long, overrides_with = "auxiliary")]
    no_auxiliary: bool,
    /// Cutout side in pixels, 0 = off (16 in the paper, for 32x32 images).
    #[arg(long, default_value_t = 0)]
    cutout: usize,
    /// Drop path probability reached in the last epoch (0.2 in the paper).
    #[arg(long, default_value_t = 0.0)]
    drop_path: f32,
    /// Steps per epoch; 0 = a full pass over the training set (the paper).
    #[arg(long, default_value_t = 30)]
    steps_per_epoch: usize,
    /// Test batches scored per epoch; 0 = the whole test set (the paper).
    #[arg(long, default_value_t = 10)]
    eval_batches: usize,
    /// Initial learning rate, cosine down to 0 (0.025 in the paper).
    #[arg(long, default_value_t = 0.025)]
    learning_rate: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SearchForArg {
    Macro,
    Micro,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MacroVariantArg {
    Reference,
    Searched,
}

/// The settings of `train` and where each lands in its [`TrainConfig`].
const SETTINGS: &[Setting] = &[
    Setting { id: "genotype", pointer: "/network/architecture", resumable: false },
    Setting { id: "architecture", pointer: "/network/architecture", resumable: false },
    Setting { id: "arch", pointer: "/network/architecture", resumable: false },
    Setting { id: "search_for", pointer: "/network/architecture", resumable: false },
    Setting { id: "macro_variant", pointer: "/network/macro_variant", resumable: false },
    Setting { id: "epochs", pointer: "/epochs", resumable: true },
    Setting { id: "batch_size", pointer: "/batch_size", resumable: false },
    Setting { id: "init_channels", pointer: "/network/channels", resumable: false },
    Setting { id: "layers", pointer: "/network/layers", resumable: false },
    Setting { id: "auxiliary", pointer: "/network/auxiliary", resumable: false },
    Setting { id: "no_auxiliary", pointer: "/network/auxiliary", resumable: false },
    Setting { id: "cutout", pointer: "/augment", resumable: false },
    Setting { id: "drop_path", pointer: "/drop_path_prob", resumable: false },
    Setting { id: "steps_per_epoch", pointer: "/steps_per_epoch", resumable: false },
    Setting { id: "eval_batches", pointer: "/eval_batches", resumable: true },
    Setting { id: "learning_rate", pointer: "/lr", resumable: true },
    Setting { id: "seed", pointer: "/seed", resumable: false },
];

/// The retraining config the options ask for, for `architecture` on `train`.
fn config_of(args: &TrainArgs, architecture: Architecture, train: &Dataset) -> TrainConfig {
    let mut config = match architecture {
        Architecture::Cells(genotype) => {
            let mut config = TrainConfig::darts(train.channels, train.num_classes, genotype);
            config.network.layers = args.layers;
            if args.architecture.is_some() {
                // An ENAS micro architecture: cells as micro_child.py builds them.
                config.network.cell_variant = CellVariant::EnasMicro;
            }
            config
        }
        Architecture::Macro(arch) => TrainConfig::enas_macro(train.channels, train.num_classes, arch),
        Architecture::NasBench201(cell) => {
            let mut config = TrainConfig::nas_bench_201(train.channels, train.num_classes, cell);
            config.network.layers = args.layers;
            config
        }
    };
    config.epochs = args.epochs;
    config.batch_size = args.batch_size;
    config.lr = args.learning_rate;
    config.network.channels = args.init_channels;
    config.network.macro_variant = match args.macro_variant {
        MacroVariantArg::Reference => MacroVariant::Reference,
        MacroVariantArg::Searched => MacroVariant::Searched,
    };
    config.network.auxiliary = args.auxiliary && !args.no_auxiliary;
    config.drop_path_prob = args.drop_path;
    config.augment = Augment::darts_train(args.cutout);
    config.steps_per_epoch = (args.steps_per_epoch > 0).then_some(args.steps_per_epoch);
    config.eval_batches = (args.eval_batches > 0).then_some(args.eval_batches);
    // Read back 4 times an epoch at least, so that short runs still draw a curve.
    config.log_every = (config.steps_per_epoch.unwrap_or(usize::MAX) / 4).clamp(1, config.log_every);
    config.seed = args.seed;
    config
}

pub fn train(args: TrainArgs, given: &Given) -> Result<ExitCode> {
    let gpu = Gpu::new()?;
    let splits = |name, dir: Option<&std::path::Path>| -> Result<_> {
        Ok((load_split(name, dir, Split::Train)?, load_split(name, dir, Split::Test)?))
    };
    let (mut trainer, mut run, train, test) = match &args.run.resume {
        Some(dir) => {
            let (resume, (train, test)) = run::open_resume(
                dir,
                "train",
                (args.dataset, args.data_dir.as_deref()),
                given,
                SETTINGS,
                splits,
                |(train, test)| vec![train, test],
                |(train, _), saved| {
                    let architecture = match (&args.genotype, &args.architecture, &args.arch) {
                        (None, None, None) => saved
                            .pointer("/network/architecture")
                            .cloned()
                            .map(serde_json::from_value)
                            .transpose()?
                            .ok_or_else(|| Error::Config("the checkpoint's config has no architecture".into()))?,
                        _ => read_architecture(&args)?,
                    };
                    Ok(serde_json::to_value(config_of(&args, architecture, train))?)
                },
            )?;
            let trainer = Trainer::resume(&gpu, &resume.checkpoint, &train, &test)?;
            let run = resume.finish(trainer.epoch(), trainer.config().epochs, "train", args.run.chatty())?;
            (trainer, run, train, test)
        }
        None => {
            let (train, test) = splits(args.dataset, args.data_dir.as_deref())?;
            let trainer = Trainer::new(&gpu, config_of(&args, read_architecture(&args)?, &train), &train, &test)?;
            let meta = serde_json::json!({
                "train": trainer.config(),
                "genotype_file": args.genotype,
                "architecture_file": args.architecture,
                "nas_bench_201": args.arch,
                "dataset": train.name,
                "param_size_mb": trainer.param_size_mb(),
                "adapter": gpu.adapter(),
                "version": env!("CARGO_PKG_VERSION"),
            });
            let source = DataSource::new(args.dataset, args.data_dir.as_deref(), &[&train, &test]);
            let run = run::create(&args.run, &format!("train-{}", args.seed), &source, &meta)?;
            (trainer, run, train, test)
        }
    };
    let dir = run.path().to_path_buf();
    let total = (trainer.config().epochs * trainer.steps_per_epoch()) as u64;
    let progress = Progress::new(total, trainer.global_step(), args.run.chatty());
    let say = |s: String| {
        if args.run.chatty() {
            progress.println(&s);
        }
    };
    let cfg = trainer.config();
    say(format!("adapter: {}", gpu.adapter()));
    say(format!(
        "retraining on {} ({} training, {} test images): C={}, {} {}, auxiliary {}, batch {}, {} epochs x {} steps; \
         {:.3} MB of parameters (auxiliary head excluded); run directory {}",
        train.name,
        train.n,
        test.n,
        cfg.network.channels,
        cfg.network.layers,
        match cfg.network.architecture {
            Architecture::Cells(_) => "cells",
            Architecture::Macro(_) => "macro layers",
            Architecture::NasBench201(_) => "NAS-Bench-201 cells per stage",
        },
        if cfg.network.auxiliary { "on" } else { "off" },
        cfg.batch_size,
        cfg.epochs,
        trainer.steps_per_epoch(),
        trainer.param_size_mb(),
        dir.display()
    ));
    let started = Instant::now();
    let mut epochs_seen = trainer.epochs.len();
    let shown = Shown {
        step: |m: &TrainStep| {
            (m.step, format!("epoch {}  loss {:.3}  acc {:.1}%", m.epoch, m.train_loss, 100.0 * m.train_acc))
        },
        epoch: |e: &TrainEpoch, secs: f64| {
            format!(
                "epoch {:>3}  lr {:.4}  drop path {:.3}  train loss {:.3} acc {:.1}%  test loss {:.3} acc {:.1}%  \
                 ({secs:.0} s)",
                e.epoch,
                e.lr,
                e.drop_prob,
                e.train_loss,
                100.0 * e.train_acc,
                e.test_loss,
                100.0 * e.test_acc,
            )
        },
        files: |run: &mut RunDir, t: &Trainer| {
            run.append("epochs.jsonl", &t.epochs[epochs_seen..])?;
            epochs_seen = t.epochs.len();
            plot::train(run.path(), t)
        },
    };
    run::epochs(&mut trainer, &mut run, &progress, &args.run, shown)?;
    let last = trainer.epochs.last().cloned();
    let test_acc = last.as_ref().map(|e| e.test_acc).unwrap_or(f32::NAN);
    let peak = gpu.memory().peak;
    if args.run.json {
        out::line(serde_json::json!({ "result": {
            "test_acc": test_acc,
            "param_size_mb": trainer.param_size_mb(),
            "dir": dir,
            "peak_gpu_bytes": peak,
        }}))?;
    } else {
        out::line(format_args!(
            "test accuracy {:.2}% after {} epoch{}; {:.3} MB of parameters; results in {}: config.json, metrics.jsonl, \
             epochs.jsonl, checkpoint.bin, loss.png, accuracy.png ({:.0} s, peak GPU memory {:.1} MiB)",
            100.0 * test_acc,
            trainer.epochs.len(),
            if trainer.epochs.len() == 1 { "" } else { "s" },
            trainer.param_size_mb(),
            dir.display(),
            started.elapsed().as_secs_f64(),
            peak as f64 / 1048576.0
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The architecture of a new run: --genotype's (cells) or --architecture's (ENAS).
fn read_architecture(args: &TrainArgs) -> Result<Architecture> {
    // clap already requires exactly one of them when there is no --resume.
    if let Some(arch) = &args.arch {
        return read_nas_bench_201(arch).map(Architecture::NasBench201);
    }
    match (&args.genotype, &args.architecture) {
        (Some(path), _) => Ok(Architecture::Cells(read_genotype(path)?)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            let search_for = args.search_for.map(|s| match s {
                SearchForArg::Macro => SearchFor::Macro,
                SearchForArg::Micro => SearchFor::Micro,
            });
            Architecture::from_enas_text(&text, search_for)
                .map_err(|e| Error::File { path: path.display().to_string(), msg: e.to_string() })
        }
        (None, None) => {
            Err(Error::Config("a new run needs --genotype FILE, --architecture FILE or --arch STRING".into()))
        }
    }
}

/// `--arch`: the benchmark string itself, or (when it names a file) the string in that file.
fn read_nas_bench_201(arch: &str) -> Result<NasBench201Cell> {
    let path = std::path::Path::new(arch);
    if arch.trim_start().starts_with('|') || !path.exists() {
        if !arch.contains('~') {
            return Err(Error::Config(format!(
                "--arch {arch:?} is neither a NAS-Bench-201 string (|op~0|+|op~0|op~1|+|op~0|op~1|op~2|) nor a file"
            )));
        }
        return NasBench201Cell::parse(arch);
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let cell = match text.trim_start().starts_with('{') {
        true => NasBench201Cell::from_json(&text),
        false => NasBench201Cell::parse(&text),
    };
    cell.map_err(|e| Error::File { path: path.display().to_string(), msg: e.to_string() })
}

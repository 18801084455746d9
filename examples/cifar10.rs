//! The DARTS paper's experiment on CIFAR-10: search a cell, then retrain the genotype it found
//! from scratch and report its test accuracy.
//!
//!     cargo run --release --example cifar10 -- DIR [--quick | --tiny]
//!
//! DIR holds the official binary version (cifar-10-batches-bin: data_batch_1..5.bin,
//! test_batch.bin from https://www.cs.toronto.edu/~kriz/cifar.html); nothing is downloaded.
//! By default the sizes are the paper's (search: C=16, 8 cells, batch 64, 50 epochs; retrain:
//! C=36, 20 cells, auxiliary head, drop path 0.2, cutout 16, batch 96, 600 epochs), which is
//! days on one GPU. `--quick` is a search of 10 epochs x 100 steps and a 20-epoch retraining of
//! C=16, 8 cells (hours on a GPU); `--tiny` a smoke test of a few steps.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Sizes of the search and the retraining (the paper's are far bigger: see `wgpu-nas --help`).
#[cfg(not(target_arch = "wasm32"))]
struct Sizes {
    search_channels: usize,
    search_layers: usize,
    nodes: usize,
    search_epochs: usize,
    search_steps: usize,
    train_channels: usize,
    train_layers: usize,
    train_epochs: usize,
    train_steps: usize,
    batch_size: usize,
    eval_batches: usize,
}

#[cfg(not(target_arch = "wasm32"))]
fn run() -> wgpu_nas::Result<()> {
    use std::path::PathBuf;

    use wgpu_nas::darts::{DartsSearch, SearchConfig};
    use wgpu_nas::data::{Dataset, Split};
    use wgpu_nas::space::SearchSpace;
    use wgpu_nas::train::{TrainConfig, Trainer};
    use wgpu_nas::{Error, Gpu};

    let usage = "usage: cargo run --release --example cifar10 -- DIR [--quick | --tiny]  \
                 (DIR: the official binary CIFAR-10 files, data_batch_1..5.bin and test_batch.bin)";
    let (mut data_dir, mut size) = (None::<PathBuf>, "paper");
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--tiny" => size = "tiny",
            "--quick" => size = "quick",
            s if s.starts_with('-') => return Err(Error::Config(format!("unknown argument {s:?}; {usage}"))),
            _ if data_dir.is_some() => return Err(Error::Config(format!("one directory only; {usage}"))),
            d => data_dir = Some(d.into()),
        }
    }
    let dir = data_dir.ok_or_else(|| Error::Config(format!("no CIFAR-10 directory given; {usage}")))?;
    let (train, test) = (Dataset::cifar10(&dir, Split::Train)?, Dataset::cifar10(&dir, Split::Test)?);
    let paper = size == "paper";
    let s = if size == "tiny" {
        Sizes {
            search_channels: 4,
            search_layers: 2,
            nodes: 2,
            search_epochs: 1,
            search_steps: 4,
            train_channels: 4,
            train_layers: 3,
            train_epochs: 1,
            train_steps: 10,
            batch_size: 16,
            eval_batches: 4,
        }
    } else if size == "quick" {
        Sizes {
            search_channels: 16,
            search_layers: 8,
            nodes: 4,
            search_epochs: 10,
            search_steps: 100,
            train_channels: 16,
            train_layers: 8,
            train_epochs: 20,
            train_steps: 0,
            batch_size: 64,
            eval_batches: 0,
        }
    } else {
        Sizes {
            search_channels: 16,
            search_layers: 8,
            nodes: 4,
            search_epochs: 50,
            search_steps: 0,
            train_channels: 36,
            train_layers: 20,
            train_epochs: 600,
            train_steps: 0,
            batch_size: 64,
            eval_batches: 0,
        }
    };

    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter());
    println!("data: {} ({} training images), {} ({} test images)", train.name, train.n, test.name, test.n);
    let started = std::time::Instant::now();

    // 1. The search: half of the training set trains the weights, the other half the alphas.
    let mut config = SearchConfig::darts(train.channels, train.num_classes);
    config.network.channels = s.search_channels;
    config.network.layers = s.search_layers;
    config.network.space = SearchSpace::darts().with_steps(s.nodes, s.nodes)?;
    config.batch_size = s.batch_size;
    config.epochs = s.search_epochs;
    // 0 steps: full passes over the weights' half, as the paper.
    config.steps_per_epoch = (s.search_steps > 0).then_some(s.search_steps);
    config.eval_batches = (s.eval_batches > 0).then_some(s.eval_batches);
    if s.search_steps > 0 {
        config.log_every = (s.search_steps / 4).clamp(1, config.log_every);
    }
    let mut search = DartsSearch::new(&gpu, config, &train)?;
    while !search.is_finished() {
        let e = pollster::block_on(search.run_epoch(|_| {}))?;
        println!(
            "search epoch {}: train acc {:.1}%, validation acc {:.1}% ({:.0} s)",
            e.epoch,
            100.0 * e.train_acc,
            100.0 * e.val_acc,
            started.elapsed().as_secs_f64()
        );
    }
    let genotype = pollster::block_on(search.genotype())?;
    println!("found: {}", genotype.to_python());
    drop(search); // its GPU memory is free for the retraining

    // 2. The retraining of the found cell in a deeper network, scored on the test set.
    let mut config = TrainConfig::darts(train.channels, train.num_classes, genotype);
    config.network.channels = s.train_channels;
    config.network.layers = s.train_layers;
    config.epochs = s.train_epochs;
    // TrainConfig::darts is the paper's (auxiliary head, drop path 0.2, cutout 16, batch 96);
    // the shorter runs drop the regularisers, which only pay off over hundreds of epochs.
    if !paper {
        config.network.auxiliary = false;
        config.drop_path_prob = 0.0;
        config.augment = wgpu_nas::data::Augment::darts_train(0);
        config.batch_size = s.batch_size;
    }
    config.steps_per_epoch = (s.train_steps > 0).then_some(s.train_steps);
    config.eval_batches = (s.eval_batches > 0).then_some(s.eval_batches);
    let mut trainer = Trainer::new(&gpu, config, &train, &test)?;
    println!("retraining: {:.3} MB of parameters", trainer.param_size_mb());
    while !trainer.is_finished() {
        let e = pollster::block_on(trainer.run_epoch(|_| {}))?;
        println!(
            "train epoch {}: train acc {:.1}%, test acc {:.1}% ({:.0} s)",
            e.epoch,
            100.0 * e.train_acc,
            100.0 * e.test_acc,
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "done in {:.0} s; peak GPU memory {:.1} MiB",
        started.elapsed().as_secs_f64(),
        gpu.memory().peak as f64 / 1048576.0
    );
    Ok(())
}

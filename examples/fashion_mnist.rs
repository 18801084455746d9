//! Search a cell on Fashion-MNIST with DARTS, then retrain the genotype it found from scratch
//! and report its test accuracy: the whole workflow of the paper, on 28x28 grey images.
//!
//!     cargo run --release --example fashion_mnist -- [--data-dir DIR] [--tiny]
//!
//! Data: the IDX files in `--data-dir`, else Debian's `dataset-fashion-mnist` in
//! /usr/share/datasets/fashion-mnist when installed, else the subset embedded in the crate
//! (6000 training, 1000 test images). `--tiny` (or WGPU_NAS_TINY=1) shrinks everything to a
//! smoke test that takes about a minute on a CPU (CI runs it); without it the search and the
//! retraining are small but real (tens of minutes on a CPU, a few on a GPU).

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
    use std::path::{Path, PathBuf};

    use wgpu_nas::darts::{DartsSearch, SearchConfig};
    use wgpu_nas::data::{Dataset, Split};
    use wgpu_nas::space::SearchSpace;
    use wgpu_nas::train::{TrainConfig, Trainer};
    use wgpu_nas::{Error, Gpu};

    let mut data_dir: Option<PathBuf> = None;
    let mut tiny = std::env::var("WGPU_NAS_TINY").is_ok_and(|v| v != "0" && !v.is_empty());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tiny" => tiny = true,
            "--data-dir" => {
                data_dir = Some(args.next().ok_or_else(|| Error::Config("--data-dir needs a directory".into()))?.into())
            }
            other => {
                return Err(Error::Config(format!(
                    "unknown argument {other:?}; usage: fashion_mnist [--data-dir DIR] [--tiny]"
                )))
            }
        }
    }
    let debian = Path::new("/usr/share/datasets/fashion-mnist");
    let dir = data_dir.or_else(|| debian.join("train-images-idx3-ubyte.gz").is_file().then(|| debian.to_path_buf()));
    let (train, test) = match &dir {
        Some(d) => (Dataset::fashion_mnist(d, Split::Train)?, Dataset::fashion_mnist(d, Split::Test)?),
        None => Dataset::embedded()?,
    };
    let s = if tiny {
        Sizes {
            search_channels: 4,
            search_layers: 2,
            nodes: 2,
            search_epochs: 1,
            search_steps: 6,
            train_channels: 4,
            train_layers: 3,
            train_epochs: 1,
            train_steps: 40,
            batch_size: 16,
            eval_batches: 4,
        }
    } else {
        Sizes {
            search_channels: 8,
            search_layers: 5,
            nodes: 4,
            search_epochs: 5,
            search_steps: 50,
            train_channels: 16,
            train_layers: 8,
            train_epochs: 5,
            train_steps: 200,
            batch_size: 32,
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
    config.steps_per_epoch = Some(s.search_steps);
    config.eval_batches = (s.eval_batches > 0).then_some(s.eval_batches);
    config.log_every = (s.search_steps / 4).max(1);
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
    // The auxiliary head and drop path help the paper's 600 epochs, not a few.
    config.network.auxiliary = false;
    config.drop_path_prob = 0.0;
    config.augment = wgpu_nas::data::Augment::darts_train(0);
    config.epochs = s.train_epochs;
    config.batch_size = s.batch_size;
    config.steps_per_epoch = Some(s.train_steps);
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

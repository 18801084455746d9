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

#[cfg(not(target_arch = "wasm32"))]
fn run() -> wgpu_nas::Result<()> {
    use std::path::PathBuf;

    use wgpu_nas::data::{Dataset, Split};
    use wgpu_nas::pipeline::{search_then_retrain, Budget};
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
    let budget = match size {
        "tiny" => Budget {
            search_channels: 4,
            search_layers: 2,
            nodes: 2,
            search_epochs: 1,
            search_steps: Some(4),
            train_channels: 4,
            train_layers: 3,
            train_epochs: 1,
            train_steps: Some(10),
            batch_size: 16,
            eval_batches: Some(4),
            regularise: false,
        },
        "quick" => Budget {
            search_epochs: 10,
            search_steps: Some(100),
            train_channels: 16,
            train_layers: 8,
            train_epochs: 20,
            regularise: false,
            ..Budget::paper()
        },
        _ => Budget::paper(),
    };

    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter());
    println!("data: {} ({} training images), {} ({} test images)", train.name, train.n, test.name, test.n);
    let started = std::time::Instant::now();
    let secs = || started.elapsed().as_secs_f64();
    let outcome = pollster::block_on(search_then_retrain(&gpu, &budget, &train, &test, |stage| {
        println!("{stage} ({:.0} s)", secs())
    }))?;
    println!(
        "test accuracy {:.2}%; done in {:.0} s; peak GPU memory {:.1} MiB",
        100.0 * outcome.test_acc(),
        secs(),
        gpu.memory().peak as f64 / 1048576.0
    );
    Ok(())
}

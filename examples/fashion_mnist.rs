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

#[cfg(not(target_arch = "wasm32"))]
fn run() -> wgpu_nas::Result<()> {
    use std::path::{Path, PathBuf};

    use wgpu_nas::data::{Dataset, Split};
    use wgpu_nas::pipeline::{search_then_retrain, Budget};
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
    let budget = if tiny {
        Budget {
            search_channels: 4,
            search_layers: 2,
            nodes: 2,
            search_epochs: 1,
            search_steps: Some(6),
            train_channels: 4,
            train_layers: 3,
            train_epochs: 1,
            train_steps: Some(40),
            batch_size: 16,
            eval_batches: Some(4),
            regularise: false,
        }
    } else {
        Budget {
            search_channels: 8,
            search_layers: 5,
            nodes: 4,
            search_epochs: 5,
            search_steps: Some(50),
            train_channels: 16,
            train_layers: 8,
            train_epochs: 5,
            train_steps: Some(200),
            batch_size: 32,
            eval_batches: None,
            regularise: false,
        }
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

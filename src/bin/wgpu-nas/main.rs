//! The `wgpu-nas` command line.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod bench;
#[cfg(not(target_arch = "wasm32"))]
mod bench_darts;
#[cfg(not(target_arch = "wasm32"))]
mod enas;
#[cfg(not(target_arch = "wasm32"))]
mod plot;
#[cfg(not(target_arch = "wasm32"))]
mod progress;
#[cfg(not(target_arch = "wasm32"))]
mod search;
#[cfg(not(target_arch = "wasm32"))]
mod train;

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::PathBuf;
    use std::process::ExitCode;

    use clap::{Parser, Subcommand};
    use wgpu_nas::{fixtures, Gpu};

    use crate::{bench, bench_darts, enas, search, train};

    #[derive(Parser)]
    #[command(
        name = "wgpu-nas",
        version,
        about = "Gradient-based neural architecture search on any GPU",
        after_help = "With no command, runs a short DARTS search on the embedded data set (`search darts`)."
    )]
    struct Cli {
        #[command(subcommand)]
        command: Option<Command>,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Search for an architecture.
        #[command(subcommand)]
        Search(SearchCommand),
        /// Retrain a found architecture (genotype.json or genotype.py) from scratch.
        Train(train::TrainArgs),
        /// Time the searches' hot paths (kernels: `cargo bench --bench kernels`).
        #[command(subcommand)]
        Bench(BenchCommand),
        /// Run every case of every *.json fixture in DIR (PyTorch reference values) on the GPU.
        CheckFixtures {
            /// Directory of fixture files (e.g. ../shared/golden).
            dir: PathBuf,
            /// Print every compared tensor, not only failures.
            #[arg(long)]
            verbose: bool,
        },
        /// List the GPU adapters wgpu sees, with backend and main limits.
        Devices,
        /// Derive the genotype of a search run's checkpoint (its run directory).
        Derive {
            /// The run directory (holds checkpoint.bin).
            #[arg(long)]
            run: PathBuf,
            #[arg(long, value_enum, default_value_t = search::Rule::Top2)]
            rule: search::Rule,
        },
        /// Print a genotype (JSON or the reference's Python text) as JSON, Python text or DOT.
        Export {
            #[arg(long)]
            genotype: PathBuf,
            #[arg(long, value_enum, default_value_t = search::Format::Python)]
            format: search::Format,
        },
    }

    #[derive(Subcommand)]
    enum SearchCommand {
        /// DARTS: differentiable search (bi-level optimisation of alphas and weights).
        Darts(search::DartsArgs),
        /// ENAS: an LSTM controller trained by REINFORCE over a weight-sharing model.
        Enas(enas::EnasArgs),
    }

    #[derive(Subcommand)]
    enum BenchCommand {
        /// The DARTS search step on synthetic data: seconds, dispatches, memory, FLOPs; --profile.
        Darts(bench_darts::BenchDartsArgs),
        /// Controller sample+update and shared-weight step times, ENAS macro space.
        Enas(enas::BenchEnasArgs),
        /// The browser demo's search natively (same settings as the page): steps per second.
        Demo(bench::BenchDemoArgs),
    }

    pub fn main() -> ExitCode {
        let cli = Cli::parse();
        match run(cli) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        }
    }

    fn run(cli: Cli) -> wgpu_nas::Result<ExitCode> {
        // No command: the main job, a short DARTS search with the defaults.
        let command = match cli.command {
            Some(c) => c,
            None => Cli::parse_from(["wgpu-nas", "search", "darts"]).command.expect("a command"),
        };
        match command {
            Command::Search(SearchCommand::Darts(args)) => search::darts(args),
            Command::Search(SearchCommand::Enas(args)) => enas::search(args),
            Command::Train(args) => train::train(args),
            Command::Bench(BenchCommand::Darts(args)) => bench_darts::darts(args),
            Command::Bench(BenchCommand::Enas(args)) => enas::bench(args),
            Command::Bench(BenchCommand::Demo(args)) => bench::demo(args),
            Command::Derive { run, rule } => search::derive(&run, rule),
            Command::Export { genotype, format } => search::export(&genotype, format),
            Command::CheckFixtures { dir, verbose } => {
                let gpu = Gpu::new()?;
                println!("adapter: {}", gpu.adapter());
                let reports = fixtures::run_dir(&gpu, &dir, |r| {
                    println!("{r}");
                    if verbose {
                        for c in &r.comparisons {
                            println!("      {:<40} max |err| {:.3e}", c.what, c.max_abs_err);
                        }
                    }
                })?;
                let passed = reports.iter().filter(|r| r.passed()).count();
                let failed = reports.len() - passed;
                println!("{passed} passed, {failed} failed");
                Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
            }
            Command::Devices => {
                let adapters = pollster::block_on(wgpu_nas::gpu::list_adapters());
                if adapters.is_empty() {
                    println!("no adapters found; on Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1");
                }
                for (a, l) in adapters {
                    println!("{a}");
                    println!("    driver: {}", a.driver);
                    println!(
                        "    max storage binding {} MiB, storage buffers/stage {}, invocations/workgroup {}, workgroup memory {} KiB",
                        l.max_storage_buffer_binding_size >> 20,
                        l.max_storage_buffers_per_shader_stage,
                        l.max_compute_invocations_per_workgroup,
                        l.max_compute_workgroup_storage_size >> 10
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

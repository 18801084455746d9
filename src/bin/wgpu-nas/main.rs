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
mod experiment;
#[cfg(not(target_arch = "wasm32"))]
mod out;
#[cfg(not(target_arch = "wasm32"))]
mod plot;
#[cfg(not(target_arch = "wasm32"))]
mod progress;
#[cfg(not(target_arch = "wasm32"))]
mod run;
#[cfg(not(target_arch = "wasm32"))]
mod search;
#[cfg(not(target_arch = "wasm32"))]
mod train;

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::PathBuf;
    use std::process::ExitCode;

    use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
    use wgpu_nas::{fixtures, Gpu};

    use crate::run::Given;
    use crate::{bench, bench_darts, enas, experiment, out, search, train};

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

    // Parsed once per process: the size of its largest variant (experiment's options) is of no
    // matter.
    #[allow(clippy::large_enum_variant)]
    #[derive(Subcommand)]
    enum Command {
        /// Search for an architecture.
        #[command(subcommand)]
        Search(SearchCommand),
        /// Retrain a found architecture (genotype.json or genotype.py) from scratch.
        Train(train::TrainArgs),
        /// Searched cells against random cells: every method with S seeds and R random genotypes of
        /// the same space, all retrained with one budget; writes results.json, results.md and
        /// results.png. Run it again on the same --out to continue after a stop.
        Experiment(experiment::ExperimentArgs),
        /// Run one run of an experiment's plan (`experiment --plan-only`): line --index of
        /// plan.jsonl, skipped when finished, resumed when interrupted. Exit code 75 when it is a
        /// retraining whose search has not finished (run it again later).
        Task(experiment::TaskArgs),
        /// Merge the finished runs of experiment directories (copies from several machines, or a
        /// shared one) into one results.json, results.md and results.png; lists the runs not
        /// finished anywhere (exit code 1 then).
        Leaderboard(experiment::LeaderboardArgs),
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
        /// List the GPU adapters wgpu sees, with backend and main limits, numbered for `task
        /// --adapter N` (or WGPU_ADAPTER_INDEX=N).
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
            /// A genotype to print: genotype.json, genotype.py, the reference's text, or FILE:NAME for one
            /// genotype of a genotypes.py.
            #[arg(long, required_unless_present = "weights", conflicts_with = "weights")]
            genotype: Option<PathBuf>,
            /// The run directory of a retraining (`train`) whose network to write as a file.
            #[arg(long)]
            weights: Option<PathBuf>,
            /// json, python or dot for --genotype (default python); safetensors (the default
            /// there: the reference's PyTorch state_dict names) or onnx for --weights.
            #[arg(long, value_enum)]
            format: Option<search::Format>,
            /// Where --weights writes (default: RUN_DIR/weights.safetensors or RUN_DIR/model.onnx).
            #[arg(long, requires = "weights")]
            output: Option<PathBuf>,
        },
    }

    #[derive(Subcommand)]
    enum SearchCommand {
        /// DARTS: differentiable search (bi-level optimisation of alphas and weights).
        Darts(search::DartsArgs),
        /// GDAS: DARTS's supernet with one Gumbel-softmax-sampled op per edge (one op runs, not all).
        Gdas(search::GdasArgs),
        /// PC-DARTS: DARTS with partial channel connections and edge normalisation (Xu et al.
        /// 2020); the reference's lr 0.1 and arch lr 6e-4, a batch 4x DARTS's (as 256 to 64).
        #[command(
            mut_arg("batch_size", |a| a.default_value("64")),
            mut_arg("learning_rate", |a| a.default_value("0.1")),
            mut_arg("arch_learning_rate", |a| a.default_value("0.0006"))
        )]
        PcDarts(search::PcDartsArgs),
        /// ENAS: an LSTM controller trained by REINFORCE over a weight-sharing model.
        Enas(enas::EnasArgs),
    }

    #[derive(Subcommand)]
    enum BenchCommand {
        /// The DARTS (or GDAS: --method) search step on synthetic data: seconds, dispatches, memory,
        /// FLOPs; --profile.
        Darts(bench_darts::BenchDartsArgs),
        /// Controller sample+update and shared-weight step times, ENAS macro space.
        Enas(enas::BenchEnasArgs),
        /// The browser demo's search natively (same settings as the page): steps per second.
        Demo(bench::BenchDemoArgs),
    }

    /// Exit codes: 0 done, 2 bad input or settings (or a file error), 3 a loss became NaN or
    /// infinite (the run's last checkpoint is kept), 4 standard output could not be written,
    /// 75 (`task`) a retraining's search not finished yet, 1 (`leaderboard`) runs missing.
    pub fn main() -> ExitCode {
        let matches = Cli::command().get_matches();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        // The options given on the command line, of the innermost subcommand.
        let mut leaf = &matches;
        while let Some((_, sub)) = leaf.subcommand() {
            leaf = sub;
        }
        match run(cli, &Given::from_matches(leaf)) {
            Ok(code) => code,
            Err(e) => {
                out::warn(format!("error: {e}"));
                ExitCode::from(e.exit_code())
            }
        }
    }

    fn run(cli: Cli, given: &Given) -> wgpu_nas::Result<ExitCode> {
        // No command: the main job, a short DARTS search with the defaults.
        let command = match cli.command {
            Some(c) => c,
            None => Cli::parse_from(["wgpu-nas", "search", "darts"]).command.expect("a command"),
        };
        match command {
            Command::Search(SearchCommand::Darts(args)) => search::darts(args, given),
            Command::Search(SearchCommand::Gdas(args)) => search::gdas(args, given),
            Command::Search(SearchCommand::PcDarts(args)) => search::pc_darts(args, given),
            Command::Search(SearchCommand::Enas(args)) => enas::search(args, given),
            Command::Train(args) => train::train(args, given),
            Command::Experiment(args) => experiment::experiment(args),
            Command::Task(args) => experiment::task(args),
            Command::Leaderboard(args) => experiment::leaderboard(args),
            Command::Bench(BenchCommand::Darts(args)) => bench_darts::darts(args),
            Command::Bench(BenchCommand::Enas(args)) => enas::bench(args),
            Command::Bench(BenchCommand::Demo(args)) => bench::demo(args),
            Command::Derive { run, rule } => search::derive(&run, rule),
            Command::Export { genotype: Some(genotype), format, .. } => search::export(&genotype, format),
            Command::Export { weights: Some(run), format, output, .. } => search::export_weights(&run, format, output),
            Command::Export { .. } => {
                Err(wgpu_nas::Error::Config("export needs --genotype FILE or --weights RUN_DIR".into()))
            }
            Command::CheckFixtures { dir, verbose } => {
                let gpu = Gpu::new()?;
                out::line(format_args!("adapter: {}", gpu.adapter()))?;
                let mut written = Ok(());
                let reports = fixtures::run_dir(&gpu, &dir, |r| {
                    let mut text = format!("{r}\n");
                    if verbose {
                        for c in &r.comparisons {
                            text += &format!("      {:<40} max |err| {:.3e}\n", c.what, c.max_abs_err);
                        }
                    }
                    if written.is_ok() {
                        written = out::text_raw(&text);
                    }
                })?;
                written?;
                let passed = reports.iter().filter(|r| r.passed()).count();
                let failed = reports.len() - passed;
                out::line(format_args!("{passed} passed, {failed} failed"))?;
                Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
            }
            Command::Devices => {
                let adapters = pollster::block_on(wgpu_nas::gpu::list_adapters())?;
                if adapters.is_empty() {
                    out::line(format_args!(
                        "no adapters found; on Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1"
                    ))?;
                }
                for (i, (a, l)) in adapters.into_iter().enumerate() {
                    out::line(format_args!("{i}: {a}"))?;
                    out::line(format_args!(
                        "    max storage binding {} MiB, storage buffers/stage {}, invocations/workgroup {}, workgroup memory {} KiB",
                        l.max_storage_buffer_binding_size >> 20,
                        l.max_storage_buffers_per_shader_stage,
                        l.max_compute_invocations_per_workgroup,
                        l.max_compute_workgroup_storage_size >> 10
                    ))?;
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

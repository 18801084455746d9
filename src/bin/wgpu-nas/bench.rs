//! `wgpu-nas bench demo`: the browser demo's search (`wgpu_nas::demo`) timed natively, for the
//! same settings as the page, so that its steps per second compare with the browser's.

use std::process::ExitCode;
use std::time::Instant;

use crate::out;
use clap::Args;
use wgpu_nas::demo::{Algorithm, Demo, DemoConfig};
use wgpu_nas::{Gpu, Result};

#[derive(Args, Debug)]
pub struct BenchDemoArgs {
    /// The page's settings as JSON (any DemoConfig key, e.g. '{"channels":2,"image_size":7}');
    /// the default is the page's default.
    #[arg(long, default_value = "{}")]
    config: String,
    /// Timed steps (DARTS) or units (ENAS: a shared-weight step or a controller update), after
    /// one untimed warm-up step.
    #[arg(long, default_value_t = 3)]
    steps: usize,
}

pub fn demo(args: BenchDemoArgs) -> Result<ExitCode> {
    let config = DemoConfig::from_json(&args.config)?;
    let gpu = Gpu::new()?;
    let mut demo = Demo::new(&gpu, config)?;
    out::line(format_args!("adapter: {}", gpu.adapter()))?;
    out::line(format_args!("settings: {}", serde_json::to_string(&demo.info().config)?))?;
    // The first step compiles every pipeline; the page's speed counter includes it too.
    let started = Instant::now();
    let before = pollster::block_on(demo.run(1))?;
    let warm_up = started.elapsed().as_secs_f64();
    let dispatches = gpu.dispatches();
    let started = Instant::now();
    let after = pollster::block_on(demo.run(args.steps))?;
    let seconds = started.elapsed().as_secs_f64();
    // DARTS and GDAS advance in bi-level steps, ENAS in shared-weight steps and controller updates.
    let (done, unit) = match demo.info().algorithm {
        Algorithm::Darts | Algorithm::Gdas => ((after.step - before.step) as f64, "step"),
        Algorithm::Enas => {
            let updates = after.enas.as_ref().map_or(0, |e| e.updates.len());
            ((after.step - before.step) as f64 + updates as f64, "unit")
        }
    };
    out::line(format_args!(
        "first {unit} (compiles the pipelines) {warm_up:.2} s; then {done} {unit}s in {seconds:.2} s: {:.3} {unit}s/s, \
         {:.0} dispatches per {unit}",
        done / seconds,
        (gpu.dispatches() - dispatches) as f64 / done.max(1.0)
    ))?;
    Ok(ExitCode::SUCCESS)
}

//! `wgpu-nas bench darts`: the search step of a DARTS-family method (`--method darts|gdas`)
//! timed on synthetic data of any shape (no data set needed), with the step's dispatches,
//! submissions, peak GPU memory and FLOPs; `--profile` breaks one step down by kernel and sets
//! each against what this adapter attains.

use std::process::ExitCode;
use std::time::Instant;

use crate::out;
use clap::{Args, ValueEnum};
use serde::Serialize;
use wgpu_nas::darts::gdas::Gumbel;
use wgpu_nas::darts::{Architect, Order, PartialChannels, Relaxation, SearchConfig, SupernetSearch};
use wgpu_nas::data::Dataset;
use wgpu_nas::gpu::KernelTime;
use wgpu_nas::ops::conv::{conv2d, Conv2d};
use wgpu_nas::rng::Rng;
use wgpu_nas::space::SearchSpace;
use wgpu_nas::{Error, Gpu, Result, Tensor, Tuning};

/// The methods of the DARTS family that `bench darts` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchMethod {
    /// Every op of every edge, weighted by softmax(alphas).
    Darts,
    /// One Gumbel-softmax-sampled op per edge (the temperature of the first epoch, 10).
    Gdas,
    /// PC-DARTS: 1/K of each edge's channels through its mixed op, edge normalisation (the DARTS
    /// settings otherwise, architecture steps from the first).
    PcDarts,
}

#[derive(Args, Debug)]
pub struct BenchDartsArgs {
    #[arg(long, value_enum, default_value_t = SearchMethod::Darts)]
    method: SearchMethod,
    /// PC-DARTS's K (with --method pc-darts): 1/K of each edge's channels go through its op.
    #[arg(long, default_value_t = 4)]
    partial_channels: usize,
    /// 1: first-order alpha gradient; 2: unrolled (second order; DARTS and PC-DARTS).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    order: u8,
    /// Initial channels C (16 in the paper).
    #[arg(long, default_value_t = 8)]
    init_channels: usize,
    /// Cells (8 in the paper).
    #[arg(long, default_value_t = 5)]
    layers: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Candidate operations, comma-separated (default: the 8 DARTS primitives).
    #[arg(long, value_delimiter = ',')]
    ops: Option<Vec<String>>,
    /// Side of the square synthetic images (CIFAR: 32).
    #[arg(long, default_value_t = 32)]
    image_size: usize,
    #[arg(long, default_value_t = 3)]
    in_channels: usize,
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// Timed steps, after the warm-up steps.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Untimed steps first: the first compiles every pipeline, the second fills the caches.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Break one more step down by kernel (replayed per kernel class).
    #[arg(long)]
    profile: bool,
    /// One JSON line instead of the table.
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Other kernel shapes than this adapter's, as field=value pairs, e.g.
    /// `depthwise_rows=2,pointwise_uniform_weights=false` (every choice computes the same values).
    #[arg(long, default_value = "")]
    tuning: String,
    /// Time a second set of kernel shapes (field=value pairs, as --tuning) in the same run,
    /// alternating with --tuning's step by step, so that a host whose speed drifts biases
    /// neither: an A/B of two tunings (each gets --warmup and --steps).
    #[arg(long)]
    against: Option<String>,
}

#[derive(Serialize)]
struct Report {
    adapter: String,
    /// The kernel shapes used (with `--tuning` applied).
    tuning: Tuning,
    method: SearchMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_channels: Option<usize>,
    order: u8,
    init_channels: usize,
    layers: usize,
    batch_size: usize,
    image_size: usize,
    in_channels: usize,
    ops: usize,
    steps: usize,
    /// Seconds per step: whole step, then each half.
    median_s: f64,
    min_s: f64,
    max_s: f64,
    arch_median_s: f64,
    weight_median_s: f64,
    dispatches_per_step: f64,
    submissions_per_step: f64,
    readbacks_per_step: f64,
    peak_gpu_bytes: u64,
    flops_per_step: f64,
    gflops: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<Profile>,
    /// `--against`'s steps, timed in alternation with these.
    #[serde(skip_serializing_if = "Option::is_none")]
    against: Option<Against>,
}

#[derive(Serialize)]
struct Against {
    tuning: Tuning,
    median_s: f64,
    min_s: f64,
    max_s: f64,
    /// The median over step pairs of its step's time over this tuning's (the pairs alternate
    /// which goes first).
    median_ratio: f64,
}

#[derive(Serialize)]
struct Profile {
    /// FLOP/s of a large pointwise convolution (this crate's tuned matrix product).
    attainable_flops: f64,
    /// Bytes/s of a 64 MiB buffer copy.
    attainable_bytes: f64,
    /// Sum of the replayed kernel times (one step).
    replay_s: f64,
    kernels: Vec<KernelTime>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Random images and labels of the requested shape: enough for both halves' batches.
fn synthetic(args: &BenchDartsArgs, rng: &mut Rng) -> Result<Dataset> {
    let n = 4 * args.batch_size.max(1);
    let len = n * args.in_channels * args.image_size * args.image_size;
    let images = (0..len).map(|_| (rng.next_u64() & 0xff) as u8).collect();
    let labels = (0..n).map(|_| rng.below(args.classes.max(1)) as u32).collect();
    let names = (0..args.classes).map(|c| format!("class {c}")).collect();
    let (c, s) = (args.in_channels, args.image_size);
    Dataset::new("synthetic", images, labels, c, s, s, args.classes, names)
}

pub fn darts(args: BenchDartsArgs) -> Result<ExitCode> {
    match args.method {
        SearchMethod::Darts => bench::<Architect>(args, SearchConfig::darts),
        SearchMethod::Gdas => bench::<Gumbel>(args, SearchConfig::gdas),
        SearchMethod::PcDarts => bench::<Architect>(args, SearchConfig::darts),
    }
}

/// Times the step of `R`, from the settings `defaults` gives with the options applied.
fn bench<R: Relaxation>(args: BenchDartsArgs, defaults: fn(usize, usize) -> SearchConfig) -> Result<ExitCode> {
    if args.steps == 0 {
        return Err(Error::Config("--steps must be at least 1".into()));
    }
    let gpu = Gpu::new()?;
    gpu.set_tuning(gpu.tuning().with(&args.tuning)?)?;
    check_binding_limit(&gpu, &args)?;
    let mut rng = Rng::new(args.seed);
    let data = synthetic(&args, &mut rng)?;
    let mut config = defaults(args.in_channels, args.classes);
    config.architect.order = if args.order == 2 { Order::Second } else { Order::First };
    config.network.channels = args.init_channels;
    config.network.layers = args.layers;
    if let Some(ops) = &args.ops {
        let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
        config.network.space = SearchSpace::with_ops(&ops)?;
    }
    if args.method == SearchMethod::PcDarts {
        config.network.partial = Some(PartialChannels { k: args.partial_channels, ..PartialChannels::pc_darts() });
    }
    config.batch_size = args.batch_size;
    config.epochs = 1;
    config.steps_per_epoch = Some(args.warmup + args.steps + 1);
    config.log_every = args.warmup + args.steps + 2; // no metrics readback while timing
    config.seed = args.seed;
    let ops = config.network.space.num_ops();
    // The method alone: its step, without the run loop's metrics ring.
    let mut search = SupernetSearch::<R>::new(&gpu, config, &data)?;
    if !args.json {
        out::line(format_args!("adapter: {}", gpu.adapter()))?;
        out::line(format_args!("tuning: {:?}", gpu.tuning()))?;
        out::line(format_args!(
            "{} {} order, C={}, {} cells, batch {}, {}x{}x{} images, {ops} ops: {} warm-up + {} timed steps",
            match args.method {
                SearchMethod::PcDarts => format!("PC-DARTS (K={})", args.partial_channels),
                _ => R::KIND.to_uppercase(),
            },
            if args.order == 2 { "second" } else { "first" },
            args.init_channels,
            args.layers,
            args.batch_size,
            args.in_channels,
            args.image_size,
            args.image_size,
            args.warmup,
            args.steps
        ))?;
    }
    let base = gpu.tuning();
    let against = args.against.as_deref().map(|a| base.with(a)).transpose()?;
    for _ in 0..args.warmup {
        for t in std::iter::once(base).chain(against) {
            gpu.set_tuning(t)?;
            pollster::block_on(search.step_with(0, &mut || {}))?;
            gpu.synchronize();
        }
    }
    check_fault(&gpu)?;
    gpu.reset_peak_memory();
    // Dispatches, submissions, readbacks and FLOPs of --tuning's steps.
    let counters = |gpu: &Gpu| [gpu.dispatches(), gpu.submissions(), gpu.readbacks(), gpu.flops()];
    let mut counts = [0u64; 4];
    let (mut whole, mut arch, mut weight, mut other) = (vec![], vec![], vec![], vec![]);
    for i in 0..args.steps {
        // The other tuning's step before this one's in even pairs, after it in odd ones, so that
        // neither gains from going second; its counts are not this one's.
        let other_first = i % 2 == 0;
        if other_first {
            time_other(&gpu, &mut search, base, against, &mut other)?;
        }
        let before = counters(&gpu);
        let started = Instant::now();
        let mut half = 0.0;
        pollster::block_on(search.step_with(0, &mut || {
            gpu.synchronize();
            half = started.elapsed().as_secs_f64();
        }))?;
        gpu.synchronize();
        let t = started.elapsed().as_secs_f64();
        for (c, (now, then)) in counts.iter_mut().zip(counters(&gpu).into_iter().zip(before)) {
            *c += now - then;
        }
        whole.push(t);
        // DARTS updates the alphas first, GDAS second.
        let (first, second) = if R::ALPHAS_FIRST { (&mut arch, &mut weight) } else { (&mut weight, &mut arch) };
        first.push(half);
        second.push(t - half);
        if !other_first {
            time_other(&gpu, &mut search, base, against, &mut other)?;
        }
    }
    check_fault(&gpu)?;
    let per = |d: u64| d as f64 / args.steps as f64;
    // The split between the halves adds one submission per step; it is not the step's own.
    let [dispatches, submissions, readbacks, flops] = counts;
    let submissions = per(submissions) - 1.0;
    let flops = per(flops);
    let med = median(&whole);
    let mut report = Report {
        adapter: gpu.adapter().to_string(),
        tuning: gpu.tuning(),
        method: args.method,
        partial_channels: (args.method == SearchMethod::PcDarts).then_some(args.partial_channels),
        order: args.order,
        init_channels: args.init_channels,
        layers: args.layers,
        batch_size: args.batch_size,
        image_size: args.image_size,
        in_channels: args.in_channels,
        ops,
        steps: args.steps,
        median_s: med,
        min_s: whole.iter().copied().fold(f64::INFINITY, f64::min),
        max_s: whole.iter().copied().fold(0.0, f64::max),
        arch_median_s: median(&arch),
        weight_median_s: median(&weight),
        dispatches_per_step: per(dispatches),
        submissions_per_step: submissions,
        readbacks_per_step: per(readbacks),
        peak_gpu_bytes: gpu.memory().peak,
        flops_per_step: flops,
        gflops: flops / med / 1e9,
        profile: None,
        against: against.map(|tuning| Against {
            tuning,
            median_s: median(&other),
            min_s: other.iter().copied().fold(f64::INFINITY, f64::min),
            max_s: other.iter().copied().fold(0.0, f64::max),
            median_ratio: median(&other.iter().zip(&whole).map(|(o, w)| o / w).collect::<Vec<_>>()),
        }),
    };
    if args.profile {
        gpu.start_trace();
        pollster::block_on(search.step_with(0, &mut || {}))?;
        let trace = gpu.take_trace();
        gpu.synchronize();
        let kernels = gpu.replay(&trace, 2);
        check_fault(&gpu)?;
        let (attainable_flops, attainable_bytes) = attainable(&gpu)?;
        let replay_s = kernels.iter().map(|k| k.seconds).sum();
        report.profile = Some(Profile { attainable_flops, attainable_bytes, replay_s, kernels });
    }
    if args.json {
        out::line(serde_json::to_string(&report)?)?;
    } else {
        print_report(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// With `--against`'s tuning, one step of it timed into `other`; `base` is set again afterwards.
fn time_other<R: Relaxation>(
    gpu: &Gpu,
    search: &mut SupernetSearch<R>,
    base: Tuning,
    against: Option<Tuning>,
    other: &mut Vec<f64>,
) -> Result<()> {
    let Some(b) = against else { return Ok(()) };
    gpu.set_tuning(b)?;
    let started = Instant::now();
    pollster::block_on(search.step_with(0, &mut || {}))?;
    gpu.synchronize();
    other.push(started.elapsed().as_secs_f64());
    gpu.set_tuning(base)
}

/// The largest activation, the first cell's output [B, 4C, H, W], must fit one storage binding;
/// checked before any data is made, so an impossible size fails at once with what to change.
fn check_binding_limit(gpu: &Gpu, args: &BenchDartsArgs) -> Result<()> {
    let bytes = 4 * (args.batch_size * 4 * args.init_channels * args.image_size * args.image_size) as u64;
    let limit = gpu.limits().max_storage_buffer_binding_size;
    if bytes > limit {
        return Err(Error::Config(format!(
            "a [{}, {}, {}, {}] activation is {bytes} bytes, over this adapter's storage-binding limit of {limit} bytes; \
             use a smaller --batch-size, --init-channels or --image-size",
            args.batch_size,
            4 * args.init_channels,
            args.image_size,
            args.image_size
        )));
    }
    Ok(())
}

fn check_fault(gpu: &Gpu) -> Result<()> {
    match gpu.take_fault() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What this adapter reaches: FLOP/s of a 256 -> 256 pointwise convolution over 64x64 planes
/// (a 256 x 256 x 4096 matrix product through the register-blocked kernel), bytes/s of a
/// 64 MiB buffer copy (read and write counted).
fn attainable(gpu: &Gpu) -> Result<(f64, f64)> {
    let mut rng = Rng::new(1);
    let (c, hw) = (256, 64);
    let x = Tensor::from_slice(gpu, &[1, c, hw, hw], &rng.uniform_vec(c * hw * hw, -1.0, 1.0))?;
    let w = Tensor::from_slice(gpu, &[c, c, 1, 1], &rng.uniform_vec(c * c, -1.0, 1.0))?;
    let time = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
        f()?;
        gpu.synchronize();
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let started = Instant::now();
            f()?;
            gpu.synchronize();
            best = best.min(started.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let t = time(&|| gpu.no_grad(|| conv2d(&x, &w, None, Conv2d::default()).map(drop)))?;
    let flops = 2.0 * (c * c * hw * hw) as f64 / t;
    let n = 16 << 20; // 64 MiB of f32
    let a = Tensor::zeros(gpu, &[n])?;
    let b = Tensor::zeros(gpu, &[n])?;
    let t = time(&|| b.copy_from(&a))?;
    Ok((flops, 2.0 * 4.0 * n as f64 / t))
}

fn print_report(r: &Report) -> Result<()> {
    out::line(format_args!(
        "step: median {:.3} s (min {:.3}, max {:.3}); architecture half {:.3} s, weight half {:.3} s",
        r.median_s, r.min_s, r.max_s, r.arch_median_s, r.weight_median_s
    ))?;
    out::line(format_args!(
        "per step: {:.0} dispatches, {:.0} submissions, {:.0} readbacks, {:.2} GFLOP ({:.2} GFLOP/s); peak GPU memory {:.1} MiB",
        r.dispatches_per_step,
        r.submissions_per_step,
        r.readbacks_per_step,
        r.flops_per_step / 1e9,
        r.gflops,
        r.peak_gpu_bytes as f64 / 1048576.0
    ))?;
    if let Some(a) = &r.against {
        out::line(format_args!(
            "against {:?}, its steps alternating with these: median {:.3} s (min {:.3}, max {:.3}); \
             its step over this tuning's in the same pair: {:.3} (median of {} pairs, each order in turn)",
            a.tuning, a.median_s, a.min_s, a.max_s, a.median_ratio, r.steps
        ))?;
    }
    let Some(p) = &r.profile else { return Ok(()) };
    out::line(format_args!(
        "\nprofile of one step, replayed per kernel class ({:.3} s in all); attainable here: {:.2} GFLOP/s \
         (pointwise conv 256x256x4096), {:.2} GB/s (64 MiB copy)",
        p.replay_s,
        p.attainable_flops / 1e9,
        p.attainable_bytes / 1e9
    ))?;
    out::line(format_args!(
        "{:<34} {:>6} {:>9} {:>6} {:>9} {:>7} {:>8} {:>7}  class",
        "kernel", "calls", "ms", "share", "GFLOP/s", "%peak", "GB/s", "%bw"
    ))?;
    // Entry points first (summed over their classes), then the 25 slowest classes.
    let mut by_kernel: Vec<(String, usize, f64, u64, u64)> = vec![];
    for k in &p.kernels {
        match by_kernel.iter_mut().find(|e| e.0 == k.kernel) {
            Some(e) => {
                e.1 += k.calls;
                e.2 += k.seconds;
                e.3 += k.flops;
                e.4 += k.bytes;
            }
            None => by_kernel.push((k.kernel.clone(), k.calls, k.seconds, k.flops, k.bytes)),
        }
    }
    by_kernel.sort_by(|a, b| b.2.total_cmp(&a.2));
    let row = |name: &str, calls: usize, s: f64, flops: u64, bytes: u64, class: &str| {
        let gf = flops as f64 / s;
        let bw = bytes as f64 / s;
        let (gf_s, peak_s) = if flops > 0 {
            (format!("{:.2}", gf / 1e9), format!("{:.1}%", 100.0 * gf / p.attainable_flops))
        } else {
            ("-".into(), "-".into())
        };
        out::line(format_args!(
            "{:<34} {:>6} {:>9.2} {:>5.1}% {:>9} {:>7} {:>8.2} {:>6.1}%  {class}",
            name,
            calls,
            1e3 * s,
            100.0 * s / p.replay_s,
            gf_s,
            peak_s,
            bw / 1e9,
            100.0 * bw / p.attainable_bytes
        ))
    };
    for (name, calls, s, flops, bytes) in &by_kernel {
        row(name, *calls, *s, *flops, *bytes, "(all)")?;
    }
    out::line("\nslowest kernel classes (GB/s counts every bound buffer once):")?;
    for k in p.kernels.iter().take(25) {
        row(&k.kernel, k.calls, k.seconds, k.flops, k.bytes, &k.class)?;
    }
    Ok(())
}

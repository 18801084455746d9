//! An experiment's runs as tasks for cluster engines: `experiment --plan-only` writes
//! plan.jsonl (one line per run), `--slurm` a submit.sbatch of two job arrays, `--kubernetes`
//! an Indexed Job; `task` runs one line of a plan; `leaderboard` merges the finished runs of
//! any number of copies of an experiment directory into one table.
//!
//! A task writes only inside its own run directory (the plan, the random genotypes and
//! experiment.json are written once, by `experiment`), through the same atomic checkpoints as
//! every run: killed, it loses at most the epoch it was in, and started again it resumes there.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wgpu_nas::durable::write_atomic;
use wgpu_nas::run_dir::CHECKPOINT;
use wgpu_nas::{Error, Result};

use super::results::collect;
use super::{check_retrained, genotype_file, job_options, jobs, path, run_job, state, write_results, Job, Spec};
use super::{State, SPEC};
use crate::out;
use crate::search::{io, load};

/// The plan's file name in the experiment directory.
pub const PLAN: &str = "plan.jsonl";
/// The version of plan.jsonl's lines this build writes and reads.
pub const PLAN_VERSION: u64 = 1;
/// `task`'s exit code when a retraining's search has not finished (EX_TEMPFAIL of sysexits.h):
/// the engine may run the task again later.
pub const EXIT_WAIT: u8 = 75;

/// `experiment`'s options for running on a cluster engine instead of in this process.
#[derive(Args, Debug, Default)]
pub struct ClusterArgs {
    /// Write the experiment directory and its plan.jsonl (one line per run) and run nothing;
    /// `wgpu-nas task --plan DIR/plan.jsonl --index I` then runs line I.
    #[arg(long)]
    plan_only: bool,
    /// As --plan-only, and write DIR/submit.sbatch: `bash DIR/submit.sbatch` submits the runs
    /// as two Slurm job arrays.
    #[arg(long)]
    slurm: bool,
    /// As --plan-only, and write DIR/kubernetes-job.json: a Kubernetes Indexed Job of every run.
    #[arg(long)]
    kubernetes: bool,
    /// Slurm partition (default: the cluster's default partition).
    #[arg(long)]
    partition: Option<String>,
    /// Slurm account to charge.
    #[arg(long)]
    account: Option<String>,
    /// Time limit of each task, in Slurm's format (e.g. 2:00:00 or 1-00:00:00).
    #[arg(long)]
    time_limit: Option<String>,
    /// Tasks running at once (Slurm's %M of --array, the Job's parallelism).
    #[arg(long, default_value_t = 4)]
    max_parallel: usize,
    /// GPUs per task (Slurm --gres=gpu:N, the container's nvidia.com/gpu limit); 0 = none.
    #[arg(long, default_value_t = 1)]
    gpus_per_task: usize,
    /// The container image of the Kubernetes Job (holding wgpu-nas on its PATH).
    #[arg(long, default_value = "wgpu-nas:latest")]
    image: String,
    /// The PersistentVolumeClaim that holds the experiment directory, mounted at the same path
    /// in every pod of the Kubernetes Job.
    #[arg(long, default_value = "wgpu-nas-experiments")]
    volume_claim: String,
}

impl ClusterArgs {
    pub(super) fn wanted(&self) -> bool {
        self.plan_only || self.slurm || self.kubernetes
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.max_parallel == 0 {
            return Err(Error::Config("--max-parallel 0: at least one task must run at a time".into()));
        }
        for (what, v) in
            [("--partition", &self.partition), ("--account", &self.account), ("--time-limit", &self.time_limit)]
        {
            if let Some(v) = v {
                if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == '\'' || c == '"') {
                    return Err(Error::Config(format!("{what} {v:?}: give a name without spaces or quotes")));
                }
            }
        }
        Ok(())
    }
}

/// One line of plan.jsonl: one run of the experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLine {
    pub version: u64,
    pub index: usize,
    /// The plan's number of lines (a truncated file is told by it).
    pub runs: usize,
    /// "search" or "train".
    pub kind: String,
    /// The search method ("darts", "gdas", ...), or "random" for a random genotype's retraining.
    pub method: String,
    pub seed: u64,
    /// The run's directory, relative to the experiment directory.
    pub run_dir: String,
    /// The command the task runs, relative to the experiment directory: `wgpu-nas ARGV...`
    /// (a restart adds nothing but `--resume RUN_DIR` in place of the options).
    pub argv: Vec<String>,
    /// The indices of the runs this one needs finished first (a retraining, its search).
    pub waits_for: Vec<usize>,
}

/// The plan of `spec`'s runs, as plan.jsonl holds it.
fn plan_lines(spec: &Spec, plan: &[Job]) -> Vec<PlanLine> {
    plan.iter()
        .enumerate()
        .map(|(index, job)| {
            let rel = Path::new("");
            let (kind, method, seed, waits_for) = match job {
                Job::Search { method, seed } => ("search", method.name(), *seed, vec![]),
                Job::Train { method, seed } => {
                    let search = plan.iter().position(
                        |j| matches!((j, method), (Job::Search { method: m, seed: s }, Some(n)) if m == n && s == seed),
                    );
                    ("train", method.map_or("random", |m| m.name()), *seed, search.into_iter().collect())
                }
            };
            let mut argv: Vec<String> = match job {
                Job::Search { method, .. } => {
                    let sub = if method.name() == "darts2" { "darts" } else { method.name() };
                    vec!["search".into(), sub.into()]
                }
                Job::Train { .. } => vec!["train".into()],
            };
            argv.extend(["--out".into(), job.name()]);
            argv.extend(job_options(rel, spec, job));
            PlanLine {
                version: PLAN_VERSION,
                index,
                runs: plan.len(),
                kind: kind.into(),
                method: method.into(),
                seed,
                run_dir: job.name(),
                argv,
                waits_for,
            }
        })
        .collect()
}

/// `experiment --plan-only/--slurm/--kubernetes`: plan.jsonl and the engines' job files.
pub(super) fn write_plan(dir: &Path, spec: &Spec, plan: &[Job], args: &ClusterArgs) -> Result<ExitCode> {
    let lines = plan_lines(spec, plan);
    let mut text = String::new();
    for l in &lines {
        text += &serde_json::to_string(l)?;
        text.push('\n');
    }
    let plan_file = dir.join(PLAN);
    write_atomic(&plan_file, text.as_bytes())?;
    out::line(format_args!("plan of {} runs in {}", lines.len(), plan_file.display()))?;
    // The job files name the experiment by its absolute path: the tasks run elsewhere.
    let abs = std::fs::canonicalize(dir).map_err(io(dir))?;
    if args.slurm {
        let file = dir.join("submit.sbatch");
        let logs = dir.join("slurm");
        std::fs::create_dir_all(&logs).map_err(io(&logs))?;
        let bin = std::env::current_exe().map_err(|e| Error::Config(format!("the path of wgpu-nas: {e}")))?;
        write_atomic(&file, sbatch(&abs, &bin, &lines, args).as_bytes())?;
        out::line(format_args!("submit the runs with: bash {}", file.display()))?;
    }
    if args.kubernetes {
        let file = dir.join("kubernetes-job.json");
        write_atomic(&file, serde_json::to_string_pretty(&job_manifest(&abs, &lines, args))?.as_bytes())?;
        out::line(format_args!("start the runs with: kubectl create -f {}", file.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Slurm's --array list of `indices`: "0-1,4-5".
fn array_list(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { indices[i].to_string() } else { format!("{}-{}", indices[i], indices[j]) });
        i = j + 1;
    }
    parts.join(",")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// submit.sbatch: one script that is both the task (run by Slurm with SLURM_ARRAY_TASK_ID set)
/// and, run by hand with bash, the submission of the two arrays.
fn sbatch(dir: &Path, bin: &Path, lines: &[PlanLine], args: &ClusterArgs) -> String {
    // The runs that wait for nothing (the searches and the random genotypes' retrainings) form
    // the first array; the searches' retrainings the second, which waits with afterok for the
    // whole first array. Not aftercorr: it pairs task i of one array with task i of the other,
    // and the arrays differ in size and in order (one search's retraining is not at its
    // search's index), so every retraining waits for every search instead (and a failed search
    // leaves its retrainings pending, `task` exits 75 should one start early anyway).
    let free: Vec<usize> = lines.iter().filter(|l| l.waits_for.is_empty()).map(|l| l.index).collect();
    let waiting: Vec<usize> = lines.iter().filter(|l| !l.waits_for.is_empty()).map(|l| l.index).collect();
    let script = dir.join("submit.sbatch");
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# Written by `wgpu-nas experiment --slurm` for the experiment in {}.\n# Submit it with: bash {}\n# \
         (it submits itself twice, as the two job arrays below, and prints their job ids).\n",
        dir.display(),
        script.display()
    );
    s += "#SBATCH --job-name=wgpu-nas\n";
    s += &format!("#SBATCH --output={}/slurm/%A_%a.out\n", dir.display());
    s += "#SBATCH --ntasks=1\n";
    if args.gpus_per_task > 0 {
        s += &format!("#SBATCH --gres=gpu:{}\n", args.gpus_per_task);
    }
    if let Some(p) = &args.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(a) = &args.account {
        s += &format!("#SBATCH --account={a}\n");
    }
    if let Some(t) = &args.time_limit {
        s += &format!("#SBATCH --time={t}\n");
    }
    s += "set -euo pipefail\n";
    s += "if [ -z \"${SLURM_ARRAY_TASK_ID:-}\" ]; then\n";
    s += "    # Searches and random retrainings: nothing to wait for.\n";
    s +=
        &format!("    first=$(sbatch --parsable --array={}%{} {})\n", array_list(&free), args.max_parallel, q(&script));
    s += "    first=${first%%;*}\n";
    if waiting.is_empty() {
        s += "    echo \"$first\"\n";
    } else {
        s += "    # The searches' retrainings: after every task of the first array ended with exit code 0.\n";
        s += &format!(
            "    second=$(sbatch --parsable --array={}%{} --dependency=afterok:\"$first\" {})\n",
            array_list(&waiting),
            args.max_parallel,
            q(&script)
        );
        s += "    echo \"$first ${second%%;*}\"\n";
    }
    s += "    exit 0\nfi\n";
    s += &format!(
        "exec {} task --plan {} --index \"$SLURM_ARRAY_TASK_ID\"\n",
        q(bin),
        q(&dir.join(super::cluster::PLAN))
    );
    s
}

/// The Kubernetes Indexed Job (batch/v1) of every run: index I runs line I of the plan, read
/// by `task` from JOB_COMPLETION_INDEX; a retraining started before its search ended exits 75
/// and its pod is retried (backoffLimit) until the search is done.
fn job_manifest(dir: &Path, lines: &[PlanLine], args: &ClusterArgs) -> Value {
    let mut container = json!({
        "name": "task",
        "image": args.image,
        "command": ["wgpu-nas", "task", "--plan", dir.join(PLAN).display().to_string()],
        "volumeMounts": [{"name": "experiment", "mountPath": dir.display().to_string()}],
    });
    if args.gpus_per_task > 0 {
        container["resources"] = json!({"limits": {"nvidia.com/gpu": args.gpus_per_task}});
    }
    let name = dir.file_name().map_or("experiment".into(), |n| n.to_string_lossy().to_lowercase());
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    // A DNS-1123 label, short enough for the pods' names (the Job's name, the index, a suffix).
    let job_name: String = format!("wgpu-nas-{}", name.trim_matches('-')).chars().take(52).collect();
    let job_name = job_name.trim_end_matches('-');
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name},
        "spec": {
            "completionMode": "Indexed",
            "completions": lines.len(),
            "parallelism": args.max_parallel,
            // Every retraining may wait a few times for its search (exit 75), with the Job's
            // growing back-off between tries.
            "backoffLimit": 6 * lines.len(),
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [{"name": "experiment", "persistentVolumeClaim": {"claimName": args.volume_claim}}],
                },
            },
        },
    })
}

/// `wgpu-nas task`'s options.
#[derive(Args, Debug)]
pub struct TaskArgs {
    /// The plan.jsonl that `experiment --plan-only` (or --slurm, --kubernetes) wrote.
    #[arg(long)]
    plan: PathBuf,
    /// The line of the plan to run, from 0 (default: $JOB_COMPLETION_INDEX, then
    /// $SLURM_ARRAY_TASK_ID).
    #[arg(long)]
    index: Option<usize>,
    /// Print only the run's result.
    #[arg(long)]
    quiet: bool,
    /// The adapter to run on: its number in `wgpu-nas devices` (sets WGPU_ADAPTER_INDEX; several
    /// tasks on one multi-GPU node each take their own). Default: WGPU_ADAPTER_INDEX, else
    /// WGPU_ADAPTER_NAME (a part of the name), else the first hardware adapter.
    #[arg(long)]
    adapter: Option<usize>,
}

/// The experiment directory of `plan_file`, its spec, its runs and its lines, checked against
/// each other: a plan of another version, truncated, edited or of another experiment is refused.
fn read_plan(plan_file: &Path) -> Result<(PathBuf, Spec, Vec<Job>, Vec<PlanLine>)> {
    let dir = match plan_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let text = std::fs::read_to_string(plan_file).map_err(io(plan_file))?;
    let spec = read_spec(&dir)?;
    let bad = |msg: String| Error::File { path: path(plan_file), msg };
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).map_err(|e| {
            bad(format!("line {} is not JSON ({e}): truncated? write it again with --plan-only", i + 1))
        })?;
        if v.get("version").and_then(Value::as_u64) != Some(PLAN_VERSION) {
            return Err(bad(format!(
                "line {} is of plan version {}, this wgpu-nas reads version {PLAN_VERSION}; write the plan again with \
                 this wgpu-nas's experiment --plan-only",
                i + 1,
                v.get("version").unwrap_or(&Value::Null)
            )));
        }
        let l: PlanLine = serde_json::from_value(v).map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
        lines.push(l);
    }
    let plan = jobs(&spec);
    let expected = plan_lines(&spec, &plan);
    if lines.len() != expected.len() || lines.iter().any(|l| l.runs != expected.len()) {
        return Err(bad(format!(
            "holds {} of the {} runs of the experiment in {}: truncated? write it again with experiment --plan-only",
            lines.len(),
            expected.len(),
            dir.display()
        )));
    }
    if let Some((l, _)) = lines.iter().zip(&expected).find(|(a, b)| a != b) {
        return Err(bad(format!(
            "line {} ({}) is not what {} asks for; write the plan again with experiment --plan-only",
            l.index + 1,
            l.run_dir,
            dir.join(SPEC).display()
        )));
    }
    Ok((dir, spec, plan, lines))
}

/// The spec of the experiment in `dir`, or why `dir` is not one.
fn read_spec(dir: &Path) -> Result<Spec> {
    let file = dir.join(SPEC);
    if !file.is_file() {
        return Err(Error::Config(format!(
            "{} is not an experiment directory (no {SPEC}); give the directory `wgpu-nas experiment --out` made",
            dir.display()
        )));
    }
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    serde_json::from_str(&text).map_err(|e| Error::File {
        path: path(&file),
        msg: format!("unreadable experiment record ({e}): of another wgpu-nas version?"),
    })
}

fn env_index() -> Result<Option<usize>> {
    for var in ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"] {
        if let Ok(v) = std::env::var(var) {
            return v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Error::Config(format!("{var}={v:?} is not a task index (0, 1, ...)")));
        }
    }
    Ok(None)
}

/// `wgpu-nas task`: runs line I of a plan (or skips it, finished; or resumes it, interrupted).
/// Exit code 75 when it is a retraining whose search has not finished.
pub fn task(args: TaskArgs) -> Result<ExitCode> {
    let (dir, spec, plan, lines) = read_plan(&args.plan)?;
    if let Some(n) = args.adapter {
        // Before any thread or GPU starts: the run's Gpu::new reads it.
        std::env::set_var("WGPU_ADAPTER_INDEX", n.to_string());
    }
    let index = match args.index {
        Some(i) => i,
        None => env_index()?.ok_or_else(|| {
            Error::Config("task needs --index I (or JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID set)".into())
        })?,
    };
    if index >= plan.len() {
        return Err(Error::Config(format!(
            "--index {index} is out of range: {} holds runs 0 to {}",
            args.plan.display(),
            plan.len() - 1
        )));
    }
    let (job, line) = (&plan[index], &lines[index]);
    for &w in &line.waits_for {
        let needed = dir.join(&lines[w].run_dir);
        if state(&needed)? != State::Finished {
            out::warn(format!(
                "{}: waits for {} (index {w}), not finished yet; run this task again after it (exit code {EXIT_WAIT})",
                line.run_dir,
                needed.display()
            ));
            return Ok(ExitCode::from(EXIT_WAIT));
        }
    }
    let run_dir = dir.join(job.name());
    if let Job::Train { method, seed } = job {
        let genotype = genotype_file(&dir, *method, *seed);
        if !genotype.is_file() {
            return Err(Error::Config(format!(
                "{} is missing: write the experiment directory again with experiment --plan-only",
                genotype.display()
            )));
        }
        if run_dir.join(CHECKPOINT).exists() {
            check_retrained(&run_dir, &genotype)?;
        }
    }
    let state = state(&run_dir)?;
    if !args.quiet {
        out::line(format_args!("[{index}] {}: {}", line.run_dir, state.doing()))?;
    }
    run_job(&dir, &spec, job, state, args.quiet)?;
    Ok(ExitCode::SUCCESS)
}

/// `wgpu-nas leaderboard`'s options.
#[derive(Args, Debug)]
pub struct LeaderboardArgs {
    /// Experiment directories: the one an experiment ran in, or copies of it from several
    /// machines (each run is read from the first that holds it finished).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where to write results.json, results.md and results.png (default: the first DIR).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `wgpu-nas leaderboard`: one table of every finished run under `dirs`; exit code 1 when
/// some runs of the plan are finished in none of them (they are listed).
pub fn leaderboard(args: LeaderboardArgs) -> Result<ExitCode> {
    let spec = read_spec(&args.dirs[0])?;
    for d in &args.dirs[1..] {
        if read_spec(d)? != spec {
            return Err(Error::Config(format!(
                "{} and {} hold different experiments (their {SPEC} differ); give copies of one experiment",
                args.dirs[0].display(),
                d.display()
            )));
        }
    }
    let data = load(spec.dataset, spec.data_dir.as_deref())?;
    let plan = jobs(&spec);
    let results = collect(&args.dirs, &spec, &plan, &data)?;
    if results.accuracy_columns().iter().all(|(_, c)| c.is_empty()) {
        return Err(Error::Config(format!(
            "no retraining of the experiment is finished in {}; run its tasks first",
            args.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    }
    let out_dir = args.out.clone().unwrap_or_else(|| args.dirs[0].clone());
    std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
    write_results(&out_dir, &results)?;
    for m in &results.missing {
        out::warn(format!("not finished: {m}"));
    }
    out::line(format_args!("results in {}: results.json, results.md, results.png", out_dir.display()))?;
    Ok(if results.missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

//! What `search darts`, `search enas` and `train` share: the options of a run directory, a new
//! run's directory or a resumed one's, the data set recorded with a run, the settings a resume
//! may change, and what is said when a run stops.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wgpu_nas::checkpoint::Checkpoint;
use wgpu_nas::data::{Dataset, Fingerprint};
use wgpu_nas::run_dir::{RunDir, CONFIG};
use wgpu_nas::run_loop::{Method, RunLoop};
use wgpu_nas::{Error, Result};

use crate::out;
use crate::progress::Progress;
use crate::search::DatasetName;

/// The options every run command has.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run directory (default: runs/<method>-<seed>-<time>). It must be new or empty; one that
    /// holds an earlier run is refused unless --force.
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Replace the run in --out: the earlier run is moved aside to DIR.replaced-N, not deleted.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Continue the run in this directory from its last checkpoint, on the same data set. Only
    /// learning rates, --epochs, --eval-batches, --quiet and --json may change.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Print only the final result.
    #[arg(long)]
    pub quiet: bool,
    /// Print one JSON object per line (steps, epochs, result) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Set by `experiment`, not an option: each epoch's wall-clock seconds are appended to
    /// times.jsonl in the run directory (a log the checkpoint commits, so a resumed run's file
    /// holds the time of exactly the epochs it kept).
    #[arg(skip)]
    pub record_times: bool,
}

/// The log of each epoch's wall-clock seconds that [`RunArgs::record_times`] asks for.
pub const TIMES: &str = "times.jsonl";

impl RunArgs {
    /// Whether progress lines (text) are printed.
    pub fn chatty(&self) -> bool {
        !self.quiet && !self.json
    }

    /// --out, or `runs/<name>-<unix time>`.
    pub fn out_or(&self, name: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let t =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            PathBuf::from(format!("runs/{name}-{t}"))
        })
    }
}

/// The options given on the command line (not left at their defaults), by clap id, with the
/// text given.
#[derive(Debug, Default)]
pub struct Given(BTreeMap<String, String>);

impl Given {
    pub fn from_matches(m: &clap::ArgMatches) -> Given {
        // Derive's argument groups are named after their structs (`RunArgs`): not options.
        let given = m
            .ids()
            .filter(|id| !id.as_str().starts_with(|c: char| c.is_ascii_uppercase()))
            .filter(|id| m.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
            .map(|id| {
                let raw = m.try_get_raw(id.as_str()).ok().flatten().into_iter().flatten();
                let text: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
                (id.as_str().to_string(), text.join(","))
            })
            .collect();
        Given(given)
    }

    pub fn has(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }
}

/// `--learning-rate` for the clap id `learning_rate`.
fn flag(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

/// Options that a resume handles itself: the run's options and the data set's (checked by
/// content, see [`check_data`]).
const RUN_OPTIONS: [&str; 5] = ["resume", "quiet", "json", "dataset", "data_dir"];

/// A setting of a run command: its clap id and where it lands in the run's config (a JSON
/// pointer); `resumable` ones may change on resume.
pub struct Setting {
    pub id: &'static str,
    pub pointer: &'static str,
    pub resumable: bool,
}

/// The saved config of a resumed run with the resumable settings given on the command line
/// applied, and a line per change. Any other setting given with a value that differs from the
/// run's is an error that names it.
pub fn resumed_config(
    saved: &Value,
    fresh: &Value,
    given: &Given,
    settings: &[Setting],
) -> Result<(Value, Vec<String>)> {
    let resumable: Vec<String> = settings.iter().filter(|s| s.resumable).map(|s| flag(s.id)).collect();
    let mut config = saved.clone();
    let mut changed = Vec::new();
    for (id, text) in given.0.iter().filter(|(id, _)| !RUN_OPTIONS.contains(&id.as_str())) {
        // A setting may land in one of several places (ENAS: micro or macro model): the first
        // that the run's config has.
        let mut candidates = settings.iter().filter(|s| s.id == id).peekable();
        let first = candidates.peek().copied();
        let Some(s) = candidates.find(|s| saved.pointer(s.pointer).is_some()).or(first) else {
            return Err(Error::Config(format!("{} cannot be used with --resume", flag(id))));
        };
        let (old, new) = (saved.pointer(s.pointer), fresh.pointer(s.pointer));
        if old == new {
            continue;
        }
        let show = |v: Option<&Value>| match v {
            None | Some(Value::Null) => "(none)".to_string(),
            // Settings are f32: show 0.01, not the f64 0.009999999776482582.
            Some(Value::Number(n)) if n.is_f64() => format!("{}", n.as_f64().unwrap_or(f64::NAN) as f32),
            Some(v) => v.to_string(),
        };
        if !s.resumable {
            return Err(Error::Config(format!(
                "{} {text} differs from the resumed run (its {} is {}, this gives {}): a resumed run may change \
                 only {} and --quiet/--json; start a new run (--out) to change it",
                flag(id),
                &s.pointer[1..],
                show(old),
                show(new),
                resumable.join(", ")
            )));
        }
        let slot = config
            .pointer_mut(s.pointer)
            .ok_or_else(|| Error::Config(format!("the resumed run's config has no {}", s.pointer)))?;
        *slot = new.cloned().unwrap_or(Value::Null);
        changed.push(format!("{} {} (was {})", flag(id), show(new), show(old)));
    }
    Ok((config, changed))
}

/// Where a run's data comes from, recorded in its checkpoints.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataSource {
    pub dataset: DatasetName,
    pub data_dir: Option<PathBuf>,
    /// The splits the run reads (training set; and test set for retraining).
    pub splits: Vec<Fingerprint>,
}

impl DataSource {
    pub fn new(dataset: DatasetName, data_dir: Option<&Path>, splits: &[&Dataset]) -> DataSource {
        DataSource {
            dataset,
            data_dir: data_dir.map(Path::to_path_buf),
            splits: splits.iter().map(|d| d.fingerprint()).collect(),
        }
    }
}

/// The data set a resumed run loads: the one it was started with, unless --dataset or
/// --data-dir say otherwise (then [`check_data`] checks that the content is the same).
pub fn resumed_source(
    run: &RunDir,
    dataset: DatasetName,
    data_dir: Option<&Path>,
    given: &Given,
) -> Result<(DatasetName, Option<PathBuf>)> {
    let recorded: Option<DataSource> = serde_json::from_value(run.data().clone()).ok();
    let name = match (&recorded, given.has("dataset")) {
        (Some(r), false) => r.dataset,
        _ => dataset,
    };
    let dir = match (&recorded, given.has("data_dir")) {
        (Some(r), false) => r.data_dir.clone(),
        _ => data_dir.map(Path::to_path_buf),
    };
    Ok((name, dir))
}

/// Checks that a resumed run continues on the data it was started with (name, sizes and a
/// checksum of each split). Checkpoints of older versions record no data and pass.
pub fn check_data(run: &RunDir, now: &DataSource) -> Result<()> {
    let Ok(recorded) = serde_json::from_value::<DataSource>(run.data().clone()) else { return Ok(()) };
    for (was, is) in recorded.splits.iter().zip(&now.splits) {
        if was != is {
            return Err(Error::Config(format!(
                "the run in {} was made on {was}, the data given now is {is}: resume it with the data set it was \
                 started with (--dataset, --data-dir)",
                run.path().display()
            )));
        }
    }
    Ok(())
}

/// A new run's directory: created (or refused, or the earlier run moved aside with --force),
/// the data source recorded, `meta` written to config.json.
pub fn create(args: &RunArgs, default_name: &str, source: &DataSource, meta: &Value) -> Result<RunDir> {
    let path = args.out_or(default_name);
    let (mut run, moved) = RunDir::create(&path, args.force)?;
    if let Some(aside) = moved {
        out::warn(format!("--force: the earlier run in {} was moved to {}", path.display(), aside.display()));
    }
    run.set_data(serde_json::to_value(source)?);
    run.write(CONFIG, serde_json::to_string_pretty(meta)?.as_bytes())?;
    Ok(run)
}

/// A run opened for resuming and checked: its checkpoint carries the config with the
/// resumable settings of the command line applied. Nothing in its directory has changed yet.
pub struct Resume {
    pub run: RunDir,
    pub checkpoint: Checkpoint,
    source: DataSource,
    config: Value,
    changed: Vec<String>,
}

/// Opens the `kind` run in `dir` for resuming: loads its data set with `load` (the one it was
/// started with, unless --dataset or --data-dir say otherwise) and checks its fingerprint
/// (`splits` lists the data's splits), then applies the settings given (`fresh`: the config the
/// options ask for on that data, given the run's saved config) by the rules of [`resumed_config`].
#[allow(clippy::too_many_arguments)]
pub fn open_resume<D>(
    dir: &Path,
    kind: &str,
    (dataset, data_dir): (DatasetName, Option<&Path>),
    given: &Given,
    settings: &[Setting],
    load: impl FnOnce(DatasetName, Option<&Path>) -> Result<D>,
    splits: impl FnOnce(&D) -> Vec<&Dataset>,
    fresh: impl FnOnce(&D, &Value) -> Result<Value>,
) -> Result<(Resume, D)> {
    let (run, mut checkpoint) = RunDir::open(dir, kind)?;
    let (name, data_dir) = resumed_source(&run, dataset, data_dir, given)?;
    let data = load(name, data_dir.as_deref())?;
    let source = DataSource::new(name, data_dir.as_deref(), &splits(&data));
    check_data(&run, &source)?;
    let saved = checkpoint.meta.get("config").cloned().unwrap_or_default();
    let (config, changed) = resumed_config(&saved, &fresh(&data, &saved)?, given, settings)?;
    checkpoint.meta["config"] = config.clone();
    Ok((Resume { run, checkpoint, source, config, changed }, data))
}

impl Resume {
    /// Once the method has resumed from the checkpoint (`done` of its `epochs` epochs behind):
    /// checks the epochs, brings the directory back to the checkpoint (see
    /// [`RunDir::prepare_resume`]) and writes the changed settings into config.json under
    /// `key`, with a note of the change (said on stdout when `chatty`).
    pub fn finish(self, done: usize, epochs: usize, key: &str, chatty: bool) -> Result<RunDir> {
        if epochs < done {
            return Err(Error::Config(format!("--epochs {epochs} is fewer than the {done} epochs this run has done")));
        }
        let Resume { mut run, source, config, changed, .. } = self;
        run.prepare_resume()?;
        run.set_data(serde_json::to_value(&source)?);
        if changed.is_empty() {
            return Ok(run);
        }
        record_changes(&run, key, &config, &changed)?;
        if chatty {
            out::line(format_args!("resuming with {}", changed.join(", ")))?;
        }
        Ok(run)
    }
}

/// Writes a resumed run's changed settings into config.json: the config under `key`, and the
/// changes appended to `resumed_with`.
fn record_changes(run: &RunDir, key: &str, config: &Value, changed: &[String]) -> Result<()> {
    let file = run.file(CONFIG);
    let mut meta: Value = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    meta[key] = config.clone();
    match meta.get_mut("resumed_with").and_then(Value::as_array_mut) {
        Some(list) => list.push(serde_json::json!(changed)),
        None => meta["resumed_with"] = serde_json::json!([changed]),
    }
    run.write(CONFIG, serde_json::to_string_pretty(&meta)?.as_bytes())
}

/// Says where a stopped run stands: its last checkpoint (to resume), or none yet.
pub fn stopped(run: &RunDir) {
    let dir = run.path().display();
    if run.has_checkpoint() {
        out::warn(format!("the run stopped; its last checkpoint in {dir} is kept: continue it with --resume {dir}"));
    } else {
        out::warn(format!(
            "the run stopped before its first checkpoint (written at the end of each epoch): start it again with \
             --out {dir} --force"
        ));
    }
}

/// How a command shows its run and what it writes each epoch besides `metrics.jsonl` and the
/// checkpoint.
pub struct Shown<S, E, F> {
    /// A step's progress-bar text.
    pub step: S,
    /// An epoch's summary line (seconds since the start given).
    pub epoch: E,
    /// The epoch's other logs and files, written before the checkpoint that commits them.
    pub files: F,
}

/// Runs the remaining epochs of `search` in its run directory, the same way for every command:
/// per step the progress bar (and a JSON line), per epoch `metrics.jsonl`, the command's
/// `files`, then the checkpoint that commits them, and the summary line (or its JSON). If an
/// epoch fails, clears the progress bar and says where the run stands before the error goes up.
pub fn epochs<M, S, E, F>(
    search: &mut RunLoop<M>,
    run: &mut RunDir,
    progress: &Progress,
    args: &RunArgs,
    mut shown: Shown<S, E, F>,
) -> Result<()>
where
    M: Method,
    S: FnMut(&M::Step) -> (u64, String),
    E: FnMut(&M::Epoch, f64) -> String,
    F: FnMut(&mut RunDir, &RunLoop<M>) -> Result<()>,
{
    let started = std::time::Instant::now();
    // The start of the epoch being run: its seconds go to times.jsonl before its checkpoint.
    let mut epoch_started = started;
    while !search.is_finished() {
        let metrics_before = search.metrics.len();
        let summary = (|| -> Result<M::Epoch> {
            let step_line = &mut shown.step;
            let summary = pollster::block_on(search.run_epoch(|m| {
                if args.json {
                    progress.println(&serde_json::json!({ "step": m }).to_string());
                }
                let (step, text) = step_line(m);
                progress.update(step + 1, text);
                wgpu_nas::durable::test_hook("step");
            }))?;
            run.append("metrics.jsonl", &search.metrics[metrics_before..])?;
            (shown.files)(run, search)?;
            if args.record_times {
                let seconds = epoch_started.elapsed().as_secs_f64();
                run.append(TIMES, &[serde_json::json!({ "epochs_done": search.epoch(), "seconds": seconds })])?;
            }
            run.commit(pollster::block_on(search.checkpoint())?)?;
            Ok(summary)
        })()
        .inspect_err(|_| {
            progress.finish();
            stopped(run);
        })?;
        epoch_started = std::time::Instant::now();
        if args.json {
            progress.println(&serde_json::json!({ "epoch": summary }).to_string());
        } else if args.chatty() {
            progress.println(&(shown.epoch)(&summary, started.elapsed().as_secs_f64()));
        }
    }
    progress.finish();
    Ok(())
}

//! What `experiment` reports: every retraining's test accuracy, parameters and times, read
//! from the run directories, and per method the mean, standard deviation and best, as
//! results.json and the table of results.md.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use wgpu_nas::data::{Dataset, Split};
use wgpu_nas::run_dir::CONFIG;
use wgpu_nas::space::SearchSpace;
use wgpu_nas::train::Architecture;
use wgpu_nas::{Error, Result};

use super::{genotype_file, path, state, Budget, Job, Searcher, Spec, State};
use crate::run::TIMES;
use crate::search::{self, io, DatasetName};

/// The results of an experiment, as results.json holds them.
#[derive(Serialize)]
pub(super) struct Results {
    /// The data set and where it came from.
    dataset: String,
    /// The data set's training and test images.
    train_images: usize,
    test_images: usize,
    space: SearchSpace,
    budget: Budget,
    /// One row per method, random last.
    rows: Vec<Row>,
    /// The runs of the plan not finished in any of the directories read (none when the whole
    /// experiment ran), each with where it stands: "search-darts-s1: missing".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) missing: Vec<String>,
}

#[derive(Serialize)]
struct Row {
    method: String,
    runs: Vec<RunResult>,
    mean_test_acc: f32,
    /// Sample standard deviation; `None` with one run.
    std_test_acc: Option<f32>,
    best_test_acc: f32,
    mean_param_size_mb: f64,
    /// Mean wall-clock seconds per search (0 for random genotypes).
    mean_search_seconds: f64,
    /// Mean wall-clock seconds per retraining.
    mean_train_seconds: f64,
}

#[derive(Serialize)]
struct RunResult {
    /// The retraining's run directory (inside the experiment's).
    run: String,
    seed: u64,
    genotype: String,
    /// The last retraining epoch's test accuracy, in [0, 1].
    test_acc: f32,
    param_size_mb: f64,
    search_seconds: f64,
    train_seconds: f64,
}

impl Results {
    /// Each row's test accuracies in percent, by method: the columns of results.png.
    pub(super) fn accuracy_columns(&self) -> Vec<(String, Vec<f64>)> {
        let percent = |runs: &[RunResult]| runs.iter().map(|r| 100.0 * r.test_acc as f64).collect();
        self.rows.iter().map(|r| (r.method.clone(), percent(&r.runs))).collect()
    }
}

fn read_json(file: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(file).map_err(io(file))?;
    serde_json::from_str(&text).map_err(|e| Error::File { path: path(file), msg: e.to_string() })
}

/// The seconds of a run's epochs (times.jsonl).
fn seconds(run: &Path) -> Result<f64> {
    let file = run.join(TIMES);
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    let mut total = 0.0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| Error::File { path: path(&file), msg: e.to_string() })?;
        total += v["seconds"].as_f64().unwrap_or(0.0);
    }
    Ok(total)
}

/// The first of `dirs` in which `job`'s run is finished, or where it stands in the one it got
/// furthest in ("unfinished", "stopped before its first checkpoint", "missing").
fn locate(dirs: &[PathBuf], job: &Job) -> Result<std::result::Result<PathBuf, &'static str>> {
    let mut worst = "missing";
    for dir in dirs {
        let run = dir.join(job.name());
        match state(&run)? {
            State::Finished => return Ok(Ok(run)),
            State::Unfinished => worst = "unfinished (resume it with its task)",
            State::NoCheckpoint if worst == "missing" => worst = "stopped before its first checkpoint",
            _ => {}
        }
    }
    Ok(Err(worst))
}

/// The results of the runs of `plan` finished in any of `dirs` (copies of one experiment's
/// directory, or the one it ran in), and the runs finished in none.
pub(super) fn collect(dirs: &[PathBuf], spec: &Spec, plan: &[Job], data: &Dataset) -> Result<Results> {
    let test = search::load_split(spec.dataset, spec.data_dir.as_deref(), Split::Test)?;
    let mut groups: Vec<(Option<Searcher>, Vec<RunResult>)> =
        spec.methods.iter().map(|&m| (Some(m), Vec::new())).chain([(None, Vec::new())]).collect();
    let mut missing = Vec::new();
    for job in plan {
        let Job::Search { .. } = job else { continue };
        if let Err(why) = locate(dirs, job)? {
            missing.push(format!("{}: {why}", job.name()));
        }
    }
    for job in plan {
        let Job::Train { method, seed } = job else { continue };
        let run = match locate(dirs, job)? {
            Ok(run) => run,
            Err(why) => {
                missing.push(format!("{}: {why}", job.name()));
                continue;
            }
        };
        let epochs = std::fs::read_to_string(run.join("epochs.jsonl")).map_err(io(&run.join("epochs.jsonl")))?;
        let last: Value = epochs
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| Error::File { path: path(&run.join("epochs.jsonl")), msg: "no epoch recorded".into() })?;
        let config = read_json(&run.join(CONFIG))?;
        // The searched genotype is in its search's directory, the random one beside the runs:
        // the first of `dirs` that holds it.
        let search_dir = match method {
            Some(m) => locate(dirs, &Job::Search { method: *m, seed: *seed })?.ok(),
            None => None,
        };
        // The genotype retrained: its file (in its search's directory, or beside the runs for a
        // random one) where one of `dirs` holds it, else the retraining's own record of it (a copy
        // of the retraining without its search).
        let file = match (method, &search_dir) {
            (Some(_), Some(s)) => Some(s.join("genotype.json")),
            _ => dirs.iter().map(|d| genotype_file(d, *method, *seed)).find(|f| f.is_file()),
        };
        let genotype = match file {
            Some(f) => search::read_genotype(&f)?,
            None => {
                match serde_json::from_value(config.pointer("/train/network/architecture").cloned().unwrap_or_default())
                {
                    Ok(Architecture::Cells(g)) => g,
                    _ => {
                        return Err(Error::File {
                            path: path(&run.join(CONFIG)),
                            msg: "no genotype recorded, and no genotype file beside it".into(),
                        })
                    }
                }
            }
        };
        let search_seconds = match &search_dir {
            Some(s) => seconds(s)?,
            None => 0.0,
        };
        let result = RunResult {
            run: job.name(),
            seed: *seed,
            genotype: genotype.to_python(),
            test_acc: last["test_acc"].as_f64().unwrap_or(f64::NAN) as f32,
            param_size_mb: config["param_size_mb"].as_f64().unwrap_or(f64::NAN),
            search_seconds,
            train_seconds: seconds(&run)?,
        };
        if let Some(g) = groups.iter_mut().find(|(m, _)| m == method) {
            g.1.push(result);
        }
    }
    let rows = groups
        .into_iter()
        .filter(|(_, runs)| !runs.is_empty())
        .map(|(method, runs)| {
            let n = runs.len() as f64;
            let accs: Vec<f64> = runs.iter().map(|r| r.test_acc as f64).collect();
            let mean = accs.iter().sum::<f64>() / n;
            let std = (runs.len() > 1)
                .then(|| (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() as f32);
            Row {
                method: method.map_or("random", Searcher::label).to_string(),
                mean_test_acc: mean as f32,
                std_test_acc: std,
                best_test_acc: accs.iter().copied().fold(f64::NEG_INFINITY, f64::max) as f32,
                mean_param_size_mb: runs.iter().map(|r| r.param_size_mb).sum::<f64>() / n,
                mean_search_seconds: runs.iter().map(|r| r.search_seconds).sum::<f64>() / n,
                mean_train_seconds: runs.iter().map(|r| r.train_seconds).sum::<f64>() / n,
                runs,
            }
        })
        .collect();
    Ok(Results {
        dataset: data_description(spec, data),
        train_images: data.n,
        test_images: test.n,
        space: spec.space.clone(),
        budget: spec.budget.clone(),
        rows,
        missing,
    })
}

/// Which data the experiment ran on, in words.
pub(super) fn data_description(spec: &Spec, data: &Dataset) -> String {
    match (spec.dataset, &spec.data_dir) {
        (DatasetName::Embedded, _) => format!(
            "the embedded Fashion-MNIST subset ({} training images; Debian's dataset-fashion-mnist not used)",
            data.n
        ),
        (DatasetName::FashionMnist, Some(d)) => {
            format!("full Fashion-MNIST from {} ({} training images)", d.display(), data.n)
        }
        (_, dir) => format!(
            "{} from {} ({} training images)",
            data.name,
            dir.as_deref().map_or("?".into(), |d| d.display().to_string()),
            data.n
        ),
    }
}

/// results.md: the data set, the budget and one table row per method.
pub(super) fn markdown(r: &Results) -> String {
    let (s, t) = (&r.budget.search, &r.budget.train);
    let steps =
        |n: usize, what: &str| if n == 0 { format!("a full pass over the {what}") } else { format!("{n} steps") };
    let minutes = |secs: f64| match secs {
        0.0 => "-".to_string(),
        s if s < 120.0 => format!("{s:.1} s"),
        s => format!("{:.1} min", s / 60.0),
    };
    let pct = |a: f32| format!("{:.2}%", 100.0 * a);
    let mut md = String::from("# Searched cells against random cells\n\n");
    md += &format!("Data: {} and {} test images.\n\n", r.dataset, r.test_images);
    md += &format!(
        "Space: DARTS cells of {} nodes over {} ({} random genotypes drawn uniformly from the choices the derivation \
         makes).\n\n",
        r.space.steps,
        r.space.primitives.join(", "),
        r.rows.iter().find(|row| row.method == "random").map_or(0, |row| row.runs.len())
    );
    md += &format!(
        "Budget: search C={}, {} cells, batch {}, {} epochs of {}; retraining (the same for every genotype) C={}, {} \
         cells, batch {}, {} epochs of {}, lr {} cosine, cutout {}, drop path {}, auxiliary head {}, seed {}; test \
         accuracy after the last epoch on {}.\n\n",
        s.channels,
        s.layers,
        s.batch_size,
        s.epochs,
        steps(s.steps_per_epoch, "weights' half"),
        t.channels,
        t.layers,
        t.batch_size,
        t.epochs,
        steps(t.steps_per_epoch, "training set"),
        t.learning_rate,
        t.cutout,
        t.drop_path,
        if t.auxiliary { "on" } else { "off" },
        t.seed,
        match t.eval_batches * t.batch_size {
            n if t.eval_batches == 0 || n >= r.test_images => format!("the whole test set ({} images)", r.test_images),
            n => format!("the first {n} of the {} test images", r.test_images),
        },
    );
    md += "| method | runs | test accuracy (mean ± std) | best | parameters (MB) | search time | retraining time |\n";
    md += "|---|---|---|---|---|---|---|\n";
    for row in &r.rows {
        md += &format!(
            "| {} | {} | {} ± {} | {} | {:.3} | {} | {} |\n",
            row.method,
            row.runs.len(),
            pct(row.mean_test_acc),
            row.std_test_acc.map_or("-".into(), |s| format!("{:.2}", 100.0 * s)),
            pct(row.best_test_acc),
            row.mean_param_size_mb,
            minutes(row.mean_search_seconds),
            minutes(row.mean_train_seconds),
        );
    }
    if !r.missing.is_empty() {
        md += &format!("\nNot finished, not in the table: {}.\n", r.missing.join("; "));
    }
    md += "\nTimes are wall-clock per run (mean over the method's runs), summed over the epochs each run kept \
           (times.jsonl in its run directory).\n";
    md
}

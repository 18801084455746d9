//! `wgpu-nas experiment`: a tiny experiment writes its runs and its three result files; run
//! again it skips what is finished, redoes a deleted run, resumes a killed one; bad input is
//! one line, exit code 2, and nothing written.

#[path = "support/commands.rs"]
mod commands;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use commands::{scratch, snapshot, text, wgpu_nas, TINY_EXPERIMENT as TINY};
use wgpu_nas::rng::Rng;
use wgpu_nas::space::{random_genotype, Genotype, SearchSpace};

/// The tiny experiment's options in `dir`, with the values of `changed` (option, value) in place
/// of the tiny ones, and `extra` options after them.
fn args(dir: &str, changed: &[(&str, &str)], extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["experiment", "--out", dir, "--methods", "darts,gdas", "--seeds", "1", "--random", "2"]
        .map(String::from)
        .into();
    a.extend(TINY.map(String::from));
    for (option, value) in changed {
        let at = a.iter().position(|o| o == option).unwrap_or_else(|| panic!("{option} is not a tiny option"));
        a[at + 1] = value.to_string();
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run(a: &[String]) -> std::process::Output {
    wgpu_nas(&a.iter().map(String::as_str).collect::<Vec<_>>())
}

const RUNS: [&str; 6] =
    ["search-darts-s0", "search-gdas-s0", "train-darts-s0", "train-gdas-s0", "train-random-0", "train-random-1"];

fn lines_with<'a>(stdout: &'a str, needle: &str) -> Vec<&'a str> {
    stdout.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn a_tiny_experiment_writes_its_results_and_a_restart_redoes_only_a_deleted_run() {
    let root = scratch("experiment");
    let dir = root.join("exp");
    let d = dir.to_str().unwrap();
    let started = Instant::now();
    let out = run(&args(d, &[], &[]));
    assert!(out.status.success(), "{}", text(&out));
    let first = started.elapsed();

    for run in RUNS {
        assert!(dir.join(run).join("checkpoint.bin").is_file(), "{run}: {}", text(&out));
        assert!(dir.join(run).join("times.jsonl").is_file(), "{run}");
    }
    for f in ["experiment.json", "results.json", "results.md", "results.png"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let png = std::fs::read(dir.join("results.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // results.json: a row per method and one for the random genotypes, each run's numbers.
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let rows = results["rows"].as_array().unwrap();
    let methods: Vec<&str> = rows.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["DARTS (1st order)", "GDAS", "random"]);
    let runs: Vec<usize> = rows.iter().map(|r| r["runs"].as_array().unwrap().len()).collect();
    assert_eq!(runs, [1, 1, 2]);
    for row in rows {
        for run in row["runs"].as_array().unwrap() {
            let acc = run["test_acc"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&acc), "{run}");
            assert!(run["param_size_mb"].as_f64().unwrap() > 0.0, "{run}");
            assert!(run["train_seconds"].as_f64().unwrap() > 0.0, "{run}");
        }
        let best = row["best_test_acc"].as_f64().unwrap();
        let mean = row["mean_test_acc"].as_f64().unwrap();
        assert!(best >= mean - 1e-6, "{row}");
    }
    assert!(rows[0]["mean_search_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(rows[2]["mean_search_seconds"].as_f64().unwrap(), 0.0);
    assert!(results["dataset"].as_str().unwrap().contains("embedded Fashion-MNIST subset"), "{}", results["dataset"]);

    // The random genotypes are those of their seeds, drawn from the searches' space.
    for (i, run) in rows[2]["runs"].as_array().unwrap().iter().enumerate() {
        let expected = random_genotype(&SearchSpace::darts(), &mut Rng::new(i as u64)).unwrap();
        assert_eq!(run["genotype"].as_str().unwrap(), expected.to_python());
        let file = std::fs::read_to_string(dir.join(format!("random-{i}.genotype.json"))).unwrap();
        assert_eq!(Genotype::from_json(&file).unwrap(), expected);
    }
    // The searched genotypes are what the searches wrote.
    let darts = std::fs::read_to_string(dir.join("search-darts-s0/genotype.py")).unwrap();
    assert_eq!(rows[0]["runs"][0]["genotype"].as_str().unwrap(), darts.trim());

    let md = std::fs::read_to_string(dir.join("results.md")).unwrap();
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| method")).collect();
    assert_eq!(table.len(), 3, "{md}");
    for (line, method) in table.iter().zip(["| DARTS (1st order) | 1 |", "| GDAS | 1 |", "| random | 2 |"]) {
        assert!(line.starts_with(method), "{line}");
    }
    assert!(md.contains("embedded Fashion-MNIST subset"), "{md}");

    // Deleting one retraining: a restart redoes that run only.
    let kept: Vec<_> = RUNS.iter().filter(|r| **r != "train-random-1").map(|r| (r, snapshot(&dir.join(r)))).collect();
    std::fs::remove_dir_all(dir.join("train-random-1")).unwrap();
    let out = run(&args(d, &[], &[]));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(lines_with(&stdout, "skipped").len(), 5, "{stdout}");
    assert_eq!(lines_with(&stdout, "train-random-1: starting").len(), 1, "{stdout}");
    for (run, files) in &kept {
        assert!(snapshot(&dir.join(run)) == *files, "{run} changed");
    }
    assert!(dir.join("train-random-1/checkpoint.bin").is_file());
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    // Same genotype, same seed, same data: the redone run gives the same accuracy.
    assert_eq!(again["rows"][2]["runs"][1]["test_acc"], results["rows"][2]["runs"][1]["test_acc"]);

    // A retraining of another genotype than its search's file now holds is refused, and so is a
    // random genotype that is not its seed's draw.
    for (file, needle) in
        [("search-gdas-s0/genotype.json", "train-gdas-s0"), ("random-0.genotype.json", "seed 0 draws")]
    {
        let original = std::fs::read(dir.join(file)).unwrap();
        std::fs::write(dir.join(file), wgpu_nas::space::darts_v2().to_json()).unwrap();
        let out = run(&args(d, &[], &[]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", text(&out));
        assert!(err.contains(needle), "{file}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        std::fs::write(dir.join(file), original).unwrap();
    }

    // Another budget on the same directory is refused, naming the difference; nothing runs.
    let top = || -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.display().to_string(), if p.is_file() { std::fs::read(&p).unwrap() } else { vec![] }))
            .collect();
        files.sort();
        files
    };
    let before = top();
    let out = run(&args(d, &[("--train-epochs", "3")], &[]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(err.contains("budget/train/epochs"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(top() == before);
    eprintln!("tiny experiment: {first:?}");
    std::fs::remove_dir_all(&root).ok();
}

/// Killed in the middle of a retraining, a restart resumes that run from its checkpoint (and
/// skips the searches before it).
#[test]
fn a_killed_experiment_resumes_its_unfinished_run() {
    let root = scratch("experiment-killed");
    let dir = root.join("exp");
    let d = dir.to_str().unwrap();
    let marker = root.join("marker");
    // Checkpoints: one per search (1 epoch each), then train-darts-s0's first of 2 epochs.
    let hook = format!("committed:3:{}", marker.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgpu-nas"))
        .args(args(d, &[("--random", "1")], &["--quiet"]))
        .env("WGPU_NAS_TEST_HOOK", &hook)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !marker.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the experiment ended before the hook");
        assert!(started.elapsed() < Duration::from_secs(300), "hook not reached");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = run(&args(d, &[("--random", "1")], &[]));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(lines_with(&stdout, "finished earlier, skipped").len(), 2, "{stdout}");
    assert_eq!(lines_with(&stdout, "train-darts-s0: resuming from its last checkpoint").len(), 1, "{stdout}");
    let times = std::fs::read_to_string(dir.join("train-darts-s0/times.jsonl")).unwrap();
    assert_eq!(times.lines().count(), 2, "one line per epoch kept: {times}");
    assert!(dir.join("results.md").is_file());
    std::fs::remove_dir_all(&root).ok();
}

/// Bad input is one line on stderr, exit code 2, and no directory.
#[test]
fn bad_experiments_are_one_line_exit_code_2_and_nothing_started() {
    let root = scratch("experiment-bad");
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("--methods", "darts,nope")], "unknown method \"nope\""),
        (&[("--methods", "enas")], "does not fit"),
        (&[("--methods", "darts,darts")], "twice"),
        (&[("--search-epochs", "0")], "--search-epochs 0"),
        (&[("--train-epochs", "0")], "--train-epochs 0"),
        (&[("--seeds", "0")], "one seed"),
    ];
    for (i, (changed, needle)) in cases.iter().enumerate() {
        let dir = root.join(format!("case-{i}"));
        let out = run(&args(dir.to_str().unwrap(), changed, &[]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{changed:?}: {}", text(&out));
        assert!(err.contains(needle), "{changed:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{changed:?}: one line: {err}");
        assert!(!Path::new(&dir).exists(), "{changed:?}: {} was created", dir.display());
    }
    std::fs::remove_dir_all(&root).ok();
}

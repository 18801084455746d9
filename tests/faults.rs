//! Kill -9 at the worst moments, then `--resume`: every file of the run directory must end equal,
//! byte for byte, to a run straight through. The moments are driven by the test hook
//! (`WGPU_NAS_TEST_HOOK=POINT:N:FILE`, see `wgpu_nas::durable::test_hook`): the run stops there,
//! says so in FILE, and this test kills it with SIGKILL. Points: within an epoch, between the
//! log appends, after the logs and files but before the checkpoint, with the checkpoint's .tmp
//! written but not renamed, and with the checkpoint in place.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/commands.rs"]
mod commands;
use commands::{scratch, snapshot};

fn run_ok(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_wgpu-nas")).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `args` until the hook stops it at the `n`-th `point`, then kills it with SIGKILL.
fn run_and_kill_at(args: &[&str], point: &str, n: u32, marker: &Path) {
    let _ = std::fs::remove_file(marker);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgpu-nas"))
        .args(args)
        .env("WGPU_NAS_TEST_HOOK", format!("{point}:{n}:{}", marker.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{args:?} ended ({status}) before reaching {point} #{n}");
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{point} #{n} not reached");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// A straight run of `args` (with `--out`) against runs killed at each of `points` and resumed.
fn killed_and_resumed_runs_equal_a_straight_run(name: &str, args: &[&str], points: &[(&str, u32)]) {
    let root = scratch(&format!("faults-{name}"));
    let straight = root.join("straight");
    let with_out = |dir: &Path| -> Vec<String> {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["--quiet".into(), "--out".into(), dir.display().to_string()]);
        a
    };
    let a = with_out(&straight);
    run_ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let expected = snapshot(&straight);
    for (point, n) in points {
        let dir = root.join(format!("{point}-{n}"));
        let a = with_out(&dir);
        run_and_kill_at(&a.iter().map(String::as_str).collect::<Vec<_>>(), point, *n, &root.join("marker"));
        let command = &args[..if args[0] == "search" { 2 } else { 1 }];
        let mut resume: Vec<&str> = command.to_vec();
        resume.extend(["--resume", dir.to_str().unwrap(), "--quiet"]);
        run_ok(&resume);
        let got = snapshot(&dir);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{name}: killed at {point} #{n}: other files"
        );
        for (file, bytes) in &expected {
            assert!(&got[file] == bytes, "{name}: killed at {point} #{n}: {file} differs from the straight run's");
        }
    }
    std::fs::remove_dir_all(&root).ok();
}

const TINY: [&str; 8] = ["--epochs", "3", "--steps-per-epoch", "2", "--batch-size", "4", "--seed", "1"];

#[test]
fn a_darts_search_killed_anywhere_resumes_to_the_straight_run() {
    let mut args = vec!["search", "darts", "--eval-batches", "1", "--init-channels", "2", "--layers", "1"];
    args.extend(TINY);
    // Per epoch: 2 steps, metrics.jsonl, epochs.jsonl and alphas.jsonl appended, genotypes and
    // plots written, then the checkpoint. Epoch 2 (of 3) is where each kill lands (appended #5:
    // between its first and its last log).
    let points = [("step", 3), ("appended", 5), ("before-checkpoint", 2), ("checkpoint-written", 2), ("committed", 2)];
    killed_and_resumed_runs_equal_a_straight_run("darts", &args, &points);
}

#[test]
fn an_enas_search_killed_anywhere_resumes_to_the_straight_run() {
    let mut args =
        vec!["search", "enas", "--layers", "2", "--nodes", "1", "--controller-steps", "1", "--derive-samples", "2"];
    args.extend(TINY);
    let points = [("appended", 3), ("checkpoint-written", 2), ("committed", 3)];
    killed_and_resumed_runs_equal_a_straight_run("enas", &args, &points);
}

#[test]
fn a_retraining_killed_anywhere_resumes_to_the_straight_run() {
    let genotype = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures_data/genotype_tiny.py");
    let mut args = vec!["train", "--genotype", genotype, "--eval-batches", "1", "--init-channels", "2"];
    args.extend(TINY);
    let points = [("step", 4), ("appended", 3), ("before-checkpoint", 2)];
    killed_and_resumed_runs_equal_a_straight_run("train", &args, &points);
}

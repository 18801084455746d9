//! Helpers for the tests that run the `wgpu-nas` binary: run it, show its output, a scratch
//! directory per test, and a snapshot of a run directory's files.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `wgpu-nas args`.
pub fn wgpu_nas(args: &[&str]) -> Output {
    wgpu_nas_env(args, &[])
}

/// Runs `wgpu-nas args` with `env` added to its environment.
pub fn wgpu_nas_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wgpu-nas"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// stdout then stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// An empty directory under the temporary directory for one test's files (what a previous
/// run left there removed).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-nas-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file of `dir`: name -> bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        files.insert(p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
    }
    files
}

/// `experiment` at tiny sizes: every run a few steps of a network of a few channels, on the
/// embedded data set (tests/experiment.rs, tests/cluster.rs).
pub const TINY_EXPERIMENT: [&str; 26] = [
    "--search-channels",
    "2",
    "--search-layers",
    "1",
    "--search-batch-size",
    "4",
    "--search-epochs",
    "1",
    "--search-steps",
    "2",
    "--search-eval-batches",
    "1",
    "--train-channels",
    "2",
    "--train-layers",
    "3",
    "--train-batch-size",
    "4",
    "--train-epochs",
    "2",
    "--train-steps",
    "2",
    "--train-eval-batches",
    "1",
    "--dataset",
    "embedded",
];

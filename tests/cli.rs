//! The command line: a tiny search writes its run directory; derive and export read it back;
//! bad settings are one clear line and exit code 2.

use std::process::{Command, Output};

fn wgpu_nas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgpu-nas")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn a_tiny_search_writes_its_run_directory_and_derive_reads_it() {
    let dir = std::env::temp_dir().join(format!("wgpu-nas-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let tiny =
        ["--epochs", "1", "--steps-per-epoch", "2", "--eval-batches", "1", "--init-channels", "2", "--layers", "1"];
    let mut args = vec!["search", "darts", "--batch-size", "4", "--out", d, "--quiet"];
    args.extend(tiny);
    let out = wgpu_nas(&args);
    assert!(out.status.success(), "{}", text(&out));
    for f in [
        "config.json",
        "metrics.jsonl",
        "alphas.jsonl",
        "genotype.json",
        "genotype.py",
        "genotype.dot",
        "checkpoint.bin",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "one line per step");
    let python = std::fs::read_to_string(dir.join("genotype.py")).unwrap();
    assert!(python.starts_with("Genotype(normal=["), "{python}");

    // derive reads the checkpoint's alphas and gives the same genotype.
    let out = wgpu_nas(&["derive", "--run", d]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), python.trim());

    // export converts between the three forms.
    let json = dir.join("genotype.json");
    let out = wgpu_nas(&["export", "--genotype", json.to_str().unwrap(), "--format", "python"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), python.trim());
    let out = wgpu_nas(&["export", "--genotype", dir.join("genotype.py").to_str().unwrap(), "--format", "dot"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("digraph"), "{}", text(&out));

    // Resuming a finished run continues nowhere and reports the same result.
    let out = wgpu_nas(&["search", "darts", "--resume", d, "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(python.trim()));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_settings_are_one_clear_line_and_exit_code_2() {
    let cases: [(&[&str], &str); 5] = [
        (&["search", "darts", "--dataset", "cifar10"], "needs --data-dir"),
        (&["search", "darts", "--dataset", "cifar10", "--data-dir", "/nonexistent-dir"], "/nonexistent-dir"),
        (&["search", "darts", "--batch-size", "100000"], "bigger than the smaller split"),
        (&["search", "darts", "--ops", "sep_conv_3x3,conv_9x9"], "operation \"conv_9x9\""),
        (&["derive", "--run", "/nonexistent-run"], "checkpoint.bin"),
    ];
    for (args, needle) in cases {
        let out = wgpu_nas(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // An unknown data set is refused by the argument parser, also with exit code 2.
    let out = wgpu_nas(&["search", "darts", "--dataset", "imagenet"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn tiny_enas_searches_write_their_run_directories() {
    for space in ["micro", "macro"] {
        let dir = std::env::temp_dir().join(format!("wgpu-nas-cli-enas-{space}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let d = dir.to_str().unwrap();
        let args = [
            "search",
            "enas",
            "--space",
            space,
            "--layers",
            "2",
            "--nodes",
            "1",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--controller-steps",
            "1",
            "--derive-samples",
            "3",
            "--batch-size",
            "4",
            "--out",
            d,
            "--quiet",
        ];
        let out = wgpu_nas(&args);
        assert!(out.status.success(), "{space}: {}", text(&out));
        for f in [
            "config.json",
            "metrics.jsonl",
            "controller.jsonl",
            "architecture.json",
            "architecture.dot",
            "checkpoint.bin",
        ] {
            assert!(dir.join(f).is_file(), "{space}: {f} missing");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

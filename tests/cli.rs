//! The command line: a tiny search writes its run directory; derive and export read it back;
//! bad settings are one clear line and exit code 2.

#[path = "support/commands.rs"]
mod commands;
use commands::{text, wgpu_nas};

/// An empty path under the temporary directory for one test's files.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = commands::scratch(&format!("cli-{name}"));
    std::fs::remove_dir(&dir).unwrap();
    dir
}

#[test]
/// Both searches of the DARTS family write the same run directory, with --json lines.
fn a_tiny_search_writes_its_run_directory_and_derive_reads_it() {
    for method in ["darts", "gdas"] {
        tiny_search_run_directory(method);
    }
}

fn tiny_search_run_directory(method: &str) {
    let dir = fresh_dir(&format!("search-{method}"));
    let d = dir.to_str().unwrap();
    let tiny =
        ["--epochs", "1", "--steps-per-epoch", "2", "--eval-batches", "1", "--init-channels", "2", "--layers", "1"];
    let mut args = vec!["search", method, "--batch-size", "4", "--out", d, "--json"];
    args.extend(tiny);
    let out = wgpu_nas(&args);
    assert!(out.status.success(), "{}", text(&out));
    // --json: a line per step, per epoch, and the result.
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let count = |key: &str| lines.iter().filter(|l| l.get(key).is_some()).count();
    assert_eq!((count("step"), count("epoch"), count("result")), (2, 1, 1), "{}", text(&out));
    for f in [
        "config.json",
        "metrics.jsonl",
        "epochs.jsonl",
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
    // The epoch's collapse diagnostics: parameter-free ops of the genotype, edge entropies
    // (at most ln 8 for the 8 primitives) and the Hessian's dominant eigenvalue.
    let epochs = std::fs::read_to_string(dir.join("epochs.jsonl")).unwrap();
    let epoch: serde_json::Value = serde_json::from_str(epochs.lines().next().unwrap()).unwrap();
    let collapse = &epoch["collapse"];
    // At most every op of the genotype: 2 inputs of 4 nodes in each of the two cell types.
    assert!(collapse["parameter_free"].as_u64().is_some_and(|n| n <= 16), "{method}: {collapse}");
    assert!(collapse["entropy_normal"].as_f64().is_some_and(|h| h > 0.0 && h <= 8f64.ln() + 1e-6), "{collapse}");
    assert!(collapse["hessian_eigenvalue"].as_f64().is_some_and(f64::is_finite), "{collapse}");
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
    let out = wgpu_nas(&["search", method, "--resume", d, "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(python.trim()));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_settings_are_one_clear_line_and_exit_code_2() {
    let cases: [(&[&str], &str); 10] = [
        (&["bench", "darts", "--init-channels", "3"], "even"),
        (&["bench", "darts", "--tuning", "depthwise_rows=3"], "depthwise_rows must be 1, 2 or 4"),
        (&["bench", "darts", "--against", "depthwise_rows=3"], "depthwise_rows must be 1, 2 or 4"),
        (&["bench", "darts", "--image-size", "3"], "do not fit"),
        (&["bench", "darts", "--batch-size", "4096", "--image-size", "512"], "storage-binding limit"),
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

/// `bench darts --against` times a second tuning in alternation with the first, in one run.
#[test]
fn bench_darts_times_two_tunings_in_alternation() {
    let args = ["bench", "darts", "--init-channels", "4", "--layers", "3", "--batch-size", "2", "--image-size", "8"];
    let timing = ["--warmup", "1", "--steps", "2", "--json", "--against", "depthwise_rows=1,bn_channel_max_values=0"];
    let out = wgpu_nas(&[&args[..], &timing[..]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (base, against) = (&report["tuning"], &report["against"]["tuning"]);
    assert_eq!(against["depthwise_rows"], 1, "{report}");
    assert_eq!(against["bn_channel_max_values"], 0, "{report}");
    assert_ne!(base, against);
    let ratio = report["against"]["median_ratio"].as_f64().unwrap();
    assert!(ratio.is_finite() && ratio > 0.0, "{report}");
    // The counts are the first tuning's steps alone: the same as without --against.
    let alone = wgpu_nas(&[&args[..], &["--warmup", "1", "--steps", "1", "--json"][..]].concat());
    let alone: serde_json::Value = serde_json::from_slice(&alone.stdout).unwrap();
    assert_eq!(report["dispatches_per_step"], alone["dispatches_per_step"], "{report}\n{alone}");
    assert_eq!(report["flops_per_step"], alone["flops_per_step"]);
}

/// `--genotype FILE:NAME` picks a genotype of a whole genotypes.py (the reference's, in its own
/// layout); a missing name is one line listing the names found, exit code 2.
#[test]
fn export_picks_a_genotype_of_a_genotypes_py_by_name() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures_data/reference_genotypes.py");
    let export = |genotype: &str| wgpu_nas(&["export", "--genotype", genotype, "--format", "python"]);
    let out = export(&format!("{file}:AmoebaNet"));
    assert!(out.status.success(), "{}", text(&out));
    let amoeba = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(amoeba.contains("('conv_7x1_1x7', 0)") && amoeba.contains("reduce_concat=[3, 4, 6]"), "{amoeba}");
    // The alias DARTS = DARTS_V2.
    let (v2, darts) = (export(&format!("{file}:DARTS_V2")), export(&format!("{file}:DARTS")));
    assert!(v2.status.success() && v2.stdout == darts.stdout, "{}{}", text(&v2), text(&darts));

    for (genotype, needle) in [
        (format!("{file}:PNASNet"), "no genotype named \"PNASNet\": expected one of the names the text assigns"),
        (file.to_string(), "assigns 5 genotypes"),
    ] {
        let out = export(&genotype);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{genotype}: {}", text(&out));
        assert_eq!(err.trim_end().lines().count(), 1, "{genotype}: one line: {err}");
        assert!(err.contains(needle) && err.contains("NASNet, AmoebaNet, DARTS_V1, DARTS_V2, DARTS"), "{err}");
    }

    // A path with ':' in it that exists is a file, pasted text (tuples, module prefix) in it; and
    // FILE:NAME still works after such a path.
    let dir = fresh_dir("colon");
    std::fs::create_dir_all(&dir).unwrap();
    let pasted = dir.join("v2:pasted.py");
    let v2_text = String::from_utf8_lossy(&v2.stdout).replace("[2, 3, 4, 5]", "(2, 3, 4, 5)");
    std::fs::write(&pasted, format!("genotypes.{v2_text}")).unwrap();
    let out = export(pasted.to_str().unwrap());
    assert!(out.status.success() && out.stdout == v2.stdout, "{}", text(&out));
    let module = dir.join("mod:ule.py");
    std::fs::copy(file, &module).unwrap();
    let out = export(&format!("{}:AmoebaNet", module.display()));
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout) == amoeba, "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tiny_enas_searches_write_their_run_directories() {
    for space in ["micro", "macro"] {
        let dir = fresh_dir(&format!("enas-{space}"));
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

/// A PNG file's first eight bytes.
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

fn assert_png(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8.min(bytes.len())], PNG_MAGIC, "{} is not a PNG", path.display());
    // A blank 1000x600 white image compresses to a few KiB; axes, text and lines make more.
    assert!(bytes.len() > 20_000, "{}: only {} bytes", path.display(), bytes.len());
}

#[test]
fn tiny_searches_draw_their_plots() {
    for method in ["darts", "gdas"] {
        tiny_supernet_search_plots(method);
    }
    let dir = fresh_dir("plots");
    let d = dir.to_str().unwrap();
    let args = [
        "search",
        "enas",
        "--layers",
        "2",
        "--nodes",
        "1",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--controller-steps",
        "2",
        "--derive-samples",
        "2",
        "--batch-size",
        "4",
        "--out",
        d,
        "--quiet",
    ];
    let out = wgpu_nas(&args);
    assert!(out.status.success(), "{}", text(&out));
    for f in ["reward.png", "loss.png", "accuracy.png"] {
        assert_png(&dir.join(f));
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn tiny_supernet_search_plots(method: &str) {
    let dir = fresh_dir(&format!("plots-{method}"));
    let d = dir.to_str().unwrap();
    let args = [
        "search",
        method,
        "--epochs",
        "1",
        "--steps-per-epoch",
        "4",
        "--eval-batches",
        "1",
        "--init-channels",
        "2",
        "--layers",
        "1",
        "--batch-size",
        "4",
        "--out",
        d,
        "--quiet",
    ];
    let out = wgpu_nas(&args);
    assert!(out.status.success(), "{}", text(&out));
    for f in ["alphas_normal.png", "alphas_reduce.png", "loss.png", "accuracy.png", "collapse.png"] {
        assert_png(&dir.join(f));
    }
    // 4 steps per epoch: alphas are read back every step, so the plots have 4 points per line.
    let alphas = std::fs::read_to_string(dir.join("alphas.jsonl")).unwrap();
    assert_eq!(alphas.lines().count(), 4, "{alphas}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn train_retrains_a_genotype_and_writes_its_run_directory() {
    let dir = fresh_dir("train");
    std::fs::create_dir_all(&dir).unwrap();
    // Two nodes of cheap operations, in the reference's Python form.
    let genotype = dir.join("genotype.py");
    std::fs::write(
        &genotype,
        "Genotype(normal=[('skip_connect', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], \
         normal_concat=[2, 3], reduce=[('max_pool_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 2), \
         ('max_pool_3x3', 1)], reduce_concat=[2, 3])\n",
    )
    .unwrap();
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    let g = genotype.to_str().unwrap();
    let args = [
        "train",
        "--genotype",
        g,
        "--epochs",
        "2",
        "--steps-per-epoch",
        "2",
        "--eval-batches",
        "1",
        "--init-channels",
        "4",
        "--layers",
        "3",
        "--batch-size",
        "8",
        "--out",
        r,
        "--json",
    ];
    let out = wgpu_nas(&args);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("result").cloned())
        .unwrap_or_else(|| panic!("no result line: {stdout}"));
    let acc = result["test_acc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{result}");
    assert!(result["param_size_mb"].as_f64().unwrap() > 0.0, "{result}");
    let epochs = stdout.lines().filter(|l| l.starts_with("{\"epoch\"")).count();
    assert_eq!(epochs, 2, "one epoch line (with its test accuracy) per epoch: {stdout}");
    for f in ["config.json", "metrics.jsonl", "epochs.jsonl", "checkpoint.bin"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    for f in ["loss.png", "accuracy.png"] {
        assert_png(&run.join(f));
    }
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("\"adapter\"") && config.contains("sep_conv_3x3"), "{config}");

    // Resuming the finished run trains nothing more and reports the same accuracy as text.
    let out = wgpu_nas(&["train", "--resume", r, "--quiet"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("test accuracy {:.2}%", 100.0 * acc)), "{stdout}");

    // A missing genotype file is one clear line and exit code 2.
    let out = wgpu_nas(&["train", "--genotype", "/nonexistent.py"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.py"), "{}", text(&out));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn train_retrains_an_enas_macro_architecture_from_fixed_arc_text() {
    let dir = fresh_dir("train-macro");
    std::fs::create_dir_all(&dir).unwrap();
    // Three layers in the reference's fixed_arc layout: conv_3x3; max_pool_3x3 joined by
    // prev_layers[0] (the stem); sep_conv_3x3 joined by prev_layers[1] (layer 0).
    let arc = dir.join("fixed_arc.txt");
    std::fs::write(&arc, "0\n5 1\n1 0 1\n").unwrap();
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    let a = arc.to_str().unwrap();
    let tiny = ["--epochs", "1", "--steps-per-epoch", "2", "--eval-batches", "1", "--batch-size", "4"];
    let mut args = vec!["train", "--architecture", a, "--init-channels", "4", "--out", r, "--quiet"];
    args.extend(tiny);
    let out = wgpu_nas(&args);
    assert!(out.status.success(), "{}", text(&out));
    for f in ["config.json", "metrics.jsonl", "epochs.jsonl", "checkpoint.bin", "loss.png", "accuracy.png"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let network = &config["train"]["network"];
    assert_eq!(network["architecture"]["Macro"]["layers"][2]["op"], 1, "{network}");
    assert_eq!((network["layers"].as_u64(), network["channels"].as_u64()), (Some(3), Some(4)), "{network}");
    assert_eq!(network["macro_variant"], "Reference", "{network}");

    // cifar10_micro_final.sh's fixed_arc retrains as micro_child.py's cells.
    let micro = dir.join("micro_arc.txt");
    let micro_arc = "0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1\n1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1\n";
    std::fs::write(&micro, micro_arc).unwrap();
    let m = micro.to_str().unwrap();
    let micro_run = dir.join("micro-run");
    let mr = micro_run.to_str().unwrap();
    let mut args = vec!["train", "--architecture", m, "--init-channels", "4", "--layers", "5", "--out", mr, "--quiet"];
    args.extend(tiny);
    let out = wgpu_nas(&args);
    assert!(out.status.success(), "{}", text(&out));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(micro_run.join("config.json")).unwrap()).unwrap();
    let network = &config["train"]["network"];
    assert_eq!(network["cell_variant"], "EnasMicro", "{network}");
    assert_eq!(network["architecture"]["Cells"]["normal_concat"], serde_json::json!([2, 3, 4, 5, 6]), "{network}");

    // A count that fits no space (or not the space named), an operation or input out of range, a
    // file that is no architecture, and two architectures at once are one clear line and exit
    // code 2.
    std::fs::write(&arc, "0 5 1 1").unwrap();
    let genotype = dir.join("genotype.json");
    std::fs::write(&genotype, "{\"normal\": []}").unwrap();
    let g = genotype.to_str().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let bad_op = write("bad_op.txt", "0 9 1");
    let bad_micro_op = write("bad_micro_op.txt", &micro_arc.replacen("0 2", "0 5", 1));
    let bad_input = write("bad_input.txt", &micro_arc.replacen("0 2", "3 2", 1));
    let short_micro = write("short_micro.txt", &micro_arc[..micro_arc.len() - 3]);
    let cases: [(&[&str], &str); 9] = [
        (&["train", "--architecture", a], "L(L+1)/2"),
        (
            &["train", "--architecture", a, "--search-for", "macro"],
            "a macro fixed_arc of L layers has L(L+1)/2 integers",
        ),
        (&["train", "--architecture", m, "--search-for", "macro"], "got 40"),
        (&["train", "--architecture", &short_micro, "--search-for", "micro"], "8 integers per node"),
        (&["train", "--architecture", &bad_op], "layer 1: operation 9 is not one of 0..6"),
        (&["train", "--architecture", &bad_micro_op], "normal cell, node 0: operation 5 is not one of 0..5"),
        (&["train", "--architecture", &bad_input], "normal cell, node 0: input 3 is not one of 0..=1"),
        (&["train", "--architecture", g], "not an ENAS architecture"),
        (&["train", "--architecture", a, "--genotype", g], "cannot be used with"),
    ];
    for (args, needle) in cases {
        let out = wgpu_nas(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if !needle.contains("cannot be used") {
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

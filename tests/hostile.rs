//! Hostile input, as a careless or unlucky user gives it: every row is a command line (with its
//! environment), the exit code it must end with and a word its one-line error must contain.
//! Rows share one tiny finished run of each kind to be misused. Also: `--out` onto a finished
//! run leaves it unchanged, and `--force` moves it aside intact.

use std::path::Path;
use std::process::{Command, Output};

#[path = "support/commands.rs"]
mod commands;
use commands::{scratch, snapshot, text, wgpu_nas_env};

fn wgpu_nas(args: &[&str], env: &[(&str, &str)]) -> Output {
    wgpu_nas_env(args, env)
}

/// A hostile call: its arguments, its environment, the exit code it must end with and a word
/// its error line must contain.
type Row = (Vec<&'static str>, Vec<(&'static str, &'static str)>, i32, &'static str);

const TINY_DARTS: [&str; 12] = [
    "--epochs",
    "1",
    "--steps-per-epoch",
    "2",
    "--eval-batches",
    "1",
    "--init-channels",
    "2",
    "--layers",
    "1",
    "--batch-size",
    "4",
];

fn tiny_darts(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["search", "darts", "--quiet", "--out", out.to_str().unwrap()];
    args.extend(TINY_DARTS);
    args.extend(extra);
    wgpu_nas(&args, &[])
}

#[test]
fn out_onto_a_finished_run_leaves_it_unchanged_and_force_moves_it_aside() {
    let root = scratch("hostile-out");
    let run = root.join("run");
    let o = tiny_darts(&run, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let before = snapshot(&run);

    // The same command again: refused, naming both ways on, and nothing changed.
    let o = tiny_darts(&run, &["--seed", "5"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--resume") && err.contains("--force"), "{err}");
    assert_eq!(snapshot(&run), before, "the refused run changed the directory");

    // --force: the earlier run is moved aside whole, the new one starts afresh.
    let o = tiny_darts(&run, &["--seed", "5", "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    let aside = root.join("run.replaced-1");
    assert_eq!(snapshot(&aside), before, "the moved-aside run differs from the earlier run");
    assert_ne!(snapshot(&run).get("checkpoint.bin"), before.get("checkpoint.bin"));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "the new run's log holds only its own steps");

    // A directory holding something else is refused even with --force.
    let other = root.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let o = tiny_darts(&other, &["--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no wgpu-nas run"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(other.join("notes.txt")).unwrap(), "mine");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn hostile_calls_are_one_clear_line_with_the_right_exit_code() {
    let root = scratch("hostile-table");
    // Paths as &str for the rows (leaked: one test's worth).
    let r = |p: &str| -> &'static str { Box::leak(root.join(p).to_str().unwrap().to_string().into_boxed_str()) };
    // The runs and files the rows misuse.
    let darts = root.join("darts");
    assert!(tiny_darts(&darts, &[]).status.success());
    let enas_args = [
        "search",
        "enas",
        "--quiet",
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
        "2",
        "--batch-size",
        "4",
        "--out",
    ];
    let o = wgpu_nas(&[&enas_args[..], &[r("enas")]].concat(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let gdas_args = ["search", "gdas", "--quiet", "--hessian-iters", "1", "--out", r("gdas")];
    let o = wgpu_nas(&[&gdas_args[..], &TINY_DARTS[..]].concat(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let genotype = r("darts/genotype.json");
    let o = wgpu_nas(
        &[
            "train",
            "--quiet",
            "--genotype",
            genotype,
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--eval-batches",
            "1",
            "--init-channels",
            "2",
            "--batch-size",
            "4",
            "--out",
            r("train"),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    // A copy of the DARTS run with one bit of its checkpoint flipped.
    let flipped = root.join("flipped");
    std::fs::create_dir_all(&flipped).unwrap();
    for (name, bytes) in snapshot(&darts) {
        std::fs::write(flipped.join(name), bytes).unwrap();
    }
    let mut bytes = std::fs::read(flipped.join("checkpoint.bin")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(flipped.join("checkpoint.bin"), bytes).unwrap();
    // A run that stopped before its first checkpoint.
    let early = root.join("early");
    std::fs::create_dir_all(&early).unwrap();
    std::fs::write(early.join("config.json"), "{}").unwrap();
    // Genotypes that train rejects, so export must too.
    let bad_genotypes = [
        ("node7", "Genotype(normal=[('sep_conv_3x3', 7), ('sep_conv_3x3', 0)], normal_concat=[2], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])"),
        ("unknown_op", "Genotype(normal=[('conv_9x9', 1), ('sep_conv_3x3', 0)], normal_concat=[2], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])"),
        ("empty_concat", "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], normal_concat=[], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])"),
        ("concat_input", "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0)], normal_concat=[0], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])"),
        ("odd_entries", "Genotype(normal=[('sep_conv_3x3', 1)], normal_concat=[2], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])"),
    ];
    for (name, text) in bad_genotypes {
        std::fs::write(root.join(format!("{name}.py")), text).unwrap();
    }
    let embedded_files = concat!(env!("CARGO_MANIFEST_DIR"), "/data/embedded");

    let d = r("darts");
    let fresh = r("fresh");
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        // Run directories and resume.
        (vec!["search", "darts", "--resume", d, "--init-channels", "4"], vec![], 2, "--init-channels 4 differs"),
        (vec!["search", "darts", "--resume", d, "--layers", "2"], vec![], 2, "--layers 2 differs"),
        (vec!["search", "darts", "--resume", d, "--seed", "9"], vec![], 2, "--seed 9 differs"),
        (vec!["search", "darts", "--resume", d, "--order", "2"], vec![], 2, "--order 2 differs"),
        (vec!["search", "darts", "--resume", d, "--epochs", "0"], vec![], 2, "epochs"),
        (vec!["search", "darts", "--resume", d, "--dataset", "fashion-mnist", "--data-dir", embedded_files], vec![], 2, "was made on"),
        (vec!["search", "darts", "--resume", d, "--out", fresh], vec![], 2, "cannot be used with"),
        (vec!["search", "darts", "--force"], vec![], 2, "--out"),
        (vec!["search", "darts", "--resume", r("flipped")], vec![], 2, "damaged"),
        (vec!["search", "darts", "--resume", r("early")], vec![], 2, "before its first checkpoint"),
        (vec!["search", "darts", "--resume", r("nonexistent")], vec![], 2, "not a directory"),
        (vec!["search", "darts", "--resume", r("enas")], vec![], 2, "holds an ENAS search"),
        (vec!["search", "enas", "--resume", d], vec![], 2, "not an ENAS search"),
        (vec!["search", "gdas", "--resume", d], vec![], 2, "holds a DARTS search"),
        (vec!["search", "darts", "--resume", r("gdas")], vec![], 2, "holds a GDAS search"),
        (vec!["search", "gdas", "--resume", r("gdas"), "--tau-max", "5"], vec![], 2, "--tau-max 5 differs"),
        (vec!["train", "--resume", d], vec![], 2, "holds a DARTS search"),
        (vec!["train", "--resume", r("train"), "--init-channels", "4"], vec![], 2, "--init-channels 4 differs"),
        (vec!["train", "--resume", r("train"), "--genotype", r("node7.py")], vec![], 2, "not 7"),
        (vec!["search", "enas", "--resume", r("enas"), "--channels", "8"], vec![], 2, "--channels 8 differs"),
        (vec!["derive", "--run", r("enas")], vec![], 2, "architecture.json"),
        (vec!["derive", "--run", r("train")], vec![], 2, "not a DARTS search"),
        (vec!["derive", "--run", r("flipped")], vec![], 2, "damaged"),
        // Settings checked before anything is written.
        (vec!["search", "darts", "--learning-rate=-1", "--out", fresh], vec![], 2, "learning rate"),
        (vec!["search", "darts", "--arch-learning-rate", "nan", "--out", fresh], vec![], 2, "learning rate"),
        (vec!["search", "darts", "--learning-rate", "inf", "--out", fresh], vec![], 2, "learning rate"),
        (vec!["search", "darts", "--early-stop", "--early-stop-ratio", "1", "--out", fresh], vec![], 2, "ratio above 1"),
        (vec!["search", "darts", "--early-stop", "--early-stop-window", "0", "--out", fresh], vec![], 2, "window"),
        (vec!["search", "darts", "--early-stop", "--hessian-iters", "0", "--out", fresh], vec![], 2, "--hessian-iters"),
        (vec!["search", "darts", "--early-stop-window", "3", "--out", fresh], vec![], 2, "--early-stop"),
        (vec!["search", "gdas", "--tau-max", "1", "--tau-min", "5", "--out", fresh], vec![], 2, "schedule rises"),
        (vec!["search", "gdas", "--tau-max", "0", "--out", fresh], vec![], 2, "above 0"),
        (vec!["search", "gdas", "--tau-min=-0.1", "--out", fresh], vec![], 2, "above 0"),
        (vec!["search", "gdas", "--tau-max", "nan", "--out", fresh], vec![], 2, "above 0"),
        (vec!["search", "gdas", "--learning-rate", "inf", "--out", fresh], vec![], 2, "learning rate"),
        (vec!["search", "pc-darts", "--partial-channels", "3", "--out", fresh], vec![], 2, "does not divide"),
        (vec!["search", "pc-darts", "--partial-channels", "0", "--out", fresh], vec![], 2, "does not divide"),
        (vec!["search", "pc-darts", "--arch-start-epoch", "4", "--out", fresh], vec![], 2, "never be trained"),
        (vec!["search", "enas", "--controller-steps", "0", "--out", fresh], vec![], 2, "controller"),
        (vec!["search", "enas", "--learning-rate", "0", "--out", fresh], vec![], 2, "learning rate"),
        (vec!["train", "--genotype", genotype, "--cutout", "100000", "--out", fresh], vec![], 2, "cutout"),
        (vec!["train", "--genotype", genotype, "--learning-rate", "0", "--out", fresh], vec![], 2, "learning rate"),
        (vec!["train", "--genotype", r("unknown_op.py"), "--out", fresh], vec![], 2, "conv_9x9"),
        (vec!["devices"], vec![("WGPU_BACKEND", "bogus")], 2, "names no backend"),
        (vec!["search", "darts", "--out", fresh], vec![("WGPU_BACKEND", "vulkan,bogus")], 2, "names no backend"),
        // export checks a genotype as train does.
        (vec!["export", "--genotype", r("node7.py")], vec![], 2, "not 7"),
        (vec!["export", "--genotype", r("unknown_op.py"), "--format", "dot"], vec![], 2, "unknown operation"),
        (vec!["export", "--genotype", r("empty_concat.py"), "--format", "json"], vec![], 2, "concat"),
        (vec!["export", "--genotype", r("concat_input.py")], vec![], 2, "concat"),
        (vec!["export", "--genotype", r("odd_entries.py")], vec![], 2, "normal"),
        // Output that cannot be written: exit 4, no panic.
        (vec!["export", "--genotype", genotype], vec![], 4, "No space left"),
        // A loss that blows up: exit 3, the step and the quantity named.
        (vec!["search", "darts", "--learning-rate", "1e6", "--quiet", "--out", fresh, "--epochs", "1", "--steps-per-epoch", "2",
              "--eval-batches", "1", "--init-channels", "2", "--layers", "1", "--batch-size", "4"], vec![], 3, "NaN or infinite at step"),
    ];
    for (args, env, code, needle) in &rows {
        let o = if *code == 4 {
            // stdout onto a full device.
            let full = std::fs::File::create("/dev/full").unwrap();
            let mut c = Command::new(env!("CARGO_BIN_EXE_wgpu-nas"));
            c.args(args).stdout(full).output().unwrap()
        } else {
            wgpu_nas(args, env)
        };
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {}", text(&o));
        assert!(err.contains(needle), "{args:?}: stderr lacks {needle:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let error_lines = err.lines().filter(|l| l.starts_with("error")).count();
        assert_eq!(error_lines, 1, "{args:?}: one error line expected: {err}");
        // Bad input never creates the run directory (the NaN row did start a run).
        if *code == 2 {
            assert!(!root.join("fresh").exists(), "{args:?} created --out");
        }
        let _ = std::fs::remove_dir_all(root.join("fresh"));
    }
    // The NaN row's directory: its error said which quantity, and no checkpoint was written.
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_closed_stdout_does_not_stop_a_search() {
    let root = scratch("hostile-pipe");
    let run = root.join("run");
    let mut args = vec!["search", "darts", "--json", "--out", run.to_str().unwrap()];
    args.extend(TINY_DARTS);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgpu-nas"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close the pipe (as `| head -1` does).
    let mut stdout = child.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while std::io::Read::read(&mut stdout, &mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    drop(stdout);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(String::from_utf8_lossy(&first).starts_with("{\"step\""), "{}", String::from_utf8_lossy(&first));
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("Broken pipe") && !err.contains("panicked"), "{err}");
    // The search ran to its end: the run directory is complete.
    for f in ["checkpoint.bin", "genotype.json", "metrics.jsonl", "alphas.jsonl"] {
        assert!(run.join(f).is_file(), "{f} missing: {err}");
    }
    std::fs::remove_dir_all(&root).ok();
}

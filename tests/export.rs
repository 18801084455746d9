//! `export --weights`: a retraining's network as safetensors under quark0/darts NetworkCIFAR's
//! state_dict names. The expected names and shapes (tests/fixtures_data/darts_state_dict_tiny.json)
//! come from a transcription of the reference's module tree (darts_state_dict.py, beside it).

use std::collections::BTreeMap;
use std::process::Command;

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use wgpu_nas::checkpoint::Checkpoint;

#[path = "support/commands.rs"]
mod commands;
use commands::{text, wgpu_nas};

/// A tiny retraining of `genotype` (auxiliary head on) in `out`.
fn tiny_retraining(out: &str, genotype: &str) {
    let mut args = vec!["train", "--genotype", genotype, "--epochs", "1", "--steps-per-epoch", "2"];
    args.extend(["--eval-batches", "1", "--init-channels", "2", "--layers", "3", "--auxiliary"]);
    args.extend(["--batch-size", "4", "--quiet", "--out", out]);
    let o = wgpu_nas(&args);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn retrained_weights_carry_the_reference_state_dict_names_and_values() {
    let root = commands::scratch("export");
    let run = root.join("train");
    let r = run.to_str().unwrap();
    let genotype = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures_data/genotype_export.py");
    tiny_retraining(r, genotype);
    let o = wgpu_nas(&["export", "--weights", r]);
    assert!(o.status.success(), "{}", text(&o));
    let bytes = std::fs::read(run.join("weights.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();

    // Names and shapes: exactly the reference's.
    let expected: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("fixtures_data/darts_state_dict_tiny.json")).unwrap();
    let expected: BTreeMap<String, Vec<usize>> = expected
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), serde_json::from_value(e["shape"].clone()).unwrap()))
        .collect();
    let got: BTreeMap<String, Vec<usize>> = file.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec())).collect();
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");
    assert_eq!(got, expected, "shapes");

    // Values: the checkpoint's, bit for bit; BN step counters are int64, the run's steps.
    let checkpoint = Checkpoint::load(&run.join("checkpoint.bin")).unwrap();
    for (ours, theirs) in [
        ("net.classifier.weight", "classifier.weight"),
        ("net.stem.conv.weight", "stem.0.weight"),
        ("net.cells.0.ops.0.dw2.weight", "cells.0._ops.0.op.5.weight"),
        ("net.cells.1.ops.7.bn.running_var", "cells.1._ops.7.bn.running_var"),
        ("net.cells.1.ops.3.conv_7x1.weight", "cells.1._ops.3.2.weight"),
        ("net.auxiliary_head.bn2.running_mean", "auxiliary_head.features.6.running_mean"),
    ] {
        let want = checkpoint.get(ours).unwrap_or_else(|| panic!("checkpoint has no {ours}"));
        let view = file.tensor(theirs).unwrap();
        assert_eq!(view.dtype(), Dtype::F32);
        let values: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(values, want, "{theirs}");
    }
    let tracked = file.tensor("stem.1.num_batches_tracked").unwrap();
    assert_eq!(tracked.dtype(), Dtype::I64);
    assert_eq!(i64::from_le_bytes(tracked.data().try_into().unwrap()), 2);

    // Bad input: one line, exit code 2.
    let darts = root.join("darts");
    let o = wgpu_nas(&[
        "search",
        "darts",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "1",
        "--eval-batches",
        "1",
        "--init-channels",
        "2",
        "--layers",
        "1",
        "--batch-size",
        "4",
        "--quiet",
        "--out",
        darts.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for (args, needle) in [
        (vec!["export", "--weights", darts.to_str().unwrap()], "retraining"),
        (vec!["export", "--weights", r, "--format", "json"], "safetensors"),
        (vec!["export", "--genotype", genotype, "--format", "safetensors"], "--weights"),
        (vec!["export", "--weights", root.join("none").to_str().unwrap()], "checkpoint.bin"),
    ] {
        let o = wgpu_nas(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(needle), "{args:?}: {}", text(&o));
    }
    std::fs::remove_dir_all(&root).ok();
}

/// The Python of the virtual environment that `.ci/run` makes (onnxruntime, safetensors,
/// numpy), or `WGPU_NAS_PYTHON`.
fn python() -> std::path::PathBuf {
    let path = std::env::var_os("WGPU_NAS_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: make it with `python3 -m venv target/pyenv && target/pyenv/bin/pip install onnxruntime \
         safetensors numpy` (.ci/run does), or point WGPU_NAS_PYTHON at a Python that has them",
        path.display()
    );
    path
}

#[test]
fn onnxruntime_runs_the_exported_network_as_we_do_and_python_reads_the_weights() {
    use wgpu_nas::data::Dataset;
    use wgpu_nas::rng::Rng;
    use wgpu_nas::train::Trainer;
    use wgpu_nas::{Gpu, Tensor};

    let root = commands::scratch("export-onnx");
    let run = root.join("train");
    let r = run.to_str().unwrap();
    let genotype = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures_data/genotype_export.py");
    tiny_retraining(r, genotype);
    for format in ["onnx", "safetensors"] {
        let o = wgpu_nas(&["export", "--weights", r, "--format", format]);
        assert!(o.status.success(), "{}", text(&o));
    }

    // Our forward pass (eval mode) on a batch of 3.
    let gpu = Gpu::new().unwrap();
    let (train, test) = (Dataset::embedded_train().unwrap(), Dataset::embedded_test().unwrap());
    let trainer = Trainer::load(&gpu, &run.join("checkpoint.bin"), &train, &test).unwrap();
    let shape = [3, 1, 28, 28];
    let mut rng = Rng::new(7);
    let x = rng.normal_vec(shape.iter().product(), 1.0);
    let input = Tensor::from_slice(&gpu, &shape, &x).unwrap();
    let (logits, _) = gpu.no_grad(|| trainer.method.net.forward(&input, false, 0.0, &mut rng)).unwrap();
    let logits = pollster::block_on(logits.read()).unwrap();
    let bytes = |v: &[f32]| v.iter().flat_map(|f| f.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(root.join("x.f32"), bytes(&x)).unwrap();
    std::fs::write(root.join("logits.f32"), bytes(&logits)).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures_data/check_export.py");
    let expected = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures_data/darts_state_dict_tiny.json");
    let o = Command::new(python())
        .args([script, run.join("model.onnx").to_str().unwrap()])
        .args([root.join("x.f32"), root.join("logits.f32")])
        .arg("3,1,28,28")
        .args([run.join("weights.safetensors").to_str().unwrap(), expected])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    println!("{}", String::from_utf8_lossy(&o.stdout));
    std::fs::remove_dir_all(&root).ok();
}

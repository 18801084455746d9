//! Trained weights out: a retraining's network as an ONNX model ([`onnx`]) or a safetensors file whose tensors carry the
//! reference's PyTorch `state_dict` names, so that quark0/darts `NetworkCIFAR(C, classes,
//! layers, auxiliary, genotype)` loads it with
//! `model.load_state_dict(safetensors.torch.load_file(path))`.
//!
//! Names follow `cnn/model.py` and `cnn/operations.py`: `stem.0` (conv) and `stem.1` (BN);
//! `cells.I.preprocess0/1` as `ReLUConvBN` (`op.1` conv, `op.2` BN) or `FactorizedReduce`
//! (`conv_1`, `conv_2`, `bn`); `cells.I._ops.K` as `SepConv` (`op.1`, `op.2`, `op.3`, `op.5`,
//! `op.6`, `op.7`), `DilConv` (`op.1`, `op.2`, `op.3`), `conv_7x1_1x7` (`1`, `2`, `3`) or
//! `FactorizedReduce`;
//! `auxiliary_head.features.2/3/5/6` and `auxiliary_head.classifier`; `classifier`. Every
//! BatchNorm2d also gets the `num_batches_tracked` (int64) that PyTorch keeps: the run's
//! training steps. Layouts are PyTorch's already (conv weights [C_out, C_in / groups, kH, kW],
//! linear weights [out, in]). ENAS networks (macro, or micro cells built as `micro_child.py`)
//! have no PyTorch reference: their tensors keep this crate's names.

mod onnx;

pub use onnx::onnx;

use std::collections::{BTreeMap, HashMap, HashSet};

use safetensors::tensor::{Dtype, TensorView};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::train::{Architecture, CellVariant, TrainConfig};

/// The reference's name for the evaluation network's tensor `ours` (a name under `net.` in a
/// retraining's checkpoint, without the prefix); `all` holds every such name (some modules are
/// told apart by their siblings: a `FactorizedReduce` has `conv_1`).
pub fn darts_name(ours: &str, all: &HashSet<&str>) -> Result<String> {
    let parts: Vec<&str> = ours.split('.').collect();
    let unknown = || Error::Config(format!("tensor {ours:?} has no counterpart in quark0/darts NetworkCIFAR"));
    let has = |prefix: &str, child: &str| all.contains(format!("{prefix}.{child}.weight").as_str());
    let join = |head: &[&str], mapped: &str, rest: &[&str]| {
        let mut v: Vec<&str> = head.to_vec();
        v.push(mapped);
        v.extend(rest);
        v.join(".")
    };
    Ok(match parts.as_slice() {
        ["stem", "conv", rest @ ..] => join(&["stem"], "0", rest),
        ["stem", "bn", rest @ ..] => join(&["stem"], "1", rest),
        ["classifier", ..] => ours.to_string(),
        ["auxiliary_head", "classifier", ..] => ours.to_string(),
        ["auxiliary_head", module, rest @ ..] => {
            let index = match *module {
                "conv1" => "features.2",
                "bn1" => "features.3",
                "conv2" => "features.5",
                "bn2" => "features.6",
                _ => return Err(unknown()),
            };
            join(&["auxiliary_head"], index, rest)
        }
        ["cells", i, pre @ ("preprocess0" | "preprocess1"), module, rest @ ..] => {
            let prefix = format!("cells.{i}.{pre}");
            let mapped = match *module {
                "conv_1" | "conv_2" => module,
                "bn" if has(&prefix, "conv_1") => "bn",
                "conv" => "op.1",
                "bn" => "op.2",
                _ => return Err(unknown()),
            };
            join(&["cells", i, pre], mapped, rest)
        }
        ["cells", i, "ops", k, module, rest @ ..] => {
            let prefix = format!("cells.{i}.ops.{k}");
            let mapped = match *module {
                // SepConv: ReLU, dw, pw, BN, ReLU, dw, pw, BN.
                "dw1" => "op.1",
                "pw1" => "op.2",
                "bn1" => "op.3",
                "dw2" => "op.5",
                "pw2" => "op.6",
                "bn2" => "op.7",
                // DilConv: ReLU, dw, pw, BN.
                "dw" => "op.1",
                "pw" => "op.2",
                "bn" if has(&prefix, "dw") => "op.3",
                // conv_7x1_1x7: a Sequential of ReLU, conv (1, 7), conv (7, 1), BN.
                "conv_1x7" => "1",
                "conv_7x1" => "2",
                "bn" if has(&prefix, "conv_1x7") => "3",
                // FactorizedReduce (skip_connect with stride 2).
                "conv_1" | "conv_2" => module,
                "bn" if has(&prefix, "conv_1") => "bn",
                _ => return Err(unknown()),
            };
            let k = *k;
            join(&["cells", i, "_ops", k], mapped, rest)
        }
        _ => return Err(unknown()),
    })
}

/// The config of a retraining's checkpoint (weights come only from `train` runs).
fn retraining(checkpoint: &Checkpoint) -> Result<TrainConfig> {
    if checkpoint.kind != "train" {
        return Err(Error::Config(format!(
            "weights come from a retraining (`wgpu-nas train`); this checkpoint is from a {} run",
            checkpoint.kind
        )));
    }
    let config = checkpoint.meta.get("config").cloned();
    Ok(serde_json::from_value(config.ok_or_else(|| Error::Config("the checkpoint has no config".into()))?)?)
}

/// The network of a retraining's checkpoint as safetensors bytes: reference names for DARTS
/// cells (see the module doc), this crate's names for an ENAS macro network; metadata says
/// where it came from (`format: pt`, as `safetensors.torch` writes).
pub fn safetensors(checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    let config = retraining(checkpoint)?;
    let steps = checkpoint.meta.get("global_step").and_then(|v| v.as_i64()).unwrap_or(0);
    let net: Vec<(&str, &[usize], &[f32])> = checkpoint
        .tensors
        .iter()
        .filter_map(|(e, v)| Some((e.name.strip_prefix("net.")?, e.shape.as_slice(), v.as_slice())))
        .collect();
    let all: HashSet<&str> = net.iter().map(|(n, _, _)| *n).collect();
    // Only quark0/darts cells have a PyTorch reference to name the tensors after.
    let cells = matches!(config.network.architecture, Architecture::Cells(_))
        && config.network.cell_variant == CellVariant::Darts;
    // (name, dtype, shape, little-endian bytes), by name.
    let mut out: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (name, shape, values) in &net {
        let mapped = if cells { darts_name(name, &all)? } else { name.to_string() };
        if let Some(bn) = mapped.strip_suffix(".running_var") {
            out.insert(format!("{bn}.num_batches_tracked"), (Dtype::I64, vec![], steps.to_le_bytes().to_vec()));
        }
        let bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        if out.insert(mapped.clone(), (Dtype::F32, shape.to_vec(), bytes)).is_some() {
            return Err(Error::Config(format!("two tensors map to the name {mapped}")));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = out
        .iter()
        .map(|(name, (dtype, shape, bytes))| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Config(format!("tensor {name}: {e}")))
        })
        .collect::<Result<_>>()?;
    let mut info = HashMap::new();
    info.insert("format".to_string(), "pt".to_string());
    info.insert("source".to_string(), format!("wgpu-nas {}", env!("CARGO_PKG_VERSION")));
    let model = match &config.network.architecture {
        _ if cells => "quark0/darts cnn/model.py NetworkCIFAR",
        Architecture::NasBench201(_) => "wgpu-nas NAS-Bench-201 network",
        _ => "wgpu-nas ENAS network",
    };
    info.insert("model".to_string(), model.into());
    match &config.network.architecture {
        Architecture::Cells(g) => {
            info.insert("genotype".to_string(), g.to_python());
        }
        Architecture::NasBench201(c) => {
            info.insert("nas_bench_201".to_string(), c.to_string());
        }
        Architecture::Macro(_) => {}
    }
    safetensors::serialize(views, Some(info)).map_err(|e| Error::Config(format!("safetensors: {e}")))
}

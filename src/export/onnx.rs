//! A retrained DARTS network as an ONNX model (opset 17, inference graph): the reference's
//! `NetworkCIFAR.forward` in eval mode (no auxiliary head, no drop path), BN as
//! BatchNormalization with the running statistics, weights as initializers under the
//! reference's `state_dict` names (see [`super::darts_name`]). Input `input` [N, C_in, H, W]
//! (N free), output `logits` [N, classes].
//!
//! The protobuf messages are the subset of `onnx.proto` (onnx/onnx, `onnx/onnx.proto`) that
//! this graph needs, with the field numbers of that file, encoded by `prost`.

use std::collections::{HashMap, HashSet};

use prost::Message;

use super::darts_name;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::space::Genotype;
use crate::train::{Architecture, CellVariant};

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(int64, optional, tag = "1")]
    ir_version: Option<i64>,
    #[prost(string, optional, tag = "2")]
    producer_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    producer_version: Option<String>,
    #[prost(string, optional, tag = "6")]
    doc_string: Option<String>,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<OperatorSetIdProto>,
}

#[derive(Clone, PartialEq, Message)]
struct OperatorSetIdProto {
    #[prost(string, optional, tag = "1")]
    domain: Option<String>,
    #[prost(int64, optional, tag = "2")]
    version: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(string, optional, tag = "2")]
    name: Option<String>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    op_type: Option<String>,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

/// `AttributeProto.AttributeType`.
const ATTR_FLOAT: i32 = 1;
const ATTR_INT: i32 = 2;
const ATTR_INTS: i32 = 7;

#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(float, optional, tag = "2")]
    f: Option<f32>,
    #[prost(int64, optional, tag = "3")]
    i: Option<i64>,
    #[prost(int64, repeated, packed = "false", tag = "8")]
    ints: Vec<i64>,
    #[prost(int32, optional, tag = "20")]
    r#type: Option<i32>,
}

/// `TensorProto.DataType`.
const FLOAT: i32 = 1;
const INT64: i32 = 7;

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, packed = "false", tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, optional, tag = "2")]
    data_type: Option<i32>,
    #[prost(string, optional, tag = "8")]
    name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "9")]
    raw_data: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorTypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorTypeProto {
    #[prost(int32, optional, tag = "1")]
    elem_type: Option<i32>,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, Message)]
struct Dimension {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), i: Some(v), r#type: Some(ATTR_INT), ..Default::default() }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: Some(name.into()), ints: v.to_vec(), r#type: Some(ATTR_INTS), ..Default::default() }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: Some(name.into()), f: Some(v), r#type: Some(ATTR_FLOAT), ..Default::default() }
}

fn value_info(name: &str, dims: &[Dimension]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: Some(FLOAT),
                shape: Some(TensorShapeProto { dim: dims.to_vec() }),
            }),
        }),
    }
}

/// The graph under construction: nodes in order, initializers by (reference) name.
struct Graph<'a> {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    /// Our tensor names (without `net.`) -> (shape, values).
    weights: HashMap<&'a str, (&'a [usize], &'a [f32])>,
    names: HashSet<&'a str>,
    used: HashSet<String>,
    eps: f32,
}

impl Graph<'_> {
    /// A fresh value name.
    fn value(&self, hint: &str) -> String {
        format!("{hint}/{}", self.nodes.len())
    }

    fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>, hint: &str) -> String {
        let out = self.value(hint);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: Some(out.clone()),
            op_type: Some(op.into()),
            attribute: attrs,
        });
        out
    }

    /// The initializer for our tensor `ours`, under its reference name.
    fn weight(&mut self, ours: &str) -> Result<String> {
        let (shape, values) =
            *self.weights.get(ours).ok_or_else(|| Error::Config(format!("the checkpoint has no tensor net.{ours}")))?;
        let name = darts_name(ours, &self.names)?;
        if self.used.insert(name.clone()) {
            self.initializers.push(TensorProto {
                dims: shape.iter().map(|&d| d as i64).collect(),
                data_type: Some(FLOAT),
                name: Some(name.clone()),
                raw_data: Some(values.iter().flat_map(|x| x.to_le_bytes()).collect()),
            });
        }
        Ok(name)
    }

    fn constant_i64(&mut self, name: &str, values: &[i64]) -> String {
        if self.used.insert(name.to_string()) {
            self.initializers.push(TensorProto {
                dims: vec![values.len() as i64],
                data_type: Some(INT64),
                name: Some(name.into()),
                raw_data: Some(values.iter().flat_map(|x| x.to_le_bytes()).collect()),
            });
        }
        name.to_string()
    }

    fn relu(&mut self, x: &str) -> String {
        self.node("Relu", &[x], vec![], "relu")
    }

    /// Conv2d without bias, square kernel: weight [C_out, C_in / groups, k, k].
    fn conv(&mut self, x: &str, ours: &str, stride: i64, pad: i64, dilation: i64, groups: i64) -> Result<String> {
        let w = self.weight(&format!("{ours}.weight"))?;
        let attrs = vec![
            ints("strides", &[stride, stride]),
            ints("pads", &[pad, pad, pad, pad]),
            ints("dilations", &[dilation, dilation]),
            int("group", groups),
        ];
        Ok(self.node("Conv", &[x, &w], attrs, "conv"))
    }

    /// A full conv without bias, per-axis stride and padding ([along H, along W]).
    fn conv_rect(&mut self, x: &str, ours: &str, stride: [i64; 2], pad: [i64; 2]) -> Result<String> {
        let w = self.weight(&format!("{ours}.weight"))?;
        let attrs = vec![ints("strides", &stride), ints("pads", &[pad[0], pad[1], pad[0], pad[1]])];
        Ok(self.node("Conv", &[x, &w], attrs, "conv"))
    }

    fn bn(&mut self, x: &str, ours: &str) -> Result<String> {
        let inputs: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
            .iter()
            .map(|t| self.weight(&format!("{ours}.{t}")))
            .collect::<Result<_>>()?;
        let eps = self.eps;
        Ok(self.node(
            "BatchNormalization",
            &[x, &inputs[0], &inputs[1], &inputs[2], &inputs[3]],
            vec![float("epsilon", eps)],
            "bn",
        ))
    }

    /// ReLU, conv_1 on x and conv_2 on x[:, :, 1:, 1:] (both 1x1, stride 2), concat, BN.
    fn factorized_reduce(&mut self, x: &str, ours: &str) -> Result<String> {
        let r = self.relu(x);
        let a = self.conv(&r, &format!("{ours}.conv_1"), 2, 0, 1, 1)?;
        let starts = self.constant_i64("const/starts_1_1", &[1, 1]);
        let ends = self.constant_i64("const/ends_max", &[i64::MAX, i64::MAX]);
        let axes = self.constant_i64("const/axes_2_3", &[2, 3]);
        let shifted = self.node("Slice", &[&r, &starts, &ends, &axes], vec![], "slice");
        let b = self.conv(&shifted, &format!("{ours}.conv_2"), 2, 0, 1, 1)?;
        let cat = self.node("Concat", &[&a, &b], vec![int("axis", 1)], "concat");
        self.bn(&cat, &format!("{ours}.bn"))
    }

    /// One operation of a cell (`OPS[name](C, stride, affine=True)`), our tensors under `ours`.
    fn op(&mut self, x: &str, name: &str, ours: &str, c: i64, stride: i64) -> Result<String> {
        let pool =
            |k: i64| vec![ints("kernel_shape", &[k, k]), ints("strides", &[stride, stride]), ints("pads", &[1; 4])];
        Ok(match name {
            "max_pool_3x3" => self.node("MaxPool", &[x], pool(3), "maxpool"),
            "avg_pool_3x3" => {
                let mut attrs = pool(3);
                attrs.push(int("count_include_pad", 0));
                self.node("AveragePool", &[x], attrs, "avgpool")
            }
            "skip_connect" | "identity" if stride == 1 => x.to_string(),
            "skip_connect" | "identity" => self.factorized_reduce(x, ours)?,
            "sep_conv_3x3" | "sep_conv_5x5" | "sep_conv_7x7" => {
                let k: i64 = name[name.len() - 1..].parse().expect("a digit");
                let r = self.relu(x);
                let d = self.conv(&r, &format!("{ours}.dw1"), stride, k / 2, 1, c)?;
                let p = self.conv(&d, &format!("{ours}.pw1"), 1, 0, 1, 1)?;
                let b = self.bn(&p, &format!("{ours}.bn1"))?;
                let r = self.relu(&b);
                let d = self.conv(&r, &format!("{ours}.dw2"), 1, k / 2, 1, c)?;
                let p = self.conv(&d, &format!("{ours}.pw2"), 1, 0, 1, 1)?;
                self.bn(&p, &format!("{ours}.bn2"))?
            }
            "dil_conv_3x3" | "dil_conv_5x5" => {
                let k: i64 = name[name.len() - 1..].parse().expect("a digit");
                let r = self.relu(x);
                let d = self.conv(&r, &format!("{ours}.dw"), stride, k - 1, 2, c)?;
                let p = self.conv(&d, &format!("{ours}.pw"), 1, 0, 1, 1)?;
                self.bn(&p, &format!("{ours}.bn"))?
            }
            "conv_7x1_1x7" => {
                let r = self.relu(x);
                let a = self.conv_rect(&r, &format!("{ours}.conv_1x7"), [1, stride], [0, 3])?;
                let b = self.conv_rect(&a, &format!("{ours}.conv_7x1"), [stride, 1], [3, 0])?;
                self.bn(&b, &format!("{ours}.bn"))?
            }
            other => return Err(Error::Config(format!("the ONNX export has no operation {other:?}"))),
        })
    }
}

/// The evaluation network of a retraining's checkpoint as ONNX bytes.
pub fn onnx(checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    let config = super::retraining(checkpoint)?;
    if config.network.cell_variant != CellVariant::Darts {
        return Err(Error::Config(
            "the ONNX export covers quark0/darts cell networks; this run retrained ENAS micro cells".into(),
        ));
    }
    let Architecture::Cells(genotype) = &config.network.architecture else {
        return Err(Error::Config(
            "the ONNX export covers DARTS cell networks; this run retrained an ENAS macro network or a NAS-Bench-201 cell"
                .into(),
        ));
    };
    let weights: HashMap<&str, (&[usize], &[f32])> = checkpoint
        .tensors
        .iter()
        .filter_map(|(e, v)| Some((e.name.strip_prefix("net.")?, (e.shape.as_slice(), v.as_slice()))))
        .collect();
    let names = weights.keys().copied().collect();
    let mut g = Graph { nodes: vec![], initializers: vec![], weights, names, used: HashSet::new(), eps: 1e-5 };
    let net = &config.network;
    let logits = network(&mut g, genotype, net.channels as i64, net.layers, &net.reduction_cells())?;
    let dims = |d: &[Option<usize>]| -> Vec<Dimension> {
        d.iter()
            .map(|v| match v {
                Some(v) => Dimension { dim_value: Some(*v as i64), dim_param: None },
                None => Dimension { dim_value: None, dim_param: Some("N".into()) },
            })
            .collect()
    };
    // Spatial sizes are free too: the graph is fully convolutional up to the global pool.
    let input = value_info("input", &dims(&[None, Some(net.in_channels), None, None]));
    let output = value_info("logits", &dims(&[None, Some(net.num_classes)]));
    let mut nodes = g.nodes;
    // Name the last node's output `logits`.
    if let Some(last) = nodes.last_mut() {
        for o in last.output.iter_mut().filter(|o| **o == logits) {
            *o = "logits".into();
        }
    }
    let model = ModelProto {
        ir_version: Some(8),
        producer_name: Some("wgpu-nas".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!("quark0/darts NetworkCIFAR, eval mode; genotype {}", genotype.to_python())),
        graph: Some(GraphProto {
            node: nodes,
            name: Some("NetworkCIFAR".into()),
            initializer: g.initializers,
            input: vec![input],
            output: vec![output],
        }),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
    };
    Ok(model.encode_to_vec())
}

/// `NetworkCIFAR.forward` in eval mode; returns the logits' value name.
fn network(g: &mut Graph<'_>, genotype: &Genotype, c: i64, layers: usize, reductions: &[usize]) -> Result<String> {
    let stem = g.conv("input", "stem.conv", 1, 1, 1, 1)?;
    let stem = g.bn(&stem, "stem.bn")?;
    let (mut s0, mut s1) = (stem.clone(), stem);
    let mut c_curr = c;
    let mut reduction_prev = false;
    for i in 0..layers {
        let reduction = reductions.contains(&i);
        if reduction {
            c_curr *= 2;
        }
        let p = format!("cells.{i}");
        let a = if reduction_prev {
            g.factorized_reduce(&s0, &format!("{p}.preprocess0"))?
        } else {
            let r = g.relu(&s0);
            let x = g.conv(&r, &format!("{p}.preprocess0.conv"), 1, 0, 1, 1)?;
            g.bn(&x, &format!("{p}.preprocess0.bn"))?
        };
        let r = g.relu(&s1);
        let x = g.conv(&r, &format!("{p}.preprocess1.conv"), 1, 0, 1, 1)?;
        let b = g.bn(&x, &format!("{p}.preprocess1.bn"))?;
        let (entries, concat) = if reduction {
            (&genotype.reduce, &genotype.reduce_concat)
        } else {
            (&genotype.normal, &genotype.normal_concat)
        };
        let mut states = vec![a, b];
        for (k, pair) in entries.chunks(2).enumerate() {
            let mut h = Vec::with_capacity(2);
            for (j, (name, index)) in pair.iter().enumerate() {
                let stride = if reduction && *index < 2 { 2 } else { 1 };
                let x = states
                    .get(*index)
                    .cloned()
                    .ok_or_else(|| Error::Config(format!("cell {i}: input {index} does not exist")))?;
                h.push(g.op(&x, name, &format!("{p}.ops.{}", 2 * k + j), c_curr, stride)?);
            }
            let sum = g.node("Add", &[&h[0], &h[1]], vec![], "add");
            states.push(sum);
        }
        let parts: Vec<&str> = concat.iter().map(|&j| states[j].as_str()).collect();
        let out = g.node("Concat", &parts, vec![int("axis", 1)], "cell");
        reduction_prev = reduction;
        (s0, s1) = (s1, out);
    }
    let pooled = g.node("GlobalAveragePool", &[&s1], vec![], "pool");
    let flat = g.node("Flatten", &[&pooled], vec![int("axis", 1)], "flatten");
    let w = g.weight("classifier.weight")?;
    let b = g.weight("classifier.bias")?;
    Ok(g.node("Gemm", &[&flat, &w, &b], vec![int("transB", 1)], "logits"))
}

//! The ENAS architectures (Pham et al. 2018, melodyguan/enas) and their flat encodings: the
//! sequence of integer decisions the controller samples, in the reference's `arc` layout.

use serde::{Deserialize, Serialize};

use super::genotype::Genotype;
use super::graph::{GraphEdge, GraphNode, ModelGraph, NodeKind};
use super::{CONCAT, ENAS_MACRO_OPS, ENAS_MICRO_OPS, IDENTITY};
use crate::error::{Error, Result};

/// Which ENAS search space, with its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnasSpace {
    /// Normal and reduction cells of `num_nodes` nodes (5 in the paper), each node two inputs
    /// and two operations of [`ENAS_MICRO_OPS`].
    Micro {
        /// Intermediate nodes per cell.
        num_nodes: usize,
    },
    /// `num_layers` layers (12 in the paper), each an operation of [`ENAS_MACRO_OPS`] and a skip
    /// bit to every earlier layer.
    Macro {
        /// Layers of the network.
        num_layers: usize,
    },
}

impl EnasSpace {
    /// Length of the controller's decision sequence (the flat encoding).
    pub fn num_decisions(&self) -> usize {
        match *self {
            EnasSpace::Micro { num_nodes } => 8 * num_nodes,
            EnasSpace::Macro { num_layers } => num_layers + num_layers * num_layers.saturating_sub(1) / 2,
        }
    }

    /// Number of candidate operations per choice.
    pub fn num_ops(&self) -> usize {
        match self {
            EnasSpace::Micro { .. } => ENAS_MICRO_OPS.len(),
            EnasSpace::Macro { .. } => ENAS_MACRO_OPS.len(),
        }
    }

    /// Reads a flat decision sequence as an architecture of this space (validated).
    pub fn decode(&self, flat: &[usize]) -> Result<Arch> {
        Ok(match *self {
            EnasSpace::Micro { num_nodes } => Arch::Micro(MicroArch::from_flat(flat, num_nodes)?),
            EnasSpace::Macro { num_layers } => Arch::Macro(MacroArch::from_flat(flat, num_layers)?),
        })
    }
}

/// One node of an ENAS micro cell: two inputs (0 and 1 are the cell inputs, `2 + j` is node
/// `j`), each with an operation (an index into [`ENAS_MICRO_OPS`]); the results are summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicroNode {
    /// Where each of the two branches reads: 0 and 1 are the cell inputs, `2 + j` is node `j`.
    pub inputs: [usize; 2],
    /// The operation of each branch, an index into [`ENAS_MICRO_OPS`].
    pub ops: [usize; 2],
}

/// An ENAS micro-space architecture: a normal cell and a reduction cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicroArch {
    /// The normal cell's nodes, in order.
    pub normal: Vec<MicroNode>,
    /// The reduction cell's nodes, in order.
    pub reduce: Vec<MicroNode>,
}

impl MicroArch {
    /// The controller's decisions: normal cell then reduction cell, each node as
    /// `[x_id, x_op, y_id, y_op]` (the reference's `normal_arc` + `reduce_arc`).
    pub fn to_flat(&self) -> Vec<usize> {
        self.normal.iter().chain(&self.reduce).flat_map(|n| [n.inputs[0], n.ops[0], n.inputs[1], n.ops[1]]).collect()
    }

    /// Reads [`MicroArch::to_flat`]'s layout for cells of `num_nodes` nodes, and validates it.
    pub fn from_flat(flat: &[usize], num_nodes: usize) -> Result<MicroArch> {
        if flat.len() != 8 * num_nodes {
            return Err(Error::Config(format!(
                "a micro architecture of {num_nodes} nodes per cell has {} decisions (4 per node, 2 cells), got {}",
                8 * num_nodes,
                flat.len()
            )));
        }
        let nodes = |cell: &[usize]| -> Vec<MicroNode> {
            cell.chunks(4).map(|c| MicroNode { inputs: [c[0], c[2]], ops: [c[1], c[3]] }).collect()
        };
        let (normal, reduce) = flat.split_at(4 * num_nodes);
        let arch = MicroArch { normal: nodes(normal), reduce: nodes(reduce) };
        arch.validate()?;
        Ok(arch)
    }

    /// Reads the reference's `--child_fixed_arc` text for the micro space
    /// (`cifar10_micro_final.sh`, split as `micro_child.py`'s `connect_controller` does): the
    /// normal cell's `x_id x_op y_id y_op` per node, then the reduction cell's, as
    /// whitespace-separated integers; the number of nodes follows from the count, 8 per node (40
    /// for the reference's 5).
    pub fn from_reference_text(text: &str) -> Result<MicroArch> {
        let flat = fixed_arc_integers(text, "micro")?;
        if flat.is_empty() || !flat.len().is_multiple_of(8) {
            return Err(Error::Config(format!(
                "a micro fixed_arc has 8 integers per node (x_id x_op y_id y_op for each node of the normal cell, \
                 then of the reduction cell: 8, 16, ..., 40 for the reference's 5 nodes), got {}",
                flat.len()
            )));
        }
        MicroArch::from_flat(&flat, flat.len() / 8)
    }

    /// Node `i` reads only from `0..i + 2`; operations index [`ENAS_MICRO_OPS`].
    pub fn validate(&self) -> Result<()> {
        for (name, cell) in [("normal", &self.normal), ("reduce", &self.reduce)] {
            if cell.is_empty() {
                return Err(Error::Config(format!("micro architecture: the {name} cell has no nodes")));
            }
            for (i, node) in cell.iter().enumerate() {
                for (input, op) in node.inputs.into_iter().zip(node.ops) {
                    if input >= i + 2 {
                        return Err(Error::Config(format!(
                            "micro architecture, {name} cell, node {i}: input {input} is not one of 0..={}",
                            i + 1
                        )));
                    }
                    if op >= ENAS_MICRO_OPS.len() {
                        return Err(Error::Config(format!(
                            "micro architecture, {name} cell, node {i}: operation {op} is not one of 0..{} ({})",
                            ENAS_MICRO_OPS.len(),
                            ENAS_MICRO_OPS.join(", ")
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The same architecture as a [`Genotype`] over [`ENAS_MICRO_OPS`]. ENAS concatenates the
    /// "loose ends" (nodes no other node reads), not a fixed range, so that every node's
    /// result is used; the concat lists are those.
    pub fn to_genotype(&self) -> Genotype {
        let entries = |cell: &[MicroNode]| -> Vec<(String, usize)> {
            cell.iter().flat_map(|n| [0, 1].map(|s| (ENAS_MICRO_OPS[n.ops[s]].to_string(), n.inputs[s]))).collect()
        };
        let loose_ends = |cell: &[MicroNode]| -> Vec<usize> {
            (2..cell.len() + 2).filter(|&id| !cell.iter().any(|n| n.inputs.contains(&id))).collect()
        };
        Genotype {
            normal: entries(&self.normal),
            normal_concat: loose_ends(&self.normal),
            reduce: entries(&self.reduce),
            reduce_concat: loose_ends(&self.reduce),
        }
    }

    /// The normal and reduction cells as graphs (validate with [`ENAS_MICRO_OPS`]). Strides follow
    /// the DARTS convention: in the reduction cell the operations reading a cell input have
    /// stride 2 (ENAS reduces those inputs first; either way every node sits at half resolution).
    pub fn to_graphs(&self) -> (ModelGraph, ModelGraph) {
        ModelGraph::from_genotype(&self.to_genotype())
    }
}

/// The space a reference `--child_fixed_arc` text is in (the reference's `--search_for`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SearchFor {
    /// A chain of layers: per layer an operation and its skip bits (`general_child.py`).
    Macro,
    /// A normal and a reduction cell of nodes, 4 integers per node (`micro_child.py`).
    Micro,
}

impl SearchFor {
    /// The space of a fixed_arc of `count` integers when only one fits: a macro one has
    /// `L(L+1)/2`, a micro one `8 * nodes`; `None` when both do (120, 136, ...) or neither.
    pub fn from_count(count: usize) -> Option<SearchFor> {
        let triangular = (1..=count).take_while(|l| l * (l + 1) / 2 <= count).any(|l| l * (l + 1) / 2 == count);
        let micro = count > 0 && count.is_multiple_of(8);
        match (triangular, micro) {
            (true, false) => Some(SearchFor::Macro),
            (false, true) => Some(SearchFor::Micro),
            _ => None,
        }
    }
}

/// The integers of a reference `--child_fixed_arc` text (whitespace-separated, as the
/// reference's `fixed_arc.split(" ")` with empty pieces dropped); `space` names it in errors.
fn fixed_arc_integers(text: &str, space: &str) -> Result<Vec<usize>> {
    text.split_whitespace()
        .map(|token| {
            token
                .parse::<usize>()
                .map_err(|_| Error::Config(format!("{space} fixed_arc: {token:?} is not a non-negative integer")))
        })
        .collect()
}

/// One layer of the ENAS macro space: an operation (an index into [`ENAS_MACRO_OPS`]) applied
/// to the previous layer, plus skip connections from earlier layers (`skips[j]`: layer `j`'s
/// output joins this layer's; `skips.len()` is the layer's index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroLayer {
    /// The layer's operation, an index into [`ENAS_MACRO_OPS`].
    pub op: usize,
    /// `skips[j]`: whether layer `j`'s output is added to this layer's.
    pub skips: Vec<bool>,
}

/// An ENAS macro-space architecture: a chain of layers with skip connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroArch {
    /// The layers, input side first.
    pub layers: Vec<MacroLayer>,
}

impl MacroArch {
    /// The operations a macro [`ModelGraph`] uses: [`ENAS_MACRO_OPS`] on the chain, and
    /// [`IDENTITY`] on skip connections.
    pub fn graph_ops() -> Vec<&'static str> {
        ENAS_MACRO_OPS.iter().copied().chain([IDENTITY]).collect()
    }

    /// The controller's decisions, the reference's `arc`: for layer `i`, its operation then its
    /// `i` skip bits (0 or 1).
    pub fn to_flat(&self) -> Vec<usize> {
        self.layers.iter().flat_map(|l| std::iter::once(l.op).chain(l.skips.iter().map(|&s| s as usize))).collect()
    }

    /// Reads [`MacroArch::to_flat`]'s layout for `num_layers` layers, and validates it.
    pub fn from_flat(flat: &[usize], num_layers: usize) -> Result<MacroArch> {
        let expected = num_layers + num_layers * num_layers.saturating_sub(1) / 2;
        if flat.len() != expected {
            return Err(Error::Config(format!(
                "a macro architecture of {num_layers} layers has {expected} decisions (an operation per layer and \
                 a skip bit per earlier layer), got {}",
                flat.len()
            )));
        }
        let mut layers = Vec::with_capacity(num_layers);
        let mut rest = flat;
        for i in 0..num_layers {
            let (decisions, tail) = rest.split_at(1 + i);
            rest = tail;
            let mut skips = Vec::with_capacity(i);
            for (j, &bit) in decisions[1..].iter().enumerate() {
                match bit {
                    0 | 1 => skips.push(bit == 1),
                    _ => {
                        return Err(Error::Config(format!(
                            "macro architecture, layer {i}: skip bit to layer {j} is {bit}, not 0 or 1"
                        )))
                    }
                }
            }
            layers.push(MacroLayer { op: decisions[0], skips });
        }
        let arch = MacroArch { layers };
        arch.validate()?;
        Ok(arch)
    }

    /// Reads the reference's `--child_fixed_arc` text (`cifar10_macro_final.sh`): the
    /// [`MacroArch::to_flat`] decisions as whitespace-separated integers. The number of layers
    /// `L` follows from the count, `L(L+1)/2` (1, 3, 6, 10, ...).
    ///
    /// The bits are stored as given. What bit `j` joins is the network's reading: the
    /// reference's child reads it as its `prev_layers[j]`, whose entry 0 is the stem (the stem
    /// for `j = 0`, layer `j - 1` otherwise), while its controller's attention anchor `j` is
    /// layer `j`. Our search and graphs read layer `j`; retraining follows the reference by
    /// default (its `MacroVariant`).
    pub fn from_reference_text(text: &str) -> Result<MacroArch> {
        let flat = fixed_arc_integers(text, "macro")?;
        let num_layers = (1..).find(|l| l * (l + 1) / 2 >= flat.len()).expect("the triangular numbers are unbounded");
        if flat.is_empty() || num_layers * (num_layers + 1) / 2 != flat.len() {
            return Err(Error::Config(format!(
                "a macro fixed_arc of L layers has L(L+1)/2 integers (an operation and a skip bit per earlier \
                 layer for each layer: 1, 3, 6, 10, ..., 300 for the reference's 24), got {}",
                flat.len()
            )));
        }
        MacroArch::from_flat(&flat, num_layers)
    }

    /// At least one layer; layer `i` has `i` skip bits and an operation in [`ENAS_MACRO_OPS`].
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            return Err(Error::Config("macro architecture has no layers".into()));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            if layer.op >= ENAS_MACRO_OPS.len() {
                return Err(Error::Config(format!(
                    "macro architecture, layer {i}: operation {} is not one of 0..{} ({})",
                    layer.op,
                    ENAS_MACRO_OPS.len(),
                    ENAS_MACRO_OPS.join(", ")
                )));
            }
            if layer.skips.len() != i {
                return Err(Error::Config(format!(
                    "macro architecture, layer {i}: {} skip bits, expected {i} (one per earlier layer)",
                    layer.skips.len()
                )));
            }
        }
        Ok(())
    }

    /// The network as a graph: `input` (the stem's output, id 0), `layer_0`.. (ids 1..), and
    /// `output` (fed by the last layer). Each layer's operation is the edge from the previous
    /// layer; each skip is an [`IDENTITY`] edge from the earlier layer. Strides are all 1: the
    /// macro network's downsampling sits at fixed positions, not in the sampled architecture.
    /// Validate with [`MacroArch::graph_ops`].
    pub fn to_graph(&self) -> ModelGraph {
        let n = self.layers.len();
        let mut nodes = vec![GraphNode { id: 0, kind: NodeKind::Input, name: "input".into() }];
        nodes.extend((0..n).map(|i| GraphNode { id: i + 1, kind: NodeKind::Intermediate, name: format!("layer_{i}") }));
        nodes.push(GraphNode { id: n + 1, kind: NodeKind::Output, name: "output".into() });
        let mut edges = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let op = ENAS_MACRO_OPS.get(layer.op).copied().unwrap_or("<invalid op>");
            edges.push(GraphEdge { from: i, to: i + 1, op: op.into(), stride: 1 });
            for (j, _) in layer.skips.iter().enumerate().filter(|(_, &s)| s) {
                edges.push(GraphEdge { from: j + 1, to: i + 1, op: IDENTITY.into(), stride: 1 });
            }
        }
        edges.push(GraphEdge { from: n, to: n + 1, op: CONCAT.into(), stride: 1 });
        ModelGraph { nodes, edges }
    }
}

/// An ENAS architecture of either space, as the controller samples it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// An architecture of the micro space: a normal and a reduction cell.
    Micro(MicroArch),
    /// An architecture of the macro space: one operation and the skips of each layer.
    Macro(MacroArch),
}

impl Arch {
    /// The controller's decisions (see [`MicroArch::to_flat`], [`MacroArch::to_flat`]).
    pub fn to_flat(&self) -> Vec<usize> {
        match self {
            Arch::Micro(a) => a.to_flat(),
            Arch::Macro(a) => a.to_flat(),
        }
    }

    /// The micro architecture as a [`Genotype`]; `None` for the macro space, which has no cells.
    pub fn genotype(&self) -> Option<Genotype> {
        match self {
            Arch::Micro(a) => Some(a.to_genotype()),
            Arch::Macro(_) => None,
        }
    }

    /// The architecture as graphs: the normal and reduction cells (micro) or the whole network
    /// (macro).
    pub fn graphs(&self) -> Vec<ModelGraph> {
        match self {
            Arch::Micro(a) => {
                let (normal, reduce) = a.to_graphs();
                vec![normal, reduce]
            }
            Arch::Macro(a) => vec![a.to_graph()],
        }
    }

    /// The operation names its graphs use.
    pub fn graph_ops(&self) -> Vec<&'static str> {
        match self {
            Arch::Micro(_) => ENAS_MICRO_OPS.to_vec(),
            Arch::Macro(_) => MacroArch::graph_ops(),
        }
    }

    /// Fails unless every graph of the architecture is valid.
    pub fn validate_graphs(&self) -> Result<()> {
        let ops = self.graph_ops();
        for g in self.graphs() {
            g.validate(&ops)?;
        }
        Ok(())
    }

    /// Graphviz DOT of the architecture (both cells for micro, one after the other).
    pub fn to_dot(&self) -> String {
        match self {
            Arch::Micro(a) => a.to_genotype().to_dot(),
            Arch::Macro(a) => a.to_graph().to_dot(),
        }
    }
}

/// The layers of a macro network of `num_layers` layers after which every stored output is
/// halved (`general_child.py`'s `pool_layers`): `L/3 - 1` and `2L/3 - 1`, none below 3 layers.
pub fn pool_layers(num_layers: usize) -> Vec<usize> {
    let d = num_layers / 3;
    if d == 0 {
        vec![]
    } else {
        vec![d - 1, 2 * d - 1]
    }
}

//! `ModelGraph`: a discrete architecture as a directed graph of tensors (nodes) and operations
//! (edges). DARTS cells, ENAS micro cells and ENAS macro networks all convert to it, so a single
//! validity check and a single DOT renderer serve them all.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::genotype::Genotype;
use super::CONCAT;
use crate::error::Error;

/// What a node is: where data enters, a computed tensor, or the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Fed from outside (a cell input, the network's image).
    Input,
    /// Computed by the edges into it (a cell node, a macro layer).
    Intermediate,
    /// The result: the concatenation of the edges into it (exactly one per graph).
    Output,
}

/// A tensor in the architecture. `id` is what edges refer to; `name` is for people (DOT, errors).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphNode {
    /// What edges refer to; unique in the graph.
    pub id: usize,
    /// Input, intermediate or output.
    pub kind: NodeKind,
    /// The name shown in DOT and errors, e.g. `c_{k-1}`.
    pub name: String,
}

/// One operation applied to node `from`, its result summed into node `to` (or, on edges into
/// the output node, concatenated: the op is then [`CONCAT`]). `stride` is the operation's
/// spatial stride.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphEdge {
    /// Id of the node the operation reads.
    pub from: usize,
    /// Id of the node its result goes into.
    pub to: usize,
    /// The operation's name, e.g. `sep_conv_3x3`, or [`CONCAT`] into the output.
    pub op: String,
    /// Spatial stride: 1, or a power of 2 (2 on a reduction cell's input edges).
    pub stride: usize,
}

/// A discrete architecture: nodes and the operations between them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelGraph {
    /// The tensors.
    pub nodes: Vec<GraphNode>,
    /// The operations between them.
    pub edges: Vec<GraphEdge>,
}

/// Why a [`ModelGraph`] is not a runnable architecture.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidGraph {
    /// Two nodes share this id.
    #[error("two nodes have id {0}; ids must be unique")]
    DuplicateId(usize),
    /// No node is an input.
    #[error("the graph has no input node")]
    NoInput,
    /// There are this many output nodes instead of one.
    #[error("the graph has {0} output nodes; it needs exactly one")]
    OutputCount(usize),
    /// An edge names a node id that no node has.
    #[error("edge {edge} refers to node id {id}, which does not exist")]
    MissingNode {
        /// Index of the edge in `edges`.
        edge: usize,
        /// The missing id.
        id: usize,
    },
    /// An edge goes into an input node.
    #[error("edge {from} -> {to} enters input node {to}; inputs are fed from outside")]
    EdgeIntoInput {
        /// The name of the edge's source node.
        from: String,
        /// The name of the edge's target node.
        to: String,
    },
    /// An edge leaves the output node.
    #[error("edge {from} -> {to} leaves the output node {from}")]
    EdgeFromOutput {
        /// The name of the edge's source node.
        from: String,
        /// The name of the edge's target node.
        to: String,
    },
    /// An edge's operation is not one the architecture's space knows.
    #[error("edge {from} -> {to}: unknown operation {op:?}; known operations: {known}")]
    UnknownOp {
        /// The name of the edge's source node.
        from: String,
        /// The name of the edge's target node.
        to: String,
        /// The operation given.
        op: String,
        /// The known operations, comma-separated.
        known: String,
    },
    /// An edge into the output node is not [`CONCAT`].
    #[error("edge {from} -> {to} enters the output node with operation {op:?}; it must be {CONCAT:?}")]
    OutputOp {
        /// The name of the edge's source node.
        from: String,
        /// The name of the edge's target node.
        to: String,
        /// The operation given.
        op: String,
    },
    /// An edge's stride is not a power of 2.
    #[error("edge {from} -> {to} has stride {stride}; strides must be 1, 2, 4, ...")]
    BadStride {
        /// The name of the edge's source node.
        from: String,
        /// The name of the edge's target node.
        to: String,
        /// The stride given.
        stride: usize,
    },
    /// The nodes of a cycle, by name.
    #[error("the graph has a cycle through nodes {0:?}")]
    Cycle(Vec<String>),
    /// This node (by name) is not reachable from any input.
    #[error("node {0} cannot be reached from any input")]
    Unreachable(String),
    /// This node (by name) does not lead to the output.
    #[error("node {0} does not reach the output (a dangling node: its result would be thrown away)")]
    DeadEnd(String),
    /// Two edges into one node arrive at different resolutions.
    #[error(
        "inconsistent strides into node {node}: edge from {a} arrives at 1/{a_scale} of the input resolution, \
         edge from {b} at 1/{b_scale}; summed tensors must have one resolution"
    )]
    Stride {
        /// The node the edges go into.
        node: String,
        /// The source node of the first edge.
        a: String,
        /// The first edge arrives at 1/a_scale of the input resolution.
        a_scale: usize,
        /// The source node of the second edge.
        b: String,
        /// The second edge arrives at 1/b_scale of the input resolution.
        b_scale: usize,
    },
}

impl From<InvalidGraph> for Error {
    fn from(e: InvalidGraph) -> Self {
        Error::Config(format!("invalid architecture graph: {e}"))
    }
}

impl ModelGraph {
    /// One DARTS cell: nodes `c_{k-2}` (id 0) and `c_{k-1}` (id 1) as inputs, the intermediate
    /// nodes `0..n` (ids 2..n+2, so a genotype's input index is the node id), and `c_{k}` (id
    /// n+2) as output, fed by the `concat` nodes. `entries[2i]` and `entries[2i+1]` feed node
    /// `i`. In a reduction cell the operations reading a cell input have stride 2 (the
    /// reference's `stride = 2 if reduction and index < 2 else 1`).
    ///
    /// This builds whatever it is given; [`ModelGraph::validate`] says whether it makes sense.
    pub fn from_cell(entries: &[(String, usize)], concat: &[usize], reduction: bool) -> ModelGraph {
        let steps = entries.len().div_ceil(2);
        let mut nodes = vec![
            GraphNode { id: 0, kind: NodeKind::Input, name: "c_{k-2}".into() },
            GraphNode { id: 1, kind: NodeKind::Input, name: "c_{k-1}".into() },
        ];
        nodes.extend((0..steps).map(|i| GraphNode { id: i + 2, kind: NodeKind::Intermediate, name: i.to_string() }));
        let output = steps + 2;
        nodes.push(GraphNode { id: output, kind: NodeKind::Output, name: "c_{k}".into() });
        let mut edges: Vec<GraphEdge> = entries
            .iter()
            .enumerate()
            .map(|(k, (op, input))| GraphEdge {
                from: *input,
                to: k / 2 + 2,
                op: op.clone(),
                stride: if reduction && *input < 2 { 2 } else { 1 },
            })
            .collect();
        edges.extend(concat.iter().map(|&c| GraphEdge { from: c, to: output, op: CONCAT.into(), stride: 1 }));
        ModelGraph { nodes, edges }
    }

    /// The normal cell and the reduction cell of a genotype.
    pub fn from_genotype(genotype: &Genotype) -> (ModelGraph, ModelGraph) {
        (
            ModelGraph::from_cell(&genotype.normal, &genotype.normal_concat, false),
            ModelGraph::from_cell(&genotype.reduce, &genotype.reduce_concat, true),
        )
    }

    /// `validate(known_ops).is_ok()`.
    pub fn is_valid(&self, known_ops: &[&str]) -> bool {
        self.validate(known_ops).is_ok()
    }

    /// Checks that the graph is an architecture one can build and run:
    ///
    /// - node ids are unique, edges refer to existing nodes, there is at least one input and
    ///   exactly one output; no edge enters an input or leaves the output;
    /// - every operation is in `known_ops`, except on edges into the output, which are
    ///   [`CONCAT`];
    /// - the graph is acyclic;
    /// - every non-input node is reachable from an input and reaches the output (an input may be
    ///   unused: a cell that ignores `c_{k-2}` is legal in the reference code);
    /// - strides are consistent: give every input resolution 1, and let an edge of stride `s`
    ///   divide its source's resolution by `s`; all edges into a node must arrive at the same
    ///   resolution, because their results are summed (or concatenated). In a DARTS reduction
    ///   cell this means: the edges from the two inputs have stride 2 and all others stride 1;
    ///   in a normal cell, all have stride 1. Strides are powers of two.
    pub fn validate(&self, known_ops: &[&str]) -> Result<(), InvalidGraph> {
        let mut index = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if index.insert(node.id, i).is_some() {
                return Err(InvalidGraph::DuplicateId(node.id));
            }
        }
        if !self.nodes.iter().any(|n| n.kind == NodeKind::Input) {
            return Err(InvalidGraph::NoInput);
        }
        let outputs = self.nodes.iter().filter(|n| n.kind == NodeKind::Output).count();
        if outputs != 1 {
            return Err(InvalidGraph::OutputCount(outputs));
        }
        // Edges as (from, to) positions in `self.nodes`.
        let mut links = Vec::with_capacity(self.edges.len());
        for (e, edge) in self.edges.iter().enumerate() {
            let from = *index.get(&edge.from).ok_or(InvalidGraph::MissingNode { edge: e, id: edge.from })?;
            let to = *index.get(&edge.to).ok_or(InvalidGraph::MissingNode { edge: e, id: edge.to })?;
            let (from_name, to_name) = (self.nodes[from].name.clone(), self.nodes[to].name.clone());
            if self.nodes[to].kind == NodeKind::Input {
                return Err(InvalidGraph::EdgeIntoInput { from: from_name, to: to_name });
            }
            if self.nodes[from].kind == NodeKind::Output {
                return Err(InvalidGraph::EdgeFromOutput { from: from_name, to: to_name });
            }
            if self.nodes[to].kind == NodeKind::Output {
                if edge.op != CONCAT {
                    return Err(InvalidGraph::OutputOp { from: from_name, to: to_name, op: edge.op.clone() });
                }
            } else if !known_ops.contains(&edge.op.as_str()) {
                return Err(InvalidGraph::UnknownOp {
                    from: from_name,
                    to: to_name,
                    op: edge.op.clone(),
                    known: known_ops.join(", "),
                });
            }
            if !edge.stride.is_power_of_two() {
                return Err(InvalidGraph::BadStride { from: from_name, to: to_name, stride: edge.stride });
            }
            links.push((from, to));
        }

        let order = self.topological_order(&links)?;

        let reached = reach(self.nodes.len(), &links, |i| self.nodes[i].kind == NodeKind::Input, false);
        if let Some(n) = (0..self.nodes.len()).find(|&i| self.nodes[i].kind != NodeKind::Input && !reached[i]) {
            return Err(InvalidGraph::Unreachable(self.nodes[n].name.clone()));
        }
        let reaches = reach(self.nodes.len(), &links, |i| self.nodes[i].kind == NodeKind::Output, true);
        if let Some(n) = (0..self.nodes.len()).find(|&i| self.nodes[i].kind != NodeKind::Input && !reaches[i]) {
            return Err(InvalidGraph::DeadEnd(self.nodes[n].name.clone()));
        }

        // Downsampling factor of each node relative to the inputs, fixed by its first incoming
        // edge in topological order and checked against the others.
        let mut scale: Vec<Option<(usize, usize)>> = vec![None; self.nodes.len()]; // (factor, via node)
        for &v in &order {
            if self.nodes[v].kind == NodeKind::Input {
                scale[v] = Some((1, v));
                continue;
            }
            for (e, &(from, to)) in links.iter().enumerate() {
                if to != v {
                    continue;
                }
                let Some((from_scale, _)) = scale[from] else { continue };
                let arrive = from_scale * self.edges[e].stride;
                match scale[v] {
                    None => scale[v] = Some((arrive, from)),
                    Some((s, via)) if s != arrive => {
                        return Err(InvalidGraph::Stride {
                            node: self.nodes[v].name.clone(),
                            a: self.nodes[via].name.clone(),
                            a_scale: s,
                            b: self.nodes[from].name.clone(),
                            b_scale: arrive,
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Kahn's algorithm; the nodes left over when it stalls lie on or behind a cycle.
    fn topological_order(&self, links: &[(usize, usize)]) -> Result<Vec<usize>, InvalidGraph> {
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        for &(_, to) in links {
            indegree[to] += 1;
        }
        let mut ready: VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(v) = ready.pop_front() {
            order.push(v);
            for &(from, to) in links {
                if from == v {
                    indegree[to] -= 1;
                    if indegree[to] == 0 {
                        ready.push_back(to);
                    }
                }
            }
        }
        if order.len() < n {
            let stuck = (0..n).filter(|&i| indegree[i] > 0).map(|i| self.nodes[i].name.clone()).collect();
            return Err(InvalidGraph::Cycle(stuck));
        }
        Ok(order)
    }

    /// A standalone Graphviz DOT picture of this graph.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph architecture {\n  rankdir=LR;\n");
        self.write_dot_body("", "  ", &mut out);
        out.push_str("}\n");
        out
    }

    /// Node and edge statements, node identifiers prefixed with `prefix` (so that two cells can
    /// share one picture), in the colours of the reference's `visualize.py`.
    pub(crate) fn write_dot_body(&self, prefix: &str, indent: &str, out: &mut String) {
        out.push_str(&format!(
            "{indent}node [style=filled, shape=rect, align=center, fontsize=20, height=0.5, width=0.5, \
             penwidth=2, fontname=times];\n"
        ));
        let name_of: HashMap<usize, &str> = self.nodes.iter().map(|n| (n.id, n.name.as_str())).collect();
        let id = |node: usize| match name_of.get(&node) {
            Some(name) => quote(&format!("{prefix}{name}")),
            None => quote(&format!("{prefix}#{node}")),
        };
        for node in &self.nodes {
            let colour = match node.kind {
                NodeKind::Input => "darkseagreen2",
                NodeKind::Intermediate => "lightblue",
                NodeKind::Output => "palegoldenrod",
            };
            out.push_str(&format!("{indent}{} [label={}, fillcolor={colour}];\n", id(node.id), quote(&node.name)));
        }
        for edge in &self.edges {
            let (from, to) = (id(edge.from), id(edge.to));
            if edge.op == CONCAT {
                out.push_str(&format!("{indent}{from} -> {to} [color=gray];\n"));
            } else if edge.stride == 1 {
                out.push_str(&format!("{indent}{from} -> {to} [label={}];\n", quote(&edge.op)));
            } else {
                let label = quote(&edge.op);
                let tooltip = quote(&format!("stride {}", edge.stride));
                out.push_str(&format!("{indent}{from} -> {to} [label={label}, tooltip={tooltip}, penwidth=2];\n"));
            }
        }
    }
}

/// Which nodes are reachable from (or, `backward`, reach) a node satisfying `start`.
fn reach(n: usize, links: &[(usize, usize)], start: impl Fn(usize) -> bool, backward: bool) -> Vec<bool> {
    let mut seen: Vec<bool> = (0..n).map(&start).collect();
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| seen[i]).collect();
    while let Some(v) = queue.pop_front() {
        for &(from, to) in links {
            let (a, b) = if backward { (to, from) } else { (from, to) };
            if a == v && !seen[b] {
                seen[b] = true;
                queue.push_back(b);
            }
        }
    }
    seen
}

/// A DOT string literal.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

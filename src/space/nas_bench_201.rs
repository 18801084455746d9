//! The NAS-Bench-201 cell (Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible
//! Neural Architecture Search", ICLR 2020; D-X-Y/AutoDL-Projects `cell_searchs/genotypes.py`
//! `Structure`): node 0 is the cell input, node j (1..=3) sums one operation from every earlier
//! node, the cell output is node 3. Six edges, in the order `1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`
//! (the rows of the alpha matrix).
//!
//! The benchmark names an architecture by a string: `|op~i|` for each input `i` of node j,
//! nodes joined by `+`: `|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|...|`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The benchmark's operations, in AutoDL-Projects' `NAS_BENCH_201` order (the alpha columns).
pub const NAS_BENCH_201_OPS: [&str; 5] = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"];

/// Nodes after the input: 3 (4 nodes with the input).
pub const NAS_BENCH_201_NODES: usize = 3;

/// Edges of a cell: 1 + 2 + 3.
pub const NAS_BENCH_201_EDGES: usize = 6;

/// The alpha row of the edge from node `i` into node `j` (1..=3, i < j).
pub fn edge_index(j: usize, i: usize) -> usize {
    (1..j).sum::<usize>() + i
}

/// A NAS-Bench-201 cell: for each node 1..=3, `(operation, input node)` per incoming edge, inputs
/// in order 0..j. In JSON it is the benchmark string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NasBench201Cell {
    /// Node j's (1-based) edges at `nodes[j - 1]`: `[(op, 0), (op, 1), .., (op, j - 1)]`.
    pub nodes: Vec<Vec<(String, usize)>>,
}

impl NasBench201Cell {
    /// The cell whose edge `e` (alpha row order) carries `ops[e]`.
    pub fn from_edges(ops: &[&str]) -> Result<NasBench201Cell> {
        if ops.len() != NAS_BENCH_201_EDGES {
            return Err(Error::Config(format!(
                "a NAS-Bench-201 cell has {NAS_BENCH_201_EDGES} edges, got {} operations",
                ops.len()
            )));
        }
        let nodes = (1..=NAS_BENCH_201_NODES)
            .map(|j| (0..j).map(|i| (ops[edge_index(j, i)].to_string(), i)).collect())
            .collect();
        let cell = NasBench201Cell { nodes };
        cell.validate(&NAS_BENCH_201_OPS)?;
        Ok(cell)
    }

    /// The operation of each edge, in alpha row order.
    pub fn edges(&self) -> Vec<&str> {
        self.nodes.iter().flatten().map(|(op, _)| op.as_str()).collect()
    }

    /// The search's derivation (AutoDL-Projects' `genotype()` of its NAS-Bench-201 search
    /// models): on every edge the operation of the largest alpha, `none` included; every edge is
    /// kept. `alphas`: `[6][ops]`, columns named by `primitives`.
    pub fn from_alphas(alphas: &[Vec<f32>], primitives: &[&str]) -> Result<NasBench201Cell> {
        if alphas.len() != NAS_BENCH_201_EDGES || alphas.iter().any(|r| r.len() != primitives.len()) {
            return Err(Error::Config(format!(
                "NAS-Bench-201 alphas must be [{NAS_BENCH_201_EDGES}][{}], got {} rows",
                primitives.len(),
                alphas.len()
            )));
        }
        let argmax = |r: &Vec<f32>| (1..r.len()).fold(0, |best, k| if r[k] > r[best] { k } else { best });
        let ops: Vec<&str> = alphas.iter().map(|r| primitives[argmax(r)]).collect();
        NasBench201Cell::from_edges(&ops)
    }

    /// Three nodes, node j with inputs exactly 0..j, each operation one of `ops`.
    pub fn validate(&self, ops: &[&str]) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.nodes.len() != NAS_BENCH_201_NODES {
            return bad(format!(
                "a NAS-Bench-201 cell has {NAS_BENCH_201_NODES} nodes after its input (4 in all, `+` between them), got {}",
                self.nodes.len()
            ));
        }
        for (n, node) in self.nodes.iter().enumerate() {
            let j = n + 1;
            let inputs: Vec<usize> = node.iter().map(|(_, i)| *i).collect();
            if inputs != (0..j).collect::<Vec<_>>() {
                return bad(format!(
                    "node {j} of a NAS-Bench-201 cell takes one edge from each of nodes 0..{j} in order (~0 .. ~{}), got inputs {inputs:?}",
                    j - 1
                ));
            }
            if let Some((op, _)) = node.iter().find(|(op, _)| !ops.contains(&op.as_str())) {
                return bad(format!(
                    "operation {op:?} is not in the NAS-Bench-201 space; its operations: {}",
                    ops.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Parses the benchmark string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, checked.
    pub fn parse(text: &str) -> Result<NasBench201Cell> {
        let text = text.trim();
        let bad = |m: String| Error::Config(format!("NAS-Bench-201 string {text:?}: {m}"));
        let nodes = text
            .split('+')
            .map(|node| {
                let inner = node
                    .strip_prefix('|')
                    .and_then(|s| s.strip_suffix('|'))
                    .ok_or_else(|| bad(format!("node {node:?} must be written |op~i|op~i|")))?;
                inner
                    .split('|')
                    .map(|edge| {
                        let (op, i) = edge.split_once('~').ok_or_else(|| {
                            bad(format!("edge {edge:?} must be op~i (an operation, ~, an input node)"))
                        })?;
                        let i =
                            i.parse::<usize>().map_err(|_| bad(format!("edge {edge:?}: {i:?} is not a node index")))?;
                        Ok((op.to_string(), i))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let cell = NasBench201Cell { nodes };
        cell.validate(&NAS_BENCH_201_OPS).map_err(|e| bad(strip(e)))?;
        Ok(cell)
    }

    /// How many of the cell's edges carry an operation without parameters (`none`,
    /// `skip_connect`, `avg_pool_3x3`).
    pub fn parameter_free(&self) -> usize {
        self.edges().iter().filter(|op| !op.starts_with("nor_conv")).count()
    }

    /// The cell as JSON: `{"nas_bench_201": STRING, "nodes": [[[op, i], ..], ..]}`.
    pub fn to_json(&self) -> String {
        let v = serde_json::json!({ "nas_bench_201": self.to_string(), "nodes": self.nodes });
        serde_json::to_string_pretty(&v).expect("plain data")
    }

    /// Reads [`NasBench201Cell::to_json`]'s form (the string is the source of truth).
    pub fn from_json(text: &str) -> Result<NasBench201Cell> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        match v.get("nas_bench_201").and_then(|s| s.as_str()).or(v.as_str()) {
            Some(s) => NasBench201Cell::parse(s),
            None => Err(Error::Config("a NAS-Bench-201 genotype.json needs a \"nas_bench_201\" string".into())),
        }
    }

    /// AutoDL-Projects' `Structure` as Python: `Structure([(("op", 0),), (("op", 0), ("op", 1)), ..])`.
    pub fn to_python(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| {
                let edges: Vec<String> = node.iter().map(|(op, i)| format!("('{op}', {i})")).collect();
                if edges.len() == 1 {
                    format!("({},)", edges[0])
                } else {
                    format!("({})", edges.join(", "))
                }
            })
            .collect();
        format!("Structure([{}])", nodes.join(", "))
    }

    /// Graphviz DOT of the cell: nodes 0..3, one labelled arrow per edge (`none` edges dashed).
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph nas_bench_201 {\n  rankdir=LR;\n  node [shape=box];\n");
        s.push_str("  n0 [label=\"0 (input)\"];\n");
        for j in 1..=self.nodes.len() {
            let label = if j == self.nodes.len() { format!("{j} (output)") } else { j.to_string() };
            s.push_str(&format!("  n{j} [label=\"{label}\"];\n"));
        }
        for (n, node) in self.nodes.iter().enumerate() {
            for (op, i) in node {
                let style = if op == "none" { ", style=dashed" } else { "" };
                s.push_str(&format!("  n{i} -> n{} [label=\"{op}\"{style}];\n", n + 1));
            }
        }
        s.push_str("}\n");
        s
    }
}

fn strip(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        e => e.to_string(),
    }
}

impl fmt::Display for NasBench201Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| {
                let edges: Vec<String> = node.iter().map(|(op, i)| format!("{op}~{i}")).collect();
                format!("|{}|", edges.join("|"))
            })
            .collect();
        f.write_str(&nodes.join("+"))
    }
}

impl TryFrom<String> for NasBench201Cell {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        NasBench201Cell::parse(&s)
    }
}

impl From<NasBench201Cell> for String {
    fn from(c: NasBench201Cell) -> String {
        c.to_string()
    }
}

//! `SearchSpace`: what a supernet of the DARTS family is built from and what its alphas mean:
//! the DARTS cell space or the NAS-Bench-201 one.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::derive::{derive_genotype, DeriveRule};
use super::genotype::Genotype;
use super::{DARTS_PRIMITIVES, NAS_BENCH_201_EDGES, NAS_BENCH_201_NODES, NAS_BENCH_201_OPS, NONE};
use crate::error::{Error, Result};

/// A DARTS cell search space: the candidate operations on every edge (the alpha columns, in
/// this order), the number of intermediate nodes per cell (`steps`) and how many of the last
/// nodes the cell output concatenates (`multiplier`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// The candidate operation names, in alpha column order (a subset of [`DARTS_PRIMITIVES`]).
    pub primitives: Vec<String>,
    /// Intermediate nodes per cell (4 in DARTS).
    pub steps: usize,
    /// How many of the last nodes the cell output concatenates (4 in DARTS).
    pub multiplier: usize,
    /// Which cell space and macro skeleton: DARTS's (two cell inputs, normal and reduction
    /// cells) or NAS-Bench-201's (one cell input, 3 stages of cells between ResNet blocks).
    /// Left out of JSON for DARTS, so a DARTS space reads and writes as before the field.
    #[serde(default, skip_serializing_if = "SpaceKind::is_darts")]
    pub kind: SpaceKind,
}

/// The two cell spaces a supernet can search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpaceKind {
    /// DARTS (Liu et al. 2019): cells of `steps` nodes with two inputs each, normal and
    /// reduction cells with their own alphas.
    #[default]
    Darts,
    /// NAS-Bench-201 (Dong & Yang 2020): 4 nodes, 6 edges, one alpha matrix for every cell; the
    /// reductions are fixed ResNet blocks. `steps` is 3 and `multiplier` 1 (the output is node 3).
    #[serde(rename = "nas-bench-201")]
    NasBench201,
}

impl SpaceKind {
    fn is_darts(&self) -> bool {
        *self == SpaceKind::Darts
    }
}

impl Default for SearchSpace {
    fn default() -> Self {
        SearchSpace::darts()
    }
}

impl SearchSpace {
    /// The paper's space: all eight primitives, 4 nodes, output = concat of all 4.
    pub fn darts() -> Self {
        SearchSpace {
            primitives: DARTS_PRIMITIVES.iter().map(|s| s.to_string()).collect(),
            steps: 4,
            multiplier: 4,
            kind: SpaceKind::Darts,
        }
    }

    /// The NAS-Bench-201 space: its five operations, 3 nodes after the input, output node 3.
    pub fn nas_bench_201() -> Self {
        SearchSpace {
            primitives: NAS_BENCH_201_OPS.iter().map(|s| s.to_string()).collect(),
            steps: NAS_BENCH_201_NODES,
            multiplier: 1,
            kind: SpaceKind::NasBench201,
        }
    }

    /// A subset of the NAS-Bench-201 operations, in the order given.
    pub fn nas_bench_201_with_ops(ops: &[&str]) -> Result<Self> {
        let space = SearchSpace { primitives: ops.iter().map(|s| s.to_string()).collect(), ..Self::nas_bench_201() };
        space.validate()?;
        Ok(space)
    }

    /// Whether this is the NAS-Bench-201 space.
    pub fn is_nas_bench_201(&self) -> bool {
        self.kind == SpaceKind::NasBench201
    }

    /// A subset of the DARTS primitives, in the order given (the seed's single-cell test uses
    /// `["skip_connect", "sep_conv_3x3"]`), 4 nodes. `none` is optional.
    pub fn with_ops(ops: &[&str]) -> Result<Self> {
        let space = SearchSpace { primitives: ops.iter().map(|s| s.to_string()).collect(), ..Self::darts() };
        space.validate()?;
        Ok(space)
    }

    /// The same operations with `steps` nodes per cell, the last `multiplier` concatenated.
    pub fn with_steps(mut self, steps: usize, multiplier: usize) -> Result<Self> {
        if self.is_nas_bench_201() {
            return Err(Error::Config(
                "a NAS-Bench-201 cell has 3 nodes after its input and outputs the last; its nodes are fixed".into(),
            ));
        }
        self.steps = steps;
        self.multiplier = multiplier;
        self.validate()?;
        Ok(self)
    }

    /// Checks a space (for instance one read from JSON): operations known to DARTS, distinct,
    /// at least one besides `none`; at least one node; `multiplier` in `1..=steps`.
    pub fn validate(&self) -> Result<()> {
        if self.is_nas_bench_201() {
            return self.validate_nas_bench_201();
        }
        for (i, op) in self.primitives.iter().enumerate() {
            if !DARTS_PRIMITIVES.contains(&op.as_str()) {
                return Err(Error::Config(format!(
                    "unknown DARTS operation {op:?}; known operations: {}",
                    DARTS_PRIMITIVES.join(", ")
                )));
            }
            if self.primitives[..i].contains(op) {
                return Err(Error::Config(format!("operation {op:?} is listed twice")));
            }
        }
        if !self.primitives.iter().any(|op| op != NONE) {
            return Err(Error::Config(format!(
                "the search space needs at least one operation besides `none`; choose from: {}",
                DARTS_PRIMITIVES[1..].join(", ")
            )));
        }
        if self.steps == 0 {
            return Err(Error::Config("a cell needs at least one intermediate node (steps >= 1)".into()));
        }
        if self.multiplier == 0 || self.multiplier > self.steps {
            return Err(Error::Config(format!(
                "multiplier {} must be in 1..={} (the number of nodes per cell)",
                self.multiplier, self.steps
            )));
        }
        Ok(())
    }

    fn validate_nas_bench_201(&self) -> Result<()> {
        for (i, op) in self.primitives.iter().enumerate() {
            if !NAS_BENCH_201_OPS.contains(&op.as_str()) {
                return Err(Error::Config(format!(
                    "operation {op:?} is not in the NAS-Bench-201 space; its operations: {}",
                    NAS_BENCH_201_OPS.join(", ")
                )));
            }
            if self.primitives[..i].contains(op) {
                return Err(Error::Config(format!("operation {op:?} is listed twice")));
            }
        }
        if !self.primitives.iter().any(|op| op != NONE) {
            return Err(Error::Config(format!(
                "the search space needs at least one operation besides `none`; choose from: {}",
                NAS_BENCH_201_OPS[1..].join(", ")
            )));
        }
        if self.steps != NAS_BENCH_201_NODES || self.multiplier != 1 {
            return Err(Error::Config(format!(
                "a NAS-Bench-201 cell has {NAS_BENCH_201_NODES} nodes after its input and outputs the last (steps 3, multiplier 1), got steps {}, multiplier {}",
                self.steps, self.multiplier
            )));
        }
        Ok(())
    }

    /// The operation names as `&str`, in alpha-column order.
    pub fn primitives(&self) -> Vec<&str> {
        self.primitives.iter().map(String::as_str).collect()
    }

    /// Alpha columns: one per operation.
    pub fn num_ops(&self) -> usize {
        self.primitives.len()
    }

    /// Alpha rows: in DARTS node `i` has `i + 2` incoming edges, so `sum_{i<steps}(i + 2)` (14
    /// for 4); in NAS-Bench-201 node `i` (from 0 after the input) has `i + 1`, 6 in all.
    pub fn num_edges(&self) -> usize {
        if self.is_nas_bench_201() {
            return NAS_BENCH_201_EDGES;
        }
        (0..self.steps).map(|i| i + 2).sum()
    }

    /// The number of incoming edges of each node, in order: `[2, 3, 4, 5]` in DARTS, `[1, 2, 3]`
    /// in NAS-Bench-201.
    pub fn node_sizes(&self) -> Vec<usize> {
        let inputs = if self.is_nas_bench_201() { 1 } else { 2 };
        (0..self.steps).map(|i| i + inputs).collect()
    }

    /// The alpha rows of node `node`'s incoming edges, in input order (DARTS: `c_{k-2}`,
    /// `c_{k-1}`, nodes `0..node`; NAS-Bench-201: the input, nodes `1..=node`).
    pub fn node_edges(&self, node: usize) -> Range<usize> {
        let sizes = self.node_sizes();
        let start: usize = sizes[..node].iter().sum();
        start..start + sizes[node]
    }

    /// The cell output's nodes: the last `multiplier` ones, as genotype indices.
    pub fn concat(&self) -> Vec<usize> {
        (2 + self.steps - self.multiplier..self.steps + 2).collect()
    }

    /// The genotype of raw alphas `[num_edges][num_ops]` under `rule`.
    pub fn derive_genotype(
        &self,
        alphas_normal: &[Vec<f32>],
        alphas_reduce: &[Vec<f32>],
        rule: DeriveRule,
    ) -> Result<Genotype> {
        derive_genotype(alphas_normal, alphas_reduce, &self.primitives(), self.steps, self.multiplier, rule)
    }
}

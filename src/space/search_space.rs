//! `SearchSpace`: what a DARTS supernet is built from and what its alphas mean.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::derive::{derive_genotype, DeriveRule};
use super::genotype::Genotype;
use super::{DARTS_PRIMITIVES, NONE};
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
}

impl Default for SearchSpace {
    fn default() -> Self {
        SearchSpace::darts()
    }
}

impl SearchSpace {
    /// The paper's space: all eight primitives, 4 nodes, output = concat of all 4.
    pub fn darts() -> Self {
        SearchSpace { primitives: DARTS_PRIMITIVES.iter().map(|s| s.to_string()).collect(), steps: 4, multiplier: 4 }
    }

    /// A subset of the DARTS primitives, in the order given (the seed's single-cell test uses
    /// `["skip_connect", "sep_conv_3x3"]`), 4 nodes. `none` is optional.
    pub fn with_ops(ops: &[&str]) -> Result<Self> {
        let space = SearchSpace { primitives: ops.iter().map(|s| s.to_string()).collect(), steps: 4, multiplier: 4 };
        space.validate()?;
        Ok(space)
    }

    /// The same operations with `steps` nodes per cell, the last `multiplier` concatenated.
    pub fn with_steps(mut self, steps: usize, multiplier: usize) -> Result<Self> {
        self.steps = steps;
        self.multiplier = multiplier;
        self.validate()?;
        Ok(self)
    }

    /// Checks a space (for instance one read from JSON): operations known to DARTS, distinct,
    /// at least one besides `none`; at least one node; `multiplier` in `1..=steps`.
    pub fn validate(&self) -> Result<()> {
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

    /// The operation names as `&str`, in alpha-column order.
    pub fn primitives(&self) -> Vec<&str> {
        self.primitives.iter().map(String::as_str).collect()
    }

    /// Alpha columns: one per operation.
    pub fn num_ops(&self) -> usize {
        self.primitives.len()
    }

    /// Alpha rows: node `i` has `i + 2` incoming edges, so `sum_{i<steps}(i + 2)` (14 for 4).
    pub fn num_edges(&self) -> usize {
        (0..self.steps).map(|i| i + 2).sum()
    }

    /// The alpha rows of node `node`'s incoming edges, in input order (`c_{k-2}`, `c_{k-1}`,
    /// nodes `0..node`).
    pub fn node_edges(&self, node: usize) -> Range<usize> {
        let start: usize = (0..node).map(|i| i + 2).sum();
        start..start + node + 2
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

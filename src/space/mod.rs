//! The search space as plain data, shared by DARTS, ENAS and retraining: no GPU here.
//!
//! - [`DARTS_PRIMITIVES`], [`ENAS_MICRO_OPS`], [`ENAS_MACRO_OPS`]: operation names, in the
//!   reference implementations' order (the order fixes what an alpha column or a controller
//!   decision means).
//! - [`Genotype`]: a discrete DARTS-style architecture (two cells, two inputs per node), as JSON,
//!   as the reference's Python `Genotype(...)` text (both ways) and as Graphviz DOT.
//! - [`derive_genotype`]: from the architecture weights (alphas) to a genotype.
//! - [`ModelGraph`]: any discrete architecture as nodes and edges, with [`ModelGraph::validate`].
//! - [`random_genotype`]: a genotype drawn uniformly from what the derivation can choose.
//! - [`SearchSpace`]: the search space the supernet is built from (DARTS or NAS-Bench-201,
//!   operations, nodes).
//! - [`NasBench201Cell`]: a NAS-Bench-201 cell and its benchmark string; [`CellGenotype`]:
//!   either kind of derived architecture.
//! - [`MicroArch`], [`MacroArch`]: the ENAS encodings, with their flat controller form; [`Arch`]:
//!   either of them; [`pool_layers`]: where a macro network halves its resolution.

mod derive;
mod enas;
mod genotype;
mod graph;
mod nas_bench_201;
mod random;
mod search_space;

pub use derive::{
    derive_cell, derive_cell_with_betas, derive_genotype, derive_genotype_with_betas, edge_softmax_rows, softmax_rows,
    DeriveRule,
};
pub use enas::{pool_layers, Arch, EnasSpace, MacroArch, MacroLayer, MicroArch, MicroNode, SearchFor};
pub use genotype::{darts_v1, darts_v2, CellGenotype, Genotype};
pub use graph::{GraphEdge, GraphNode, InvalidGraph, ModelGraph, NodeKind};
pub use nas_bench_201::{edge_index, NasBench201Cell, NAS_BENCH_201_EDGES, NAS_BENCH_201_NODES, NAS_BENCH_201_OPS};
pub use random::random_genotype;
pub use search_space::{SearchSpace, SpaceKind};

use crate::error::{Error, Result};

/// The DARTS operations, in the order of quark0/darts `genotypes.PRIMITIVES`: column `k` of
/// `alphas_normal` / `alphas_reduce` weighs operation `DARTS_PRIMITIVES[k]`.
pub const DARTS_PRIMITIVES: [&str; 8] = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
];

/// The operations of quark0/darts `operations.OPS` outside [`DARTS_PRIMITIVES`]: the NASNet,
/// AmoebaNet and PNASNet genotypes of its `genotypes.py` use them. A retrained network builds
/// them; the search space does not offer them.
pub const REFERENCE_EXTRA_OPS: [&str; 2] = ["sep_conv_7x7", "conv_7x1_1x7"];

/// The zero operation: in search it lets an edge switch itself off; a derived architecture
/// never contains it.
pub const NONE: &str = "none";

/// ENAS micro-space operations, in the order of melodyguan/enas `micro_child._enas_cell`
/// (operation id 0..4 as the controller samples it).
pub const ENAS_MICRO_OPS: [&str; 5] = ["sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity"];

/// ENAS macro-space operations, in the order of melodyguan/enas `general_child._enas_layer`
/// (branch 0..5 as the controller samples it).
pub const ENAS_MACRO_OPS: [&str; 6] =
    ["conv_3x3", "sep_conv_3x3", "conv_5x5", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3"];

/// The ENAS name of the operation that passes its input through unchanged (DARTS calls the
/// same thing `skip_connect`; ENAS macro skip connections carry it in a [`ModelGraph`]).
pub const IDENTITY: &str = "identity";

/// The pseudo-operation on the edges into a [`ModelGraph`]'s output node: the output is the
/// channel concatenation of its predecessors (a DARTS cell's `concat` nodes).
pub const CONCAT: &str = "concat";

/// Checks that `name` is one of `known`, saying which names would have been accepted.
pub fn check_op(name: &str, known: &[&str]) -> Result<()> {
    if known.contains(&name) {
        Ok(())
    } else {
        Err(Error::Config(format!("unknown operation {name:?}; known operations: {}", known.join(", "))))
    }
}

//! ENAS (Pham et al. 2018, reference code melodyguan/enas): an LSTM controller trained by
//! REINFORCE samples architectures of a weight-sharing model; the shared weights learn on the
//! sampled architectures, a fresh one per minibatch.
//!
//! - [`controller`]: the controller ([`Controller::sample`], REINFORCE [`Controller::update`]),
//!   sampling on the GPU with one readback per architecture.
//! - [`micro`]: the micro space's shared model (normal and reduction cells of 5 nodes).
//! - [`macro_space`]: the macro space's shared model (12 layers with skip connections).
//! - [`search`]: the search loop [`EnasSearch`], derivation of the final architecture,
//!   checkpoints, and the `bench enas` timings.

pub mod controller;
pub mod macro_space;
pub mod micro;
pub mod search;

pub use controller::{Controller, ControllerConfig, Sample, UpdateStats};
pub use macro_space::{MacroConfig, MacroNetwork};
pub use micro::{MicroConfig, MicroNetwork};
#[cfg(not(target_arch = "wasm32"))]
pub use search::{
    ControllerMetrics, Derived, Enas, EnasConfig, EnasEpoch, EnasSearch, EnasState, EnasStep, ModelConfig, Scored,
    SharedModel,
};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::space::{Genotype, MacroArch, MicroArch, ModelGraph, ENAS_MACRO_OPS, ENAS_MICRO_OPS};

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

/// A sampled architecture of either space.
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

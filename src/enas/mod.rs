//! ENAS (Pham et al. 2018, reference code melodyguan/enas): an LSTM controller trained by
//! REINFORCE samples architectures of a weight-sharing model; the shared weights learn on the
//! sampled architectures, a fresh one per minibatch.
//!
//! - [`controller`]: the controller ([`Controller::sample`], REINFORCE [`Controller::update`]),
//!   sampling on the GPU with one readback per architecture.
//! - [`micro`]: the micro space's shared model (normal and reduction cells of 5 nodes).
//! - [`macro_space`]: the macro space's shared model (12 layers with skip connections).
//! - [`search`]: the search loop [`EnasSearch`], derivation of the final architecture,
//!   checkpoints.
//!
//! The architectures themselves are plain data in [`crate::space`] ([`Arch`], [`MicroArch`],
//! [`MacroArch`]); the blocks the shared models are built from are in [`crate::nn`].

pub mod controller;
pub mod macro_space;
pub mod micro;
pub mod search;

pub use controller::{Controller, ControllerConfig, Sample, UpdateStats};
pub use macro_space::{MacroConfig, MacroNetwork};
pub use micro::{MicroConfig, MicroNetwork};
#[cfg(not(target_arch = "wasm32"))]
pub use search::{
    ControllerMetrics, Derived, Enas, EnasConfig, EnasEpoch, EnasSearch, EnasState, EnasStep, Scored, SharedModel,
    SharedModelConfig,
};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::space::{Arch, MacroArch, MicroArch, ENAS_MACRO_OPS, ENAS_MICRO_OPS};

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

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
//! The architectures themselves are plain data in [`crate::space`] ([`EnasSpace`],
//! [`crate::space::Arch`], [`crate::space::MicroArch`], [`crate::space::MacroArch`]); the blocks the shared models are built from are in [`crate::nn`].

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

pub use crate::space::EnasSpace;

//! Retraining a found architecture from scratch (quark0/darts `train.py` and `model.py`): the
//! evaluation network of a genotype ([`NetworkCifar`], C=36 and 20 cells in the paper, affine
//! BN, an auxiliary head after cell 2*layers/3, drop path) and its training loop ([`Trainer`]),
//! with test accuracy per epoch, the parameter count and checkpoint/resume.
//!
//! ENAS micro architectures retrain through the same network: [`crate::space::MicroArch::to_genotype`]
//! gives a genotype whose `identity` is `skip_connect` and whose concat lists the loose ends,
//! and [`CellVariant::EnasMicro`] builds its cells as `micro_child.py` does.
//! ENAS macro architectures retrain as [`FixedMacroNetwork`] (melodyguan/enas `general_child.py`
//! with a fixed architecture: only the chosen operations, channels doubling at the two pooling
//! layers, concatenated skips; [`MacroVariant`] picks the reference's construction or the one
//! our search scores); NAS-Bench-201 cells as [`TinyNetwork`] (the benchmark's skeleton);
//! [`EvalNetworkConfig::architecture`] says which network
//! ([`EvalNetwork`]) a run trains, [`TrainConfig::enas_macro`] gives the reference's settings.
//!
//! - [`config`]: what a run builds ([`EvalNetworkConfig`], [`Architecture`], [`CellVariant`],
//!   [`MacroVariant`]).
//! - [`network_cifar`]: the cell network [`NetworkCifar`] and its [`Cell`].
//! - [`macro_model`]: the fixed ENAS macro network [`FixedMacroNetwork`].
//! - [`nas_bench_201`]: the NAS-Bench-201 network [`TinyNetwork`] and its [`InferCell`].
//! - [`eval_network`]: [`EvalNetwork`], any of the three.
//! - [`trainer`]: the training loop [`Trainer`] and its [`TrainConfig`].
//!
//! The blocks (including the auxiliary head, [`crate::nn::AuxiliaryHeadCifar`]) come from
//! [`crate::nn`], the architectures from [`crate::space`]; nothing here depends on the searches.

pub mod config;
pub mod eval_network;
pub mod macro_model;
pub mod nas_bench_201;
pub mod network_cifar;
pub mod trainer;

pub use config::{Architecture, CellVariant, EvalNetworkConfig, MacroVariant};
pub use eval_network::EvalNetwork;
pub use macro_model::{FixedLayer, FixedMacroNetwork};
pub use nas_bench_201::{InferCell, TinyNetwork};
pub use network_cifar::{Cell, NetworkCifar};
pub use trainer::{Retrain, RetrainState, TrainConfig, TrainEpoch, TrainStep, Trainer};

//! DARTS (Liu et al., 2019): differentiable architecture search by bi-level optimisation of the
//! architecture weights (alphas, on validation batches) and the network weights (on training
//! batches), following quark0/darts.

pub mod architect;
pub mod diagnostics;
pub mod model;
pub mod search;

pub use architect::{Architect, ArchitectConfig, Order, ValScore, WeightStep};
pub use model::{Network, NetworkConfig, PartialChannels};
pub use search::{AlphaRecord, Darts, DartsEpoch, DartsSearch, DartsState, DartsStep, SearchConfig};

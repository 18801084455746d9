//! DARTS (Liu et al., 2019): differentiable architecture search by bi-level optimisation of the
//! architecture weights (alphas, on validation batches) and the network weights (on training
//! batches), following quark0/darts; and GDAS ([`gdas`]), which samples one op per edge on the
//! same supernet and shares the rest of the search ([`SupernetSearch`]); in the DARTS cell space
//! or NAS-Bench-201's ([`nas_bench_201`]).

pub mod architect;
pub mod diagnostics;
pub mod gdas;
pub mod model;
pub mod nas_bench_201;
pub mod search;

pub use architect::{Architect, ArchitectConfig, Order, ValScore, WeightStep};
pub use gdas::{Gdas, GdasSearch, Temperature};
pub use model::{Mixing, Network, NetworkConfig, PartialChannels};
pub use search::{
    AlphaRecord, Darts, DartsEpoch, DartsSearch, DartsState, DartsStep, Relaxation, SearchConfig, StepParts,
    SupernetSearch,
};

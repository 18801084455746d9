//! The network a retraining run trains, whichever its architecture: [`EvalNetwork`].

use super::config::{Architecture, EvalNetworkConfig};
use super::macro_model::FixedMacroNetwork;
use super::nas_bench_201::TinyNetwork;
use super::network_cifar::NetworkCifar;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::nn::{count_parameters_in_mb, Module, Visit};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// The network a retraining run trains: cells ([`NetworkCifar`]) or an ENAS macro network
/// ([`FixedMacroNetwork`]).
pub enum EvalNetwork {
    /// A DARTS-style cell network built from a genotype.
    Cells(NetworkCifar),
    /// An ENAS macro network with a fixed architecture.
    Macro(FixedMacroNetwork),
    /// A NAS-Bench-201 cell on the benchmark's skeleton.
    NasBench201(TinyNetwork),
}

impl EvalNetwork {
    /// Builds the network `config.architecture` asks for, its weights drawn from `rng`.
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: EvalNetworkConfig) -> Result<EvalNetwork> {
        Ok(match config.architecture {
            Architecture::Cells(_) => EvalNetwork::Cells(NetworkCifar::new(gpu, rng, config)?),
            Architecture::Macro(_) => EvalNetwork::Macro(FixedMacroNetwork::new(gpu, rng, config)?),
            Architecture::NasBench201(_) => EvalNetwork::NasBench201(TinyNetwork::new(gpu, rng, config)?),
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &EvalNetworkConfig {
        match self {
            EvalNetwork::Cells(net) => &net.config,
            EvalNetwork::Macro(net) => &net.config,
            EvalNetwork::NasBench201(net) => &net.config,
        }
    }

    /// x: [N, in_channels, H, W] -> (logits [N, classes], auxiliary logits [N, classes] in
    /// training with the head). Drop path (probability `drop_prob`, masks from `rng`) applies
    /// to cells only: the macro network has none.
    pub fn forward(&self, x: &Tensor, train: bool, drop_prob: f32, rng: &mut Rng) -> Result<(Tensor, Option<Tensor>)> {
        match self {
            EvalNetwork::Cells(net) => net.forward(x, train, drop_prob, rng),
            EvalNetwork::Macro(net) => net.forward(x, train),
            EvalNetwork::NasBench201(net) => Ok((net.forward(x, train)?, None)),
        }
    }

    /// Evaluation: BN running statistics, no drop path, no auxiliary head. x: [N, in, H, W] ->
    /// logits [N, classes].
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            EvalNetwork::Cells(net) => net.predict(x),
            EvalNetwork::Macro(net) => Ok(net.forward(x, false)?.0),
            EvalNetwork::NasBench201(net) => net.forward(x, false),
        }
    }

    /// Millions of trainable values outside the auxiliary head, as the papers report model size.
    pub fn count_parameters_in_mb(&self) -> f64 {
        count_parameters_in_mb(self)
    }
}

impl Module for EvalNetwork {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        match self {
            EvalNetwork::Cells(net) => net.visit(prefix, f),
            EvalNetwork::Macro(net) => net.visit(prefix, f),
            EvalNetwork::NasBench201(net) => net.visit(prefix, f),
        }
    }
}

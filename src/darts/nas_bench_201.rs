//! The NAS-Bench-201 search network (D-X-Y/AutoDL-Projects `cell_searchs/search_model_darts.py`
//! `TinyNetworkDarts`, its GDAS twin, and `search_cells.py` `NAS201SearchCell`): a 3x3 conv stem
//! with BN, three stages of N search cells at C, 2C and 4C channels with a [`ResNetBasicBlock`]
//! between them, BN and ReLU, global average pooling, a linear classifier. Every cell mixes its
//! edges by the same alphas `[6, ops]`; the reductions are fixed, so there are no reduce alphas.
//!
//! A cell: node 0 is its input, node j = sum over i < j of the mixed op of edge (j <- i) on
//! node i, the output is node 3. The edges' operations are built without affine BN and pools
//! without the BN DARTS adds after them, as in the reference search cell. Its BNs keep running
//! statistics (the reference's search config turns them off; here the epoch's validation score
//! uses them, as the DARTS space's does).

use super::model::{edge_forward, Mixing, NetworkConfig, State};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::nn::{join, BatchNorm, MixedOp, Module, ResNetBasicBlock, Visit};
use crate::ops::elementwise;
use crate::rng::Rng;
use crate::space::{NAS_BENCH_201_EDGES, NAS_BENCH_201_NODES};
use crate::tensor::Tensor;

/// One NAS-Bench-201 search cell: six mixed edges, in alpha row order (1<-0, 2<-0, 2<-1, 3<-0,
/// 3<-1, 3<-2).
pub struct SearchCell {
    /// The mixed operations of the six edges.
    pub edges: Vec<MixedOp>,
    /// PC-DARTS's K: the edges' mixed operations are built for C/K channels.
    partial: Option<usize>,
}

impl SearchCell {
    fn new(gpu: &Gpu, rng: &mut Rng, primitives: &[&'static str], c: usize, partial: Option<usize>) -> Result<Self> {
        let c_op = c / partial.unwrap_or(1);
        let edges = (0..NAS_BENCH_201_EDGES)
            .map(|_| MixedOp::with_pool_bn(gpu, rng, primitives, c_op, 1, false))
            .collect::<Result<_>>()?;
        Ok(SearchCell { edges, partial })
    }

    /// x: [N, C, H, W] -> node 3: [N, C, H, W]. `edge_weights`: PC-DARTS's per-node softmax of
    /// the betas, `[6]`.
    pub fn forward(
        &self,
        x: &Tensor,
        mixing: Mixing<'_>,
        edge_weights: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let mut states = vec![State::new(x, self.partial)?];
        let mut offset = 0;
        for _ in 0..NAS_BENCH_201_NODES {
            let inputs: Vec<Tensor> = states
                .iter()
                .enumerate()
                .map(|(i, state)| edge_forward(&self.edges[offset + i], offset + i, state, mixing, edge_weights, train))
                .collect::<Result<_>>()?;
            offset += states.len();
            let node = elementwise::add_n(&inputs.iter().collect::<Vec<_>>())?;
            states.push(State::new(&node, self.partial)?);
        }
        Ok(states.pop().expect("three nodes").x().clone())
    }
}

impl Module for SearchCell {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        for (e, op) in self.edges.iter().enumerate() {
            op.visit(&join(prefix, &format!("edges.{e}")), f);
        }
    }
}

/// A layer of the skeleton: a search cell or a fixed reduction block.
pub enum Layer {
    /// A search cell of the current stage.
    Cell(SearchCell),
    /// The ResNet block between two stages.
    Reduction(Box<ResNetBasicBlock>),
}

/// The skeleton between the stem and the pooling: 3 stages of N cells, two ResNet blocks, the
/// last BN (its ReLU after it).
pub struct Skeleton {
    /// Cells and blocks, input side first (AutoDL-Projects' `cells`).
    pub layers: Vec<Layer>,
    /// BN over 4C channels before the final ReLU (`lastact`).
    pub lastact: BatchNorm,
}

impl Skeleton {
    /// The skeleton for `config` (C = `channels`, N = `layers` cells per stage).
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: &NetworkConfig, primitives: &[&'static str]) -> Result<Self> {
        let partial = config.partial.map(|p| p.k);
        let (c, n) = (config.channels, config.layers);
        let mut layers = Vec::with_capacity(3 * n + 2);
        for stage in 0..3 {
            let c_stage = c << stage;
            if stage > 0 {
                layers.push(Layer::Reduction(Box::new(ResNetBasicBlock::new(gpu, rng, c_stage / 2, c_stage)?)));
            }
            for _ in 0..n {
                layers.push(Layer::Cell(SearchCell::new(gpu, rng, primitives, c_stage, partial)?));
            }
        }
        Ok(Skeleton { layers, lastact: BatchNorm::new(gpu, 4 * c, true)? })
    }

    /// s: the stem's output [N, C, H, W] -> relu(lastact(...)) [N, 4C, H/4, W/4]; every cell's
    /// edges mixed as `mixing`.
    pub fn forward(
        &self,
        s: &Tensor,
        mixing: Mixing<'_>,
        edge_weights: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let mut x = s.clone();
        for layer in &self.layers {
            x = match layer {
                Layer::Cell(cell) => cell.forward(&x, mixing, edge_weights, train)?,
                Layer::Reduction(block) => block.forward(&x, train)?,
            };
        }
        self.lastact.forward_relu(&x, train)
    }
}

impl Module for Skeleton {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        for (i, layer) in self.layers.iter().enumerate() {
            let name = join(prefix, &format!("cells.{i}"));
            match layer {
                Layer::Cell(cell) => cell.visit(&name, f),
                Layer::Reduction(block) => block.visit(&name, f),
            }
        }
        self.lastact.visit(&join(prefix, "lastact.0"), f);
    }
}

//! A NAS-Bench-201 cell retrained (D-X-Y/AutoDL-Projects `cell_infers/tiny_network.py`
//! `TinyNetwork` with `cells.py` `InferCell`): the search skeleton (stem conv 3x3 and BN, three
//! stages of N cells at C, 2C and 4C channels with a [`ResNetBasicBlock`] between them, BN and
//! ReLU, global average pooling, a linear classifier) with each edge's one operation, built with
//! affine BN. Node j sums its edges' outputs; a `none` edge is left out (it adds zeros), and a
//! node whose edges are all `none` is zeros.

use super::config::{Architecture, EvalNetworkConfig};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{join, BatchNorm, Conv, Linear, Module, Primitive, ResNetBasicBlock, Visit};
use crate::ops::{conv::Conv2d, elementwise, elementwise::relu, pool};
use crate::rng::Rng;
use crate::space::{NasBench201Cell, NAS_BENCH_201_OPS};
use crate::tensor::Tensor;

/// One retrained cell: per node 1..=3, its edges' (input node, operation); `none` edges are
/// not built.
pub struct InferCell {
    /// `nodes[j - 1]`: node j's edges as (input node, op name, op).
    pub nodes: Vec<Vec<(usize, String, Primitive)>>,
}

impl InferCell {
    fn new(gpu: &Gpu, rng: &mut Rng, cell: &NasBench201Cell, c: usize) -> Result<InferCell> {
        let nodes = cell
            .nodes
            .iter()
            .map(|node| {
                node.iter()
                    .filter(|(op, _)| op != "none")
                    .map(|(op, i)| Ok((*i, op.clone(), Primitive::new(gpu, rng, op, c, 1, true, false)?)))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        Ok(InferCell { nodes })
    }

    /// x: [N, C, H, W] -> node 3: [N, C, H, W].
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut states = vec![x.clone()];
        for node in &self.nodes {
            let mut outs = Vec::with_capacity(node.len());
            for (i, _, op) in node {
                outs.extend(op.forward(&states[*i], train)?);
            }
            let next = match outs.len() {
                0 => Tensor::zeros(x.gpu(), x.shape())?,
                _ => elementwise::add_n(&outs.iter().collect::<Vec<_>>())?,
            };
            states.push(next);
        }
        Ok(states.pop().expect("three nodes"))
    }
}

impl Module for InferCell {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        // AutoDL-Projects names edge (j <- i) `layers.{index}` in edge order; `none` has no tensors.
        let mut e = 0;
        for (n, node) in self.nodes.iter().enumerate() {
            for (i, _, op) in node {
                op.visit(&join(prefix, &format!("layers.{}", e + i)), f);
            }
            e += n + 1;
        }
    }
}

/// A layer of the retrained network.
enum Layer {
    Cell(InferCell),
    Reduction(Box<ResNetBasicBlock>),
}

/// The retrained NAS-Bench-201 network (`TinyNetwork`).
pub struct TinyNetwork {
    /// The configuration it was built from.
    pub config: EvalNetworkConfig,
    stem_conv: Conv,
    stem_bn: BatchNorm,
    layers: Vec<Layer>,
    lastact: BatchNorm,
    classifier: Linear,
}

impl TinyNetwork {
    /// The network of `config` (C = `channels`, N = `layers` cells per stage; 16 and 5 in the
    /// benchmark); its architecture must be a NAS-Bench-201 cell.
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: EvalNetworkConfig) -> Result<TinyNetwork> {
        let Architecture::NasBench201(cell) = &config.architecture else {
            return Err(Error::Config("TinyNetwork builds NAS-Bench-201 cells".into()));
        };
        cell.validate(&NAS_BENCH_201_OPS)?;
        let (c, n) = (config.channels, config.layers);
        if c == 0 || n == 0 {
            return Err(Error::Config("a NAS-Bench-201 network needs at least 1 channel and 1 cell per stage".into()));
        }
        let stem_conv = Conv::new(gpu, rng, config.in_channels, c, 3, Conv2d::new(1, 1, 1, 1))?;
        let stem_bn = BatchNorm::new(gpu, c, true)?;
        let mut layers = Vec::with_capacity(3 * n + 2);
        for stage in 0..3 {
            let c_stage = c << stage;
            if stage > 0 {
                layers.push(Layer::Reduction(Box::new(ResNetBasicBlock::new(gpu, rng, c_stage / 2, c_stage)?)));
            }
            for _ in 0..n {
                layers.push(Layer::Cell(InferCell::new(gpu, rng, cell, c_stage)?));
            }
        }
        let lastact = BatchNorm::new(gpu, 4 * c, true)?;
        let classifier = Linear::new(gpu, rng, 4 * c, config.num_classes, true)?;
        Ok(TinyNetwork { config, stem_conv, stem_bn, layers, lastact, classifier })
    }

    /// x: [N, in_channels, H, W] (sides divisible by 4) -> logits [N, num_classes].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut s = self.stem_bn.forward(&self.stem_conv.forward(x)?, train)?;
        for layer in &self.layers {
            s = match layer {
                Layer::Cell(cell) => cell.forward(&s, train)?,
                Layer::Reduction(block) => block.forward(&s, train)?,
            };
        }
        let out = relu(&self.lastact.forward(&s, train)?)?;
        let (n, c) = (out.shape()[0], out.shape()[1]);
        self.classifier.forward(&pool::global_avg_pool(&out)?.reshape(&[n, c])?)
    }
}

impl Module for TinyNetwork {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.stem_conv.visit(&join(prefix, "stem.0"), f);
        self.stem_bn.visit(&join(prefix, "stem.1"), f);
        for (i, layer) in self.layers.iter().enumerate() {
            let name = join(prefix, &format!("cells.{i}"));
            match layer {
                Layer::Cell(cell) => cell.visit(&name, f),
                Layer::Reduction(block) => block.visit(&name, f),
            }
        }
        self.lastact.visit(&join(prefix, "lastact.0"), f);
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}

//! The DARTS search network (quark0/darts `model_search.py`): a stem, a stack of cells whose
//! edges are mixed operations, global average pooling and a linear classifier. Normal cells share
//! `alphas_normal`, reduction cells `alphas_reduce`, both [edges, ops].

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{
    join, BatchNorm, Conv, FactorizedReduce, Input, Linear, MixedOp, Module, Preprocess, ReluConvBn, Visit,
};
use crate::ops::{conv::Conv2d, elementwise, layout, pool, softmax};
use crate::rng::Rng;
use crate::space::SearchSpace;
use crate::tensor::Tensor;

/// Shape of a search network. The defaults are the paper's (C=16, 8 cells, 4 nodes).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetworkConfig {
    /// Channels of the input images (3 for CIFAR, 1 for Fashion-MNIST).
    pub in_channels: usize,
    /// Number of classes: the outputs of the final linear layer.
    pub num_classes: usize,
    /// Initial channels C.
    pub channels: usize,
    /// Number of cells.
    pub layers: usize,
    /// The stem's output channels as a multiple of C (3: the stem gives 3C).
    pub stem_multiplier: usize,
    /// Cell indices that reduce; `None` means the reference's layers/3 and 2*layers/3.
    pub reductions: Option<Vec<usize>>,
    /// The candidate operations (the columns of the alpha matrices), nodes per cell, and how
    /// many of the last nodes a cell's output concatenates.
    pub space: SearchSpace,
}

impl NetworkConfig {
    /// The paper's search network (C=16, 8 cells, stem 3C, DARTS primitives, 4 nodes) for these
    /// inputs and classes.
    pub fn darts(in_channels: usize, num_classes: usize) -> Self {
        NetworkConfig {
            in_channels,
            num_classes,
            channels: 16,
            layers: 8,
            stem_multiplier: 3,
            reductions: None,
            space: SearchSpace::darts(),
        }
    }

    /// The cells that reduce the resolution (and double the channels).
    pub fn reduction_cells(&self) -> Vec<usize> {
        match &self.reductions {
            Some(r) => r.clone(),
            None if self.layers >= 3 => vec![self.layers / 3, 2 * self.layers / 3],
            None => vec![],
        }
    }

    /// Checks the sizes (each at least 1), the search space, that every reduction cell exists, and
    /// that C is even where FactorizedReduce is used.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.layers == 0 || self.channels == 0 || self.in_channels == 0 || self.num_classes == 0 {
            return bad("layers, channels, input channels and classes must be at least 1".into());
        }
        self.space.validate()?;
        let reductions = self.reduction_cells();
        if let Some(&r) = reductions.iter().find(|&&r| r >= self.layers) {
            return bad(format!("reduction cell {r} is past the last cell ({} cells)", self.layers));
        }
        if !reductions.is_empty()
            && !self.channels.is_multiple_of(2)
            && self.space.primitives.iter().any(|p| p == "skip_connect")
        {
            return bad(format!(
                "FactorizedReduce needs an even channel count, got C={}; use an even --init-channels",
                self.channels
            ));
        }
        Ok(())
    }

    fn static_primitives(&self) -> Vec<&'static str> {
        self.space
            .primitives
            .iter()
            .map(|p| *crate::nn::PRIMITIVES.iter().find(|q| **q == p.as_str()).expect("validated"))
            .collect()
    }
}

/// How a cell's edges mix their candidate ops.
#[derive(Clone, Copy)]
pub enum Mixing<'a> {
    /// DARTS: every op, weighted by softmax(alphas) `[E, K]`.
    Softmax(&'a Tensor),
    /// GDAS: only op `index[e]` of edge e, scaled by the straight-through hard sample `h`
    /// `[E, K]` (one-hot in value, the Gumbel-softmax's gradient).
    Hard {
        /// The hard sample, `[E, K]`.
        h: &'a Tensor,
        /// The sampled op of each edge (a column of h).
        index: &'a [usize],
    },
}

/// One search cell: two preprocessed inputs, `steps` nodes each summing a mixed op from every
/// earlier state, output = concat of the last `multiplier` nodes.
pub struct Cell {
    /// Whether this cell reduces: stride 2 on the edges from its inputs, twice the channels, and
    /// `alphas_reduce` instead of `alphas_normal`.
    pub reduction: bool,
    preprocess0: Preprocess,
    preprocess1: ReluConvBn,
    /// Edges in the reference order: node 0's two inputs, node 1's three, ...
    pub edges: Vec<MixedOp>,
    steps: usize,
    multiplier: usize,
}

impl Cell {
    #[allow(clippy::too_many_arguments)]
    fn new(
        gpu: &Gpu,
        rng: &mut Rng,
        cfg: &NetworkConfig,
        c_prev_prev: usize,
        c_prev: usize,
        c: usize,
        reduction: bool,
        reduction_prev: bool,
    ) -> Result<Cell> {
        let preprocess0 = if reduction_prev {
            Preprocess::FactorizedReduce(FactorizedReduce::new(gpu, rng, c_prev_prev, c, false)?)
        } else {
            Preprocess::ReluConvBn(ReluConvBn::new(gpu, rng, c_prev_prev, c, 1, 1, 0, false)?)
        };
        let preprocess1 = ReluConvBn::new(gpu, rng, c_prev, c, 1, 1, 0, false)?;
        let primitives = cfg.static_primitives();
        let mut edges = Vec::new();
        for i in 0..cfg.space.steps {
            for j in 0..i + 2 {
                let stride = if reduction && j < 2 { 2 } else { 1 };
                edges.push(MixedOp::new(gpu, rng, &primitives, c, stride)?);
            }
        }
        Ok(Cell {
            reduction,
            preprocess0,
            preprocess1,
            edges,
            steps: cfg.space.steps,
            multiplier: cfg.space.multiplier,
        })
    }

    /// s0, s1: [N, C_pp, H, W], [N, C_p, H', W'] -> [N, multiplier*C, H'', W''], the edges
    /// mixed by this cell type's `mixing`.
    fn forward(&self, s0: &Tensor, s1: &Tensor, mixing: Mixing<'_>, train: bool) -> Result<Tensor> {
        // Each state with its ReLU, computed once for all the edges that leave it.
        let mut states =
            vec![Input::new(&self.preprocess0.forward(s0, train)?), Input::new(&self.preprocess1.forward(s1, train)?)];
        let mut offset = 0;
        for _ in 0..self.steps {
            let inputs: Vec<Tensor> = states
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    let e = offset + j;
                    match mixing {
                        Mixing::Softmax(weights) => self.edges[e].forward_shared(x, weights, e, train),
                        Mixing::Hard { h, index } => self.edges[e].forward_hard(x, h, e, index[e], train),
                    }
                })
                .collect::<Result<_>>()?;
            offset += states.len();
            let refs: Vec<&Tensor> = inputs.iter().collect();
            states.push(Input::new(&elementwise::add_n(&refs)?));
        }
        let last: Vec<&Tensor> = states[states.len() - self.multiplier..].iter().map(Input::x).collect();
        layout::concat_channels(&last)
    }
}

impl Module for Cell {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.preprocess0.module().visit(&join(prefix, "preprocess0"), f);
        self.preprocess1.visit(&join(prefix, "preprocess1"), f);
        for (e, op) in self.edges.iter().enumerate() {
            op.visit(&join(prefix, &format!("edges.{e}")), f);
        }
    }
}

/// The search network and its architecture parameters.
pub struct Network {
    /// The configuration it was built from.
    pub config: NetworkConfig,
    stem_conv: Conv,
    stem_bn: BatchNorm,
    /// The cells, input side first.
    pub cells: Vec<Cell>,
    classifier: Linear,
    /// [edges, ops], shared by every normal cell.
    pub alphas_normal: Tensor,
    /// [edges, ops], shared by every reduction cell.
    pub alphas_reduce: Tensor,
}

impl Network {
    /// Builds the network with PyTorch's default init and alphas = 1e-3 * randn.
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: NetworkConfig) -> Result<Network> {
        config.validate()?;
        let c_stem = config.stem_multiplier * config.channels;
        // The reference's stem BN is a default nn.BatchNorm2d, i.e. affine.
        let stem_conv = Conv::new(gpu, rng, config.in_channels, c_stem, 3, Conv2d::new(1, 1, 1, 1))?;
        let stem_bn = BatchNorm::new(gpu, c_stem, true)?;
        let reductions = config.reduction_cells();
        let (mut c_prev_prev, mut c_prev, mut c_curr) = (c_stem, c_stem, config.channels);
        let mut reduction_prev = false;
        let mut cells = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let reduction = reductions.contains(&i);
            if reduction {
                c_curr *= 2;
            }
            cells.push(Cell::new(gpu, rng, &config, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)?);
            reduction_prev = reduction;
            (c_prev_prev, c_prev) = (c_prev, config.space.multiplier * c_curr);
        }
        let classifier = Linear::new(gpu, rng, c_prev, config.num_classes, true)?;
        let shape = [config.space.num_edges(), config.space.num_ops()];
        let n = shape[0] * shape[1];
        let alphas_normal = Tensor::param(gpu, &shape, &rng.normal_vec(n, 1e-3))?;
        let alphas_reduce = Tensor::param(gpu, &shape, &rng.normal_vec(n, 1e-3))?;
        Ok(Network { config, stem_conv, stem_bn, cells, classifier, alphas_normal, alphas_reduce })
    }

    /// x: [N, in_channels, H, W] -> logits [N, num_classes]. `train` selects BN's batch
    /// statistics (search) or running statistics (evaluation).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let weights_normal = softmax::softmax(&self.alphas_normal)?;
        let weights_reduce = softmax::softmax(&self.alphas_reduce)?;
        self.forward_mixed(x, [Mixing::Softmax(&weights_normal), Mixing::Softmax(&weights_reduce)], train)
    }

    /// [`Network::forward`] with the edges of normal and reduction cells mixed as `mixing`
    /// says ([normal, reduce]): GDAS passes its hard samples.
    pub fn forward_mixed(&self, x: &Tensor, mixing: [Mixing<'_>; 2], train: bool) -> Result<Tensor> {
        let edges = self.config.space.num_edges();
        for m in mixing {
            if let Mixing::Hard { index, .. } = m {
                if index.len() != edges {
                    return Err(Error::shape(
                        "Network::forward_mixed",
                        format!("{} sampled ops for {edges} edges", index.len()),
                    ));
                }
            }
        }
        let s = self.stem_bn.forward(&self.stem_conv.forward(x)?, train)?;
        let (mut s0, mut s1) = (s.clone(), s);
        for cell in &self.cells {
            let out = cell.forward(&s0, &s1, mixing[cell.reduction as usize], train)?;
            (s0, s1) = (s1, out);
        }
        let n = s1.shape()[0];
        let c = s1.shape()[1];
        let features = pool::global_avg_pool(&s1)?.reshape(&[n, c])?;
        self.classifier.forward(&features)
    }

    /// The network weights w (everything but the alphas), in a fixed order.
    pub fn weights(&self) -> Vec<Tensor> {
        self.param_list()
    }

    /// [alphas_normal, alphas_reduce], the parameters the architect optimizes, each [edges, ops].
    pub fn alphas(&self) -> [Tensor; 2] {
        [self.alphas_normal.clone(), self.alphas_reduce.clone()]
    }
}

impl Module for Network {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.stem_conv.visit(&join(prefix, "stem.conv"), f);
        self.stem_bn.visit(&join(prefix, "stem.bn"), f);
        for (i, cell) in self.cells.iter().enumerate() {
            cell.visit(&join(prefix, &format!("cells.{i}")), f);
        }
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}

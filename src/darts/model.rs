//! The DARTS search network (quark0/darts `model_search.py`): a stem, a stack of cells whose
//! edges are mixed operations, global average pooling and a linear classifier. Normal cells share
//! `alphas_normal`, reduction cells `alphas_reduce`, both [edges, ops].
//!
//! With [`NetworkConfig::partial`] it is PC-DARTS's network (yuhuixu1993/PC-DARTS
//! `model_search.py`): each edge's mixed operation sees 1/K of its input's channels
//! ([`MixedOp::forward_partial`]), and with edge normalisation a node sums its incoming edges
//! weighted by the per-node softmax of `betas_normal` / `betas_reduce`, `[edges]`.
//!
//! In the NAS-Bench-201 space ([`crate::space::SpaceKind::NasBench201`]) the cells and
//! reductions are [`super::nas_bench_201`]'s skeleton, with one alpha matrix and no
//! `alphas_reduce`.
//!
//! An edge's weight is folded into its operations' weights and its bypassed channels
//! ([`fold_edge_weights`]): scaling the edge's output instead would keep every edge's output
//! alive for the betas' gradient, a third more memory at K=4.

use super::nas_bench_201::Skeleton;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{
    join, BatchNorm, Conv, FactorizedReduce, Input, Linear, MixedOp, Module, PartialInput, Preprocess, ReluConvBn,
    Visit,
};
use crate::ops::{conv::Conv2d, elementwise, layout, pool, softmax};
use crate::rng::Rng;
use crate::space::{SearchSpace, NAS_BENCH_201_OPS};
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
    /// Number of cells (DARTS); cells per stage N (NAS-Bench-201, 5 in the benchmark).
    pub layers: usize,
    /// The stem's output channels as a multiple of C (3: the stem gives 3C).
    pub stem_multiplier: usize,
    /// Cell indices that reduce; `None` means the reference's layers/3 and 2*layers/3.
    pub reductions: Option<Vec<usize>>,
    /// The candidate operations (the columns of the alpha matrices), nodes per cell, and how
    /// many of the last nodes a cell's output concatenates.
    pub space: SearchSpace,
    /// PC-DARTS's partial channel connections and edge normalisation; `None` is DARTS.
    #[serde(default)]
    pub partial: Option<PartialChannels>,
}

/// PC-DARTS (Xu et al. 2020): which share of an edge's channels its mixed operation sees, and
/// whether nodes weight their incoming edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartialChannels {
    /// 1/K of each edge's channels go through its mixed operation, the rest bypass it (the
    /// paper's K=4 on CIFAR-10). K must divide every cell's channel count.
    pub k: usize,
    /// Betas per incoming edge of a node, softmaxed per node, weight the node's sum and the
    /// edges' ranking in the genotype.
    pub edge_normalization: bool,
}

impl PartialChannels {
    /// The paper's CIFAR-10 setting: K=4 with edge normalisation.
    pub fn pc_darts() -> Self {
        PartialChannels { k: 4, edge_normalization: true }
    }
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
            partial: None,
        }
    }

    /// The cells that reduce the resolution (and double the channels); none in NAS-Bench-201,
    /// whose reductions are the fixed blocks between its stages.
    pub fn reduction_cells(&self) -> Vec<usize> {
        if self.space.is_nas_bench_201() {
            return vec![];
        }
        match &self.reductions {
            Some(r) => r.clone(),
            None if self.layers >= 3 => vec![self.layers / 3, 2 * self.layers / 3],
            None => vec![],
        }
    }

    /// Checks the sizes (each at least 1), the search space, that every reduction cell exists,
    /// that C is even where FactorizedReduce is used, and that PC-DARTS's K divides every cell's
    /// channels (and leaves an even share where a reduction edge's skip_connect halves it).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.layers == 0 || self.channels == 0 || self.in_channels == 0 || self.num_classes == 0 {
            return bad("layers, channels, input channels and classes must be at least 1".into());
        }
        self.space.validate()?;
        if self.space.is_nas_bench_201() && self.reductions.is_some() {
            return bad(
                "NAS-Bench-201's reductions are fixed (between its 3 stages); leave the reduction cells unset".into()
            );
        }
        // No reduction cells in NAS-Bench-201: of the checks below only K's applies there.
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
        if let Some(p) = self.partial {
            let k = p.k;
            if k == 0 || !self.channels.is_multiple_of(k) {
                return bad(format!(
                    "--partial-channels {k} does not divide the {} initial channels; give a K that divides --init-channels",
                    self.channels
                ));
            }
            let skip = self.space.primitives.iter().any(|p| p == "skip_connect");
            for (i, &r) in reductions.iter().enumerate() {
                let c = self.channels << (i + 1);
                if skip && !(c / k).is_multiple_of(2) {
                    return bad(format!(
                        "reduction cell {r} has {c} channels: its edges' {}-channel share (--partial-channels {k}) \
                         must be even for skip_connect's FactorizedReduce; use a smaller K or more --init-channels",
                        c / k
                    ));
                }
            }
        }
        Ok(())
    }

    fn static_primitives(&self) -> Vec<&'static str> {
        let known = || crate::nn::PRIMITIVES.iter().chain(&NAS_BENCH_201_OPS);
        self.space.primitives.iter().map(|p| *known().find(|q| **q == p.as_str()).expect("validated")).collect()
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
    /// PC-DARTS's K: the edges' mixed operations are built for C/K channels.
    partial: Option<usize>,
}

/// A cell state as its outgoing edges read it: whole (DARTS) or split into the channels the
/// mixed operations see and those that bypass them (PC-DARTS).
pub(super) enum State {
    Whole(Input),
    Split(Tensor, PartialInput),
}

impl State {
    pub(super) fn new(x: &Tensor, partial: Option<usize>) -> Result<State> {
        Ok(match partial {
            None => State::Whole(Input::new(x)),
            Some(k) => State::Split(x.clone(), PartialInput::new(x, k)?),
        })
    }

    pub(super) fn x(&self) -> &Tensor {
        match self {
            State::Whole(input) => input.x(),
            State::Split(x, _) => x,
        }
    }
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
        let partial = cfg.partial.map(|p| p.k);
        let c_op = c / partial.unwrap_or(1);
        let mut edges = Vec::new();
        for i in 0..cfg.space.steps {
            for j in 0..i + 2 {
                let stride = if reduction && j < 2 { 2 } else { 1 };
                edges.push(MixedOp::new(gpu, rng, &primitives, c_op, stride)?);
            }
        }
        Ok(Cell {
            reduction,
            preprocess0,
            preprocess1,
            edges,
            steps: cfg.space.steps,
            multiplier: cfg.space.multiplier,
            partial,
        })
    }

    /// s0, s1: [N, C_pp, H, W], [N, C_p, H', W'] -> [N, multiplier*C, H'', W''], the edges
    /// mixed by this cell type's `mixing`. With PC-DARTS's edge normalisation, `edge_weights` =
    /// the per-node softmax of the cell type's betas, `[edges]`, which scales the bypassed
    /// channels (the softmax weights come folded with it, [`fold_edge_weights`]).
    fn forward(
        &self,
        s0: &Tensor,
        s1: &Tensor,
        mixing: Mixing<'_>,
        edge_weights: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        // Each state with its ReLU, computed once for all the edges that leave it.
        let mut states = vec![
            State::new(&self.preprocess0.forward(s0, train)?, self.partial)?,
            State::new(&self.preprocess1.forward(s1, train)?, self.partial)?,
        ];
        let mut offset = 0;
        for _ in 0..self.steps {
            let inputs: Vec<Tensor> = states
                .iter()
                .enumerate()
                .map(|(j, state)| edge_forward(&self.edges[offset + j], offset + j, state, mixing, edge_weights, train))
                .collect::<Result<_>>()?;
            let node = elementwise::add_n(&inputs.iter().collect::<Vec<_>>())?;
            offset += states.len();
            states.push(State::new(&node, self.partial)?);
        }
        let last: Vec<&Tensor> = states[states.len() - self.multiplier..].iter().map(State::x).collect();
        layout::concat_channels(&last)
    }
}

/// Edge `e`'s mixed op on `state`, as `mixing` says (PC-DARTS's partial channels when the
/// state is split).
pub(super) fn edge_forward(
    edge: &MixedOp,
    e: usize,
    state: &State,
    mixing: Mixing<'_>,
    edge_weights: Option<&Tensor>,
    train: bool,
) -> Result<Tensor> {
    match (state, mixing) {
        (State::Whole(input), Mixing::Softmax(weights)) => edge.forward_shared(input, weights, e, train),
        (State::Whole(input), Mixing::Hard { h, index }) => edge.forward_hard(input, h, e, index[e], train),
        (State::Split(_, input), Mixing::Softmax(weights)) => {
            edge.forward_partial(input, weights, e, edge_weights, train)
        }
        (State::Split(..), Mixing::Hard { .. }) => Err(Error::Config(
            "GDAS's one-op-per-edge sample does not run on partial channels (PC-DARTS); use one method or the other"
                .into(),
        )),
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
    /// The DARTS space's cells, input side first (none in NAS-Bench-201).
    pub cells: Vec<Cell>,
    /// The NAS-Bench-201 space's stages, reduction blocks and last BN (`None` in DARTS).
    pub nas_bench_201: Option<Skeleton>,
    classifier: Linear,
    /// [edges, ops], shared by every normal cell (every cell in NAS-Bench-201).
    pub alphas_normal: Tensor,
    /// [edges, ops], shared by every reduction cell; `None` in NAS-Bench-201.
    pub alphas_reduce: Option<Tensor>,
    /// PC-DARTS's edge normalisation: `[edges]`, shared by every normal cell (`None` without it).
    pub betas_normal: Option<Tensor>,
    /// `[edges]`, shared by every reduction cell (`None` without it and in NAS-Bench-201).
    pub betas_reduce: Option<Tensor>,
}

/// PC-DARTS's edge weights: the softmax of `betas` `[edges]` over each node's incoming edges
/// (`node_sizes` of them: DARTS's node 0 has 2, node 1 3, ...; see
/// [`SearchSpace::node_sizes`]), `[edges]`.
pub fn edge_softmax(betas: &Tensor, node_sizes: &[usize]) -> Result<Tensor> {
    let e = betas.numel();
    let b = betas.reshape(&[1, e, 1, 1])?;
    let mut nodes = Vec::with_capacity(node_sizes.len());
    let mut offset = 0;
    for &n in node_sizes {
        let row = layout::slice_channels(&b, offset, n)?.reshape(&[1, n])?;
        nodes.push(softmax::softmax(&row)?.reshape(&[1, n, 1, 1])?);
        offset += n;
    }
    layout::concat_channels(&nodes.iter().collect::<Vec<_>>())?.reshape(&[e])
}

/// `weights` [edges, ops] with each row scaled by its edge's weight from `edge_weights` `[edges]`:
/// `sum_k (w2[e] * w[e, k]) op_k(x)` is the edge's mixed output scaled by `w2[e]`, and its gradient
/// reaches the betas through the op outputs the mixed sum keeps anyway.
pub fn fold_edge_weights(weights: &Tensor, edge_weights: &Tensor) -> Result<Tensor> {
    let (e, ops) = (weights.shape()[0], weights.shape()[1]);
    // w2 repeated along the ops: [1, ops * E] in (op, edge) order, shuffled to (edge, op).
    let column = edge_weights.reshape(&[1, e, 1, 1])?;
    let repeated = layout::concat_channels(&vec![&column; ops])?;
    let rows = layout::channel_shuffle(&repeated, ops)?.reshape(&[e, ops])?; // [E, ops]
    elementwise::mul(weights, &rows)
}

impl Network {
    /// Builds the network with PyTorch's default init and alphas = 1e-3 * randn (then betas =
    /// 1e-3 * randn with edge normalisation, so that without it the random numbers are DARTS's).
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: NetworkConfig) -> Result<Network> {
        config.validate()?;
        if config.space.is_nas_bench_201() {
            return Network::nas_bench_201(gpu, rng, config);
        }
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
        let (betas_normal, betas_reduce) = if config.partial.is_some_and(|p| p.edge_normalization) {
            let e = shape[0];
            (
                Some(Tensor::param(gpu, &[e], &rng.normal_vec(e, 1e-3))?),
                Some(Tensor::param(gpu, &[e], &rng.normal_vec(e, 1e-3))?),
            )
        } else {
            (None, None)
        };
        Ok(Network {
            config,
            stem_conv,
            stem_bn,
            cells,
            nas_bench_201: None,
            classifier,
            alphas_normal,
            alphas_reduce: Some(alphas_reduce),
            betas_normal,
            betas_reduce,
        })
    }

    /// NAS-Bench-201's search network: stem conv 3x3 (C) and BN, the [`Skeleton`], a linear
    /// classifier on 4C; alphas [6, ops] = 1e-3 * randn, then betas [6] with edge normalisation.
    fn nas_bench_201(gpu: &Gpu, rng: &mut Rng, config: NetworkConfig) -> Result<Network> {
        let c = config.channels;
        let stem_conv = Conv::new(gpu, rng, config.in_channels, c, 3, Conv2d::new(1, 1, 1, 1))?;
        let stem_bn = BatchNorm::new(gpu, c, true)?;
        let skeleton = Skeleton::new(gpu, rng, &config, &config.static_primitives())?;
        let classifier = Linear::new(gpu, rng, 4 * c, config.num_classes, true)?;
        let shape = [config.space.num_edges(), config.space.num_ops()];
        let alphas_normal = Tensor::param(gpu, &shape, &rng.normal_vec(shape[0] * shape[1], 1e-3))?;
        let betas_normal = if config.partial.is_some_and(|p| p.edge_normalization) {
            Some(Tensor::param(gpu, &[shape[0]], &rng.normal_vec(shape[0], 1e-3))?)
        } else {
            None
        };
        Ok(Network {
            config,
            stem_conv,
            stem_bn,
            cells: vec![],
            nas_bench_201: Some(skeleton),
            classifier,
            alphas_normal,
            alphas_reduce: None,
            betas_normal,
            betas_reduce: None,
        })
    }

    /// x: [N, in_channels, H, W] -> logits [N, num_classes]. `train` selects BN's batch
    /// statistics (search) or running statistics (evaluation).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let sizes = self.config.space.node_sizes();
        let edges = |b: &Option<Tensor>| b.as_ref().map(|b| edge_softmax(b, &sizes)).transpose();
        let (edges_normal, edges_reduce) = (edges(&self.betas_normal)?, edges(&self.betas_reduce)?);
        let fold = |w: Tensor, e: &Option<Tensor>| e.as_ref().map_or(Ok(w.clone()), |e| fold_edge_weights(&w, e));
        let weights_normal = fold(softmax::softmax(&self.alphas_normal)?, &edges_normal)?;
        // NAS-Bench-201 has one alpha matrix: its cells all mix by the first.
        let weights_reduce = match &self.alphas_reduce {
            Some(a) => fold(softmax::softmax(a)?, &edges_reduce)?,
            None => weights_normal.clone(),
        };
        self.forward_with(
            x,
            [Mixing::Softmax(&weights_normal), Mixing::Softmax(&weights_reduce)],
            [edges_normal.as_ref(), edges_reduce.as_ref()],
            train,
        )
    }

    /// [`Network::forward`] with the edges of normal and reduction cells mixed as `mixing`
    /// says ([normal, reduce]; NAS-Bench-201 reads only the first): GDAS passes its hard samples.
    pub fn forward_mixed(&self, x: &Tensor, mixing: [Mixing<'_>; 2], train: bool) -> Result<Tensor> {
        self.forward_with(x, mixing, [None, None], train)
    }

    fn forward_with(
        &self,
        x: &Tensor,
        mixing: [Mixing<'_>; 2],
        edge_weights: [Option<&Tensor>; 2],
        train: bool,
    ) -> Result<Tensor> {
        let edges = self.config.space.num_edges();
        let used = if self.nas_bench_201.is_some() { 1 } else { 2 };
        for m in &mixing[..used] {
            if let Mixing::Hard { index, .. } = *m {
                if index.len() != edges {
                    return Err(Error::shape(
                        "Network::forward_mixed",
                        format!("{} sampled ops for {edges} edges", index.len()),
                    ));
                }
            }
        }
        let s = self.stem_bn.forward(&self.stem_conv.forward(x)?, train)?;
        if let Some(skeleton) = &self.nas_bench_201 {
            let out = skeleton.forward(&s, mixing[0], edge_weights[0], train)?;
            let (n, c) = (out.shape()[0], out.shape()[1]);
            return self.classifier.forward(&pool::global_avg_pool(&out)?.reshape(&[n, c])?);
        }
        let (mut s0, mut s1) = (s.clone(), s);
        for cell in &self.cells {
            let r = cell.reduction as usize;
            let out = cell.forward(&s0, &s1, mixing[r], edge_weights[r], train)?;
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

    /// `[alphas_normal, alphas_reduce]` (`[alphas_normal]` alone in NAS-Bench-201), each `[edges, ops]`.
    pub fn alphas(&self) -> Vec<Tensor> {
        std::iter::once(&self.alphas_normal).chain(&self.alphas_reduce).cloned().collect()
    }

    /// Everything the architect optimizes: the alphas, then (PC-DARTS's edge normalisation)
    /// [betas_normal, betas_reduce].
    pub fn arch_parameters(&self) -> Vec<Tensor> {
        let betas = [&self.betas_normal, &self.betas_reduce].into_iter().flatten().cloned();
        self.alphas().into_iter().chain(betas).collect()
    }
}

impl Module for Network {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.stem_conv.visit(&join(prefix, "stem.conv"), f);
        self.stem_bn.visit(&join(prefix, "stem.bn"), f);
        for (i, cell) in self.cells.iter().enumerate() {
            cell.visit(&join(prefix, &format!("cells.{i}")), f);
        }
        if let Some(skeleton) = &self.nas_bench_201 {
            skeleton.visit(prefix, f);
        }
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}

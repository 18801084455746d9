//! The micro space's shared model (melodyguan/enas `micro_child.py`, search mode): a stem,
//! `num_layers` normal cells with two reduction cells among them, global average pooling and a
//! classifier. Every candidate operation's weights exist once; a forward runs only the sampled
//! architecture's operations.
//!
//! As the reference in search: every cell operation has stride 1. A reduction layer first halves
//! its input with a FactorizedReduce (doubling the channels), then runs the reduction cell on
//! (previous output, reduced output); a cell brings a larger input down with a FactorizedReduce
//! and a wider one to its channel count with ReLU-conv1x1-BN. Separable convolutions have weights
//! per (node, branch, input, operation), as the reference's. A cell's output is its loose ends
//! (nodes no other node reads) through ReLU and a 1x1 conv each, summed, then BN (the
//! reference's 1x1 conv over their concatenation, whose weight is sliced per node). Left out:
//! auxiliary head and drop path. BN is affine-free except the stem's (as the DARTS search net).

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{join, BatchNorm, Conv, FactorizedReduce, Linear, Module, ReluConvBn, SepConv, Visit};
use crate::ops::{conv::Conv2d, elementwise, pool};
use crate::rng::Rng;
use crate::space::{MicroArch, MicroNode};
use crate::tensor::Tensor;

/// Shape of the micro shared model. The reference's search: 6 layers, 20 channels, 5 nodes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MicroConfig {
    /// Channels of the input images.
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Channels of the first stage (`out_filters`); doubled at each reduction. Even.
    pub channels: usize,
    /// Normal cells; two reduction cells come at `num_layers / 3` and `2 * (num_layers / 3) + 1`.
    pub num_layers: usize,
    /// Intermediate nodes per cell (5).
    pub num_nodes: usize,
}

impl MicroConfig {
    /// The reference's micro search model (6 layers, 20 channels, 5 nodes) for these inputs and
    /// classes.
    pub fn enas(in_channels: usize, num_classes: usize) -> Self {
        MicroConfig { in_channels, num_classes, channels: 20, num_layers: 6, num_nodes: 5 }
    }

    /// Indices (among all `num_layers + 2` cells) of the reduction cells.
    pub fn pool_layers(&self) -> [usize; 2] {
        let d = self.num_layers / 3;
        [d, 2 * d + 1]
    }

    /// Checks that sizes are at least 1 and the channel count even.
    pub fn validate(&self) -> Result<()> {
        if self.in_channels == 0 || self.num_classes == 0 || self.num_layers == 0 || self.num_nodes == 0 {
            return Err(Error::Config("the micro model needs input channels, classes, layers and nodes >= 1".into()));
        }
        if self.channels == 0 || !self.channels.is_multiple_of(2) {
            return Err(Error::Config(format!(
                "the micro model needs an even channel count (FactorizedReduce), got {}",
                self.channels
            )));
        }
        Ok(())
    }
}

/// How a cell brings one input to its resolution and channels.
enum Calibrate {
    Same,
    Reduce(FactorizedReduce),
    Project(ReluConvBn),
}

impl Calibrate {
    /// `c_in` channels at `res_in` (a resolution level: 0 full, 1 half, ...) to `c` at `res`.
    fn new(gpu: &Gpu, rng: &mut Rng, c_in: usize, res_in: usize, c: usize, res: usize) -> Result<Calibrate> {
        Ok(if res_in < res {
            Calibrate::Reduce(FactorizedReduce::new(gpu, rng, c_in, c, false)?)
        } else if c_in != c {
            Calibrate::Project(ReluConvBn::new(gpu, rng, c_in, c, 1, 1, 0, false)?)
        } else {
            Calibrate::Same
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Calibrate::Same => Ok(x.clone()),
            Calibrate::Reduce(f) => f.forward(x, train),
            Calibrate::Project(p) => p.forward(x, train),
        }
    }

    fn module(&self) -> Option<&dyn Module> {
        match self {
            Calibrate::Same => None,
            Calibrate::Reduce(f) => Some(f),
            Calibrate::Project(p) => Some(p),
        }
    }
}

/// One cell of the shared model with every candidate's weights.
pub struct MicroCell {
    /// Whether this is a reduction cell (it runs the sampled reduction cell).
    pub reduction: bool,
    calibrate_x: Calibrate,
    calibrate_y: Calibrate,
    /// `sep[node][branch][input]` = (sep_conv_3x3, sep_conv_5x5) for that input.
    sep: Vec<[Vec<[SepConv; 2]>; 2]>,
    /// One 1x1 conv per node, used when the node is a loose end.
    final_conv: Vec<Conv>,
    final_bn: BatchNorm,
}

impl MicroCell {
    /// Inputs (c_x at res_x, c_y at res_y) to `c` channels at resolution `res`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        gpu: &Gpu,
        rng: &mut Rng,
        (c_x, res_x): (usize, usize),
        (c_y, res_y): (usize, usize),
        c: usize,
        res: usize,
        num_nodes: usize,
        reduction: bool,
    ) -> Result<MicroCell> {
        let calibrate_x = Calibrate::new(gpu, rng, c_x, res_x, c, res)?;
        let calibrate_y = Calibrate::new(gpu, rng, c_y, res_y, c, res)?;
        let mut sep = Vec::with_capacity(num_nodes);
        for node in 0..num_nodes {
            let mut branch = || -> Result<Vec<[SepConv; 2]>> {
                (0..node + 2)
                    .map(|_| Ok([SepConv::new(gpu, rng, c, 3, 1, false)?, SepConv::new(gpu, rng, c, 5, 1, false)?]))
                    .collect()
            };
            sep.push([branch()?, branch()?]);
        }
        let final_conv =
            (0..num_nodes).map(|_| Conv::new(gpu, rng, c, c, 1, Conv2d::new(1, 0, 1, 1))).collect::<Result<_>>()?;
        Ok(MicroCell { reduction, calibrate_x, calibrate_y, sep, final_conv, final_bn: BatchNorm::new(gpu, c, false)? })
    }

    /// x, y: the two previous outputs -> [N, C, H, W] at this cell's resolution.
    fn forward(&self, x: &Tensor, y: &Tensor, nodes: &[MicroNode], train: bool) -> Result<Tensor> {
        let mut states = vec![self.calibrate_x.forward(x, train)?, self.calibrate_y.forward(y, train)?];
        for (j, node) in nodes.iter().enumerate() {
            let mut branches = Vec::with_capacity(2);
            for b in 0..2 {
                let (input, op) = (node.inputs[b], node.ops[b]);
                let h = &states[input];
                // ENAS_MICRO_OPS order: sep_conv_3x3, sep_conv_5x5, avg_pool_3x3, max_pool_3x3, identity
                branches.push(match op {
                    0 | 1 => self.sep[j][b][input][op].forward(h, train)?,
                    2 => pool::avg_pool2d(h, 3, 1, 1)?,
                    3 => pool::max_pool2d(h, 3, 1, 1)?,
                    _ => h.clone(),
                });
            }
            states.push(elementwise::add(&branches[0], &branches[1])?);
        }
        let mut outs = Vec::new();
        for j in 0..nodes.len() {
            if !nodes.iter().any(|n| n.inputs.contains(&(j + 2))) {
                outs.push(self.final_conv[j].forward(&elementwise::relu(&states[j + 2])?)?);
            }
        }
        self.final_bn.forward(&elementwise::add_n(&outs.iter().collect::<Vec<_>>())?, train)
    }
}

impl Module for MicroCell {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        for (name, c) in [("calibrate_x", &self.calibrate_x), ("calibrate_y", &self.calibrate_y)] {
            if let Some(m) = c.module() {
                m.visit(&join(prefix, name), f);
            }
        }
        for (j, branches) in self.sep.iter().enumerate() {
            for (b, inputs) in branches.iter().enumerate() {
                for (i, [s3, s5]) in inputs.iter().enumerate() {
                    s3.visit(&join(prefix, &format!("node_{j}.branch_{b}.from_{i}.sep_conv_3x3")), f);
                    s5.visit(&join(prefix, &format!("node_{j}.branch_{b}.from_{i}.sep_conv_5x5")), f);
                }
            }
        }
        for (j, c) in self.final_conv.iter().enumerate() {
            c.visit(&join(prefix, &format!("final_conv.{j}")), f);
        }
        // Affine-free: running statistics only.
        self.final_bn.visit(&join(prefix, "final_bn"), f);
    }
}

/// The micro shared model.
pub struct MicroNetwork {
    /// The configuration it was built from.
    pub config: MicroConfig,
    stem_conv: Conv,
    stem_bn: BatchNorm,
    /// Before each reduction cell: the previous output halved, (index of the cell, module).
    reduce_inputs: Vec<(usize, FactorizedReduce)>,
    /// All `num_layers + 2` cells, input side first, the two reduction cells among them.
    pub cells: Vec<MicroCell>,
    classifier: Linear,
}

impl MicroNetwork {
    /// Builds the shared model with the weights of every candidate operation.
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: MicroConfig) -> Result<MicroNetwork> {
        config.validate()?;
        // The stem has 3 * out_filters channels, as the reference.
        let c_stem = 3 * config.channels;
        let stem_conv = Conv::new(gpu, rng, config.in_channels, c_stem, 3, Conv2d::new(1, 1, 1, 1))?;
        let stem_bn = BatchNorm::new(gpu, c_stem, true)?;
        let pool_layers = config.pool_layers();
        let mut c = config.channels;
        // (channels, resolution level) of the two latest outputs.
        let (mut prev_prev, mut prev) = ((c_stem, 0), (c_stem, 0));
        let mut cells = Vec::new();
        let mut reduce_inputs = Vec::new();
        for i in 0..config.num_layers + 2 {
            let reduction = pool_layers.contains(&i);
            let res = if reduction {
                c *= 2;
                reduce_inputs.push((i, FactorizedReduce::new(gpu, rng, prev.0, c, false)?));
                prev_prev = prev;
                prev = (c, prev.1 + 1);
                prev.1
            } else {
                prev.1
            };
            cells.push(MicroCell::new(gpu, rng, prev_prev, prev, c, res, config.num_nodes, reduction)?);
            (prev_prev, prev) = (prev, (c, res));
        }
        let classifier = Linear::new(gpu, rng, c, config.num_classes, true)?;
        Ok(MicroNetwork { config, stem_conv, stem_bn, reduce_inputs, cells, classifier })
    }

    /// x: [N, in_channels, H, W] -> logits [N, classes], running only `arch`'s operations.
    pub fn forward(&self, x: &Tensor, arch: &MicroArch, train: bool) -> Result<Tensor> {
        let n_nodes = self.config.num_nodes;
        if arch.normal.len() != n_nodes || arch.reduce.len() != n_nodes {
            return Err(Error::Config(format!(
                "the architecture has {} and {} nodes per cell, the shared model {n_nodes}",
                arch.normal.len(),
                arch.reduce.len()
            )));
        }
        arch.validate()?;
        let s = self.stem_bn.forward(&self.stem_conv.forward(x)?, train)?;
        let (mut prev_prev, mut prev) = (s.clone(), s);
        for (i, cell) in self.cells.iter().enumerate() {
            let out = if cell.reduction {
                let (_, reduce) = self.reduce_inputs.iter().find(|(at, _)| *at == i).expect("built with the cells");
                let reduced = reduce.forward(&prev, train)?;
                let out = cell.forward(&prev, &reduced, &arch.reduce, train)?;
                // The next cell reads (reduced, out), as the reference's `layers`.
                prev = reduced;
                out
            } else {
                cell.forward(&prev_prev, &prev, &arch.normal, train)?
            };
            (prev_prev, prev) = (prev, out);
        }
        let (n, c) = (prev.shape()[0], prev.shape()[1]);
        let features = pool::global_avg_pool(&elementwise::relu(&prev)?)?.reshape(&[n, c])?;
        self.classifier.forward(&features)
    }
}

impl Module for MicroNetwork {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.stem_conv.visit(&join(prefix, "stem.conv"), f);
        self.stem_bn.visit(&join(prefix, "stem.bn"), f);
        for (i, r) in &self.reduce_inputs {
            r.visit(&join(prefix, &format!("reduce_input_{i}")), f);
        }
        for (i, cell) in self.cells.iter().enumerate() {
            cell.visit(&join(prefix, &format!("cells.{i}")), f);
        }
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}

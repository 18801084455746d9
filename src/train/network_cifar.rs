//! The evaluation network of a fixed genotype (quark0/darts `model.py`): `NetworkCIFAR` and its
//! `Cell` compiled from the genotype, with [`AuxiliaryHeadCifar`]. Unlike the search network
//! every edge holds one operation, every BN is affine, pools carry no BN, and in training each
//! non-identity operation's output goes through drop path.

use super::config::{Architecture, CellVariant, EvalNetworkConfig};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{
    count_parameters_in_mb, join, AuxiliaryHeadCifar, BatchNorm, Conv, FactorizedReduce, Linear, Module, Preprocess,
    Primitive, ReluConvBn, Visit,
};
use crate::ops::{conv::Conv2d, drop_path::drop_path, elementwise, layout, pool};
use crate::rng::Rng;
use crate::space::{Genotype, IDENTITY};
use crate::tensor::Tensor;

/// One evaluation cell (`model.py`'s `Cell` after `_compile`): node `i` sums
/// `ops[2i](states[indices[2i]])` and `ops[2i+1](states[indices[2i+1]])`; the output is the
/// channel concatenation of the `concat` states.
pub struct Cell {
    /// Whether this cell reduces: stride 2 on the ops that read its inputs, twice the channels.
    pub reduction: bool,
    /// `None` where ENAS's calibration leaves the input as it is.
    preprocess0: Option<Preprocess>,
    preprocess1: Option<ReluConvBn>,
    /// ENAS's `layer_base`: ReLU, conv 1x1 C -> C, BN on the second input, after preprocess1.
    base: Option<ReluConvBn>,
    variant: CellVariant,
    ops: Vec<Primitive>,
    indices: Vec<usize>,
    concat: Vec<usize>,
}

impl Cell {
    /// Builds the genotype's normal or reduction cell with C channels per node.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        rng: &mut Rng,
        genotype: &Genotype,
        c_prev_prev: usize,
        c_prev: usize,
        c: usize,
        reduction: bool,
        reduction_prev: bool,
        variant: CellVariant,
    ) -> Result<Cell> {
        let enas = variant == CellVariant::EnasMicro;
        let preprocess0 = if reduction_prev {
            Some(Preprocess::FactorizedReduce(FactorizedReduce::new(gpu, rng, c_prev_prev, c, true)?))
        } else if !enas || c_prev_prev != c {
            Some(Preprocess::ReluConvBn(ReluConvBn::new(gpu, rng, c_prev_prev, c, 1, 1, 0, true)?))
        } else {
            None
        };
        let preprocess1 =
            if !enas || c_prev != c { Some(ReluConvBn::new(gpu, rng, c_prev, c, 1, 1, 0, true)?) } else { None };
        let base = if enas { Some(ReluConvBn::new(gpu, rng, c, c, 1, 1, 0, true)?) } else { None };
        let (entries, concat) = if reduction {
            (&genotype.reduce, &genotype.reduce_concat)
        } else {
            (&genotype.normal, &genotype.normal_concat)
        };
        let mut ops = Vec::with_capacity(entries.len());
        for (name, index) in entries {
            let stride = if reduction && *index < 2 { 2 } else { 1 };
            // ENAS's identity is DARTS's skip_connect: the identity at stride 1,
            // FactorizedReduce at stride 2. Affine BN and no BN after pools, as `OPS`.
            let name = if name == IDENTITY { "skip_connect" } else { name.as_str() };
            ops.push(Primitive::new(gpu, rng, name, c, stride, true, false)?);
        }
        let indices = entries.iter().map(|(_, i)| *i).collect();
        Ok(Cell { reduction, preprocess0, preprocess1, base, variant, ops, indices, concat: concat.clone() })
    }

    /// Channels of the output, per node channel: the number of concatenated nodes.
    pub fn multiplier(&self) -> usize {
        self.concat.len()
    }

    /// s0, s1: [N, C_pp, H, W], [N, C_p, H', W'] -> [N, multiplier*C, H'', W'']. In training with
    /// `drop_prob > 0`, every operation's output but the identity's goes through drop path,
    /// its mask drawn from `rng`.
    pub fn forward(&self, s0: &Tensor, s1: &Tensor, train: bool, drop_prob: f32, rng: &mut Rng) -> Result<Tensor> {
        let s0 = match &self.preprocess0 {
            Some(p) => p.forward(s0, train)?,
            None => s0.clone(),
        };
        let mut s1 = match &self.preprocess1 {
            Some(p) => p.forward(s1, train)?,
            None => s1.clone(),
        };
        if let Some(base) = &self.base {
            s1 = base.forward(&s1, train)?;
        }
        let mut states = vec![s0, s1];
        for (ops, indices) in self.ops.chunks(2).zip(self.indices.chunks(2)) {
            let mut hs = Vec::with_capacity(2);
            for (op, &index) in ops.iter().zip(indices) {
                // ENAS's identity at stride 2 is a factorized reduction with no ReLU before it
                // (micro_child.py lines 457-459), and drop path skips it (lines 465-468).
                let enas_reduce = match op {
                    Primitive::FactorizedReduce(fr) if self.variant == CellVariant::EnasMicro => Some(fr),
                    _ => None,
                };
                let h = match enas_reduce {
                    Some(fr) => Some(fr.forward_activated(&states[index], train)?),
                    None => op.forward(&states[index], train)?,
                };
                let h = h.ok_or_else(|| {
                    Error::Config("the evaluation network has no `none` operation (validate the genotype)".into())
                })?;
                let drop = train && drop_prob > 0.0 && !matches!(op, Primitive::Identity) && enas_reduce.is_none();
                hs.push(if drop { drop_path(&h, drop_prob, rng)? } else { h });
            }
            states.push(elementwise::add(&hs[0], &hs[1])?);
        }
        let out: Vec<&Tensor> = self.concat.iter().map(|&i| &states[i]).collect();
        layout::concat_channels(&out)
    }
}

impl Module for Cell {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        if let Some(p) = &self.preprocess0 {
            p.module().visit(&join(prefix, "preprocess0"), f);
        }
        if let Some(p) = &self.preprocess1 {
            p.visit(&join(prefix, "preprocess1"), f);
        }
        if let Some(b) = &self.base {
            b.visit(&join(prefix, "base"), f);
        }
        for (k, op) in self.ops.iter().enumerate() {
            op.visit(&join(prefix, &format!("ops.{k}")), f);
        }
    }
}

/// `NetworkCIFAR`: stem (conv 3x3 to 3C, BN), the cells, global average pooling, a linear
/// classifier, and (optionally) the auxiliary head after cell 2*layers/3.
pub struct NetworkCifar {
    /// The configuration it was built from.
    pub config: EvalNetworkConfig,
    stem_conv: Conv,
    stem_bn: BatchNorm,
    /// The cells, input side first.
    pub cells: Vec<Cell>,
    /// The auxiliary classifier after cell 2*layers/3, when configured.
    pub auxiliary_head: Option<AuxiliaryHeadCifar>,
    classifier: Linear,
}

/// The reference's stem: 3C channels.
const STEM_MULTIPLIER: usize = 3;

impl NetworkCifar {
    /// Builds the network with PyTorch's default initialisation, drawn from `rng`.
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: EvalNetworkConfig) -> Result<NetworkCifar> {
        config.validate()?;
        let Architecture::Cells(genotype) = &config.architecture else {
            return Err(Error::Config(
                "NetworkCifar is built from a genotype; build a macro architecture with \
                 FixedMacroNetwork (EvalNetwork::new picks)"
                    .into(),
            ));
        };
        let c_stem = STEM_MULTIPLIER * config.channels;
        let stem_conv = Conv::new(gpu, rng, config.in_channels, c_stem, 3, Conv2d::new(1, 1, 1, 1))?;
        let stem_bn = BatchNorm::new(gpu, c_stem, true)?;
        let reductions = config.reduction_cells();
        let (mut c_prev_prev, mut c_prev, mut c_curr) = (c_stem, c_stem, config.channels);
        let mut reduction_prev = false;
        let mut cells = Vec::with_capacity(config.layers);
        let mut c_aux = 0;
        for i in 0..config.layers {
            let reduction = reductions.contains(&i);
            if reduction {
                c_curr *= 2;
            }
            let cell = Cell::new(
                gpu,
                rng,
                genotype,
                c_prev_prev,
                c_prev,
                c_curr,
                reduction,
                reduction_prev,
                config.cell_variant,
            )?;
            reduction_prev = reduction;
            (c_prev_prev, c_prev) = (c_prev, cell.multiplier() * c_curr);
            cells.push(cell);
            if i == config.auxiliary_cell() {
                c_aux = c_prev;
            }
        }
        let auxiliary_head =
            if config.auxiliary { Some(AuxiliaryHeadCifar::new(gpu, rng, c_aux, config.num_classes)?) } else { None };
        let bias = config.cell_variant == CellVariant::Darts;
        let classifier = Linear::new(gpu, rng, c_prev, config.num_classes, bias)?;
        Ok(NetworkCifar { config, stem_conv, stem_bn, cells, auxiliary_head, classifier })
    }

    /// x: [N, in_channels, H, W] -> (logits [N, classes], auxiliary logits [N, classes] in
    /// training with the head). `train` selects BN's batch statistics and turns drop path on
    /// (probability `drop_prob`, masks drawn from `rng`).
    pub fn forward(&self, x: &Tensor, train: bool, drop_prob: f32, rng: &mut Rng) -> Result<(Tensor, Option<Tensor>)> {
        let s = self.stem_bn.forward(&self.stem_conv.forward(x)?, train)?; // [N, 3C, H, W]
        let (mut s0, mut s1) = (s.clone(), s);
        let mut logits_aux = None;
        for (i, cell) in self.cells.iter().enumerate() {
            let out = cell.forward(&s0, &s1, train, drop_prob, rng)?;
            (s0, s1) = (s1, out);
            if i == self.config.auxiliary_cell() && train {
                if let Some(head) = &self.auxiliary_head {
                    logits_aux = Some(head.forward(&s1, train)?);
                }
            }
        }
        let [n, c] = [s1.shape()[0], s1.shape()[1]];
        if self.config.cell_variant == CellVariant::EnasMicro {
            s1 = elementwise::relu(&s1)?;
        }
        let features = pool::global_avg_pool(&s1)?.reshape(&[n, c])?; // [N, C_last]
        Ok((self.classifier.forward(&features)?, logits_aux))
    }

    /// Evaluation: BN running statistics, no drop path, no auxiliary head. x: [N, in, H, W] ->
    /// logits [N, classes].
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        let mut unused = Rng::new(0);
        Ok(self.forward(x, false, 0.0, &mut unused)?.0)
    }

    /// `utils.count_parameters_in_MB`: trainable values outside the auxiliary head, / 1e6.
    pub fn count_parameters_in_mb(&self) -> f64 {
        count_parameters_in_mb(self)
    }
}

impl Module for NetworkCifar {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.stem_conv.visit(&join(prefix, "stem.conv"), f);
        self.stem_bn.visit(&join(prefix, "stem.bn"), f);
        for (i, cell) in self.cells.iter().enumerate() {
            cell.visit(&join(prefix, &format!("cells.{i}")), f);
        }
        if let Some(head) = &self.auxiliary_head {
            head.visit(&join(prefix, "auxiliary_head"), f);
        }
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}

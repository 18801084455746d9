//! The evaluation network of a fixed genotype (quark0/darts `model.py`): `NetworkCIFAR`, its
//! `Cell` compiled from the genotype, and `AuxiliaryHeadCIFAR`. Unlike the search network every
//! edge holds one operation, every BN is affine, pools carry no BN, and in training each
//! non-identity operation's output goes through drop path. [`EvalNetwork`] is this network or
//! the ENAS macro one ([`FixedMacroNetwork`]), as the [`Architecture`] asks.

use serde::{Deserialize, Serialize};

use super::macro_model::{FixedMacroNetwork, MacroVariant};
use crate::enas::macro_space::pool_layers;
use crate::enas::Arch;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::nn::{join, BatchNorm, Conv, FactorizedReduce, Linear, Module, Preprocess, Primitive, ReluConvBn, Visit};
use crate::ops::{conv::Conv2d, drop_path::drop_path, elementwise, layout, linear, pool};
use crate::rng::Rng;
use crate::space::{Genotype, MacroArch, MicroArch, SearchFor, DARTS_PRIMITIVES, IDENTITY, NONE, REFERENCE_EXTRA_OPS};
use crate::tensor::Tensor;

/// What an evaluation network is built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Architecture {
    /// A DARTS genotype, or an ENAS micro architecture as its genotype: [`NetworkCifar`].
    Cells(Genotype),
    /// An ENAS macro architecture: [`FixedMacroNetwork`].
    Macro(MacroArch),
}

impl Architecture {
    /// Reads an ENAS architecture: the `architecture.json` that `wgpu-nas search enas` writes
    /// (a serialized [`crate::enas::search::Derived`]: its best architecture), a serialized
    /// [`Arch`] or [`MacroArch`], or the reference's fixed_arc text in the space `search_for`
    /// names ([`MacroArch::from_reference_text`], [`MicroArch::from_reference_text`]); without
    /// it the number of integers decides ([`SearchFor::from_count`]). A micro architecture
    /// retrains as cells (its genotype), a macro one as the macro network.
    pub fn from_enas_text(text: &str, search_for: Option<SearchFor>) -> Result<Architecture> {
        let arch = if text.trim_start().starts_with('{') {
            let value: serde_json::Value = serde_json::from_str(text)?;
            let value = value.pointer("/best/arch").cloned().unwrap_or(value);
            serde_json::from_value::<Arch>(value.clone())
                .or_else(|_| serde_json::from_value::<MacroArch>(value).map(Arch::Macro))
                .map_err(|_| {
                    Error::Config(
                        "not an ENAS architecture: expected the architecture.json of `search enas`, an Arch \
                         ({\"Micro\": ...} or {\"Macro\": ...}), a MacroArch ({\"layers\": [...]}) or the \
                         reference's fixed_arc integers"
                            .into(),
                    )
                })?
        } else {
            let count = text.split_whitespace().count();
            match search_for.or_else(|| SearchFor::from_count(count)) {
                Some(SearchFor::Macro) => Arch::Macro(MacroArch::from_reference_text(text)?),
                Some(SearchFor::Micro) => Arch::Micro(MicroArch::from_reference_text(text)?),
                None => {
                    return Err(Error::Config(format!(
                        "a fixed_arc has L(L+1)/2 integers for a macro architecture of L layers (300 for 24) or 8 \
                         per node for a micro one (40 for 5 nodes); {count} {}",
                        if count > 0 && count.is_multiple_of(8) {
                            "fits both: name the space (--search-for macro or micro)"
                        } else {
                            "fits neither"
                        }
                    )))
                }
            }
        };
        match arch {
            Arch::Micro(a) => {
                a.validate()?;
                Ok(Architecture::Cells(a.to_genotype()))
            }
            Arch::Macro(a) => {
                a.validate()?;
                Ok(Architecture::Macro(a))
            }
        }
    }
}

/// Shape of an evaluation network. `ModelConfig::darts` gives the paper's (C=36, 20 cells,
/// auxiliary head), `ModelConfig::enas_macro` the ENAS reference's macro retraining.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Channels of the input images (3 for CIFAR, 1 for Fashion-MNIST).
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Initial channels C (the macro network's `out_filters`).
    pub channels: usize,
    /// Number of cells, reduction cells at layers/3 and 2*layers/3; for a macro architecture
    /// its number of layers.
    pub layers: usize,
    /// The auxiliary classifier after cell 2*layers/3, or after the macro network's second
    /// pooling layer (training only).
    pub auxiliary: bool,
    /// The cells' genotype, or the ENAS macro architecture.
    pub architecture: Architecture,
    /// Which network a macro architecture builds: the reference's (`general_child.py`) or the
    /// one our search scores. Cells ignore it. A config saved before the field existed built
    /// the searched one, so that is what a missing field means.
    #[serde(default = "MacroVariant::before_the_field")]
    pub macro_variant: MacroVariant,
    /// How cells are built: DARTS's `model.py` or ENAS's `micro_child.py` (a macro
    /// architecture ignores it).
    #[serde(default)]
    pub cell_variant: CellVariant,
}

/// Which reference a cell network follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CellVariant {
    /// quark0/darts `model.py`: both inputs through a preprocessing conv (FactorizedReduce
    /// after a reduction cell), reduction cells at layers/3 and 2*layers/3, the auxiliary head
    /// after cell 2*layers/3, a classifier with bias.
    #[default]
    Darts,
    /// melodyguan/enas `micro_child.py` with `fixed_arc` (`_fixed_layer`, lines 403-517):
    /// `_maybe_calibrate_size` (lines 209-238) convs an input only where its size or channels
    /// differ from the cell's, then `layer_base` (lines 416-424) always convs the second input
    /// once more; `layers` counts the reference's `--child_num_layers` plus its two reduction
    /// cells, which sit at `d` and `2d + 1` with `d = (layers - 2) / 3` (line 110); the
    /// auxiliary head reads after the cell that follows the second (line 113); ReLU before
    /// the global pool and a classifier without bias (lines 331-338); the identity at stride 2
    /// a factorized reduction without a leading ReLU and without drop path (457-468).
    ///
    /// Still as DARTS: drop path's probability rises with the epoch alone (the reference's
    /// `_apply_drop_path`, 196-207, also scales it with the cell's depth); the auxiliary head's
    /// classifier has a bias (outside the parameter count). Not expressible in a [`Genotype`]:
    /// the reference also concatenates a cell input that no node reads (`_fixed_combine`,
    /// reduced first in a reduction cell); [`crate::space::MicroArch::to_genotype`]'s concat
    /// lists nodes only (the scripts' final architecture reads both inputs in both cells).
    EnasMicro,
}

impl ModelConfig {
    /// The paper's CIFAR-10 evaluation network: C=36, 20 cells, auxiliary head.
    pub fn darts(in_channels: usize, num_classes: usize, genotype: Genotype) -> Self {
        let architecture = Architecture::Cells(genotype);
        ModelConfig {
            in_channels,
            num_classes,
            channels: 36,
            layers: 20,
            auxiliary: true,
            architecture,
            macro_variant: MacroVariant::default(),
            cell_variant: CellVariant::Darts,
        }
    }

    /// The ENAS reference's macro retraining (`cifar10_macro_final.sh`): `out_filters` 96, one
    /// layer per layer of the architecture (24 there), no auxiliary head (`general_child.py`
    /// has none).
    pub fn enas_macro(in_channels: usize, num_classes: usize, arch: MacroArch) -> Self {
        let layers = arch.layers.len();
        ModelConfig {
            in_channels,
            num_classes,
            channels: 96,
            layers,
            auxiliary: false,
            architecture: Architecture::Macro(arch),
            macro_variant: MacroVariant::Reference,
            cell_variant: CellVariant::default(),
        }
    }

    /// The ENAS reference's micro retraining (`cifar10_micro_final.sh`): `out_filters` 36,
    /// `--child_num_layers=15` (17 cells with the two reduction cells), auxiliary head, cells as
    /// `micro_child.py` builds them.
    pub fn enas_micro(in_channels: usize, num_classes: usize, arch: &MicroArch) -> Self {
        ModelConfig {
            in_channels,
            num_classes,
            channels: 36,
            layers: 15 + 2,
            auxiliary: true,
            architecture: Architecture::Cells(arch.to_genotype()),
            macro_variant: MacroVariant::default(),
            cell_variant: CellVariant::EnasMicro,
        }
    }

    /// The cells that halve the resolution and double the channels.
    pub fn reduction_cells(&self) -> [usize; 2] {
        match self.cell_variant {
            CellVariant::Darts => [self.layers / 3, 2 * self.layers / 3],
            CellVariant::EnasMicro => {
                let d = self.layers.saturating_sub(2) / 3;
                [d, 2 * d + 1]
            }
        }
    }

    /// The cell after which the auxiliary head reads: the second reduction cell (DARTS), the
    /// cell after it (ENAS).
    pub fn auxiliary_cell(&self) -> usize {
        match self.cell_variant {
            CellVariant::Darts => self.reduction_cells()[1],
            CellVariant::EnasMicro => self.reduction_cells()[1] + 1,
        }
    }

    /// The operations a genotype may use here: every one of the reference's `OPS` but `none` (a
    /// retrained cell keeps only real operations; `sep_conv_7x7` and `conv_7x1_1x7` for the
    /// NASNet, AmoebaNet and PNASNet genotypes), and ENAS's `identity` (= `skip_connect`).
    pub fn known_ops() -> Vec<&'static str> {
        let reference = DARTS_PRIMITIVES.iter().chain(&REFERENCE_EXTRA_OPS).copied();
        reference.filter(|&p| p != NONE).chain([IDENTITY]).collect()
    }

    /// Checks the sizes (at least 1, C even), at least 3 cells for a genotype and its operations,
    /// and for a macro architecture its length and where the auxiliary head would read.
    pub fn validate(&self) -> Result<()> {
        if self.channels == 0 || self.in_channels == 0 || self.num_classes == 0 {
            return Err(Error::Config(format!(
                "the evaluation network needs at least one channel, input channel and class; got C={}, {} input \
                 channels, {} classes",
                self.channels, self.in_channels, self.num_classes
            )));
        }
        if !self.channels.is_multiple_of(2) {
            return Err(Error::Config(format!(
                "FactorizedReduce after a reduction cell (or a macro pooling layer) needs an even channel count, \
                 got C={}; use an even --init-channels",
                self.channels
            )));
        }
        match &self.architecture {
            Architecture::Cells(genotype) => {
                if self.layers < 3 {
                    return Err(Error::Config(format!(
                        "the evaluation network needs at least 3 cells (two of them reduce), got {}",
                        self.layers
                    )));
                }
                genotype.validate(&Self::known_ops())
            }
            Architecture::Macro(arch) => {
                arch.validate()?;
                if self.layers != arch.layers.len() {
                    return Err(Error::Config(format!(
                        "the macro architecture has {} layers but the network is configured for {}; set layers to \
                         the architecture's length",
                        arch.layers.len(),
                        self.layers
                    )));
                }
                if self.auxiliary && pool_layers(self.layers).is_empty() {
                    return Err(Error::Config(format!(
                        "the auxiliary head reads after the second pooling layer, and a macro network of {} layers \
                         has none (it needs at least 3); turn the auxiliary head off",
                        self.layers
                    )));
                }
                Ok(())
            }
        }
    }
}

/// `utils.count_parameters_in_MB`: trainable values outside the auxiliary head, / 1e6.
pub fn count_parameters_in_mb(net: &impl Module) -> f64 {
    let mut named = Vec::new();
    net.params("", &mut named);
    let n: usize = named.iter().filter(|(name, _)| !name.contains("auxiliary")).map(|(_, t)| t.numel()).sum();
    n as f64 / 1e6
}

/// The network a retraining run trains: cells ([`NetworkCifar`]) or an ENAS macro network
/// ([`FixedMacroNetwork`]).
pub enum EvalNetwork {
    /// A DARTS-style cell network built from a genotype.
    Cells(NetworkCifar),
    /// An ENAS macro network with a fixed architecture.
    Macro(FixedMacroNetwork),
}

impl EvalNetwork {
    /// Builds the network `config.architecture` asks for, its weights drawn from `rng`.
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: ModelConfig) -> Result<EvalNetwork> {
        Ok(match config.architecture {
            Architecture::Cells(_) => EvalNetwork::Cells(NetworkCifar::new(gpu, rng, config)?),
            Architecture::Macro(_) => EvalNetwork::Macro(FixedMacroNetwork::new(gpu, rng, config)?),
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ModelConfig {
        match self {
            EvalNetwork::Cells(net) => &net.config,
            EvalNetwork::Macro(net) => &net.config,
        }
    }

    /// x: [N, in_channels, H, W] -> (logits [N, classes], auxiliary logits [N, classes] in
    /// training with the head). Drop path (probability `drop_prob`, masks from `rng`) applies
    /// to cells only: the macro network has none.
    pub fn forward(&self, x: &Tensor, train: bool, drop_prob: f32, rng: &mut Rng) -> Result<(Tensor, Option<Tensor>)> {
        match self {
            EvalNetwork::Cells(net) => net.forward(x, train, drop_prob, rng),
            EvalNetwork::Macro(net) => net.forward(x, train),
        }
    }

    /// Evaluation: BN running statistics, no drop path, no auxiliary head. x: [N, in, H, W] ->
    /// logits [N, classes].
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            EvalNetwork::Cells(net) => net.predict(x),
            EvalNetwork::Macro(net) => Ok(net.forward(x, false)?.0),
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
        }
    }
}

/// The auxiliary head's average pool (kernel, stride), padding 0, for a `size` x `size`
/// feature map: always a 2x2 output, so that the 2x2 conv after it leaves 1x1 and the
/// classifier sees 768 features.
///
/// The reference hard-codes kernel 5, stride 3, which assumes 8x8 (32x32 CIFAR images after two
/// reductions). We keep that exactly for 8x8 and generalise it: stride t = max(1, floor(3s/8)),
/// kernel s - t, so windows start at 0 and t and the last one ends at the border: 28x28 images
/// (7x7 here) get kernel 5, stride 2; 16x16 (4x4) kernel 3, stride 1. With no padding
/// `count_include_pad` makes no difference.
pub fn auxiliary_pool(size: usize) -> Result<(usize, usize)> {
    if size < 2 {
        return Err(Error::Config(format!(
            "the auxiliary head needs a feature map of at least 2x2 after two reductions, got {size}x{size}; \
             use larger images or turn the auxiliary head off"
        )));
    }
    let stride = (3 * size / 8).max(1);
    Ok((size - stride, stride))
}

/// `AuxiliaryHeadCIFAR`: ReLU, avg pool to 2x2, conv 1x1 to 128, BN, ReLU, conv 2x2 to 768, BN,
/// ReLU, linear. Its parameters are named `auxiliary_head.*` and left out of the parameter count.
pub struct AuxiliaryHeadCifar {
    conv1: Conv,
    bn1: BatchNorm,
    conv2: Conv,
    bn2: BatchNorm,
    classifier: Linear,
}

impl AuxiliaryHeadCifar {
    /// The head on `c` channels at the auxiliary cell, classifying into `num_classes`.
    pub fn new(gpu: &Gpu, rng: &mut Rng, c: usize, num_classes: usize) -> Result<Self> {
        Ok(AuxiliaryHeadCifar {
            conv1: Conv::new(gpu, rng, c, 128, 1, Conv2d::new(1, 0, 1, 1))?,
            bn1: BatchNorm::new(gpu, 128, true)?,
            conv2: Conv::new(gpu, rng, 128, 768, 2, Conv2d::new(1, 0, 1, 1))?,
            bn2: BatchNorm::new(gpu, 768, true)?,
            classifier: Linear::new(gpu, rng, 768, num_classes, true)?,
        })
    }

    /// x: [N, C, s, s] -> logits [N, classes].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (h, w) = (x.shape()[2], x.shape()[3]);
        if h != w {
            return Err(Error::Config(format!(
                "the auxiliary head needs square feature maps, got {h}x{w}; turn it off for non-square images"
            )));
        }
        let (kernel, stride) = auxiliary_pool(h)?;
        let y = pool::avg_pool2d(&elementwise::relu(x)?, kernel, stride, 0)?; // [N, C, 2, 2]
        let y = elementwise::relu(&self.bn1.forward(&self.conv1.forward(&y)?, train)?)?; // [N, 128, 2, 2]
                                                                                         // A 2x2 conv on a 2x2 map has one output position: it is the product of the flattened
                                                                                         // map [N, 128*2*2] with the weight seen as [768, 128*2*2] (OIHW flattens as CHW does).
                                                                                         // The linear op's tiled matmul gives the same sums, and a weight gradient far cheaper
                                                                                         // than the conv kernel's per-filter reduction over a single position.
        let n = y.shape()[0];
        let w = self.conv2.weight.reshape(&[768, 128 * 4])?;
        let y = linear::linear(&y.reshape(&[n, 128 * 4])?, &w, None)?.reshape(&[n, 768, 1, 1])?;
        let y = elementwise::relu(&self.bn2.forward(&y, train)?)?; // [N, 768, 1, 1]
        self.classifier.forward(&y.reshape(&[n, 768])?)
    }
}

impl Module for AuxiliaryHeadCifar {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.bn1.visit(&join(prefix, "bn1"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        self.bn2.visit(&join(prefix, "bn2"), f);
        self.classifier.visit(&join(prefix, "classifier"), f);
    }
}

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
    pub config: ModelConfig,
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
    pub fn new(gpu: &Gpu, rng: &mut Rng, config: ModelConfig) -> Result<NetworkCifar> {
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

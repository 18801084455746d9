//! What a retraining run builds: the evaluation network's shape ([`EvalNetworkConfig`]) and
//! architecture ([`Architecture`]: a genotype's cells or an ENAS macro architecture), and which
//! reference each network follows ([`CellVariant`], [`MacroVariant`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::space::{
    pool_layers, Arch, Genotype, MacroArch, MicroArch, NasBench201Cell, SearchFor, DARTS_PRIMITIVES, IDENTITY, NONE,
    REFERENCE_EXTRA_OPS,
};

/// What an evaluation network is built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Architecture {
    /// A DARTS genotype, or an ENAS micro architecture as its genotype: [`NetworkCifar`](super::NetworkCifar).
    Cells(Genotype),
    /// An ENAS macro architecture: [`FixedMacroNetwork`](super::FixedMacroNetwork).
    Macro(MacroArch),
    /// A NAS-Bench-201 cell on the benchmark's skeleton: [`TinyNetwork`](super::TinyNetwork).
    NasBench201(NasBench201Cell),
}

impl Architecture {
    /// Reads an ENAS architecture: the `architecture.json` that `wgpu-nas search enas` writes
    /// (a serialized `Derived` of the ENAS search: its best architecture), a serialized
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

/// Shape of an evaluation network. `EvalNetworkConfig::darts` gives the paper's (C=36, 20 cells,
/// auxiliary head), `EvalNetworkConfig::enas_macro` the ENAS reference's macro retraining.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalNetworkConfig {
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

impl EvalNetworkConfig {
    /// The paper's CIFAR-10 evaluation network: C=36, 20 cells, auxiliary head.
    pub fn darts(in_channels: usize, num_classes: usize, genotype: Genotype) -> Self {
        let architecture = Architecture::Cells(genotype);
        EvalNetworkConfig {
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

    /// NAS-Bench-201's network for `cell`: C=16, N=5 cells per stage, no auxiliary head.
    pub fn nas_bench_201(in_channels: usize, num_classes: usize, cell: NasBench201Cell) -> Self {
        EvalNetworkConfig {
            in_channels,
            num_classes,
            channels: 16,
            layers: 5,
            auxiliary: false,
            architecture: Architecture::NasBench201(cell),
            macro_variant: MacroVariant::default(),
            cell_variant: CellVariant::default(),
        }
    }

    /// The ENAS reference's macro retraining (`cifar10_macro_final.sh`): `out_filters` 96, one
    /// layer per layer of the architecture (24 there), no auxiliary head (`general_child.py`
    /// has none).
    pub fn enas_macro(in_channels: usize, num_classes: usize, arch: MacroArch) -> Self {
        let layers = arch.layers.len();
        EvalNetworkConfig {
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
        EvalNetworkConfig {
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
        let nas_bench_201 = matches!(self.architecture, Architecture::NasBench201(_));
        if !nas_bench_201 && !self.channels.is_multiple_of(2) {
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
            Architecture::NasBench201(cell) => {
                if self.layers == 0 || self.auxiliary {
                    return Err(Error::Config(format!(
                        "a NAS-Bench-201 network needs at least 1 cell per stage and has no auxiliary head; got {} \
                         cells{}",
                        self.layers,
                        if self.auxiliary { " and the auxiliary head on" } else { "" }
                    )));
                }
                cell.validate(&crate::space::NAS_BENCH_201_OPS)
            }
        }
    }
}

/// Which macro network a fixed architecture builds (see [`FixedMacroNetwork`](super::FixedMacroNetwork)(super::FixedMacroNetwork)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MacroVariant {
    /// `general_child.py`'s fixed-architecture network.
    #[default]
    Reference,
    /// The network our ENAS search scores: separable ops, bit `j` = layer `j`.
    Searched,
}

impl MacroVariant {
    /// The network of a saved config without the field: the searched one, the only one then.
    pub fn before_the_field() -> MacroVariant {
        MacroVariant::Searched
    }
}

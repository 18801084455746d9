//! The DARTS candidate operations (quark0/darts `operations.py`) and the mixed operation of one
//! edge (`model_search.py`'s `MixedOp`), built from the engine's ops.

use std::cell::OnceCell;

use super::{join, BatchNorm, Conv, Module, Visit};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::ops::{batch_norm, conv::Conv2d, elementwise, elementwise::relu, layout, mixed_op, pool};
use crate::rng::Rng;
use crate::space::{NAS_BENCH_201_OPS, REFERENCE_EXTRA_OPS};
use crate::tensor::Tensor;

/// The DARTS primitives, in the reference order (the column order of the alpha matrices).
pub use crate::space::DARTS_PRIMITIVES as PRIMITIVES;

/// An op's input and its ReLU, computed at most once: every op of every edge that leaves a cell
/// state and starts with a ReLU (separable, dilated, factorized reduce) shares it, so a state's
/// ReLU is one kernel forward and one backward instead of one per op.
pub struct Input {
    x: Tensor,
    relu: OnceCell<Tensor>,
}

impl Input {
    /// Wraps `x`; its ReLU is not computed until asked for.
    pub fn new(x: &Tensor) -> Input {
        Input { x: x.clone(), relu: OnceCell::new() }
    }

    /// The input itself.
    pub fn x(&self) -> &Tensor {
        &self.x
    }

    /// relu(x), computed on the first call.
    pub fn relu(&self) -> Result<&Tensor> {
        if self.relu.get().is_none() {
            let _ = self.relu.set(relu(&self.x)?);
        }
        Ok(self.relu.get().expect("set above"))
    }
}

/// A cell state split for PC-DARTS's partial channel connections (Xu et al. 2020, section 3.1):
/// its first C/K channels go through an edge's mixed operation (their ReLU shared by every edge
/// that leaves the state, as [`Input`] shares it), the other C - C/K bypass it.
///
/// At K=1 the sampled part is the whole state and nothing bypasses: the slice, the
/// concatenation and the shuffle are identities and are skipped rather than copied, so that
/// PC-DARTS with K=1 adds its gradients in the same order as DARTS and gives its numbers bit
/// for bit (a copied state would sum the same terms in another association).
pub struct PartialInput {
    sampled: Input,
    bypass: Option<Tensor>,
    /// The bypass max-pooled 2x2 for the stride-2 edges, computed once for all of them.
    pooled: OnceCell<Tensor>,
    k: usize,
}

impl PartialInput {
    /// Splits x: [N, C, H, W] into channels [0, C/K) and [C/K, C); K must divide C.
    pub fn new(x: &Tensor, k: usize) -> Result<PartialInput> {
        let c = x.shape().get(1).copied().unwrap_or(0);
        if k == 0 || !c.is_multiple_of(k) {
            return Err(Error::Config(format!("partial channels: K={k} does not divide the {c} channels of a state")));
        }
        if k == 1 {
            return Ok(PartialInput { sampled: Input::new(x), bypass: None, pooled: OnceCell::new(), k });
        }
        Ok(PartialInput {
            sampled: Input::new(&layout::slice_channels(x, 0, c / k)?),
            bypass: Some(layout::slice_channels(x, c / k, c - c / k)?),
            pooled: OnceCell::new(),
            k,
        })
    }

    /// The bypassed channels as an edge of `stride` needs them: as they are at stride 1,
    /// max-pooled 2x2 at stride 2 (computed on the first call, shared by the state's edges).
    fn bypass(&self, stride: usize) -> Result<Option<&Tensor>> {
        let Some(bypass) = &self.bypass else { return Ok(None) };
        if stride == 1 {
            return Ok(Some(bypass));
        }
        if self.pooled.get().is_none() {
            let _ = self.pooled.set(pool::max_pool2d(bypass, 2, stride, 0)?);
        }
        Ok(self.pooled.get())
    }
}

/// ReLU -> conv -> BN (the cell preprocessing, and the stem's conv+BN without the ReLU).
pub struct ReluConvBn {
    /// The convolution, `c_in -> c_out`, k x k, no bias.
    pub conv: Conv,
    /// The BN after it, over `c_out` channels.
    pub bn: BatchNorm,
}

impl ReluConvBn {
    /// ReLU, a k x k conv `c_in -> c_out` with this stride and padding, BN (affine or not).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        rng: &mut Rng,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        affine: bool,
    ) -> Result<Self> {
        Ok(ReluConvBn {
            conv: Conv::new(gpu, rng, c_in, c_out, k, Conv2d::new(stride, padding, 1, 1))?,
            bn: BatchNorm::new(gpu, c_out, affine)?,
        })
    }

    /// x: [N, c_in, H, W] -> [N, c_out, H', W'].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_activated(&relu(x)?, train)
    }

    /// The block from r = relu(x) on (a mixed op's edges share one ReLU of their input).
    pub fn forward_activated(&self, r: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward(&self.conv.forward(r)?, train)
    }

    /// The block before its BN, from r = relu(x) on.
    fn body(&self, r: &Tensor) -> Result<Tensor> {
        self.conv.forward(r)
    }
}

impl Module for ReluConvBn {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.conv.visit(&join(prefix, "conv"), f);
        self.bn.visit(&join(prefix, "bn"), f);
    }
}

/// Halves the resolution with two stride-2 1x1 convs, the second on the input shifted by one
/// pixel, concatenated: ReLU -> [conv_1(x), conv_2(x[:, :, 1:, 1:])] -> BN. On odd sizes the
/// shifted input is zero-padded at the end (as AutoDL-Projects does), so both halves agree.
pub struct FactorizedReduce {
    /// The 1x1 conv on the even pixels, `c_in -> c_out/2`.
    pub conv_1: Conv,
    /// The 1x1 conv on the odd pixels (the input shifted by one), `c_in -> c_out/2`.
    pub conv_2: Conv,
    /// The BN over the concatenation, `c_out` channels.
    pub bn: BatchNorm,
}

impl FactorizedReduce {
    /// `c_in -> c_out` channels at half the resolution; `c_out` must be even.
    pub fn new(gpu: &Gpu, rng: &mut Rng, c_in: usize, c_out: usize, affine: bool) -> Result<Self> {
        if !c_out.is_multiple_of(2) {
            return Err(Error::Config(format!(
                "FactorizedReduce needs an even number of output channels, got {c_out}; use an even channel count"
            )));
        }
        Ok(FactorizedReduce {
            // Stride 2 through the window below, so that both halves run as pointwise convs.
            conv_1: Conv::new(gpu, rng, c_in, c_out / 2, 1, Conv2d::new(1, 0, 1, 1))?,
            conv_2: Conv::new(gpu, rng, c_in, c_out / 2, 1, Conv2d::new(1, 0, 1, 1))?,
            bn: BatchNorm::new(gpu, c_out, affine)?,
        })
    }

    /// x: [N, c_in, H, W] -> [N, c_out, ceil(H/2), ceil(W/2)].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_activated(&relu(x)?, train)
    }

    /// The block from r = relu(x) on.
    pub fn forward_activated(&self, r: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward(&self.body(r)?, train)
    }

    /// The block before its BN, from r = relu(x) on.
    fn body(&self, r: &Tensor) -> Result<Tensor> {
        // r: [N, C, H, W] -> a, b: [N, C_out/2, ceil(H/2), ceil(W/2)]
        let (h, w) = (r.shape()[2].div_ceil(2), r.shape()[3].div_ceil(2));
        // conv_1 with stride 2: pixels (2i, 2j); the shifted path: pixels (1 + 2i, 1 + 2j), zero
        // past the edge. Each then a 1x1 conv.
        let a = self.conv_1.forward(&layout::window(r, (0, 0), (h, w), 2)?)?;
        let b = self.conv_2.forward(&layout::window(r, (1, 1), (h, w), 2)?)?;
        layout::concat_channels(&[&a, &b])
    }
}

impl Module for FactorizedReduce {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.conv_1.visit(&join(prefix, "conv_1"), f);
        self.conv_2.visit(&join(prefix, "conv_2"), f);
        self.bn.visit(&join(prefix, "bn"), f);
    }
}

/// How a cell's first input is brought to the cell's channel count (and resolution): a 1x1
/// ReLUConvBN, or FactorizedReduce when the previous cell halved the resolution.
pub enum Preprocess {
    /// After a normal cell: ReLU, 1x1 conv, BN.
    ReluConvBn(ReluConvBn),
    /// After a reduction cell: halves the resolution as well.
    FactorizedReduce(FactorizedReduce),
}

impl Preprocess {
    /// x: [N, C_prev_prev, H, W] -> [N, C, H', W'] (H' = H/2 after a reduction cell).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Preprocess::ReluConvBn(p) => p.forward(x, train),
            Preprocess::FactorizedReduce(p) => p.forward(x, train),
        }
    }

    /// The block inside, as a [`Module`]: its parameters and buffers.
    pub fn module(&self) -> &dyn Module {
        match self {
            Preprocess::ReluConvBn(p) => p,
            Preprocess::FactorizedReduce(p) => p,
        }
    }
}

/// Depthwise-separable conv, twice: (ReLU, depthwise kxk, pointwise 1x1, BN) x 2, the stride on
/// the first depthwise only.
pub struct SepConv {
    /// First depthwise k x k conv (groups = C), with the block's stride.
    pub dw1: Conv,
    /// First pointwise 1x1 conv, C -> C.
    pub pw1: Conv,
    /// BN after the first pair.
    pub bn1: BatchNorm,
    /// Second depthwise k x k conv, stride 1.
    pub dw2: Conv,
    /// Second pointwise 1x1 conv, C -> C.
    pub pw2: Conv,
    /// BN after the second pair.
    pub bn2: BatchNorm,
}

impl SepConv {
    /// `sep_conv_kxk` on `c` channels: padding k/2, the stride on the first depthwise conv.
    pub fn new(gpu: &Gpu, rng: &mut Rng, c: usize, k: usize, stride: usize, affine: bool) -> Result<Self> {
        let pad = k / 2;
        Ok(SepConv {
            dw1: Conv::new(gpu, rng, c, c, k, Conv2d::new(stride, pad, 1, c))?,
            pw1: Conv::new(gpu, rng, c, c, 1, Conv2d::new(1, 0, 1, 1))?,
            bn1: BatchNorm::new(gpu, c, affine)?,
            dw2: Conv::new(gpu, rng, c, c, k, Conv2d::new(1, pad, 1, c))?,
            pw2: Conv::new(gpu, rng, c, c, 1, Conv2d::new(1, 0, 1, 1))?,
            bn2: BatchNorm::new(gpu, c, affine)?,
        })
    }

    /// x: [N, C, H, W] -> [N, C, H/stride, W/stride].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_activated(&relu(x)?, train)
    }

    /// The block from relu(x) on.
    pub fn forward_activated(&self, rx: &Tensor, train: bool) -> Result<Tensor> {
        self.bn2.forward(&self.body(rx, train)?, train)
    }

    /// The block before its last BN, from relu(x) on.
    fn body(&self, rx: &Tensor, train: bool) -> Result<Tensor> {
        let y = self.bn1.forward_relu(&self.pw1.forward(&self.dw1.forward(rx)?)?, train)?;
        self.pw2.forward(&self.dw2.forward(&y)?)
    }
}

impl Module for SepConv {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.dw1.visit(&join(prefix, "dw1"), f);
        self.pw1.visit(&join(prefix, "pw1"), f);
        self.bn1.visit(&join(prefix, "bn1"), f);
        self.dw2.visit(&join(prefix, "dw2"), f);
        self.pw2.visit(&join(prefix, "pw2"), f);
        self.bn2.visit(&join(prefix, "bn2"), f);
    }
}

/// Dilated separable conv: ReLU, depthwise kxk with dilation 2, pointwise 1x1, BN.
pub struct DilConv {
    /// Depthwise k x k conv with dilation 2 (groups = C), padding k - 1, with the block's stride.
    pub dw: Conv,
    /// Pointwise 1x1 conv, C -> C.
    pub pw: Conv,
    /// The BN at the end.
    pub bn: BatchNorm,
}

impl DilConv {
    /// `dil_conv_kxk` on `c` channels (same size at stride 1).
    pub fn new(gpu: &Gpu, rng: &mut Rng, c: usize, k: usize, stride: usize, affine: bool) -> Result<Self> {
        let (dilation, pad) = (2, k - 1); // pad 2 for 3x3, 4 for 5x5: same size at stride 1
        Ok(DilConv {
            dw: Conv::new(gpu, rng, c, c, k, Conv2d::new(stride, pad, dilation, c))?,
            pw: Conv::new(gpu, rng, c, c, 1, Conv2d::new(1, 0, 1, 1))?,
            bn: BatchNorm::new(gpu, c, affine)?,
        })
    }

    /// x: [N, C, H, W] -> [N, C, H/stride, W/stride].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_activated(&relu(x)?, train)
    }

    /// The block from relu(x) on.
    pub fn forward_activated(&self, rx: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward(&self.body(rx)?, train)
    }

    /// The block before its BN, from relu(x) on.
    fn body(&self, rx: &Tensor) -> Result<Tensor> {
        self.pw.forward(&self.dw.forward(rx)?)
    }
}

impl Module for DilConv {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.dw.visit(&join(prefix, "dw"), f);
        self.pw.visit(&join(prefix, "pw"), f);
        self.bn.visit(&join(prefix, "bn"), f);
    }
}

/// `conv_7x1_1x7`, NASNet's factorised 7x7 conv: ReLU, conv (1, 7) with stride (1, s) and padding
/// (0, 3), conv (7, 1) with stride (s, 1) and padding (3, 0), BN; full convs without bias.
pub struct FactorizedConv7x7 {
    /// Weight [C, C, 1, 7], stride (1, s), padding (0, 3).
    pub conv_1x7: Conv,
    /// Weight [C, C, 7, 1], stride (s, 1), padding (3, 0).
    pub conv_7x1: Conv,
    /// BN over the C output channels.
    pub bn: BatchNorm,
}

impl FactorizedConv7x7 {
    /// The block for C channels at stride `stride` (1, or 2 in a reduction cell).
    pub fn new(gpu: &Gpu, rng: &mut Rng, c: usize, stride: usize, affine: bool) -> Result<Self> {
        Ok(FactorizedConv7x7 {
            conv_1x7: Conv::rect(gpu, rng, c, c, [1, 7], Conv2d::per_axis([1, stride], [0, 3], 1, 1))?,
            conv_7x1: Conv::rect(gpu, rng, c, c, [7, 1], Conv2d::per_axis([stride, 1], [3, 0], 1, 1))?,
            bn: BatchNorm::new(gpu, c, affine)?,
        })
    }

    /// The block from relu(x) on. rx: [N, C, H, W] -> [N, C, H/s, W/s]
    pub fn forward_activated(&self, rx: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward(&self.body(rx)?, train)
    }

    /// The block before its BN, from relu(x) on.
    fn body(&self, rx: &Tensor) -> Result<Tensor> {
        self.conv_7x1.forward(&self.conv_1x7.forward(rx)?)
    }
}

impl Module for FactorizedConv7x7 {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        self.conv_1x7.visit(&join(prefix, "conv_1x7"), f);
        self.conv_7x1.visit(&join(prefix, "conv_7x1"), f);
        self.bn.visit(&join(prefix, "bn"), f);
    }
}

/// Which pooling a [`PoolBn`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// `max_pool_3x3`.
    Max,
    /// `avg_pool_3x3` (count_include_pad=False).
    Avg,
}

/// 3x3 pooling (pad 1, average with count_include_pad=False), followed inside a search edge by
/// an affine-free BN (`model_search.py` adds it so pools compete on the same scale).
pub struct PoolBn {
    /// Max or average.
    pub kind: PoolKind,
    /// 1, or 2 on an edge out of a reduction cell's inputs.
    pub stride: usize,
    /// The affine-free BN after the pool (search edges only).
    pub bn: Option<BatchNorm>,
}

impl PoolBn {
    /// x: [N, C, H, W] -> [N, C, H/stride, W/stride].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = self.pool(x)?;
        match &self.bn {
            Some(bn) => bn.forward(&y, train),
            None => Ok(y),
        }
    }

    fn pool(&self, x: &Tensor) -> Result<Tensor> {
        match self.kind {
            PoolKind::Max => pool::max_pool2d(x, 3, self.stride, 1),
            PoolKind::Avg => pool::avg_pool2d(x, 3, self.stride, 1),
        }
    }
}

/// One candidate operation of an edge.
pub enum Primitive {
    /// `none`: contributes nothing; a mixed op skips it, forward and backward.
    Zero,
    /// `max_pool_3x3` or `avg_pool_3x3` (with a BN in search).
    Pool(PoolBn),
    /// `skip_connect` at stride 1: the input itself.
    Identity,
    /// `skip_connect` at stride 2.
    FactorizedReduce(FactorizedReduce),
    /// `sep_conv_3x3`, `sep_conv_5x5` or `sep_conv_7x7`.
    SepConv(SepConv),
    /// `dil_conv_3x3` or `dil_conv_5x5`.
    DilConv(DilConv),
    /// `conv_7x1_1x7` (NASNet, AmoebaNet): a 1x7 then a 7x1 conv.
    FactorizedConv7x7(FactorizedConv7x7),
    /// NAS-Bench-201's `nor_conv_1x1` and `nor_conv_3x3`: ReLU, a full k x k conv (padding k/2),
    /// BN (AutoDL-Projects `ReLUConvBN`).
    ReluConvBn(ReluConvBn),
}

impl Primitive {
    /// Builds the primitive `name` for `c` channels and `stride`. `pool_bn` adds the BN after
    /// pools (search network); `affine` is the BN mode (false in search).
    pub fn new(
        gpu: &Gpu,
        rng: &mut Rng,
        name: &str,
        c: usize,
        stride: usize,
        affine: bool,
        pool_bn: bool,
    ) -> Result<Self> {
        let pool = |kind| -> Result<Primitive> {
            let bn = if pool_bn { Some(BatchNorm::new(gpu, c, false)?) } else { None };
            Ok(Primitive::Pool(PoolBn { kind, stride, bn }))
        };
        Ok(match name {
            "none" => Primitive::Zero,
            "max_pool_3x3" => pool(PoolKind::Max)?,
            "avg_pool_3x3" => pool(PoolKind::Avg)?,
            "skip_connect" if stride == 1 => Primitive::Identity,
            "skip_connect" => Primitive::FactorizedReduce(FactorizedReduce::new(gpu, rng, c, c, affine)?),
            "sep_conv_3x3" => Primitive::SepConv(SepConv::new(gpu, rng, c, 3, stride, affine)?),
            "sep_conv_5x5" => Primitive::SepConv(SepConv::new(gpu, rng, c, 5, stride, affine)?),
            "sep_conv_7x7" => Primitive::SepConv(SepConv::new(gpu, rng, c, 7, stride, affine)?),
            "dil_conv_3x3" => Primitive::DilConv(DilConv::new(gpu, rng, c, 3, stride, affine)?),
            "dil_conv_5x5" => Primitive::DilConv(DilConv::new(gpu, rng, c, 5, stride, affine)?),
            "conv_7x1_1x7" => Primitive::FactorizedConv7x7(FactorizedConv7x7::new(gpu, rng, c, stride, affine)?),
            "nor_conv_1x1" => Primitive::ReluConvBn(ReluConvBn::new(gpu, rng, c, c, 1, stride, 0, affine)?),
            "nor_conv_3x3" => Primitive::ReluConvBn(ReluConvBn::new(gpu, rng, c, c, 3, stride, 1, affine)?),
            other => {
                let known: Vec<&str> =
                    PRIMITIVES.iter().chain(&REFERENCE_EXTRA_OPS).chain(&NAS_BENCH_201_OPS[2..4]).copied().collect();
                return Err(Error::Config(format!("unknown operation {other:?}; known: {}", known.join(", "))));
            }
        })
    }

    /// The op's output; `None` for `none` (nothing to compute).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Option<Tensor>> {
        self.forward_shared(&Input::new(x), train)
    }

    /// [`Primitive::forward`] with the input's ReLU shared with the other ops that read it.
    pub fn forward_shared(&self, input: &Input, train: bool) -> Result<Option<Tensor>> {
        self.split(input, train)?
            .map(|(body, last)| match last {
                Some(bn) => bn.forward(&body, train),
                None => Ok(body),
            })
            .transpose()
    }

    /// `w.flat[idx] * op(x)`, `None` for `none`. An op that ends in an affine-free BN has that
    /// BN take the weight as its gain ([`BatchNorm::forward_scaled`]: no pass of its own, and
    /// none for its gradient); the others (`skip_connect` at stride 1, pools without a BN) are
    /// scaled by [`elementwise::scale`].
    pub fn forward_weighted(&self, input: &Input, train: bool, w: &Tensor, idx: usize) -> Result<Option<Tensor>> {
        self.split(input, train)?.map(|(body, last)| weighted(&body, last, train, w, idx)).transpose()
    }

    /// The op as (everything before its last BN, that BN): `skip_connect` and BN-less pools have
    /// none; `None` for `none`.
    fn split(&self, input: &Input, train: bool) -> Result<Option<(Tensor, Option<&BatchNorm>)>> {
        Ok(Some(match self {
            Primitive::Zero => return Ok(None),
            Primitive::Pool(p) => (p.pool(input.x())?, p.bn.as_ref()),
            Primitive::Identity => (input.x().clone(), None),
            Primitive::FactorizedReduce(f) => (f.body(input.relu()?)?, Some(&f.bn)),
            Primitive::SepConv(s) => (s.body(input.relu()?, train)?, Some(&s.bn2)),
            Primitive::DilConv(d) => (d.body(input.relu()?)?, Some(&d.bn)),
            Primitive::FactorizedConv7x7(f) => (f.body(input.relu()?)?, Some(&f.bn)),
            Primitive::ReluConvBn(r) => (r.body(input.relu()?)?, Some(&r.bn)),
        }))
    }
}

impl Module for Primitive {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        match self {
            Primitive::Zero | Primitive::Identity => {}
            Primitive::Pool(p) => {
                if let Some(bn) = &p.bn {
                    bn.visit(&join(prefix, "bn"), f)
                }
            }
            Primitive::FactorizedReduce(m) => m.visit(prefix, f),
            Primitive::SepConv(m) => m.visit(prefix, f),
            Primitive::DilConv(m) => m.visit(prefix, f),
            Primitive::FactorizedConv7x7(m) => m.visit(prefix, f),
            Primitive::ReluConvBn(m) => m.visit(prefix, f),
        }
    }
}

/// `w.flat[idx] * last(body)` (see [`Primitive::forward_weighted`]).
fn weighted(body: &Tensor, last: Option<&BatchNorm>, train: bool, w: &Tensor, idx: usize) -> Result<Tensor> {
    match last {
        Some(bn) => match bn.forward_scaled(body, train, w, idx)? {
            Some(y) => Ok(y),
            None => elementwise::scale(&bn.forward(body, train)?, w, idx),
        },
        None => elementwise::scale(body, w, idx),
    }
}

/// One edge of a search cell: every candidate op, mixed by the softmax of the edge's alphas.
pub struct MixedOp {
    /// (column in the alpha matrix, op name, op)
    pub ops: Vec<(usize, &'static str, Primitive)>,
    /// 1, or 2 on an edge out of a reduction cell's inputs.
    pub stride: usize,
}

impl MixedOp {
    /// `primitives` are the columns of the alpha matrix, in order; pools are followed by an
    /// affine-free BN, as in DARTS's search.
    pub fn new(gpu: &Gpu, rng: &mut Rng, primitives: &[&'static str], c: usize, stride: usize) -> Result<Self> {
        MixedOp::with_pool_bn(gpu, rng, primitives, c, stride, true)
    }

    /// [`MixedOp::new`], the BN after pools chosen: NAS-Bench-201's search cell has none.
    pub fn with_pool_bn(
        gpu: &Gpu,
        rng: &mut Rng,
        primitives: &[&'static str],
        c: usize,
        stride: usize,
        pool_bn: bool,
    ) -> Result<Self> {
        let ops = primitives
            .iter()
            .enumerate()
            .map(|(k, &name)| Ok((k, name, Primitive::new(gpu, rng, name, c, stride, false, pool_bn)?)))
            .collect::<Result<_>>()?;
        Ok(MixedOp { ops, stride })
    }

    /// sum_k weights[edge, k] * op_k(x), where `weights` = softmax(alphas) is [E, K]. The
    /// `none` op is skipped; an edge of only `none` gives zeros of the strided shape.
    pub fn forward(&self, x: &Tensor, weights: &Tensor, edge: usize, train: bool) -> Result<Tensor> {
        self.forward_shared(&Input::new(x), weights, edge, train)
    }

    /// [`MixedOp::forward`] with the input's ReLU shared with the other edges that read it:
    /// the sum of the ops' weighted outputs ([`Primitive::forward_weighted`]).
    /// In training, the ops' last affine-free BNs leave their outputs to the sum, which
    /// normalises as it reads ([`mixed_op::bn_sum`]: y never written, the same bits).
    pub fn forward_shared(&self, input: &Input, weights: &Tensor, edge: usize, train: bool) -> Result<Tensor> {
        let x = input.x();
        let k_total = *weights.shape().last().unwrap_or(&1);
        if train && self.ops.len() <= mixed_op::TERMS_PER_DISPATCH {
            return self.forward_fused(input, weights, edge, k_total);
        }
        let mut terms = Vec::with_capacity(self.ops.len());
        for (k, _, op) in &self.ops {
            if let Some(y) = op.forward_weighted(input, train, weights, edge * k_total + k)? {
                terms.push(y);
            }
        }
        self.sum(x, terms)
    }

    /// [`MixedOp::forward_shared`] in training, through [`mixed_op::bn_sum`] when a term ends in
    /// a BN whose planes it takes.
    fn forward_fused(&self, input: &Input, weights: &Tensor, edge: usize, k_total: usize) -> Result<Tensor> {
        let mut coef = None;
        let mut terms = Vec::with_capacity(self.ops.len());
        for (k, _, op) in &self.ops {
            let idx = edge * k_total + k;
            let Some((body, last)) = op.split(input, true)? else { continue };
            let slot = terms.len();
            let fused = match last {
                Some(bn) if batch_norm::coefficients_fit(body.shape()) => {
                    let coef = match &coef {
                        Some(coef) => coef,
                        None => coef.insert(mixed_op::sum_coefficients(body.gpu(), body.shape()[1])?),
                    };
                    bn.scaled_coefficients(&body, weights, idx, coef, slot)?
                }
                _ => None,
            };
            terms.push(match fused {
                Some(bn) => mixed_op::SumTerm::Bn(bn),
                None => mixed_op::SumTerm::Plain(weighted(&body, last, true, weights, idx)?),
            });
        }
        match coef {
            Some(coef) => mixed_op::bn_sum(&coef, terms),
            None => {
                // Without coefficients every term is plain.
                let plain = terms.into_iter().filter_map(|t| match t {
                    mixed_op::SumTerm::Plain(y) => Some(y),
                    mixed_op::SumTerm::Bn(..) => None,
                });
                self.sum(input.x(), plain.collect())
            }
        }
    }

    /// The sum of an edge's weighted terms; zeros of the strided shape for none.
    fn sum(&self, x: &Tensor, terms: Vec<Tensor>) -> Result<Tensor> {
        if terms.is_empty() {
            let s = x.shape();
            let (h, w) = (s[2].div_ceil(self.stride), s[3].div_ceil(self.stride));
            return Tensor::zeros(x.gpu(), &[s[0], s[1], h, w]);
        }
        elementwise::add_n(&terms.iter().collect::<Vec<_>>())
    }

    /// GDAS's edge: only op `k` runs, `h[edge, k] * op_k(x) + sum_{i != k} h[edge, i]`, where
    /// `h` `[E, K]` is the straight-through hard sample (see [`mixed_op::hard_select`]).
    pub fn forward_hard(&self, input: &Input, h: &Tensor, edge: usize, k: usize, train: bool) -> Result<Tensor> {
        let (_, name, op) =
            self.ops.get(k).ok_or_else(|| Error::shape("MixedOp::forward_hard", format!("no op {k} on this edge")))?;
        let y = op.forward_shared(input, train)?;
        let s = input.x().shape();
        // [N, C, H/stride, W/stride]; the shape `none` would have
        let shape = [s[0], s[1], s[2].div_ceil(self.stride), s[3].div_ceil(self.stride)];
        if let Some(y) = &y {
            if y.shape() != shape {
                return Err(Error::shape(
                    "MixedOp::forward_hard",
                    format!("{name} gave {:?}, want {shape:?}", y.shape()),
                ));
            }
        }
        mixed_op::hard_select(h, edge, k, y.as_ref(), &shape)
    }
}

impl MixedOp {
    /// The PC-DARTS edge (`model_search.py`'s `MixedOp` there): the mixed operation of this
    /// edge, built for C/K channels, on the sampled channels; the bypassed channels appended
    /// (max-pooled 2x2 on a stride-2 edge to the same size), then a channel shuffle with K
    /// groups. [N, C, H, W] -> [N, C, H/stride, W/stride]. With edge normalisation, `weights`
    /// already carry the edge's weight and `edge_weights[edge]` scales the bypassed channels, so
    /// the output is the edge's output times its weight.
    pub fn forward_partial(
        &self,
        input: &PartialInput,
        weights: &Tensor,
        edge: usize,
        edge_weights: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        let mixed = self.forward_shared(&input.sampled, weights, edge, train)?; // [N, C/K, H', W']
        let Some(bypass) = input.bypass(self.stride)? else { return Ok(mixed) };
        let mut bypass = bypass.clone();
        if let Some(w) = edge_weights {
            bypass = elementwise::scale(&bypass, w, edge)?;
        }
        layout::channel_shuffle(&layout::concat_channels(&[&mixed, &bypass])?, input.k)
    }
}

impl Module for MixedOp {
    fn visit(&self, prefix: &str, f: &mut Visit<'_>) {
        for (_, name, op) in &self.ops {
            op.visit(&join(prefix, name), f);
        }
    }
}

//! BatchNorm2d (`shaders/batch_norm.wgsl`): per-channel normalisation of x: [N, C, H, W] with
//! the batch statistics (training) or the running statistics (eval), then gamma and beta when
//! affine. DARTS searches with affine=False BNs on every edge; the final network uses affine.
//!
//! In training, on planes of a multiple of 4 values and channels of at most 4096 values (the
//! adapter's `Tuning`; none on SwiftShader), one dispatch of one workgroup per channel makes the
//! statistics and normalises (forward), or makes the sums and the input gradient (backward). Otherwise per-channel sums are per-plane
//! partials combined per channel in a fixed order (no atomics, no workgroup barriers), then the
//! element kernels run. The backward keeps one full-size tensor and the per-channel mean and
//! variance: xhat itself for an affine-free BN in training (its output, which a DARTS mixed op
//! keeps anyway, so that its input can be freed), x otherwise (xhat recomputed in the kernels).
//! A supernet holds hundreds of BNs, so keeping both would double their memory.

use bytemuck::{Pod, Zeroable};

use super::{dims, elementwise};
use crate::error::{Error, Result};
use crate::gpu::{grid_1d_of, Dispatch};
use crate::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    c: u32,
    hw: u32,
    total: u32,
    eps: f32,
    momentum: f32,
    k: u32,
    slot: u32,
}

const OP: &str = "batch_norm2d";
/// Vec4s per invocation of the four-at-a-time element kernels (`RUN` in the shader).
const RUN: u32 = 4;

/// What [`batch_norm2d`] returns: the output and the statistics it normalised with.
pub struct BatchNorm2dOutput {
    /// y: [N, C, H, W]
    pub y: Tensor,
    /// `[C]`: the batch mean (training) or a copy of the running mean used (eval).
    pub mean: Tensor,
    /// `[C]`: the biased batch variance (training) or a copy of the running variance used (eval).
    pub var: Tensor,
}

/// A launch of one entry point: the shape parameters and whether gamma and beta apply.
#[derive(Clone)]
struct Launch {
    params: Params,
    affine: bool,
    /// The backward kernels read xhat (saved output) rather than x.
    xhat: bool,
    /// forward_channel updates the running statistics.
    running: bool,
    /// One gain `gamma[k]` for every channel and no beta (with `affine`).
    scaled: bool,
    /// A ReLU after the normalisation, in the forward and backward kernels (affine-free).
    relu: bool,
    /// The forward writes its coefficients to row `params.slot` of a buffer instead of y.
    coef: bool,
    /// Most values per channel for the one-workgroup-per-channel kernels (the adapter's tuning).
    channel_max_values: u32,
}

impl Launch {
    fn dispatch(&self, entry: &'static str, buffers: &[&Tensor], workgroups: [u32; 3]) {
        let gpu = buffers[0].gpu();
        let bufs: Vec<_> = buffers.iter().map(|t| t.buf()).collect();
        gpu.dispatch(Dispatch {
            shader: "batch_norm",
            entry,
            constants: &[
                ("AFFINE", self.affine as u32 as f64),
                ("XHAT", self.xhat as u32 as f64),
                ("RUNNING", self.running as u32 as f64),
                ("SCALED", self.scaled as u32 as f64),
                ("RELU", self.relu as u32 as f64),
                ("COEF", self.coef as u32 as f64),
            ],
            params: bytemuck::bytes_of(&self.params),
            buffers: &bufs,
            workgroups,
            flops: 0,
        });
    }

    /// One invocation per plane (n, c), 64 to a workgroup, folded into y past 65535 groups.
    fn per_plane(&self) -> [u32; 3] {
        grid_1d_of((self.params.n * self.params.c) as usize, 64)
    }

    /// The element-wise kernels' grid: x over a plane's H*W values (64 to a workgroup), y (and
    /// z past 65535) over the N*C planes.
    fn per_element(&self) -> [u32; 3] {
        self.per_element_with(self.vec4())
    }

    /// [`Launch::per_element`] for a kernel that has no four-at-a-time twin.
    fn per_element_scalar(&self) -> [u32; 3] {
        self.per_element_with(false)
    }

    fn per_element_with(&self, vec4: bool) -> [u32; 3] {
        let planes = (self.params.n * self.params.c).max(1);
        let z = planes.div_ceil(65535);
        // Four-at-a-time kernels take RUN vec4s per invocation.
        let x = if vec4 { (self.params.hw / 4).div_ceil(RUN) } else { self.params.hw };
        [x.div_ceil(64).max(1), planes.div_ceil(z), z]
    }

    /// Whether the element kernels run four values at a time (planes of a multiple of 4).
    fn vec4(&self) -> bool {
        self.params.hw.is_multiple_of(4)
    }

    /// `entry`, or its four-at-a-time twin `entry4` where the planes allow it.
    fn element_entry(&self, scalar: &'static str, four: &'static str) -> &'static str {
        if self.vec4() {
            four
        } else {
            scalar
        }
    }

    fn channels(&self) -> usize {
        self.params.c as usize
    }

    /// Whether training runs the one-workgroup-per-channel kernels: planes of a multiple of 4
    /// values, channels of at most the adapter's `bn_channel_max_values`. On lavapipe (4096) a
    /// channel that fits in a core's L1 (16 KiB) is faster in one workgroup, three passes
    /// included, than in three dispatches: [32, 32, 8, 8] 0.30 / 0.31 ms (forward / backward)
    /// against 0.41 / 0.51, [64, 64, 4, 4] 0.36 / 0.37 against 1.03 / 1.21; a larger one streams
    /// from L2 three times and loses: [32, 16, 16, 16] 0.63 / 0.86 against 0.42 / 0.54 (minimum
    /// of 15 runs of 20 BNs).
    fn per_channel_kernels(&self) -> bool {
        self.vec4() && self.params.n * self.params.hw <= self.channel_max_values
    }

    /// One workgroup per channel.
    fn channel_groups(&self) -> [u32; 3] {
        [self.params.c, 1, 1]
    }

    /// This launch with `params.slot = slot`: the row of the coefficients (COEF) or, for
    /// backward_dx4, of dgamma.
    fn with_slot(&self, slot: u32) -> Launch {
        let mut launch = self.clone();
        launch.params.slot = slot;
        launch
    }
}

/// One invocation per channel, 64 to a workgroup.
fn per_channel(c: usize) -> [u32; 3] {
    [c.div_ceil(64).max(1) as u32, 1, 1]
}

fn check_channel_vector(name: &str, t: &Tensor, c: usize) -> Result<()> {
    if t.shape() != [c] {
        return Err(Error::shape(OP, format!("{name} {:?} should be [{c}], one value per channel", t.shape())));
    }
    if t.dtype() != DType::F32 {
        return Err(Error::shape(OP, format!("{name} must be f32, got {:?}", t.dtype())));
    }
    Ok(())
}

/// BatchNorm2d of x: [N, C, H, W].
///
/// Training: normalises with the batch mean and biased variance over (N, H, W), and, when
/// `running` is given, updates it in place on the GPU (not recorded on the tape):
/// `r = (1 - momentum) * r + momentum * stat`, with the unbiased variance for running_var.
/// Eval (`training == false`): normalises with `running` (required then).
/// `y = (x - mean) / sqrt(var + eps) * gamma + beta`; `weight` (gamma) and `bias` (beta) are
/// both given (affine) or both `None`. Gradients reach x (through the batch statistics in
/// training), gamma and beta; the returned `mean` and `var` are not differentiated.
pub fn batch_norm2d(
    x: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    momentum: f32,
    eps: f32,
) -> Result<BatchNorm2dOutput> {
    let gain = match (weight, bias) {
        (Some(g), Some(b)) => Gain::Affine(g, b),
        (None, None) => Gain::None,
        _ => return Err(Error::shape(OP, "give both weight and bias (affine) or neither")),
    };
    Ok(recorded(x, gain, training, forward(x, gain, running, training, momentum, eps, false, None)?))
}

/// Whether [`batch_norm2d_scaled_coefficients`] takes x of this shape: planes of a multiple of
/// 4 values.
pub fn coefficients_fit(shape: &[usize]) -> bool {
    matches!(shape, [_, _, h, w] if (h * w).is_multiple_of(4))
}

/// A scaled BN (see [`batch_norm2d_scaled`]) whose output is left to its consumer: a DARTS
/// edge's sum ([`super::mixed_op::bn_sum`]) reads x and the coefficients and never sees y.
pub struct ScaledTerm {
    saved: Saved,
    launch: Launch,
}

impl ScaledTerm {
    /// Gradients `[dx, ds]` from the gradient of the BN's output, as [`batch_norm2d_scaled`]'s
    /// backward.
    pub(crate) fn backward(&self, dy: &Tensor) -> Result<Vec<Option<Tensor>>> {
        self.saved.backward(&self.launch, dy, true)
    }

    /// The BN's input x (kept for the backward).
    pub(crate) fn x(&self) -> &Tensor {
        &self.saved.t
    }

    /// The gain buffer s (an input of the consumer's op).
    pub(crate) fn gain(&self) -> &Tensor {
        &self.saved.affine.as_ref().expect("a scaled BN keeps its gain").0
    }

    /// The index k of this BN's gain s[k], and its row of the coefficients.
    pub(crate) fn k_and_slot(&self) -> (u32, u32) {
        (self.launch.params.k, self.launch.params.slot)
    }

    /// Whether x takes a gradient.
    pub(crate) fn x_grad(&self) -> bool {
        self.saved.x_grad
    }

    /// Whether the backward reduces per plane (not one workgroup per channel): the sums that
    /// an edge's sum computes for all its BN terms at once (`mixed_op`'s `bn_sum_sums`), then
    /// [`ScaledTerm::dx_from_sums`].
    pub(crate) fn sums_per_plane(&self) -> bool {
        !self.launch.per_channel_kernels()
    }

    /// dx from the gradient `dy` of the BN's output and the per-channel sums over (N, H, W):
    /// `dgamma` row `row` of a `[rows, C]` buffer (sum dy * xhat), `dbeta` `[C]` (sum dy).
    pub(crate) fn dx_from_sums(&self, dy: &Tensor, dgamma: &Tensor, dbeta: &Tensor, row: u32) -> Result<Tensor> {
        let dx = Tensor::empty(dy.gpu(), self.saved.t.shape())?; // dx: [N, C, H, W]
        let bufs = [&self.saved.t, dy, &self.saved.mean, &self.saved.var, self.gain(), dgamma, dbeta, &dx];
        let launch = self.launch.with_slot(row);
        launch.dispatch("backward_dx4", &bufs, launch.per_element());
        Ok(dx)
    }
}

/// [`batch_norm2d_scaled`] in training without y: the batch statistics (and the running update)
/// as there, then row `slot` of `coef` `[terms, C, 4]` = `(a, b, mean, istd)` per channel with
/// `y = a x + b` (`a = s[k] / sqrt(var + eps)`, `b = -mean a`), the bits the BN's own kernels
/// would have applied, and `istd = 1 / sqrt(var + eps)`. Needs [`coefficients_fit`]. Records
/// nothing: the consumer records the op, whose backward is this BN's (`ScaledTerm::backward`,
/// or the consumer's own sums and `ScaledTerm::dx_from_sums`).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_scaled_coefficients(
    x: &Tensor,
    s: &Tensor,
    k: usize,
    running: Option<(&Tensor, &Tensor)>,
    momentum: f32,
    eps: f32,
    coef: &Tensor,
    slot: usize,
) -> Result<ScaledTerm> {
    if s.dtype() != DType::F32 || k >= s.numel() {
        return Err(Error::shape(OP, format!("gain index {k} out of an f32 tensor of shape {:?}", s.shape())));
    }
    if !coefficients_fit(x.shape()) {
        return Err(Error::shape(
            OP,
            format!("coefficients need planes of a multiple of 4 values, x is {:?}", x.shape()),
        ));
    }
    let c = x.shape()[1];
    if coef.shape().len() != 3 || coef.shape()[1..] != [c, 4] || slot >= coef.shape()[0] {
        return Err(Error::shape(OP, format!("row {slot} of coefficients {:?} for {c} channels", coef.shape())));
    }
    let f = forward(x, Gain::Scaled(s, k), running, true, momentum, eps, false, Some((coef, slot)))?;
    Ok(ScaledTerm { saved: f.saved, launch: f.launch })
}

/// `relu(batch_norm2d(x))` for an affine-free BN (inside a DARTS `sep_conv`: BN, ReLU, the next
/// depthwise conv). In training the BN's kernels apply the ReLU as they write y and gate dy by it
/// in the backward (pre-ReLU values recomputed from x, which is kept instead of xhat): one pass
/// each way instead of a separate ReLU's read and write of the tensor. In eval it is the BN,
/// then [`elementwise::relu`]. `mean` and `var` are the BN's.
pub fn batch_norm2d_relu(
    x: &Tensor,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    momentum: f32,
    eps: f32,
) -> Result<BatchNorm2dOutput> {
    let f = forward(x, Gain::None, running, training, momentum, eps, training, None)?;
    let out = recorded(x, Gain::None, training, f);
    if training {
        return Ok(out);
    }
    Ok(BatchNorm2dOutput { y: elementwise::relu(&out.y)?, ..out })
}

/// An affine-free [`batch_norm2d`] whose output is multiplied by the scalar `s.flat[k]`, read
/// on the GPU: `y = s[k] * xhat`. A DARTS edge's op that ends in a BN takes its softmax weight
/// this way, so that the edge sums its terms unweighted and no separate pass scales the terms'
/// gradients. Gradients reach x and s (`ds` is zero except `ds.flat[k] = <dy, xhat>`).
pub fn batch_norm2d_scaled(
    x: &Tensor,
    s: &Tensor,
    k: usize,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    momentum: f32,
    eps: f32,
) -> Result<BatchNorm2dOutput> {
    if s.dtype() != DType::F32 || k >= s.numel() {
        return Err(Error::shape(OP, format!("gain index {k} out of an f32 tensor of shape {:?}", s.shape())));
    }
    let gain = Gain::Scaled(s, k);
    Ok(recorded(x, gain, training, forward(x, gain, running, training, momentum, eps, false, None)?))
}

/// What multiplies xhat: 1, gamma and beta per channel, or one scalar on the GPU.
#[derive(Clone, Copy)]
enum Gain<'a> {
    None,
    Affine(&'a Tensor, &'a Tensor),
    Scaled(&'a Tensor, usize),
}

/// The BN's output from its forward kernels (see [`forward`]), its backward recorded on the tape.
fn recorded(x: &Tensor, gain: Gain<'_>, training: bool, f: Forward) -> BatchNorm2dOutput {
    let Forward { y, mean, var, saved, launch } = f;
    let mut inputs = vec![x];
    match gain {
        Gain::Affine(g, b) => inputs.extend([g, b]),
        Gain::Scaled(s, _) => inputs.push(s),
        Gain::None => {}
    }
    x.gpu().record(&inputs, &[&y], move |g| saved.backward(&launch, &g[0], training));
    BatchNorm2dOutput { y, mean, var }
}

/// The running statistics (handles to them), or two `[C]` spares that a kernel updating them
/// under RUNNING = false is given and does not touch.
fn running_or_spares(running: Option<(&Tensor, &Tensor)>, x: &Tensor, c: usize) -> Result<(Tensor, Tensor)> {
    match running {
        Some((rm, rv)) => Ok((rm.clone(), rv.clone())),
        None => Ok((Tensor::empty(x.gpu(), &[c])?, Tensor::empty(x.gpu(), &[c])?)),
    }
}

/// What the forward kernels made, and what the backward needs.
struct Forward {
    /// y, or the coefficients' buffer that was written instead.
    y: Tensor,
    mean: Tensor,
    var: Tensor,
    saved: Saved,
    /// The backward's launch.
    launch: Launch,
}

/// The forward kernels of [`batch_norm2d`] (with the gain, and a ReLU after the normalisation
/// when `relu`: training, affine-free); with `coef`, the coefficients to row `slot` of that
/// buffer instead of y (training, planes of a multiple of 4 values). Records nothing.
#[allow(clippy::too_many_arguments)]
fn forward(
    x: &Tensor,
    gain: Gain<'_>,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    momentum: f32,
    eps: f32,
    relu: bool,
    coef: Option<(&Tensor, usize)>,
) -> Result<Forward> {
    let [n, c, h, w] = dims::<4>(OP, x)?;
    if x.dtype() != DType::F32 {
        return Err(Error::shape(OP, format!("x must be f32, got {:?}", x.dtype())));
    }
    // (gamma, beta) buffers when affine or scaled (beta bound, not read, when scaled).
    let affine = match gain {
        Gain::Affine(g, b) => {
            check_channel_vector("weight", g, c)?;
            check_channel_vector("bias", b, c)?;
            Some((g, b))
        }
        Gain::Scaled(s, _) => Some((s, s)),
        Gain::None => None,
    };
    let (scaled, k) = match gain {
        Gain::Scaled(_, k) => (true, k),
        _ => (false, 0),
    };
    if let Some((rm, rv)) = running {
        check_channel_vector("running_mean", rm, c)?;
        check_channel_vector("running_var", rv, c)?;
    }
    if training && n * h * w < 2 {
        return Err(Error::shape(OP, format!("training needs more than one value per channel, x is {:?}", x.shape())));
    }
    if eps.is_nan() || eps < 0.0 {
        return Err(Error::shape(OP, format!("eps must be a non-negative number, got {eps}")));
    }
    let gpu = x.gpu();
    let launch = Launch {
        params: Params {
            n: n as u32,
            c: c as u32,
            hw: (h * w) as u32,
            total: x.numel() as u32,
            eps,
            momentum,
            k: k as u32,
            slot: coef.map_or(0, |(_, slot)| slot as u32),
        },
        affine: affine.is_some(),
        xhat: false,
        running: running.is_some(),
        scaled,
        relu,
        coef: coef.is_some(),
        channel_max_values: gpu.tuning().bn_channel_max_values,
    };
    // y: [N, C, H, W], or the coefficients' buffer in its place
    let y = match coef {
        Some((coef, _)) => coef.clone(),
        None => Tensor::empty(gpu, x.shape())?,
    };
    let one_workgroup_per_channel = training && launch.per_channel_kernels();

    let (mean, var) = if one_workgroup_per_channel {
        // Without running statistics the kernel is given spares it does not touch; without
        // affine it never reads gamma and beta, and x is bound there.
        let mean = Tensor::empty(gpu, &[c])?; // mean: [C]
        let var = Tensor::empty(gpu, &[c])?; // var: [C], biased
        let (rm, rv) = running_or_spares(running, x, c)?;
        let (gamma, beta) = affine.unwrap_or((x, x));
        launch.dispatch("forward_channel", &[x, &mean, &var, &rm, &rv, gamma, beta, &y], launch.channel_groups());
        (mean, var)
    } else if training {
        let mean = Tensor::empty(gpu, &[c])?; // mean: [C]
        let var = Tensor::empty(gpu, &[c])?; // var: [C], biased
        let partial = Tensor::empty(gpu, &[n, c, 2])?; // partial: [N, C, (mean, M2)]
        launch.dispatch(launch.element_entry("plane_stats", "plane_stats4"), &[x, &partial], launch.per_plane());
        match running {
            _ if coef.is_some() => {
                let (rm, rv) = running_or_spares(running, x, c)?;
                let gamma = affine.map_or(x, |(g, _)| g);
                launch.dispatch("combine_coefficients", &[&partial, &mean, &var, &rm, &rv, gamma, &y], per_channel(c))
            }
            Some((rm, rv)) => {
                launch.dispatch("combine_stats_running", &[&partial, &mean, &var, rm, rv], per_channel(c))
            }
            None => launch.dispatch("combine_stats", &[&partial, &mean, &var], per_channel(c)),
        }
        (mean, var)
    } else {
        let (rm, rv) = running.ok_or_else(|| Error::shape(OP, "eval mode needs the running statistics"))?;
        // Copies, so that the statistics saved for the backward and returned stay those used.
        (rm.duplicate()?, rv.duplicate()?)
    };
    if !one_workgroup_per_channel && coef.is_none() {
        // Without affine the kernel never reads gamma and beta; bind the mean there.
        let (gamma, beta) = affine.unwrap_or((&mean, &mean));
        launch.dispatch(
            launch.element_entry("normalize_forward", "normalize_forward4"),
            &[x, &mean, &var, gamma, beta, &y],
            launch.per_element(),
        );
    }

    // Affine-free in training, y is xhat: keep it instead of x, so that x can be freed (the next
    // op, a DARTS mixed op, keeps y anyway). Otherwise keep x and recompute xhat (a scaled BN's
    // y is not kept by the edge's sum; with a ReLU, y is not xhat).
    let keep_xhat = training && affine.is_none() && !relu;
    let saved = Saved {
        t: if keep_xhat { y.clone() } else { x.clone() },
        x_grad: x.requires_grad(),
        mean: mean.clone(),
        var: var.clone(),
        affine: affine.map(|(g, b)| (g.clone(), b.clone())),
    };
    let launch = Launch { xhat: keep_xhat, running: false, coef: false, ..launch };
    Ok(Forward { y, mean, var, saved, launch })
}

/// What the backward keeps: x (xhat recomputed) or xhat itself, and the per-channel statistics.
struct Saved {
    /// x, or xhat when `Launch::xhat`.
    t: Tensor,
    /// Whether x takes a gradient.
    x_grad: bool,
    mean: Tensor,
    var: Tensor,
    /// (gamma, beta) when affine; (s, s) when scaled.
    affine: Option<(Tensor, Tensor)>,
}

impl Saved {
    /// Gradients for (x, gamma, beta), for (x, s) when scaled, or for x alone.
    fn backward(&self, launch: &Launch, dy: &Tensor, training: bool) -> Result<Vec<Option<Tensor>>> {
        let grads = self.backward_affine(launch, dy, training)?;
        if !launch.scaled {
            return Ok(grads);
        }
        // [dx, dgamma (sum dy * xhat per channel), dbeta] -> [dx, ds]
        let mut grads = grads.into_iter();
        let dx = grads.next().flatten();
        let ds = match (grads.next().flatten(), &self.affine) {
            (Some(dgamma), Some((s, _))) => {
                let ds = Tensor::empty(dy.gpu(), s.shape())?;
                launch.dispatch("scale_grad", &[&dgamma, &ds], [1, 1, 1]);
                Some(ds)
            }
            _ => None,
        };
        Ok(vec![dx, ds])
    }

    fn backward_affine(&self, launch: &Launch, dy: &Tensor, training: bool) -> Result<Vec<Option<Tensor>>> {
        let gpu = dy.gpu();
        let c = launch.channels();
        let x_grad = self.x_grad;
        let gamma = self.affine.as_ref().map(|(g, _)| g);
        let gamma_grad = gamma.is_some_and(|g| g.requires_grad());
        // A scaled BN has no beta (its gain's buffer is bound there).
        let beta_grad = !launch.scaled && self.affine.as_ref().is_some_and(|(_, b)| b.requires_grad());
        if training && x_grad && launch.per_channel_kernels() {
            let dgamma = Tensor::empty(gpu, &[c])?; // dgamma: [C] = sum dy * xhat
            let dbeta = Tensor::empty(gpu, &[c])?; // dbeta: [C] = sum dy
            let dx = Tensor::empty(gpu, self.t.shape())?; // dx: [N, C, H, W]
                                                          // Without affine the kernel never reads gamma; bind the variance there.
            let gamma = gamma.unwrap_or(&self.var);
            launch.dispatch(
                "backward_channel",
                &[&self.t, dy, &self.mean, &self.var, gamma, &dgamma, &dbeta, &dx],
                launch.channel_groups(),
            );
            let mut grads = vec![Some(dx)];
            if self.affine.is_some() {
                grads.extend([gamma_grad.then_some(dgamma), beta_grad.then_some(dbeta)]);
            }
            return Ok(grads);
        }
        // Training's dx needs both per-channel sums; otherwise they are only gamma's and beta's.
        let sums = if gamma_grad || beta_grad || (x_grad && training) {
            let dgamma = Tensor::empty(gpu, &[c])?; // dgamma: [C] = sum dy * xhat
            let dbeta = Tensor::empty(gpu, &[c])?; // dbeta: [C] = sum dy
            let partial = Tensor::empty(gpu, &[launch.params.n as usize, c, 2])?; // partial: [N, C, 2]
            let entry = launch.element_entry("plane_sums", "plane_sums4");
            launch.dispatch(entry, &[&self.t, dy, &self.mean, &self.var, &partial], launch.per_plane());
            launch.dispatch("combine_sums", &[&partial, &dgamma, &dbeta], per_channel(c));
            Some((dgamma, dbeta))
        } else {
            None
        };
        let dx = if x_grad {
            let dx = Tensor::empty(gpu, self.t.shape())?; // dx: [N, C, H, W]
                                                          // Without affine the kernels never read gamma; bind the variance there.
            let gamma = gamma.unwrap_or(&self.var);
            match (&sums, training) {
                // Training always has the sums here (computed above when x needs a gradient).
                // backward_dx4 reads row params.slot of dgamma: here its only row.
                (Some((dgamma, dbeta)), true) => launch.with_slot(0).dispatch(
                    launch.element_entry("backward_dx", "backward_dx4"),
                    &[&self.t, dy, &self.mean, &self.var, gamma, dgamma, dbeta, &dx],
                    launch.per_element(),
                ),
                _ => launch.dispatch("backward_dx_eval", &[dy, &self.var, gamma, &dx], launch.per_element_scalar()),
            }
            Some(dx)
        } else {
            None
        };
        let mut grads = vec![dx];
        if self.affine.is_some() {
            let (dgamma, dbeta) = match sums {
                Some((g, b)) => (gamma_grad.then_some(g), beta_grad.then_some(b)),
                None => (None, None),
            };
            grads.extend([dgamma, dbeta]);
        }
        Ok(grads)
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/batch_norm.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "batch_norm", [n, c, hw, total, eps, momentum, k, slot]);
    }

    /// The shader's run length is this file's `RUN` (the grid is sized by it).
    #[test]
    fn run_matches_the_shader() {
        let src = crate::gpu::shaders::source("batch_norm");
        assert!(src.contains(&format!("const RUN: u32 = {RUN}u;")), "shaders/batch_norm.wgsl's RUN is not {RUN}");
    }
}

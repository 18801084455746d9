//! Optimizers (`shaders/optim.wgsl`): SGD with momentum and Nesterov, Adam with coupled L2
//! weight decay (torch.optim semantics), gradient clipping by global norm, and learning-rate
//! schedules.
//!
//! Everything runs in place on the GPU: no readback, nothing recorded on the tape. The
//! hyper-parameters and per-step scalars (learning rate, bias corrections) go into a small
//! `hyper` tensor of each optimizer, written in stream order at every step, so the uniform Params
//! (cached by content) hold only sizes, a warm step creates no GPU objects, and several steps can
//! be recorded into one submission.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::gpu::{grid_1d, Dispatch};
use crate::tensor::{DType, Tensor};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    max_norm: f32,
    offset: u32,
    count: u32,
    lens: [u32; GROUP],
}

/// Gradients one `sum_squares8` dispatch reads (8 bindings, with its output: 9 of 10).
const GROUP: usize = 8;

fn launch(entry: &'static str, constants: &[(&'static str, f64)], n: usize, max_norm: f32, bufs: &[&Tensor]) {
    let params = Params { n: n as u32, max_norm, offset: 0, count: 0, lens: [0; GROUP] };
    launch_with(entry, constants, &params, grid_1d(n), bufs);
}

fn launch_with(
    entry: &'static str,
    constants: &[(&'static str, f64)],
    params: &Params,
    wg: [u32; 3],
    bufs: &[&Tensor],
) {
    let gpu = bufs[0].gpu();
    let buffers: Vec<_> = bufs.iter().map(|t| t.buf()).collect();
    gpu.dispatch(Dispatch {
        shader: "optim",
        entry,
        constants,
        params: bytemuck::bytes_of(params),
        buffers: &buffers,
        workgroups: wg,
        flops: 0,
    });
}

/// Fails unless `params` and `grads` pair up: same count, same shapes, f32, distinct buffers.
fn check_pairs(op: &'static str, params: &[Tensor], grads: &[Tensor]) -> Result<()> {
    check_params(op, params)?;
    if params.len() != grads.len() {
        return Err(Error::shape(op, format!("{} parameters but {} gradients", params.len(), grads.len())));
    }
    for (i, (p, g)) in params.iter().zip(grads).enumerate() {
        if p.shape() != g.shape() {
            return Err(Error::shape(op, format!("parameter {i} is {:?} but its gradient {:?}", p.shape(), g.shape())));
        }
        if g.dtype() != DType::F32 {
            return Err(Error::shape(op, format!("the gradient of parameter {i} must be f32")));
        }
        if p.buf().id == g.buf().id {
            return Err(Error::shape(op, format!("parameter {i} and its gradient share one buffer")));
        }
    }
    Ok(())
}

/// Fails unless the optimizer state (`per` tensors for each parameter, in order) matches
/// `params`. Empty state is created on the step.
fn check_state(op: &'static str, params: &[Tensor], state: &[Tensor], per: usize) -> Result<()> {
    if state.is_empty() {
        return Ok(());
    }
    if state.len() != per * params.len() {
        return Err(Error::shape(
            op,
            format!("the optimizer holds state for {} parameters, the step got {}", state.len() / per, params.len()),
        ));
    }
    for (i, p) in params.iter().enumerate() {
        for s in &state[per * i..per * (i + 1)] {
            if s.shape() != p.shape() {
                return Err(Error::shape(
                    op,
                    format!("parameter {i} is {:?} but its optimizer state {:?}", p.shape(), s.shape()),
                ));
            }
        }
    }
    Ok(())
}

/// Zero-filled state (`per` tensors per parameter), as PyTorch creates it on the first step.
fn zero_state(params: &[Tensor], per: usize) -> Result<Vec<Tensor>> {
    let mut state = Vec::with_capacity(per * params.len());
    for p in params {
        for _ in 0..per {
            state.push(Tensor::zeros(p.gpu(), p.shape())?);
        }
    }
    Ok(state)
}

/// The first parameter, when `params` is a non-empty list of f32 tensors.
fn check_params<'a>(op: &'static str, params: &'a [Tensor]) -> Result<&'a Tensor> {
    let first = params.first().ok_or_else(|| Error::shape(op, "no parameters to optimize"))?;
    if params.iter().any(|p| p.dtype() != DType::F32) {
        return Err(Error::shape(op, "parameters must be f32"));
    }
    Ok(first)
}

/// Fails unless `tensors` can be optimizer state of `per` f32 tensors per parameter (the
/// shapes are checked against the parameters at the next step).
fn check_loaded_state(op: &'static str, tensors: &[Tensor], per: usize) -> Result<()> {
    if !tensors.len().is_multiple_of(per) {
        return Err(Error::shape(op, format!("{} state tensors, expected a multiple of {per}", tensors.len())));
    }
    if tensors.iter().any(|t| t.dtype() != DType::F32) {
        return Err(Error::shape(op, "optimizer state must be f32"));
    }
    Ok(())
}

/// Stochastic gradient descent as torch.optim.SGD with dampening 0: d = g + wd*p;
/// buf = momentum*buf + d; d = d + momentum*buf (Nesterov) or buf; p -= lr*d.
pub struct Sgd {
    /// Learning rate, applied at the next step.
    pub lr: f32,
    /// Momentum factor (0: plain SGD, no buffers).
    pub momentum: f32,
    /// L2 weight decay, added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum (ENAS's shared weights) instead of heavy-ball (DARTS).
    pub nesterov: bool,
    /// [lr, momentum, weight_decay], rewritten at every step.
    hyper: Tensor,
    /// One per parameter (none while momentum is 0).
    momentum_buffers: Vec<Tensor>,
    steps: u64,
}

impl Sgd {
    /// An optimizer for `params` (the tensors later steps update, in this order). Its state is
    /// made here, zero-filled, so that it takes no pooled buffers that the first step's
    /// temporaries will want again: the second step then creates no GPU objects.
    pub fn new(params: &[Tensor], lr: f32, momentum: f32, weight_decay: f32, nesterov: bool) -> Result<Sgd> {
        let first = check_params("sgd", params)?;
        let momentum_buffers = if momentum != 0.0 { zero_state(params, 1)? } else { Vec::new() };
        let hyper = Tensor::empty(first.gpu(), &[3])?;
        Ok(Sgd { lr, momentum, weight_decay, nesterov, hyper, momentum_buffers, steps: 0 })
    }

    /// Sets the learning rate of the next steps (a schedule calls it every epoch).
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    /// One update of every parameter with its gradient, in place on the GPU.
    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<()> {
        self.update(params, grads, None)
    }

    /// [`Sgd::step`] after clipping the gradients to `max_norm` by their global norm `norm`
    /// (from [`grad_norm`]), as `clip_grad_norm` then `step` would, the clip folded into the
    /// update kernel; the gradients themselves are left as they are.
    pub fn step_clipped(&mut self, params: &[Tensor], grads: &[Tensor], norm: &Tensor, max_norm: f32) -> Result<()> {
        if !(max_norm >= 0.0 && max_norm.is_finite()) {
            return Err(Error::Config(format!("gradient clipping needs a finite max_norm >= 0, got {max_norm}")));
        }
        self.update(params, grads, Some((norm, max_norm)))
    }

    fn update(&mut self, params: &[Tensor], grads: &[Tensor], clip: Option<(&Tensor, f32)>) -> Result<()> {
        if !(self.lr >= 0.0 && self.momentum >= 0.0 && self.weight_decay >= 0.0) {
            return Err(Error::Config(format!(
                "SGD needs lr, momentum and weight_decay >= 0 (got {}, {}, {})",
                self.lr, self.momentum, self.weight_decay
            )));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::Config("SGD with Nesterov momentum needs momentum > 0".into()));
        }
        check_pairs("sgd", params, grads)?;
        check_state("sgd", params, &self.momentum_buffers, 1)?;
        let with_momentum = self.momentum != 0.0;
        if with_momentum && self.momentum_buffers.is_empty() {
            self.momentum_buffers = zero_state(params, 1)?;
        }
        let hyper = &self.hyper;
        hyper.write(&[self.lr, self.momentum, self.weight_decay])?;
        let c = [("NESTEROV", self.nesterov as u32 as f64), ("CLIP", clip.is_some() as u32 as f64)];
        // Without clipping the kernel never reads the norm binding; bind `hyper` there.
        let (norm, max_norm) = clip.unwrap_or((hyper, 0.0));
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            // p, g: same shape, any
            if with_momentum {
                let bufs = [hyper, g, p, norm, &self.momentum_buffers[i]];
                launch("sgd_momentum", &c, p.numel(), max_norm, &bufs);
            } else {
                launch("sgd", &c, p.numel(), max_norm, &[hyper, g, p, norm]);
            }
        }
        self.steps += 1;
        Ok(())
    }

    /// The momentum buffers, one per parameter in the order of `step` (none while momentum is 0).
    pub fn state(&self) -> Vec<&Tensor> {
        self.momentum_buffers.iter().collect()
    }

    /// Steps taken (SGD's update does not depend on it; kept for checkpoints).
    pub fn step_count(&self) -> u64 {
        self.steps
    }

    /// Restores what [`Sgd::state`] and [`Sgd::step_count`] gave; checked against the
    /// parameters at the next step.
    pub fn load_state(&mut self, tensors: Vec<Tensor>, step: u64) -> Result<()> {
        check_loaded_state("sgd", &tensors, 1)?;
        self.momentum_buffers = tensors;
        self.steps = step;
        Ok(())
    }
}

/// Adam as torch.optim.Adam (L2 weight decay added to the gradient, not AdamW): d = g + wd*p;
/// m = b1*m + (1-b1)*d; v = b2*v + (1-b2)*d^2; p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
pub struct Adam {
    /// Learning rate, applied at the next step.
    pub lr: f32,
    /// Decay of the first moment m.
    pub beta1: f32,
    /// Decay of the second moment v.
    pub beta2: f32,
    /// Added to sqrt(v) in the denominator.
    pub eps: f32,
    /// L2 weight decay, added to the gradient.
    pub weight_decay: f32,
    /// [lr, beta1, beta2, eps, weight_decay, 1 - beta1^t, sqrt(1 - beta2^t)], rewritten at
    /// every step.
    hyper: Tensor,
    /// m_0, v_0, m_1, v_1, ... (first and second moments of each parameter).
    moments: Vec<Tensor>,
    steps: u64,
}

impl Adam {
    /// An optimizer for `params` (the tensors later steps update, in this order); its moments
    /// are made here, zero-filled (see [`Sgd::new`] for why).
    pub fn new(params: &[Tensor], lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32) -> Result<Adam> {
        let first = check_params("adam", params)?;
        let moments = zero_state(params, 2)?;
        let hyper = Tensor::empty(first.gpu(), &[7])?;
        Ok(Adam { lr, beta1, beta2, eps, weight_decay, hyper, moments, steps: 0 })
    }

    /// Sets the learning rate of the next steps.
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    /// One update of every parameter with its gradient, in place on the GPU.
    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor]) -> Result<()> {
        let betas_ok = (0.0..1.0).contains(&self.beta1) && (0.0..1.0).contains(&self.beta2);
        if !(betas_ok && self.lr >= 0.0 && self.eps >= 0.0 && self.weight_decay >= 0.0) {
            return Err(Error::Config(format!(
                "Adam needs betas in [0, 1) and lr, eps, weight_decay >= 0 (got betas {}, {}, lr {}, eps {}, wd {})",
                self.beta1, self.beta2, self.lr, self.eps, self.weight_decay
            )));
        }
        check_pairs("adam", params, grads)?;
        check_state("adam", params, &self.moments, 2)?;
        if self.moments.is_empty() {
            self.moments = zero_state(params, 2)?;
        }
        // Bias corrections in f64 on the CPU, rounded once to f32 (t = the step being taken).
        let t = (self.steps + 1) as f64;
        let bc1 = 1.0 - (self.beta1 as f64).powf(t);
        let bc2_sqrt = (1.0 - (self.beta2 as f64).powf(t)).sqrt();
        let values = [self.lr, self.beta1, self.beta2, self.eps, self.weight_decay, bc1 as f32, bc2_sqrt as f32];
        self.hyper.write(&values)?;
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            // p, g, m, v: same shape, any
            let (m, v) = (&self.moments[2 * i], &self.moments[2 * i + 1]);
            launch("adam", &[], p.numel(), 0.0, &[&self.hyper, g, p, m, v]);
        }
        self.steps += 1;
        Ok(())
    }

    /// The moments in a fixed order: m_0, v_0, m_1, v_1, ... for the parameters in the order of
    /// `step`.
    pub fn state(&self) -> Vec<&Tensor> {
        self.moments.iter().collect()
    }

    /// Steps taken: t of the bias corrections is `step_count() + 1` at the next step.
    pub fn step_count(&self) -> u64 {
        self.steps
    }

    /// Restores what [`Adam::state`] and [`Adam::step_count`] gave; checked against the
    /// parameters at the next step.
    pub fn load_state(&mut self, tensors: Vec<Tensor>, step: u64) -> Result<()> {
        check_loaded_state("adam", &tensors, 2)?;
        self.moments = tensors;
        self.steps = step;
        Ok(())
    }
}

/// Scales `grads` in place so that their global L2 norm is at most `max_norm`, as
/// torch.nn.utils.clip_grad_norm_: total = ||concat(grads)||_2, grads *= min(1, max_norm /
/// (total + 1e-6)). All on the GPU; returns the total norm before clipping, a GPU scalar of
/// shape [] (read it back later for metrics).
pub fn clip_grad_norm(grads: &[Tensor], max_norm: f32) -> Result<Tensor> {
    if !(max_norm >= 0.0 && max_norm.is_finite()) {
        return Err(Error::Config(format!("clip_grad_norm needs a finite max_norm >= 0, got {max_norm}")));
    }
    let norm = grad_norm(grads)?;
    for g in grads {
        launch("clip_scale", &[], g.numel(), max_norm, &[&norm, g]);
    }
    Ok(norm)
}

/// The global L2 norm of `grads` (as one tensor), as `clip_grad_norm` measures it: each
/// gradient's sum of squares in order, eight gradients per dispatch, then their sum's root.
pub fn grad_norm(grads: &[Tensor]) -> Result<Tensor> {
    let first = grads.first().ok_or_else(|| Error::shape("grad_norm", "no gradients"))?;
    if grads.iter().any(|g| g.dtype() != DType::F32) {
        return Err(Error::shape("grad_norm", "gradients must be f32"));
    }
    let gpu = first.gpu();
    let sums = Tensor::empty(gpu, &[grads.len()])?; // sums: [gradients]
    for (k, group) in grads.chunks(GROUP).enumerate() {
        let mut lens = [0u32; GROUP];
        for (l, g) in lens.iter_mut().zip(group) {
            *l = g.numel() as u32;
        }
        let params = Params { n: 0, max_norm: 0.0, offset: (k * GROUP) as u32, count: group.len() as u32, lens };
        // Slots past the group's end are bound to its first gradient and never read.
        let mut bufs = vec![&sums];
        bufs.extend((0..GROUP).map(|t| group.get(t).unwrap_or(&group[0])));
        launch_with("sum_squares8", &[], &params, [1, 1, 1], &bufs);
    }
    // norm: [], sqrt of the sum of the per-gradient sums
    let norm = Tensor::empty(gpu, &[])?;
    let params = Params { n: grads.len() as u32, max_norm: 0.0, offset: 0, count: 0, lens: [0; GROUP] };
    launch_with("finish_norm", &[], &params, [1, 1, 1], &[&sums, &norm]);
    Ok(norm)
}

/// A learning rate that can train: finite and above 0.
pub fn check_lr(what: &str, lr: f32) -> Result<()> {
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(Error::Config(format!("{what} must be a finite number above 0, got {lr}")));
    }
    Ok(())
}

/// A learning rate as a function of the (fractional) epoch or step `t`.
pub trait Schedule {
    /// The learning rate at `t`.
    fn lr(&self, t: f64) -> f32;
}

fn cosine(lr_max: f32, lr_min: f32, t_cur: f64, t_i: f64) -> f32 {
    let (hi, lo) = (lr_max as f64, lr_min as f64);
    (lo + (hi - lo) * (1.0 + (std::f64::consts::PI * t_cur / t_i).cos()) / 2.0) as f32
}

/// PyTorch's CosineAnnealingLR in closed form: lr_min + (lr_max - lr_min) * (1 + cos(pi*t/t_max)) / 2.
/// DARTS steps it per epoch from 0.025 to 0.001 over the search.
#[derive(Clone, Copy, Debug)]
pub struct CosineAnnealing {
    /// The learning rate at t = 0.
    pub lr_max: f32,
    /// The learning rate at t = t_max.
    pub lr_min: f32,
    /// Length of the schedule, in the caller's unit of t (DARTS: epochs).
    pub t_max: f64,
}

impl CosineAnnealing {
    /// The schedule from `lr_max` to `lr_min` over `t_max`; `t_max` must be positive.
    pub fn new(lr_max: f32, lr_min: f32, t_max: f64) -> Result<CosineAnnealing> {
        if t_max.is_nan() || t_max <= 0.0 {
            return Err(Error::Config(format!("cosine schedule needs t_max > 0, got {t_max}")));
        }
        Ok(CosineAnnealing { lr_max, lr_min, t_max })
    }
}

impl Schedule for CosineAnnealing {
    fn lr(&self, t: f64) -> f32 {
        cosine(self.lr_max, self.lr_min, t.max(0.0), self.t_max)
    }
}

/// SGDR (PyTorch's CosineAnnealingWarmRestarts): cosine from lr_max to lr_min over a period
/// of t0, restarting at lr_max; each period is t_mult times the previous one. ENAS uses it.
#[derive(Clone, Copy, Debug)]
pub struct CosineWarmRestarts {
    /// The learning rate at the start of every period.
    pub lr_max: f32,
    /// The learning rate each period ends at.
    pub lr_min: f32,
    /// Length of the first period, in the caller's unit of t (ENAS: epochs).
    pub t0: f64,
    /// Each period is this many times the one before (at least 1).
    pub t_mult: f64,
}

impl CosineWarmRestarts {
    /// The schedule; `t0` must be positive and `t_mult` at least 1.
    pub fn new(lr_max: f32, lr_min: f32, t0: f64, t_mult: f64) -> Result<CosineWarmRestarts> {
        if !(t0 > 0.0 && t_mult >= 1.0) {
            return Err(Error::Config(format!("warm restarts need t0 > 0 and t_mult >= 1, got {t0} and {t_mult}")));
        }
        Ok(CosineWarmRestarts { lr_max, lr_min, t0, t_mult })
    }

    /// (time since the last restart, length of the current period) at `t`.
    pub fn period(&self, t: f64) -> (f64, f64) {
        let t = t.max(0.0);
        if self.t_mult <= 1.0 {
            return (t.rem_euclid(self.t0), self.t0);
        }
        let r = self.t_mult;
        // Period n starts at t0 * (r^n - 1) / (r - 1); the log estimate can be off by one at a
        // restart, so step to the exact period.
        let start = |n: i32| self.t0 * (r.powi(n) - 1.0) / (r - 1.0);
        let mut n = ((t / self.t0 * (r - 1.0) + 1.0).ln() / r.ln()).floor().max(0.0) as i32;
        while start(n + 1) <= t {
            n += 1;
        }
        while n > 0 && start(n) > t {
            n -= 1;
        }
        (t - start(n), self.t0 * r.powi(n))
    }
}

impl Schedule for CosineWarmRestarts {
    fn lr(&self, t: f64) -> f32 {
        let (t_cur, t_i) = self.period(t);
        cosine(self.lr_max, self.lr_min, t_cur, t_i)
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/optim.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "optim", [n, max_norm, offset, count, lens]);
    }
}

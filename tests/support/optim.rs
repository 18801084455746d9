//! CPU reference of the optimizers, gradient clipping and schedules: plain f64 loops following
//! torch.optim's update rules step by step.
#![allow(dead_code)]

/// SGD hyper-parameters (dampening 0).
#[derive(Clone, Copy, Debug)]
pub struct SgdConfig {
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

/// One SGD step of one parameter. p, g: [n]; buf: None until the first step with momentum.
pub fn sgd_step(cfg: SgdConfig, lr: f64, p: &mut [f64], g: &[f64], buf: &mut Option<Vec<f64>>) {
    for i in 0..p.len() {
        let mut d = g[i] + cfg.weight_decay * p[i];
        if cfg.momentum != 0.0 {
            let b = buf.get_or_insert_with(|| vec![0.0; p.len()]);
            // torch: buf = d on the first step, m * buf + d afterwards (the same from zeros).
            b[i] = cfg.momentum * b[i] + d;
            d = if cfg.nesterov { d + cfg.momentum * b[i] } else { b[i] };
        }
        p[i] -= lr * d;
    }
}

/// Adam hyper-parameters (L2 weight decay added to the gradient, as torch.optim.Adam).
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// Adam step number `t` (from 1) of one parameter. p, g, m, v: [n].
pub fn adam_step(cfg: AdamConfig, lr: f64, t: u64, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    let bc1 = 1.0 - cfg.beta1.powi(t as i32);
    let bc2 = 1.0 - cfg.beta2.powi(t as i32);
    for i in 0..p.len() {
        let d = g[i] + cfg.weight_decay * p[i];
        m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * d;
        v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * d * d;
        p[i] -= lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + cfg.eps);
    }
}

/// torch.nn.utils.clip_grad_norm_: scales all grads in place, returns the norm before.
pub fn clip_grad_norm(grads: &mut [Vec<f64>], max_norm: f64) -> f64 {
    let total = grads.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
    let coef = (max_norm / (total + 1e-6)).min(1.0);
    for g in grads.iter_mut().flatten() {
        *g *= coef;
    }
    total
}

/// CosineAnnealingWarmRestarts stepped one epoch at a time, as PyTorch's recursive `step()`:
/// the learning rates of epochs 0..epochs.
pub fn warm_restarts_by_steps(lr_max: f64, lr_min: f64, t0: u64, t_mult: u64, epochs: usize) -> Vec<f64> {
    let (mut t_cur, mut t_i) = (0u64, t0);
    let mut lrs = Vec::with_capacity(epochs);
    for _ in 0..epochs {
        let c = (std::f64::consts::PI * t_cur as f64 / t_i as f64).cos();
        lrs.push(lr_min + (lr_max - lr_min) * (1.0 + c) / 2.0);
        t_cur += 1;
        if t_cur >= t_i {
            t_cur -= t_i;
            t_i *= t_mult;
        }
    }
    lrs
}

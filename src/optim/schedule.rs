//! Learning-rate schedules in closed form: cosine annealing and cosine with warm restarts.

use crate::error::{Error, Result};

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

//! Adam with coupled L2 weight decay, as torch.optim.Adam.

use super::{check_loaded_state, check_pairs, check_params, check_state, zero_state, Optimizer};
use crate::error::{Error, Result};
use crate::ops::optim as kernels;
use crate::tensor::Tensor;

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
    /// are made here, zero-filled (see [`Sgd::new`](super::Sgd::new) for why).
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
            kernels::adam_update(&self.hyper, p, g, m, v);
        }
        self.steps += 1;
        Ok(())
    }
}

impl Optimizer for Adam {
    /// The moments in a fixed order: m_0, v_0, m_1, v_1, ... for the parameters in the order of
    /// `step`.
    fn state(&self) -> Vec<&Tensor> {
        self.moments.iter().collect()
    }

    /// Steps taken: t of the bias corrections is `step_count() + 1` at the next step.
    fn step_count(&self) -> u64 {
        self.steps
    }

    fn load_state(&mut self, tensors: Vec<Tensor>, step: u64) -> Result<()> {
        check_loaded_state("adam", &tensors, 2)?;
        self.moments = tensors;
        self.steps = step;
        Ok(())
    }
}

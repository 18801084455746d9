//! The architect (quark0/darts `architect.py`): updates the alphas with Adam on the validation
//! loss, either first order (the gradient of L_val(w, alpha)) or second order (the gradient of
//! the unrolled L_val(w - eta * dw L_train(w, alpha), alpha), with the Hessian-vector product
//! taken by central finite differences around the original weights).
//!
//! Everything runs on the GPU: the unrolled weights are written in place over the network's own
//! weights (a backup restores them exactly), and the radius R = r/||v|| never leaves the GPU.
//! Each pass asks for the gradients it needs ([`Gpu::recording_for`] and [`Gpu::grad`]): the
//! first-order step takes no weight gradients, the Hessian-vector product's passes none either.
//!
//! [`Gpu::recording_for`]: crate::gpu::Gpu::recording_for
//! [`Gpu::grad`]: crate::gpu::Gpu::grad

use serde::{Deserialize, Serialize};

use super::model::Network;
use crate::error::Result;
use crate::ops::{architect as kernels, softmax};
use crate::optim;
use crate::tensor::Tensor;

/// How the alpha gradient is taken (DARTS paper, section 2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// The gradient of L_val(w, alpha) at the current weights (the paper's xi = 0).
    First,
    /// The gradient of L_val at the weights after one virtual SGD step, with the Hessian-vector
    /// product taken by central finite differences.
    Second,
}

/// The architect's settings; the defaults are quark0/darts' (first order, Adam lr 3e-4, betas
/// 0.5/0.999, weight decay 1e-3, R = 0.01/||v||).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchitectConfig {
    /// First or second order alpha gradient.
    pub order: Order,
    /// Adam's learning rate for the alphas (3e-4).
    pub lr: f32,
    /// Adam's beta1 (0.5).
    pub beta1: f32,
    /// Adam's beta2 (0.999).
    pub beta2: f32,
    /// L2 weight decay on the alphas, added to their gradient (1e-3).
    pub weight_decay: f32,
    /// The Hessian-vector product's radius numerator: R = hvp_radius / ||v||.
    pub hvp_radius: f32,
}

impl Default for ArchitectConfig {
    fn default() -> Self {
        ArchitectConfig {
            order: Order::First,
            lr: 3e-4,
            beta1: 0.5,
            beta2: 0.999,
            weight_decay: 1e-3,
            hvp_radius: 0.01,
        }
    }
}

/// A labelled batch on the GPU: images [N, C, H, W], labels u32 `[N]`.
pub type Batch<'a> = (&'a Tensor, &'a Tensor);

/// What the weights' optimizer does at this step, which the unrolled model imitates.
pub struct WeightStep<'a> {
    /// The current learning rate eta.
    pub lr: f32,
    /// The weights' SGD momentum (0.9 in search).
    pub momentum: f32,
    /// The weights' L2 weight decay (3e-4 in search).
    pub weight_decay: f32,
    /// The optimizer's momentum buffers (empty before its first step or without momentum).
    pub momentum_buffers: Vec<&'a Tensor>,
}

/// Updates the alphas (quark0/darts `Architect`): takes the first or second order alpha gradient
/// on a validation batch and applies Adam to [alphas_normal, alphas_reduce] (and PC-DARTS's
/// [betas_normal, betas_reduce], [`Network::arch_parameters`]).
pub struct Architect {
    /// The settings it was built with.
    pub config: ArchitectConfig,
    /// Adam over the network's architecture parameters.
    pub optimizer: optim::Adam,
    /// [eta, momentum, wd, r]
    hyper: Tensor,
    /// ||v||, R, -2R, -eta/(2R), eta/(2R)
    scalars: Tensor,
    backup: Vec<Tensor>,
}

/// Cross-entropy of the network on a batch (BN in training mode, as in search).
pub fn loss(net: &Network, batch: Batch<'_>) -> Result<Tensor> {
    softmax::cross_entropy(&net.forward(batch.0, true)?, batch.1)
}

/// The validation loss an architecture step differentiates, and the accuracy of the same
/// logits (GPU scalars, read back with the other metrics).
pub struct ValScore {
    /// Mean cross-entropy over the batch, a GPU scalar (shape `[]`).
    pub loss: Tensor,
    /// Fraction of the batch classified correctly, in [0, 1], a GPU scalar (shape `[]`).
    pub acc: Tensor,
}

/// The network's validation loss and accuracy on a batch (BN in training mode, as in search).
pub fn val_score(net: &Network, batch: Batch<'_>) -> Result<ValScore> {
    let logits = net.forward(batch.0, true)?;
    Ok(ValScore { loss: softmax::cross_entropy(&logits, batch.1)?, acc: softmax::accuracy(&logits, batch.1)? })
}

impl Architect {
    /// Builds the architect for `net`: Adam over its alphas and, for second order, one backup
    /// buffer per weight for the unrolled step.
    pub fn new(net: &Network, config: ArchitectConfig) -> Result<Architect> {
        let gpu = net.alphas_normal.gpu();
        let optimizer =
            optim::Adam::new(&net.arch_parameters(), config.lr, config.beta1, config.beta2, 1e-8, config.weight_decay)?;
        let backup = if config.order == Order::Second {
            net.weights().iter().map(|w| Tensor::zeros(gpu, w.shape())).collect::<Result<_>>()?
        } else {
            vec![]
        };
        Ok(Architect {
            optimizer,
            hyper: Tensor::zeros(gpu, &[4])?,
            scalars: Tensor::zeros(gpu, &[5])?,
            backup,
            config,
        })
    }

    /// One architecture step: the alpha gradient, then Adam on the alphas. Returns the
    /// validation loss and accuracy (GPU scalars) of the alphas before the step.
    pub fn step(&mut self, net: &Network, train: Batch<'_>, valid: Batch<'_>, w: &WeightStep<'_>) -> Result<ValScore> {
        let (grads, val) = self.alpha_gradient(net, train, valid, w)?;
        self.optimizer.step(&net.arch_parameters(), &grads)?;
        Ok(val)
    }

    /// d L_val / d alpha (first order) or the unrolled gradient (second order), for
    /// [`Network::arch_parameters`] in their order, and the validation score at the current weights (first
    /// order) or at the unrolled weights (second order).
    pub fn alpha_gradient(
        &mut self,
        net: &Network,
        train: Batch<'_>,
        valid: Batch<'_>,
        w: &WeightStep<'_>,
    ) -> Result<(Vec<Tensor>, ValScore)> {
        match self.config.order {
            Order::First => first_order(net, valid),
            Order::Second => self.unrolled(net, train, valid, w),
        }
    }

    /// The second-order gradient (DARTS eq. 7-8): with w' = w - eta * dw L_train(w, alpha),
    /// dalpha L_val(w', alpha) - eta * hvp, where hvp approximates
    /// d2 alpha,w L_train(w, alpha) . dw' L_val(w', alpha) by central differences
    /// ([`Architect::hessian_vector_product`]). The validation score is at w'.
    fn unrolled(
        &mut self,
        net: &Network,
        train: Batch<'_>,
        valid: Batch<'_>,
        step: &WeightStep<'_>,
    ) -> Result<(Vec<Tensor>, ValScore)> {
        let gpu = net.alphas_normal.gpu().clone();
        let weights = net.weights();
        let alphas = net.arch_parameters();
        let momentum = if step.momentum_buffers.len() == weights.len() { step.momentum } else { 0.0 };
        self.hyper.write(&[step.lr, momentum, step.weight_decay, self.config.hvp_radius])?;

        // w' = w - eta * (momentum * buf + dw L_train(w, alpha) + wd * w), in place.
        let g_train = gpu.grad(&gpu.recording_for(&weights, || loss(net, train))?, &weights)?;
        for (w, b) in weights.iter().zip(&self.backup) {
            b.copy_from(w)?;
        }
        let bufs = if momentum != 0.0 { Some(step.momentum_buffers.as_slice()) } else { None };
        kernels::virtual_step_(&weights, &g_train, bufs, &self.hyper)?;
        drop(g_train);

        // dalpha = d_alpha L_val(w', alpha); v = d_w' L_val(w', alpha).
        let val = val_score(net, valid)?;
        let mut g = gpu.grad(&val.loss, &[alphas.as_slice(), weights.as_slice()].concat())?;
        let v = g.split_off(alphas.len());
        let dalpha = g;
        for (w, b) in weights.iter().zip(&self.backup) {
            w.copy_from(b)?;
        }

        // g = dalpha - eta * hvp
        let (plus, minus) = self.hessian_vector_product(net, train, &v)?;
        kernels::shift_(&dalpha, &plus, &self.scalars, 3)?;
        kernels::shift_(&dalpha, &minus, &self.scalars, 4)?;
        Ok((dalpha, val))
    }

    /// The finite-difference Hessian-vector product of DARTS eq. 8 around the weights w (restored
    /// afterwards): with R = r / ||v||, the two alpha gradients d_alpha L_train(w + Rv) and
    /// d_alpha L_train(w - Rv). Their difference over 2R is the product; the scalars it leaves
    /// (-eta/2R, eta/2R at slots 3 and 4) scale them into the gradient.
    fn hessian_vector_product(
        &mut self,
        net: &Network,
        train: Batch<'_>,
        v: &[Tensor],
    ) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
        let gpu = net.alphas_normal.gpu().clone();
        let weights = net.weights();
        let alphas = net.arch_parameters();
        optim::grad_norm(v)?.copy_into(&self.scalars, 0)?;
        kernels::hvp_scalars_(&self.scalars, &self.hyper)?;
        let side = |k: usize| -> Result<Vec<Tensor>> {
            kernels::shift_(&weights, v, &self.scalars, k)?;
            gpu.grad(&gpu.recording_for(&alphas, || loss(net, train))?, &alphas)
        };
        let plus = side(1); // w + Rv
        let minus = plus.and_then(|p| side(2).map(|m| (p, m))); // w + Rv - 2Rv = w - Rv
        for (w, b) in weights.iter().zip(&self.backup) {
            w.copy_from(b)?;
        }
        minus
    }
}

fn first_order(net: &Network, valid: Batch<'_>) -> Result<(Vec<Tensor>, ValScore)> {
    let gpu = net.alphas_normal.gpu();
    let alphas = net.arch_parameters();
    let val = gpu.recording_for(&alphas, || val_score(net, valid))?;
    Ok((gpu.grad(&val.loss, &alphas)?, val))
}

//! Collapse diagnostics of a DARTS search (Zela et al., "Understanding and Robustifying
//! Differentiable Architecture Search", ICLR 2020): a search that collapses fills its cells
//! with parameter-free operations, its edges' softmaxes grow sure of themselves, and the
//! dominant eigenvalue of the validation loss's Hessian with respect to the alphas grows.
//!
//! The eigenvalue comes from power iteration on Hessian-vector products taken by central
//! differences of the alpha gradient: H v ~ (g(alpha + eps v) - g(alpha - eps v)) / (2 eps), with
//! g(alpha) = d L_val(w, alpha) / d alpha on one validation batch (BN with batch statistics, as
//! the architecture step sees it). The network is left exactly as it was: alphas, weights and
//! BN running statistics.

use serde::{Deserialize, Serialize};

use super::model::Network;
use crate::error::{Error, Result};
use crate::nn::Module;
use crate::ops::softmax;
use crate::rng::Rng;
use crate::space::{CellGenotype, Genotype};
use crate::tensor::{read_all, Tensor};

/// DARTS-ES (Zela et al. 2020, section 4.3): stop the search once the dominant Hessian
/// eigenvalue, averaged over the last `window` epochs, exceeds `ratio` times its average over
/// the `window` epochs before (their criterion: the earlier mean under 0.75 of the later, i.e.
/// a ratio of 1/0.75 = 1.33), and keep the genotype derived `window` epochs before the stop.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStop {
    /// Epochs averaged on each side (5 in the paper).
    pub window: usize,
    /// Growth of the windowed mean that stops the search (greater than 1).
    pub ratio: f32,
}

impl EarlyStop {
    /// RobustDARTS' setting: windows of 5 epochs, ratio 1/0.75.
    pub fn robust_darts() -> EarlyStop {
        EarlyStop { window: 5, ratio: 1.0 / 0.75 }
    }

    /// A window of at least one epoch and a finite ratio above 1.
    pub fn validate(&self) -> Result<()> {
        if self.window == 0 || !(self.ratio > 1.0 && self.ratio.is_finite()) {
            return Err(Error::Config(format!(
                "early stopping needs a window of at least 1 epoch and a ratio above 1 (got window {}, ratio {}); \
                 RobustDARTS uses 5 and 1.33",
                self.window, self.ratio
            )));
        }
        Ok(())
    }

    /// Whether the eigenvalues so far, one per epoch, call for a stop now.
    pub fn triggered(&self, eigenvalues: &[f32]) -> bool {
        let (k, n) = (self.window, eigenvalues.len());
        if n < 2 * k {
            return false;
        }
        let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
        let (before, now) = (mean(&eigenvalues[n - 2 * k..n - k]), mean(&eigenvalues[n - k..]));
        before > 0.0 && now > self.ratio * before
    }
}

/// The operations without parameters: a cell made of them has collapsed.
pub const PARAMETER_FREE: [&str; 4] = ["none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"];

/// One epoch's collapse diagnostics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Collapse {
    /// Parameter-free operations among the derived genotype's (normal and reduction cell).
    pub parameter_free: usize,
    /// Mean over the normal cell's edges of the entropy of softmax(alpha) (nats).
    pub entropy_normal: f32,
    /// The same for the reduction cell (0 in NAS-Bench-201, which has no reduce alphas).
    pub entropy_reduce: f32,
    /// Dominant (largest) eigenvalue of d^2 L_val / d alpha^2; `None` when not computed (0
    /// iterations).
    pub hessian_eigenvalue: Option<f32>,
}

/// How many of the genotype's operations are parameter-free.
pub fn parameter_free_ops(g: &Genotype) -> usize {
    g.normal.iter().chain(&g.reduce).filter(|(op, _)| PARAMETER_FREE.contains(&op.as_str())).count()
}

/// [`parameter_free_ops`] of either kind of genotype (a NAS-Bench-201 cell's six edges).
pub fn parameter_free_cell_ops(g: &CellGenotype) -> usize {
    match g {
        CellGenotype::Darts(g) => parameter_free_ops(g),
        CellGenotype::NasBench201(c) => c.parameter_free(),
    }
}

/// The mean over rows (edges) of the entropy of softmax(row), in nats.
pub fn mean_entropy(alphas: &[Vec<f32>]) -> f32 {
    let entropy = |row: &Vec<f32>| {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let e: Vec<f64> = row.iter().map(|&a| (a as f64 - max).exp()).collect();
        let z: f64 = e.iter().sum();
        -e.iter().map(|&x| x / z).filter(|&p| p > 0.0).map(|p| p * p.ln()).sum::<f64>()
    };
    (alphas.iter().map(entropy).sum::<f64>() / alphas.len().max(1) as f64) as f32
}

/// The dominant (largest) eigenvalue of the Hessian of the validation loss on (x, y) with
/// respect to both alpha matrices, by `iters` power iterations from a random unit vector drawn
/// from `rng` (and `iters` more on the shifted Hessian when the eigenvalue of largest magnitude
/// is negative), each a central-difference Hessian-vector product of radius `eps` (two gradient
/// passes and one readback of an alpha-sized vector).
pub async fn hessian_eigenvalue(
    net: &Network,
    x: &Tensor,
    y: &Tensor,
    iters: usize,
    eps: f32,
    rng: &mut Rng,
) -> Result<f32> {
    let gpu = net.alphas_normal.gpu().clone();
    let alphas = net.alphas();
    let values = read_all(&alphas.iter().collect::<Vec<_>>()).await?;
    let alpha: Vec<f32> = values.concat();
    // Writes a flat vector back into the alpha matrices (one or two).
    let write = |flat: &[f32]| -> Result<()> {
        let mut offset = 0;
        for a in &alphas {
            a.write(&flat[offset..offset + a.numel()])?;
            offset += a.numel();
        }
        Ok(())
    };
    // The forward passes update BN's running statistics: kept aside, put back.
    let mut buffers = Vec::new();
    net.buffers("", &mut buffers);
    let saved: Vec<Tensor> = buffers.iter().map(|(_, t)| t.duplicate()).collect::<Result<_>>()?;

    // g(alpha + s v), flattened on the GPU: [sum of sizes]
    let gradient_at = |v: &[f64], s: f64| -> Result<Vec<Tensor>> {
        let shifted: Vec<f32> = alpha.iter().zip(v).map(|(&a, &d)| (a as f64 + s * d) as f32).collect();
        write(&shifted)?;
        let loss = gpu.recording_for(&alphas, || softmax::cross_entropy(&net.forward(x, true)?, y))?;
        gpu.grad(&loss, &alphas)
    };
    let result = async {
        // H v by central differences, then v's Rayleigh quotient and the next unit vector of
        // the power iteration on H - shift I.
        let mut v: Vec<f64> = (0..alpha.len()).map(|_| rng.normal()).collect();
        normalize(&mut v);
        // First the eigenvalue of largest magnitude; if it is negative, the largest one is the
        // eigenvalue farthest above it: the dominant one of H - lambda I.
        let (mut shift, mut lambda) = (0.0, 0.0);
        for _pass in 0..2 {
            let mut mu = 0.0;
            for _ in 0..iters.max(1) {
                let plus = gradient_at(&v, eps as f64)?;
                let minus = gradient_at(&v, -(eps as f64))?;
                let g = read_all(&plus.iter().chain(&minus).collect::<Vec<_>>()).await?;
                let (gp, gm) = (g[..plus.len()].concat(), g[plus.len()..].concat());
                let mut hv: Vec<f64> = gp
                    .iter()
                    .zip(&gm)
                    .zip(&v)
                    .map(|((&p, &m), &x)| (p as f64 - m as f64) / (2.0 * eps as f64) - shift * x)
                    .collect();
                mu = v.iter().zip(&hv).map(|(a, b)| a * b).sum::<f64>();
                if normalize(&mut hv) == 0.0 {
                    break;
                }
                v = hv;
            }
            lambda = mu + shift;
            if lambda >= 0.0 || shift != 0.0 {
                break;
            }
            shift = lambda;
        }
        Ok(lambda as f32)
    }
    .await;
    write(&alpha)?;
    for ((_, t), s) in buffers.iter().zip(&saved) {
        t.copy_from(s)?;
    }
    result
}

/// Scales `v` to unit length; returns its length before.
fn normalize(v: &mut [f64]) -> f64 {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stop_fires_when_the_windowed_eigenvalue_grows_past_the_ratio() {
        let es = EarlyStop { window: 2, ratio: 1.3 };
        assert!(!es.triggered(&[1.0, 1.0, 1.2]), "two full windows needed");
        assert!(!es.triggered(&[1.0, 1.0, 1.2, 1.3]), "mean 1.25 is not past 1.3 x 1.0");
        assert!(es.triggered(&[1.0, 1.0, 1.2, 1.5]), "mean 1.35 is");
        assert!(!es.triggered(&[-1.0, -1.0, 5.0, 5.0]), "no ratio from a non-positive mean");
        assert!(EarlyStop { window: 0, ratio: 1.3 }.validate().is_err());
        assert!(EarlyStop { window: 5, ratio: 1.0 }.validate().is_err());
        assert!(EarlyStop::robust_darts().validate().is_ok());
    }

    #[test]
    fn parameter_free_ops_and_entropy() {
        let g = crate::space::darts_v1();
        let free = g.normal.iter().chain(&g.reduce).filter(|(op, _)| PARAMETER_FREE.contains(&op.as_str())).count();
        assert_eq!(parameter_free_ops(&g), free);
        assert!(free > 0, "DARTS_V1 has skips and pools");
        let uniform = mean_entropy(&[vec![0.0; 8], vec![3.0; 8]]);
        assert!((uniform - 8f32.ln()).abs() < 1e-6);
        assert!(mean_entropy(&[vec![0.0, 50.0]]) < 1e-6, "a sure edge has no entropy");
    }
}

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
use crate::error::Result;
use crate::nn::Module;
use crate::ops::softmax;
use crate::rng::Rng;
use crate::space::Genotype;
use crate::tensor::{read_all, Tensor};

/// The operations without parameters: a cell made of them has collapsed.
pub const PARAMETER_FREE: [&str; 4] = ["none", "skip_connect", "max_pool_3x3", "avg_pool_3x3"];

/// One epoch's collapse diagnostics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Collapse {
    /// Parameter-free operations among the derived genotype's (normal and reduction cell).
    pub parameter_free: usize,
    /// Mean over the normal cell's edges of the entropy of softmax(alpha) (nats).
    pub entropy_normal: f32,
    /// The same for the reduction cell.
    pub entropy_reduce: f32,
    /// Dominant eigenvalue of d^2 L_val / d alpha^2; `None` when not computed (0 iterations).
    pub hessian_eigenvalue: Option<f32>,
}

/// How many of the genotype's operations are parameter-free.
pub fn parameter_free_ops(g: &Genotype) -> usize {
    g.normal.iter().chain(&g.reduce).filter(|(op, _)| PARAMETER_FREE.contains(&op.as_str())).count()
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

/// The dominant eigenvalue of the Hessian of the validation loss on (x, y) with respect to both
/// alpha matrices, by `iters` power iterations from a random unit vector drawn from `rng`,
/// each a central-difference Hessian-vector product of radius `eps` (two gradient passes and one
/// readback of an alpha-sized vector).
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
    let sizes = [alphas[0].numel(), alphas[1].numel()];
    let values = read_all(&[&alphas[0], &alphas[1]]).await?;
    let alpha: Vec<f32> = values.concat();
    // The forward passes update BN's running statistics: kept aside, put back.
    let mut buffers = Vec::new();
    net.buffers("", &mut buffers);
    let saved: Vec<Tensor> = buffers.iter().map(|(_, t)| t.duplicate()).collect::<Result<_>>()?;

    // g(alpha + s v), flattened on the GPU: [sum of sizes]
    let gradient_at = |v: &[f64], s: f64| -> Result<Vec<Tensor>> {
        let shifted: Vec<f32> = alpha.iter().zip(v).map(|(&a, &d)| (a as f64 + s * d) as f32).collect();
        alphas[0].write(&shifted[..sizes[0]])?;
        alphas[1].write(&shifted[sizes[0]..])?;
        let loss = gpu.recording_for(&alphas, || softmax::cross_entropy(&net.forward(x, true)?, y))?;
        gpu.grad(&loss, &alphas)
    };
    let result = async {
        let n = alpha.len();
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        normalize(&mut v);
        let mut lambda = 0.0;
        for _ in 0..iters.max(1) {
            let plus = gradient_at(&v, eps as f64)?;
            let minus = gradient_at(&v, -(eps as f64))?;
            let g = read_all(&[&plus[0], &plus[1], &minus[0], &minus[1]]).await?;
            let (gp, gm) = ([&g[0][..], &g[1][..]].concat(), [&g[2][..], &g[3][..]].concat());
            let hv: Vec<f64> = gp.iter().zip(&gm).map(|(&p, &m)| (p as f64 - m as f64) / (2.0 * eps as f64)).collect();
            lambda = v.iter().zip(&hv).map(|(a, b)| a * b).sum::<f64>();
            v = hv;
            if normalize(&mut v) == 0.0 {
                break;
            }
        }
        Ok(lambda as f32)
    }
    .await;
    alphas[0].write(&values[0])?;
    alphas[1].write(&values[1])?;
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

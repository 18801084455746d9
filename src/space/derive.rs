//! From continuous architecture weights (alphas) to a discrete [`Genotype`].
//!
//! The inputs are the **raw** alphas, `[num_edges][num_ops]` with `num_edges = sum_{i<steps}(i+2)`
//! (14 for 4 nodes), rows ordered node by node and, within node `i`, by input index
//! `0..i+2` (`c_{k-2}`, `c_{k-1}`, earlier nodes) as in the reference's `Cell`. Each row is
//! softmaxed here, as the reference does before `_parse`: edges are then compared on the
//! probabilities their mixed operations actually used.
//!
//! PC-DARTS's edge normalisation adds raw betas, one per edge: each row's probabilities are
//! scaled by the softmax of the betas over its node's incoming edges before the edges are
//! ranked (yuhuixu1993/PC-DARTS `model_search.py`, `genotype()`), so the betas choose a node's
//! inputs and the alphas each input's operation.

use super::genotype::Genotype;
use super::NONE;
use crate::error::{Error, Result};

/// How a node's inputs and operations are chosen from the alphas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeriveRule {
    /// The reference rule (quark0/darts `model_search.py`, `genotype()._parse`): rank each
    /// incoming edge of a node by its strongest non-`none` weight, keep the two strongest edges
    /// (ties to the lower edge index), each with its best non-`none` operation (ties to the
    /// lower operation index). `none` never appears in the result, even where it is an edge's
    /// strongest weight: the reference ignores it because it would otherwise dominate.
    #[default]
    Top2,
    /// The seed's per-edge argmax, fitted to the genotype's two inputs per node: every edge
    /// takes its argmax over *all* operations, `none` included (ties to the lower index), and
    /// an edge whose argmax is `none` is dropped. Of the surviving edges each node keeps the two
    /// with the largest argmax weight (ties to the lower edge index). A node left with fewer
    /// than two survivors (its edges mostly prefer `none`) is completed with its strongest
    /// dropped edges, ranked and given operations as in [`DeriveRule::Top2`], because the
    /// evaluation cell reads every node from exactly two inputs.
    ///
    /// It differs from `Top2` only where `none` wins an edge: `Top2` may still keep that edge
    /// on the strength of its runner-up, `Argmax` prefers any edge with a real winner.
    Argmax,
}

/// Row-wise softmax (computed in f64 for a stable order-independent result, returned as f32).
pub fn softmax_rows(alphas: &[Vec<f32>]) -> Vec<Vec<f32>> {
    alphas
        .iter()
        .map(|row| {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &a| m.max(a as f64));
            let exps: Vec<f64> = row.iter().map(|&a| (a as f64 - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.iter().map(|e| (e / sum) as f32).collect()
        })
        .collect()
}

/// Derives both cells. `alphas_normal` and `alphas_reduce` are raw alphas (see the module
/// docs); `primitives` names their columns; the concat of both cells is the last `multiplier`
/// nodes, `range(2 + steps - multiplier, steps + 2)` as in the reference.
pub fn derive_genotype(
    alphas_normal: &[Vec<f32>],
    alphas_reduce: &[Vec<f32>],
    primitives: &[&str],
    steps: usize,
    multiplier: usize,
    rule: DeriveRule,
) -> Result<Genotype> {
    derive_genotype_with_betas(alphas_normal, alphas_reduce, None, primitives, steps, multiplier, rule)
}

/// The softmax of raw `betas` `[edges]` over each node's incoming edges (node 0's 2, node 1's
/// 3, ...), in f64 as [`softmax_rows`]: PC-DARTS's edge weights.
pub fn edge_softmax_rows(betas: &[f32], steps: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(betas.len());
    let mut start = 0;
    for node in 0..steps {
        let end = (start + node + 2).min(betas.len());
        out.extend(softmax_rows(&[betas[start..end].to_vec()]).remove(0));
        start = end;
    }
    out
}

/// [`derive_genotype`] with PC-DARTS's edge normalisation: `betas` = the raw betas of the
/// normal and the reduction cell, `[edges]` each (see the module docs); `None` is DARTS.
pub fn derive_genotype_with_betas(
    alphas_normal: &[Vec<f32>],
    alphas_reduce: &[Vec<f32>],
    betas: Option<(&[f32], &[f32])>,
    primitives: &[&str],
    steps: usize,
    multiplier: usize,
    rule: DeriveRule,
) -> Result<Genotype> {
    if multiplier == 0 || multiplier > steps {
        return Err(Error::Config(format!("multiplier {multiplier} must be in 1..={steps} (the number of nodes)")));
    }
    let concat: Vec<usize> = (2 + steps - multiplier..steps + 2).collect();
    Ok(Genotype {
        normal: derive_cell_with_betas(alphas_normal, betas.map(|b| b.0), primitives, steps, rule)
            .map_err(|e| Error::Config(format!("alphas_normal: {}", strip(e))))?,
        normal_concat: concat.clone(),
        reduce: derive_cell_with_betas(alphas_reduce, betas.map(|b| b.1), primitives, steps, rule)
            .map_err(|e| Error::Config(format!("alphas_reduce: {}", strip(e))))?,
        reduce_concat: concat,
    })
}

fn strip(e: Error) -> String {
    match e {
        Error::Config(msg) => msg,
        other => other.to_string(),
    }
}

/// Derives one cell: two `(operation, input)` entries per node, the stronger first (the
/// reference's order). `alphas` are raw, `[sum_{i<steps}(i+2)][primitives.len()]`.
pub fn derive_cell(
    alphas: &[Vec<f32>],
    primitives: &[&str],
    steps: usize,
    rule: DeriveRule,
) -> Result<Vec<(String, usize)>> {
    derive_cell_with_betas(alphas, None, primitives, steps, rule)
}

/// [`derive_cell`] with PC-DARTS's raw betas of the cell, `[edges]` (or `None`).
pub fn derive_cell_with_betas(
    alphas: &[Vec<f32>],
    betas: Option<&[f32]>,
    primitives: &[&str],
    steps: usize,
    rule: DeriveRule,
) -> Result<Vec<(String, usize)>> {
    let num_edges: usize = (0..steps).map(|i| i + 2).sum();
    if let Some(b) = betas {
        if b.len() != num_edges {
            return Err(Error::Config(format!("{} betas for {steps} nodes; expected {num_edges}", b.len())));
        }
        if let Some(e) = b.iter().position(|v| !v.is_finite()) {
            return Err(Error::Config(format!("edge {e}: beta is {}", b[e])));
        }
    }
    if alphas.len() != num_edges {
        return Err(Error::Config(format!(
            "{} rows of alphas for {steps} nodes; expected {num_edges} (one per edge)",
            alphas.len()
        )));
    }
    let none = primitives.iter().position(|&p| p == NONE);
    if primitives.is_empty() || (none.is_some() && primitives.len() == 1) {
        return Err(Error::Config("the operation set has no operation other than `none` to choose".into()));
    }
    for (e, row) in alphas.iter().enumerate() {
        if row.len() != primitives.len() {
            return Err(Error::Config(format!(
                "edge {e} has {} weights for {} operations ({})",
                row.len(),
                primitives.len(),
                primitives.join(", ")
            )));
        }
        if let Some(k) = row.iter().position(|a| !a.is_finite()) {
            return Err(Error::Config(format!("edge {e}, operation {}: alpha is {}", primitives[k], row[k])));
        }
    }
    let mut weights = softmax_rows(alphas);
    if let Some(b) = betas {
        for (row, w) in weights.iter_mut().zip(edge_softmax_rows(b, steps)) {
            row.iter_mut().for_each(|p| *p *= w);
        }
    }

    // Best operation of a row over the ops `allowed`, ties to the lower index (strict `>`).
    let best = |row: &[f32], allowed: &dyn Fn(usize) -> bool| -> usize {
        let mut k_best = None;
        for k in (0..row.len()).filter(|&k| allowed(k)) {
            if k_best.is_none_or(|b: usize| row[k] > row[b]) {
                k_best = Some(k);
            }
        }
        k_best.expect("a non-none operation exists (checked above)")
    };
    let not_none = |k: usize| Some(k) != none;

    let mut gene = Vec::with_capacity(2 * steps);
    let mut start = 0;
    for node in 0..steps {
        let rows = &weights[start..start + node + 2];
        // (edge, best non-none op, its weight): the reference's ranking.
        let top2: Vec<(usize, usize, f32)> = rows
            .iter()
            .enumerate()
            .map(|(j, row)| {
                let k = best(row, &not_none);
                (j, k, row[k])
            })
            .collect();
        let kept: Vec<(usize, usize)> = match rule {
            DeriveRule::Top2 => strongest(top2, 2),
            DeriveRule::Argmax => {
                let (winners, losers): (Vec<_>, Vec<_>) = top2.into_iter().partition(|&(j, _, _)| {
                    let argmax = best(&rows[j], &|_| true);
                    Some(argmax) != none
                });
                let mut kept = strongest(winners, 2);
                let missing = 2 - kept.len();
                kept.extend(strongest(losers, missing));
                kept
            }
        };
        gene.extend(kept.into_iter().map(|(j, k)| (primitives[k].to_string(), j)));
        start += node + 2;
    }
    Ok(gene)
}

/// The `count` entries with the largest weight, as (edge, op); a stable sort keeps ties in
/// edge order, like Python's `sorted`.
fn strongest(mut candidates: Vec<(usize, usize, f32)>, count: usize) -> Vec<(usize, usize)> {
    candidates.sort_by(|a, b| b.2.total_cmp(&a.2));
    candidates.into_iter().take(count).map(|(j, k, _)| (j, k)).collect()
}

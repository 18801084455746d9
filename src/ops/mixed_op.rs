//! The DARTS mixed operation (`shaders/mixed_op.wgsl`): the weighted sum of an edge's primitive
//! outputs, the weights read on the GPU.
//!
//! How a DARTS edge is built from these ops (quark0/darts `MixedOp.forward`):
//!
//! ```text
//! // alphas: [E, K] (E = 14 edges, K = 8 primitives), a parameter
//! let w = softmax::softmax(&alphas)?;                   // [E, K], once per cell type and step
//! // edge e, primitives k = 1..K (k = 0 is `none`: its output is zero, so it is left out and
//! // costs nothing; its weight still takes part in the softmax)
//! let ys: Vec<Tensor> = ...;                            // y_k = primitive_k(x), each [N, C, H, W]
//! let terms: Vec<(usize, &Tensor)> = (1..K).map(|k| (e * K + k, &ys[k - 1])).collect();
//! let edge = mixed_op::weighted_sum(&w, &terms)?;       // [N, C, H, W]
//! ```
//!
//! The gradient reaches the alphas through both ops: `weighted_sum` gives dw (zero at `none`
//! and at other edges' entries), the tape sums it over the 14 edges of the cell, and softmax's
//! backward turns it into dalphas (where `none` does get a gradient, through the normalisation).
//!
//! GDAS's edge ([`hard_select`]) runs one op instead: with the straight-through hard sample
//! `h` `[E, K]` (one-hot in value, the Gumbel-softmax in gradient) and the sampled op `k` of
//! edge `e`, `out = h[e, k] * y_k + sum_{i != k} h[e, i]`. The other ops' weights add zero to
//! the value and carry `sum(dout)` back to their alphas, as AutoDL-Projects' `forward_gdas`.

use bytemuck::{Pod, Zeroable};

use super::batch_norm::ScaledTerm;
use super::{elementwise, same_shape};
use crate::error::{Error, Result};
use crate::gpu::{grid_1d, grid_1d_of, Dispatch, Gpu, GpuBuffer};
use crate::tensor::{DType, Tensor};

/// Terms per dispatch: bindings for w (or dout), 8 terms and the output make 10 storage buffers,
/// the per-entry-point budget. A DARTS edge (7 non-`none` primitives) takes one dispatch.
pub const TERMS_PER_DISPATCH: usize = 8;

/// Most partial sums per term of the dot-product pass, and fewest elements per partial.
const MAX_PARTS: usize = 512;
const MIN_CHUNK: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    count: u32,
    accumulate: u32,
    chunk: u32,
    parts: u32,
    has_y: u32,
    mask: u32,
    channels: u32,
    idx: [u32; TERMS_PER_DISPATCH],
}

/// Params of one chunk of at most 8 terms.
fn params(n: usize, terms: &[(usize, &Tensor)], accumulate: bool, chunk: usize, parts: usize) -> Params {
    let mut idx = [0u32; TERMS_PER_DISPATCH];
    for (slot, (i, _)) in idx.iter_mut().zip(terms) {
        *slot = *i as u32;
    }
    Params {
        n: n as u32,
        count: terms.len() as u32,
        accumulate: accumulate as u32,
        chunk: chunk as u32,
        parts: parts as u32,
        has_y: 0,
        mask: 0,
        channels: 0,
        idx,
    }
}

/// The buffers `first, y_0 .. y_7, last` of one chunk, unused term slots filled with the first
/// term (bound, never read).
fn chunk_buffers<'a>(first: &'a Tensor, terms: &[(usize, &'a Tensor)], last: &'a Tensor) -> Vec<&'a Tensor> {
    let mut bufs = vec![first];
    bufs.extend((0..TERMS_PER_DISPATCH).map(|t| terms.get(t).unwrap_or(&terms[0]).1));
    bufs.push(last);
    bufs
}

fn dispatch(entry: &'static str, p: &Params, bufs: &[&Tensor], workgroups: [u32; 3]) {
    let buffers: Vec<_> = bufs.iter().map(|t| t.buf()).collect();
    dispatch_buffers(bufs[0].gpu(), entry, p, &buffers, workgroups);
}

fn dispatch_buffers(gpu: &Gpu, entry: &'static str, p: &Params, buffers: &[&GpuBuffer], workgroups: [u32; 3]) {
    gpu.dispatch(Dispatch {
        shader: "mixed_op",
        entry,
        constants: &[],
        params: bytemuck::bytes_of(p),
        buffers,
        workgroups,
        flops: 0,
    });
}

/// out = sum over `terms` of `w.flat[idx] * y`: the output of a DARTS edge (see the module
/// docs). `w` has any shape (e.g. softmax(alphas) `[E, K]`), every `y` the same shape, at least
/// one term; an index may repeat (its terms add up). One dispatch per 8 terms.
///
/// Backward: `dy = w[idx] * dout` for each term whose y requires a gradient; dw is zero except
/// `dw.flat[idx] = <dout, y>`, all terms' dot products in two dispatches per 8 terms with a fixed
/// reduction order.
pub fn weighted_sum(w: &Tensor, terms: &[(usize, &Tensor)]) -> Result<Tensor> {
    let op = "weighted_sum";
    let Some(&(_, first)) = terms.first() else {
        return Err(Error::shape(op, "no terms to sum"));
    };
    if w.dtype() != DType::F32 {
        return Err(Error::shape(op, format!("weights must be f32, got {:?}", w.dtype())));
    }
    for &(i, y) in terms {
        if i >= w.numel() {
            return Err(Error::shape(op, format!("weight index {i} out of weights {:?}", w.shape())));
        }
        same_shape(op, first, y)?;
        if y.dtype() != DType::F32 {
            return Err(Error::shape(op, format!("terms must be f32, got {:?}", y.dtype())));
        }
    }
    let n = first.numel();
    if n == 0 || n > u32::MAX as usize {
        return Err(Error::shape(op, format!("terms of {n} elements ({:?})", first.shape())));
    }
    // out: the shape of every term, e.g. [N, C, H, W]
    let out = Tensor::empty(w.gpu(), first.shape())?;
    for (c, chunk) in terms.chunks(TERMS_PER_DISPATCH).enumerate() {
        let p = params(n, chunk, c > 0, 0, 0);
        dispatch("weighted_sum", &p, &chunk_buffers(w, chunk, &out), grid_1d(n));
    }

    let saved_w = w.clone();
    let saved: Vec<(usize, Tensor)> = terms.iter().map(|&(i, y)| (i, y.clone())).collect();
    let mut inputs = vec![w];
    inputs.extend(terms.iter().map(|(_, y)| *y));
    w.gpu().record(&inputs, &[&out], move |g| {
        let dout = &g[0];
        let mut grads = Vec::with_capacity(saved.len() + 1);
        grads.push(if saved_w.requires_grad() { Some(weight_grad(&saved_w, &saved, dout)?) } else { None });
        grads.extend(term_grads(&saved_w, &saved, dout)?);
        Ok(grads)
    });
    Ok(out)
}

/// dy_t = w.flat[idx_t] * dout for each term whose y requires a gradient: one dispatch per 8
/// terms, dout read once.
fn term_grads(w: &Tensor, terms: &[(usize, Tensor)], dout: &Tensor) -> Result<Vec<Option<Tensor>>> {
    let gpu = w.gpu();
    let n = dout.numel();
    let mut grads = Vec::with_capacity(terms.len());
    for group in terms.chunks(TERMS_PER_DISPATCH) {
        let wanted: Vec<(usize, &Tensor)> =
            group.iter().filter(|(_, y)| y.requires_grad()).map(|(i, y)| (*i, y)).collect();
        let outs: Vec<Tensor> = wanted.iter().map(|_| Tensor::empty(gpu, dout.shape())).collect::<Result<_>>()?;
        if !wanted.is_empty() {
            // Unused slots: the device's spare buffers (writable bindings may not alias).
            let spares = gpu.spares(TERMS_PER_DISPATCH - wanted.len());
            let p = params(n, &wanted, false, 0, 0);
            let mut bufs = vec![w.buf(), dout.buf()];
            bufs.extend(outs.iter().map(|t| t.buf()));
            bufs.extend(spares.iter().map(|b| &**b));
            dispatch_buffers(gpu, "scale_terms", &p, &bufs, grid_1d(n));
        }
        let mut outs = outs.into_iter();
        grads.extend(group.iter().map(|(_, y)| if y.requires_grad() { outs.next() } else { None }));
    }
    Ok(grads)
}

/// dw: zeros of w's shape except dw.flat[idx_t] += <dout, y_t>. Per 8 terms: one pass of
/// per-chunk partial sums for all terms at once, then one workgroup adds them up in order (no
/// workgroup barriers; [`elementwise::scale`]'s scalar gradient comes from here too).
pub(crate) fn weight_grad(w: &Tensor, terms: &[(usize, Tensor)], dout: &Tensor) -> Result<Tensor> {
    let gpu = w.gpu();
    let n = dout.numel();
    let chunk = n.div_ceil(MAX_PARTS).max(MIN_CHUNK);
    let parts = n.div_ceil(chunk);
    let dw = Tensor::zeros(gpu, w.shape())?;
    let refs: Vec<(usize, &Tensor)> = terms.iter().map(|(i, y)| (*i, y)).collect();
    for group in refs.chunks(TERMS_PER_DISPATCH) {
        let p = params(n, group, false, chunk, parts);
        let partial = Tensor::empty(gpu, &[group.len(), parts])?; // partial: [terms, parts]
        let wg = [(group.len() * parts).div_ceil(64) as u32, 1, 1];
        dispatch("dot_partials", &p, &chunk_buffers(dout, group, &partial), wg);
        dispatch("dot_finish", &p, &[&partial, &dw], [1, 1, 1]);
    }
    Ok(dw)
}

/// One term of [`bn_sum`]: an op's last BN, its output left to the sum, or a tensor as it is.
pub enum SumTerm {
    /// The BN (its input x and what its backward needs); its coefficients are in the sum's
    /// buffer, at the term's row.
    Bn(ScaledTerm),
    /// A term added as it is (e.g. `skip_connect`'s weighted input).
    Plain(Tensor),
}

/// The coefficients' buffer of a [`bn_sum`] over `c` channels: `[8, C, 4]`, row t for term t's
/// BN ([`super::batch_norm::batch_norm2d_scaled_coefficients`] writes it).
pub fn sum_coefficients(gpu: &Gpu, c: usize) -> Result<Tensor> {
    Tensor::empty(gpu, &[TERMS_PER_DISPATCH, c, 4])
}

/// A DARTS edge's sum with its ops' last BNs applied on the way: `out = sum_t z_t` in term
/// order, `z_t = a_t[c] x_t + b_t[c]` for a [`SumTerm::Bn`] (row t of `coef`), the tensor itself
/// for a [`SumTerm::Plain`]. The BNs' outputs are never written, and the result has the same
/// bits as [`elementwise::add_n`] over them. At most 8 terms of one shape, planes of a multiple
/// of 4 values; one dispatch.
///
/// Backward: each BN term's gradient is its BN's backward of dout (dx and the weight's), each
/// plain term's dout. Where the BNs reduce per plane (large planes), the sums over dout that
/// all BN terms need are made in one pass for all of them.
pub fn bn_sum(coef: &Tensor, terms: Vec<SumTerm>) -> Result<Tensor> {
    let op = "bn_sum";
    let tensor = |t: &SumTerm| match t {
        SumTerm::Bn(bn) => bn.x().clone(),
        SumTerm::Plain(x) => x.clone(),
    };
    let Some(first) = terms.first().map(tensor) else {
        return Err(Error::shape(op, "no terms to sum"));
    };
    let [_, c, h, w] = *first.shape() else {
        return Err(Error::shape(op, format!("terms must be [N, C, H, W], got {:?}", first.shape())));
    };
    if terms.len() > TERMS_PER_DISPATCH || !(h * w).is_multiple_of(4) {
        return Err(Error::shape(
            op,
            format!("{} terms of {:?}: at most 8, planes of 4k values", terms.len(), first.shape()),
        ));
    }
    if coef.shape() != [TERMS_PER_DISPATCH, c, 4] {
        return Err(Error::shape(op, format!("coefficients {:?} for {c} channels", coef.shape())));
    }
    let xs: Vec<Tensor> = terms.iter().map(tensor).collect();
    for x in &xs {
        same_shape(op, &first, x)?;
    }
    let n = first.numel();
    let mask = terms.iter().enumerate().fold(0, |m, (t, term)| m | (matches!(term, SumTerm::Bn(..)) as u32) << t);
    let mut p = params(n, &[], false, (h * w) / 4, 0);
    p.count = terms.len() as u32;
    p.mask = mask;
    p.channels = c as u32;
    // out: [N, C, H, W]
    let out = Tensor::empty(first.gpu(), first.shape())?;
    let mut bufs = vec![coef];
    bufs.extend((0..TERMS_PER_DISPATCH).map(|t| xs.get(t).unwrap_or(&xs[0])));
    bufs.push(&out);
    // Workgroups of 64 over runs of 4 vec4s of a plane (x), the N*C planes (y, z past 65535).
    let planes = n / (h * w);
    let z = planes.div_ceil(65535);
    let groups = [((h * w) / 4).div_ceil(4).div_ceil(64) as u32, planes.div_ceil(z) as u32, z as u32];
    dispatch("bn_sum", &p, &bufs, groups);

    // Inputs: each BN term's x and gain, each plain term's tensor.
    let mut inputs: Vec<Tensor> = vec![];
    for (term, x) in terms.iter().zip(&xs) {
        inputs.push(x.clone());
        if let SumTerm::Bn(bn) = term {
            inputs.push(bn.gain().clone());
        }
    }
    // The backward keeps the BNs' saved state only, not the plain terms.
    let bns: Vec<Option<ScaledTerm>> = terms
        .into_iter()
        .map(|t| match t {
            SumTerm::Bn(bn) => Some(bn),
            SumTerm::Plain(_) => None,
        })
        .collect();
    let coef = coef.clone();
    first.gpu().record(&inputs.iter().collect::<Vec<_>>(), &[&out], move |g| {
        if let Some(grads) = bn_terms_backward(&coef, &bns, &g[0])? {
            return Ok(grads);
        }
        let mut grads = vec![];
        for bn in &bns {
            match bn {
                Some(bn) => grads.extend(bn.backward(&g[0])?),
                None => grads.push(Some(g[0].clone())),
            }
        }
        Ok(grads)
    });
    Ok(out)
}

/// BN terms that [`bn_terms_backward`] takes in one pass (x buffers of `bn_sum_sums`).
const BN_TERMS_AT_ONCE: usize = 7;

/// [`bn_sum`]'s backward, `[dx, ds]` per BN term and dout per plain term, when every BN term
/// reduces per plane (not one workgroup per channel), shares one gain buffer, and there are
/// at most 7 of them; else `None`. A scaled BN's dy is dout itself, so `bn_sum_sums` reads dout
/// once for every term's plane sums (their BNs' `plane_sums4` read it once per term), then one
/// `bn_sum_combine` and one `bn_sum_gain_grad` for all terms, and each term's dx from the
/// shared sums. The same bits as the terms' own backwards. The gain's gradient (nonzero at
/// each term's k) comes as the first BN term's; the others' are `None`.
fn bn_terms_backward(
    coef: &Tensor,
    terms: &[Option<ScaledTerm>],
    dout: &Tensor,
) -> Result<Option<Vec<Option<Tensor>>>> {
    let bns: Vec<&ScaledTerm> = terms.iter().flatten().collect();
    let Some(first) = bns.first() else { return Ok(None) };
    let gain = first.gain();
    if bns.len() > BN_TERMS_AT_ONCE || !bns.iter().all(|b| b.sums_per_plane() && b.gain().id() == gain.id()) {
        return Ok(None);
    }
    let gpu = dout.gpu();
    let [n, c, h, w] = *dout.shape() else { return Ok(None) };
    // dgamma: [8, C], one row per BN term (sum dout * xhat); dbeta: [C] (sum dout). Only when a
    // gradient needs them.
    let sums = if gain.requires_grad() || bns.iter().any(|b| b.x_grad()) {
        let mut p = params(dout.numel(), &[], false, (h * w) / 4, 0);
        p.count = bns.len() as u32;
        p.channels = c as u32;
        for (slot, bn) in p.idx.iter_mut().zip(&bns) {
            *slot = bn.k_and_slot().1; // the term's row of the coefficients
        }
        // partial: [N * C, 8] = (sum dout, then each term's sum dout * xhat)
        let partial = Tensor::empty(gpu, &[n * c, 8])?;
        let dgamma = Tensor::empty(gpu, &[TERMS_PER_DISPATCH, c])?;
        let dbeta = Tensor::empty(gpu, &[c])?;
        let mut bufs = vec![coef, dout];
        bufs.extend((0..BN_TERMS_AT_ONCE).map(|b| bns.get(b).unwrap_or(first).x()));
        bufs.push(&partial);
        dispatch("bn_sum_sums", &p, &bufs, grid_1d_of(n * c, 64));
        dispatch("bn_sum_combine", &p, &[&partial, &dgamma, &dbeta], [c.div_ceil(64) as u32, 1, 1]);
        Some((p, dgamma, dbeta))
    } else {
        None
    };
    let ds = match &sums {
        Some((p, dgamma, _)) if gain.requires_grad() => {
            let mut p = *p;
            for (slot, bn) in p.idx.iter_mut().zip(&bns) {
                *slot = bn.k_and_slot().0; // the term's index into the gain
            }
            let ds = Tensor::empty(gpu, gain.shape())?;
            dispatch("bn_sum_gain_grad", &p, &[dgamma, &ds], [1, 1, 1]);
            Some(ds)
        }
        _ => None,
    };
    let mut ds = ds.into_iter();
    let mut grads = vec![];
    let mut b = 0;
    for term in terms {
        match term {
            Some(bn) => {
                let dx = match &sums {
                    Some((_, dgamma, dbeta)) if bn.x_grad() => Some(bn.dx_from_sums(dout, dgamma, dbeta, b)?),
                    _ => None,
                };
                grads.extend([dx, ds.next()]);
                b += 1;
            }
            None => grads.push(Some(dout.clone())),
        }
    }
    Ok(Some(grads))
}

/// Params of [`hard_select`] for edge `edge` (row `edge * k_total` of h), op `k`.
fn select_params(n: usize, edge: usize, k: usize, k_total: usize, has_y: bool, chunk: usize, parts: usize) -> Params {
    let mut idx = [0u32; TERMS_PER_DISPATCH];
    idx[0] = (edge * k_total) as u32;
    idx[1] = k as u32;
    Params {
        n: n as u32,
        count: k_total as u32,
        accumulate: 0,
        chunk: chunk as u32,
        parts: parts as u32,
        has_y: has_y as u32,
        mask: 0,
        channels: 0,
        idx,
    }
}

/// GDAS's edge: `out = h[edge, k] * y + sum_{i != k} h[edge, i]`, where `h` `[E, K]` is the
/// straight-through hard sample and `y` the output of the sampled op k (`None` when it is
/// `none`: zero). `shape` is the output's shape (y's, when given). One dispatch.
///
/// Backward: `dy = h[edge, k] * dout` (elementwise::scale); dh is zero except row `edge`: `dh[edge, k] = <dout, y>`
/// (0 without y) and `dh[edge, i != k] = sum(dout)`, two dispatches with a fixed reduction order.
pub fn hard_select(h: &Tensor, edge: usize, k: usize, y: Option<&Tensor>, shape: &[usize]) -> Result<Tensor> {
    let op = "hard_select";
    let [e_total, k_total] = h.shape() else {
        return Err(Error::shape(op, format!("h must be [edges, ops], got {:?}", h.shape())));
    };
    let (e_total, k_total) = (*e_total, *k_total);
    if h.dtype() != DType::F32 {
        return Err(Error::shape(op, format!("h must be f32, got {:?}", h.dtype())));
    }
    if edge >= e_total || k >= k_total {
        return Err(Error::shape(op, format!("edge {edge}, op {k} out of h {:?}", h.shape())));
    }
    if let Some(y) = y {
        if y.shape() != shape || y.dtype() != DType::F32 {
            return Err(Error::shape(op, format!("y is {:?} {:?}, want f32 {shape:?}", y.shape(), y.dtype())));
        }
    }
    let n: usize = shape.iter().product();
    if n == 0 || n > u32::MAX as usize {
        return Err(Error::shape(op, format!("an output of {n} elements ({shape:?})")));
    }
    // out: [N, C, H, W], the shape of y
    let out = Tensor::empty(h.gpu(), shape)?;
    let p = select_params(n, edge, k, k_total, y.is_some(), 0, 0);
    dispatch("hard_select", &p, &[h, y.unwrap_or(h), &out], grid_1d(n.div_ceil(4)));

    let (saved_h, saved_y) = (h.clone(), y.cloned());
    let mut inputs = vec![h];
    inputs.extend(y);
    h.gpu().record(&inputs, &[&out], move |g| {
        let dout = &g[0];
        let dh = if saved_h.requires_grad() {
            let chunk = n.div_ceil(MAX_PARTS).max(MIN_CHUNK);
            let parts = n.div_ceil(chunk);
            let dh = Tensor::zeros(saved_h.gpu(), saved_h.shape())?;
            let partial = Tensor::empty(saved_h.gpu(), &[2, parts])?; // [dot, sum] x parts
            let p = select_params(n, edge, k, k_total, saved_y.is_some(), chunk, parts);
            let y = saved_y.as_ref().unwrap_or(dout);
            dispatch("select_partials", &p, &[dout, y, &partial], [(2 * parts).div_ceil(64) as u32, 1, 1]);
            dispatch("select_finish", &p, &[&partial, &dh], [1, 1, 1]);
            Some(dh)
        } else {
            None
        };
        let mut grads = vec![dh];
        if let Some(y) = &saved_y {
            // One term: the element-wise scaling (four values per thread) beats scale_terms' eight slots.
            let dy =
                if y.requires_grad() { Some(elementwise::scale(dout, &saved_h, edge * k_total + k)?) } else { None };
            grads.push(dy);
        }
        Ok(grads)
    });
    Ok(out)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// The uniform block here and in `shaders/mixed_op.wgsl` cannot drift apart.
    #[test]
    fn params_match_the_shader() {
        params_layout_matches!(Params, "mixed_op", [n, count, accumulate, chunk, parts, has_y, mask, channels, idx]);
    }
}

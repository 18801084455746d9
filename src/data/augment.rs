//! Per-channel normalisation and the data augmentation of the DARTS reference code: random
//! crop with zero padding, horizontal flip, cutout.
//!
//! The order is the reference's torchvision pipeline, so numbers are comparable with it:
//! `RandomCrop(padding=4)` and `RandomHorizontalFlip` on the byte image (the padding is black,
//! pixel value 0, before normalisation), then `ToTensor` (x / 255), `Normalize` ((x - mean) /
//! std), then `Cutout` (a square set to 0 after normalisation, i.e. to the mean colour). Every
//! function works for any channel count and image size (28x28x1 as well as 32x32x3). Random
//! choices draw from the run's [`Rng`], so a seed fixes them.

use serde::{Deserialize, Serialize};

use super::Dataset;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Per-channel normalisation `(x / 255 - mean[c]) / std[c]`, with `mean` and `std` on the
/// [0, 1] pixel scale (as torchvision's `Normalize` after `ToTensor`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Per-channel mean on the [0, 1] pixel scale, one per channel.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation on the [0, 1] pixel scale, each positive.
    pub std: Vec<f32>,
}

impl Normalize {
    /// Given statistics; every `std` must be positive and finite, and there must be one of each
    /// per channel.
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Normalize> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(Error::Config(format!(
                "normalisation needs one mean and one std per channel, got {} means and {} stds",
                mean.len(),
                std.len()
            )));
        }
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Config(format!("normalisation std {s} is not a positive number")));
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(Error::Config(format!("normalisation mean {m} is not finite")));
        }
        Ok(Normalize { mean, std })
    }

    /// Only the scaling to [0, 1] (mean 0, std 1).
    pub fn identity(channels: usize) -> Normalize {
        Normalize { mean: vec![0.0; channels], std: vec![1.0; channels] }
    }

    /// The CIFAR-10 statistics used by the DARTS reference code (`CIFAR_MEAN`, `CIFAR_STD`),
    /// for results comparable with it.
    pub fn cifar10() -> Normalize {
        Normalize {
            mean: vec![0.491_399_68, 0.482_158_27, 0.446_531_24],
            std: vec![0.247_032_33, 0.243_485_05, 0.261_587_68],
        }
    }

    /// Statistics computed from a data set (use the training split, so nothing leaks from the
    /// test split): per channel, the mean and the population standard deviation of all its
    /// pixels on the [0, 1] scale, accumulated exactly in integers. A constant channel gets std 1
    /// instead of 0.
    pub fn fit(data: &Dataset) -> Normalize {
        let c = data.channels;
        let plane = data.height * data.width;
        let mut sum = vec![0u64; c];
        let mut sum_sq = vec![0u64; c];
        for i in 0..data.n {
            let img = data.image(i);
            for ch in 0..c {
                for &p in &img[ch * plane..(ch + 1) * plane] {
                    sum[ch] += p as u64;
                    sum_sq[ch] += (p as u64) * (p as u64);
                }
            }
        }
        let count = (data.n * plane).max(1) as f64;
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        for ch in 0..c {
            let m = sum[ch] as f64 / count;
            let var = (sum_sq[ch] as f64 / count - m * m).max(0.0);
            let s = var.sqrt() / 255.0;
            mean.push((m / 255.0) as f32);
            std.push(if s > 1e-12 { s as f32 } else { 1.0 });
        }
        Normalize { mean, std }
    }

    /// Number of channels it normalises.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Converts one CHW byte image to normalised floats.
    pub fn apply(&self, src: &[u8], shape: [usize; 3], out: &mut [f32]) {
        let plane = shape[1] * shape[2];
        for ch in 0..shape[0] {
            let (m, s) = (self.mean[ch], self.std[ch]);
            let range = ch * plane..(ch + 1) * plane;
            for (o, &p) in out[range.clone()].iter_mut().zip(&src[range]) {
                *o = (p as f32 / 255.0 - m) / s;
            }
        }
    }
}

/// Which augmentations a loader applies to each training image (none by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augment {
    /// Random crop of the original size from the image zero-padded by this many pixels on each
    /// side (0: off). The DARTS reference uses 4.
    pub crop_padding: usize,
    /// Horizontal flip with probability 1/2.
    pub flip: bool,
    /// Cutout: a `cutout` x `cutout` square (clipped at the edges) set to 0 after normalisation,
    /// centred on a uniformly random pixel (0: off). The DARTS reference retrains with 16.
    pub cutout: usize,
}

impl Augment {
    /// No augmentation (evaluation, or the validation half during a search).
    pub fn none() -> Augment {
        Augment::default()
    }

    /// The DARTS search's training transform: crop with padding 4 and flip, no cutout.
    pub fn darts_search() -> Augment {
        Augment { crop_padding: 4, flip: true, cutout: 0 }
    }

    /// The DARTS retraining transform: crop with padding 4, flip and cutout of `cutout`
    /// (16 in the paper).
    pub fn darts_train(cutout: usize) -> Augment {
        Augment { crop_padding: 4, flip: true, cutout }
    }

    /// Whether it applies no augmentation at all.
    pub fn is_none(&self) -> bool {
        *self == Augment::none()
    }

    /// Augments and normalises one CHW byte image into `out`, drawing from `rng` in a fixed
    /// order: crop offsets (row, then column, each uniform in `0..=2*padding`), the flip coin,
    /// the cutout centre (row, then column). `scratch` is reused between calls to avoid an
    /// allocation per image.
    pub fn apply(
        &self,
        src: &[u8],
        shape: [usize; 3],
        normalize: &Normalize,
        rng: &mut Rng,
        scratch: &mut Vec<u8>,
        out: &mut [f32],
    ) {
        scratch.clear();
        scratch.resize(src.len(), 0);
        if self.crop_padding > 0 {
            let span = 2 * self.crop_padding + 1;
            let dy = rng.below(span);
            let dx = rng.below(span);
            crop_at(src, shape, self.crop_padding, dy, dx, scratch);
        } else {
            scratch.copy_from_slice(src);
        }
        if self.flip && rng.uniform() < 0.5 {
            flip_horizontal(scratch, shape);
        }
        normalize.apply(scratch, shape, out);
        if self.cutout > 0 {
            let cy = rng.below(shape[1]);
            let cx = rng.below(shape[2]);
            cutout_at(out, shape, cy, cx, self.cutout);
        }
    }
}

/// Crops an image of the original size from `src` zero-padded by `pad` on every side, the
/// crop's top-left corner at (`dy`, `dx`) of the padded image (`0..=2*pad` each): output pixel
/// (y, x) is source pixel (y + dy - pad, x + dx - pad), or 0 outside the source.
pub fn crop_at(src: &[u8], shape: [usize; 3], pad: usize, dy: usize, dx: usize, dst: &mut [u8]) {
    let [c, h, w] = shape;
    let plane = h * w;
    for ch in 0..c {
        for y in 0..h {
            let row = &mut dst[ch * plane + y * w..ch * plane + (y + 1) * w];
            let sy = (y + dy) as isize - pad as isize;
            if sy < 0 || sy >= h as isize {
                row.fill(0);
                continue;
            }
            let src_row = &src[ch * plane + sy as usize * w..ch * plane + (sy as usize + 1) * w];
            for (x, o) in row.iter_mut().enumerate() {
                let sx = (x + dx) as isize - pad as isize;
                *o = if sx < 0 || sx >= w as isize { 0 } else { src_row[sx as usize] };
            }
        }
    }
}

/// Mirrors every row of every channel in place.
pub fn flip_horizontal<T>(img: &mut [T], shape: [usize; 3]) {
    let w = shape[2];
    for row in img.chunks_exact_mut(w).take(shape[0] * shape[1]) {
        row.reverse();
    }
}

/// Sets to 0, in every channel, the square of side `length` centred at (`cy`, `cx`), clipped to
/// the image: rows `cy - length/2 .. cy + length/2`, columns likewise (half-open, integer
/// division), exactly as the DARTS reference's `Cutout`.
pub fn cutout_at(img: &mut [f32], shape: [usize; 3], cy: usize, cx: usize, length: usize) {
    let [c, h, w] = shape;
    let half = length / 2;
    let (y1, y2) = (cy.saturating_sub(half), (cy + half).min(h));
    let (x1, x2) = (cx.saturating_sub(half), (cx + half).min(w));
    for ch in 0..c {
        for y in y1..y2 {
            let start = ch * h * w + y * w;
            img[start + x1..start + x2].fill(0.0);
        }
    }
}

//! Data: the data sets a search or a retraining runs on, and the way batches reach the GPU.
//!
//! - [`Dataset`]: images as bytes (`u8`, 0..=255) in NCHW order with `u32` labels. Bytes, not
//!   `f32`, because that is how every source stores them and it takes a quarter of the memory
//!   (CIFAR-10's training set is 150 MB as bytes, 600 MB as floats); conversion to `f32`,
//!   normalisation and augmentation happen per batch in the [`Loader`].
//! - Sources: CIFAR-10/100 official binary files ([`cifar`]), IDX files such as MNIST and
//!   Fashion-MNIST, raw or gzipped ([`idx`]), and a small real data set compiled into the crate
//!   ([`embedded`]: 6000 + 1000 Fashion-MNIST images), the default when no data set is named.
//! - [`Normalize`] (per-channel mean/std), [`Dataset::split`] (train/validation by portion),
//!   [`Augment`] (random crop with zero padding, horizontal flip, cutout) and [`Loader`]
//!   (seeded per-epoch shuffling, a resumable cursor, double-buffered upload to the GPU).
//!
//! Everything random draws from [`crate::rng::Rng`], so a seed fixes a run.

pub mod augment;
pub mod cifar;
pub mod embedded;
pub mod idx;
pub mod loader;

pub use augment::{Augment, Normalize};
pub use cifar::Cifar100Labels;
pub use loader::{Batch, Loader, LoaderConfig, LoaderState};

use crate::error::{Error, Result};
use crate::rng::Rng;

/// Which part of a data set a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

/// What identifies a data set's content: its name, sizes and a CRC-32 of its pixels and
/// labels. A resumed run checks that it continues on the same data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// The data set's name, as [`Dataset::name`].
    pub name: String,
    /// Number of images.
    pub n: usize,
    /// [channels, height, width]
    pub shape: [usize; 3],
    /// Number of classes.
    pub num_classes: usize,
    /// CRC-32 of the image bytes, then of the labels (u32, little endian), in hex.
    pub crc32: String,
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [c, h, w] = self.shape;
        write!(f, "{} ({} images {c}x{h}x{w}, {} classes, CRC-32 {})", self.name, self.n, self.num_classes, self.crc32)
    }
}

/// An image classification data set held in host memory.
///
/// `images` holds `n * channels * height * width` bytes in NCHW order: image `i` is the slice
/// `images[i * image_len() .. (i + 1) * image_len()]`, channel planes one after another, each
/// row-major. Pixel values are the source's bytes (0..=255); the [`Loader`] maps them to `f32`
/// in [0, 1] and normalises them per batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// A short name for logs and run directories, e.g. `"cifar10-train"`.
    pub name: String,
    /// Pixels, NCHW, one byte each.
    pub images: Vec<u8>,
    /// One label per image, each below `num_classes`.
    pub labels: Vec<u32>,
    /// Number of images.
    pub n: usize,
    /// Channels per image (3 for CIFAR, 1 for MNIST and Fashion-MNIST).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Number of classes; labels are `0..num_classes`.
    pub num_classes: usize,
    /// `num_classes` human-readable names, in label order.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// The data set's [`Fingerprint`] (one pass over its bytes).
    pub fn fingerprint(&self) -> Fingerprint {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.images);
        for l in &self.labels {
            crc.update(&l.to_le_bytes());
        }
        Fingerprint {
            name: self.name.clone(),
            n: self.n,
            shape: [self.channels, self.height, self.width],
            num_classes: self.num_classes,
            crc32: format!("{:08x}", crc.finalize()),
        }
    }

    /// Builds a data set, checking that the sizes agree and every label is in range, so that
    /// everything downstream can index without checks.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: impl Into<String>,
        images: Vec<u8>,
        labels: Vec<u32>,
        channels: usize,
        height: usize,
        width: usize,
        num_classes: usize,
        class_names: Vec<String>,
    ) -> Result<Dataset> {
        let name = name.into();
        let bad = |msg: String| Err(Error::Config(format!("data set {name:?}: {msg}")));
        if channels == 0 || height == 0 || width == 0 {
            return bad(format!("image shape {channels}x{height}x{width} has a zero dimension"));
        }
        let image_len = channels * height * width;
        let n = labels.len();
        if images.len() != n * image_len {
            return bad(format!(
                "{} pixel bytes for {n} labels of {channels}x{height}x{width} images \
                 (expected {})",
                images.len(),
                n * image_len
            ));
        }
        if num_classes == 0 {
            return bad("zero classes".into());
        }
        if class_names.len() != num_classes {
            return bad(format!("{} class names for {num_classes} classes", class_names.len()));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= num_classes) {
            return bad(format!("label {l} of image {i} is not below the {num_classes} classes"));
        }
        Ok(Dataset { name, images, labels, n, channels, height, width, num_classes, class_names })
    }

    /// Bytes per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// `[channels, height, width]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// The pixels of image `i` (CHW).
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.image_len();
        &self.images[i * len..(i + 1) * len]
    }

    /// How many images each class has, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// A new data set with the images at `indices`, in that order (named `name`).
    pub fn subset(&self, indices: &[usize], name: impl Into<String>) -> Result<Dataset> {
        let len = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * len);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            if i >= self.n {
                return Err(Error::Config(format!(
                    "subset of {:?}: index {i} is out of range for {} images",
                    self.name, self.n
                )));
            }
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Ok(Dataset {
            name: name.into(),
            images,
            labels,
            n: indices.len(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            num_classes: self.num_classes,
            class_names: self.class_names.clone(),
        })
    }

    /// The first `per_class` images of each class, in file order (fewer where a class has
    /// fewer): a balanced sample for short runs.
    pub fn balanced(&self, per_class: usize) -> Result<Dataset> {
        let mut taken = vec![0; self.num_classes];
        let indices: Vec<usize> = (0..self.n)
            .filter(|&i| {
                let c = self.labels[i] as usize;
                taken[c] += 1;
                taken[c] <= per_class
            })
            .collect();
        self.subset(&indices, format!("{}-{per_class}-per-class", self.name))
    }

    /// Every image averaged down by `factor` in both directions (each output pixel the rounded
    /// mean of a `factor` x `factor` block): 28x28 Fashion-MNIST becomes 14x14 or 7x7, for
    /// searches sized for a CPU or a browser. The sides must be multiples of `factor`.
    pub fn downsample(&self, factor: usize) -> Result<Dataset> {
        if factor == 0 || !self.height.is_multiple_of(factor) || !self.width.is_multiple_of(factor) {
            return Err(Error::Config(format!(
                "cannot average {}x{} images down by {factor}: the sides must be multiples of it",
                self.height, self.width
            )));
        }
        let (h, w) = (self.height / factor, self.width / factor);
        let area = (factor * factor) as u32;
        let mut images = Vec::with_capacity(self.n * self.channels * h * w);
        for plane in self.images.chunks(self.height * self.width) {
            for y in 0..h {
                for x in 0..w {
                    let sum: u32 = (0..factor)
                        .flat_map(|dy| (0..factor).map(move |dx| (y * factor + dy) * self.width + x * factor + dx))
                        .map(|i| plane[i] as u32)
                        .sum();
                    images.push(((sum + area / 2) / area) as u8);
                }
            }
        }
        let name = format!("{}-{h}x{w}", self.name);
        Dataset::new(name, images, self.labels.clone(), self.channels, h, w, self.num_classes, self.class_names.clone())
    }

    /// Splits into (train, validation) for the bi-level search: a seeded permutation of all
    /// images, whose first `floor(portion * n)` go to train and the rest to validation.
    ///
    /// DARTS searches with `portion = 0.5` of the training set (weights learn on one half,
    /// architecture parameters on the other). The permutation, not file order, keeps both
    /// halves balanced on sources sorted by class; [`Dataset::split_in_order`] reproduces the
    /// reference code's file-order split. Errors when either part would be empty.
    pub fn split(&self, portion: f64, rng: &mut Rng) -> Result<(Dataset, Dataset)> {
        let mut order: Vec<usize> = (0..self.n).collect();
        rng.shuffle(&mut order);
        self.split_indices(portion, &order)
    }

    /// Like [`Dataset::split`], but the first `floor(portion * n)` images in file order are
    /// train and the rest validation, as in the DARTS reference code (`indices[:split]`).
    pub fn split_in_order(&self, portion: f64) -> Result<(Dataset, Dataset)> {
        let order: Vec<usize> = (0..self.n).collect();
        self.split_indices(portion, &order)
    }

    fn split_indices(&self, portion: f64, order: &[usize]) -> Result<(Dataset, Dataset)> {
        if !(portion > 0.0 && portion < 1.0) {
            return Err(Error::Config(format!("train portion must be strictly between 0 and 1, got {portion}")));
        }
        let cut = (portion * self.n as f64).floor() as usize;
        if cut == 0 || cut == self.n {
            return Err(Error::Config(format!(
                "train portion {portion} of {} images of {:?} leaves an empty train or \
                 validation part",
                self.n, self.name
            )));
        }
        let train = self.subset(&order[..cut], format!("{}-train", self.name))?;
        let valid = self.subset(&order[cut..], format!("{}-valid", self.name))?;
        Ok((train, valid))
    }
}

/// Strings from a list of names, for `class_names`.
pub(crate) fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

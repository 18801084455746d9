//! Batching: a seeded shuffled order per epoch, augmentation, normalisation and a resumable
//! cursor, on the host ([`crate::gpu::DeviceLoader`] uploads the batches).
//!
//! Determinism and resume: the loader keeps one seed (drawn from the run's [`Rng`]) and a
//! cursor (epoch, batch index). The order of epoch `e` is a permutation drawn from an `Rng`
//! seeded by (seed, e), and the augmentation of batch `b` of epoch `e` from an `Rng` seeded by
//! (seed, e, b). So a batch depends only on the seed and its cursor, not on how many batches
//! were drawn before or prefetched ahead, and [`LoaderState`] (three integers, serde) is all a
//! checkpoint needs for a resumed run to see exactly the batches it would have seen.
//!
//! The loader is an endless stream: after the last batch of an epoch comes the first batch of
//! the next, reshuffled. With `drop_last` an epoch has `n / batch_size` batches, all full (the
//! remainder of the permutation is skipped that epoch, and differs between epochs); without it,
//! `ceil(n / batch_size)` batches, the last one smaller when `batch_size` does not divide `n`
//! (PyTorch's `DataLoader` default).

use serde::{Deserialize, Serialize};

use super::{Augment, Dataset, Normalize};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// How a [`Loader`] makes batches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Reshuffle every epoch (training); otherwise file order every epoch (evaluation).
    pub shuffle: bool,
    /// Skip the last, incomplete batch of each epoch, so that every batch has `batch_size`
    /// images (fixed shapes for the GPU).
    pub drop_last: bool,
    /// Augmentation applied to each image of a batch.
    pub augment: Augment,
    /// Per-channel normalisation applied after the crop and flip, before cutout.
    pub normalize: Normalize,
}

impl LoaderConfig {
    /// Training defaults: shuffled, no augmentation, the last partial batch kept.
    pub fn new(batch_size: usize, normalize: Normalize) -> LoaderConfig {
        LoaderConfig { batch_size, shuffle: true, drop_last: false, augment: Augment::none(), normalize }
    }

    /// Evaluation: file order, no augmentation, the last partial batch kept (every image is
    /// seen exactly once per epoch).
    pub fn eval(batch_size: usize, normalize: Normalize) -> LoaderConfig {
        LoaderConfig { shuffle: false, ..LoaderConfig::new(batch_size, normalize) }
    }

    /// The same with `augment`.
    pub fn with_augment(mut self, augment: Augment) -> LoaderConfig {
        self.augment = augment;
        self
    }

    /// The same with `shuffle`.
    pub fn with_shuffle(mut self, shuffle: bool) -> LoaderConfig {
        self.shuffle = shuffle;
        self
    }

    /// The same with `drop_last`.
    pub fn with_drop_last(mut self, drop_last: bool) -> LoaderConfig {
        self.drop_last = drop_last;
        self
    }
}

/// Where a loader stands: the seed and the cursor of the next batch it will return. Save it in
/// a checkpoint; [`Loader::restore`] continues from it exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    /// The loader's seed: epoch orders and augmentations derive from it and the cursor.
    pub seed: u64,
    /// Epoch of the next batch, from 0.
    pub epoch: u64,
    /// Index of the next batch within the epoch.
    pub batch: usize,
}

/// One batch on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Normalised (and augmented) images, NCHW, `shape` = `[B, C, H, W]`.
    pub images: Vec<f32>,
    /// One label per image, u32 `[B]`.
    pub labels: Vec<u32>,
    /// `[B, C, H, W]` of `images`.
    pub shape: [usize; 4],
    /// The cursor this batch was drawn at.
    pub epoch: u64,
    /// Its batch index within that epoch.
    pub batch: usize,
    /// Indices of its images in the data set.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of images B.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }
}

const TAG_ORDER: u64 = 0x6f72_6465_7200_0001;
const TAG_AUGMENT: u64 = 0x6175_676d_6e74_0002;

/// SplitMix64's finaliser: a bijective mix, so distinct (seed, epoch, batch) give unrelated
/// streams.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn derived_rng(seed: u64, tag: u64, a: u64, b: u64) -> Rng {
    Rng::new(mix(mix(mix(seed ^ tag).wrapping_add(a)).wrapping_add(b)))
}

/// Makes batches from a data set; see the module documentation for order and resume.
pub struct Loader {
    data: Dataset,
    config: LoaderConfig,
    seed: u64,
    epoch: u64,
    batch: usize,
    /// The permutation of `order_epoch`.
    order: Vec<usize>,
    order_epoch: Option<u64>,
    /// The next batch, prepared ahead by [`crate::gpu::DeviceLoader`].
    prefetched: Option<Batch>,
    scratch: Vec<u8>,
}

impl Loader {
    /// A loader whose seed is drawn from the run's generator.
    pub fn new(data: Dataset, config: LoaderConfig, rng: &mut Rng) -> Result<Loader> {
        let seed = rng.next_u64();
        Loader::with_seed(data, config, seed)
    }

    /// A loader with an explicit seed, at epoch 0, batch 0.
    pub fn with_seed(data: Dataset, config: LoaderConfig, seed: u64) -> Result<Loader> {
        if config.batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        if data.n == 0 {
            return Err(Error::Config(format!("data set {:?} has no images", data.name)));
        }
        if config.drop_last && config.batch_size > data.n {
            return Err(Error::Config(format!(
                "batch size {} is bigger than the {} images of {:?}: with drop_last no batch \
                 would ever be made; use a smaller batch",
                config.batch_size, data.n, data.name
            )));
        }
        if config.normalize.channels() != data.channels {
            return Err(Error::Config(format!(
                "normalisation for {} channels on {:?}, whose images have {}",
                config.normalize.channels(),
                data.name,
                data.channels
            )));
        }
        Ok(Loader {
            data,
            config,
            seed,
            epoch: 0,
            batch: 0,
            order: Vec::new(),
            order_epoch: None,
            prefetched: None,
            scratch: Vec::new(),
        })
    }

    /// The data set it draws from.
    pub fn dataset(&self) -> &Dataset {
        &self.data
    }

    /// The settings it was built with.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Batches in one epoch: `n / batch_size` with `drop_last`, `ceil(n / batch_size)` without.
    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.data.n, self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The epoch of the next batch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The index within its epoch of the next batch.
    pub fn position(&self) -> usize {
        self.batch
    }

    /// The cursor of the next batch (for a checkpoint).
    pub fn state(&self) -> LoaderState {
        LoaderState { seed: self.seed, epoch: self.epoch, batch: self.batch }
    }

    /// Continues from a saved cursor: the next batch is the one that followed when it was
    /// saved.
    pub fn restore(&mut self, state: LoaderState) -> Result<()> {
        let per_epoch = self.batches_per_epoch();
        if state.batch >= per_epoch {
            return Err(Error::Config(format!(
                "loader state points at batch {} of epoch {}, but an epoch of {:?} has {per_epoch} \
                 batches (was the batch size or data set changed?)",
                state.batch, state.epoch, self.data.name
            )));
        }
        self.seed = state.seed;
        self.epoch = state.epoch;
        self.batch = state.batch;
        self.order_epoch = None;
        self.prefetched = None;
        Ok(())
    }

    /// Back to the first batch of epoch 0 (an evaluation pass starts there every time).
    pub fn rewind(&mut self) {
        (self.epoch, self.batch, self.prefetched) = (0, 0, None);
    }

    /// The order of the images in `epoch`: a permutation seeded by (seed, epoch) when
    /// shuffling, file order otherwise.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.data.n).collect();
        if self.config.shuffle {
            derived_rng(self.seed, TAG_ORDER, epoch, 0).shuffle(&mut order);
        }
        order
    }

    /// Builds the batch at the current cursor without moving it.
    fn build(&mut self) -> Batch {
        if self.order_epoch != Some(self.epoch) {
            self.order = self.epoch_order(self.epoch);
            self.order_epoch = Some(self.epoch);
        }
        let b = self.config.batch_size;
        let start = self.batch * b;
        let end = (start + b).min(self.data.n);
        let indices = self.order[start..end].to_vec();
        let shape3 = self.data.image_shape();
        let len = self.data.image_len();
        let mut images = vec![0f32; indices.len() * len];
        let mut labels = Vec::with_capacity(indices.len());
        let mut rng = derived_rng(self.seed, TAG_AUGMENT, self.epoch, self.batch as u64);
        for (k, &i) in indices.iter().enumerate() {
            let out = &mut images[k * len..(k + 1) * len];
            let src = self.data.image(i);
            if self.config.augment.is_none() {
                self.config.normalize.apply(src, shape3, out);
            } else {
                self.config.augment.apply(src, shape3, &self.config.normalize, &mut rng, &mut self.scratch, out);
            }
            labels.push(self.data.labels[i]);
        }
        Batch {
            shape: [indices.len(), shape3[0], shape3[1], shape3[2]],
            images,
            labels,
            epoch: self.epoch,
            batch: self.batch,
            indices,
        }
    }

    fn advance(&mut self) {
        self.batch += 1;
        if self.batch >= self.batches_per_epoch() {
            self.batch = 0;
            self.epoch += 1;
        }
    }

    /// The next batch on the host (the prefetched one if [`crate::gpu::DeviceLoader`] prepared it).
    pub fn next_batch(&mut self) -> Batch {
        let batch = match self.prefetched.take() {
            Some(b) => b,
            None => self.build(),
        };
        self.advance();
        batch
    }

    /// Prepares the next batch on the host now (it is returned by the next call to
    /// [`Loader::next_batch`] or [`crate::gpu::DeviceLoader`]); does nothing if one is ready.
    pub fn prefetch(&mut self) {
        if self.prefetched.is_none() {
            self.prefetched = Some(self.build());
        }
    }
}

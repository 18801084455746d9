//! The embedded default data set: a balanced real subset of Fashion-MNIST compiled into the
//! crate, so that a search runs with no flags, no files and no network (`cargo run --release`
//! on a fresh machine, or the web page).
//!
//! 600 training and 100 test images of each of the 10 classes (6000 + 1000), 28x28 grey. They
//! are the first images of each class, in file order, of the official Fashion-MNIST training and
//! test files (as packaged by Debian's `dataset-fashion-mnist`); `data/make_embedded.py` made
//! them and `data/README.md` gives the source checksums. Fashion-MNIST is © 2017 Zalando SE,
//! MIT licence (`data/LICENSE-fashion-mnist`).

use super::idx::{dataset_from_idx_bytes, FASHION_MNIST_CLASSES};
use super::{names, Dataset};
use crate::error::Result;

const TRAIN_IMAGES: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/embedded/train-images-idx3-ubyte.gz"));
const TRAIN_LABELS: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/embedded/train-labels-idx1-ubyte.gz"));
const TEST_IMAGES: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/embedded/t10k-images-idx3-ubyte.gz"));
const TEST_LABELS: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/embedded/t10k-labels-idx1-ubyte.gz"));

/// Images per class in the embedded training split.
pub const EMBEDDED_TRAIN_PER_CLASS: usize = 600;
/// Images per class in the embedded test split.
pub const EMBEDDED_TEST_PER_CLASS: usize = 100;

impl Dataset {
    /// The embedded training split: 6000 Fashion-MNIST images, 600 per class, 1x28x28.
    /// Decompressed on each call (a few tens of milliseconds); keep the result.
    pub fn embedded_train() -> Result<Dataset> {
        dataset_from_idx_bytes(
            "embedded-fashion-mnist-train",
            TRAIN_IMAGES,
            "embedded:train-images-idx3-ubyte.gz",
            TRAIN_LABELS,
            "embedded:train-labels-idx1-ubyte.gz",
            names(&FASHION_MNIST_CLASSES),
        )
    }

    /// The embedded test split: 1000 images of the official Fashion-MNIST test set, 100 per
    /// class.
    pub fn embedded_test() -> Result<Dataset> {
        dataset_from_idx_bytes(
            "embedded-fashion-mnist-test",
            TEST_IMAGES,
            "embedded:t10k-images-idx3-ubyte.gz",
            TEST_LABELS,
            "embedded:t10k-labels-idx1-ubyte.gz",
            names(&FASHION_MNIST_CLASSES),
        )
    }

    /// Both embedded splits, `(train, test)`.
    pub fn embedded() -> Result<(Dataset, Dataset)> {
        Ok((Dataset::embedded_train()?, Dataset::embedded_test()?))
    }
}

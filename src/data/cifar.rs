//! CIFAR-10 and CIFAR-100 from the official binary files ("binary version" archives
//! `cifar-10-binary.tar.gz` and `cifar-100-binary.tar.gz` from the CIFAR site).
//!
//! CIFAR-10: `data_batch_1.bin` .. `data_batch_5.bin` (train, 10000 records each) and
//! `test_batch.bin` (10000 records); a record is 1 label byte and 3072 pixel bytes (1024 red,
//! 1024 green, 1024 blue, each plane row-major 32x32), which is already CHW.
//! CIFAR-100: `train.bin` (50000 records) and `test.bin` (10000); a record is a coarse label
//! byte, a fine label byte and the same 3072 pixel bytes.
//!
//! Sizes are checked before anything is used: a file of the wrong length, a wrong record count
//! or a label out of range is an [`Error::File`] that names the file and says what was expected,
//! because a silently misparsed data set only shows up hours later as a bad accuracy.

use std::path::{Path, PathBuf};

use super::{names, Dataset, Split};
use crate::error::{Error, Result};

/// Pixel bytes in one CIFAR image (3 x 32 x 32).
pub const CIFAR_IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes in one CIFAR-10 record: a label byte and the pixels.
pub const CIFAR10_RECORD: usize = 1 + CIFAR_IMAGE_BYTES;
/// Bytes in one CIFAR-100 record: coarse and fine label bytes and the pixels.
pub const CIFAR100_RECORD: usize = 2 + CIFAR_IMAGE_BYTES;

/// CIFAR-10 class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// CIFAR-100 fine class names, in label order (the `fine_label_names.txt` of the archive).
pub const CIFAR100_FINE_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// CIFAR-100 coarse (superclass) names, in label order (`coarse_label_names.txt`).
pub const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// Which of CIFAR-100's two labels to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cifar100Labels {
    /// The 100 fine classes (what papers report, the default).
    #[default]
    Fine,
    /// The 20 superclasses.
    Coarse,
}

fn file_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::File { path: path.display().to_string(), msg: msg.into() }
}

/// Reads a whole file, turning an I/O failure into an error that names the file and `expected`.
pub(crate) fn read_file(path: &Path, expected: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| file_err(path, format!("cannot read it ({e}); expected {expected}")))
}

/// The directory that holds `marker`: `dir` itself, or the folder the official archive
/// extracts to (`cifar-10-batches-bin`, `cifar-100-binary`) inside it, so that users can point
/// at either.
fn resolve_dir(dir: &Path, marker: &str, archive_dir: &str, what: &str) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(file_err(dir, format!("not a directory; expected a directory holding {what}")));
    }
    let nested = dir.join(archive_dir);
    if !dir.join(marker).exists() && nested.join(marker).exists() {
        return Ok(nested);
    }
    Ok(dir.to_path_buf())
}

/// A CIFAR record layout: `label_bytes` label bytes + 3072 pixels, the label used being the
/// byte at `label_index`; `what` names the format in errors.
struct Layout {
    label_bytes: usize,
    label_index: usize,
    num_classes: usize,
    what: &'static str,
}

/// Appends the records of `bytes` to `images`/`labels`; returns how many there were.
fn parse_records(
    path: &Path,
    bytes: &[u8],
    layout: &Layout,
    images: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<usize> {
    let Layout { label_bytes, label_index, num_classes, what } = *layout;
    let record = label_bytes + CIFAR_IMAGE_BYTES;
    if bytes.is_empty() {
        return Err(file_err(path, format!("the file is empty; expected {what} records of {record} bytes")));
    }
    if !bytes.len().is_multiple_of(record) {
        let mut msg = format!(
            "expected a multiple of {record} bytes ({what} records: {label_bytes} label byte{} + \
             {CIFAR_IMAGE_BYTES} pixel bytes), got {}",
            if label_bytes == 1 { "" } else { "s" },
            bytes.len()
        );
        let other = if label_bytes == 1 { CIFAR100_RECORD } else { CIFAR10_RECORD };
        if bytes.len().is_multiple_of(other) {
            msg.push_str(&format!(
                "; the length is a multiple of {other}: is this a {} file?",
                if label_bytes == 1 { "CIFAR-100" } else { "CIFAR-10" }
            ));
        } else {
            msg.push_str(" (a truncated or foreign file)");
        }
        return Err(file_err(path, msg));
    }
    let count = bytes.len() / record;
    images.reserve(count * CIFAR_IMAGE_BYTES);
    labels.reserve(count);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[label_index] as usize;
        if label >= num_classes {
            return Err(file_err(
                path,
                format!(
                    "record {i} has label {label}, expected below {num_classes} ({what}); \
                     the file is corrupt or of another format"
                ),
            ));
        }
        labels.push(label as u32);
        images.extend_from_slice(&rec[label_bytes..]);
    }
    Ok(count)
}

fn read_cifar10_into(path: &Path, images: &mut Vec<u8>, labels: &mut Vec<u32>) -> Result<usize> {
    let bytes = read_file(path, "a CIFAR-10 binary batch file (from cifar-10-binary.tar.gz)")?;
    let layout = Layout { label_bytes: 1, label_index: 0, num_classes: 10, what: "CIFAR-10" };
    parse_records(path, &bytes, &layout, images, labels)
}

fn read_cifar100_into(
    path: &Path,
    which: Cifar100Labels,
    images: &mut Vec<u8>,
    labels: &mut Vec<u32>,
) -> Result<usize> {
    let bytes = read_file(path, "a CIFAR-100 binary file (from cifar-100-binary.tar.gz)")?;
    let (label_index, num_classes) = match which {
        Cifar100Labels::Coarse => (0, 20),
        Cifar100Labels::Fine => (1, 100),
    };
    let layout = Layout { label_bytes: 2, label_index, num_classes, what: "CIFAR-100" };
    parse_records(path, &bytes, &layout, images, labels)
}

fn expect_count(path: &Path, got: usize, expected: usize, what: &str) -> Result<()> {
    if got != expected {
        return Err(file_err(
            path,
            format!("expected {expected} records in an official {what} file, got {got} (a truncated file?)"),
        ));
    }
    Ok(())
}

fn cifar10_dataset(name: String, images: Vec<u8>, labels: Vec<u32>) -> Result<Dataset> {
    Dataset::new(name, images, labels, 3, 32, 32, 10, names(&CIFAR10_CLASSES))
}

fn cifar100_dataset(name: String, images: Vec<u8>, labels: Vec<u32>, which: Cifar100Labels) -> Result<Dataset> {
    let classes = match which {
        Cifar100Labels::Fine => names(&CIFAR100_FINE_CLASSES),
        Cifar100Labels::Coarse => names(&CIFAR100_COARSE_CLASSES),
    };
    Dataset::new(name, images, labels, 3, 32, 32, classes.len(), classes)
}

impl Dataset {
    /// CIFAR-10 from the official binary files in `dir` (or in its `cifar-10-batches-bin`
    /// folder): train is `data_batch_1.bin` .. `data_batch_5.bin` in order (50000 images),
    /// test is `test_batch.bin` (10000). Each file must hold exactly 10000 records.
    pub fn cifar10(dir: impl AsRef<Path>, split: Split) -> Result<Dataset> {
        let dir = resolve_dir(
            dir.as_ref(),
            "test_batch.bin",
            "cifar-10-batches-bin",
            "the CIFAR-10 binary files data_batch_1.bin .. data_batch_5.bin and test_batch.bin",
        )?;
        let files: Vec<String> = match split {
            Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            Split::Test => vec!["test_batch.bin".to_string()],
        };
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for file in files {
            let path = dir.join(file);
            let count = read_cifar10_into(&path, &mut images, &mut labels)?;
            expect_count(&path, count, 10000, "CIFAR-10 batch")?;
        }
        let name = match split {
            Split::Train => "cifar10-train",
            Split::Test => "cifar10-test",
        };
        cifar10_dataset(name.into(), images, labels)
    }

    /// One CIFAR-10 binary file with any number of records (a batch file, or a subset written
    /// in the same format).
    pub fn cifar10_file(path: impl AsRef<Path>) -> Result<Dataset> {
        let path = path.as_ref();
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        read_cifar10_into(path, &mut images, &mut labels)?;
        cifar10_dataset(format!("cifar10:{}", path.display()), images, labels)
    }

    /// CIFAR-100 from the official binary files in `dir` (or in its `cifar-100-binary`
    /// folder): `train.bin` (50000 records) or `test.bin` (10000), with fine (100 classes) or
    /// coarse (20) labels.
    pub fn cifar100(dir: impl AsRef<Path>, split: Split, labels: Cifar100Labels) -> Result<Dataset> {
        let dir = resolve_dir(
            dir.as_ref(),
            "test.bin",
            "cifar-100-binary",
            "the CIFAR-100 binary files train.bin and test.bin",
        )?;
        let (file, expected, name) = match split {
            Split::Train => ("train.bin", 50000, "cifar100-train"),
            Split::Test => ("test.bin", 10000, "cifar100-test"),
        };
        let path = dir.join(file);
        let (mut images, mut label_vec) = (Vec::new(), Vec::new());
        let count = read_cifar100_into(&path, labels, &mut images, &mut label_vec)?;
        expect_count(&path, count, expected, "CIFAR-100")?;
        cifar100_dataset(name.into(), images, label_vec, labels)
    }

    /// One CIFAR-100 binary file with any number of records.
    pub fn cifar100_file(path: impl AsRef<Path>, labels: Cifar100Labels) -> Result<Dataset> {
        let path = path.as_ref();
        let (mut images, mut label_vec) = (Vec::new(), Vec::new());
        read_cifar100_into(path, labels, &mut images, &mut label_vec)?;
        cifar100_dataset(format!("cifar100:{}", path.display()), images, label_vec, labels)
    }
}

//! IDX files (MNIST, Fashion-MNIST), raw or gzipped.
//!
//! An IDX file is a big-endian header (two zero bytes, a type byte, the number of dimensions,
//! then one `u32` per dimension) followed by the data. Images are unsigned bytes with three
//! dimensions `[n, rows, cols]` (magic number 2051 = `0x00000803`); labels are unsigned bytes
//! with one dimension `[n]` (magic 2049 = `0x00000801`). Gzip is recognised by its magic bytes
//! (`0x1f 0x8b`), not by the file name, so renamed files still load.
//!
//! Fashion-MNIST (MIT licence) is what Debian's `dataset-fashion-mnist` installs under
//! `/usr/share/datasets/fashion-mnist/`; MNIST comes in the same format.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::cifar::read_file;
use super::{names, Dataset, Split};
use crate::error::{Error, Result};

/// Magic number of an IDX file of unsigned-byte images with 3 dimensions.
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels with 1 dimension.
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Fashion-MNIST class names, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// MNIST class names: the digits.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

fn err(source: &str, msg: impl Into<String>) -> Error {
    Error::File { path: source.to_string(), msg: msg.into() }
}

/// The bytes, gunzipped when they start with the gzip magic bytes.
pub fn maybe_gunzip<'a>(bytes: &'a [u8], source: &str) -> Result<Cow<'a, [u8]>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| err(source, format!("gzip data is corrupt or truncated: {e}")))?;
        Ok(Cow::Owned(out))
    } else {
        Ok(Cow::Borrowed(bytes))
    }
}

/// Checks the header of an (uncompressed) IDX file of `ndims` dimensions with magic `magic`
/// and that the data that follows has exactly the size the dimensions say; returns the
/// dimensions and the data.
fn parse_idx<'a>(bytes: &'a [u8], source: &str, magic: u32, what: &str) -> Result<(Vec<usize>, &'a [u8])> {
    let ndims = (magic & 0xff) as usize;
    if bytes.len() < 4 {
        return Err(err(source, format!("{} bytes is too short for an IDX header; expected {what}", bytes.len())));
    }
    let got = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if got != magic {
        return Err(err(
            source,
            format!(
                "IDX magic number is {got} (0x{got:08x}), expected {magic} (0x{magic:08x}) for {what}; \
                 this is not an IDX {what} file"
            ),
        ));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(err(source, format!("the IDX header is truncated ({} bytes, expected {header})", bytes.len())));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let data = &bytes[header..];
    if expected != Some(data.len()) {
        return Err(err(
            source,
            format!(
                "IDX dimensions {dims:?} need {} data bytes after the {header}-byte header, got {} \
                 (a truncated file?)",
                expected.map_or("more than usize::MAX".to_string(), |e| e.to_string()),
                data.len()
            ),
        ));
    }
    Ok((dims, data))
}

/// Builds a data set from the contents of an IDX image file and an IDX label file (each raw or
/// gzipped). `images_source` and `labels_source` name them in errors; labels must be below
/// `class_names.len()`.
pub fn dataset_from_idx_bytes(
    name: &str,
    images: &[u8],
    images_source: &str,
    labels: &[u8],
    labels_source: &str,
    class_names: Vec<String>,
) -> Result<Dataset> {
    let images = maybe_gunzip(images, images_source)?;
    let labels = maybe_gunzip(labels, labels_source)?;
    let (idims, pixels) = parse_idx(&images, images_source, IDX_IMAGES_MAGIC, "images")?;
    let (ldims, label_bytes) = parse_idx(&labels, labels_source, IDX_LABELS_MAGIC, "labels")?;
    let (n, rows, cols) = (idims[0], idims[1], idims[2]);
    if rows == 0 || cols == 0 {
        return Err(err(images_source, format!("IDX images of {rows}x{cols} pixels")));
    }
    if ldims[0] != n {
        return Err(err(
            labels_source,
            format!("{} labels, but the image file {images_source} holds {n} images", ldims[0]),
        ));
    }
    let classes = class_names.len();
    if let Some((i, &l)) = label_bytes.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(err(labels_source, format!("label {l} of image {i} is not below the {classes} classes")));
    }
    let labels: Vec<u32> = label_bytes.iter().map(|&l| l as u32).collect();
    Dataset::new(name, pixels.to_vec(), labels, 1, rows, cols, classes, class_names)
}

/// The first of `stem` + each suffix that exists in `dir`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let candidates: Vec<String> = [
        format!("{stem}-ubyte"),
        format!("{stem}-ubyte.gz"),
        // The MNIST site's files unpack on some systems as `train-images.idx3-ubyte`.
        stem.replacen("-idx", ".idx", 1) + "-ubyte",
        stem.replacen("-idx", ".idx", 1) + "-ubyte.gz",
    ]
    .into();
    for c in &candidates {
        let p = dir.join(c);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::File {
        path: dir.display().to_string(),
        msg: format!("none of {} found (IDX files, raw or gzipped)", candidates.join(", ")),
    })
}

impl Dataset {
    /// A data set from an IDX image file and an IDX label file, each raw or gzipped.
    pub fn idx_files(
        images: impl AsRef<Path>,
        labels: impl AsRef<Path>,
        name: &str,
        class_names: Vec<String>,
    ) -> Result<Dataset> {
        let (ip, lp) = (images.as_ref(), labels.as_ref());
        let ib = read_file(ip, "an IDX image file (e.g. train-images-idx3-ubyte[.gz])")?;
        let lb = read_file(lp, "an IDX label file (e.g. train-labels-idx1-ubyte[.gz])")?;
        dataset_from_idx_bytes(name, &ib, &ip.display().to_string(), &lb, &lp.display().to_string(), class_names)
    }

    /// The split `split` of an MNIST-layout directory: `train-images-idx3-ubyte[.gz]` and
    /// `train-labels-idx1-ubyte[.gz]`, or `t10k-*` for the test split.
    pub fn idx_dir(dir: impl AsRef<Path>, split: Split, name: &str, class_names: Vec<String>) -> Result<Dataset> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::File {
                path: dir.display().to_string(),
                msg: "not a directory; expected a directory holding IDX files \
                      (train-images-idx3-ubyte[.gz], ...)"
                    .into(),
            });
        }
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let images = find(dir, &format!("{prefix}-images-idx3"))?;
        let labels = find(dir, &format!("{prefix}-labels-idx1"))?;
        let part = match split {
            Split::Train => "train",
            Split::Test => "test",
        };
        Dataset::idx_files(images, labels, &format!("{name}-{part}"), class_names)
    }

    /// MNIST from a directory of IDX files.
    pub fn mnist(dir: impl AsRef<Path>, split: Split) -> Result<Dataset> {
        Dataset::idx_dir(dir, split, "mnist", names(&MNIST_CLASSES))
    }

    /// Fashion-MNIST from a directory of IDX files, e.g. `/usr/share/datasets/fashion-mnist`
    /// (Debian's `dataset-fashion-mnist`).
    pub fn fashion_mnist(dir: impl AsRef<Path>, split: Split) -> Result<Dataset> {
        Dataset::idx_dir(dir, split, "fashion-mnist", names(&FASHION_MNIST_CLASSES))
    }
}

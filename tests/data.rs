//! The data layer: file formats (CIFAR-10/100, IDX), the embedded set, normalisation, split,
//! augmentation, the loader's order and resume, and the upload to the GPU.

use std::io::Write;
use std::path::PathBuf;

use wgpu_nas::data::augment::{crop_at, cutout_at, flip_horizontal};
use wgpu_nas::data::cifar::CIFAR100_FINE_CLASSES;
use wgpu_nas::data::{Augment, Batch, Cifar100Labels, Dataset, Loader, LoaderConfig, LoaderState, Normalize, Split};
use wgpu_nas::rng::Rng;
use wgpu_nas::Error;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures_data").join(name)
}

/// A fresh, empty directory for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-nas-data-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn file_error(r: Result<Dataset, Error>) -> (String, String) {
    match r {
        Err(Error::File { path, msg }) => (path, msg),
        other => panic!("expected a file error, got {other:?}"),
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01B3))
}

/// Values printed by tests/fixtures_data/make_cifar10_fixture.py from the foolbox PNGs.
#[test]
fn cifar10_fixture_matches_the_pngs() {
    let d = Dataset::cifar10_file(fixture("cifar10_test_20.bin")).unwrap();
    assert_eq!((d.n, d.channels, d.height, d.width, d.num_classes), (20, 3, 32, 32, 10));
    assert_eq!(d.labels, vec![3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]);
    assert_eq!(d.class_names[3], "cat");
    assert_eq!(fnv1a64(&d.images), 0xaa14_9aac_1496_38f1);
    assert_eq!(d.images.iter().map(|&p| p as u64).sum::<u64>(), 7_387_458);
    let px = |i: usize, c: usize, y: usize, x: usize| d.image(i)[c * 1024 + y * 32 + x];
    assert_eq!(px(0, 0, 0, 0), 158);
    assert_eq!(px(0, 2, 31, 31), 110);
    assert_eq!(px(1, 1, 16, 5), 123);
    assert_eq!(px(7, 0, 10, 20), 96);
    assert_eq!(px(19, 2, 3, 29), 87);

    // Through the directory loader: 20 records are not an official 10000-record test batch.
    let dir = temp_dir("cifar10dir");
    std::fs::copy(fixture("cifar10_test_20.bin"), dir.join("test_batch.bin")).unwrap();
    let (path, msg) = file_error(Dataset::cifar10(&dir, Split::Test));
    assert!(path.ends_with("test_batch.bin"), "{path}");
    assert!(msg.contains("expected 10000 records") && msg.contains("got 20"), "{msg}");
    // A missing training batch names the file.
    let (path, msg) = file_error(Dataset::cifar10(&dir, Split::Train));
    assert!(path.ends_with("data_batch_1.bin"), "{path}");
    assert!(msg.contains("cannot read") && msg.contains("CIFAR-10"), "{msg}");
    // Not a directory.
    let (_, msg) = file_error(Dataset::cifar10(dir.join("nope"), Split::Test));
    assert!(msg.contains("not a directory"), "{msg}");
}

#[test]
fn cifar_truncated_and_foreign_files_are_clear_errors() {
    let dir = temp_dir("cifarbad");
    let bytes = std::fs::read(fixture("cifar10_test_20.bin")).unwrap();
    let truncated = dir.join("truncated.bin");
    std::fs::write(&truncated, &bytes[..1000]).unwrap();
    let (path, msg) = file_error(Dataset::cifar10_file(&truncated));
    assert!(path.ends_with("truncated.bin"));
    assert!(msg.contains("expected a multiple of 3073 bytes") && msg.contains("got 1000"), "{msg}");

    // A CIFAR-100 file read as CIFAR-10 (3 records of 3074 bytes = 9222, not a multiple of 3073).
    let c100 = dir.join("c100.bin");
    std::fs::write(&c100, vec![1u8; 3 * 3074]).unwrap();
    let (_, msg) = file_error(Dataset::cifar10_file(&c100));
    assert!(msg.contains("3073") && msg.contains("CIFAR-100"), "{msg}");
    // ... and a CIFAR-10 file read as CIFAR-100.
    let (_, msg) = file_error(Dataset::cifar100_file(fixture("cifar10_test_20.bin"), Cifar100Labels::Fine));
    assert!(msg.contains("expected a multiple of 3074 bytes") && msg.contains("CIFAR-10 file"), "{msg}");

    // Labels out of range.
    let mut bad = bytes.clone();
    bad[3073 * 2] = 10;
    let badp = dir.join("badlabel.bin");
    std::fs::write(&badp, &bad).unwrap();
    let (_, msg) = file_error(Dataset::cifar10_file(&badp));
    assert!(msg.contains("record 2 has label 10"), "{msg}");

    let empty = dir.join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let (_, msg) = file_error(Dataset::cifar10_file(&empty));
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn cifar100_label_layout() {
    let dir = temp_dir("cifar100");
    // Three records: (coarse, fine) labels and a pixel pattern that identifies the record.
    let recs = [(4u8, 0u8), (19, 99), (11, 49)];
    let mut bytes = Vec::new();
    for (i, &(coarse, fine)) in recs.iter().enumerate() {
        bytes.push(coarse);
        bytes.push(fine);
        bytes.extend((0..3072).map(|p| ((p + 7 * i) % 251) as u8));
    }
    let path = dir.join("test.bin");
    std::fs::write(&path, &bytes).unwrap();

    let fine = Dataset::cifar100_file(&path, Cifar100Labels::Fine).unwrap();
    assert_eq!(fine.labels, vec![0, 99, 49]);
    assert_eq!((fine.num_classes, fine.class_names[49].as_str()), (100, "mountain"));
    let coarse = Dataset::cifar100_file(&path, Cifar100Labels::Coarse).unwrap();
    assert_eq!(coarse.labels, vec![4, 19, 11]);
    assert_eq!(coarse.num_classes, 20);
    for i in 0..3 {
        let expect: Vec<u8> = (0..3072).map(|p| ((p + 7 * i) % 251) as u8).collect();
        assert_eq!(fine.image(i), &expect[..]);
    }
    assert_eq!(CIFAR100_FINE_CLASSES.len(), 100);

    // Fine label 100 is out of range; coarse 20 likewise.
    let mut bad = bytes.clone();
    bad[1] = 100;
    bad[0] = 20;
    std::fs::write(&path, &bad).unwrap();
    let (_, msg) = file_error(Dataset::cifar100_file(&path, Cifar100Labels::Fine));
    assert!(msg.contains("record 0 has label 100") && msg.contains("below 100"), "{msg}");
    let (_, msg) = file_error(Dataset::cifar100_file(&path, Cifar100Labels::Coarse));
    assert!(msg.contains("record 0 has label 20") && msg.contains("below 20"), "{msg}");
    // The directory loader wants 10000 records in test.bin.
    let (_, msg) = file_error(Dataset::cifar100(&dir, Split::Test, Cifar100Labels::Fine));
    assert!(msg.contains("record 0 has label 100"), "{msg}");
}

fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = 2051u32.to_be_bytes().to_vec();
    for d in [n, rows, cols] {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = 2049u32.to_be_bytes().to_vec();
    v.extend((labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_raw_and_gzip() {
    let dir = temp_dir("idx");
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 3) as u8).collect();
    let labels = [7u8, 0, 9];
    // Train raw, test gzipped (under the same kind of name: detection is by magic bytes).
    std::fs::write(dir.join("train-images-idx3-ubyte"), idx_images(3, 4, 5, &pixels)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx_labels(&labels)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gzip(&idx_images(3, 4, 5, &pixels))).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gzip(&idx_labels(&labels))).unwrap();
    for split in [Split::Train, Split::Test] {
        let d = Dataset::mnist(&dir, split).unwrap();
        assert_eq!((d.n, d.channels, d.height, d.width, d.num_classes), (3, 1, 4, 5, 10));
        assert_eq!(d.images, pixels);
        assert_eq!(d.labels, vec![7, 0, 9]);
    }
    let f = Dataset::fashion_mnist(&dir, Split::Test).unwrap();
    assert_eq!(f.class_names[9], "Ankle boot");
    assert_eq!(f.name, "fashion-mnist-test");

    // Bad magic: labels given as images, and the other way round.
    let swapped = Dataset::idx_files(
        dir.join("train-labels-idx1-ubyte"),
        dir.join("train-images-idx3-ubyte"),
        "x",
        vec!["a".into(); 10],
    );
    let (path, msg) = file_error(swapped);
    assert!(path.ends_with("train-labels-idx1-ubyte"), "{path}");
    assert!(msg.contains("magic number is 2049") && msg.contains("expected 2051"), "{msg}");

    // Counts disagreeing.
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx_labels(&[1, 2])).unwrap();
    let (_, msg) = file_error(Dataset::mnist(&dir, Split::Train));
    assert!(msg.contains("2 labels") && msg.contains("holds 3 images"), "{msg}");

    // Truncated image data.
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx_labels(&labels)).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte"), &idx_images(3, 4, 5, &pixels)[..40]).unwrap();
    let (_, msg) = file_error(Dataset::mnist(&dir, Split::Train));
    assert!(msg.contains("[3, 4, 5]") && msg.contains("need 60 data bytes"), "{msg}");

    // Truncated gzip stream.
    let gz = gzip(&idx_images(3, 4, 5, &pixels));
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), &gz[..gz.len() / 2]).unwrap();
    let (_, msg) = file_error(Dataset::mnist(&dir, Split::Test));
    assert!(msg.contains("gzip"), "{msg}");

    // Label out of range, and a missing file.
    std::fs::write(dir.join("train-images-idx3-ubyte"), idx_images(3, 4, 5, &pixels)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx_labels(&[1, 10, 2])).unwrap();
    let (_, msg) = file_error(Dataset::mnist(&dir, Split::Train));
    assert!(msg.contains("label 10 of image 1"), "{msg}");
    let empty = temp_dir("idxempty");
    let (_, msg) = file_error(Dataset::mnist(&empty, Split::Train));
    assert!(msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
}

#[test]
fn embedded_set_is_balanced_fashion_mnist() {
    let (train, test) = Dataset::embedded().unwrap();
    assert_eq!((train.n, test.n), (6000, 1000));
    for d in [&train, &test] {
        assert_eq!((d.channels, d.height, d.width, d.num_classes), (1, 28, 28, 10));
        assert_eq!(d.images.len(), d.n * 784);
        assert_eq!(d.class_names[0], "T-shirt/top");
        // Real images: dark background, bright garments, the full byte range used.
        assert_eq!(*d.images.iter().min().unwrap(), 0);
        assert_eq!(*d.images.iter().max().unwrap(), 255);
        let mean = d.images.iter().map(|&p| p as f64).sum::<f64>() / d.images.len() as f64;
        assert!((60.0..95.0).contains(&mean), "mean pixel {mean}");
    }
    assert_eq!(train.class_counts(), vec![600; 10]);
    assert_eq!(test.class_counts(), vec![100; 10]);
    // The first training image of Fashion-MNIST is an ankle boot, the first test one too.
    assert_eq!((train.labels[0], test.labels[0]), (9, 9));
}

#[test]
fn normalisation_from_training_statistics() {
    // Two 1x2x2 images with channel values 0, 51, 102, 255 and their mirror.
    let d =
        Dataset::new("n", vec![0, 51, 102, 255, 255, 102, 51, 0], vec![0, 1], 1, 2, 2, 2, vec!["a".into(), "b".into()])
            .unwrap();
    let norm = Normalize::fit(&d);
    let vals = [0.0f64, 0.2, 0.4, 1.0];
    let m = vals.iter().sum::<f64>() / 4.0;
    let s = (vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 4.0).sqrt();
    assert!((norm.mean[0] as f64 - m).abs() < 1e-6 && (norm.std[0] as f64 - s).abs() < 1e-6);
    let mut out = [0f32; 4];
    norm.apply(d.image(0), [1, 2, 2], &mut out);
    let mean_out = out.iter().sum::<f32>() / 4.0;
    let var_out = out.iter().map(|v| (v - mean_out) * (v - mean_out)).sum::<f32>() / 4.0;
    assert!(mean_out.abs() < 1e-5 && (var_out - 1.0).abs() < 1e-5, "{out:?}");
    // Fitted on a real set: zero mean, unit variance per channel over the set.
    let cifar = Dataset::cifar10_file(fixture("cifar10_test_20.bin")).unwrap();
    let n3 = Normalize::fit(&cifar);
    assert_eq!(n3.channels(), 3);
    assert!(n3.std.iter().all(|&s| s > 0.1 && s < 0.5), "{n3:?}");
    assert!(Normalize::new(vec![0.5], vec![0.0]).is_err());
    assert!(Normalize::new(vec![0.5, 0.5], vec![0.2]).is_err());
}

#[test]
fn split_by_portion() {
    let train = Dataset::embedded_test().unwrap(); // 1000 images, fast
                                                   // Image i starts with the bytes (i % 256, i / 256): unique content, so disjointness is
                                                   // checked on what the halves hold.
    let tag: Vec<u8> =
        (0..train.n).flat_map(|i| (0..784).map(move |p| [(i % 256) as u8, (i / 256) as u8, 0][p.min(2)])).collect();
    let d = Dataset::new("t", tag, train.labels.clone(), 1, 28, 28, 10, train.class_names.clone()).unwrap();
    let (a, b) = d.split(0.5, &mut Rng::new(3)).unwrap();
    assert_eq!((a.n, b.n), (500, 500));
    let key = |ds: &Dataset, i: usize| ds.image(i).to_vec();
    let mut all: Vec<Vec<u8>> = (0..a.n).map(|i| key(&a, i)).chain((0..b.n).map(|i| key(&b, i))).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 1000, "the two halves overlap");
    // Seeded: the same seed gives the same split, another seed another one.
    let (a2, _) = d.split(0.5, &mut Rng::new(3)).unwrap();
    assert_eq!(a.images, a2.images);
    let (a3, _) = d.split(0.5, &mut Rng::new(4)).unwrap();
    assert_ne!(a.images, a3.images);
    // A shuffled split of a balanced set stays roughly balanced.
    assert!(a.class_counts().iter().all(|&c| (30..=70).contains(&c)), "{:?}", a.class_counts());
    // Other portions use floor(portion * n); the file-order variant takes a prefix.
    let (a, b) = d.split(0.7, &mut Rng::new(1)).unwrap();
    assert_eq!((a.n, b.n), (700, 300));
    let (a, b) = d.split_in_order(0.25).unwrap();
    assert_eq!((a.n, b.n), (250, 750));
    assert_eq!(a.image(0), d.image(0));
    assert_eq!(b.image(0), d.image(250));
    assert!(d.split(0.0, &mut Rng::new(1)).is_err());
    assert!(d.split(1.0, &mut Rng::new(1)).is_err());
    assert!(d.split(0.0001, &mut Rng::new(1)).is_err());
}

/// A 2x5x6 image whose pixel (c, y, x) is 100c + 10y + x + 1 (never 0, so padding shows).
fn hand_image() -> (Vec<u8>, [usize; 3]) {
    let shape = [2, 5, 6];
    let img =
        (0..2).flat_map(|c| (0..5).flat_map(move |y| (0..6).map(move |x| (100 * c + 10 * y + x + 1) as u8))).collect();
    (img, shape)
}

fn at(img: &[u8], [_, h, w]: [usize; 3], c: usize, y: usize, x: usize) -> u8 {
    img[c * h * w + y * w + x]
}

#[test]
fn crop_flip_cutout_on_a_hand_made_image() {
    let (img, shape) = hand_image();
    let [c, h, w] = shape;
    let mut out = vec![0u8; img.len()];

    // Offset (pad, pad) is the identity; (0, 0) shifts the image down-right by pad.
    crop_at(&img, shape, 4, 4, 4, &mut out);
    assert_eq!(out, img);
    crop_at(&img, shape, 2, 0, 0, &mut out);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let expect = if y < 2 || x < 2 { 0 } else { at(&img, shape, ch, y - 2, x - 2) };
                assert_eq!(at(&out, shape, ch, y, x), expect, "({ch},{y},{x})");
            }
        }
    }
    // (2*pad, 2*pad - 1): up-left by pad, left by pad - 1.
    crop_at(&img, shape, 2, 4, 3, &mut out);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let (sy, sx) = (y + 2, x + 1);
                let expect = if sy >= h || sx >= w { 0 } else { at(&img, shape, ch, sy, sx) };
                assert_eq!(at(&out, shape, ch, y, x), expect, "({ch},{y},{x})");
            }
        }
    }

    let mut flipped = img.clone();
    flip_horizontal(&mut flipped, shape);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                assert_eq!(at(&flipped, shape, ch, y, x), at(&img, shape, ch, y, w - 1 - x));
            }
        }
    }

    // Cutout length 4 at (1, 5): rows 0..3 (clipped at the top), columns 3..6 (clipped right).
    let mut f = vec![1.0f32; img.len()];
    cutout_at(&mut f, shape, 1, 5, 4);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let zero = y < 3 && (3..6).contains(&x);
                assert_eq!(f[ch * h * w + y * w + x], if zero { 0.0 } else { 1.0 }, "({ch},{y},{x})");
            }
        }
    }
    // Cutout 16 on a 5x6 image blanks it all.
    let mut f = vec![1.0f32; img.len()];
    cutout_at(&mut f, shape, 2, 3, 16);
    assert!(f.iter().all(|&v| v == 0.0));
}

#[test]
fn random_augmentation_is_seeded_and_within_spec() {
    let (img, shape) = hand_image();
    let [c, h, w] = shape;
    let norm = Normalize::identity(c);
    let aug = Augment { crop_padding: 2, flip: true, cutout: 2 };
    let run = |seed: u64| {
        let mut rng = Rng::new(seed);
        let mut scratch = Vec::new();
        let mut out = vec![0f32; img.len()];
        aug.apply(&img, shape, &norm, &mut rng, &mut scratch, &mut out);
        out
    };
    assert_eq!(run(5), run(5));
    let outs: Vec<Vec<f32>> = (0..40).map(run).collect();
    let mut distinct = outs.clone();
    distinct.sort_by(|a, b| a.partial_cmp(b).unwrap());
    distinct.dedup();
    assert!(distinct.len() > 20, "only {} distinct augmentations of 40", distinct.len());

    // Each output is exactly crop(dy, dx) + optional flip + a cutout of at most 2x2 for some
    // parameters in range: search them all.
    let mut flips = 0;
    for out in &outs {
        let mut found = false;
        'search: for dy in 0..5 {
            for dx in 0..5 {
                for flip in [false, true] {
                    let mut cand = vec![0u8; img.len()];
                    crop_at(&img, shape, 2, dy, dx, &mut cand);
                    if flip {
                        flip_horizontal(&mut cand, shape);
                    }
                    for cy in 0..h {
                        for cx in 0..w {
                            let mut f: Vec<f32> = cand.iter().map(|&p| p as f32 / 255.0).collect();
                            cutout_at(&mut f, shape, cy, cx, 2);
                            if &f == out {
                                flips += flip as usize;
                                found = true;
                                break 'search;
                            }
                        }
                    }
                }
            }
        }
        assert!(found, "an output is not a crop/flip/cutout of the image");
    }
    assert!((8..=32).contains(&flips), "{flips} flips in 40");
}

fn small_set() -> Dataset {
    // 10 images of 1x2x2 whose pixels all equal 10 * index, label = index % 3.
    let images = (0..10u8).flat_map(|i| [i * 10; 4]).collect();
    let labels = (0..10).map(|i| i % 3).collect();
    Dataset::new("small", images, labels, 1, 2, 2, 3, vec!["a".into(), "b".into(), "c".into()]).unwrap()
}

fn epoch_of(loader: &mut Loader) -> Vec<Batch> {
    (0..loader.batches_per_epoch()).map(|_| loader.next_batch()).collect()
}

#[test]
fn loader_order_epochs_and_resume() {
    let cfg = LoaderConfig::new(4, Normalize::identity(1));
    let mut a = Loader::with_seed(small_set(), cfg.clone(), 42).unwrap();
    let mut b = Loader::with_seed(small_set(), cfg.clone(), 42).unwrap();
    assert_eq!(a.batches_per_epoch(), 3); // 4 + 4 + 2, drop_last off
    let e0 = epoch_of(&mut a);
    assert_eq!(e0, epoch_of(&mut b));
    assert_eq!(e0.iter().map(Batch::len).collect::<Vec<_>>(), vec![4, 4, 2]);
    // Every image exactly once per epoch; images and labels belong together.
    let mut seen: Vec<usize> = e0.iter().flat_map(|b| b.indices.clone()).collect();
    assert_ne!(seen, (0..10).collect::<Vec<_>>(), "not shuffled");
    seen.sort();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    for batch in &e0 {
        for (k, &i) in batch.indices.iter().enumerate() {
            assert_eq!(batch.labels[k], (i % 3) as u32);
            assert_eq!(batch.images[k * 4..k * 4 + 4], [(i * 10) as f32 / 255.0; 4]);
        }
    }
    assert_eq!(a.epoch(), 1);
    let e1 = epoch_of(&mut a);
    let order = |e: &[Batch]| e.iter().flat_map(|b| b.indices.clone()).collect::<Vec<_>>();
    assert_ne!(order(&e0), order(&e1), "epoch 1 repeats epoch 0's order");
    assert_eq!(e1[0].epoch, 1);

    // Another seed, another order.
    let mut c = Loader::with_seed(small_set(), cfg.clone(), 43).unwrap();
    assert_ne!(order(&epoch_of(&mut c)), order(&e0));

    // Save the cursor mid-epoch (with a batch prefetched), restore into a fresh loader.
    let aug_cfg = LoaderConfig::new(3, Normalize::identity(1))
        .with_augment(Augment { crop_padding: 1, flip: true, cutout: 1 })
        .with_drop_last(true);
    let mut run = Loader::new(small_set(), aug_cfg.clone(), &mut Rng::new(9)).unwrap();
    assert_eq!(run.batches_per_epoch(), 3);
    for _ in 0..4 {
        run.next_batch();
    }
    run.prefetch();
    let saved: LoaderState = serde_json::from_str(&serde_json::to_string(&run.state()).unwrap()).unwrap();
    assert_eq!((saved.epoch, saved.batch), (1, 1));
    let rest: Vec<Batch> = (0..5).map(|_| run.next_batch()).collect();
    let mut resumed = Loader::with_seed(small_set(), aug_cfg, 0).unwrap();
    resumed.restore(saved).unwrap();
    let again: Vec<Batch> = (0..5).map(|_| resumed.next_batch()).collect();
    assert_eq!(rest, again);
    assert!(resumed.restore(LoaderState { seed: 1, epoch: 0, batch: 3 }).is_err());

    // Evaluation order is file order, every epoch.
    let mut ev = Loader::with_seed(small_set(), LoaderConfig::eval(4, Normalize::identity(1)), 1).unwrap();
    assert_eq!(order(&epoch_of(&mut ev)), (0..10).collect::<Vec<_>>());
    assert_eq!(order(&epoch_of(&mut ev)), (0..10).collect::<Vec<_>>());

    // Impossible configurations.
    let big = LoaderConfig::new(11, Normalize::identity(1)).with_drop_last(true);
    let err = Loader::with_seed(small_set(), big, 1).err().unwrap().to_string();
    assert!(err.contains("batch size 11 is bigger than the 10 images"), "{err}");
    assert!(Loader::with_seed(small_set(), LoaderConfig::new(2, Normalize::cifar10()), 1).is_err());
}

#[test]
fn batches_uploaded_to_the_gpu_read_back_equal() {
    let gpu = wgpu_nas::Gpu::new().expect("adapter");
    let data = Dataset::cifar10_file(fixture("cifar10_test_20.bin")).unwrap();
    let cfg = LoaderConfig::new(8, Normalize::cifar10()).with_augment(Augment::darts_train(16));
    let mut gpu_loader = wgpu_nas::gpu::DeviceLoader::new(Loader::with_seed(data.clone(), cfg.clone(), 7).unwrap());
    let mut host_loader = Loader::with_seed(data, cfg, 7).unwrap();
    // Batches of 8, 8, 4, then 8 again: both reusable slots, a short batch, a slot reused.
    let mut kept = Vec::new();
    for step in 0..5 {
        let (images, labels) = gpu_loader.next(&gpu).unwrap();
        let expect = host_loader.next_batch();
        assert_eq!(images.shape(), &expect.shape[..], "step {step}");
        assert_eq!(labels.shape(), &[expect.len()]);
        assert_eq!(images.to_vec().unwrap(), expect.images, "step {step}");
        assert_eq!(labels.to_vec_u32().unwrap(), expect.labels, "step {step}");
        kept.push((images, expect));
    }
    // Step 3 wrote slot 0 again (steps 0 and 3 share buffers); step 4 (slot 1) did not touch
    // step 3's tensors.
    assert_eq!(kept[3].0.to_vec().unwrap(), kept[3].1.images);
    assert_eq!(kept[0].0.id(), kept[3].0.id());
    assert_ne!(kept[3].0.id(), kept[4].0.id());
}

/// Where Debian's `dataset-fashion-mnist` installs the full data set.
const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The embedded set is what data/make_embedded.py says: the first 600 (train) and 100 (test)
/// images of each class, in file order. Needs the Debian package; skipped without it.
#[test]
fn embedded_set_is_the_documented_subset_of_fashion_mnist() {
    if !std::path::Path::new(FASHION_MNIST_DIR).is_dir() {
        eprintln!("skipped: {FASHION_MNIST_DIR} missing (apt-get install dataset-fashion-mnist)");
        return;
    }
    for (split, embedded, per_class) in
        [(Split::Train, Dataset::embedded_train().unwrap(), 600), (Split::Test, Dataset::embedded_test().unwrap(), 100)]
    {
        let full = Dataset::fashion_mnist(FASHION_MNIST_DIR, split).unwrap();
        assert_eq!(full.n, if split == Split::Train { 60000 } else { 10000 });
        // The first `per_class` images of each class, in file order.
        let expect = full.balanced(per_class).unwrap();
        assert_eq!(embedded.labels, expect.labels);
        assert!(embedded.images == expect.images, "{split:?} images differ from the source");
    }
}

#[test]
fn downsample_averages_blocks_and_balanced_takes_each_class_in_order() {
    // One 1x4x4 image with values 0..16: 2x2 blocks average (rounded half up).
    let data = Dataset::new("ramp", (0..16).collect(), vec![1], 1, 4, 4, 2, vec!["a".into(), "b".into()]).unwrap();
    let small = data.downsample(2).unwrap();
    assert_eq!((small.height, small.width), (2, 2));
    assert_eq!(small.images, [3, 5, 11, 13]); // (0+1+4+5)/4 = 2.5 -> 3, ...
    assert_eq!(data.downsample(4).unwrap().images, [8]); // 120/16 = 7.5 -> 8
    let err = data.downsample(3).unwrap_err().to_string();
    assert!(err.contains("multiples"), "{err}");

    let full = Dataset::embedded_train().unwrap();
    let five = full.balanced(5).unwrap();
    assert_eq!(five.class_counts(), vec![5; 10]);
    let first_of_class_0 = (0..full.n).find(|&i| full.labels[i] == 0).unwrap();
    let at = five.labels.iter().position(|&l| l == 0).unwrap();
    assert_eq!(five.image(at), full.image(first_of_class_0));
}

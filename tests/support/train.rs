//! Helpers of the retraining tests: small subsets of the embedded set, and the check that a
//! run resumed from a checkpoint continues exactly.
#![allow(dead_code)]

use wgpu_nas::data::Dataset;
use wgpu_nas::train::{TrainConfig, Trainer};
use wgpu_nas::Gpu;

/// The first `per_class` images of each class, in file order.
pub fn balanced(data: &Dataset, per_class: usize) -> Dataset {
    let mut taken = vec![0; data.num_classes];
    let indices: Vec<usize> = (0..data.n)
        .filter(|&i| {
            let c = data.labels[i] as usize;
            taken[c] += 1;
            taken[c] <= per_class
        })
        .collect();
    data.subset(&indices, format!("{}-{per_class}-per-class", data.name)).unwrap()
}

/// Every image shrunk 2x2 -> 1 by averaging (28x28 -> 14x14): a quarter of the work per step
/// on a software GPU.
pub fn halved(d: &Dataset) -> Dataset {
    let (h, w) = (d.height / 2, d.width / 2);
    let mut images = Vec::with_capacity(d.n * d.channels * h * w);
    for i in 0..d.n {
        let src = d.image(i);
        for plane in src.chunks(d.height * d.width) {
            for y in 0..h {
                for x in 0..w {
                    let at = |dy: usize, dx: usize| plane[(2 * y + dy) * d.width + 2 * x + dx] as u32;
                    images.push(((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1) + 2) / 4) as u8);
                }
            }
        }
    }
    let name = format!("{}-14x14", d.name);
    Dataset::new(name, images, d.labels.clone(), d.channels, h, w, d.num_classes, d.class_names.clone()).unwrap()
}

/// Every tensor of a run's checkpoint, by name.
pub fn all_state(trainer: &mut Trainer) -> Vec<(String, Vec<f32>)> {
    let c = pollster::block_on(trainer.checkpoint()).unwrap();
    c.tensors.into_iter().map(|(e, v)| (e.name, v)).collect()
}

/// Runs `config` (two epochs or more) straight through, and again as epoch 0 and one step of
/// epoch 1, a checkpoint through a file, and a new run from it to the end: both must end with
/// the same metrics and bit-identical tensors (parameters, BN statistics, momentum buffers).
pub fn assert_resume_continues_exactly(gpu: &Gpu, config: TrainConfig, train: &Dataset, test: &Dataset, tag: &str) {
    let mut straight = Trainer::new(gpu, config.clone(), train, test).unwrap();
    pollster::block_on(straight.run(|_| {}, |_, _| Ok(()))).unwrap();

    let dir = std::env::temp_dir().join(format!("wgpu-nas-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.bin");
    let mut first = Trainer::new(gpu, config, train, test).unwrap();
    pollster::block_on(first.run_epoch(|_| {})).unwrap();
    first.step().unwrap();
    first.save(&path).unwrap();
    assert!(!path.with_extension("tmp").exists(), "written through a temporary file, then renamed");
    let steps_per_epoch = first.steps_per_epoch() as u64;
    drop(first);
    let mut resumed = Trainer::load(gpu, &path, train, test).unwrap();
    assert_eq!((resumed.epoch(), resumed.global_step()), (1, steps_per_epoch + 1));
    pollster::block_on(resumed.run(|_| {}, |_, _| Ok(()))).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(resumed.metrics, straight.metrics);
    assert_eq!(resumed.epochs, straight.epochs);
    let (a, b) = (all_state(&mut straight), all_state(&mut resumed));
    assert_eq!(a.len(), b.len());
    assert!(a.iter().any(|(n, _)| n.contains("running_mean")) && a.iter().any(|(n, _)| n.starts_with("sgd.")));
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(va == vb, "{na} differs after resuming");
    }
}

//! Helpers of the retraining tests: their small data set, the error of an impossible
//! configuration, and the check that a run resumed from a checkpoint continues exactly.
#![allow(dead_code)]

use wgpu_nas::data::Dataset;
use wgpu_nas::train::{TrainConfig, Trainer};
use wgpu_nas::Gpu;

/// Every tensor of a run's checkpoint, by name.
pub fn all_state(trainer: &mut Trainer) -> Vec<(String, Vec<f32>)> {
    let c = pollster::block_on(trainer.checkpoint()).unwrap();
    c.tensors.into_iter().map(|(e, v)| (e.name, v)).collect()
}

/// The learning checks' data: 50 training and 10 test images per class of the embedded set,
/// averaged down to 14x14 (a quarter of the work per step on a CPU adapter).
pub fn small_embedded() -> (Dataset, Dataset) {
    let (train, test) = Dataset::embedded().unwrap();
    (train.balanced(50).unwrap().downsample(2).unwrap(), test.balanced(10).unwrap().downsample(2).unwrap())
}

/// The error `Trainer::new` gives for `config` on one image per class (panics if it accepts it).
pub fn config_error(gpu: &Gpu, config: TrainConfig) -> String {
    let (train, test) = Dataset::embedded().unwrap();
    let (train, test) = (train.balanced(1).unwrap(), test.balanced(1).unwrap());
    match Trainer::new(gpu, config, &train, &test) {
        Ok(_) => panic!("accepted an impossible configuration"),
        Err(e) => e.to_string(),
    }
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
    pollster::block_on(first.step()).unwrap();
    first.save(&path).unwrap();
    assert!(!wgpu_nas::durable::tmp_path(&path).exists(), "written through a temporary file, then renamed");
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

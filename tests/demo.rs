//! The demo driver the browser page runs (`wgpu_nas::demo`), natively: snapshots report what
//! changed, the alphas move, the genotype is valid, ENAS reports its controller.

use wgpu_nas::demo::{Algorithm, Demo, DemoConfig};
use wgpu_nas::space::{ModelGraph, DARTS_PRIMITIVES, ENAS_MICRO_OPS};
use wgpu_nas::Gpu;

fn tiny(algorithm: Algorithm) -> DemoConfig {
    DemoConfig {
        algorithm,
        layers: 3,
        channels: 2,
        batch_size: 4,
        image_size: 7,
        train_images: 100,
        steps_per_epoch: 2,
        epochs: 2,
        seed: 1,
        ..DemoConfig::default()
    }
}

#[test]
fn darts_demo_reports_each_step_and_closes_epochs() {
    let gpu = Gpu::new().unwrap();
    let mut demo = Demo::new(&gpu, tiny(Algorithm::Darts)).unwrap();
    assert_eq!(demo.info().edges, 14);
    assert_eq!(demo.info().ops, DARTS_PRIMITIVES);
    assert_eq!(demo.info().data.image, [1, 7, 7]);
    assert_eq!((demo.info().data.train, demo.info().data.valid), (50, 50));

    let first = pollster::block_on(demo.run(0)).unwrap();
    assert_eq!((first.step, first.epoch, first.finished), (0, 0, false));
    assert!(first.metrics.is_empty());
    let initial = first.alphas.unwrap();
    // Alphas start at 1e-3 * N(0, 1): softmax close to uniform.
    assert!(initial.normal.iter().flatten().all(|&p| (p - 1.0 / 8.0).abs() < 1e-2));

    let second = pollster::block_on(demo.run(3)).unwrap();
    assert_eq!((second.step, second.epoch, second.finished), (3, 1, false));
    assert_eq!(second.metrics.iter().map(|m| m.step).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(second.epochs.len(), 1, "the first epoch closed after its 2 steps");
    assert!(second.metrics.iter().all(|m| m.val_loss.is_some() && m.train_loss.is_finite()));
    let moved = second.alphas.unwrap();
    let change = moved.normal.iter().flatten().zip(initial.normal.iter().flatten()).map(|(a, b)| (a - b).abs());
    assert!(change.fold(0.0, f32::max) > 1e-5, "the alphas did not move");
    let genotype = second.genotype.unwrap();
    let (normal, reduce) = ModelGraph::from_genotype(&genotype);
    assert!(normal.is_valid(&DARTS_PRIMITIVES) && reduce.is_valid(&DARTS_PRIMITIVES));
    assert!(second.genotype_python.unwrap().starts_with("Genotype(normal=["));

    let last = pollster::block_on(demo.run(5)).unwrap();
    assert_eq!((last.step, last.epoch, last.finished), (4, 2, true), "stops at epochs x steps");
    assert_eq!(demo.alpha_history().last().unwrap().step, 3);
}

#[test]
fn gdas_demo_samples_one_op_per_edge_and_moves_the_alphas() {
    let gpu = Gpu::new().unwrap();
    let mut demo = Demo::new(&gpu, tiny(Algorithm::Gdas)).unwrap();
    assert_eq!(demo.info().algorithm, Algorithm::Gdas);
    assert_eq!((demo.info().edges, demo.info().ops.len()), (14, 8));
    let first = pollster::block_on(demo.run(0)).unwrap();
    let second = pollster::block_on(demo.run(2)).unwrap();
    assert_eq!((second.step, second.epoch), (2, 1));
    assert!(second.metrics.iter().all(|m| m.val_loss.is_some() && m.train_loss.is_finite()));
    let (a, b) = (first.alphas.unwrap(), second.alphas.unwrap());
    let change = a.normal.iter().flatten().zip(b.normal.iter().flatten()).map(|(x, y)| (x - y).abs());
    assert!(change.fold(0.0, f32::max) > 1e-5, "the alphas did not move");
    let genotype = second.genotype.unwrap();
    let (normal, reduce) = ModelGraph::from_genotype(&genotype);
    assert!(normal.is_valid(&DARTS_PRIMITIVES) && reduce.is_valid(&DARTS_PRIMITIVES));
    assert_eq!(demo.alpha_history().last().unwrap().step, 1, "softmax(alpha) recorded up to the last step");

    // One op per edge: the same steps as DARTS cost far fewer dispatches (steps inside an epoch,
    // so that neither count holds the epoch's evaluation and diagnostics).
    let dispatches = |algorithm: Algorithm| {
        let mut demo = Demo::new(&gpu, DemoConfig { steps_per_epoch: 10, ..tiny(algorithm) }).unwrap();
        pollster::block_on(demo.run(1)).unwrap();
        let before = gpu.dispatches();
        pollster::block_on(demo.run(2)).unwrap();
        gpu.dispatches() - before
    };
    let (gdas, darts) = (dispatches(Algorithm::Gdas), dispatches(Algorithm::Darts));
    assert!(3 * gdas < darts, "GDAS {gdas} dispatches for 2 steps, DARTS {darts}");
}

#[test]
fn enas_demo_reports_rewards_and_sampled_cells() {
    let gpu = Gpu::new().unwrap();
    let mut demo = Demo::new(&gpu, tiny(Algorithm::Enas)).unwrap();
    assert_eq!(demo.info().ops, ENAS_MICRO_OPS);
    let before = pollster::block_on(demo.run(0)).unwrap();
    assert!(before.genotype.is_none() && before.alphas.is_none());
    // An epoch: 2 shared-weight steps, then 2 controller updates, one per unit of run().
    let during = pollster::block_on(demo.run(3)).unwrap();
    assert_eq!((during.step, during.epoch), (2, 0));
    assert_eq!(during.enas.unwrap().updates.len(), 1);
    let after = pollster::block_on(demo.run(1)).unwrap();
    assert_eq!((after.step, after.epoch), (2, 1));
    let enas = after.enas.unwrap();
    assert_eq!(enas.updates.len(), 1);
    assert_eq!(enas.recent.len(), 4);
    assert!(enas.recent.windows(2).all(|w| w[0].reward >= w[1].reward), "best first");
    assert_eq!(after.genotype.as_ref(), Some(&enas.recent[0].genotype));
    assert!(after.epochs[0].reward.is_some_and(|r| (0.0..=1.01).contains(&r)));
}

#[test]
fn bad_settings_are_clear_errors() {
    let gpu = Gpu::new().unwrap();
    let err = DemoConfig::from_json(r#"{"chanels": 4}"#).unwrap_err().to_string();
    assert!(err.contains("unknown field `chanels`"), "{err}");
    let config = DemoConfig::from_json(r#"{"image_size": 10}"#).unwrap();
    let err = Demo::new(&gpu, config).err().unwrap().to_string();
    assert!(err.contains("image size must be 28, 14 or 7"), "{err}");
    let err = Demo::new(&gpu, DemoConfig { channels: 3, ..tiny(Algorithm::Enas) }).err().unwrap().to_string();
    assert!(err.contains("channels must be even"), "{err}");
    let config = DemoConfig { ops: vec!["conv_9x9".into()], ..tiny(Algorithm::Darts) };
    assert!(Demo::new(&gpu, config).is_err());
}

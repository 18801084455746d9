//! The data sets the search tests share: the planted-operation task and a small real one.

use wgpu_nas::checkpoint::Checkpoint;
use wgpu_nas::darts::{DartsEpoch, Relaxation, SearchConfig, SupernetSearch};
use wgpu_nas::data::Dataset;
use wgpu_nas::rng::Rng;
use wgpu_nas::run_loop::RunLoop;
use wgpu_nas::space::SearchSpace;
use wgpu_nas::Gpu;

/// 1x8x8 binary images whose class is the sign of a correlation between pixels 4 columns apart
/// (x[i, j+4] = x[i, j] for class 0, its complement for class 1) and nothing else: pixels at
/// distances 1 to 3 are independent in both classes.
///
/// In a one-node cell fed by a 3x3 stem, the features that reach the classifier are global
/// averages of the op's output. skip_connect and avg_pool_3x3 leave them linear in the ReLU of
/// the stem's 3x3 windows, which cannot relate pixels 4 apart; sep_conv_3x3 has a ReLU between
/// its two depthwise convs and reaches 2 pixels on each side, so it alone can tell the classes
/// apart: the planted answer is sep_conv_3x3 on both edges.
pub fn planted(seed: u64, n: usize) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut images = Vec::with_capacity(n * 64);
    let mut labels = Vec::with_capacity(n);
    for k in 0..n {
        let class = (k % 2) as u32;
        for _row in 0..8 {
            let a: Vec<u8> = (0..4).map(|_| if rng.uniform() < 0.5 { 0 } else { 255 }).collect();
            images.extend(&a);
            images.extend(a.iter().map(|&v| if class == 0 { v } else { 255 - v }));
        }
        labels.push(class);
    }
    Dataset::new("planted", images, labels, 1, 8, 8, 2, vec!["same".into(), "opposite".into()]).unwrap()
}

/// The first `n` embedded Fashion-MNIST training images, averaged down to 14x14 to keep the
/// test fast on a CPU adapter.
pub fn small_fashion(n: usize) -> Dataset {
    let full = Dataset::embedded_train().unwrap();
    let order: Vec<usize> = (0..full.n).step_by(full.n / n).take(n).collect();
    let mut images = Vec::with_capacity(n * 196);
    let mut labels = Vec::with_capacity(n);
    for &i in &order {
        let img = full.image(i);
        for y in 0..14 {
            for x in 0..14 {
                let s: u32 = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(dy, dx)| img[(2 * y + dy) * 28 + 2 * x + dx] as u32)
                    .sum();
                images.push((s / 4) as u8);
            }
        }
        labels.push(full.labels[i]);
    }
    Dataset::new("fashion-14", images, labels, 1, 14, 14, 10, full.class_names.clone()).unwrap()
}

/// The search the planted task is solved with: one cell of one node over skip_connect,
/// avg_pool_3x3 and sep_conv_3x3, starting from `base` (a method's defaults: DARTS, GDAS).
pub fn planted_config(base: SearchConfig, seed: u64) -> SearchConfig {
    let mut c = base;
    c.network.channels = 8;
    c.network.layers = 1;
    c.network.stem_multiplier = 1;
    c.network.reductions = Some(vec![]);
    c.network.space =
        SearchSpace::with_ops(&["skip_connect", "avg_pool_3x3", "sep_conv_3x3"]).unwrap().with_steps(1, 1).unwrap();
    c.architect.lr = 3e-3;
    c.epochs = 6;
    c.lr = 0.05;
    c.batch_size = 32;
    c.steps_per_epoch = Some(20);
    c.eval_batches = Some(4);
    c.log_every = 20;
    c.augment = false;
    c.seed = seed;
    c
}

/// A short search on [`small_fashion`]: C=4, 2 cells of 2 nodes, from `base` (a method's defaults).
pub fn small_config(base: SearchConfig, seed: u64) -> SearchConfig {
    let mut c = base;
    c.network.channels = 4;
    c.network.layers = 2;
    c.network.space = SearchSpace::darts().with_steps(2, 2).unwrap();
    c.batch_size = 16;
    c.epochs = 4;
    c.steps_per_epoch = Some(10);
    c.eval_batches = Some(8);
    c.log_every = 5;
    c.seed = seed;
    c
}

/// Runs `search` to its end, an epoch line each on stderr; returns every epoch's numbers.
pub fn run_to_end<R: Relaxation>(search: &mut RunLoop<SupernetSearch<R>>) -> Vec<DartsEpoch> {
    let mut epochs = vec![];
    while !search.is_finished() {
        let e = pollster::block_on(search.run_epoch(|_| {})).unwrap();
        eprintln!(
            "  epoch {} train loss {:.3} acc {:.2} val loss {:.3} acc {:.2}",
            e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc
        );
        epochs.push(e);
    }
    epochs
}

/// A search of `config` on the planted task ends with sep_conv_3x3 on both edges and a
/// validation accuracy above 0.9.
pub fn assert_solves_planted<R: Relaxation>(gpu: &Gpu, config: SearchConfig, data: &Dataset) {
    let seed = config.seed;
    let mut search = RunLoop::<SupernetSearch<R>>::new(gpu, config, data).unwrap();
    let last = run_to_end(&mut search).pop().unwrap();
    let (normal, _) = pollster::block_on(search.method.alphas()).unwrap();
    eprintln!(
        "seed {seed}: alphas {normal:?}, val acc {:.2}, genotype {:?}",
        last.val_acc,
        last.genotype.as_darts().expect("a DARTS genotype").normal
    );
    for (op, _) in &last.genotype.as_darts().expect("a DARTS genotype").normal {
        assert_eq!(op, "sep_conv_3x3", "seed {seed}: alphas {normal:?}");
    }
    assert!(last.val_acc > 0.9, "seed {seed}: the search did not learn the task ({:.2})", last.val_acc);
    assert!(last.collapse.hessian_eigenvalue.is_some(), "collapse diagnostics every epoch");
}

/// A search of `config` stopped after its first epoch, checkpointed and resumed ends exactly as
/// the same search straight through: alphas, weights, every step's and epoch's numbers. Returns
/// both runs for the method's own checks.
pub fn assert_resume_is_exact<R: Relaxation>(
    gpu: &Gpu,
    config: &SearchConfig,
    data: &Dataset,
) -> (RunLoop<SupernetSearch<R>>, RunLoop<SupernetSearch<R>>) {
    let mut straight = RunLoop::<SupernetSearch<R>>::new(gpu, config.clone(), data).unwrap();
    run_to_end(&mut straight);

    let mut first = RunLoop::<SupernetSearch<R>>::new(gpu, config.clone(), data).unwrap();
    pollster::block_on(first.run_epoch(|_| {})).unwrap();
    let bytes = pollster::block_on(first.checkpoint()).unwrap().to_bytes().unwrap();
    drop(first);
    let checkpoint = Checkpoint::from_bytes(&bytes, "memory").unwrap();
    assert_eq!(checkpoint.kind, R::KIND);
    let mut resumed = RunLoop::<SupernetSearch<R>>::resume(gpu, &checkpoint, data).unwrap();
    assert_eq!(resumed.epoch(), 1);
    run_to_end(&mut resumed);

    let a = pollster::block_on(straight.method.alphas()).unwrap();
    let b = pollster::block_on(resumed.method.alphas()).unwrap();
    assert_eq!(a, b, "alphas differ after resume");
    assert_eq!(straight.metrics, resumed.metrics);
    assert_eq!(straight.epochs, resumed.epochs, "epochs (genotypes, collapse diagnostics) differ after resume");
    let weights = |s: &RunLoop<SupernetSearch<R>>| -> Vec<Vec<f32>> {
        s.method.net.weights().iter().map(|w| w.to_vec().unwrap()).collect()
    };
    assert!(weights(&straight) == weights(&resumed), "weights differ after resume");
    // The alphas really moved: the comparison is not of two untouched inits.
    let start = RunLoop::<SupernetSearch<R>>::new(gpu, config.clone(), data).unwrap();
    assert_ne!(pollster::block_on(start.method.alphas()).unwrap(), a);
    (straight, resumed)
}

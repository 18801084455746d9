//! The data sets the search tests share: the planted-operation task and a small real one.

use wgpu_nas::darts::SearchConfig;
use wgpu_nas::data::Dataset;
use wgpu_nas::rng::Rng;
use wgpu_nas::space::SearchSpace;

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

//! The DARTS search loop: it finds a planted operation, it learns on real data, and a search
//! stopped and resumed from a checkpoint gives exactly the alphas of one run straight through.

#[path = "support/search.rs"]
mod search_data;
use search_data::{
    assert_resume_is_exact, assert_solves_planted, planted, planted_config, run_to_end, small_config, small_fashion,
};

use wgpu_nas::darts::{Architect, DartsSearch, SearchConfig};
use wgpu_nas::Gpu;

#[test]
fn search_ranks_the_planted_operation_first_on_5_of_5_seeds() {
    let gpu = Gpu::new().unwrap();
    let data = planted(99, 1024);
    for seed in 0..5 {
        assert_solves_planted::<Architect>(&gpu, planted_config(SearchConfig::darts(1, 2), seed), &data);
    }
}

#[test]
fn a_short_search_on_real_data_learns() {
    let gpu = Gpu::new().unwrap();
    let data = small_fashion(1000);
    let mut config = small_config(SearchConfig::darts(1, 10), 3);
    // A short search on a CPU adapter: a larger step size than the paper's 0.025 so that 40
    // steps show learning.
    config.lr = 0.1;
    let mut search = DartsSearch::new(&gpu, config, &data).unwrap();
    let epochs = run_to_end(&mut search);
    let (first, last) = (&epochs[0], epochs.last().unwrap());
    assert!(last.train_loss < first.train_loss, "train loss {} -> {}", first.train_loss, last.train_loss);
    assert!(last.val_loss < first.val_loss, "validation loss {} -> {}", first.val_loss, last.val_loss);
    assert!(last.val_acc > first.val_acc, "validation accuracy {} -> {}", first.val_acc, last.val_acc);
    assert!(last.val_acc > 0.2, "validation accuracy {} (chance is 0.1)", last.val_acc);
    assert_eq!(search.metrics.len(), 40, "every step's metrics were read back");
    assert_eq!(search.method.alpha_history.len(), 8, "alphas recorded every 5 steps");
}

#[test]
fn a_resumed_search_continues_exactly() {
    let gpu = Gpu::new().unwrap();
    let data = small_fashion(400);
    let mut config = small_config(SearchConfig::darts(1, 10), 5);
    config.epochs = 2;
    config.steps_per_epoch = Some(3);
    config.eval_batches = Some(2);
    assert_resume_is_exact::<Architect>(&gpu, &config, &data);
}

/// A warm search step creates no pipeline and no bind group, allocates no GPU memory, reads
/// nothing back, and goes to the GPU in a handful of submissions.
#[test]
fn a_warm_step_stays_on_the_gpu_and_reuses_every_cached_object() {
    let gpu = Gpu::new().unwrap();
    let data = small_fashion(200);
    let mut config = small_config(SearchConfig::darts(1, 10), 7);
    config.log_every = 1000;
    let mut search = DartsSearch::new(&gpu, config, &data).unwrap();
    for _ in 0..3 {
        pollster::block_on(search.step()).unwrap();
    }
    gpu.synchronize();
    let (pipelines, bind_groups, readbacks, total) =
        (gpu.pipelines_created(), gpu.bind_groups_created(), gpu.readbacks(), gpu.memory().total);
    let (submissions, dispatches) = (gpu.submissions(), gpu.dispatches());
    for _ in 0..2 {
        pollster::block_on(search.step()).unwrap();
    }
    gpu.synchronize();
    let per_step = (gpu.dispatches() - dispatches) / 2;
    let subs = gpu.submissions() - submissions;
    eprintln!("{per_step} dispatches per step in {subs} submissions for 2 steps");
    assert_eq!(gpu.pipelines_created(), pipelines, "no pipeline is created once warm");
    assert_eq!(gpu.readbacks(), readbacks, "a step reads nothing back");
    assert_eq!(gpu.memory().total, total, "a warm step allocates no GPU memory");
    eprintln!("{} new bind groups", gpu.bind_groups_created() - bind_groups);
    assert_eq!(gpu.bind_groups_created(), bind_groups, "a warm step creates no bind group");
    assert!(subs <= 2 + 2 * per_step / 2048, "{subs} submissions for 2 steps of {per_step} dispatches");
}

/// DARTS-ES on a short search: with a window of one epoch and a ratio just above 1, the search
/// stops after the first epoch whose Hessian eigenvalue grew (on this seed: before its last
/// epoch), and its result is the previous epoch's genotype.
#[test]
fn early_stopping_ends_the_search_and_keeps_the_genotype_from_before() {
    use wgpu_nas::darts::diagnostics::EarlyStop;
    let gpu = Gpu::new().unwrap();
    let data = small_fashion(400);
    let mut config = small_config(SearchConfig::darts(1, 10), 4);
    config.epochs = 6;
    config.steps_per_epoch = Some(3);
    config.eval_batches = Some(2);
    config.lr = 0.1;
    config.early_stop = Some(EarlyStop { window: 1, ratio: 1.0001 });
    let mut search = DartsSearch::new(&gpu, config, &data).unwrap();
    while !search.is_finished() {
        pollster::block_on(search.run_epoch(|_| {})).unwrap();
    }
    let eig: Vec<f32> = search.epochs.iter().map(|e| e.collapse.hessian_eigenvalue.unwrap()).collect();
    let stopped = search.method.stopped.clone().expect("the eigenvalue grew within 6 epochs");
    let n = search.epochs.len();
    assert!(n < 6 && stopped.epoch == n - 1, "stopped after epoch {} of {n} run (eigenvalues {eig:?})", stopped.epoch);
    assert!(eig[n - 1] > 1.0001 * eig[n - 2] && eig[n - 2] > 0.0, "{eig:?}");
    assert!(eig.windows(2).take(n - 2).all(|w| !(w[0] > 0.0 && w[1] > 1.0001 * w[0])), "no earlier stop: {eig:?}");
    assert_eq!(pollster::block_on(search.genotype()).unwrap(), search.epochs[n - 2].genotype);
}

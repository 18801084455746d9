//! The DARTS search loop: it finds a planted operation, it learns on real data, and a search
//! stopped and resumed from a checkpoint gives exactly the alphas of one run straight through.
//! PC-DARTS on the same loop: K=1 without edge normalisation is DARTS bit for bit, it finds the
//! planted operation, and it resumes exactly.

#[path = "support/search.rs"]
mod search_data;
use search_data::{
    assert_resume_is_exact, assert_solves_planted, planted, planted_config, run_to_end, small_config, small_fashion,
};

use wgpu_nas::checkpoint::Checkpoint;
use wgpu_nas::darts::PartialChannels;
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

/// PC-DARTS with K=1 and no edge normalisation runs the PC code (split states, the partial edge
/// forward, the architecture parameters, `arch_start_epoch` 0) and must give DARTS's numbers
/// bit for bit: metrics, epochs (validation, genotype, collapse diagnostics), alphas, weights.
#[test]
fn pc_darts_with_k_1_and_no_edge_normalization_is_darts_bit_for_bit() {
    let gpu = Gpu::new().unwrap();
    let data = small_fashion(400);
    let mut darts = small_config(SearchConfig::darts(1, 10), 6);
    darts.epochs = 2;
    darts.steps_per_epoch = Some(3);
    darts.eval_batches = Some(2);
    darts.hessian_iters = 2;
    let mut pc = darts.clone();
    pc.network.partial = Some(PartialChannels { k: 1, edge_normalization: false });
    let run = |config: SearchConfig| {
        let mut s = DartsSearch::new(&gpu, config, &data).unwrap();
        while !s.is_finished() {
            pollster::block_on(s.run_epoch(|_| {})).unwrap();
        }
        s
    };
    let (a, b) = (run(darts), run(pc));
    assert_eq!(b.method.net.config.partial.map(|p| p.k), Some(1));
    assert_eq!(a.metrics, b.metrics, "step metrics");
    assert_eq!(a.epochs, b.epochs, "epochs: validation, genotype, collapse diagnostics");
    assert_eq!(a.method.alpha_history, b.method.alpha_history, "alpha history");
    assert_eq!(pollster::block_on(a.method.alphas()).unwrap(), pollster::block_on(b.method.alphas()).unwrap());
    let weights = |s: &DartsSearch| s.method.net.weights().iter().map(|w| w.to_vec().unwrap()).collect::<Vec<_>>();
    assert!(weights(&a) == weights(&b), "weights differ");
    let start = DartsSearch::new(&gpu, small_config(SearchConfig::darts(1, 10), 6), &data).unwrap();
    assert_ne!(pollster::block_on(start.method.alphas()).unwrap(), pollster::block_on(a.method.alphas()).unwrap());
}

/// The planted-operation task (as DARTS solves it above) solved by PC-DARTS: K=2 (4 of the 8
/// channels through each mixed op), edge normalisation, the alphas trained from epoch 1. Each
/// op sees half the channels and each edge weighs about half, so the learning rates are twice
/// those of the DARTS test (PC-DARTS's own are 2x and 4x DARTS's) and it runs 10 epochs, not 6.
#[test]
fn pc_darts_ranks_the_planted_operation_first_on_5_of_5_seeds() {
    let gpu = Gpu::new().unwrap();
    let data = planted(99, 1024);
    for seed in 0..5 {
        let mut config = planted_config(SearchConfig::darts(1, 2), seed);
        config.network.partial = Some(PartialChannels { k: 2, edge_normalization: true });
        config.arch_start_epoch = 1;
        config.architect.lr *= 2.0;
        config.lr *= 2.0;
        config.epochs = 10;
        config.hessian_iters = 0;
        let mut search = DartsSearch::new(&gpu, config, &data).unwrap();
        let mut last = None;
        while !search.is_finished() {
            last = Some(pollster::block_on(search.run_epoch(|_| {})).unwrap());
        }
        let last = last.unwrap();
        let (normal, _) = pollster::block_on(search.method.alphas()).unwrap();
        let betas = pollster::block_on(search.method.betas()).unwrap().expect("edge normalisation");
        eprintln!("seed {seed}: alphas {normal:?}, betas {:?}, val acc {:.2}", betas.0, last.val_acc);
        for (op, _) in &last.genotype.as_darts().expect("a DARTS genotype").normal {
            assert_eq!(op, "sep_conv_3x3", "seed {seed}: alphas {normal:?}");
        }
        assert!(last.val_acc > 0.9, "seed {seed}: the supernet did not learn the task ({:.2})", last.val_acc);
    }
}

/// A PC-DARTS search (K=2, edge normalisation, alphas from epoch 1) stopped after epoch 0 and
/// resumed continues exactly: alphas, betas, weights and metrics as one run straight through.
#[test]
fn a_resumed_pc_darts_search_continues_exactly() {
    let gpu = Gpu::new().unwrap();
    let data = small_fashion(400);
    let mut config = small_config(SearchConfig::darts(1, 10), 5);
    config.network.reductions = Some(vec![1]);
    config.network.partial = Some(PartialChannels { k: 2, edge_normalization: true });
    config.arch_start_epoch = 1;
    config.epochs = 2;
    config.steps_per_epoch = Some(3);
    config.eval_batches = Some(2);
    config.hessian_iters = 2;
    let run_all = |s: &mut DartsSearch| {
        while !s.is_finished() {
            pollster::block_on(s.run_epoch(|_| {})).unwrap();
        }
    };
    let mut straight = DartsSearch::new(&gpu, config.clone(), &data).unwrap();
    let initial =
        (pollster::block_on(straight.method.alphas()).unwrap(), pollster::block_on(straight.method.betas()).unwrap());
    run_all(&mut straight);

    let mut first = DartsSearch::new(&gpu, config, &data).unwrap();
    pollster::block_on(first.run_epoch(|_| {})).unwrap();
    let after_0 =
        (pollster::block_on(first.method.alphas()).unwrap(), pollster::block_on(first.method.betas()).unwrap());
    assert_eq!(after_0, initial, "no architecture step before arch_start_epoch");
    let bytes = pollster::block_on(first.checkpoint()).unwrap().to_bytes().unwrap();
    drop(first);
    let checkpoint = Checkpoint::from_bytes(&bytes, "memory").unwrap();
    let mut resumed = DartsSearch::resume(&gpu, &checkpoint, &data).unwrap();
    run_all(&mut resumed);

    let end = |s: &DartsSearch| {
        (pollster::block_on(s.method.alphas()).unwrap(), pollster::block_on(s.method.betas()).unwrap())
    };
    assert_eq!(end(&straight), end(&resumed), "alphas or betas differ after resume");
    assert_ne!(end(&straight).0, initial.0, "the alphas moved from epoch 1");
    assert_ne!(end(&straight).1, initial.1, "the betas moved from epoch 1");
    assert_eq!(straight.metrics, resumed.metrics);
    assert_eq!(straight.epochs, resumed.epochs);
    let wa: Vec<Vec<f32>> = straight.method.net.weights().iter().map(|w| w.to_vec().unwrap()).collect();
    let wb: Vec<Vec<f32>> = resumed.method.net.weights().iter().map(|w| w.to_vec().unwrap()).collect();
    assert!(wa == wb, "weights differ after resume");
}

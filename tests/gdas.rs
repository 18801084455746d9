//! The GDAS search: it finds the planted operation, a step runs one candidate op per edge
//! (counted in its dispatches), and a search stopped and resumed from a checkpoint gives
//! exactly the alphas of one run straight through. The hard sample and its gradient are checked
//! against the plain loop and finite differences in tests/mixed_op.rs.

#[path = "support/search.rs"]
mod search_data;
use search_data::{
    assert_resume_is_exact, assert_solves_planted, planted, planted_config, small_config, small_fashion,
};

use wgpu_nas::darts::gdas::Gumbel;
use wgpu_nas::darts::{DartsSearch, GdasSearch, SearchConfig, Temperature};
use wgpu_nas::space::SearchSpace;
use wgpu_nas::Gpu;

#[test]
fn gdas_ranks_the_planted_operation_first_on_5_of_5_seeds() {
    let gpu = Gpu::new().unwrap();
    let data = planted(99, 1024);
    for seed in 0..5 {
        let mut config = planted_config(SearchConfig::gdas(1, 2), seed);
        // One sampled op per edge learns a third as often as DARTS's mixture: more steps (at
        // DARTS's 6 epochs, 4 seeds of 5 find it).
        config.epochs = 10;
        assert_solves_planted::<Gumbel>(&gpu, config, &data);
    }
}

/// A step's forward and backward passes run only the sampled op of each edge: in a space of
/// two pools and skip_connect, the pool kernels dispatched are exactly those of the edges that
/// sampled a pool, in each half of the step (DARTS runs both pools on every edge, twice).
#[test]
fn a_gdas_step_runs_one_candidate_op_per_edge() {
    let gpu = Gpu::new().unwrap();
    let data = small_fashion(200);
    let space =
        SearchSpace::with_ops(&["max_pool_3x3", "avg_pool_3x3", "skip_connect"]).unwrap().with_steps(2, 2).unwrap();
    let configure = |base: SearchConfig| {
        let mut c = small_config(base, 8);
        c.network.layers = 3; // a normal cell, then two reduction cells
        c.network.space = space.clone();
        c.log_every = 1000;
        c
    };
    let mut gdas = GdasSearch::new(&gpu, configure(SearchConfig::gdas(1, 10)), &data).unwrap();
    let mut darts = DartsSearch::new(&gpu, configure(SearchConfig::darts(1, 10)), &data).unwrap();
    let (edges, max, avg) = (5, 0, 1);
    let cells = [false, true, true]; // reduction?
    for s in 0..3 {
        gpu.synchronize();
        let d0 = gpu.dispatches();
        gpu.start_trace();
        pollster::block_on(gdas.step()).unwrap();
        let trace = gpu.take_trace();
        let gdas_dispatches = gpu.dispatches() - d0;
        let sampled = gdas.method.relaxation.last_sampled.clone();
        assert_eq!(sampled.len(), 2, "a weights' half and an alphas' half");
        // Per half, the edges of all cells that sampled op k; each runs its op once forward and
        // once backward (the alphas' half differentiates the alphas only, through every cell).
        let runs = |k: usize| -> usize {
            sampled
                .iter()
                .map(|half| cells.iter().map(|&r| half[r as usize].iter().filter(|&&i| i == k).count()).sum::<usize>())
                .sum()
        };
        assert_eq!(trace.count("pool", "max_forward"), runs(max), "step {s}: max-pool forwards ({sampled:?})");
        assert_eq!(trace.count("pool", "avg_forward"), runs(avg), "step {s}: avg-pool forwards ({sampled:?})");
        assert!(
            trace.count("pool", "max_backward") <= runs(max),
            "step {s}: at most one backward per sampled max-pool"
        );
        assert!(
            trace.count("pool", "avg_backward") <= runs(avg),
            "step {s}: at most one backward per sampled avg-pool"
        );
        assert!(sampled.iter().all(|h| h.iter().all(|cell| cell.len() == edges && cell.iter().all(|&i| i < 3))));
        assert_eq!(trace.count("mixed_op", "weighted_sum"), 0, "no op is mixed");
        assert_eq!(
            trace.count("mixed_op", "hard_select"),
            2 * cells.len() * edges,
            "one selected op per edge and half"
        );

        gpu.synchronize();
        let d0 = gpu.dispatches();
        gpu.start_trace();
        pollster::block_on(darts.step()).unwrap();
        let trace = gpu.take_trace();
        let darts_dispatches = gpu.dispatches() - d0;
        assert_eq!(trace.count("pool", "max_forward"), 2 * cells.len() * edges, "DARTS: every edge, both halves");
        eprintln!("step {s}: GDAS {gdas_dispatches} dispatches, DARTS {darts_dispatches}");
        assert!(gdas_dispatches < darts_dispatches, "{gdas_dispatches} vs {darts_dispatches}");
    }
}

#[test]
fn a_resumed_gdas_search_continues_exactly() {
    let gpu = Gpu::new().unwrap();
    let data = small_fashion(400);
    let mut config = small_config(SearchConfig::gdas(1, 10), 5);
    config.epochs = 3;
    config.steps_per_epoch = Some(3);
    config.eval_batches = Some(2);
    config.hessian_iters = 2;
    config.temperature = Some(Temperature { tau_max: 5.0, tau_min: 0.5 });

    let (mut straight, resumed) = assert_resume_is_exact::<Gumbel>(&gpu, &config, &data);
    let checkpoint = pollster::block_on(straight.checkpoint()).unwrap();
    assert!(DartsSearch::resume(&gpu, &checkpoint, &data).is_err(), "a DARTS search does not take a GDAS checkpoint");
    assert_eq!(
        straight.method.relaxation.last_sampled, resumed.method.relaxation.last_sampled,
        "the last samples differ"
    );
    // The temperature falls linearly from tau_max at the first epoch to tau_min at the last.
    let taus: Vec<f32> = straight.epochs.iter().map(|e| e.tau.unwrap()).collect();
    assert_eq!(taus, [5.0, 2.75, 0.5]);
    // Every alpha moved (each edge's gradient reaches all its ops, not only the sampled one).
    let a = pollster::block_on(straight.method.alphas()).unwrap();
    let start = GdasSearch::new(&gpu, config, &data).unwrap();
    let (n0, r0) = pollster::block_on(start.method.alphas()).unwrap();
    let moved =
        |now: &[Vec<f32>], was: &[Vec<f32>]| now.iter().flatten().zip(was.iter().flatten()).all(|(x, y)| x != y);
    assert!(moved(&a.0, &n0) && moved(&a.1, &r0), "some alpha never moved");
}

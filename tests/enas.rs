//! ENAS: the sampling kernel against a CPU draw, the controller's log-probability and entropy
//! against a CPU recomputation from its logits, sampled architectures as valid graphs, the
//! controller converging on a synthetic reward, and the search end to end on real data.

mod support;

use support::*;
use wgpu_nas::enas::controller::reference;
use wgpu_nas::enas::{
    Controller, ControllerConfig, EnasConfig, EnasSearch, EnasSpace, MacroConfig, MicroConfig, SharedModelConfig,
};
use wgpu_nas::nn::Module;
use wgpu_nas::ops::sample;
use wgpu_nas::rng::Rng;
use wgpu_nas::space::{Arch, MacroArch, MicroArch};
use wgpu_nas::Tensor;

/// softmax(x) over one row, in f64.
fn softmax_row(x: &[f32]) -> Vec<f64> {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn categorical_kernel_matches_cpu_inverse_cdf() {
    let gpu = gpu();
    let mut rng = Rng::new(7);
    // (rows, k): one row of a micro input choice, skip rows of a macro layer, a wide row.
    for (rows, k) in [(1, 5), (11, 2), (3, 7), (4, 1)] {
        let logits = rng.uniform_vec(rows * k, -3.0, 3.0);
        let offset = 2;
        let u = rng.uniform_vec(offset + rows, 0.0, 1.0);
        let lt = Tensor::from_slice(&gpu, &[rows, k], &logits).unwrap();
        let ut = Tensor::from_slice(&gpu, &[offset + rows], &u).unwrap();
        let decisions = Tensor::from_u32(&gpu, &[offset + rows], &vec![99; offset + rows]).unwrap();
        let idx = sample::categorical(&lt, &ut, offset, &decisions).unwrap();
        let got = idx.to_vec_u32().unwrap();
        let got_decisions = decisions.to_vec_u32().unwrap();
        for r in 0..rows {
            let p = softmax_row(&logits[r * k..(r + 1) * k]);
            let mut acc = 0.0;
            let mut want = k - 1;
            for (j, pj) in p.iter().enumerate() {
                acc += pj;
                if (u[offset + r] as f64) < acc {
                    want = j;
                    break;
                }
            }
            // A uniform within 1e-5 of a CDF step may round either way in f32.
            let near_step = p.iter().scan(0.0, |a, pj| {
                *a += pj;
                Some(*a)
            });
            let ambiguous = near_step.into_iter().any(|c| (c - u[offset + r] as f64).abs() < 1e-5);
            assert!(ambiguous || got[r] as usize == want, "rows {rows} k {k} row {r}: got {} want {want}", got[r]);
            assert_eq!(got_decisions[offset + r], got[r]);
        }
        assert_eq!(&got_decisions[..offset], &[99, 99], "rows before the offset are untouched");
    }

    let bits = Tensor::from_u32(&gpu, &[4], &[1, 0, 1, 1]).unwrap();
    let w = sample::mean_weights(&bits).unwrap().to_vec().unwrap();
    assert_close("mean_weights", &w, &[0.25, 0.0, 0.25, 0.25], 1e-7, 0.0);
}

/// Recomputes sum log p(decision) and sum entropy from the sample's logits on the CPU.
fn cpu_log_prob_and_entropy(s: &wgpu_nas::enas::Sample, widths: &[usize]) -> (f64, f64) {
    let flat = s.arch.to_flat();
    let w = s.logits.shape()[1];
    let values = s.logits.to_vec().unwrap();
    let (mut log_prob, mut entropy) = (0.0, 0.0);
    for (r, row) in values.chunks(w).enumerate() {
        assert!(row[widths[r]..].iter().all(|&x| x == 0.0), "row {r} is padded with zeros");
        let p = softmax_row(&row[..widths[r]]);
        log_prob += p[flat[r]].ln();
        entropy -= p.iter().map(|q| q * q.ln()).sum::<f64>();
    }
    (log_prob, entropy)
}

fn spaces() -> Vec<ControllerConfig> {
    let micro = ControllerConfig { hidden: 16, ..ControllerConfig::micro(3) };
    let macro_ = ControllerConfig { hidden: 16, ..ControllerConfig::macro_space(5) };
    // Temperature and no tanh: other logit shaping paths.
    let shaped = ControllerConfig { temperature: Some(5.0), tanh_constant: None, ..micro.clone() };
    vec![micro, macro_, shaped]
}

#[test]
fn log_prob_and_entropy_match_cpu_and_teacher_forcing() {
    let gpu = gpu();
    for (i, config) in spaces().into_iter().enumerate() {
        let mut rng = Rng::new(11 + i as u64);
        let ctl = Controller::new(&gpu, &mut rng, config.clone()).unwrap();
        for _ in 0..3 {
            let before = gpu.readbacks();
            let s = gpu.no_grad(|| ctl.sample_blocking(&mut rng)).unwrap();
            assert_eq!(gpu.readbacks() - before, 1, "one readback per sampled architecture");
            let (lp, h) = cpu_log_prob_and_entropy(&s, ctl.decision_widths());
            assert!(
                (s.log_prob as f64 - lp).abs() < 1e-4 * (1.0 + lp.abs()),
                "{config:?}: log p {} vs {lp}",
                s.log_prob
            );
            assert!((s.entropy as f64 - h).abs() < 1e-4 * (1.0 + h.abs()), "entropy {} vs {h}", s.entropy);
            // Feeding the same decisions back gives the same log-probability.
            let forced = gpu.no_grad(|| pollster::block_on(ctl.score(&s.arch))).unwrap();
            assert!((forced.log_prob - s.log_prob).abs() < 1e-4, "score {} vs sample {}", forced.log_prob, s.log_prob);
        }
    }
}

#[test]
fn sampled_architectures_are_valid_graphs_and_round_trip() {
    let gpu = gpu();
    let mut rng = Rng::new(3);
    for config in spaces() {
        let ctl = Controller::new(&gpu, &mut rng, config.clone()).unwrap();
        for _ in 0..10 {
            let s = gpu.no_grad(|| ctl.sample_blocking(&mut rng)).unwrap();
            s.arch.validate_graphs().unwrap();
            let flat = s.arch.to_flat();
            assert_eq!(flat.len(), config.space.num_decisions());
            assert_eq!(config.space.decode(&flat).unwrap(), s.arch);
            match (&s.arch, config.space) {
                (Arch::Micro(a), EnasSpace::Micro { num_nodes }) => {
                    assert_eq!(MicroArch::from_flat(&a.to_flat(), num_nodes).unwrap(), *a)
                }
                (Arch::Macro(a), EnasSpace::Macro { num_layers }) => {
                    assert_eq!(MacroArch::from_flat(&a.to_flat(), num_layers).unwrap(), *a)
                }
                _ => panic!("the sample's space differs from the controller's"),
            }
            let json = serde_json::to_string(&s.arch).unwrap();
            assert_eq!(serde_json::from_str::<Arch>(&json).unwrap(), s.arch);
        }
    }
}

/// |got - want| <= rtol * |want| + atol, element by element, with the worst offender named.
fn assert_near(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let worst = got
        .iter()
        .zip(want)
        .enumerate()
        .map(|(i, (g, w))| (i, (g - w).abs() - rtol * w.abs() - atol))
        .fold((0, f32::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
    let (i, excess) = worst;
    assert!(excess <= 0.0 && got.iter().all(|g| g.is_finite()), "{what}: element {i}: {} vs {}", got[i], want[i]);
}

/// The packed weights of the fused controller and the reference's tensors, concatenated in the
/// order of its `Module::params`.
fn weights(fused: &Controller, reference: &reference::Controller) -> (Vec<f32>, Vec<f32>) {
    let a = fused.param_list()[0].to_vec().unwrap();
    let b: Vec<f32> = reference.param_list().iter().flat_map(|t| t.to_vec().unwrap()).collect();
    (a, b)
}

/// The fused controller against the tape-built reference, from the same seed: the same
/// decisions, log-probabilities, entropies and skip penalties, the same scores of a forced
/// architecture, and after each of two updates the same parameters (their moves compared,
/// within 1e-3 of the largest move). Both spaces, both shaping paths, the largest hidden size
/// (256, one unit per thread), the paper's macro size.
#[test]
fn fused_controller_matches_reference() {
    let gpu = gpu();
    let mut configs = spaces();
    configs.push(ControllerConfig { hidden: 256, ..ControllerConfig::micro(2) });
    configs.push(ControllerConfig { num_aggregate: 4, ..ControllerConfig::macro_space(12) });
    for (i, config) in configs.into_iter().enumerate() {
        let seed = 40 + i as u64;
        let (mut rng_a, mut rng_b) = (Rng::new(seed), Rng::new(seed));
        let mut fused = Controller::new(&gpu, &mut rng_a, config.clone()).unwrap();
        let mut reference = reference::Controller::new(&gpu, &mut rng_b, config.clone()).unwrap();
        let (a, b) = weights(&fused, &reference);
        assert_eq!(a, b, "{config:?}: the same init");
        for round in 0..2 {
            let (mut sa, mut sb) = (vec![], vec![]);
            for _ in 0..4 {
                let s = fused.sample_blocking(&mut rng_a).unwrap();
                let r = reference.sample_blocking(&mut rng_b).unwrap();
                assert_eq!(s.arch, r.arch, "{config:?} round {round}: decisions");
                let what = format!("{config:?} round {round}: log p, entropy, skip penalty");
                assert_near(
                    &what,
                    &[s.log_prob, s.entropy, s.skip_penalty],
                    &[r.log_prob, r.entropy, r.skip_penalty],
                    1e-5,
                    1e-5,
                );
                let fs = gpu.no_grad(|| pollster::block_on(fused.score(&s.arch))).unwrap();
                assert_near("score", &[fs.log_prob, fs.entropy], &[s.log_prob, s.entropy], 1e-5, 1e-5);
                sa.push(s);
                sb.push(r);
            }
            let accuracies = [0.1, 0.6, 0.35, 0.9];
            let before = weights(&fused, &reference).1;
            let stats_a = fused.update(&sa, &accuracies).unwrap();
            let stats_b = reference.update(&sb, &accuracies).unwrap();
            let (a, b) = weights(&fused, &reference);
            let moved_a: Vec<f32> = a.iter().zip(&before).map(|(x, y)| x - y).collect();
            let moved_b: Vec<f32> = b.iter().zip(&before).map(|(x, y)| x - y).collect();
            let largest = moved_b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(largest > 0.0, "{config:?}: the update moved nothing");
            assert_near(
                &format!("{config:?} round {round}: parameter moves"),
                &moved_a,
                &moved_b,
                1e-3,
                1e-3 * largest,
            );
            assert_near(&format!("{config:?} round {round}: parameters"), &a, &b, 1e-5, 1e-6);
            let sa = [stats_a.reward, stats_a.baseline, stats_a.entropy, stats_a.log_prob, stats_a.skip_rate];
            let sb = [stats_b.reward, stats_b.baseline, stats_b.entropy, stats_b.log_prob, stats_b.skip_rate];
            assert_near("update stats", &sa, &sb, 1e-5, 1e-6);
        }
    }
}

/// One dispatch per sampled (or scored) architecture, three per update whatever the number of
/// samples (backward, gradients, Adam).
#[test]
fn fused_controller_dispatches() {
    let gpu = gpu();
    let mut rng = Rng::new(5);
    for config in
        [ControllerConfig::micro(5), ControllerConfig { num_aggregate: 4, ..ControllerConfig::macro_space(12) }]
    {
        let mut ctl = Controller::new(&gpu, &mut rng, config.clone()).unwrap();
        let mut samples = vec![];
        for _ in 0..4 {
            let before = gpu.dispatches();
            samples.push(ctl.sample_blocking(&mut rng).unwrap());
            assert_eq!(gpu.dispatches() - before, 1, "{:?}: dispatches per sample", config.space);
        }
        let before = gpu.dispatches();
        pollster::block_on(ctl.score(&samples[0].arch)).unwrap();
        assert_eq!(gpu.dispatches() - before, 1, "{:?}: dispatches per score", config.space);
        let before = gpu.dispatches();
        ctl.update(&samples, &[0.2, 0.4, 0.6, 0.8]).unwrap();
        assert_eq!(gpu.dispatches() - before, 3, "{:?}: dispatches per update of 4 samples", config.space);
    }
}

/// Most updates the synthetic-reward convergence test may take (it needs about 100).
const SYNTHETIC_UPDATES: usize = 150;

/// The controller alone, rewarded with the fraction of its decisions equal to a fixed target
/// architecture, puts probability > 0.9 on the whole target (a 2-layer macro architecture: two
/// operations out of six and one skip bit) within SYNTHETIC_UPDATES updates of 8 samples, on 3
/// of 3 seeds. Settings: hidden 16, lr 0.01, baseline decay 0.9, no tanh constant (it caps every
/// decision's probability, by design), no skip penalty (it pulls the skip towards 0.4), no
/// entropy bonus. Larger targets converge too slowly for a test under the reference's Adam
/// (eps 1e-3 dominates the controller's small gradients), or lock into a wrong decision that is
/// then never explored again (REINFORCE without a tanh cap); the micro space's operation bias
/// (10 on the separable convolutions, as the reference) needs its tanh constant.
#[test]
fn controller_converges_on_synthetic_reward() {
    let gpu = gpu();
    let space = EnasSpace::Macro { num_layers: 2 };
    // layer 0: op 2 (conv_5x5); layer 1: op 5 (max_pool_3x3), skip from layer 0
    let target = space.decode(&[2, 5, 1]).expect("a valid architecture");
    let target_flat = target.to_flat();
    for seed in 0..3 {
        let mut rng = Rng::new(100 + seed);
        let config = ControllerConfig {
            hidden: 16,
            tanh_constant: None,
            lr: 0.01,
            baseline_decay: 0.9,
            entropy_weight: 0.0,
            skip_weight: 0.0,
            ..ControllerConfig::macro_space(2)
        };
        let mut ctl = Controller::new(&gpu, &mut rng, config).unwrap();
        let mut p_target = 0.0;
        let mut updates = 0;
        while updates < SYNTHETIC_UPDATES && p_target <= 0.9 {
            let mut samples = vec![];
            let mut rewards = vec![];
            for _ in 0..8 {
                let s = ctl.sample_blocking(&mut rng).unwrap();
                let same = s.arch.to_flat().iter().zip(&target_flat).filter(|(a, b)| a == b).count();
                rewards.push(same as f32 / target_flat.len() as f32);
                samples.push(s);
            }
            ctl.update(&samples, &rewards).unwrap();
            updates += 1;
            p_target = gpu.no_grad(|| pollster::block_on(ctl.score(&target))).unwrap().log_prob.exp();
        }
        eprintln!("seed {seed}: p(target) = {p_target:.3} after {updates} updates");
        assert!(p_target > 0.9, "seed {seed}: p(target) = {p_target} after {SYNTHETIC_UPDATES} updates");
    }
}

/// The embedded Fashion-MNIST training set, `per_class` images of each class, halved to 14x14
/// (2x2 means) so that a search step takes milliseconds.
fn small_data(per_class: usize) -> wgpu_nas::data::Dataset {
    let full = wgpu_nas::data::Dataset::embedded_train().unwrap();
    let mut indices = vec![];
    for class in 0..full.num_classes as u32 {
        indices.extend((0..full.n).filter(|&i| full.labels[i] == class).take(per_class));
    }
    let d = full.subset(&indices, "small").unwrap();
    let (h, w) = (d.height / 2, d.width / 2);
    let mut images = Vec::with_capacity(d.n * h * w);
    for i in 0..d.n {
        let img = d.image(i);
        for y in 0..h {
            for x in 0..w {
                let at = |dy: usize, dx: usize| img[(2 * y + dy) * d.width + 2 * x + dx] as u32;
                images.push(((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1)) / 4) as u8);
            }
        }
    }
    wgpu_nas::data::Dataset::new("small-14x14", images, d.labels.clone(), 1, h, w, d.num_classes, d.class_names.clone())
        .unwrap()
}

/// A tiny micro search: 1 node per cell, 1 normal + 2 reduction cells, 4 channels, batch 16
/// (with 2 nodes per cell the shared weights, split over more candidates, learn too slowly
/// for a test).
fn tiny_micro_config() -> EnasConfig {
    let mut config = EnasConfig::micro(1, 10);
    config.model =
        SharedModelConfig::Micro(MicroConfig { channels: 4, num_layers: 1, num_nodes: 1, ..MicroConfig::enas(1, 10) });
    config.controller = ControllerConfig { hidden: 16, num_aggregate: 5, ..ControllerConfig::micro(1) };
    config.batch_size = 16;
    config.steps_per_epoch = Some(40);
    config.controller_steps = 2;
    config.epochs = 3;
    config.derive_samples = 12;
    config.log_every = 10;
    config.seed = 1;
    config
}

/// End to end on real data (400 Fashion-MNIST images at 14x14): 3 epochs of 40 shared steps and 2 controller updates of 5 samples;
/// the mean reward of the last controller round exceeds the first's (the shared weights learn,
/// so the sampled children score better on validation batches).
#[test]
fn micro_search_end_to_end_reward_rises() {
    let gpu = gpu();
    let data = small_data(40);
    let mut search = EnasSearch::new(&gpu, tiny_micro_config(), &data).unwrap();
    let mut rewards = vec![];
    while !search.is_finished() {
        let s = pollster::block_on(search.run_epoch(|_| {})).unwrap();
        eprintln!("{s:?}");
        rewards.push(s.reward);
    }
    assert_eq!(search.metrics.len(), 120);
    assert_eq!(search.method.controller_metrics.len(), 6);
    assert!(rewards[2] > rewards[0], "mean reward per round {rewards:?}");

    let derived = pollster::block_on(search.method.derive()).unwrap();
    assert_eq!(derived.top.len(), 10);
    assert!(derived.top.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(derived.best, derived.top[0]);
    derived.best.arch.validate_graphs().unwrap();
    assert!(derived.genotype.is_some() && derived.graphs.len() == 2);
    let json = derived.to_json();
    assert_eq!(serde_json::from_str::<wgpu_nas::enas::Derived>(&json).unwrap(), derived);
}

/// The macro space runs the whole loop: a 3-layer, 4-channel shared model (one pooling position
/// at layer 0), one epoch of 5 shared steps and one controller update of 3 samples, then
/// derivation; the skip penalty is reported and every derived architecture is a valid graph.
#[test]
fn macro_search_runs_and_derives() {
    let gpu = gpu();
    let data = small_data(10);
    let mut config = EnasConfig::macro_space(1, 10);
    config.model = SharedModelConfig::Macro(MacroConfig { channels: 4, num_layers: 3, ..MacroConfig::enas(1, 10) });
    config.controller = ControllerConfig { hidden: 16, num_aggregate: 3, ..ControllerConfig::macro_space(3) };
    config.batch_size = 8;
    config.steps_per_epoch = Some(5);
    config.controller_steps = 1;
    config.epochs = 1;
    config.derive_samples = 4;
    let mut search = EnasSearch::new(&gpu, config, &data).unwrap();
    pollster::block_on(search.run_epoch(|_| {})).unwrap();
    assert_eq!(search.metrics.len(), 5);
    assert!(search.metrics.iter().all(|m| m.loss.is_finite()));
    let stats = &search.method.controller_metrics[0].stats;
    assert!((0.0..=1.0).contains(&stats.skip_rate) && stats.entropy > 0.0, "{stats:?}");
    let derived = pollster::block_on(search.method.derive()).unwrap();
    assert_eq!(derived.top.len(), 4);
    assert!(derived.genotype.is_none() && derived.graphs.len() == 1);
    for s in &derived.top {
        s.arch.validate_graphs().unwrap();
    }
}

/// A search resumed from a checkpoint (written and read back through a file) continues exactly:
/// the next epoch's step metrics and controller statistics equal the uninterrupted run's.
#[test]
fn resumed_search_continues_exactly() {
    let gpu = gpu();
    let data = small_data(20);
    let mut config = tiny_micro_config();
    config.steps_per_epoch = Some(4);
    config.controller_steps = 1;
    config.controller = ControllerConfig { num_aggregate: 2, ..config.controller };
    config.epochs = 2;
    let mut a = EnasSearch::new(&gpu, config, &data).unwrap();
    pollster::block_on(a.run_epoch(|_| {})).unwrap();
    let checkpoint = pollster::block_on(a.checkpoint()).unwrap();
    let path = std::env::temp_dir().join(format!("enas-resume-{}.ckpt", std::process::id()));
    checkpoint.save(&path).unwrap();
    let loaded = wgpu_nas::checkpoint::Checkpoint::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let mut b = EnasSearch::resume(&gpu, &loaded, &data).unwrap();
    let sa = pollster::block_on(a.run_epoch(|_| {})).unwrap();
    let sb = pollster::block_on(b.run_epoch(|_| {})).unwrap();
    assert_eq!(a.metrics, b.metrics);
    assert_eq!(a.method.controller_metrics, b.method.controller_metrics);
    assert_eq!(sa, sb);
}

/// A checkpoint from before the fused controller (its parameters one tensor each, the LSTM's as
/// `controller.lstm.w_ih`) is refused with a line that says why, not a missing-tensor error.
#[test]
fn a_checkpoint_from_before_the_fused_controller_is_refused_clearly() {
    let gpu = gpu();
    let data = small_data(20);
    let mut search = EnasSearch::new(&gpu, tiny_micro_config(), &data).unwrap();
    let mut old = pollster::block_on(search.checkpoint()).unwrap();
    let packed = old.tensors.iter().position(|(e, _)| e.name == "controller.weights").expect("packed weights");
    old.tensors[packed].0.name = "controller.lstm.w_ih".into();
    let err = EnasSearch::resume(&gpu, &old, &data).err().expect("refused").to_string();
    assert!(err.contains("older wgpu-nas") && err.contains("cannot resume"), "{err}");
}

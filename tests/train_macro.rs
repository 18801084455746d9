//! Retraining an ENAS macro architecture (`general_child.py` with `fixed_arc`): the network's
//! parameters are exactly those of the chosen operations, channels double at the pooling
//! layers, a tiny one learns the embedded set, a run resumes exactly, architecture files read
//! back, and settings that cannot work are clear errors.

#[path = "support/train.rs"]
mod retrain;
mod support;

use std::time::Instant;

use retrain::{assert_resume_continues_exactly, config_error, small_embedded};
use support::gpu;
use wgpu_nas::data::{Augment, Dataset};
use wgpu_nas::nn::Module;
use wgpu_nas::rng::Rng;
use wgpu_nas::space::{MacroArch, MacroLayer};
use wgpu_nas::train::{Architecture, EvalNetwork, FixedMacroNetwork, ModelConfig, TrainConfig, Trainer};
use wgpu_nas::{Gpu, Tensor};

/// Six layers (pooling after layers 1 and 3), every operation once or twice, skips of every
/// distance.
fn six_layers() -> MacroArch {
    let layer = |op, skips: &[u8]| MacroLayer { op, skips: skips.iter().map(|&s| s == 1).collect() };
    MacroArch {
        layers: vec![
            layer(0, &[]),              // conv_3x3
            layer(3, &[1]),             // sep_conv_5x5, skip from layer 0
            layer(4, &[0, 0]),          // avg_pool_3x3
            layer(2, &[1, 0, 1]),       // conv_5x5, skips from layers 0 and 2
            layer(5, &[0, 0, 0, 0]),    // max_pool_3x3
            layer(1, &[0, 1, 0, 0, 1]), // sep_conv_3x3, skips from layers 1 and 4
        ],
    }
}

fn network(gpu: &Gpu, arch: MacroArch, auxiliary: bool) -> FixedMacroNetwork {
    let mut config = ModelConfig::enas_macro(1, 10, arch);
    config.channels = 4;
    config.auxiliary = auxiliary;
    FixedMacroNetwork::new(gpu, &mut Rng::new(0), config).unwrap()
}

fn numel(net: &impl Module, filter: impl Fn(&str) -> bool) -> usize {
    let mut named = Vec::new();
    net.params("", &mut named);
    named.iter().filter(|(n, _)| filter(n)).map(|(_, t)| t.numel()).sum()
}

#[test]
fn a_macro_network_has_exactly_the_parameters_of_its_chosen_operations() {
    let gpu = gpu();
    let net = network(&gpu, six_layers(), false);
    // C=4, 1 input channel, 10 classes; channels 4 (layers 0-1), 8 (2-3), 16 (4-5). Per layer at
    // c channels: conv_1x1 c*c + BN 2c; conv kxk c*c*k*k + BN 2c; separable c*k*k + c*c + BN 2c;
    // pools nothing; on layers 1.. the skip conv (skips+1)*c*c + BN 2c. FactorizedReduce c -> 2c:
    // two 1x1 convs c*c and BN 2*2c.
    let stem = 4 * 9 + 2 * 4; // conv 3x3 from the 1 input channel
    let layer0 = (16 + 8) + (4 * 4 * 9 + 8);
    let layer1 = (16 + 8) + (4 * 25 + 16 + 8) + (2 * 16 + 8);
    let pool_at_1 = 2 * (2 * 16 + 16);
    let layer2 = (64 + 16) + (64 + 16);
    let layer3 = (64 + 16) + (8 * 8 * 25 + 16) + (3 * 64 + 16);
    let pool_at_3 = 4 * (2 * 64 + 32);
    let layer4 = (256 + 32) + (256 + 32);
    let layer5 = (256 + 32) + (16 * 9 + 256 + 32) + (3 * 256 + 32);
    let classifier = 16 * 10; // 4C features, no bias (the reference's fc)
    let total = stem + layer0 + layer1 + pool_at_1 + layer2 + layer3 + pool_at_3 + layer4 + layer5 + classifier;
    assert_eq!(total, 5464);
    assert_eq!(numel(&net, |_| true), total);
    assert!((net.count_parameters_in_mb() - total as f64 / 1e6).abs() < 1e-12);
    assert_eq!(numel(&net, |n| n.starts_with("layer_3.")), layer3);
    assert_eq!(numel(&net, |n| n.starts_with("pool_at_3.")), pool_at_3);
    assert_eq!(numel(&net, |n| n == "classifier.weight"), classifier);
    let ops = ["conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "conv_5x5", "max_pool_3x3", "sep_conv_3x3"];
    assert_eq!(net.layers.iter().map(|l| l.op).collect::<Vec<_>>(), ops);
    assert_eq!(net.layers[5].skips, [1, 4]);

    // Another operation at layer 3 (8 channels) changes the count by exactly its difference.
    for (op, layer3_op) in [(1, 8 * 9 + 64 + 16), (3, 8 * 25 + 64 + 16), (4, 0), (0, 8 * 8 * 9 + 16)] {
        let mut arch = six_layers();
        arch.layers[3].op = op;
        assert_eq!(numel(&network(&gpu, arch, false), |_| true), total - (8 * 8 * 25 + 16) + layer3_op, "op {op}");
    }

    // Logits through 4C channels; the auxiliary head (after layer 3, on 16 channels) in training
    // only, outside the count.
    let x = Tensor::from_slice(&gpu, &[2, 1, 16, 16], &Rng::new(1).uniform_vec(512, -1.0, 1.0)).unwrap();
    let (logits, aux) = net.forward(&x, true).unwrap();
    assert_eq!((logits.shape(), aux.is_none()), (&[2, 10][..], true));
    let with_head = network(&gpu, six_layers(), true);
    assert_eq!(with_head.count_parameters_in_mb(), net.count_parameters_in_mb());
    assert_eq!(numel(&with_head, |n| n == "auxiliary_head.conv1.weight"), 16 * 128);
    let (logits, aux) = with_head.forward(&x, true).unwrap();
    assert_eq!((logits.shape(), aux.unwrap().shape()), (&[2, 10][..], &[2, 10][..]));
    assert!(with_head.forward(&x, false).unwrap().1.is_none());
}

/// Three layers, pooling after layers 0 and 1 (14x14 -> 7x7 -> 4x4 at C, 2C, 4C with C=4):
/// conv_3x3; max_pool_3x3 with a skip from layer 0; conv_3x3 with a skip from layer 0.
fn tiny_config(epochs: usize) -> TrainConfig {
    let arch = MacroArch::from_reference_text("0  5 1  0 1 0").unwrap();
    let mut config = TrainConfig::enas_macro(1, 10, arch);
    config.network.channels = 4;
    config.epochs = epochs;
    config.batch_size = 16;
    config.augment = Augment::none();
    config.log_every = 8;
    config
}

/// Measured on lavapipe (2 cores, shared with other builds): about 25 s for 93 steps and 3 test
/// passes.
#[test]
fn a_tiny_macro_network_learns_the_embedded_set_well_above_chance() {
    let gpu = gpu();
    let (train, test) = small_embedded(); // 500 and 100 images
    let mut config = tiny_config(3);
    config.lr = 0.1;
    let started = Instant::now();
    let mut trainer = Trainer::new(&gpu, config, &train, &test).unwrap();
    assert!(matches!(trainer.net, EvalNetwork::Macro(_)));
    let mut steps = 0;
    let epochs = pollster::block_on(trainer.run(|_| steps += 1, |_, _| Ok(()))).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    for e in &epochs {
        eprintln!(
            "epoch {} lr {:.4}: train loss {:.3} acc {:.3}, test loss {:.3} acc {:.3}",
            e.epoch, e.lr, e.train_loss, e.train_acc, e.test_loss, e.test_acc
        );
    }
    eprintln!("{steps} steps and 3 test passes in {seconds:.1} s; param size {:.6} MB", trainer.param_size_mb());
    assert_eq!(steps, 3 * (500 / 16));
    assert!(epochs.iter().all(|e| e.drop_prob == 0.0), "no drop path in a macro network");
    let last = epochs.last().unwrap();
    assert!(last.test_acc >= 0.4, "test accuracy {} after 3 epochs (chance is 0.1)", last.test_acc);
    assert!(last.train_loss < epochs[0].train_loss);
}

#[test]
fn resuming_a_macro_run_continues_exactly() {
    let (train, test) = Dataset::embedded().unwrap();
    let (train, test) =
        (train.balanced(4).unwrap().downsample(2).unwrap(), test.balanced(1).unwrap().downsample(2).unwrap()); // 40 and 10 images
    let mut config = tiny_config(2);
    config.batch_size = 8;
    config.steps_per_epoch = Some(2);
    config.eval_batches = Some(1);
    config.log_every = 1;
    config.augment = Augment::darts_train(0); // the loader's crop and flip draws resume too
    assert_resume_continues_exactly(&gpu(), config, &train, &test, "train-macro");
}

#[test]
fn enas_architecture_files_read_back() {
    let arch = six_layers();
    let text = |a: &MacroArch| a.to_flat().iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" ");
    let macro_json = serde_json::to_string(&arch).unwrap();
    let derived = format!(r#"{{"best": {{"arch": {{"Macro": {macro_json}}}, "score": 0.5}}, "genotype": null}}"#);
    for file in [text(&arch), macro_json.clone(), format!(r#"{{"Macro": {macro_json}}}"#), derived] {
        assert_eq!(Architecture::from_enas_text(&file).unwrap(), Architecture::Macro(arch.clone()), "{file}");
    }
    // A micro architecture retrains as cells: its genotype.
    let micro = wgpu_nas::space::MicroArch::from_flat(&[0, 0, 1, 4, 1, 2, 2, 1, 1, 3, 0, 0, 2, 1, 0, 4], 2).unwrap();
    let json = serde_json::to_string(&wgpu_nas::enas::Arch::Micro(micro.clone())).unwrap();
    assert_eq!(Architecture::from_enas_text(&json).unwrap(), Architecture::Cells(micro.to_genotype()));

    let err = |file: &str| Architecture::from_enas_text(file).unwrap_err().to_string();
    assert!(err(r#"{"layers": [{"op": 9, "skips": []}]}"#).contains("operation 9 is not one of 0..6"));
    assert!(err(r#"{"normal": []}"#).contains("not an ENAS architecture"));
    assert!(err("0 1").contains("L(L+1)/2"));
}

#[test]
fn macro_settings_that_cannot_work_are_clear_errors() {
    let gpu = gpu();
    let err = |config: TrainConfig| config_error(&gpu, config);
    let mut wrong_layers = tiny_config(1);
    wrong_layers.network.layers = 4;
    assert!(err(wrong_layers).contains("the macro architecture has 3 layers"));
    let mut odd = tiny_config(1);
    odd.network.channels = 5;
    assert!(err(odd).contains("even"));
    let mut dropping = tiny_config(1);
    dropping.batch_size = 8;
    dropping.drop_path_prob = 0.2;
    assert!(err(dropping).contains("no drop path"));
    let mut shallow = TrainConfig::enas_macro(1, 10, MacroArch::from_reference_text("0 1 1").unwrap());
    shallow.batch_size = 8;
    shallow.network.auxiliary = true;
    assert!(err(shallow).contains("turn the auxiliary head off"));
}

//! Retraining ENAS architectures. The macro network (`general_child.py` with `fixed_arc`) has
//! exactly the parameters of its chosen operations, channels double at the pooling layers, a
//! tiny one learns the embedded set, a run resumes exactly, architecture files read back, and
//! settings that cannot work are clear errors. The reference scripts' final macro and micro
//! architectures read as the scripts write them and count the reference's parameters.

#[path = "support/train.rs"]
mod retrain;
mod support;

use std::time::Instant;

use retrain::{assert_resume_continues_exactly, config_error, small_embedded};
use support::gpu;
use wgpu_nas::data::{Augment, Dataset};
use wgpu_nas::nn::Module;
use wgpu_nas::rng::Rng;
use wgpu_nas::space::{MacroArch, MacroLayer, MicroArch, MicroNode, SearchFor};
use wgpu_nas::train::{
    Architecture, CellVariant, EvalNetwork, EvalNetworkConfig, FixedMacroNetwork, MacroVariant, NetworkCifar,
    TrainConfig, Trainer,
};
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

/// The searched variant (separable ops, bit j = layer j), C=4, one input channel.
fn network(gpu: &Gpu, arch: MacroArch, auxiliary: bool) -> FixedMacroNetwork {
    network_of(gpu, arch, auxiliary, 4, 1, MacroVariant::Searched)
}

fn network_of(
    gpu: &Gpu,
    arch: MacroArch,
    auxiliary: bool,
    channels: usize,
    in_channels: usize,
    variant: MacroVariant,
) -> FixedMacroNetwork {
    let mut config = EvalNetworkConfig::enas_macro(in_channels, 10, arch);
    config.channels = channels;
    config.auxiliary = auxiliary;
    config.macro_variant = variant;
    FixedMacroNetwork::new(gpu, &mut Rng::new(0), config).unwrap()
}

fn numel(net: &impl Module, filter: impl Fn(&str) -> bool) -> usize {
    let mut named = Vec::new();
    net.params("", &mut named);
    named.iter().filter(|(n, _)| filter(n)).map(|(_, t)| t.numel()).sum()
}

#[test]
fn a_searched_macro_network_has_exactly_the_parameters_of_its_chosen_operations() {
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
    // Indices into [stem, layer 0, ..]: bit j is layer j.
    assert_eq!(net.layers[5].skips, [2, 5]);

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

/// The six layers as `general_child.py` builds them (the default): the separable ops as plain
/// convs of their size (lines 390-405), the stem reduced at both pooling layers with the layers
/// (214-224), and bit j joining `prev_layers[j]`, the stem for j = 0 (453-464).
#[test]
fn the_reference_macro_network_builds_as_general_child_py() {
    let gpu = gpu();
    let net = network_of(&gpu, six_layers(), false, 4, 1, MacroVariant::Reference);
    let searched = 5464;
    // layer 1: sep_conv_5x5 (4 * 25 + 16 + 8) -> conv 5x5 (16 * 25 + 8); layer 5: sep_conv_3x3
    // (16 * 9 + 256 + 32) -> conv 3x3 (256 * 9 + 32); the stem's FactorizedReduce at layer 1
    // (4 -> 8: 2 * 16 + 16) and layer 3 (8 -> 16: 2 * 64 + 32).
    let total = searched - (4 * 25 + 16) + 16 * 25 - (16 * 9 + 256) + 256 * 9 + (2 * 16 + 16) + (2 * 64 + 32);
    assert_eq!(numel(&net, |_| true), total);
    assert_eq!(numel(&net, |n| n.starts_with("pool_at_1.")), 3 * (2 * 16 + 16));
    assert_eq!(numel(&net, |n| n.starts_with("layer_5.sep_conv_3x3.")), 16 * 16 * 9 + 32);
    // [stem, layer 0, ..]: layer 1's bit 0 is the stem, layer 3's bits 0 and 2 the stem and
    // layer 1, layer 5's bits 1 and 4 layers 0 and 3.
    let skips: Vec<Vec<usize>> = net.layers.iter().map(|l| l.skips.clone()).collect();
    assert_eq!(skips, [vec![], vec![0], vec![], vec![0, 2], vec![], vec![1, 4]]);
    let x = Tensor::from_slice(&gpu, &[2, 1, 16, 16], &Rng::new(1).uniform_vec(512, -1.0, 1.0)).unwrap();
    assert_eq!(net.forward(&x, true).unwrap().0.shape(), &[2, 10][..]);
    assert_eq!(net.forward(&x, false).unwrap().0.shape(), &[2, 10][..]);
}

/// `cifar10_macro_final.sh`'s fixed_arc, as the script writes it: per layer its operation then
/// its skip bits.
const MACRO_FINAL_ARC: &str = "0
3 0
0 1 0
2 0 0 1
2 0 0 0 0
3 1 1 0 1 0
2 0 0 0 0 0 1
2 0 1 1 0 1 1 1
1 0 1 1 1 0 1 0 1
0 0 0 0 0 0 0 0 0 0
2 0 0 0 0 0 1 0 0 0 0
0 1 0 0 1 1 0 0 0 0 1 1
2 0 1 0 0 0 0 0 1 0 1 1 0
1 0 0 1 0 0 0 1 1 1 0 1 0 1
0 1 1 0 1 0 1 0 0 0 0 0 1 0 0
2 0 0 1 0 0 0 0 0 0 0 1 0 1 0 1
2 0 1 0 0 0 1 0 0 1 1 1 1 0 0 1 0
2 0 0 0 0 1 0 1 0 1 0 0 1 0 1 0 0 1
3 0 1 1 0 1 0 0 0 0 0 1 0 1 0 1 0 0 0
3 0 1 1 0 0 0 0 0 0 0 0 0 1 1 0 0 0 0 1
0 1 0 0 1 0 1 1 0 0 0 1 0 0 0 0 0 1 1 0 0
3 0 1 0 1 1 0 0 1 0 1 1 0 1 1 0 1 0 0 1 0 0
0 1 0 1 0 1 0 0 0 0 0 0 0 0 1 0 1 0 0 1 0 0 0
0 1 1 0 0 0 1 1 1 0 1 0 0 0 1 0 1 0 0 1 1 0 0 0
";

/// The number of trainable values of `general_child.py`'s fixed network (`whole_channels`,
/// `count_model_params` in `utils.py` lines 74-83 over the trainable variables, so a BN counts
/// its `offset` and `scale`, `image_ops.py` lines 92-107, not its moving statistics), counted
/// as the reference creates its weights.
fn reference_macro_count(arc: &[usize], num_layers: usize, out_filters: usize) -> usize {
    let bn = |c: usize| 2 * c;
    let pool_distance = num_layers / 3; // lines 95-96
    let pool_layers = [pool_distance - 1, 2 * pool_distance - 1];
    let mut c = out_filters;
    let mut n = 3 * 3 * 3 * c + bn(c); // stem_conv, lines 197-200
    let mut stored = 1; // `layers`: the stem
    let mut start_idx = 0;
    for layer_id in 0..num_layers {
        // _fixed_layer, lines 389-405: conv_1x1 then conv_{k}x{k}, k = [3, 3, 5, 5][op]; the
        // input always has C channels (the stem's, a layer's or a reduction's).
        let k = [3, 3, 5, 5][arc[start_idx]];
        n += c * c + bn(c) + k * k * c * c + bn(c);
        if layer_id > 0 {
            // lines 453-479: concat of the skipped-from layers and the output, 1x1 conv to C.
            let skips: usize = arc[start_idx + 1..start_idx + 1 + layer_id].iter().sum();
            n += (skips + 1) * c * c + bn(c);
        }
        stored += 1;
        if pool_layers.contains(&layer_id) {
            // lines 214-224: out_filters doubles, every stored layer gets a
            // _factorized_reduction (lines 142-175: two 1x1 convs to half, BN).
            c *= 2;
            n += stored * (2 * (c / 2) * (c / 2) + bn(c));
        }
        start_idx += 1 + layer_id; // line 226
    }
    n + c * 10 // fc, lines 234-241: no bias
}

#[test]
fn the_reference_final_macro_architecture_has_the_reference_parameter_count() {
    let gpu = gpu();
    let arch = MacroArch::from_reference_text(MACRO_FINAL_ARC).unwrap();
    assert_eq!(arch.layers.len(), 24);
    let flat = arch.to_flat();
    assert_eq!(flat.len(), 300);
    // Layer 3 is `2 0 0 1`: conv_5x5 joined by prev_layers[2], layer 1's output (its input is
    // layer 2's).
    assert_eq!(arch.layers[3].op, 2);
    for (out_filters, expected) in [(24, 2_670_312), (96, 42_559_392)] {
        assert_eq!(reference_macro_count(&flat, 24, out_filters), expected);
        let net = network_of(&gpu, arch.clone(), false, out_filters, 3, MacroVariant::Reference);
        assert_eq!(numel(&net, |_| true), expected, "out_filters {out_filters}");
        if out_filters == 24 {
            assert_eq!(net.layers[3].skips, [2]);
            // The searched variant: separable ops, no reduced stem.
            let searched = network_of(&gpu, arch.clone(), false, out_filters, 3, MacroVariant::Searched);
            assert_eq!(numel(&searched, |_| true), 1_945_464);
            assert_eq!(searched.layers[3].skips, [3]);
        }
    }
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
    assert!(matches!(trainer.method.net, EvalNetwork::Macro(_)));
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
        assert_eq!(Architecture::from_enas_text(&file, None).unwrap(), Architecture::Macro(arch.clone()), "{file}");
    }
    // A micro architecture retrains as cells: its genotype.
    let micro = wgpu_nas::space::MicroArch::from_flat(&[0, 0, 1, 4, 1, 2, 2, 1, 1, 3, 0, 0, 2, 1, 0, 4], 2).unwrap();
    let json = serde_json::to_string(&wgpu_nas::space::Arch::Micro(micro.clone())).unwrap();
    assert_eq!(Architecture::from_enas_text(&json, None).unwrap(), Architecture::Cells(micro.to_genotype()));

    let err = |file: &str| Architecture::from_enas_text(file, None).unwrap_err().to_string();
    assert!(err(r#"{"layers": [{"op": 9, "skips": []}]}"#).contains("operation 9 is not one of 0..6"));
    assert!(err(r#"{"normal": []}"#).contains("not an ENAS architecture"));
    assert!(err("0 1").contains("L(L+1)/2"));
    let in_space = |file: &str, space| Architecture::from_enas_text(file, Some(space)).unwrap_err().to_string();
    assert!(in_space("0 1", SearchFor::Macro).contains("a macro fixed_arc of L layers has L(L+1)/2 integers"));
    assert!(in_space("0 1 1", SearchFor::Micro).contains("a micro fixed_arc has 8 integers per node"));
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

/// `cifar10_micro_final.sh`'s fixed_arc, as the script writes it: the normal cell's
/// `x_id x_op y_id y_op` per node, then the reduction cell's.
const MICRO_FINAL_ARC: &str = "0 2 0 0 0 4 0 1 0 4 1 1 1 0 0 1 0 2 1 1
1 0 1 0 0 3 0 2 1 1 3 1 1 0 0 4 0 3 1 1";

/// The number of trainable values of `micro_child.py`'s fixed network outside the auxiliary
/// head (`_build_train`, lines 721-724), counted as the reference creates its weights, for
/// `num_layers` + 2 cells at `out_filters` on `hw` x `hw` images with 10 classes. A BN counts
/// `offset` and `scale` (`image_ops.py` lines 92-107).
fn reference_micro_count(arc: &[usize], num_layers: usize, out_filters: usize, num_cells: usize, hw: usize) -> usize {
    let bn = |c: usize| 2 * c;
    let reduction = |c_in: usize, c_out: usize| 2 * c_in * (c_out / 2) + bn(c_out); // lines 115-163
    let (normal_arc, reduce_arc) = arc.split_at(4 * num_cells); // connect_controller, 815-817
    let pool_distance = num_layers / 3; // lines 109-110
    let pool_layers = [pool_distance, 2 * pool_distance + 1];
    let mut n = 3 * 3 * 3 * (3 * out_filters) + bn(3 * out_filters); // stem_conv, 248-252
    let mut layers = [(3 * out_filters, hw), (3 * out_filters, hw)]; // (channels, size), line 259
    let mut f = out_filters;
    for layer_id in 0..num_layers + 2 {
        let (a, stride) = if pool_layers.contains(&layer_id) {
            f *= 2; // line 274
            (reduce_arc, 2)
        } else {
            (normal_arc, 1)
        };
        // _maybe_calibrate_size, 209-238: x reduced if larger, else convolved if its channels
        // differ; y convolved if its channels differ.
        let [(c0, hw0), (c1, hw1)] = layers;
        if hw0 != hw1 {
            n += reduction(c0, f);
        } else if c0 != f {
            n += c0 * f + bn(f);
        }
        if c1 != f {
            n += c1 * f + bn(f);
        }
        n += f * f + bn(f); // layer_base, 416-424
                            // The cell's states: both inputs at f channels and y's size, then one per node.
        let mut states = vec![(f, hw1), (f, hw1)];
        let mut used = vec![0; num_cells + 2];
        for cell in a.chunks(4) {
            for (id, op) in [(cell[0], cell[1]), (cell[2], cell[3])] {
                used[id] += 1;
                let s = if id < 2 { stride } else { 1 };
                match op {
                    // _fixed_conv, 341-367: two separable convs, depthwise k x k and
                    // pointwise to f, BN each.
                    0 | 1 => n += 2 * ([3, 5][op] * [3, 5][op] * f + f * f + bn(f)),
                    // pools: a conv only if the channels differ (449-454), never here.
                    2 | 3 => {}
                    // identity: a reduction at stride 2 (457-459).
                    _ => n += if s > 1 { reduction(f, f) } else { 0 },
                }
            }
            states.push((f, hw1 / stride));
        }
        // _fixed_combine, 369-401: the unused states, reduced where larger, concatenated.
        let out_hw = (0..num_cells + 2).filter(|&i| used[i] == 0).map(|i| states[i].1).min().unwrap();
        let mut c_out = 0;
        for i in (0..num_cells + 2).filter(|&i| used[i] == 0) {
            let (c, h) = states[i];
            if h > out_hw {
                n += reduction(c, f);
                c_out += f;
            } else {
                c_out += c;
            }
        }
        layers = [layers[1], (c_out, out_hw)];
    }
    n + layers[1].0 * 10 // fc, 335-338: no bias
}

#[test]
fn the_reference_micro_fixed_arc_reads_as_its_two_cells() {
    let arch = MicroArch::from_reference_text(MICRO_FINAL_ARC).unwrap();
    let node = |x, x_op, y, y_op| MicroNode { inputs: [x, y], ops: [x_op, y_op] };
    assert_eq!(arch.normal, [node(0, 2, 0, 0), node(0, 4, 0, 1), node(0, 4, 1, 1), node(1, 0, 0, 1), node(0, 2, 1, 1)]);
    assert_eq!(arch.reduce, [node(1, 0, 1, 0), node(0, 3, 0, 2), node(1, 1, 3, 1), node(1, 0, 0, 4), node(0, 3, 1, 1)]);
    let flat: Vec<usize> = MICRO_FINAL_ARC.split_whitespace().map(|t| t.parse().unwrap()).collect();
    assert_eq!(arch.to_flat(), flat);
    // ENAS concatenates the states no node reads: all five normal nodes, four reduction ones.
    let genotype = arch.to_genotype();
    assert_eq!((genotype.normal_concat, genotype.reduce_concat), (vec![2, 3, 4, 5, 6], vec![2, 4, 5, 6]));
    assert_eq!(genotype.normal[0], ("avg_pool_3x3".to_string(), 0));
    assert_eq!(genotype.reduce[7], ("identity".to_string(), 0));
    // The number of integers picks the space; --search-for overrides it.
    assert_eq!(Architecture::from_enas_text(MICRO_FINAL_ARC, None).unwrap(), Architecture::Cells(arch.to_genotype()));
    assert!(matches!(Architecture::from_enas_text(MACRO_FINAL_ARC, None).unwrap(), Architecture::Macro(_)));

    let micro_err = |text: &str| MicroArch::from_reference_text(text).unwrap_err().to_string();
    let words: Vec<&str> = MICRO_FINAL_ARC.split_whitespace().collect();
    let with = |i: usize, v: &str| {
        let mut w = words.clone();
        w[i] = v;
        w.join(" ")
    };
    for (text, needle) in [
        (String::new(), "8 integers per node"),
        (words[..39].join(" "), "got 39"),
        (format!("{MICRO_FINAL_ARC} 0"), "got 41"),
        (with(1, "5"), "normal cell, node 0: operation 5 is not one of 0..5"),
        (with(0, "2"), "normal cell, node 0: input 2 is not one of 0..=1"),
        (with(22, "6"), "reduce cell, node 0: input 6 is not one of 0..=1"),
        (with(4 * 4 + 20, "7"), "reduce cell, node 4: input 7 is not one of 0..=5"),
        (with(3, "x"), "\"x\" is not a non-negative integer"),
    ] {
        let msg = micro_err(&text);
        assert!(msg.contains(needle), "{text:?}: {msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
    let err = |text: &str, space| Architecture::from_enas_text(text, space).unwrap_err().to_string();
    assert!(err(MACRO_FINAL_ARC, Some(SearchFor::Micro)).contains("8 integers per node (x_id x_op y_id y_op"));
    assert!(err(MICRO_FINAL_ARC, Some(SearchFor::Macro)).contains("L(L+1)/2 integers"));
    assert!(err(&["0"; 41].join(" "), None).contains("41 fits neither"));
    assert!(err(&["0"; 120].join(" "), None).contains("120 fits both: name the space (--search-for macro or micro)"));
}

#[test]
fn the_reference_final_micro_architecture_has_the_reference_parameter_count() {
    let gpu = gpu();
    let arch = MicroArch::from_reference_text(MICRO_FINAL_ARC).unwrap();
    let expected = reference_micro_count(&arch.to_flat(), 15, 36, 5, 32);
    assert_eq!(expected, 3_894_372);
    let config = EvalNetworkConfig::enas_micro(3, 10, &arch);
    assert_eq!(
        (config.channels, config.layers, config.reduction_cells(), config.auxiliary_cell()),
        (36, 17, [5, 11], 12)
    );
    let net = NetworkCifar::new(&gpu, &mut Rng::new(0), config.clone()).unwrap();
    assert_eq!(numel(&net, |n| !n.contains("auxiliary")), expected);
    assert!((net.count_parameters_in_mb() - expected as f64 / 1e6).abs() < 1e-12);
    // DARTS's cells for the same genotype: no layer_base conv, a classifier bias.
    let mut darts = config;
    darts.cell_variant = CellVariant::Darts;
    let darts = NetworkCifar::new(&gpu, &mut Rng::new(0), darts).unwrap();
    let layer_base: usize = [36, 72, 144].iter().zip([5, 6, 6]).map(|(f, cells)| cells * (f * f + 2 * f)).sum();
    assert_eq!(numel(&darts, |n| !n.contains("auxiliary")), expected - layer_base + 10);
}

/// A tiny ENAS micro network runs forward with its auxiliary head after the cell that follows
/// the second reduction: 5 cells (the reference's num_layers 3), reductions at 1 and 3.
#[test]
fn a_tiny_enas_micro_network_runs_with_its_auxiliary_head() {
    let gpu = gpu();
    let arch = MicroArch::from_reference_text(MICRO_FINAL_ARC).unwrap();
    let mut config = EvalNetworkConfig::enas_micro(1, 10, &arch);
    (config.channels, config.layers) = (4, 5);
    assert_eq!((config.reduction_cells(), config.auxiliary_cell()), ([1, 3], 4));
    let net = NetworkCifar::new(&gpu, &mut Rng::new(0), config).unwrap();
    // Every cell has its layer_base conv, f x f at f = 4, 8, 8, 16, 16.
    assert_eq!(numel(&net, |n| n.ends_with(".base.conv.weight")), 16 + 2 * 64 + 2 * 256);
    let x = Tensor::from_slice(&gpu, &[2, 1, 16, 16], &Rng::new(1).uniform_vec(512, -1.0, 1.0)).unwrap();
    let (logits, aux) = net.forward(&x, true, 0.1, &mut Rng::new(2)).unwrap();
    assert_eq!((logits.shape(), aux.unwrap().shape()), (&[2, 10][..], &[2, 10][..]));
    assert_eq!(net.predict(&x).unwrap().shape(), &[2, 10][..]);
}

/// A config saved before `macro_variant` existed built the searched network, and resumes as it;
/// a new config says which it is.
#[test]
fn a_config_without_macro_variant_is_the_searched_network() {
    let config = EvalNetworkConfig::enas_macro(1, 10, six_layers());
    assert_eq!(config.macro_variant, MacroVariant::Reference);
    let mut value = serde_json::to_value(&config).unwrap();
    assert_eq!(value["macro_variant"], "Reference");
    assert_eq!(serde_json::from_value::<EvalNetworkConfig>(value.clone()).unwrap(), config);
    value.as_object_mut().unwrap().remove("macro_variant");
    value.as_object_mut().unwrap().remove("cell_variant");
    let old: EvalNetworkConfig = serde_json::from_value(value).unwrap();
    assert_eq!((old.macro_variant, old.cell_variant), (MacroVariant::Searched, CellVariant::Darts));
}

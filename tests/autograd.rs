//! Gradients by request: `Gpu::grad` gives what `Gpu::backward` gives for the tensors asked for,
//! computes nothing for the others, and leaves every `requires_grad` flag as it found it;
//! `Gpu::recording_for` records only the ops that depend on its tensors.

use wgpu_nas::ops::{elementwise, linear::linear, reduce};
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor};

struct Net {
    x: Tensor,  // [4, 6], no gradient
    w1: Tensor, // [5, 6]
    w2: Tensor, // [3, 5]
}

fn net(gpu: &Gpu) -> Net {
    let mut rng = Rng::new(7);
    let mut param = |shape: &[usize]| {
        let n = shape.iter().product();
        Tensor::param(gpu, shape, &rng.uniform_vec(n, -0.5, 0.5)).unwrap()
    };
    let (w1, w2) = (param(&[5, 6]), param(&[3, 5]));
    let x = Tensor::from_slice(gpu, &[4, 6], &Rng::new(8).uniform_vec(24, -1.0, 1.0)).unwrap();
    Net { x, w1, w2 }
}

/// loss = sum(tanh(tanh(x w1^T) w2^T)): []
fn loss(n: &Net) -> Tensor {
    let h = elementwise::tanh(&linear(&n.x, &n.w1, None).unwrap()).unwrap();
    reduce::sum(&elementwise::tanh(&linear(&h, &n.w2, None).unwrap()).unwrap()).unwrap()
}

#[test]
fn grad_gives_the_backward_gradients_of_what_it_is_asked_for_and_computes_no_other() {
    let gpu = Gpu::new().unwrap();
    let n = net(&gpu);
    let mut all = gpu.backward(&loss(&n)).unwrap();
    let (g1, g2) = (all.take(&n.w1).unwrap().to_vec().unwrap(), all.take(&n.w2).unwrap().to_vec().unwrap());

    // Both at once: the same values.
    let both = gpu.grad(&loss(&n), &[n.w1.clone(), n.w2.clone()]).unwrap();
    assert_eq!(both[0].to_vec().unwrap(), g1);
    assert_eq!(both[1].to_vec().unwrap(), g2);

    // The last layer's weights only: the same value, and less work (no dw1, no dh).
    let l = loss(&n);
    let before = gpu.dispatches();
    let only2 = gpu.grad(&l, std::slice::from_ref(&n.w2)).unwrap();
    let asked = gpu.dispatches() - before;
    assert_eq!(only2[0].to_vec().unwrap(), g2);
    let l = loss(&n);
    let before = gpu.dispatches();
    gpu.backward(&l).unwrap();
    let everything = gpu.dispatches() - before;
    assert!(asked < everything, "grad(w2) ran {asked} dispatches, a full backward {everything}");
    assert!(n.w1.requires_grad() && n.w2.requires_grad(), "the flags switched off for the pass are back on");
    assert_eq!(gpu.tape_len(), 0, "grad consumes the tape");

    // A tensor the loss does not depend on: zeros.
    let other = Tensor::param(&gpu, &[2], &[1.0, 2.0]).unwrap();
    let g = gpu.grad(&loss(&n), &[other]).unwrap();
    assert_eq!(g[0].to_vec().unwrap(), vec![0.0, 0.0]);
}

#[test]
fn recording_for_records_only_the_ops_that_depend_on_its_tensors() {
    let gpu = Gpu::new().unwrap();
    let n = net(&gpu);
    let l = loss(&n);
    let everything = gpu.tape_len();
    let g2 = gpu.grad(&l, std::slice::from_ref(&n.w2)).unwrap()[0].to_vec().unwrap();

    let l = gpu.recording_for(std::slice::from_ref(&n.w2), || loss(&n));
    let scoped = gpu.tape_len();
    assert!(scoped < everything, "{scoped} ops recorded for w2, {everything} for all parameters");
    assert_eq!(gpu.grad(&l, std::slice::from_ref(&n.w2)).unwrap()[0].to_vec().unwrap(), g2);
    // The scope ends with the call: the next recording is whole again.
    let _ = loss(&n);
    assert_eq!(gpu.tape_len(), everything);
    gpu.clear_tape();
}

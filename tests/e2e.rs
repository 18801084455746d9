//! End to end: a two-layer conv net trained with SGD on one fixed random batch drives its loss
//! down by at least 10x in 200 steps, entirely on the GPU: no readback until the end.

use wgpu_nas::nn::{Conv, Linear, Module};
use wgpu_nas::ops::conv::Conv2d;
use wgpu_nas::ops::{elementwise::relu, pool::global_avg_pool, softmax::cross_entropy};
use wgpu_nas::optim::Sgd;
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor};

#[test]
fn two_layer_conv_net_memorises_a_batch() {
    let gpu = Gpu::new().expect("adapter");
    let mut rng = Rng::new(7);
    // x: [8, 3, 8, 8], labels in 0..4
    let (n, classes) = (8, 4);
    let x = Tensor::from_slice(&gpu, &[n, 3, 8, 8], &rng.uniform_vec(n * 3 * 64, -1.0, 1.0)).unwrap();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % classes as u32).collect();
    let y = Tensor::from_u32(&gpu, &[n], &labels).unwrap();

    let conv1 = Conv::new(&gpu, &mut rng, 3, 16, 3, Conv2d::new(1, 1, 1, 1)).unwrap();
    let conv2 = Conv::new(&gpu, &mut rng, 16, 16, 3, Conv2d::new(2, 1, 1, 1)).unwrap();
    let fc = Linear::new(&gpu, &mut rng, 16, classes, true).unwrap();
    let mut params = conv1.param_list();
    params.extend(conv2.param_list());
    params.extend(fc.param_list());
    let mut sgd = Sgd::new(&params, 0.1, 0.9, 0.0, false).unwrap();

    let loss_of = || -> Tensor {
        let h = relu(&conv1.forward(&x).unwrap()).unwrap();
        let h = relu(&conv2.forward(&h).unwrap()).unwrap();
        let f = global_avg_pool(&h).unwrap().reshape(&[n, 16]).unwrap();
        cross_entropy(&fc.forward(&f).unwrap(), &y).unwrap()
    };
    let first = loss_of();
    let first_copy = first.duplicate().unwrap(); // kept on the GPU until the end
    let readbacks = gpu.readbacks();
    let mut loss = first;
    for _ in 0..200 {
        let grads = gpu.backward(&loss).unwrap();
        let g: Vec<Tensor> =
            params.iter().map(|p| grads.get(p).expect("every parameter has a gradient").clone()).collect();
        sgd.step(&params, &g).unwrap();
        loss = loss_of();
    }
    gpu.clear_tape();
    assert_eq!(gpu.readbacks(), readbacks, "no readback during training");
    let (l0, l1) = (first_copy.item().unwrap(), loss.item().unwrap());
    eprintln!("loss {l0:.4} -> {l1:.5} in 200 steps");
    assert!(l1 * 10.0 <= l0, "loss went from {l0} to {l1}: less than a 10x drop");
}

//! The softmax family (softmax, log-softmax, cross-entropy, entropy, accuracy): GPU against
//! plain f64 loops, and against finite differences.

#[path = "support/softmax.rs"]
mod reference;
mod support;

use support::*;
use wgpu_nas::ops::{elementwise as ew, softmax as sm};
use wgpu_nas::rng::Rng;
use wgpu_nas::{Gpu, Tensor};

/// Row lengths: one, two, the DARTS primitive count, CIFAR-10 classes, one past 4 x 64 threads,
/// and a long row (ImageNet-sized).
const KS: [usize; 6] = [1, 2, 8, 10, 257, 1000];

/// A random leading shape of `rows` rows: [rows], [a, b] with a * b = rows, or [1, rows].
fn leading_shape(rng: &mut Rng, rows: usize) -> Vec<usize> {
    match rng.below(3) {
        0 => vec![rows],
        1 => {
            let a = (1..=rows).filter(|a| rows.is_multiple_of(*a)).nth(rng.below(2)).unwrap_or(1);
            vec![a, rows / a]
        }
        _ => vec![1, rows],
    }
}

/// Uniform values in [-scale, scale]: scale 80 puts exp() far past f32's range unless the row
/// max is subtracted.
fn logits(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    rng.uniform_vec(n, -scale, scale)
}

fn labels(rng: &mut Rng, n: usize, k: usize) -> Vec<u32> {
    (0..n).map(|_| rng.below(k) as u32).collect()
}

fn read(t: &Tensor) -> Vec<f32> {
    t.to_vec().unwrap()
}

#[test]
fn softmax_and_log_softmax_match_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    for (case, &k) in KS.iter().cycle().take(18).enumerate() {
        let rows = 1 + rng.below(20);
        let scale = if case % 3 == 2 { 80.0 } else { 3.0 };
        let mut shape = leading_shape(&mut rng, rows);
        shape.push(k);
        let n = rows * k;
        let x = logits(&mut rng, n, scale);
        let dy = rand_vec(&mut rng, n);
        let (x64, dy64) = (to_f64(&x), to_f64(&dy));
        let what = format!("shape {shape:?} scale {scale}");

        let xt = Tensor::param(&gpu, &shape, &x).unwrap();
        let y = sm::softmax(&xt).unwrap();
        assert_eq!(y.shape(), &shape[..]);
        let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, &shape, &dy).unwrap())]).unwrap();
        let y_want = reference::softmax(&x64, k);
        // Probabilities: f32 rounding of exp(x - max), relative to the value.
        assert_close(&format!("softmax {what}"), &read(&y), &y_want, 1e-7, 1e-5);
        // One dot product over the row, rounded in f32.
        let dx_want = reference::softmax_backward(&y_want, &dy64, k);
        assert_close(&format!("dsoftmax {what}"), &read(g.get(&xt).unwrap()), &dx_want, 1e-6, 1e-4);

        let xt = Tensor::param(&gpu, &shape, &x).unwrap();
        let y = sm::log_softmax(&xt).unwrap();
        let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, &shape, &dy).unwrap())]).unwrap();
        // Log-probabilities down to -2 * scale: f32 rounding relative to the value.
        assert_close(&format!("log_softmax {what}"), &read(&y), &reference::log_softmax(&x64, k), 1e-6, 1e-5);
        // sum(dy) over up to 1000 terms of magnitude 1, rounded in f32.
        let dx_want = reference::log_softmax_backward(&x64, &dy64, k);
        assert_close(&format!("dlog_softmax {what}"), &read(g.get(&xt).unwrap()), &dx_want, 1e-5, 1e-4);
    }
}

#[test]
fn cross_entropy_matches_cpu_with_a_gpu_upstream() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    for case in 0..12 {
        let n = 1 + rng.below(7);
        let k = 2 + rng.below(11);
        let scale = if case % 3 == 2 { 80.0 } else { 3.0 };
        let x = logits(&mut rng, n * k, scale);
        let lab = labels(&mut rng, n, k);
        let x64 = to_f64(&x);
        let what = format!("[{n}, {k}] scale {scale}");

        let xt = Tensor::param(&gpu, &[n, k], &x).unwrap();
        let lt = Tensor::from_u32(&gpu, &[n], &lab).unwrap();
        let loss = sm::cross_entropy(&xt, &lt).unwrap();
        assert_eq!(loss.shape(), &[] as &[usize]);
        // The seed is the loss's upstream gradient, read on the GPU by the backward kernel.
        let g = gpu.backward_from(&[(&loss, Tensor::full(&gpu, &[], 0.37).unwrap())]).unwrap();
        // Losses up to 2 * scale: f32 rounding relative to the logits' magnitude.
        let loss_want = reference::cross_entropy(&x64, &lab, k);
        assert_close(&format!("loss {what}"), &read(&loss), &[loss_want], 1e-6 * scale as f64, 1e-5);
        let dx_want = reference::cross_entropy_backward(&x64, &lab, k, 0.37);
        assert_close(&format!("dlogits {what}"), &read(g.get(&xt).unwrap()), &dx_want, 1e-7, 1e-4);

        // The upstream made by another op: L = s * loss gives dlogits = s * ..., ds = loss.
        let xt = Tensor::param(&gpu, &[n, k], &x).unwrap();
        let s = Tensor::param(&gpu, &[1], &[-1.7]).unwrap();
        let scaled = ew::scale(&sm::cross_entropy(&xt, &lt).unwrap(), &s, 0).unwrap();
        let g = gpu.backward(&scaled).unwrap();
        let dx_want = reference::cross_entropy_backward(&x64, &lab, k, -1.7);
        assert_close(&format!("dlogits via scale {what}"), &read(g.get(&xt).unwrap()), &dx_want, 1e-7, 1e-4);
        assert_close(&format!("ds {what}"), &read(g.get(&s).unwrap()), &[loss_want], 1e-6 * scale as f64, 1e-5);
    }

    // Deterministic: the same inputs give the same bits.
    let x = logits(&mut rng, 7 * 10, 5.0);
    let lab = labels(&mut rng, 7, 10);
    let xt = Tensor::from_slice(&gpu, &[7, 10], &x).unwrap();
    let lt = Tensor::from_u32(&gpu, &[7], &lab).unwrap();
    let first = read(&sm::cross_entropy(&xt, &lt).unwrap());
    assert_eq!(read(&sm::cross_entropy(&xt, &lt).unwrap()), first);
}

#[test]
fn out_of_range_labels_and_bad_shapes() {
    let gpu = gpu();
    let x = [0.5f32, -1.0, 2.0, 0.0, 1.0, 3.0];
    let xt = Tensor::param(&gpu, &[2, 3], &x).unwrap();
    // Row 1's label 3 is out of range for K = 3: the loss is NaN, the gradient stays finite.
    let lt = Tensor::from_u32(&gpu, &[2], &[2, 3]).unwrap();
    let loss = sm::cross_entropy(&xt, &lt).unwrap();
    let g = gpu.backward(&loss).unwrap();
    assert!(loss.item().unwrap().is_nan(), "an out-of-range label makes the loss NaN");
    let mut dx_want = reference::softmax(&to_f64(&x), 3);
    dx_want[2] -= 1.0;
    let dx_want: Vec<f64> = dx_want.iter().map(|v| v / 2.0).collect();
    assert_close("dlogits, bad label", &read(g.get(&xt).unwrap()), &dx_want, 1e-7, 1e-5);
    // ... and it never counts as correct (row 1's argmax is 2, row 0's is 2 = its label).
    assert_eq!(read(&sm::accuracy(&xt, &lt).unwrap()), [0.5]);

    let f = Tensor::from_slice(&gpu, &[2], &[0.0, 2.0]).unwrap();
    assert!(sm::cross_entropy(&xt, &f).is_err(), "f32 labels");
    assert!(sm::cross_entropy(&xt, &Tensor::from_u32(&gpu, &[3], &[0, 1, 2]).unwrap()).is_err(), "3 labels, 2 rows");
    assert!(sm::cross_entropy(&xt.reshape(&[6]).unwrap(), &lt).is_err(), "1-d logits");
    assert!(sm::accuracy(&xt, &f).is_err(), "f32 labels");
    assert!(sm::softmax(&Tensor::from_slice(&gpu, &[], &[1.0]).unwrap()).is_err(), "0-d tensor");
    assert!(sm::entropy(&Tensor::from_u32(&gpu, &[2], &[0, 1]).unwrap()).is_err(), "u32 logits");
}

#[test]
fn entropy_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(13);
    // One row: [k] gives a 0-d entropy, [1, k] gives [1].
    for shape in [vec![8], vec![1, 5]] {
        let x = logits(&mut rng, shape.iter().product(), 2.0);
        let h = sm::entropy(&Tensor::from_slice(&gpu, &shape, &x).unwrap()).unwrap();
        assert_eq!(h.shape(), &shape[..shape.len() - 1]);
        let k = *shape.last().unwrap();
        assert_close("entropy, one row", &read(&h), &reference::entropy(&to_f64(&x), k), 1e-6, 1e-5);
    }
    for (case, &k) in KS.iter().cycle().take(12).enumerate() {
        let rows = 1 + rng.below(20);
        let scale = if case % 3 == 2 { 80.0 } else { 3.0 };
        let lead = leading_shape(&mut rng, rows);
        let mut shape = lead.clone();
        shape.push(k);
        let x = logits(&mut rng, rows * k, scale);
        let dh = rand_vec(&mut rng, rows);
        let x64 = to_f64(&x);
        let what = format!("shape {shape:?} scale {scale}");

        let xt = Tensor::param(&gpu, &shape, &x).unwrap();
        let h = sm::entropy(&xt).unwrap();
        assert_eq!(h.shape(), &lead[..]);
        let g = gpu.backward_from(&[(&h, Tensor::from_slice(&gpu, &lead, &dh).unwrap())]).unwrap();
        // Entropies in [0, ln k]; (x - max) * exp(x - max) summed over the row in f32.
        assert_close(&format!("entropy {what}"), &read(&h), &reference::entropy(&x64, k), 1e-5, 1e-4);
        // p * (log p + H): log p carries f32 rounding of (x - max), up to 2 * scale.
        let dx_want = reference::entropy_backward(&x64, &to_f64(&dh), k);
        assert_close(&format!("dentropy {what}"), &read(g.get(&xt).unwrap()), &dx_want, 2e-6, 1e-4);
    }
}

#[test]
fn accuracy_matches_cpu_with_ties() {
    let gpu = gpu();
    let mut rng = Rng::new(14);
    for case in 0..10 {
        let n = 1 + rng.below(20);
        let k = [2, 3, 10, 257][case % 4];
        // Logits from {0, 1, 2}: most rows tie for the max, and ties go to the lowest index.
        let x: Vec<f32> = (0..n * k).map(|_| rng.below(3) as f32).collect();
        let lab = labels(&mut rng, n, k);
        let xt = Tensor::param(&gpu, &[n, k], &x).unwrap();
        let acc = sm::accuracy(&xt, &Tensor::from_u32(&gpu, &[n], &lab).unwrap()).unwrap();
        assert_eq!(acc.shape(), &[] as &[usize]);
        // A count of 0s and 1s divided by n: exact up to one f32 rounding.
        assert_close(
            &format!("accuracy [{n}, {k}]"),
            &read(&acc),
            &[reference::accuracy(&to_f64(&x), &lab, k)],
            1e-7,
            0.0,
        );
    }
    assert_eq!(gpu.tape_len(), 0, "accuracy is not recorded");
    // Labels that are the lowest maximum index score 1, any other tied index 0.
    let xt = Tensor::from_slice(&gpu, &[2, 4], &[1.0, 5.0, 5.0, 0.0, 7.0, 7.0, 7.0, 7.0]).unwrap();
    assert_eq!(read(&sm::accuracy(&xt, &Tensor::from_u32(&gpu, &[2], &[1, 0]).unwrap()).unwrap()), [1.0]);
    assert_eq!(read(&sm::accuracy(&xt, &Tensor::from_u32(&gpu, &[2], &[2, 3]).unwrap()).unwrap()), [0.0]);
}

#[test]
fn many_rows_fold_the_grid() {
    // 70,000 rows: more workgroups than one grid dimension holds.
    let gpu = gpu();
    let mut rng = Rng::new(15);
    let (rows, k) = (70_000, 2);
    let x = logits(&mut rng, rows * k, 3.0);
    let y = sm::softmax(&Tensor::from_slice(&gpu, &[rows, k], &x).unwrap()).unwrap();
    assert_close("softmax, 70000 rows", &read(&y), &reference::softmax(&to_f64(&x), k), 1e-7, 1e-5);
}

#[test]
fn finite_differences() {
    let gpu: Gpu = gpu();
    let mut rng = Rng::new(16);
    // Small logits keep f32 central differences (eps 1e-3) accurate to about 1e-3.
    let x = logits(&mut rng, 3 * 5, 1.5);
    let input = || vec![(vec![3, 5], x.clone())];
    check_finite_differences(&gpu, &input(), |t| sm::softmax(&t[0]).unwrap(), 1e-3, 15, 1e-2, 1);
    check_finite_differences(&gpu, &input(), |t| sm::log_softmax(&t[0]).unwrap(), 1e-3, 15, 1e-2, 2);
    check_finite_differences(&gpu, &input(), |t| sm::entropy(&t[0]).unwrap(), 1e-3, 15, 1e-2, 3);
    let lt = Tensor::from_u32(&gpu, &[3], &[4, 0, 2]).unwrap();
    check_finite_differences(&gpu, &input(), |t| sm::cross_entropy(&t[0], &lt).unwrap(), 1e-3, 15, 1e-2, 4);
}

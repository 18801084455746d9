//! Layout ops (concat and slice along channels, the channel shuffle, the spatial window): GPU against plain f64
//! loops, forward and backward, and against finite differences. Every value is a copy of an
//! input or a zero, so the comparisons with the CPU are exact.

#[path = "support/layout.rs"]
mod reference;
mod support;

use support::*;
use wgpu_nas::ops::layout;
use wgpu_nas::rng::Rng;
use wgpu_nas::Tensor;

#[test]
fn concat_channels_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    let (n, h, w) = (2, 3, 5);
    // 1 to 4 inputs (a DARTS cell concatenates 4 nodes, FactorizedReduce 2).
    for channels in [&[3][..], &[2, 5], &[1, 3, 2], &[4, 1, 2, 3]] {
        let shapes: Vec<[usize; 4]> = channels.iter().map(|&c| [n, c, h, w]).collect();
        let data: Vec<Vec<f32>> = shapes.iter().map(|s| rand_vec(&mut rng, s.iter().product())).collect();
        // The second input (if any) needs no gradient: its slot in the backward is skipped.
        let xs: Vec<Tensor> = shapes
            .iter()
            .zip(&data)
            .enumerate()
            .map(|(k, (s, d))| if k == 1 { Tensor::from_slice(&gpu, s, d) } else { Tensor::param(&gpu, s, d) }.unwrap())
            .collect();
        let y = layout::concat_channels(&xs.iter().collect::<Vec<_>>()).unwrap();
        let data64: Vec<Vec<f64>> = data.iter().map(|d| to_f64(d)).collect();
        let refs: Vec<(&[f64], [usize; 4])> = data64.iter().map(|d| &d[..]).zip(shapes.iter().copied()).collect();
        let what = format!("concat {channels:?}");
        assert_eq!(y.shape(), [n, channels.iter().sum(), h, w], "{what}");
        assert_close(&what, &y.to_vec().unwrap(), &reference::concat_channels(&refs), 0.0, 0.0);

        let dy = rand_vec(&mut rng, y.numel());
        let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, y.shape(), &dy).unwrap())]).unwrap();
        let want = reference::concat_channels_backward(&to_f64(&dy), &shapes);
        for (k, (x, want)) in xs.iter().zip(&want).enumerate() {
            match g.get(x) {
                None => assert_eq!(k, 1, "{what}: input {k} got no gradient"),
                Some(dx) => {
                    assert_ne!(k, 1, "{what}: input 1 needs no gradient");
                    assert_close(&format!("d {what} input {k}"), &dx.to_vec().unwrap(), want, 0.0, 0.0);
                }
            }
        }
    }
}

#[test]
fn slice_channels_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(22);
    let shape = [2, 7, 3, 4];
    let x = rand_vec(&mut rng, shape.iter().product());
    for (start, len) in [(0, 7), (0, 1), (3, 2), (6, 1), (1, 5)] {
        let xt = Tensor::param(&gpu, &shape, &x).unwrap();
        let y = layout::slice_channels(&xt, start, len).unwrap();
        let what = format!("slice_channels {start}+{len}");
        assert_close(&what, &y.to_vec().unwrap(), &reference::slice_channels(&to_f64(&x), shape, start, len), 0.0, 0.0);
        let dy = rand_vec(&mut rng, y.numel());
        let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, y.shape(), &dy).unwrap())]).unwrap();
        let want = reference::slice_channels_backward(&to_f64(&dy), shape, start, len);
        assert_close(&format!("d {what}"), &g.get(&xt).unwrap().to_vec().unwrap(), &want, 0.0, 0.0);
    }
}

#[test]
fn channel_shuffle_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(25);
    // (N, C, H, W), groups: 1 is a copy (PC-DARTS with K=1), C groups the identity too; K=4 on
    // 8 and 16 channels as in a PC-DARTS edge.
    let rows: [([usize; 4], usize); 6] = [
        ([2, 4, 3, 3], 1),
        ([2, 4, 3, 3], 4),
        ([2, 8, 3, 2], 4),
        ([1, 16, 2, 2], 4),
        ([3, 6, 2, 3], 2),
        ([1, 6, 1, 5], 3),
    ];
    for (shape, groups) in rows {
        let x = rand_vec(&mut rng, shape.iter().product());
        let xt = Tensor::param(&gpu, &shape, &x).unwrap();
        let y = layout::channel_shuffle(&xt, groups).unwrap();
        let what = format!("channel_shuffle {shape:?} groups {groups}");
        assert_eq!(y.shape(), shape, "{what}");
        let want = reference::channel_shuffle(&to_f64(&x), shape, groups);
        assert_close(&what, &y.to_vec().unwrap(), &want, 0.0, 0.0);
        if groups > 1 && groups < shape[1] {
            assert_ne!(to_f64(&x), want, "{what}: the rows must permute something");
        }
        let dy = rand_vec(&mut rng, y.numel());
        let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, y.shape(), &dy).unwrap())]).unwrap();
        let want = reference::channel_shuffle_backward(&to_f64(&dy), shape, groups);
        assert_close(&format!("d {what}"), &g.get(&xt).unwrap().to_vec().unwrap(), &want, 0.0, 0.0);
    }
}

#[test]
fn window_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(23);
    // (N, C, H, W), offset, output size, stride.
    type Row = ([usize; 4], (isize, isize), (usize, usize), usize);
    let rows: [Row; 9] = [
        ([2, 3, 5, 6], (0, 0), (5, 6), 1),   // identity
        ([3, 4, 18, 19], (1, 1), (9, 9), 2), // 12 planes: workgroups loop over several; 2x2 tiles
        ([2, 3, 5, 6], (1, 1), (3, 3), 2),   // FactorizedReduce's shifted path, odd height
        ([1, 5, 8, 8], (1, 1), (4, 4), 2),   // ... and on an even size
        ([2, 3, 5, 6], (0, 0), (3, 3), 2),   // the strided `none` op's subsampling
        ([2, 3, 5, 6], (-1, 2), (4, 5), 1),  // zero fill at the top and right
        ([1, 3, 7, 7], (2, -3), (4, 4), 2),  // zero fill at the left and bottom
        ([3, 2, 4, 5], (-2, -2), (6, 7), 3), // mostly outside
        ([1, 3, 4, 5], (4, 5), (2, 2), 1),   // entirely outside: all zeros
    ];
    for (shape, offset, out, stride) in rows {
        let x = rand_vec(&mut rng, shape.iter().product());
        let xt = Tensor::param(&gpu, &shape, &x).unwrap();
        let y = layout::window(&xt, offset, out, stride).unwrap();
        let what = format!("window {shape:?} offset {offset:?} out {out:?} stride {stride}");
        assert_eq!(y.shape(), [shape[0], shape[1], out.0, out.1], "{what}");
        assert_close(
            &what,
            &y.to_vec().unwrap(),
            &reference::window(&to_f64(&x), shape, offset, out, stride),
            0.0,
            0.0,
        );
        let dy = rand_vec(&mut rng, y.numel());
        let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, y.shape(), &dy).unwrap())]).unwrap();
        let want = reference::window_backward(&to_f64(&dy), shape, offset, out, stride);
        assert_close(&format!("d {what}"), &g.get(&xt).unwrap().to_vec().unwrap(), &want, 0.0, 0.0);
    }

    // shift_crop is the same-size window shifted by (dh, dw).
    let shape = [2, 3, 5, 4];
    let x = rand_vec(&mut rng, shape.iter().product());
    let y = layout::shift_crop(&Tensor::from_slice(&gpu, &shape, &x).unwrap(), 1, 2).unwrap();
    let want = reference::window(&to_f64(&x), shape, (1, 2), (5, 4), 1);
    assert_close("shift_crop", &y.to_vec().unwrap(), &want, 0.0, 0.0);
}

#[test]
fn layout_matches_finite_differences() {
    let gpu = gpu();
    let mut rng = Rng::new(24);
    let inputs = [
        (vec![1, 2, 2, 3], rand_vec(&mut rng, 12)),
        (vec![1, 1, 2, 3], rand_vec(&mut rng, 6)),
        (vec![1, 3, 2, 3], rand_vec(&mut rng, 18)),
    ];
    let concat = |t: &[Tensor]| layout::concat_channels(&[&t[0], &t[1], &t[2]]).unwrap();
    check_finite_differences(&gpu, &inputs, concat, 1e-3, 18, 1e-2, 1);
    let x = [(vec![2, 4, 2, 2], rand_vec(&mut rng, 32))];
    check_finite_differences(&gpu, &x, |t| layout::slice_channels(&t[0], 1, 2).unwrap(), 1e-3, 32, 1e-2, 2);
    let x = [(vec![1, 2, 5, 4], rand_vec(&mut rng, 40))];
    check_finite_differences(&gpu, &x, |t| layout::window(&t[0], (-1, 1), (3, 2), 2).unwrap(), 1e-3, 40, 1e-2, 3);
    let x = [(vec![1, 6, 2, 2], rand_vec(&mut rng, 24))];
    check_finite_differences(&gpu, &x, |t| layout::channel_shuffle(&t[0], 3).unwrap(), 1e-3, 24, 1e-2, 5);
    // FactorizedReduce's layout: the two stride-2 paths of one input, concatenated; x's
    // gradient is the sum of both.
    let x = [(vec![1, 2, 3, 3], rand_vec(&mut rng, 18))];
    let both_paths = |t: &[Tensor]| {
        let a = layout::window(&t[0], (0, 0), (2, 2), 2).unwrap();
        let b = layout::window(&t[0], (1, 1), (2, 2), 2).unwrap();
        layout::concat_channels(&[&a, &b]).unwrap()
    };
    check_finite_differences(&gpu, &x, both_paths, 1e-3, 18, 1e-2, 4);
}

#[test]
fn bad_layout_arguments_are_errors() {
    let gpu = gpu();
    let a = Tensor::zeros(&gpu, &[2, 3, 4, 4]).unwrap();
    let b = Tensor::zeros(&gpu, &[2, 3, 4, 5]).unwrap();
    assert!(layout::concat_channels(&[]).is_err(), "nothing to concatenate");
    assert!(layout::concat_channels(&[&a, &b]).is_err(), "widths differ");
    assert!(layout::concat_channels(&[&a, &Tensor::zeros(&gpu, &[2, 3, 16]).unwrap()]).is_err(), "rank 3");
    assert!(layout::slice_channels(&a, 2, 2).is_err(), "past the last channel");
    assert!(layout::slice_channels(&a, 0, 0).is_err(), "empty slice");
    assert!(layout::channel_shuffle(&a, 2).is_err(), "2 groups of 3 channels");
    assert!(layout::channel_shuffle(&a, 0).is_err(), "no groups");
    assert!(layout::window(&a, (0, 0), (2, 2), 0).is_err(), "stride 0");
    assert!(layout::window(&a, (0, 0), (0, 2), 1).is_err(), "empty output");
}

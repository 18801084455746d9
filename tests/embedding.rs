//! Embedding lookup: GPU rows and the table gradient (repeated indices summed) against a plain
//! CPU loop, finite differences, and the documented out-of-range behaviour.

mod support;

use support::*;
use wgpu_nas::ops::embedding::embedding;
use wgpu_nas::rng::Rng;
use wgpu_nas::Tensor;

/// CPU reference: y [N, D] = table [V, D] rows at idx [N]; dtable [V, D] sums dy rows per index.
/// Indices >= V read zeros and send nothing back, as the kernel documents.
fn reference(table: &[f64], idx: &[u32], dy: &[f64], vocab: usize, dim: usize) -> (Vec<f64>, Vec<f64>) {
    let mut y = vec![0.0; idx.len() * dim];
    let mut dtable = vec![0.0; vocab * dim];
    for (s, &v) in idx.iter().enumerate() {
        let v = v as usize;
        if v < vocab {
            for d in 0..dim {
                y[s * dim + d] = table[v * dim + d];
                dtable[v * dim + d] += dy[s * dim + d];
            }
        }
    }
    (y, dtable)
}

#[test]
fn embedding_matches_cpu_with_repeated_and_out_of_range_indices() {
    let gpu = gpu();
    let mut rng = Rng::new(31);
    // (V, D, indices): repeats, every row picked, rows never picked, and indices past the table.
    let cases: [(usize, usize, Vec<u32>); 4] = [
        (1, 1, vec![0]),
        (5, 3, vec![2, 2, 0, 4, 2, 1, 0]),
        (7, 33, vec![6, 0, 6, 6, 3]),
        (4, 9, vec![3, 4, 1, 1000, 3]),
    ];
    for (vocab, dim, idx) in cases {
        let n = idx.len();
        let table = rand_vec(&mut rng, vocab * dim);
        let dy = rand_vec(&mut rng, n * dim);
        let tt = Tensor::param(&gpu, &[vocab, dim], &table).unwrap(); // table: [V, D]
        let it = Tensor::from_u32(&gpu, &[n], &idx).unwrap(); // idx: [N]
        let y = embedding(&tt, &it).unwrap();
        assert_eq!(y.shape(), [n, dim]);
        let g = gpu.backward_from(&[(&y, Tensor::from_slice(&gpu, &[n, dim], &dy).unwrap())]).unwrap();
        let (want_y, want_dt) = reference(&to_f64(&table), &idx, &to_f64(&dy), vocab, dim);
        // A gather is exact; the gradient sums at most N f32 values.
        assert_close(&format!("V{vocab} D{dim}: y"), &y.to_vec().unwrap(), &want_y, 0.0, 0.0);
        assert_close(&format!("V{vocab} D{dim}: dtable"), &g.get(&tt).unwrap().to_vec().unwrap(), &want_dt, 1e-6, 1e-6);
        assert!(g.get(&it).is_none(), "indices get no gradient");
    }
}

#[test]
fn embedding_matches_finite_differences_and_checks_its_inputs() {
    let gpu = gpu();
    let mut rng = Rng::new(32);
    let idx = Tensor::from_u32(&gpu, &[4], &[1, 0, 1, 2]).unwrap();
    // The lookup is linear in the table, so a large step is exact up to f32 rounding.
    check_finite_differences(
        &gpu,
        &[(vec![3, 2], rand_vec(&mut rng, 6))],
        |t| embedding(&t[0], &idx).unwrap(),
        1e-2,
        6,
        1e-3,
        33,
    );

    let table = Tensor::zeros(&gpu, &[3, 2]).unwrap();
    let float_idx = Tensor::zeros(&gpu, &[4]).unwrap();
    assert!(embedding(&table, &float_idx).is_err(), "indices must be u32");
    let idx_2d = Tensor::from_u32(&gpu, &[2, 2], &[0, 1, 2, 0]).unwrap();
    assert!(embedding(&table, &idx_2d).is_err(), "indices must be [N]");
    let flat_table = Tensor::zeros(&gpu, &[6]).unwrap();
    assert!(embedding(&flat_table, &idx).is_err(), "table must be [V, D]");
}

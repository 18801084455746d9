//! Per-step scalars (losses, accuracies) wait on the GPU in one ring buffer and come back in one
//! readback every N steps: a step copies its scalars into the ring (no allocation, no readback),
//! so its temporaries go back to the pool at once and a warm step allocates nothing.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::{read_all, Tensor};

pub struct MetricsRing {
    /// [capacity, width]
    ring: Tensor,
    width: usize,
    rows: usize,
}

impl MetricsRing {
    /// A ring of `capacity` rows (steps) of `width` scalars; it grows if a caller pushes more
    /// rows than that between two reads.
    pub fn new(gpu: &Gpu, capacity: usize, width: usize) -> Result<MetricsRing> {
        Ok(MetricsRing { ring: Tensor::zeros(gpu, &[capacity.max(1), width.max(1)])?, width, rows: 0 })
    }

    /// Rows pushed since the last read.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Copies one step's scalars (each a one-element tensor) into the next row, on the GPU.
    pub fn push(&mut self, scalars: &[&Tensor]) -> Result<()> {
        if scalars.len() != self.width || scalars.iter().any(|t| t.numel() != 1) {
            return Err(Error::shape("metrics ring", format!("expected {} one-element tensors", self.width)));
        }
        if self.rows == self.ring.shape()[0] {
            let bigger = Tensor::zeros(self.ring.gpu(), &[2 * self.rows, self.width])?;
            self.ring.copy_into(&bigger, 0)?;
            self.ring = bigger;
        }
        for (k, t) in scalars.iter().enumerate() {
            t.copy_into(&self.ring, self.rows * self.width + k)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Reads `extra` tensors and the pushed rows back in one go and empties the ring.
    pub async fn read_with(&mut self, extra: &[&Tensor]) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
        let mut refs = extra.to_vec();
        refs.push(&self.ring);
        let mut values = read_all(&refs).await?;
        let ring = values.pop().expect("the ring was read");
        let rows = ring.chunks(self.width).take(self.rows).map(<[f32]>::to_vec).collect();
        self.rows = 0;
        Ok((values, rows))
    }
}

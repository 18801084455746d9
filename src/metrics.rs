//! Per-step scalars (losses, accuracies) wait on the GPU in one ring buffer and come back in one
//! readback every N steps: a step copies its scalars into the ring (no allocation, no readback),
//! so its temporaries go back to the pool at once and a warm step allocates nothing. Each row
//! keeps the step it belongs to ([`PendingStep`]), so a loop needs no list of its own.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::{read_all, Tensor};

/// The step a row of the ring belongs to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PendingStep {
    /// Epoch of the step, from 0.
    pub epoch: usize,
    /// Global step number, from 0.
    pub step: u64,
    /// The learning rate at that step.
    pub lr: f32,
}

/// Each step's scalars, `[capacity, width]` on the GPU, waiting to be read back together.
pub struct MetricsRing {
    /// [capacity, width]
    ring: Tensor,
    width: usize,
    /// One per row pushed since the last read.
    steps: Vec<PendingStep>,
}

impl MetricsRing {
    /// A ring of `capacity` rows (steps) of `width` scalars; it grows if a caller pushes more
    /// rows than that between two reads.
    pub fn new(gpu: &Gpu, capacity: usize, width: usize) -> Result<MetricsRing> {
        Ok(MetricsRing { ring: Tensor::zeros(gpu, &[capacity.max(1), width.max(1)])?, width, steps: vec![] })
    }

    /// Rows pushed since the last read.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether no row was pushed since the last read.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Copies one step's scalars (each a one-element tensor) into the next row, on the GPU.
    pub fn push(&mut self, step: PendingStep, scalars: &[&Tensor]) -> Result<()> {
        if scalars.len() != self.width || scalars.iter().any(|t| t.numel() != 1) {
            return Err(Error::shape("metrics ring", format!("expected {} one-element tensors", self.width)));
        }
        let row = self.steps.len();
        if row == self.ring.shape()[0] {
            let bigger = Tensor::zeros(self.ring.gpu(), &[2 * row, self.width])?;
            self.ring.copy_into(&bigger, 0)?;
            self.ring = bigger;
        }
        for (k, t) in scalars.iter().enumerate() {
            t.copy_into(&self.ring, row * self.width + k)?;
        }
        self.steps.push(step);
        Ok(())
    }

    /// Reads `extra` tensors and the pushed rows back in one go and empties the ring: (the
    /// extra tensors' values, each pushed step with its scalars).
    pub async fn read_with(&mut self, extra: &[&Tensor]) -> Result<(Vec<Vec<f32>>, Vec<(PendingStep, Vec<f32>)>)> {
        let mut refs = extra.to_vec();
        refs.push(&self.ring);
        let mut values = read_all(&refs).await?;
        let ring = values.pop().expect("the ring was read");
        let rows = self.steps.drain(..).zip(ring.chunks(self.width)).map(|(s, r)| (s, r.to_vec())).collect();
        Ok((values, rows))
    }
}

//! Batches on the device: a [`Loader`] (host side: order, augmentation, cursor) whose batches are
//! uploaded into two reusable tensor pairs, so a step allocates nothing for its data.

use std::ops::{Deref, DerefMut};

use super::tensor::Tensor;
use super::Gpu;
use crate::data::{Batch, Loader};
use crate::error::Result;

/// A [`Loader`] that hands out its batches on the GPU. Everything else (cursor, state, rewind)
/// is the loader's, reached through `Deref`.
pub struct DeviceLoader {
    loader: Loader,
    /// Two reusable (images, labels) pairs for full batches, written alternately.
    slots: [Option<(Tensor, Tensor)>; 2],
    next_slot: usize,
}

/// Uploads a batch into new tensors: images f32 `[B, C, H, W]`, labels u32 `[B]`.
pub fn upload_batch(gpu: &Gpu, batch: &Batch) -> Result<(Tensor, Tensor)> {
    Ok((Tensor::from_slice(gpu, &batch.shape, &batch.images)?, Tensor::from_u32(gpu, &[batch.len()], &batch.labels)?))
}

impl DeviceLoader {
    /// Wraps `loader`; its cursor is left where it is.
    pub fn new(loader: Loader) -> DeviceLoader {
        DeviceLoader { loader, slots: [None, None], next_slot: 0 }
    }

    /// The next batch on the GPU: images f32 `[B, C, H, W]`, labels u32 `[B]`.
    ///
    /// Full batches are written (with [`Tensor::write`], ordered with the recorded GPU work)
    /// into one of two tensor pairs used alternately, so no buffer is allocated per step and
    /// the upload of batch k+1 never overwrites batch k while a step may still use it. After
    /// the upload the following batch is prepared on the host, while the GPU works on what was
    /// submitted. The returned tensors therefore hold this batch until the next-but-one call;
    /// copy them ([`Tensor::duplicate`]) to keep them longer. A smaller last batch (without
    /// `drop_last`) gets fresh tensors of its own shape.
    pub fn next(&mut self, gpu: &Gpu) -> Result<(Tensor, Tensor)> {
        let batch = self.loader.next_batch();
        let pair = if batch.len() == self.loader.config().batch_size {
            let slot = self.next_slot;
            self.next_slot = 1 - slot;
            match &self.slots[slot] {
                Some((images, labels)) => {
                    images.write(&batch.images)?;
                    // `Tensor::write` copies bytes; the u32 labels go through unchanged.
                    labels.write(bytemuck::cast_slice(&batch.labels))?;
                    (images.clone(), labels.clone())
                }
                None => {
                    let pair = upload_batch(gpu, &batch)?;
                    self.slots[slot] = Some(pair.clone());
                    pair
                }
            }
        } else {
            upload_batch(gpu, &batch)?
        };
        self.loader.prefetch();
        Ok(pair)
    }
}

impl Deref for DeviceLoader {
    type Target = Loader;
    fn deref(&self) -> &Loader {
        &self.loader
    }
}

impl DerefMut for DeviceLoader {
    fn deref_mut(&mut self) -> &mut Loader {
        &mut self.loader
    }
}

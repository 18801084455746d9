//! Buffer pool: storage buffers are kept by exact (rounded) size and handed out again, so a
//! training step that repeats the same shapes allocates nothing after its first run, and the
//! bind-group cache (keyed by buffer ids) hits.
//!
//! Reuse is safe without waiting for the GPU: every write to a pooled buffer is recorded in
//! stream order (dispatch, copy or clear), never through `Queue::write_buffer`.
//!
//! A request gets the free buffer of its size with the lowest id, whatever order buffers were
//! released in: a step that starts with the same free buffers allocates the same buffers in the
//! same order every time, so its bind groups repeat and stay cached.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Gpu, GpuBuffer};

#[derive(Default)]
pub(super) struct BufferPool {
    /// Free buffers by size, then by id.
    free: HashMap<u64, BTreeMap<u64, GpuBuffer>>,
    in_use: u64,
    peak: u64,
    total: u64,
}

/// GPU memory held through the pool, in bytes.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct MemoryStats {
    /// Held by live tensors now.
    pub in_use: u64,
    /// Most held by live tensors at once since the last reset.
    pub peak: u64,
    /// Allocated from the device in all (live plus free in the pool).
    pub total: u64,
}

/// Buffers are sized in multiples of 16 bytes (and at least 16): wgpu needs multiples of 4 for
/// copies, and a coarser size class lets more shapes share buffers.
pub(super) fn round(bytes: u64) -> u64 {
    bytes.max(16).div_ceil(16) * 16
}

impl BufferPool {
    pub fn alloc(&mut self, gpu: &Gpu, bytes: u64) -> GpuBuffer {
        let size = round(bytes);
        self.in_use += size;
        self.peak = self.peak.max(self.in_use);
        if let Some((_, buf)) = self.free.get_mut(&size).and_then(BTreeMap::pop_first) {
            return buf;
        }
        self.total += size;
        let raw = gpu.0.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            // UNIFORM too: kernels may read a small tensor (a filter) as a uniform buffer.
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::UNIFORM
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        GpuBuffer { id: gpu.next_id(), raw, bytes: size }
    }

    pub fn release(&mut self, buf: GpuBuffer) {
        self.in_use -= buf.bytes;
        self.free.entry(buf.bytes).or_default().insert(buf.id, buf);
    }

    pub fn stats(&self) -> MemoryStats {
        MemoryStats { in_use: self.in_use, peak: self.peak, total: self.total }
    }

    pub fn reset_peak(&mut self) {
        self.peak = self.in_use;
    }
}

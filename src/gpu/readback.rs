//! Readback: async at the core (the same code on the web), with a blocking wrapper natively.
//! Several buffers come back with one submission and one map.

use super::{Gpu, GpuBuffer};
use crate::error::{Error, Result};

impl Gpu {
    /// Copies the first `len` bytes of each buffer to the host, in one submission.
    pub(crate) async fn read_buffers(&self, parts: &[(&GpuBuffer, u64)]) -> Result<Vec<Vec<u8>>> {
        let mut offsets = Vec::with_capacity(parts.len());
        let mut total = 0u64;
        for &(_, len) in parts {
            offsets.push(total);
            total += len.div_ceil(4) * 4;
        }
        let staging = self.0.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut rec = self.0.recorder.borrow_mut();
            rec.readbacks += 1;
            for (&(buf, len), &off) in parts.iter().zip(&offsets) {
                if len > 0 {
                    rec.copy(&self.0.device, &buf.raw, 0, &staging, off, len.div_ceil(4) * 4);
                }
            }
        }
        self.flush();

        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.0.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::DeviceLost(e.to_string()))?;
        match rx.receive().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Readback(e.to_string())),
            None => return Err(Error::Readback("the map callback was dropped".into())),
        }
        if let Some(fault) = self.take_fault() {
            return Err(fault);
        }
        let view = staging.slice(..).get_mapped_range().map_err(|e| Error::Readback(format!("{e:?}")))?;
        let out = parts
            .iter()
            .zip(&offsets)
            .map(|(&(_, len), &off)| view[off as usize..(off + len) as usize].to_vec())
            .collect();
        drop(view);
        staging.unmap();
        Ok(out)
    }
}

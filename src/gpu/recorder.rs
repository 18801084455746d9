//! Command recording: dispatches go into one open compute pass of one command encoder, and are
//! submitted together (on `Gpu::flush`, before a readback, or every `MAX_PENDING` dispatches),
//! so a training step is a handful of submissions, not one per op.

use wgpu::util::DeviceExt;

/// Dispatches recorded before an automatic submission: bounds the size of one command buffer.
const MAX_PENDING: u32 = 2048;

#[derive(Default)]
pub(super) struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    pending: u32,
    pub submissions: u64,
    pub dispatches: u64,
    pub readbacks: u64,
    /// FLOPs of the dispatches recorded so far (as the ops count them).
    pub flops: u64,
    /// Every dispatch, kept while a profile trace is on.
    pub trace: Option<super::profile::Trace>,
}

impl Recorder {
    fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None; // a copy or clear cannot be recorded while a pass is open
        self.encoder
            .get_or_insert_with(|| device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None }))
    }

    /// Records a dispatch; returns true when the caller should submit.
    pub fn dispatch(
        &mut self,
        device: &wgpu::Device,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        workgroups: [u32; 3],
    ) -> bool {
        if self.pass.is_none() {
            let pass = self
                .encoder(device)
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None })
                .forget_lifetime();
            self.pass = Some(pass);
        }
        let pass = self.pass.as_mut().expect("pass just opened");
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        self.pending += 1;
        self.dispatches += 1;
        self.pending >= MAX_PENDING
    }

    pub fn copy(
        &mut self,
        device: &wgpu::Device,
        src: &wgpu::Buffer,
        so: u64,
        dst: &wgpu::Buffer,
        d_o: u64,
        bytes: u64,
    ) {
        self.encoder(device).copy_buffer_to_buffer(src, so, dst, d_o, bytes);
        self.pending += 1;
    }

    pub fn upload(&mut self, device: &wgpu::Device, dst: &wgpu::Buffer, offset: u64, data: &[u8]) {
        // Copies need sizes in multiples of 4; pad the staging data.
        let mut padded;
        let bytes = if data.len().is_multiple_of(4) {
            data
        } else {
            padded = data.to_vec();
            padded.resize(data.len().div_ceil(4) * 4, 0);
            &padded[..]
        };
        let staging = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("upload"),
            contents: bytes,
            usage: wgpu::BufferUsages::COPY_SRC,
        });
        self.copy(device, &staging, 0, dst, offset, bytes.len() as u64);
    }

    pub fn clear(&mut self, device: &wgpu::Device, dst: &wgpu::Buffer, bytes: u64) {
        self.encoder(device).clear_buffer(dst, 0, Some(bytes.div_ceil(4) * 4));
        self.pending += 1;
    }

    /// Closes the pass and the encoder; `None` when nothing was recorded.
    pub fn finish(&mut self) -> Option<wgpu::CommandBuffer> {
        self.pass = None;
        let encoder = self.encoder.take()?;
        self.pending = 0;
        self.submissions += 1;
        Some(encoder.finish())
    }
}

//! The GPU context: device and queue, the kernel caches, the buffer pool, command recording and
//! readback. Everything above this layer talks to the GPU through [`Gpu`].
//!
//! A `Gpu` is a cheap handle (`Rc`); clone it freely. It is single-threaded by design, the same
//! on native and on the web.

mod adapter;
mod denormals;
mod device_loader;
mod kernels;
mod pool;
mod profile;
mod readback;
mod recorder;
pub(crate) mod shaders;
pub(crate) mod tape;
pub mod tensor;

#[cfg(not(target_arch = "wasm32"))]
pub use adapter::list as list_adapters;
pub use adapter::{AdapterSummary, Tuning};
pub use device_loader::{upload_batch, DeviceLoader};
pub(crate) use kernels::Dispatch;
pub use pool::MemoryStats;
pub use profile::{KernelTime, Trace};
pub use shaders::{source as shader_source, PRELUDE, SHADERS};

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crate::error::Result;
use kernels::KernelCache;
use pool::BufferPool;
use recorder::Recorder;
use tape::Tape;

/// Invocations per workgroup of the 1-D kernels: within the browser's limit of 256.
pub const WORKGROUP: u32 = 256;

/// Handle to a wgpu device with everything the ops need.
#[derive(Clone)]
pub struct Gpu(pub(crate) Rc<GpuInner>);

pub(crate) struct GpuInner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    tuning: Cell<Tuning>,
    /// Buffers no tensor uses, for the unused slots of multi-tensor kernels ([`Gpu::spares`]).
    spares: RefCell<Vec<Rc<GpuBuffer>>>,
    /// Uniform buffers no tensor uses, by size, for kernels' unread uniform bindings
    /// ([`Gpu::uniform_spare`]).
    uniform_spares: RefCell<Vec<Rc<GpuBuffer>>>,
    pool: RefCell<BufferPool>,
    kernels: RefCell<KernelCache>,
    recorder: RefCell<Recorder>,
    pub(crate) tape: RefCell<Tape>,
    pub(crate) grad_enabled: Cell<bool>,
    next_id: Cell<u64>,
    /// The first validation error or device loss wgpu reported (devices we created only; a
    /// caller's device keeps the caller's handlers). Surfaced as an `Error` at the next readback.
    fault: Arc<Mutex<Option<crate::Error>>>,
}

/// A storage buffer owned by the pool, with an id that stays the same while it lives (the key of
/// the bind-group cache).
pub(crate) struct GpuBuffer {
    pub id: u64,
    pub raw: wgpu::Buffer,
    pub bytes: u64,
}

/// Storage buffers one kernel binds at most (the DARTS mixed op's weighted sum of up to 8
/// candidate outputs); the web's portable budget, above WebGPU's default of 8, so devices are
/// created with the adapter's own limits. `tests/shaders.rs` checks every kernel against it.
pub const MAX_STORAGE_BUFFERS_USED: u32 = 10;

impl Gpu {
    /// Picks an adapter (hardware first; `WGPU_BACKEND`, `WGPU_ADAPTER_INDEX` (the number in
    /// [`list_adapters`]' order, by name) and `WGPU_ADAPTER_NAME` honoured) and creates a device
    /// on it.
    ///
    /// The driver's worker threads flush subnormal floats to zero (x86: see `denormals.rs`;
    /// lavapipe ran a pointwise product 15 times slower on them).
    pub async fn new_async() -> Result<Gpu> {
        let _flush = denormals::FlushDenormals::new();
        let (adapter, summary) = adapter::select().await?;
        let limits = adapter.limits();
        if limits.max_storage_buffers_per_shader_stage < MAX_STORAGE_BUFFERS_USED {
            return Err(crate::Error::Config(format!(
                "adapter {summary} binds at most {} storage buffers per shader stage; wgpu-nas's kernels need \
                 {MAX_STORAGE_BUFFERS_USED}. Use another adapter (WGPU_ADAPTER_NAME, or a newer browser)",
                limits.max_storage_buffers_per_shader_stage
            )));
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-nas"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|source| crate::Error::RequestDevice { adapter: summary.name.clone(), source })?;
        let gpu = Self::build(device, queue, summary);
        gpu.watch_faults();
        Ok(gpu)
    }

    /// Routes wgpu's uncaptured errors (validation, out of memory, a shader the driver rejects)
    /// and device loss into `fault`, the first one kept, so that the next readback fails with it
    /// instead of a panic natively or zeros and a console warning on the web.
    fn watch_faults(&self) {
        let fault = self.0.fault.clone();
        self.0.device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            fault.lock().unwrap().get_or_insert(crate::Error::Gpu(e.to_string()));
        }));
        let fault = self.0.fault.clone();
        self.0.device.set_device_lost_callback(move |reason, msg| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                fault.lock().unwrap().get_or_insert(crate::Error::DeviceLost(msg));
            }
        });
    }

    /// Blocking [`Gpu::new_async`], for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Gpu> {
        pollster::block_on(Self::new_async())
    }

    /// Uses a device the caller already owns (a game engine's, a visualiser's). The caller keeps
    /// its own clones of `device` and `queue`; our work goes into the same queue. Create it with
    /// at least [`MAX_STORAGE_BUFFERS_USED`] storage buffers per shader stage (WebGPU's default
    /// limits give 8; `adapter.limits()` gives what the adapter has), and keep your own
    /// uncaptured-error handler: wgpu-nas installs none on a caller's device.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Gpu {
        let summary = AdapterSummary::from_device();
        Self::build(device, queue, summary)
    }

    fn build(device: wgpu::Device, queue: wgpu::Queue, adapter: AdapterSummary) -> Gpu {
        let limits = device.limits();
        let adapter_tuning = adapter.tuning();
        Gpu(Rc::new(GpuInner {
            device,
            queue,
            adapter,
            limits,
            tuning: Cell::new(adapter_tuning),
            spares: RefCell::new(Vec::new()),
            uniform_spares: RefCell::new(Vec::new()),
            pool: RefCell::new(BufferPool::default()),
            kernels: RefCell::new(KernelCache::default()),
            recorder: RefCell::new(Recorder::default()),
            tape: RefCell::new(Tape::default()),
            grad_enabled: Cell::new(true),
            next_id: Cell::new(1),
            fault: Arc::new(Mutex::new(None)),
        }))
    }

    /// The wgpu device everything runs on.
    pub fn device(&self) -> &wgpu::Device {
        &self.0.device
    }

    /// The queue submissions go to.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.0.queue
    }

    /// What the adapter is, for reports.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.0.adapter
    }

    /// The kernel shapes used on this adapter ([`AdapterSummary::tuning`] unless set).
    pub fn tuning(&self) -> Tuning {
        self.0.tuning.get()
    }

    /// Use other kernel shapes from now on (every choice computes the same values; tests run
    /// each, benchmarks compare them). The depthwise rows must be 1, 2 or 4.
    pub fn set_tuning(&self, tuning: Tuning) -> crate::Result<()> {
        if ![1, 2, 4].contains(&tuning.depthwise_rows) {
            return Err(crate::Error::shape(
                "tuning",
                format!("depthwise_rows must be 1, 2 or 4, got {}", tuning.depthwise_rows),
            ));
        }
        self.0.tuning.set(tuning);
        Ok(())
    }

    /// The device's limits (e.g. `max_storage_buffer_binding_size`, which bounds a tensor's size).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.0.limits
    }

    /// The first GPU error reported since the last call, if any.
    pub fn take_fault(&self) -> Option<crate::Error> {
        self.0.fault.lock().unwrap().take()
    }

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.0.next_id.get();
        self.0.next_id.set(id + 1);
        id
    }

    /// `n` distinct 16-byte storage buffers that no tensor uses, made once per device: what a
    /// multi-tensor kernel binds to the slots past its group's end, which it never touches.
    /// Those slots cannot repeat a tensor of the group: WebGPU rejects a buffer bound twice in
    /// one dispatch where either binding is writable.
    pub(crate) fn spares(&self, n: usize) -> Vec<Rc<GpuBuffer>> {
        let mut spares = self.0.spares.borrow_mut();
        while spares.len() < n {
            let raw = self.0.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("spare"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            spares.push(Rc::new(GpuBuffer { id: self.next_id(), raw, bytes: 16 }));
        }
        spares[..n].to_vec()
    }

    /// A uniform buffer of `bytes` bytes that no tensor uses, made once per device and size:
    /// what a kernel binds to a uniform array it is told not to read (its data stayed in
    /// storage), which WebGPU still wants bound at the declared size.
    pub(crate) fn uniform_spare(&self, bytes: u64) -> Rc<GpuBuffer> {
        let mut spares = self.0.uniform_spares.borrow_mut();
        if let Some(b) = spares.iter().find(|b| b.bytes == bytes) {
            return b.clone();
        }
        let raw = self.0.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("uniform spare"),
            size: bytes,
            usage: wgpu::BufferUsages::UNIFORM,
            mapped_at_creation: false,
        });
        let spare = Rc::new(GpuBuffer { id: self.next_id(), raw, bytes });
        spares.push(spare.clone());
        spare
    }

    /// A storage buffer of at least `bytes` bytes from the pool (contents undefined).
    pub(crate) fn alloc(&self, bytes: u64) -> Result<GpuBuffer> {
        let limit = self.0.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(crate::Error::TooLarge { bytes, limit });
        }
        Ok(self.0.pool.borrow_mut().alloc(self, bytes))
    }

    pub(crate) fn release(&self, buf: GpuBuffer) {
        self.0.pool.borrow_mut().release(buf);
    }

    /// Bytes held by tensors now, at most since the last [`Gpu::reset_peak_memory`], and held
    /// by the pool in all.
    pub fn memory(&self) -> MemoryStats {
        self.0.pool.borrow().stats()
    }

    /// Starts a new peak: [`Gpu::memory`]'s peak becomes the bytes held now.
    pub fn reset_peak_memory(&self) {
        self.0.pool.borrow_mut().reset_peak();
    }

    /// Records one compute dispatch (see [`Dispatch`]). Pipelines, uniform buffers and bind
    /// groups come from caches; the dispatch joins the open compute pass.
    pub(crate) fn dispatch(&self, d: Dispatch<'_>) {
        let (pipeline, bind_group) = self.0.kernels.borrow_mut().prepare(self, &d);
        let mut recorder = self.0.recorder.borrow_mut();
        recorder.flops += d.flops;
        if let Some(trace) = &mut recorder.trace {
            trace.entries.push(profile::TraceEntry {
                shader: d.shader,
                entry: d.entry,
                constants: d.constants.to_vec(),
                workgroups: d.workgroups,
                pipeline: pipeline.clone(),
                bind_group: bind_group.clone(),
                flops: d.flops,
                bytes: d.buffers.iter().map(|b| b.bytes).sum(),
            });
        }
        let flush = recorder.dispatch(&self.0.device, &pipeline, &bind_group, d.workgroups);
        drop(recorder);
        if flush {
            self.flush();
        }
    }

    /// Records a copy of `bytes` bytes between two pooled buffers, in stream order.
    pub(crate) fn copy(&self, src: &GpuBuffer, src_offset: u64, dst: &GpuBuffer, dst_offset: u64, bytes: u64) {
        self.0.recorder.borrow_mut().copy(&self.0.device, &src.raw, src_offset, &dst.raw, dst_offset, bytes);
    }

    /// Records an upload of `data` into `dst` at `offset`, in stream order (a staging copy, so
    /// that it lands after the work already recorded, unlike `Queue::write_buffer`).
    pub(crate) fn upload(&self, dst: &GpuBuffer, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.0.recorder.borrow_mut().upload(&self.0.device, &dst.raw, offset, data);
    }

    /// Records a zero fill of `bytes` bytes of `dst` from its start, in stream order.
    pub(crate) fn clear(&self, dst: &GpuBuffer, bytes: u64) {
        self.0.recorder.borrow_mut().clear(&self.0.device, &dst.raw, bytes);
    }

    /// Submits everything recorded so far.
    pub fn flush(&self) {
        let cmd = self.0.recorder.borrow_mut().finish();
        if let Some(cmd) = cmd {
            self.0.queue.submit([cmd]);
        }
    }

    /// Submits and waits until the GPU has finished all submitted work (native only; on the web
    /// await a readback instead).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn synchronize(&self) {
        self.flush();
        let _ = self.0.device.poll(wgpu::PollType::wait_indefinitely());
    }

    /// Number of submissions made so far (a test checks that a step batches its dispatches).
    pub fn submissions(&self) -> u64 {
        self.0.recorder.borrow().submissions
    }

    /// Number of readbacks (GPU to host copies) so far: a training step makes none.
    pub fn readbacks(&self) -> u64 {
        self.0.recorder.borrow().readbacks
    }

    /// Number of dispatches recorded so far.
    pub fn dispatches(&self) -> u64 {
        self.0.recorder.borrow().dispatches
    }

    /// FLOPs of the dispatches recorded so far, as the ops count them from their shapes.
    pub fn flops(&self) -> u64 {
        self.0.recorder.borrow().flops
    }

    /// Number of compute pipelines created so far (each costs a shader compilation).
    pub fn pipelines_created(&self) -> usize {
        self.0.kernels.borrow().pipelines_created()
    }

    /// Number of bind groups created so far (a warm training step creates none).
    pub fn bind_groups_created(&self) -> u64 {
        self.0.kernels.borrow().bind_groups_created
    }
}

/// Workgroup counts for `n` threads of a 1-D kernel of [`WORKGROUP`] invocations. Past 65535
/// workgroups the grid folds into y; kernels compute `i = gid.x + gid.y * nwg.x * WORKGROUP`.
pub fn grid_1d(n: usize) -> [u32; 3] {
    grid_1d_of(n, WORKGROUP)
}

/// [`grid_1d`] for kernels of `workgroup` invocations (`i = gid.x + gid.y * nwg.x * workgroup`).
pub fn grid_1d_of(n: usize, workgroup: u32) -> [u32; 3] {
    let groups = (n as u64).div_ceil(workgroup as u64).max(1);
    if groups <= 65535 {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(65535);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}

/// Planes one workgroup of a plane kernel loops over: on lavapipe a workgroup of 64 that writes
/// 64 values costs more to start than to run (window_backward on [32, 16, 32, 32]: 8,192
/// workgroups, 3.2 ms).
pub const PLANES_PER_WORKGROUP: usize = 8;

/// The grid of a plane kernel (`@workgroup_size(8, 8)` over a `cols` x `rows` plane, at
/// (gid.x, gid.y)): z over the `planes`, each workgroup looping over planes wid.z, wid.z +
/// nwg.z, ..., up to [`PLANES_PER_WORKGROUP`] of them (more past 65535 workgroups).
pub fn grid_planes(cols: usize, rows: usize, planes: usize) -> [u32; 3] {
    let z = planes.div_ceil(PLANES_PER_WORKGROUP).clamp(1, 65535);
    [cols.div_ceil(8) as u32, rows.div_ceil(8) as u32, z as u32]
}

/// Workgroup counts for one workgroup per output of a reduction kernel (`n` outputs), folded
/// into y past 65535; kernels compute `o = wid.x + wid.y * nwg.x`.
pub fn grid_groups(n: usize) -> [u32; 3] {
    let n = (n as u64).max(1);
    if n <= 65535 {
        [n as u32, 1, 1]
    } else {
        let y = n.div_ceil(65535);
        [n.div_ceil(y) as u32, y as u32, 1]
    }
}

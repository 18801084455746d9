//! Per-kernel profile of recorded work: while a trace is on, every dispatch is kept with its
//! pipeline, bind group, workgroup count and op-counted FLOPs and bytes; afterwards the trace is
//! replayed one kernel class (entry point, pipeline constants, workgroup grid) at a time, each
//! class's dispatches in one submission, and timed on the host. Replay needs no timestamp-query
//! feature, so it works on every adapter (lavapipe has none that wgpu exposes in passes).

#[cfg(not(target_arch = "wasm32"))]
use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;

use super::Gpu;

/// One recorded dispatch (replayed natively only: on the web the fields are kept but unread).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) struct TraceEntry {
    pub shader: &'static str,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, f64)>,
    pub workgroups: [u32; 3],
    pub pipeline: Rc<wgpu::ComputePipeline>,
    pub bind_group: Rc<wgpu::BindGroup>,
    pub flops: u64,
    /// Bytes of the storage buffers bound (an upper bound on the memory traffic).
    pub bytes: u64,
}

/// The dispatches recorded between [`Gpu::start_trace`] and [`Gpu::take_trace`].
#[derive(Default)]
pub struct Trace {
    pub(crate) entries: Vec<TraceEntry>,
}

impl Trace {
    /// Dispatches of `shader` whose entry point's name starts with `entry` (`"max_forward"`
    /// counts `max_forward`, `max_forward_arg` and `max_forward_arg_strips`).
    pub fn count(&self, shader: &str, entry: &str) -> usize {
        self.entries.iter().filter(|e| e.shader == shader && e.entry.starts_with(entry)).count()
    }

    /// Dispatches recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was dispatched.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Time spent in one kernel class over a trace.
#[derive(Clone, Debug, Serialize)]
pub struct KernelTime {
    /// `shader::entry`, e.g. `conv::forward`.
    pub kernel: String,
    /// Pipeline constants and workgroup grid, e.g. `KH=3 KW=3 | 128x1x1`.
    pub class: String,
    /// Dispatches of this class in the trace.
    pub calls: usize,
    /// The fastest replay of all of them together, in seconds.
    pub seconds: f64,
    /// Floating-point operations of all of them, as the ops count them (a multiply-add is 2).
    pub flops: u64,
    /// Bytes of the buffers they bind, summed over the calls.
    pub bytes: u64,
}

impl Gpu {
    /// Starts keeping every dispatch (for [`Gpu::replay`]); a running trace restarts.
    pub fn start_trace(&self) {
        self.0.recorder.borrow_mut().trace = Some(Trace::default());
    }

    /// Stops tracing and returns what was recorded since [`Gpu::start_trace`].
    pub fn take_trace(&self) -> Trace {
        self.0.recorder.borrow_mut().trace.take().unwrap_or_default()
    }

    /// Replays `trace` grouped by kernel class, each class `reps` times in its own submission,
    /// and returns the fastest time of each class, slowest class first. Replayed kernels write
    /// into their buffers again: call it when the traced results are no longer needed.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn replay(&self, trace: &Trace, reps: usize) -> Vec<KernelTime> {
        let mut classes: Vec<(String, String, Vec<&TraceEntry>)> = vec![];
        let mut index: HashMap<String, usize> = HashMap::new();
        for e in &trace.entries {
            let constants: Vec<String> = e.constants.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let [x, y, z] = e.workgroups;
            let class = format!("{} | {x}x{y}x{z}", constants.join(" "));
            let kernel = format!("{}::{}", e.shader, e.entry);
            let key = format!("{kernel} {class}");
            let i = *index.entry(key).or_insert_with(|| {
                classes.push((kernel, class, vec![]));
                classes.len() - 1
            });
            classes[i].2.push(e);
        }
        self.synchronize();
        let mut out: Vec<KernelTime> = classes
            .into_iter()
            .map(|(kernel, class, entries)| {
                let mut best = f64::INFINITY;
                for _ in 0..reps.max(1) {
                    let mut encoder =
                        self.0.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
                    {
                        let mut pass = encoder
                            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                        for e in &entries {
                            pass.set_pipeline(&e.pipeline);
                            pass.set_bind_group(0, &*e.bind_group, &[]);
                            pass.dispatch_workgroups(e.workgroups[0], e.workgroups[1], e.workgroups[2]);
                        }
                    }
                    let started = std::time::Instant::now();
                    self.0.queue.submit([encoder.finish()]);
                    let _ = self.0.device.poll(wgpu::PollType::wait_indefinitely());
                    best = best.min(started.elapsed().as_secs_f64());
                }
                KernelTime {
                    kernel,
                    class,
                    calls: entries.len(),
                    seconds: best,
                    flops: entries.iter().map(|e| e.flops).sum(),
                    bytes: entries.iter().map(|e| e.bytes).sum(),
                }
            })
            .collect();
        out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        out
    }
}

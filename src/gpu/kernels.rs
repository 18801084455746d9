//! Kernel caches: shader modules by file, pipelines by (file, entry point, override constants),
//! uniform parameter buffers by content, and bind groups by (pipeline, buffers). After the first
//! step of a training loop every lookup hits, so the hot loop creates no GPU objects.

use std::collections::HashMap;
use std::rc::Rc;

use wgpu::util::DeviceExt;

use super::{shaders, Gpu, GpuBuffer};

/// One compute dispatch. Binding convention of every WGSL entry point: `@group(0)
/// @binding(0)` is a uniform struct of parameters (`params`, read by every entry point), and
/// `@binding(1..)` are the storage buffers, in the order of `buffers`.
pub(crate) struct Dispatch<'a> {
    /// File stem under `shaders/`, e.g. `"conv"`.
    pub shader: &'static str,
    pub entry: &'static str,
    /// Pipeline-overridable constants (a kernel variant), e.g. `&[("K", 3.0)]`.
    pub constants: &'a [(&'static str, f64)],
    pub params: &'a [u8],
    pub buffers: &'a [&'a GpuBuffer],
    pub workgroups: [u32; 3],
    /// Floating-point operations the dispatch performs (a multiply-add counts 2), counted by the
    /// op from its shapes; 0 for data movement. Summed per step by `bench darts`.
    pub flops: u64,
}

/// Panics if one buffer is bound to two slots of `d` and either slot is written: WebGPU's
/// validation rejects that dispatch (native backends run it), so it is a bug in the op.
#[cfg(debug_assertions)]
fn assert_no_writable_alias(d: &Dispatch<'_>, writable: &[u32]) {
    for (i, a) in d.buffers.iter().enumerate() {
        for (j, b) in d.buffers.iter().enumerate().skip(i + 1) {
            let written = writable.contains(&(i as u32 + 1)) || writable.contains(&(j as u32 + 1));
            assert!(
                !(a.id == b.id && written),
                "{}::{}: one buffer bound to bindings {} and {}, one of them writable (WebGPU rejects this)",
                d.shader,
                d.entry,
                i + 1,
                j + 1
            );
        }
    }
}

type PipelineKey = (&'static str, &'static str, Vec<(&'static str, u64)>);

struct Pipeline {
    id: u64,
    raw: Rc<wgpu::ComputePipeline>,
    layout: wgpu::BindGroupLayout,
    /// The bindings the entry point writes (debug builds check bind groups against them).
    #[cfg(debug_assertions)]
    writable: Vec<u32>,
}

#[derive(Default)]
pub(super) struct KernelCache {
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    /// Per shader, each entry point's written bindings (debug builds).
    #[cfg(debug_assertions)]
    writable: HashMap<&'static str, Vec<(String, Vec<u32>)>>,
    pipelines: HashMap<PipelineKey, Pipeline>,
    uniforms: HashMap<Vec<u8>, GpuBuffer>,
    bind_groups: HashMap<(u64, Vec<u64>), Rc<wgpu::BindGroup>>,
    pub bind_groups_created: u64,
}

/// Caps on the content-keyed caches: a run whose shapes keep changing must not grow them
/// without bound. Reaching a cap clears the cache (it refills on the next step).
const MAX_UNIFORMS: usize = 8192;
const MAX_BIND_GROUPS: usize = 16384;

impl KernelCache {
    pub fn pipelines_created(&self) -> usize {
        self.pipelines.len()
    }

    pub fn prepare(&mut self, gpu: &Gpu, d: &Dispatch<'_>) -> (Rc<wgpu::ComputePipeline>, Rc<wgpu::BindGroup>) {
        let device = &gpu.0.device;
        let key: PipelineKey = (d.shader, d.entry, d.constants.iter().map(|&(k, v)| (k, v.to_bits())).collect());
        if !self.pipelines.contains_key(&key) {
            let trusted = gpu.0.adapter.backend_has_robust_access();
            let module = self.modules.entry(d.shader).or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(d.shader),
                    source: wgpu::ShaderSource::Wgsl(shaders::source(d.shader).into()),
                };
                if trusted {
                    // SAFETY: memory safety stays with the driver, whose robust buffer access
                    // (Vulkan's robustBufferAccess, D3D12's bounds-checked views) keeps every
                    // access inside its binding; naga's own clamp on every load and store is a
                    // second copy of that check. Every loop of our shaders is bounded by its
                    // parameters, and every divisor is a size the ops have checked to be non-zero
                    // (the op tests run every kernel). Lavapipe ran the DARTS step 9% faster
                    // (README, performance).
                    unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
                } else {
                    device.create_shader_module(desc)
                }
            });
            let raw = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(d.entry),
                layout: None,
                module,
                entry_point: Some(d.entry),
                compilation_options: wgpu::PipelineCompilationOptions { constants: d.constants, ..Default::default() },
                cache: None,
            });
            let layout = raw.get_bind_group_layout(0);
            let id = gpu.next_id();
            #[cfg(debug_assertions)]
            let writable = {
                let by_entry = self.writable.entry(d.shader).or_insert_with(|| shaders::writable_bindings(d.shader));
                by_entry.iter().find(|(e, _)| e == d.entry).map(|(_, w)| w.clone()).unwrap_or_default()
            };
            self.pipelines.insert(
                key.clone(),
                Pipeline {
                    id,
                    raw: Rc::new(raw),
                    layout,
                    #[cfg(debug_assertions)]
                    writable,
                },
            );
        }
        let pipeline = &self.pipelines[&key];

        if self.uniforms.len() >= MAX_UNIFORMS || self.bind_groups.len() >= MAX_BIND_GROUPS {
            self.uniforms.clear();
            self.bind_groups.clear();
        }
        let uniform = self.uniforms.entry(d.params.to_vec()).or_insert_with(|| {
            // Uniform structs are sized in multiples of 16 bytes.
            let mut contents = d.params.to_vec();
            contents.resize(contents.len().max(16).div_ceil(16) * 16, 0);
            let raw = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: &contents,
                usage: wgpu::BufferUsages::UNIFORM,
            });
            GpuBuffer { id: gpu.next_id(), raw, bytes: contents.len() as u64 }
        });

        let mut ids = Vec::with_capacity(d.buffers.len() + 1);
        ids.push(uniform.id);
        ids.extend(d.buffers.iter().map(|b| b.id));
        let bg_key = (pipeline.id, ids);
        let bind_group = match self.bind_groups.get(&bg_key) {
            Some(bg) => bg.clone(),
            None => {
                #[cfg(debug_assertions)]
                assert_no_writable_alias(d, &pipeline.writable);
                let mut entries = Vec::with_capacity(d.buffers.len() + 1);
                entries.push(wgpu::BindGroupEntry { binding: 0, resource: uniform.raw.as_entire_binding() });
                for (i, b) in d.buffers.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.raw.as_entire_binding() });
                }
                let bg = Rc::new(device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(d.entry),
                    layout: &pipeline.layout,
                    entries: &entries,
                }));
                self.bind_groups_created += 1;
                self.bind_groups.insert(bg_key, bg.clone());
                bg
            }
        };
        (pipeline.raw.clone(), bind_group)
    }
}

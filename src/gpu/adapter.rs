//! Adapter selection: hardware before software, `WGPU_BACKEND`, `WGPU_ADAPTER_INDEX` and
//! `WGPU_ADAPTER_NAME` honoured,
//! and a typed error (never a panic) when nothing fits.

use serde::Serialize;

use crate::error::{Error, Result};

/// What the run reports about the adapter it used.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    /// The adapter's name as the driver gives it (e.g. `llvmpipe (LLVM 19.1.7, 256 bits)`).
    pub name: String,
    /// The backend, as wgpu names it (`Vulkan`, `Metal`, `Dx12`, `Gl`, `BrowserWebGpu`).
    pub backend: String,
    /// What kind of device it is (`DiscreteGpu`, `IntegratedGpu`, `Cpu`, ...).
    pub device_type: String,
    /// The driver's name and version, where the backend reports them.
    pub driver: String,
}

impl AdapterSummary {
    fn of(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: if info.name.is_empty() { "(unnamed adapter)".into() } else { info.name.clone() },
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
        }
    }

    /// Whether the backend bounds-checks buffer accesses itself (Vulkan's robust buffer access,
    /// which wgpu enables; D3D12's buffer views, whose out-of-range reads return zero), so that
    /// our shaders can skip naga's duplicate checks. Not for Metal (no such guarantee), GL, the
    /// browser (which checks regardless) or a caller's device (whose backend we do not know).
    pub(super) fn backend_has_robust_access(&self) -> bool {
        matches!(self.backend.as_str(), "Vulkan" | "Dx12")
    }

    pub(super) fn from_device() -> Self {
        AdapterSummary {
            name: "caller's device".into(),
            backend: "caller's".into(),
            device_type: "unknown".into(),
            driver: String::new(),
        }
    }
}

/// Kernel shapes that depend on the adapter, where measurements on two adapters disagreed.
/// Everything else is the same everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Tuning {
    /// Depthwise convolutions' forward pass and input gradient as `depthwise.rs`'s register
    /// strips; false: the direct kernels of `conv.rs`, one output per invocation. (The weight
    /// gradient always takes the strips: the direct one is several times slower everywhere.)
    pub depthwise_strips: bool,
    /// Output rows per invocation of the stride-1 strips forward pass (`ROWS`: 1, 2 or 4).
    pub depthwise_rows: usize,
    /// BatchNorm in training runs one workgroup per channel where a channel has at most this
    /// many values (N*H*W), the per-plane kernels otherwise; 0: always per plane.
    pub bn_channel_max_values: u32,
    /// The pointwise convolutions read their weights from a uniform copy (where they hold at
    /// most 16384 values) instead of storage. On a CPU adapter the lanes of a SIMD batch read
    /// different weights and a uniform gather beats storage loads lane by lane; on a GPU, lanes
    /// of one warp reading different uniform addresses serialise, so GPUs keep storage until
    /// someone measures one.
    pub pointwise_uniform_weights: bool,
}

impl Tuning {
    /// Measured on lavapipe (`bench darts`, C=8, 5 cells, batch 32): 4 rows beat 2 by 12-15%,
    /// one workgroup per channel beats three dispatches up to 4096 values. Every CPU adapter
    /// but SwiftShader takes it; [`Tuning::GPU`] starts from it. The page's default search (C=4, 3 cells, batch 8, 14x14) ran 1.22 s per step there, 1.78 s
    /// with the direct depthwise kernels.
    pub const LAVAPIPE: Tuning = Tuning {
        depthwise_strips: true,
        depthwise_rows: 4,
        bn_channel_max_values: 4096,
        pointwise_uniform_weights: true,
    };
    /// Every other adapter (GPUs, and a caller's own device, whose kind we do not know):
    /// lavapipe's shapes with the pointwise weights in storage (see
    /// [`Tuning::pointwise_uniform_weights`]).
    pub const GPU: Tuning = Tuning { pointwise_uniform_weights: false, ..Tuning::LAVAPIPE };
    /// SwiftShader (Chromium's WebGPU fallback: its Subzero compiler makes slow code of the
    /// register strips, and its barriers cost more than the dispatches they save). The page's
    /// default search, `bench darts` on SwiftShader's Vulkan driver: 3.48 s per step with
    /// [`Tuning::LAVAPIPE`]; 2.81 s with 1-row strips; 2.55 s with BN per plane too; 1.95 s
    /// with the direct depthwise kernels too (this). In headless Chromium the page ran 0.36-0.42
    /// steps per second with this, 0.28-0.38 with [`Tuning::LAVAPIPE`] and 0.34-0.35 with this
    /// but BN per channel (1,760 fewer dispatches, which cost more than they save there).
    pub const SWIFTSHADER: Tuning = Tuning {
        depthwise_strips: false,
        depthwise_rows: 1,
        bn_channel_max_values: 0,
        pointwise_uniform_weights: false,
    };

    /// These shapes with `overrides` applied: comma-separated `field=value` pairs, e.g.
    /// `depthwise_rows=2,pointwise_uniform_weights=false` (what `bench darts --tuning` takes).
    pub fn with(mut self, overrides: &str) -> Result<Tuning> {
        let bad = |what: String| {
            Error::Config(format!(
                "tuning: {what}; expected field=value pairs, comma-separated, of depthwise_strips \
                 (true/false), depthwise_rows (1, 2, 4), bn_channel_max_values (a count), \
                 pointwise_uniform_weights (true/false)"
            ))
        };
        for pair in overrides.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| bad(format!("{pair:?} has no '='")))?;
            let flag = || value.parse::<bool>().map_err(|_| bad(format!("{key}={value:?} is not true or false")));
            let count = || value.parse::<u32>().map_err(|_| bad(format!("{key}={value:?} is not a count")));
            match key.trim() {
                "depthwise_strips" => self.depthwise_strips = flag()?,
                "depthwise_rows" => self.depthwise_rows = count()? as usize,
                "bn_channel_max_values" => self.bn_channel_max_values = count()?,
                "pointwise_uniform_weights" => self.pointwise_uniform_weights = flag()?,
                other => return Err(bad(format!("no tuning field {other:?}"))),
            }
        }
        Ok(self)
    }
}

impl AdapterSummary {
    /// The kernel shapes for this adapter: SwiftShader's by name, or in the browser the
    /// fallback (CPU) adapter, which Chromium implements with SwiftShader and which often gives
    /// no name; [`Tuning::LAVAPIPE`] for every other CPU adapter; [`Tuning::GPU`] for the rest.
    pub fn tuning(&self) -> Tuning {
        let swiftshader = self.name.to_lowercase().contains("swiftshader")
            || (self.backend == "BrowserWebGpu" && self.device_type == "Cpu");
        if swiftshader {
            Tuning::SWIFTSHADER
        } else if self.device_type == "Cpu" {
            Tuning::LAVAPIPE
        } else {
            Tuning::GPU
        }
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        // The driver's version says which lavapipe a figure came from (22.3 and 25 differ 2x).
        if !self.driver.is_empty() {
            write!(f, "; {}", self.driver)?;
        }
        write!(f, ")")
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// The backends `WGPU_BACKEND` names (all when unset); a name wgpu does not know is an error
/// (wgpu itself skips it, and an empty set then reads as "no driver installed").
#[cfg(not(target_arch = "wasm32"))]
fn backends() -> Result<wgpu::Backends> {
    let Ok(value) = std::env::var("WGPU_BACKEND") else { return Ok(wgpu::Backends::all()) };
    const KNOWN: [&str; 9] = ["vulkan", "vk", "dx12", "d3d12", "metal", "mtl", "opengl", "gles", "gl"];
    if let Some(bad) = value.split(',').map(|b| b.trim().to_lowercase()).find(|b| !KNOWN.contains(&b.as_str())) {
        return Err(Error::Config(format!(
            "WGPU_BACKEND={value:?}: {bad:?} names no backend; use vulkan, metal, dx12 or gl \
             (comma-separated), or unset it"
        )));
    }
    Ok(wgpu::Backends::from_comma_list(&value))
}

/// Every adapter the instance sees (native), for `wgpu-nas devices`.
#[cfg(not(target_arch = "wasm32"))]
pub async fn list() -> Result<Vec<(AdapterSummary, wgpu::Limits)>> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = backends()?;
    let mut out: Vec<_> = instance
        .enumerate_adapters(backends)
        .await
        .into_iter()
        .map(|a| (AdapterSummary::of(&a.get_info()), a.limits()))
        .collect();
    out.sort_by_key(|(s, _)| s.name.clone());
    Ok(out)
}

#[cfg(not(target_arch = "wasm32"))]
pub(super) async fn select() -> Result<(wgpu::Adapter, AdapterSummary)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = backends()?;
    let mut adapters = instance.enumerate_adapters(backends).await;
    if adapters.is_empty() {
        return Err(Error::NoAdapter { backends: format!("backends {backends:?}") });
    }
    // WGPU_ADAPTER_INDEX: the adapter's number in `wgpu-nas devices` (its list, sorted by name),
    // so that tasks sharing a multi-GPU node each take their own.
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_INDEX") {
        let mut infos: Vec<(String, usize)> =
            adapters.iter().enumerate().map(|(i, a)| (AdapterSummary::of(&a.get_info()).name, i)).collect();
        infos.sort();
        let seen: Vec<String> = infos.iter().enumerate().map(|(n, (name, _))| format!("{n}: {name}")).collect();
        let Some(&(_, at)) = wanted.trim().parse::<usize>().ok().and_then(|n| infos.get(n)) else {
            return Err(Error::Config(format!(
                "WGPU_ADAPTER_INDEX={wanted:?} (--adapter) is not the number of an adapter: {} (wgpu-nas devices)",
                seen.join("; ")
            )));
        };
        let adapter = adapters.swap_remove(at);
        let summary = AdapterSummary::of(&adapter.get_info());
        return Ok((adapter, summary));
    }
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let needle = wanted.to_lowercase();
        let seen: Vec<String> = adapters.iter().map(|a| AdapterSummary::of(&a.get_info()).to_string()).collect();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&needle));
        if adapters.is_empty() {
            return Err(Error::AdapterNotFound { wanted, seen: seen.join("; ") });
        }
    }
    // Hardware first; among equals, the order the instance gave (Vulkan before GL).
    adapters.sort_by_key(|a| rank(a.get_info().device_type));
    let adapter = adapters.swap_remove(0);
    let summary = AdapterSummary::of(&adapter.get_info());
    Ok((adapter, summary))
}

#[cfg(target_arch = "wasm32")]
pub(super) async fn select() -> Result<(wgpu::Adapter, AdapterSummary)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::NoAdapter {
            backends: format!(
                "WebGPU: {e}. Use a browser with WebGPU enabled (Chrome/Edge 113+, or Chromium \
                 with --enable-unsafe-webgpu on Linux)"
            ),
        })?;
    let summary = AdapterSummary::of(&adapter.get_info());
    Ok((adapter, summary))
}

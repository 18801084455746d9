//! wgpu-nas: gradient-based neural architecture search (DARTS, ENAS) on any GPU through wgpu.
//!
//! Layers, bottom up: [`data`] (data sets, augmentation, batches), [`gpu`] (device, caches,
//! recording, readback, the [`tensor`]s, the tape the ops record on, batches uploaded), [`ops`]
//! (one WGSL file and one Rust file per op family), [`autograd`] (the backward pass over the
//! tape), [`nn`] (parameterised blocks) and [`optim`] (optimizers,
//! clipping, schedules), [`space`] (architectures as plain data, no GPU), and the searches
//! [`darts`], [`enas`] and retraining [`train`], each a method of the one loop [`run_loop`], and
//! [`pipeline`] (search, then retrain what was found); each knows only the layers below it.
//! Beside them: [`fixtures`] (checks against PyTorch reference values), [`checkpoint`],
//! `export`, `run_dir` and `durable` (atomic writes; native only), [`metrics`], [`demo`] (the page's core).

#![warn(missing_docs)]

/// In an op module's tests: its `#[repr(C)]` uniform struct `$ty` has the layout of the WGSL
/// struct of the same name in `shaders/$stem.wgsl` (the fields listed, padding aside).
#[cfg(test)]
macro_rules! params_layout_matches {
    ($ty:ident, $stem:literal, [$($field:ident),* $(,)?]) => {
        $crate::gpu::shaders::assert_struct_layout(
            $stem,
            stringify!($ty),
            std::mem::size_of::<$ty>(),
            &[$((stringify!($field), std::mem::offset_of!($ty, $field))),*],
        )
    };
}

pub mod autograd;
pub mod checkpoint;
pub mod darts;
pub mod data;
pub mod demo;
#[cfg(not(target_arch = "wasm32"))]
pub mod durable;
pub mod enas;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod export;
pub mod fixtures;
pub mod gpu;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod pipeline;
pub mod rng;
#[cfg(not(target_arch = "wasm32"))]
pub mod run_dir;
pub mod run_loop;
pub mod space;
pub mod train;
#[cfg(target_arch = "wasm32")]
mod web;

pub use error::{Error, Result};
pub use gpu::tensor;
pub use gpu::{Gpu, Tuning};
pub use tensor::Tensor;

//! The GPU layer: a caller's own device, adapter selection errors, batching into few
//! submissions, caches and the buffer pool.

use std::process::Command;

use wgpu_nas::gpu::AdapterSummary;
use wgpu_nas::ops::{conv, elementwise, reduce};
use wgpu_nas::{Gpu, Tensor, Tuning};

#[test]
fn runs_on_a_callers_own_device() {
    // The caller builds its device with plain wgpu, as an engine or a visualiser would.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let gpu = Gpu::from_device(device.clone(), queue.clone());

    let x = Tensor::param(&gpu, &[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]).unwrap();
    let w = Tensor::param(&gpu, &[1, 1, 3, 3], &[1.0; 9]).unwrap();
    let y = conv::conv2d(&x, &w, None, conv::Conv2d::new(1, 0, 1, 1)).unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![45.0]);
    let g = gpu.backward(&y).unwrap();
    assert_eq!(g.get(&w).unwrap().to_vec().unwrap(), vec![1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    // The caller's device keeps working for the caller.
    let _ = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    queue.submit([]);
}

#[test]
fn an_adapter_name_that_matches_nothing_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_wgpu-nas"))
        .args(["check-fixtures", "tests/golden"])
        .env("WGPU_ADAPTER_NAME", "no-such-adapter-xyz")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("WGPU_ADAPTER_NAME=\"no-such-adapter-xyz\" matches none"), "{err}");
    assert!(err.contains("llvmpipe") || err.contains("Vulkan"), "lists the adapters it saw: {err}");
}

#[test]
fn many_ops_go_into_few_submissions_and_pool_buffers_are_reused() {
    let gpu = Gpu::new().unwrap();
    let x = Tensor::from_slice(&gpu, &[4096], &vec![0.5; 4096]).unwrap();
    let run = || {
        let mut y = x.clone();
        for _ in 0..100 {
            y = elementwise::relu(&elementwise::add(&y, &x).unwrap()).unwrap();
        }
        reduce::sum(&y).unwrap()
    };
    let warm = run().item().unwrap();
    let (subs, total) = (gpu.submissions(), gpu.memory().total);
    let again = run().item().unwrap();
    assert_eq!(warm, again);
    assert_eq!(warm, 4096.0 * 50.5);
    assert!(gpu.submissions() - subs <= 2, "200 dispatches took {} submissions", gpu.submissions() - subs);
    assert_eq!(gpu.memory().total, total, "the second run allocates nothing new");
    assert!(gpu.memory().peak >= gpu.memory().in_use);
}

#[test]
fn oversized_tensors_are_an_error_not_a_crash() {
    let gpu = Gpu::new().unwrap();
    let limit = gpu.limits().max_storage_buffer_binding_size;
    let elems = (limit / 4 + 1) as usize;
    let err = Tensor::zeros(&gpu, &[elems]).unwrap_err().to_string();
    assert!(err.contains("exceeds the adapter's storage-binding limit"), "{err}");
}

#[test]
fn a_gpu_validation_error_fails_the_next_readback_instead_of_passing_silently() {
    let gpu = Gpu::new().unwrap();
    let x = Tensor::from_slice(&gpu, &[2], &[1.0, 2.0]).unwrap();
    assert_eq!(x.to_vec().unwrap(), [1.0, 2.0]);
    // An invalid buffer (mappable for reading and writing at once) is a validation error that
    // wgpu reports asynchronously, through the device's uncaptured-error handler.
    let _bad = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("invalid on purpose"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE,
        mapped_at_creation: false,
    });
    let err = x.to_vec().unwrap_err();
    assert!(matches!(err, wgpu_nas::Error::Gpu(_)), "{err}");
    assert!(err.to_string().contains("the GPU reported an error"), "{err}");
    // Reported once: the device still works afterwards.
    assert_eq!(x.to_vec().unwrap(), [1.0, 2.0]);
}

#[test]
fn kernel_shapes_are_tuned_by_adapter() {
    let adapter = |name: &str, backend: &str, device_type: &str| AdapterSummary {
        name: name.into(),
        backend: backend.into(),
        device_type: device_type.into(),
        driver: String::new(),
    };
    let swiftshader = adapter("SwiftShader Device (Subzero)", "Vulkan", "Cpu");
    assert_eq!(swiftshader.tuning(), Tuning::SWIFTSHADER);
    // Chromium's fallback adapter often has no name; in the browser it is SwiftShader.
    assert_eq!(adapter("", "BrowserWebGpu", "Cpu").tuning(), Tuning::SWIFTSHADER);
    assert_eq!(adapter("llvmpipe (LLVM 15.0.6, 256 bits)", "Vulkan", "Cpu").tuning(), Tuning::LAVAPIPE);
    // GPUs take lavapipe's shapes but keep the pointwise weights in storage.
    let gpu_tuning = Tuning { pointwise_uniform_weights: false, ..Tuning::LAVAPIPE };
    assert_eq!(Tuning::GPU, gpu_tuning);
    assert_eq!(adapter("NVIDIA H200", "Vulkan", "DiscreteGpu").tuning(), gpu_tuning);
    assert_eq!(adapter("", "BrowserWebGpu", "Other").tuning(), gpu_tuning);
    // The device in use starts from its adapter's tuning.
    let gpu = Gpu::new().unwrap();
    assert_eq!(gpu.tuning(), gpu.adapter().tuning());
    // The driver's version is part of what a report says of the adapter.
    let mut lavapipe = adapter("llvmpipe (LLVM 15.0.6, 256 bits)", "Vulkan", "Cpu");
    assert_eq!(lavapipe.to_string(), "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)");
    lavapipe.driver = "llvmpipe Mesa 25.0.7".into();
    assert_eq!(lavapipe.to_string(), "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu; llvmpipe Mesa 25.0.7)");
}

#[test]
fn tuning_takes_overrides_and_names_what_is_wrong() {
    let t = Tuning::LAVAPIPE.with("depthwise_rows=2, pointwise_uniform_weights=false").unwrap();
    assert_eq!(t, Tuning { depthwise_rows: 2, pointwise_uniform_weights: false, ..Tuning::LAVAPIPE });
    assert_eq!(Tuning::GPU.with("").unwrap(), Tuning::GPU);
    let t = Tuning::GPU.with("bn_channel_max_values=0,depthwise_strips=false").unwrap();
    assert_eq!((t.bn_channel_max_values, t.depthwise_strips), (0, false));
    for (bad, says) in [
        ("depthwise_rows", "has no '='"),
        ("depthwise_rows=two", "is not a count"),
        ("depthwise_strips=1", "is not true or false"),
        ("rows=4", "no tuning field \"rows\""),
    ] {
        let err = Tuning::LAVAPIPE.with(bad).unwrap_err().to_string();
        assert!(err.contains(says) && err.contains("expected field=value pairs"), "{bad}: {err}");
    }
}

#[test]
fn lavapipe_flushes_subnormals_and_the_callers_thread_keeps_them() {
    // Gpu::new creates the device with flush-to-zero set, so that lavapipe's worker threads
    // (which inherit it) do not run subnormal arithmetic in microcode, and restores the
    // caller's floating-point mode afterwards.
    let gpu = Gpu::new().unwrap();
    let tiny = 1e-40f32;
    assert!(tiny.is_subnormal());
    // This thread still computes with subnormals.
    let doubled = std::hint::black_box(tiny) * std::hint::black_box(2.0f32);
    assert!(doubled.is_subnormal() && doubled == tiny + tiny, "{doubled:e}");
    let a = Tensor::from_slice(&gpu, &[4], &[tiny, -2e-39, 1.5, 3.0]).unwrap();
    let b = Tensor::from_slice(&gpu, &[4], &[2.0, 1.0, 2.0, 1.0]).unwrap();
    let z = elementwise::mul(&a, &b).unwrap().to_vec().unwrap();
    assert_eq!(&z[2..], &[3.0, 3.0]);
    let on_x86 = cfg!(any(target_arch = "x86", target_arch = "x86_64"));
    if on_x86 && gpu.adapter().name.starts_with("llvmpipe") {
        assert_eq!(&z[..2], &[0.0, 0.0], "subnormal inputs reached lavapipe's arithmetic: {z:?}");
    } else {
        // WGSL lets every implementation flush or keep them.
        assert!(z[0] == 0.0 || z[0] == doubled, "{z:?}");
    }
}

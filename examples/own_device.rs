//! A caller that already owns a `wgpu::Device` (a game engine, a visualiser) runs a few DARTS
//! steps on it: `Gpu::from_device` takes the device and queue; everything else is the same.
//!
//!     cargo run --release --example own_device

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> wgpu_nas::Result<()> {
    use wgpu_nas::darts::{DartsSearch, SearchConfig};
    use wgpu_nas::data::Dataset;
    use wgpu_nas::space::SearchSpace;

    // The application's own device, made with plain wgpu.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
        .expect("an adapter (on Debian: apt-get install mesa-vulkan-drivers)");
    let limits = adapter.limits();
    let (device, queue) = pollster::block_on(
        adapter.request_device(&wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() }),
    )
    .expect("a device");
    println!("application device on {}", adapter.get_info().name);

    // wgpu-nas works on it.
    let gpu = wgpu_nas::Gpu::from_device(device.clone(), queue.clone());
    let data = Dataset::embedded_train()?;
    let mut config = SearchConfig::darts(data.channels, data.num_classes);
    config.network.channels = 4;
    config.network.layers = 2;
    config.network.space = SearchSpace::darts().with_steps(2, 2)?;
    config.batch_size = 8;
    config.epochs = 1;
    config.steps_per_epoch = Some(3);
    config.eval_batches = Some(1);
    let mut search = DartsSearch::new(&gpu, config, &data)?;
    let summary = pollster::block_on(search.run_epoch(|m| {
        println!("step {}: train loss {:.3}, validation loss {:.3}", m.step, m.train_loss, m.val_loss);
    }))?;
    println!("genotype after {} steps: {}", search.global_step(), summary.genotype.to_python());

    // The device is still the application's.
    queue.submit([]);
    let _ = device.limits();
    Ok(())
}

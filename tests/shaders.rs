//! Every WGSL file parses and validates with naga (no GPU needed), within the portable budget
//! of the web: at most 256 invocations per workgroup, at most 10 storage buffers used by an
//! entry point, at most 16 KiB of workgroup memory used by an entry point, bind groups below 4,
//! and no f16 (naga's empty capabilities reject it).

use wgpu_nas::gpu::{shader_source, MAX_STORAGE_BUFFERS_USED, SHADERS};

/// WebGPU's default `maxComputeWorkgroupStorageSize`.
const MAX_WORKGROUP_BYTES: u32 = 16384;

#[test]
fn every_shader_parses_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".wgsl").map(String::from))
        .filter(|stem| stem != "prelude") // prepended to every other file, not a shader of its own
        .collect();
    on_disk.sort();
    let mut registered: Vec<String> = SHADERS.iter().map(|(s, _)| s.to_string()).collect();
    registered.sort();
    assert_eq!(on_disk, registered, "shaders/ and gpu::SHADERS must list the same files");

    let mut failures = Vec::new();
    for (stem, _) in SHADERS {
        let src = &shader_source(stem);
        let module = match naga::front::wgsl::parse_str(src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(e.emit_to_string_with_path(src, &format!("shaders/{stem}.wgsl")));
                continue;
            }
        };
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
        let info = match validator.validate(&module) {
            Ok(info) => info,
            Err(e) => {
                failures.push(e.emit_to_string_with_path(src, &format!("shaders/{stem}.wgsl")));
                continue;
            }
        };
        for (i, ep) in module.entry_points.iter().enumerate() {
            // Auto layouts hold the globals an entry point uses; count its storage buffers.
            let uses = info.get_entry_point(i);
            let storage = module
                .global_variables
                .iter()
                .filter(|(h, g)| !uses[*h].is_empty() && matches!(g.space, naga::AddressSpace::Storage { .. }))
                .count();
            assert!(
                storage <= MAX_STORAGE_BUFFERS_USED as usize,
                "{stem}.wgsl {}: {storage} storage buffers (web limit {MAX_STORAGE_BUFFERS_USED})",
                ep.name
            );
            let workgroup_bytes: u32 = module
                .global_variables
                .iter()
                .filter(|(h, g)| !uses[*h].is_empty() && g.space == naga::AddressSpace::WorkGroup)
                .map(|(_, g)| module.types[g.ty].inner.size(module.to_ctx()))
                .sum();
            assert!(
                workgroup_bytes <= MAX_WORKGROUP_BYTES,
                "{stem}.wgsl {}: {workgroup_bytes} bytes of workgroup memory (web limit {MAX_WORKGROUP_BYTES})",
                ep.name
            );
            for (_, g) in module.global_variables.iter() {
                if let Some(binding) = &g.binding {
                    assert!(binding.group < 4, "{stem}.wgsl: bind group {} (web limit 4)", binding.group);
                }
            }
            let [x, y, z] = ep.workgroup_size;
            assert!(
                x * y * z <= 256,
                "{stem}.wgsl {}: workgroup of {} invocations (web limit 256)",
                ep.name,
                x * y * z
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

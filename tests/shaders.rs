//! Every WGSL file parses and validates with naga (no GPU needed), with the portable budget
//! of the web: at most 256 invocations per workgroup.

use wgpu_nas::gpu::SHADERS;

#[test]
fn every_shader_parses_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".wgsl").map(String::from))
        .collect();
    on_disk.sort();
    let mut registered: Vec<String> = SHADERS.iter().map(|(s, _)| s.to_string()).collect();
    registered.sort();
    assert_eq!(on_disk, registered, "shaders/ and gpu::SHADERS must list the same files");

    let mut failures = Vec::new();
    for (stem, src) in SHADERS {
        let module = match naga::front::wgsl::parse_str(src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(e.emit_to_string_with_path(src, &format!("shaders/{stem}.wgsl")));
                continue;
            }
        };
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty());
        if let Err(e) = validator.validate(&module) {
            failures.push(e.emit_to_string_with_path(src, &format!("shaders/{stem}.wgsl")));
            continue;
        }
        for ep in &module.entry_points {
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

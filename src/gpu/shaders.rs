//! The WGSL sources, compiled into the crate: one file per op family under `shaders/`, with the
//! forward and backward entry points side by side.

/// `(file stem, source)` of every shader.
pub const SHADERS: &[(&str, &str)] = &[
    ("elementwise", include_str!("../../shaders/elementwise.wgsl")),
    ("reduce", include_str!("../../shaders/reduce.wgsl")),
    ("conv", include_str!("../../shaders/conv.wgsl")),
    ("pointwise", include_str!("../../shaders/pointwise.wgsl")),
    ("depthwise", include_str!("../../shaders/depthwise.wgsl")),
    ("batch_norm", include_str!("../../shaders/batch_norm.wgsl")),
    ("pool", include_str!("../../shaders/pool.wgsl")),
    ("layout", include_str!("../../shaders/layout.wgsl")),
    ("linear", include_str!("../../shaders/linear.wgsl")),
    ("softmax", include_str!("../../shaders/softmax.wgsl")),
    ("mixed_op", include_str!("../../shaders/mixed_op.wgsl")),
    ("embedding", include_str!("../../shaders/embedding.wgsl")),
    ("lstm", include_str!("../../shaders/lstm.wgsl")),
    ("optim", include_str!("../../shaders/optim.wgsl")),
    ("architect", include_str!("../../shaders/architect.wgsl")),
    ("sample", include_str!("../../shaders/sample.wgsl")),
    ("drop_path", include_str!("../../shaders/drop_path.wgsl")),
    ("controller", include_str!("../../shaders/controller.wgsl")),
];

/// `shaders/prelude.wgsl`: the helpers every shader shares (thread indexing), prepended to each.
pub const PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");

/// The WGSL that is compiled for `stem`: the prelude, then the file.
pub fn source(stem: &str) -> String {
    let src = SHADERS
        .iter()
        .find(|(s, _)| *s == stem)
        .map(|(_, src)| *src)
        .unwrap_or_else(|| panic!("no shader named {stem:?} in SHADERS"));
    format!("{PRELUDE}{src}")
}

/// For every entry point of shader `stem`, the bindings of group 0 that it writes (naga's
/// validation says which globals each entry point uses, and how). Debug builds check each new
/// bind group against them: WebGPU rejects a buffer bound twice in one dispatch where either
/// binding is writable, and native backends do not, so without the check only the browser
/// would notice.
#[cfg(debug_assertions)]
pub(crate) fn writable_bindings(stem: &str) -> Vec<(String, Vec<u32>)> {
    let src = source(stem);
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("shaders/{stem}.wgsl: {e}"));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("shaders/{stem}.wgsl: {e}"));
    let entries = module.entry_points.iter().enumerate();
    entries
        .map(|(i, ep)| {
            let uses = info.get_entry_point(i);
            let written =
                module.global_variables.iter().filter(|(h, _)| uses[*h].contains(naga::valid::GlobalUse::WRITE));
            (ep.name.clone(), written.filter_map(|(_, g)| g.binding.as_ref().map(|b| b.binding)).collect())
        })
        .collect()
}

/// Asserts that the WGSL struct `name` of shader `stem` has `size` bytes and, in order, the
/// members `fields` (name, byte offset) besides its `_pad*` members: the Rust twin of a uniform
/// block and the shader's declaration cannot drift apart. See `params_layout_matches!`.
#[cfg(test)]
pub(crate) fn assert_struct_layout(stem: &str, name: &str, size: usize, fields: &[(&str, usize)]) {
    let src = source(stem);
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("shaders/{stem}.wgsl: {e}"));
    let Some((_, ty)) = module.types.iter().find(|(_, t)| t.name.as_deref() == Some(name)) else {
        panic!("shaders/{stem}.wgsl declares no struct {name}")
    };
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        panic!("{name} in shaders/{stem}.wgsl is no struct")
    };
    let wgsl: Vec<(String, usize)> = members
        .iter()
        .filter_map(|m| m.name.clone().map(|n| (n, m.offset as usize)))
        .filter(|(n, _)| !n.starts_with('_'))
        .collect();
    let rust: Vec<(String, usize)> = fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
    assert_eq!(wgsl, rust, "{name}: members (name, offset) in shaders/{stem}.wgsl and in Rust");
    assert_eq!(*span as usize, size, "{name}: size in shaders/{stem}.wgsl and in Rust");
}

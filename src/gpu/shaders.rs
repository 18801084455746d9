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

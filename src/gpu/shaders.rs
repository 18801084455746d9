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

pub(crate) fn source(stem: &str) -> &'static str {
    SHADERS
        .iter()
        .find(|(s, _)| *s == stem)
        .map(|(_, src)| *src)
        .unwrap_or_else(|| panic!("no shader named {stem:?} in SHADERS"))
}

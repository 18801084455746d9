// The prelude: prepended to every other shader file by `gpu::shader_source`, so a line number in
// a naga error counts this file's lines first.

// The thread of a 1-D kernel of 256 invocations (`gpu::grid_1d` folds big grids into y).
fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// The thread of a 1-D kernel of 64 invocations (`gpu::grid_1d_of(n, 64)`).
fn index64(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}


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


// Kernels that update several tensors per dispatch run over their elements one after another,
// tensor t holding lens[t] of them (count tensors, at most 4): which tensor element i falls in,
// and its index there.
fn segment(i: u32, count: u32, lens: vec4<u32>) -> vec2<u32> {
    var t = 0u;
    var j = i;
    loop {
        if (t + 1u >= count || j < lens[t]) { break; }
        j = j - lens[t];
        t = t + 1u;
    }
    return vec2<u32>(t, j);
}

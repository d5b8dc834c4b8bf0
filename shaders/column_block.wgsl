// Column blocks of a row-major (M, N) matrix, one per row shard of a weight (ops/row_sharded.rs):
//   place_columns: out[i, first + j] = block[i, j] (+ bias[first + j])
//   take_columns:  block[i, j] = src[i, first + j]
// One invocation per block element, one writer per output element.

struct Params {
    m: u32,        // rows
    n: u32,        // columns of the whole matrix
    w: u32,        // columns of the block
    first: u32,    // the block's first column in the whole matrix
    has_bias: u32, // place_columns: 1 = add bias[first + j]
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;

// Element e = (i, j) of the (M, W) block is element (i, first + j) of the (M, N) whole matrix.
fn whole_index(e: u32, p: Params) -> u32 {
    return (e / p.w) * p.n + p.first + e % p.w;
}

@group(0) @binding(0) var<storage, read> p_block: array<f32>;      // (M, W)
@group(0) @binding(1) var<storage, read> p_bias: array<f32>;       // (N), or a placeholder
@group(0) @binding(2) var<storage, read_write> p_out: array<f32>;  // (M, N)
@group(0) @binding(3) var<uniform> p_params: Params;

@compute @workgroup_size(256)
fn place_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = p_params;
    let e = gid.x + gid.y * nwg.x * WG;  // index into the block
    if (e >= p.m * p.w) { return; }
    var value = p_block[e];
    if (p.has_bias != 0u) { value += p_bias[p.first + e % p.w]; }
    p_out[whole_index(e, p)] = value;
}

@group(0) @binding(0) var<storage, read> t_src: array<f32>;          // (M, N)
@group(0) @binding(1) var<storage, read_write> t_block: array<f32>;  // (M, W)
@group(0) @binding(2) var<uniform> t_params: Params;

@compute @workgroup_size(256)
fn take_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = t_params;
    let e = gid.x + gid.y * nwg.x * WG;  // index into the block
    if (e >= p.m * p.w) { return; }
    t_block[e] = t_src[whole_index(e, p)];
}

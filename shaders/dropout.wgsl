// Dropout with a counter-based mask (Threefry-2x32-20, Salmon et al., SC 2011); the CPU twin is
// crate/src/ops/dropout.rs and produces the same mask bit for bit.
// Element i reads word (i % 2) of threefry2x32(key = (key_lo, key_hi), counter = (i / 2, stream))
// and is kept when that word >= threshold. Each invocation handles one pair of elements.
// Dispatch: ceil(ceil(n / 2) / 256) workgroups, split over x and y when above 65535.

struct DropoutParams {
    n: u32,          // number of elements
    threshold: u32,  // round(p * 2^32)
    key_lo: u32,
    key_hi: u32,
    stream: u32,
    scale: f32,      // 1 / (1 - p), 0 when p == 1
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;        // (N) x (forward) or dout (backward)
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;  // (N) out (forward, written) or dinp (backward, accumulated)
@group(0) @binding(2) var<uniform> params: DropoutParams;

fn rotl(x: u32, r: u32) -> u32 {
    return (x << r) | (x >> (32u - r));
}

fn threefry2x32(key: vec2<u32>, counter: vec2<u32>) -> vec2<u32> {
    let rotations = array<u32, 8>(13u, 15u, 26u, 6u, 17u, 29u, 16u, 24u);
    let ks = array<u32, 3>(key.x, key.y, 0x1BD11BDAu ^ key.x ^ key.y);
    var x0 = counter.x + ks[0];
    var x1 = counter.y + ks[1];
    for (var round = 0u; round < 20u; round++) {
        x0 = x0 + x1;
        x1 = rotl(x1, rotations[round % 8u]) ^ x0;
        if (round % 4u == 3u) {
            let s = round / 4u + 1u;
            x0 = x0 + ks[s % 3u];
            x1 = x1 + ks[(s + 1u) % 3u] + s;
        }
    }
    return vec2<u32>(x0, x1);
}

fn pair_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

fn keep_scale(word: u32) -> f32 {
    return select(0.0, params.scale, word >= params.threshold);
}

@compute @workgroup_size(256)
fn dropout_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let pair = pair_index(wid, nwg, lid);
    let i = pair * 2u;
    if (i >= params.n) { return; }
    let words = threefry2x32(vec2<u32>(params.key_lo, params.key_hi), vec2<u32>(pair, params.stream));
    dst[i] = src[i] * keep_scale(words.x);
    if (i + 1u < params.n) {
        dst[i + 1u] = src[i + 1u] * keep_scale(words.y);
    }
}

@compute @workgroup_size(256)
fn dropout_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let pair = pair_index(wid, nwg, lid);
    let i = pair * 2u;
    if (i >= params.n) { return; }
    let words = threefry2x32(vec2<u32>(params.key_lo, params.key_hi), vec2<u32>(pair, params.stream));
    dst[i] += src[i] * keep_scale(words.x);
    if (i + 1u < params.n) {
        dst[i + 1u] += src[i + 1u] * keep_scale(words.y);
    }
}

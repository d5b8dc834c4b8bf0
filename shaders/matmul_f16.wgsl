// The product of a linear layer with fp16 weights, in f16 arithmetic (the `shader-f16` feature):
//
//   C (m, n) = alpha * A (m, k) @ W^T + bias (n),   W (n, k) held in fp16
//
// A is f32, stored (m, k) row-major (a batch of sequences is m = B*T rows); W is the weight as
// ops/matmul/half_weight.rs keeps it on the GPU: rows of ceil(k / 2) words, word q of row c
// holding W(c, 2q) (low half) and W(c, 2q + 1) (high half), an odd k padding each row's last
// word with a zero high half. Read here as `array<vec2<f16>>` over the same buffer: one element
// is one word, the pair (W(c, 2q), W(c, 2q + 1)).
//
// Arithmetic: A is rounded to f16 as it is staged; each product of a row of A and a column of
// W^T is a sum of 2-term f16 dot products, dot((a_2q, a_2q+1), (w_2q, w_2q+1)) in f16, each
// widened to f32 before it is added to an f32 accumulator. Per output the error is at most about
// 3 * 2^-11 * sum_k |A(r, k) W(c, k)| (the rounding of a to f16, of each product and of the
// 2-term sum; plus the f32 accumulation's K * 2^-24 relative and, for values below f16's normal
// range, 2^-25 absolute per rounding). A value of A beyond f16's range (65504) becomes infinite:
// this path is opt-in (GpuOptions::f16_arithmetic) and the f32 path (matmul.wgsl) is the default.
//
// Tiling: a 16 x 16 workgroup (256 invocations) computes a 64 x 64 block of C, 4 x 4 outputs
// per invocation, as matmul.wgsl, but with BK = 32 along k (16 pairs): the f16 tiles of A and
// W^T are 64 x 32 values each, 4 KiB each (8 KiB of the 16 KiB default), half the barriers of
// matmul.wgsl's BK = 16 in half its bytes. Each invocation stages 4 pairs of each tile per step.
// Loads are bounds-checked (zero fill), so any m, n, k work (odd sizes, 1, 0).

enable f16;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32, // 1: add bias (n) to every row
    alpha: f32,    // scale of the product (the bias is not scaled)
}

const BM: u32 = 64u;
const BN: u32 = 64u;
const PAIRS: u32 = 16u; // BK / 2: k pairs per step

@group(0) @binding(0) var<storage, read> mat_a: array<f32>;        // (m, k)
@group(0) @binding(1) var<storage, read> mat_w: array<vec2<f16>>;  // (n, ceil(k / 2)) pairs
@group(0) @binding(2) var<storage, read> bias: array<f32>;         // (n), or a placeholder
@group(0) @binding(3) var<storage, read_write> mat_c: array<f32>;  // (m, n)
@group(0) @binding(4) var<uniform> params: Params;

// tile_a[p * 64 + i] = (A(row0 + i, k0 + 2p), A(row0 + i, k0 + 2p + 1)) in f16;
// tile_w[p * 64 + j] = (W(col0 + j, k0 + 2p), W(col0 + j, k0 + 2p + 1)).
var<workgroup> tile_a: array<vec2<f16>, 1024>; // (PAIRS, BM)
var<workgroup> tile_w: array<vec2<f16>, 1024>; // (PAIRS, BN)

// (A(r, kk), A(r, kk + 1)) rounded to f16, zero outside (m, k).
fn load_a_pair(r: u32, kk: u32) -> vec2<f16> {
    if (r >= params.m || kk >= params.k) { return vec2<f16>(0.0h); }
    let at = r * params.k + kk;
    var second = 0.0;
    if (kk + 1u < params.k) { second = mat_a[at + 1u]; }
    return vec2<f16>(vec2<f32>(mat_a[at], second));
}

// Pair q of W's row c, zero outside (n, ceil(k / 2)) (the padded half is already zero).
fn load_w_pair(c: u32, q: u32) -> vec2<f16> {
    let row_words = (params.k + 1u) / 2u;
    if (c >= params.n || q >= row_words) { return vec2<f16>(0.0h); }
    return mat_w[c * row_words + q];
}

// One row of this invocation's 4 x 4 block: alpha, bias, bounds.
fn store_row(r: u32, c0: u32, v: vec4<f32>) {
    if (r >= params.m) { return; }
    for (var j = 0u; j < 4u; j++) {
        let c = c0 + j;
        if (c >= params.n) { return; }
        var x = params.alpha * v[j];
        if (params.has_bias != 0u) { x += bias[c]; }
        mat_c[r * params.n + c] = x;
    }
}

// The four 2-term f16 dot products of a with b0..b3, widened to f32.
fn dots(a: vec2<f16>, b0: vec2<f16>, b1: vec2<f16>, b2: vec2<f16>, b3: vec2<f16>) -> vec4<f32> {
    return vec4<f32>(vec4<f16>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3)));
}

@compute @workgroup_size(16, 16)
fn matmul_f16_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tx = lid.x;                 // this invocation's columns: col0 + tx*4 .. +3
    let ty = lid.y;                 // this invocation's rows:    row0 + ty*4 .. +3
    let t = ty * 16u + tx;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    // Staging: invocation t fills pair p = t % 16 of rows/columns t / 16 + 16s, s = 0..3, so
    // that neighbouring invocations read neighbouring addresses of a row.
    let p = t % PAIRS;
    let line = t / PAIRS;

    var acc0 = vec4<f32>(0.0);      // C(row0 + ty*4 + 0, col0 + tx*4 .. +3)
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < params.k; k0 += 2u * PAIRS) {
        for (var s = 0u; s < 4u; s++) {
            let i = line + 16u * s;
            tile_a[p * BM + i] = load_a_pair(row0 + i, k0 + 2u * p);
            tile_w[p * BN + i] = load_w_pair(col0 + i, k0 / 2u + p);
        }
        workgroupBarrier();
        for (var q = 0u; q < PAIRS; q++) {
            let a = q * BM + ty * 4u;
            let w = q * BN + tx * 4u;
            let w0 = tile_w[w];
            let w1 = tile_w[w + 1u];
            let w2 = tile_w[w + 2u];
            let w3 = tile_w[w + 3u];
            acc0 += dots(tile_a[a], w0, w1, w2, w3);
            acc1 += dots(tile_a[a + 1u], w0, w1, w2, w3);
            acc2 += dots(tile_a[a + 2u], w0, w1, w2, w3);
            acc3 += dots(tile_a[a + 3u], w0, w1, w2, w3);
        }
        workgroupBarrier();
    }

    let r = row0 + ty * 4u;
    let c0 = col0 + tx * 4u;
    store_row(r, c0, acc0);
    store_row(r + 1u, c0, acc1);
    store_row(r + 2u, c0, acc2);
    store_row(r + 3u, c0, acc3);
}

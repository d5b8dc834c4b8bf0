// Batched matmul with transposed operands and a bias epilogue, and the bias gradient.
//
//   C[b] (m, n) = alpha * op(A[b]) (m, k) @ op(B[b]) (k, n) + bias (n)   [+ C[b] if accumulate]
//
// A[b] is stored (m, k) row-major, or (k, m) when trans_a; B[b] is stored (k, n), or (n, k) when
// trans_b. A batch stride of 0 shares one matrix across the batch. Backward = this kernel with
// flipped transposes and accumulate = 1 (see ops/matmul/mod.rs), plus matmul_bias_backward.
//
// Tiling: a 16 x 16 workgroup (256 invocations) computes a 64 x 64 block of C; each invocation
// keeps a 4 x 4 block of outputs in registers (4 vec4 accumulators). Per step of BK = 16 along
// k, the workgroup stages a 64 x 16 tile of A and a 16 x 64 tile of B in workgroup memory
// (2 x 4 KiB, within the 16 KiB default), laid out k-major so that each invocation reads its
// 4 rows of A and its 4 columns of B as one vec4 each (vectorized loads) and does 16 FMAs per
// pair. Each invocation stages one vec4 of each tile per step. Global loads are
// bounds-checked (zero fill), so any m, n, k work (odd sizes, 1, 0).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    trans_a: u32,        // 1: A[b] stored (k, m)
    trans_b: u32,        // 1: B[b] stored (n, k)
    has_bias: u32,       // 1: add bias (n) to every row
    accumulate: u32,     // 1: C += result (backward), 0: C = result
    a_batch_stride: u32, // elements between A[b] and A[b+1]; 0 = shared
    b_batch_stride: u32, // elements between B[b] and B[b+1]; 0 = shared
    alpha: f32,          // scale of the product (e.g. 1/sqrt(head size))
    b_format: u32,       // B's values: 0 = f32, 1 = fp16, 2 = bf16, 3 = int8 (see load_b)
}

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

@group(0) @binding(0) var<storage, read> mat_a: array<f32>;          // (batch or 1, m, k) or (.., k, m)
@group(0) @binding(1) var<storage, read> mat_b: array<u32>;          // f32 bits (batch or 1, k, n) or (.., n, k); or 16-bit pairs (see load_b)
@group(0) @binding(2) var<storage, read> bias: array<f32>;           // (n), or a placeholder
@group(0) @binding(3) var<storage, read> b_scales: array<f32>;       // int8 B: (n) scales; or a placeholder
@group(0) @binding(4) var<storage, read_write> mat_c: array<f32>;    // (batch, m, n)
@group(0) @binding(5) var<uniform> params: Params;

// tile_a[kk * 16 + q] = A(row0 + 4q .. 4q+3, k0 + kk); tile_b[kk * 16 + q] = B(k0 + kk, col0 + 4q .. 4q+3).
var<workgroup> tile_a: array<vec4<f32>, 256>;  // (BK, BM / 4)
var<workgroup> tile_b: array<vec4<f32>, 256>;  // (BK, BN / 4)

// A(r, kk) of batch entry `off`, zero outside (m, k).
fn load_a(off: u32, r: u32, kk: u32) -> f32 {
    if (r >= params.m || kk >= params.k) { return 0.0; }
    if (params.trans_a == 0u) { return mat_a[off + r * params.k + kk]; }
    return mat_a[off + kk * params.m + r];
}

// IEEE binary16 bits (the low 16 of h) -> f32, exact for finite values (the weight loader
// refuses infinities and NaNs): a normal value's exponent is rebased by 127 - 15 = 112; zero and
// subnormals are mantissa x 2^-24 (a normal f32, so no flush to zero). Integer operations only:
// no shader-f16 feature, and not unpack2x16float, which naga (wgpu's shader compiler) accepts
// only with its SHADER_FLOAT16_IN_FLOAT32 capability (a downlevel flag).
fn f16_bits_to_f32(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let rest = h & 0x7fffu;
    if (rest < 0x400u) {
        return bitcast<f32>(bitcast<u32>(f32(rest) * bitcast<f32>(0x33800000u)) | sign);
    }
    return bitcast<f32>(sign | ((rest << 13u) + 0x38000000u));
}

// B(kk, c) of batch entry `off`, zero outside (k, n). b_format 0: f32 values (read as their
// bits). b_format 1 (fp16) / 2 (bf16): B = W^T with W (n, k) a linear layer's weight held in 16
// bits (ops/matmul/half_weight.rs; trans_b = 1, one shared matrix): word q of W's row c holds
// W(c, 2q) in its low half and W(c, 2q + 1) in its high half, rows of ceil(k / 2) words (an odd
// k pads each row's last word with a zero high half); widened here, so the product is computed
// exactly as for the same values in f32. b_format 3 (int8): W's row c as ceil(k / 4) words, byte
// j of word q holding the two's-complement code of W(c, 4q + j) (a k that is not a multiple of 4
// pads each row's last word with zero bytes), dequantized as f32(code) * b_scales[c] (one
// correctly rounded multiply: the values the CPU path widens to, ops/matmul/int8.rs).
fn load_b(off: u32, kk: u32, c: u32) -> f32 {
    if (c >= params.n || kk >= params.k) { return 0.0; }
    if (params.b_format == 3u) {
        let word = mat_b[c * ((params.k + 3u) / 4u) + kk / 4u];
        // the byte to the top, then an arithmetic shift back down sign-extends it
        let code = bitcast<i32>(word << (24u - 8u * (kk & 3u))) >> 24u;
        return f32(code) * b_scales[c];
    }
    if (params.b_format != 0u) {
        let word = mat_b[c * ((params.k + 1u) / 2u) + kk / 2u];
        let bits = select(word & 0xffffu, word >> 16u, (kk & 1u) == 1u);
        if (params.b_format == 2u) { return bitcast<f32>(bits << 16u); }
        return f16_bits_to_f32(bits);
    }
    if (params.trans_b == 0u) { return bitcast<f32>(mat_b[off + kk * params.n + c]); }
    return bitcast<f32>(mat_b[off + c * params.k + kk]);
}

// Epilogue for one row of this invocation's 4 x 4 block: alpha, bias, accumulate, bounds.
fn store_row(c_off: u32, r: u32, c0: u32, v: vec4<f32>) {
    if (r >= params.m) { return; }
    for (var j = 0u; j < 4u; j++) {
        let c = c0 + j;
        if (c >= params.n) { return; }
        let at = c_off + r * params.n + c;
        var x = params.alpha * v[j];
        if (params.has_bias != 0u) { x += bias[c]; }
        if (params.accumulate != 0u) { x += mat_c[at]; }
        mat_c[at] = x;
    }
}

@compute @workgroup_size(16, 16)
fn matmul_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tx = lid.x;                 // this invocation's columns: col0 + tx*4 .. +3
    let ty = lid.y;                 // this invocation's rows:    row0 + ty*4 .. +3
    let t = ty * 16u + tx;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let a_off = wid.z * params.a_batch_stride;
    let b_off = wid.z * params.b_batch_stride;
    let c_off = wid.z * params.m * params.n;

    // Which tile slot this invocation fills: the mapping follows the stored layout so that
    // neighbouring invocations read neighbouring addresses (coalesced on real GPUs).
    var a_kk: u32;
    var a_q: u32;
    if (params.trans_a == 0u) { a_kk = t % BK; a_q = t / BK; } else { a_kk = t / 16u; a_q = t % 16u; }
    var b_kk: u32;
    var b_q: u32;
    if (params.trans_b == 0u) { b_kk = t / 16u; b_q = t % 16u; } else { b_kk = t % BK; b_q = t / BK; }

    var acc0 = vec4<f32>(0.0);      // C(row0 + ty*4 + 0, col0 + tx*4 .. +3)
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < params.k; k0 += BK) {
        let ar = row0 + a_q * 4u;
        let ak = k0 + a_kk;
        tile_a[a_kk * 16u + a_q] = vec4<f32>(load_a(a_off, ar, ak), load_a(a_off, ar + 1u, ak),
                                             load_a(a_off, ar + 2u, ak), load_a(a_off, ar + 3u, ak));
        let bc = col0 + b_q * 4u;
        let bk = k0 + b_kk;
        tile_b[b_kk * 16u + b_q] = vec4<f32>(load_b(b_off, bk, bc), load_b(b_off, bk, bc + 1u),
                                             load_b(b_off, bk, bc + 2u), load_b(b_off, bk, bc + 3u));
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a4 = tile_a[kk * 16u + ty];   // A(rows ty*4..+3, kk): one vec4 load
            let b4 = tile_b[kk * 16u + tx];   // B(kk, cols tx*4..+3): one vec4 load
            // Multiply-add, not fma(): GPU compilers fuse it anyway, while a software
            // rasterizer without FMA codegen (llvmpipe) would call a library fmaf per lane.
            acc0 += a4.x * b4;
            acc1 += a4.y * b4;
            acc2 += a4.z * b4;
            acc3 += a4.w * b4;
        }
        workgroupBarrier();
    }

    let r = row0 + ty * 4u;
    let c0 = col0 + tx * 4u;
    store_row(c_off, r, c0, acc0);
    store_row(c_off, r + 1u, c0, acc1);
    store_row(c_off, r + 2u, c0, acc2);
    store_row(c_off, r + 3u, c0, acc3);
}

// dbias (n) += sum over rows r < params.m (= batch * m) of dout (rows, n). One invocation per
// column: no races, and neighbouring invocations read neighbouring addresses.
@group(0) @binding(0) var<storage, read> bb_dout: array<f32>;        // (rows, n)
@group(0) @binding(1) var<storage, read_write> bb_dbias: array<f32>; // (n)
@group(0) @binding(2) var<uniform> bb_params: Params;                // m = rows, n

@compute @workgroup_size(256)
fn matmul_bias_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = gid.x + gid.y * nwg.x * 256u;
    if (c >= bb_params.n) { return; }
    var sum = 0.0;
    for (var r = 0u; r < bb_params.m; r++) {
        sum += bb_dout[r * bb_params.n + c];
    }
    bb_dbias[c] += sum;
}

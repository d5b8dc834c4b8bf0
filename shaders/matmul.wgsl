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
// pair. Global loads are bounds-checked (zero fill), so any m, n, k work (odd sizes, 1, 0).

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
    _pad: u32,
}

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

@group(0) @binding(0) var<storage, read> mat_a: array<f32>;          // (batch or 1, m, k) or (.., k, m)
@group(0) @binding(1) var<storage, read> mat_b: array<f32>;          // (batch or 1, k, n) or (.., n, k)
@group(0) @binding(2) var<storage, read> bias: array<f32>;           // (n), or a placeholder
@group(0) @binding(3) var<storage, read_write> mat_c: array<f32>;    // (batch, m, n)
@group(0) @binding(4) var<uniform> params: Params;

// tile_a[kk * 16 + mm / 4][mm % 4] = A(row0 + mm, k0 + kk); tile_b likewise for B(k0 + kk, col0 + nn).
var<workgroup> tile_a: array<vec4<f32>, 256>;  // (BK, BM / 4)
var<workgroup> tile_b: array<vec4<f32>, 256>;  // (BK, BN / 4)

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

    var acc: array<vec4<f32>, 4>;   // acc[i][j] = C(row0 + ty*4 + i, col0 + tx*4 + j)
    for (var k0 = 0u; k0 < params.k; k0 += BK) {
        // Each of the 256 invocations stages 4 elements of each tile; consecutive invocations
        // read consecutive addresses of the stored layout.
        for (var s = 0u; s < 4u; s++) {
            let idx = t + s * 256u;
            var mm: u32;
            var ka: u32;
            if (params.trans_a == 0u) { ka = idx % BK; mm = idx / BK; } else { mm = idx % BM; ka = idx / BM; }
            let ar = row0 + mm;
            let ak = k0 + ka;
            var av = 0.0;
            if (ar < params.m && ak < params.k) {
                if (params.trans_a == 0u) {
                    av = mat_a[a_off + ar * params.k + ak];
                } else {
                    av = mat_a[a_off + ak * params.m + ar];
                }
            }
            tile_a[ka * 16u + mm / 4u][mm % 4u] = av;

            var nn: u32;
            var kb: u32;
            if (params.trans_b == 0u) { nn = idx % BN; kb = idx / BN; } else { kb = idx % BK; nn = idx / BK; }
            let bc = col0 + nn;
            let bk = k0 + kb;
            var bv = 0.0;
            if (bc < params.n && bk < params.k) {
                if (params.trans_b == 0u) {
                    bv = mat_b[b_off + bk * params.n + bc];
                } else {
                    bv = mat_b[b_off + bc * params.k + bk];
                }
            }
            tile_b[kb * 16u + nn / 4u][nn % 4u] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a4 = tile_a[kk * 16u + ty];   // A(rows ty*4..+3, kk)
            let b4 = tile_b[kk * 16u + tx];   // B(kk, cols tx*4..+3)
            acc[0] = fma(vec4<f32>(a4.x), b4, acc[0]);
            acc[1] = fma(vec4<f32>(a4.y), b4, acc[1]);
            acc[2] = fma(vec4<f32>(a4.z), b4, acc[2]);
            acc[3] = fma(vec4<f32>(a4.w), b4, acc[3]);
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let r = row0 + ty * 4u + i;
        if (r >= params.m) { break; }
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + tx * 4u + j;
            if (c >= params.n) { break; }
            let at = c_off + r * params.n + c;
            var v = params.alpha * acc[i][j];
            if (params.has_bias != 0u) { v += bias[c]; }
            if (params.accumulate != 0u) { v += mat_c[at]; }
            mat_c[at] = v;
        }
    }
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

// The head permutations of multi-head attention. The products, the masked softmax and the
// dropout are the matmul, softmax and dropout kernels (ops/attention.rs composes them); these
// entry points move data between the token-major layout of the projections and the head-major
// layout of the per-head products:
//   q, k, v (B, T, NH * hs)  <->  qh, kh, vh (B, NH, T, hs)     [split_heads]
//   y (B, NH, T, hs)         <->  out (B, T, NH * hs)           [merge_heads]
// Forward writes (=), split_heads_backward ACCUMULATES (+=) into the gradients dq, dk, dv;
// merge_heads_backward fills a scratch tensor (=). One invocation per element.

struct Params {
    b: u32,   // B, batch
    t: u32,   // T, sequence length
    nh: u32,  // NH, heads
    hs: u32,  // hs, head size (C = NH * hs)
}

const WG: u32 = 256u;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// Index into (B, T, NH * hs) of the element i of (B, NH, T, hs).
fn token_major(p: Params, i: u32) -> u32 {
    let d = i % p.hs;
    let t = (i / p.hs) % p.t;
    let h = (i / (p.hs * p.t)) % p.nh;
    let b = i / (p.hs * p.t * p.nh);
    return (b * p.t + t) * p.nh * p.hs + h * p.hs + d;
}

@group(0) @binding(0) var<storage, read> sp_q: array<f32>;            // (B, T, C)
@group(0) @binding(1) var<storage, read> sp_k: array<f32>;            // (B, T, C)
@group(0) @binding(2) var<storage, read> sp_v: array<f32>;            // (B, T, C)
@group(0) @binding(3) var<storage, read_write> sp_qh: array<f32>;     // (B, NH, T, hs)
@group(0) @binding(4) var<storage, read_write> sp_kh: array<f32>;     // (B, NH, T, hs)
@group(0) @binding(5) var<storage, read_write> sp_vh: array<f32>;     // (B, NH, T, hs)
@group(0) @binding(6) var<uniform> sp_params: Params;

@compute @workgroup_size(256)
fn split_heads_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = sp_params;
    let i = linear_index(gid, nwg);  // index into qh (and kh, vh)
    if (i >= p.b * p.nh * p.t * p.hs) { return; }
    let src = token_major(p, i);
    sp_qh[i] = sp_q[src];
    sp_kh[i] = sp_k[src];
    sp_vh[i] = sp_v[src];
}

@group(0) @binding(0) var<storage, read> sb_dqh: array<f32>;          // (B, NH, T, hs)
@group(0) @binding(1) var<storage, read> sb_dkh: array<f32>;          // (B, NH, T, hs)
@group(0) @binding(2) var<storage, read> sb_dvh: array<f32>;          // (B, NH, T, hs)
@group(0) @binding(3) var<storage, read_write> sb_dq: array<f32>;     // (B, T, C), accumulated
@group(0) @binding(4) var<storage, read_write> sb_dk: array<f32>;     // (B, T, C), accumulated
@group(0) @binding(5) var<storage, read_write> sb_dv: array<f32>;     // (B, T, C), accumulated
@group(0) @binding(6) var<uniform> sb_params: Params;

@compute @workgroup_size(256)
fn split_heads_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = sb_params;
    let i = linear_index(gid, nwg);  // index into dqh (and dkh, dvh): one source per element
    if (i >= p.b * p.nh * p.t * p.hs) { return; }
    let dst = token_major(p, i);
    sb_dq[dst] += sb_dqh[i];
    sb_dk[dst] += sb_dkh[i];
    sb_dv[dst] += sb_dvh[i];
}

@group(0) @binding(0) var<storage, read> mg_y: array<f32>;           // (B, NH, T, hs)
@group(0) @binding(1) var<storage, read_write> mg_out: array<f32>;   // (B, T, C)
@group(0) @binding(2) var<uniform> mg_params: Params;

@compute @workgroup_size(256)
fn merge_heads_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = mg_params;
    let i = linear_index(gid, nwg);  // index into y
    if (i >= p.b * p.nh * p.t * p.hs) { return; }
    mg_out[token_major(p, i)] = mg_y[i];
}

@group(0) @binding(0) var<storage, read> mb_dout: array<f32>;        // (B, T, C)
@group(0) @binding(1) var<storage, read_write> mb_dy: array<f32>;    // (B, NH, T, hs), overwritten
@group(0) @binding(2) var<uniform> mb_params: Params;

@compute @workgroup_size(256)
fn merge_heads_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = mb_params;
    let i = linear_index(gid, nwg);  // index into dy
    if (i >= p.b * p.nh * p.t * p.hs) { return; }
    mb_dy[i] = mb_dout[token_major(p, i)];
}

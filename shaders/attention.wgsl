// The head permutations of multi-head attention. The products and the masked softmax are the
// matmul and softmax kernels (ops/attention.rs composes them); these entry points move data
// between the token-major layouts of the projections and the head-major layout of the
// per-head products:
//   qkv (B, T, 3, NH, hs)  <->  q, k, v (B, NH, T, hs)      [split_heads]
//   y (B, NH, T, hs)       <->  out (B, T, NH * hs)          [merge_heads]
// Forward writes (=), the *_backward entry points ACCUMULATE (+=) into gradients, except
// merge_heads_backward, which fills a scratch tensor (=). One invocation per element.

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

// Index into (B, NH, T, hs) of the element (b, t, h, d).
fn head_major(p: Params, b: u32, t: u32, h: u32, d: u32) -> u32 {
    return ((b * p.nh + h) * p.t + t) * p.hs + d;
}

@group(0) @binding(0) var<storage, read> sp_qkv: array<f32>;         // (B, T, 3 * NH * hs)
@group(0) @binding(1) var<storage, read_write> sp_q: array<f32>;     // (B, NH, T, hs)
@group(0) @binding(2) var<storage, read_write> sp_k: array<f32>;     // (B, NH, T, hs)
@group(0) @binding(3) var<storage, read_write> sp_v: array<f32>;     // (B, NH, T, hs)
@group(0) @binding(4) var<uniform> sp_params: Params;

@compute @workgroup_size(256)
fn split_heads_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = sp_params;
    let i = linear_index(gid, nwg);  // index into q (and k, v)
    if (i >= p.b * p.nh * p.t * p.hs) { return; }
    let d = i % p.hs;
    let t = (i / p.hs) % p.t;
    let h = (i / (p.hs * p.t)) % p.nh;
    let b = i / (p.hs * p.t * p.nh);
    let c = p.nh * p.hs;
    let src = (b * p.t + t) * 3u * c + h * p.hs + d;
    sp_q[i] = sp_qkv[src];
    sp_k[i] = sp_qkv[src + c];
    sp_v[i] = sp_qkv[src + 2u * c];
}

@group(0) @binding(0) var<storage, read> sb_dq: array<f32>;          // (B, NH, T, hs)
@group(0) @binding(1) var<storage, read> sb_dk: array<f32>;          // (B, NH, T, hs)
@group(0) @binding(2) var<storage, read> sb_dv: array<f32>;          // (B, NH, T, hs)
@group(0) @binding(3) var<storage, read_write> sb_dqkv: array<f32>;  // (B, T, 3 * NH * hs)
@group(0) @binding(4) var<uniform> sb_params: Params;

@compute @workgroup_size(256)
fn split_heads_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = sb_params;
    let i = linear_index(gid, nwg);  // index into dq (and dk, dv): each dqkv element has one source
    if (i >= p.b * p.nh * p.t * p.hs) { return; }
    let d = i % p.hs;
    let t = (i / p.hs) % p.t;
    let h = (i / (p.hs * p.t)) % p.nh;
    let b = i / (p.hs * p.t * p.nh);
    let c = p.nh * p.hs;
    let dst = (b * p.t + t) * 3u * c + h * p.hs + d;
    sb_dqkv[dst] += sb_dq[i];
    sb_dqkv[dst + c] += sb_dk[i];
    sb_dqkv[dst + 2u * c] += sb_dv[i];
}

@group(0) @binding(0) var<storage, read> mg_y: array<f32>;           // (B, NH, T, hs)
@group(0) @binding(1) var<storage, read_write> mg_out: array<f32>;   // (B, T, NH * hs)
@group(0) @binding(2) var<uniform> mg_params: Params;

@compute @workgroup_size(256)
fn merge_heads_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = mg_params;
    let i = linear_index(gid, nwg);  // index into out
    if (i >= p.b * p.t * p.nh * p.hs) { return; }
    let c = p.nh * p.hs;
    let b = i / (p.t * c);
    let t = (i / c) % p.t;
    let h = (i % c) / p.hs;
    let d = i % p.hs;
    mg_out[i] = mg_y[head_major(p, b, t, h, d)];
}

@group(0) @binding(0) var<storage, read> mb_dout: array<f32>;        // (B, T, NH * hs)
@group(0) @binding(1) var<storage, read_write> mb_dy: array<f32>;    // (B, NH, T, hs), overwritten
@group(0) @binding(2) var<uniform> mb_params: Params;

@compute @workgroup_size(256)
fn merge_heads_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = mb_params;
    let i = linear_index(gid, nwg);  // index into dout
    if (i >= p.b * p.t * p.nh * p.hs) { return; }
    let c = p.nh * p.hs;
    let b = i / (p.t * c);
    let t = (i / c) % p.t;
    let h = (i % c) / p.hs;
    let d = i % p.hs;
    mb_dy[head_major(p, b, t, h, d)] = mb_dout[i];
}

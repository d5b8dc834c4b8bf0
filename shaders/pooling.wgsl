// Mean pooling under the attention mask and CLS pooling, forward and backward.
// CPU twin: crate/src/ops/pooling.rs. One invocation per output element; flat index from a
// 2-D grid of workgroups (wid.y * nwg.x + wid.x) * 256 + lid.x.

struct PoolingParams {
    b: u32,
    t: u32,
    c: u32,
    _pad: u32,
}

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

// ---- mean pooling forward: one invocation per (b, c)
@group(0) @binding(0) var<storage, read> mpf_hidden: array<f32>;       // (B, T, C)
@group(0) @binding(1) var<storage, read> mpf_mask: array<u32>;         // (B, T)
@group(0) @binding(2) var<storage, read_write> mpf_out: array<f32>;    // (B, C)
@group(0) @binding(3) var<uniform> mpf_params: PoolingParams;

@compute @workgroup_size(256)
fn mean_pooling_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    let p = mpf_params;
    if (i >= p.b * p.c) { return; }
    let bi = i / p.c;
    let ci = i % p.c;
    var sum = 0.0;
    var count = 0.0;
    for (var ti = 0u; ti < p.t; ti++) {
        if (mpf_mask[bi * p.t + ti] != 0u) {
            sum += mpf_hidden[(bi * p.t + ti) * p.c + ci];
            count += 1.0;
        }
    }
    mpf_out[i] = sum / max(count, 1e-9);
}

// ---- mean pooling backward: one invocation per (b, t, c)
@group(0) @binding(0) var<storage, read> mpb_dout: array<f32>;            // (B, C)
@group(0) @binding(1) var<storage, read> mpb_mask: array<u32>;            // (B, T)
@group(0) @binding(2) var<storage, read_write> mpb_dhidden: array<f32>;   // (B, T, C) accumulated
@group(0) @binding(3) var<uniform> mpb_params: PoolingParams;

@compute @workgroup_size(256)
fn mean_pooling_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    let p = mpb_params;
    if (i >= p.b * p.t * p.c) { return; }
    let ci = i % p.c;
    let bt = i / p.c;
    let bi = bt / p.t;
    if (mpb_mask[bt] == 0u) { return; }
    var count = 0.0;
    for (var ti = 0u; ti < p.t; ti++) {
        count += select(0.0, 1.0, mpb_mask[bi * p.t + ti] != 0u);
    }
    mpb_dhidden[i] += mpb_dout[bi * p.c + ci] / max(count, 1e-9);
}

// ---- CLS pooling forward / backward: one invocation per (b, c)
@group(0) @binding(0) var<storage, read> cls_src: array<f32>;           // forward: hidden (B, T, C); backward: dout (B, C)
@group(0) @binding(1) var<storage, read_write> cls_dst: array<f32>;     // forward: out (B, C); backward: dhidden (B, T, C) accumulated
@group(0) @binding(2) var<uniform> cls_params: PoolingParams;

// Element (b, 0, c) of the (B, T, C) hidden states for element i = (b, c) of the (B, C) pooled.
fn cls_index(i: u32, p: PoolingParams) -> u32 {
    return (i / p.c) * p.t * p.c + i % p.c;
}

@compute @workgroup_size(256)
fn cls_pooling_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    let p = cls_params;
    if (i >= p.b * p.c) { return; }
    cls_dst[i] = cls_src[cls_index(i, p)];
}

@compute @workgroup_size(256)
fn cls_pooling_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    let p = cls_params;
    if (i >= p.b * p.c) { return; }
    cls_dst[cls_index(i, p)] += cls_src[i];
}

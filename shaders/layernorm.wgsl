// LayerNorm over the last dimension (Ba et al. 2016), as torch.nn.LayerNorm (biased variance):
//   out = (x - mean) * rstd * weight + bias,  rstd = 1 / sqrt(var + eps)
// Forward keeps mean and rstd for the backward (llm.c). Backward ACCUMULATES (+=).
// One 256-invocation workgroup per row; rows beyond 65535 workgroups go to the y dimension.

struct Params {
    rows: u32,  // N = B*T
    c: u32,     // C, the normalized size
    eps: f32,
    _pad: u32,
}

// WG (256) and workgroup_sum:
#include "lib/workgroup_reduce.wgsl"

fn row_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

@group(0) @binding(0) var<storage, read> fx: array<f32>;             // (N, C)
@group(0) @binding(1) var<storage, read> fweight: array<f32>;        // (C)
@group(0) @binding(2) var<storage, read> fbias: array<f32>;          // (C)
@group(0) @binding(3) var<storage, read_write> fout: array<f32>;     // (N, C)
@group(0) @binding(4) var<storage, read_write> fmean: array<f32>;    // (N)
@group(0) @binding(5) var<storage, read_write> frstd: array<f32>;    // (N)
@group(0) @binding(6) var<uniform> fparams: Params;

@compute @workgroup_size(256)
fn layernorm_forward(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
    let lid = lid3.x;
    let row = row_index(wid, nwg);
    // The row test is uniform across the workgroup, so returning keeps barriers uniform.
    if (row >= fparams.rows) { return; }
    let c = fparams.c;
    let base = row * c;
    var s = 0.0;
    for (var i = lid; i < c; i += WG) { s += fx[base + i]; }
    let mean = workgroup_sum(lid, s) / f32(c);
    var sq = 0.0;
    for (var i = lid; i < c; i += WG) { let d = fx[base + i] - mean; sq += d * d; }
    let rstd = 1.0 / sqrt(workgroup_sum(lid, sq) / f32(c) + fparams.eps);
    for (var i = lid; i < c; i += WG) {
        fout[base + i] = (fx[base + i] - mean) * rstd * fweight[i] + fbias[i];
    }
    if (lid == 0u) {
        fmean[row] = mean;
        frstd[row] = rstd;
    }
}

// dx += (dnorm - mean(dnorm) - norm * mean(dnorm * norm)) * rstd,  dnorm = weight * dout
@group(0) @binding(0) var<storage, read> bdout: array<f32>;          // (N, C)
@group(0) @binding(1) var<storage, read> bx: array<f32>;             // (N, C)
@group(0) @binding(2) var<storage, read> bweight: array<f32>;        // (C)
@group(0) @binding(3) var<storage, read> bmean: array<f32>;          // (N)
@group(0) @binding(4) var<storage, read> brstd: array<f32>;          // (N)
@group(0) @binding(5) var<storage, read_write> bdx: array<f32>;      // (N, C)
@group(0) @binding(6) var<uniform> bparams: Params;

@compute @workgroup_size(256)
fn layernorm_backward(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let lid = lid3.x;
    let row = row_index(wid, nwg);
    if (row >= bparams.rows) { return; }
    let c = bparams.c;
    let base = row * c;
    let mean = bmean[row];
    let rstd = brstd[row];
    var s_dnorm = 0.0;
    var s_dnorm_norm = 0.0;
    for (var i = lid; i < c; i += WG) {
        let norm = (bx[base + i] - mean) * rstd;
        let dnorm = bweight[i] * bdout[base + i];
        s_dnorm += dnorm;
        s_dnorm_norm += dnorm * norm;
    }
    let mean_dnorm = workgroup_sum(lid, s_dnorm) / f32(c);
    let mean_dnorm_norm = workgroup_sum(lid, s_dnorm_norm) / f32(c);
    for (var i = lid; i < c; i += WG) {
        let norm = (bx[base + i] - mean) * rstd;
        let dnorm = bweight[i] * bdout[base + i];
        bdx[base + i] += (dnorm - mean_dnorm - norm * mean_dnorm_norm) * rstd;
    }
}

// dweight (C) += sum_rows norm * dout;  dbias (C) += sum_rows dout.
// One invocation per column loops over the rows: no races, deterministic order.
@group(0) @binding(0) var<storage, read> pdout: array<f32>;          // (N, C)
@group(0) @binding(1) var<storage, read> px: array<f32>;             // (N, C)
@group(0) @binding(2) var<storage, read> pmean: array<f32>;          // (N)
@group(0) @binding(3) var<storage, read> prstd: array<f32>;          // (N)
@group(0) @binding(4) var<storage, read_write> pdweight: array<f32>; // (C)
@group(0) @binding(5) var<storage, read_write> pdbias: array<f32>;   // (C)
@group(0) @binding(6) var<uniform> pparams: Params;

@compute @workgroup_size(256)
fn layernorm_param_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    let c = pparams.c;
    if (i >= c) { return; }
    var dw = 0.0;
    var db = 0.0;
    for (var r = 0u; r < pparams.rows; r++) {
        let g = pdout[r * c + i];
        dw += (px[r * c + i] - pmean[r]) * prstd[r] * g;
        db += g;
    }
    pdweight[i] += dw;
    pdbias[i] += db;
}

// Softmax over the last dimension with an optional additive mask, and its backward.
//   y[r, j] = exp(x[r, j] + mask[r / rows_per_mask, j] - max) / sum
// The mask (e.g. BERT's (1 - attention_mask) * finfo(f32).min, shape (B, T)) is shared by
// rows_per_mask consecutive rows (NH * T rows of the (B, NH, T, T) attention scores).
// Backward ACCUMULATES: dx += y * (dy - sum_j dy * y).
// One 256-invocation workgroup per row; rows beyond 65535 workgroups go to the y dimension.

struct Params {
    rows: u32,           // R
    cols: u32,           // L
    has_mask: u32,       // 1: add mask (R / rows_per_mask, L)
    rows_per_mask: u32,  // rows sharing one mask row (>= 1)
}

// WG (256), workgroup_sum and workgroup_max:
#include "lib/workgroup_reduce.wgsl"

@group(0) @binding(0) var<storage, read> fx: array<f32>;             // (R, L)
@group(0) @binding(1) var<storage, read> fmask: array<f32>;          // (R / rows_per_mask, L) or placeholder
@group(0) @binding(2) var<storage, read_write> fy: array<f32>;       // (R, L)
@group(0) @binding(3) var<uniform> fparams: Params;

fn masked(row: u32, j: u32) -> f32 {
    var v = fx[row * fparams.cols + j];
    if (fparams.has_mask != 0u) {
        v += fmask[(row / fparams.rows_per_mask) * fparams.cols + j];
    }
    return v;
}

@compute @workgroup_size(256)
fn softmax_forward(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let lid = lid3.x;
    let row = wid.x + wid.y * nwg.x;
    if (row >= fparams.rows) { return; }  // uniform per workgroup
    let cols = fparams.cols;
    if (cols == 0u) { return; }
    // Start from an element of the row (no infinities needed): invocations past the end use
    // element 0, which does not change the maximum.
    var m = masked(row, min(lid, cols - 1u));
    for (var j = lid; j < cols; j += WG) { m = max(m, masked(row, j)); }
    let row_max = workgroup_max(lid, m);
    var s = 0.0;
    for (var j = lid; j < cols; j += WG) { s += exp(masked(row, j) - row_max); }
    let inv = 1.0 / workgroup_sum(lid, s);
    for (var j = lid; j < cols; j += WG) {
        fy[row * cols + j] = exp(masked(row, j) - row_max) * inv;
    }
}

@group(0) @binding(0) var<storage, read> by: array<f32>;             // (R, L) forward output
@group(0) @binding(1) var<storage, read> bdy: array<f32>;            // (R, L)
@group(0) @binding(2) var<storage, read_write> bdx: array<f32>;      // (R, L)
@group(0) @binding(3) var<uniform> bparams: Params;

@compute @workgroup_size(256)
fn softmax_backward(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
    let lid = lid3.x;
    let row = wid.x + wid.y * nwg.x;
    if (row >= bparams.rows) { return; }
    let cols = bparams.cols;
    let base = row * cols;
    var s = 0.0;
    for (var j = lid; j < cols; j += WG) { s += bdy[base + j] * by[base + j]; }
    let dot = workgroup_sum(lid, s);
    for (var j = lid; j < cols; j += WG) {
        bdx[base + j] += by[base + j] * (bdy[base + j] - dot);
    }
}

// L2 normalization of rows and cosine similarity of paired rows, forward and backward.
// CPU twin: crate/src/ops/similarity.rs. One workgroup (256 invocations) per row: the
// invocations stride over the C columns and reduce their partial dot products in workgroup
// memory (3 x 256 f32 = 3 KiB). Row index = wid.y * nwg.x + wid.x.

struct SimilarityParams {
    n: u32,    // rows
    c: u32,    // columns
    eps: f32,  // 1e-12 (normalize) or 1e-8 (cosine)
    _pad: u32,
}

const WG: u32 = 256u;
var<workgroup> red_a: array<f32, 256>;
var<workgroup> red_b: array<f32, 256>;
var<workgroup> red_c: array<f32, 256>;

// Sums red_a, red_b, red_c over the workgroup into element 0. Call from uniform control flow.
fn reduce3(lid: u32) {
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            red_a[lid] += red_a[lid + stride];
            red_b[lid] += red_b[lid + stride];
            red_c[lid] += red_c[lid + stride];
        }
        workgroupBarrier();
    }
}

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// The sum of `v` over the workgroup, for every invocation (red_a alone carries the values).
// Call from uniform control flow.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    red_a[lid] = v;
    red_b[lid] = 0.0;
    red_c[lid] = 0.0;
    reduce3(lid);
    return red_a[0];
}

// ---- l2 normalize forward
@group(0) @binding(0) var<storage, read> nf_inp: array<f32>;            // (N, C)
@group(0) @binding(1) var<storage, read_write> nf_out: array<f32>;      // (N, C)
@group(0) @binding(2) var<storage, read_write> nf_norms: array<f32>;    // (N)
@group(0) @binding(3) var<uniform> nf_params: SimilarityParams;

@compute @workgroup_size(256)
fn l2_normalize_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = row_of(wid, nwg);
    let c = nf_params.c;
    if (row >= nf_params.n) { return; }  // uniform per workgroup
    var s = 0.0;
    for (var j = lid.x; j < c; j += WG) {
        let x = nf_inp[row * c + j];
        s += x * x;
    }
    let norm = sqrt(workgroup_sum(lid.x, s));
    let denom = max(norm, nf_params.eps);
    for (var j = lid.x; j < c; j += WG) {
        nf_out[row * c + j] = nf_inp[row * c + j] / denom;
    }
    if (lid.x == 0u) { nf_norms[row] = norm; }
}

// ---- l2 normalize backward
@group(0) @binding(0) var<storage, read> nb_dout: array<f32>;           // (N, C)
@group(0) @binding(1) var<storage, read> nb_out: array<f32>;            // (N, C) y
@group(0) @binding(2) var<storage, read> nb_norms: array<f32>;          // (N)
@group(0) @binding(3) var<storage, read_write> nb_dinp: array<f32>;     // (N, C) accumulated
@group(0) @binding(4) var<uniform> nb_params: SimilarityParams;

@compute @workgroup_size(256)
fn l2_normalize_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = row_of(wid, nwg);
    let c = nb_params.c;
    if (row >= nb_params.n) { return; }
    var s = 0.0;
    for (var j = lid.x; j < c; j += WG) {
        s += nb_out[row * c + j] * nb_dout[row * c + j];
    }
    let y_dot_dy = workgroup_sum(lid.x, s);
    let norm = nb_norms[row];
    for (var j = lid.x; j < c; j += WG) {
        let i = row * c + j;
        if (norm > nb_params.eps) {
            nb_dinp[i] += (nb_dout[i] - nb_out[i] * y_dot_dy) / norm;
        } else {
            nb_dinp[i] += nb_dout[i] / nb_params.eps;
        }
    }
}

// ---- cosine similarity forward and backward: the rows a and b of both, bound alike
@group(0) @binding(0) var<storage, read> cos_a: array<f32>;             // (N, C)
@group(0) @binding(1) var<storage, read> cos_b: array<f32>;             // (N, C)

// (a.b, a.a, b.b) of one row pair, for every invocation. Call from uniform control flow.
fn row_dots(row: u32, c: u32, lid: u32) -> vec3<f32> {
    var ab = 0.0;
    var aa = 0.0;
    var bb = 0.0;
    for (var j = lid; j < c; j += WG) {
        let x = cos_a[row * c + j];
        let y = cos_b[row * c + j];
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    red_a[lid] = ab;
    red_b[lid] = aa;
    red_c[lid] = bb;
    reduce3(lid);
    return vec3<f32>(red_a[0], red_b[0], red_c[0]);
}

@group(0) @binding(2) var<storage, read_write> cf_out: array<f32>;      // (N)
@group(0) @binding(3) var<uniform> cf_params: SimilarityParams;

@compute @workgroup_size(256)
fn cosine_similarity_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = row_of(wid, nwg);
    let c = cf_params.c;
    if (row >= cf_params.n) { return; }
    let dots = row_dots(row, c, lid.x);
    if (lid.x == 0u) {
        let na = max(sqrt(dots.y), cf_params.eps);
        let nb = max(sqrt(dots.z), cf_params.eps);
        cf_out[row] = dots.x / (na * nb);
    }
}

// cosine similarity backward
@group(0) @binding(2) var<storage, read> cb_dout: array<f32>;           // (N)
@group(0) @binding(3) var<storage, read_write> cb_da: array<f32>;       // (N, C) accumulated
@group(0) @binding(4) var<storage, read_write> cb_db: array<f32>;       // (N, C) accumulated
@group(0) @binding(5) var<uniform> cb_params: SimilarityParams;

@compute @workgroup_size(256)
fn cosine_similarity_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = row_of(wid, nwg);
    let c = cb_params.c;
    if (row >= cb_params.n) { return; }
    let dots = row_dots(row, c, lid.x);
    let raw_na = sqrt(dots.y);
    let raw_nb = sqrt(dots.z);
    let na = max(raw_na, cb_params.eps);
    let nb = max(raw_nb, cb_params.eps);
    let s = dots.x / (na * nb);
    let ka = select(0.0, s / (na * na), raw_na > cb_params.eps);
    let kb = select(0.0, s / (nb * nb), raw_nb > cb_params.eps);
    let g = cb_dout[row];
    for (var j = lid.x; j < c; j += WG) {
        let i = row * c + j;
        let x = cos_a[i];
        let y = cos_b[i];
        cb_da[i] += g * (y / (na * nb) - ka * x);
        cb_db[i] += g * (x / (na * nb) - kb * y);
    }
}

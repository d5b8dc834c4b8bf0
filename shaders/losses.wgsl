// Losses and their backward; CPU twin: crate/src/ops/losses.rs.
//   cross_entropy_forward / _backward: softmax cross-entropy over rows of logits, ignore index
//   cross_entropy_mean: mean loss over the non-ignored rows (one workgroup)
//   bce_with_logits_forward / _backward, mse_forward / _backward: elementwise
//   loss_mean: mean of N values (one workgroup)
// Row/element index from a 2-D grid: (wid.y * nwg.x + wid.x), so more than 65535 workgroups fit.

struct LossParams {
    n: u32,            // rows (cross-entropy) or elements
    v: u32,            // classes per row (cross-entropy)
    ignore_index: u32, // bits of i32 -100 by default
    scale: f32,        // d(reduced loss)/d(per-row loss), backward only
}

const WG: u32 = 256u;
var<workgroup> partial_a: array<f32, 256>;
var<workgroup> partial_b: array<f32, 256>;

fn flat_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

// ---- cross-entropy forward: one workgroup per row, online max/sum-exp (Milakov & Gimelshein 2018)
@group(0) @binding(0) var<storage, read> ce_logits: array<f32>;           // (N, V)
@group(0) @binding(1) var<storage, read> ce_targets: array<u32>;          // (N)
@group(0) @binding(2) var<storage, read_write> ce_losses: array<f32>;     // (N)
@group(0) @binding(3) var<storage, read_write> ce_logsumexp: array<f32>;  // (N)
@group(0) @binding(4) var<uniform> ce_params: LossParams;

@compute @workgroup_size(256)
fn cross_entropy_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = flat_workgroup(wid, nwg);
    if (row >= ce_params.n) { return; }  // uniform per workgroup: barriers stay in uniform control flow
    let v = ce_params.v;
    let base = row * v;
    var m = -3.402823e38;
    var s = 0.0;
    for (var j = lid.x; j < v; j += WG) {
        let x = ce_logits[base + j];
        let new_m = max(m, x);
        s = s * exp(m - new_m) + exp(x - new_m);
        m = new_m;
    }
    partial_a[lid.x] = m;
    partial_b[lid.x] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid.x < stride) {
            let m1 = partial_a[lid.x];
            let m2 = partial_a[lid.x + stride];
            let new_m = max(m1, m2);
            partial_b[lid.x] = partial_b[lid.x] * exp(m1 - new_m) + partial_b[lid.x + stride] * exp(m2 - new_m);
            partial_a[lid.x] = new_m;
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        let lse = partial_a[0] + log(partial_b[0]);
        ce_logsumexp[row] = lse;
        let t = ce_targets[row];
        if (t == ce_params.ignore_index) {
            ce_losses[row] = 0.0;
        } else {
            ce_losses[row] = lse - ce_logits[base + t];
        }
    }
}

// ---- cross-entropy backward: one invocation per logit
@group(0) @binding(0) var<storage, read> ceb_logits: array<f32>;            // (N, V)
@group(0) @binding(1) var<storage, read> ceb_targets: array<u32>;           // (N)
@group(0) @binding(2) var<storage, read> ceb_logsumexp: array<f32>;         // (N)
@group(0) @binding(3) var<storage, read_write> ceb_dlogits: array<f32>;     // (N, V) accumulated
@group(0) @binding(4) var<uniform> ceb_params: LossParams;

@compute @workgroup_size(256)
fn cross_entropy_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_workgroup(wid, nwg) * WG + lid.x;
    let v = ceb_params.v;
    if (i >= ceb_params.n * v) { return; }
    let row = i / v;
    let j = i % v;
    let t = ceb_targets[row];
    if (t == ceb_params.ignore_index) { return; }
    let p = exp(ceb_logits[i] - ceb_logsumexp[row]);
    let onehot = select(0.0, 1.0, t == j);
    ceb_dlogits[i] += ceb_params.scale * (p - onehot);
}

// ---- mean over non-ignored rows: one workgroup; out[0] = mean (0 if none), out[1] = count
@group(0) @binding(0) var<storage, read> cem_losses: array<f32>;      // (N)
@group(0) @binding(1) var<storage, read> cem_targets: array<u32>;     // (N)
@group(0) @binding(2) var<storage, read_write> cem_out: array<f32>;   // (2)
@group(0) @binding(3) var<uniform> cem_params: LossParams;

@compute @workgroup_size(256)
fn cross_entropy_mean(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = 0.0;
    var c = 0.0;
    for (var i = lid.x; i < cem_params.n; i += WG) {
        if (cem_targets[i] != cem_params.ignore_index) {
            s += cem_losses[i];
            c += 1.0;
        }
    }
    partial_a[lid.x] = s;
    partial_b[lid.x] = c;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid.x < stride) {
            partial_a[lid.x] += partial_a[lid.x + stride];
            partial_b[lid.x] += partial_b[lid.x + stride];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        cem_out[0] = select(0.0, partial_a[0] / partial_b[0], partial_b[0] > 0.0);
        cem_out[1] = partial_b[0];
    }
}

// ---- elementwise losses: (predictions or logits, targets) -> per-element loss
@group(0) @binding(0) var<storage, read> ew_x: array<f32>;              // (N) logits / predictions
@group(0) @binding(1) var<storage, read> ew_y: array<f32>;              // (N) targets
@group(0) @binding(2) var<storage, read_write> ew_out: array<f32>;      // (N) losses (forward) or dx (backward, accumulated)
@group(0) @binding(3) var<uniform> ew_params: LossParams;

@compute @workgroup_size(256)
fn bce_with_logits_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_workgroup(wid, nwg) * WG + lid.x;
    if (i >= ew_params.n) { return; }
    let x = ew_x[i];
    // log1p(exp(-|x|)) without log1p: exp(-|x|) is in (0, 1], log(1 + e) loses at most ~1 ulp of 1
    ew_out[i] = max(x, 0.0) - x * ew_y[i] + log(1.0 + exp(-abs(x)));
}

@compute @workgroup_size(256)
fn bce_with_logits_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_workgroup(wid, nwg) * WG + lid.x;
    if (i >= ew_params.n) { return; }
    let sig = 1.0 / (1.0 + exp(-ew_x[i]));
    ew_out[i] += ew_params.scale * (sig - ew_y[i]);
}

@compute @workgroup_size(256)
fn mse_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_workgroup(wid, nwg) * WG + lid.x;
    if (i >= ew_params.n) { return; }
    let d = ew_x[i] - ew_y[i];
    ew_out[i] = d * d;
}

@compute @workgroup_size(256)
fn mse_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_workgroup(wid, nwg) * WG + lid.x;
    if (i >= ew_params.n) { return; }
    ew_out[i] += ew_params.scale * 2.0 * (ew_x[i] - ew_y[i]);
}

// ---- mean of N values: one workgroup; out[0] = mean (0 if N == 0)
@group(0) @binding(0) var<storage, read> mean_values: array<f32>;      // (N)
@group(0) @binding(1) var<storage, read_write> mean_out: array<f32>;   // (1)
@group(0) @binding(2) var<uniform> mean_params: LossParams;

@compute @workgroup_size(256)
fn loss_mean(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = 0.0;
    for (var i = lid.x; i < mean_params.n; i += WG) {
        s += mean_values[i];
    }
    partial_a[lid.x] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid.x < stride) {
            partial_a[lid.x] += partial_a[lid.x + stride];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        mean_out[0] = select(0.0, partial_a[0] / f32(mean_params.n), mean_params.n > 0u);
    }
}

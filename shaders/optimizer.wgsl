// AdamW step and global-norm gradient clipping; CPU twin: crate/src/ops/optimizer.rs.
//   adamw_step: one invocation per parameter, params/m/v updated in place
//   sum_of_squares_partial: one workgroup per 4096 gradient elements -> partials[offset + w]
//   clip_coefficient: one workgroup -> clip[0] = total norm, clip[1] = min(max_norm / (total + 1e-6), 1)
//   scale_by_clip_coefficient: grads[i] *= clip[1]
// Flat indices from a 2-D grid of workgroups: (wid.y * nwg.x + wid.x).

const WG: u32 = 256u;
const SQUARES_PER_INVOCATION: u32 = 16u;

struct AdamWParams {
    n: u32,
    decay: f32,                  // 1 - lr * weight_decay
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    step_size: f32,              // lr / (1 - beta1^t)
    bias_correction2_sqrt: f32,  // sqrt(1 - beta2^t)
    eps: f32,
}

struct ClipParams {
    n: u32,               // elements, or number of partial sums (clip_coefficient)
    partial_offset: u32,  // first partial of this gradient
    max_norm: f32,
    _pad: u32,
}

// ---- AdamW
@group(0) @binding(0) var<storage, read> adam_grads: array<f32>;         // (N)
@group(0) @binding(1) var<storage, read_write> adam_params: array<f32>;  // (N) in place
@group(0) @binding(2) var<storage, read_write> adam_m: array<f32>;       // (N) in place
@group(0) @binding(3) var<storage, read_write> adam_v: array<f32>;       // (N) in place
@group(0) @binding(4) var<uniform> adam: AdamWParams;

@compute @workgroup_size(256)
fn adamw_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= adam.n) { return; }
    let g = adam_grads[i];
    let p = adam_params[i] * adam.decay;
    let m = adam_m[i] + adam.one_minus_beta1 * (g - adam_m[i]);
    let v = adam_v[i] * adam.beta2 + adam.one_minus_beta2 * g * g;
    let denom = sqrt(v) / adam.bias_correction2_sqrt + adam.eps;
    adam_params[i] = p - adam.step_size * m / denom;
    adam_m[i] = m;
    adam_v[i] = v;
}

var<workgroup> squares: array<f32, 256>;

fn reduce_squares(lid: u32) {
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            squares[lid] += squares[lid + stride];
        }
        workgroupBarrier();
    }
}

// ---- partial sums of squares of one gradient tensor
@group(0) @binding(0) var<storage, read> sq_grads: array<f32>;            // (N)
@group(0) @binding(1) var<storage, read_write> sq_partials: array<f32>;   // (P) all tensors' partials
@group(0) @binding(2) var<uniform> sq_params: ClipParams;

@compute @workgroup_size(256)
fn sum_of_squares_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.y * nwg.x + wid.x;
    let base = w * WG * SQUARES_PER_INVOCATION;
    var s = 0.0;
    for (var k = 0u; k < SQUARES_PER_INVOCATION; k++) {
        let i = base + k * WG + lid.x;
        if (i < sq_params.n) {
            let g = sq_grads[i];
            s += g * g;
        }
    }
    squares[lid.x] = s;
    reduce_squares(lid.x);
    if (lid.x == 0u && base < sq_params.n) {
        sq_partials[sq_params.partial_offset + w] = squares[0];
    }
}

// ---- total norm and clip coefficient: one workgroup
@group(0) @binding(0) var<storage, read> cc_partials: array<f32>;        // (P)
@group(0) @binding(1) var<storage, read_write> cc_clip: array<f32>;      // (2) [total norm, coefficient]
@group(0) @binding(2) var<uniform> cc_params: ClipParams;

@compute @workgroup_size(256)
fn clip_coefficient(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = 0.0;
    for (var i = lid.x; i < cc_params.n; i += WG) {
        s += cc_partials[i];
    }
    squares[lid.x] = s;
    reduce_squares(lid.x);
    if (lid.x == 0u) {
        let total = sqrt(squares[0]);
        cc_clip[0] = total;
        cc_clip[1] = min(cc_params.max_norm / (total + 1e-6), 1.0);
    }
}

// ---- scale one gradient by the coefficient, in place
@group(0) @binding(0) var<storage, read> sc_clip: array<f32>;            // (2)
@group(0) @binding(1) var<storage, read_write> sc_grads: array<f32>;     // (N) in place
@group(0) @binding(2) var<uniform> sc_params: ClipParams;

@compute @workgroup_size(256)
fn scale_by_clip_coefficient(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if (i >= sc_params.n) { return; }
    sc_grads[i] *= sc_clip[1];
}

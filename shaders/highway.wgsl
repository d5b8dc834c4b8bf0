// Highway layer in AllenNLP's convention: proj = x W^T + b (W: (2D, D)),
// y = g * x + (1 - g) * relu(proj[:D]), g = sigmoid(proj[D:]).
// CPU twin: crate/src/ops/highway.rs. Flat indices from a 2-D workgroup grid.
//   highway_forward:          one invocation per (n, k): both dot products of column k
//   highway_backward_proj:    one invocation per (n, k): dproj[n, k] and dproj[n, D + k] (scratch)
//   highway_backward_input:   one invocation per (n, k): dinp += dy g + sum_j dproj[n, j] W[j, k]
//   highway_backward_weight:  one invocation per (j, k) of W: dW += sum_n dproj[n, j] x[n, k];
//                             invocations with k == 0 also do dbias[j] += sum_n dproj[n, j]

struct HighwayParams {
    n: u32,  // rows
    d: u32,  // width D
    _pad0: u32,
    _pad1: u32,
}

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// ---- forward
@group(0) @binding(0) var<storage, read> hf_inp: array<f32>;           // (N, D)
@group(0) @binding(1) var<storage, read> hf_weight: array<f32>;        // (2D, D)
@group(0) @binding(2) var<storage, read> hf_bias: array<f32>;          // (2D)
@group(0) @binding(3) var<storage, read_write> hf_out: array<f32>;     // (N, D)
@group(0) @binding(4) var<storage, read_write> hf_proj: array<f32>;    // (N, 2D)
@group(0) @binding(5) var<uniform> hf_params: HighwayParams;

@compute @workgroup_size(256)
fn highway_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    let d = hf_params.d;
    if (i >= hf_params.n * d) { return; }
    let row = i / d;
    let k = i % d;
    var nonlinear = hf_bias[k];
    var gate = hf_bias[d + k];
    for (var c = 0u; c < d; c++) {
        let x = hf_inp[row * d + c];
        nonlinear += hf_weight[k * d + c] * x;
        gate += hf_weight[(d + k) * d + c] * x;
    }
    hf_proj[row * 2u * d + k] = nonlinear;
    hf_proj[row * 2u * d + d + k] = gate;
    let g = sigmoid(gate);
    hf_out[i] = g * hf_inp[i] + (1.0 - g) * max(nonlinear, 0.0);
}

// ---- backward, step 1: gradient of the pre-activations
@group(0) @binding(0) var<storage, read> hp_dout: array<f32>;          // (N, D)
@group(0) @binding(1) var<storage, read> hp_inp: array<f32>;           // (N, D)
@group(0) @binding(2) var<storage, read> hp_proj: array<f32>;          // (N, 2D)
@group(0) @binding(3) var<storage, read_write> hp_dproj: array<f32>;   // (N, 2D) written
@group(0) @binding(4) var<uniform> hp_params: HighwayParams;

@compute @workgroup_size(256)
fn highway_backward_proj(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    let d = hp_params.d;
    if (i >= hp_params.n * d) { return; }
    let row = i / d;
    let k = i % d;
    let p = hp_proj[row * 2u * d + k];
    let g = sigmoid(hp_proj[row * 2u * d + d + k]);
    let dy = hp_dout[i];
    hp_dproj[row * 2u * d + k] = select(0.0, dy * (1.0 - g), p > 0.0);
    hp_dproj[row * 2u * d + d + k] = dy * (hp_inp[i] - max(p, 0.0)) * g * (1.0 - g);
}

// ---- backward, step 2: input gradient
@group(0) @binding(0) var<storage, read> hi_dout: array<f32>;          // (N, D)
@group(0) @binding(1) var<storage, read> hi_proj: array<f32>;          // (N, 2D)
@group(0) @binding(2) var<storage, read> hi_dproj: array<f32>;         // (N, 2D)
@group(0) @binding(3) var<storage, read> hi_weight: array<f32>;        // (2D, D)
@group(0) @binding(4) var<storage, read_write> hi_dinp: array<f32>;    // (N, D) accumulated
@group(0) @binding(5) var<uniform> hi_params: HighwayParams;

@compute @workgroup_size(256)
fn highway_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    let d = hi_params.d;
    if (i >= hi_params.n * d) { return; }
    let row = i / d;
    let k = i % d;
    var acc = hi_dout[i] * sigmoid(hi_proj[row * 2u * d + d + k]);
    for (var j = 0u; j < 2u * d; j++) {
        acc += hi_dproj[row * 2u * d + j] * hi_weight[j * d + k];
    }
    hi_dinp[i] += acc;
}

// ---- backward, step 3: weight and bias gradients
@group(0) @binding(0) var<storage, read> hw_inp: array<f32>;           // (N, D)
@group(0) @binding(1) var<storage, read> hw_dproj: array<f32>;         // (N, 2D)
@group(0) @binding(2) var<storage, read_write> hw_dweight: array<f32>; // (2D, D) accumulated
@group(0) @binding(3) var<storage, read_write> hw_dbias: array<f32>;   // (2D) accumulated
@group(0) @binding(4) var<uniform> hw_params: HighwayParams;

@compute @workgroup_size(256)
fn highway_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    let d = hw_params.d;
    if (i >= 2u * d * d) { return; }
    let j = i / d;
    let k = i % d;
    var acc = 0.0;
    var bias_acc = 0.0;
    for (var row = 0u; row < hw_params.n; row++) {
        let g = hw_dproj[row * 2u * d + j];
        acc += g * hw_inp[row * d + k];
        bias_acc += g;
    }
    hw_dweight[i] += acc;
    if (k == 0u) {
        hw_dbias[j] += bias_acc;
    }
}

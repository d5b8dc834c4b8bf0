// Elementwise ops: add (residual), GELU (exact erf form and tanh form), tanh, ReLU.
// Forward and backward side by side; backward ACCUMULATES into gradients (+=).
// Every tensor is flat with params.n elements; 1-D dispatch of 256-thread workgroups, split
// over x and y when more than 65535 workgroups are needed.

struct Params {
    n: u32,      // element count of every tensor below
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WORKGROUP: u32 = 256u;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP;
}

// erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7); the CPU twin uses the same formula.
fn erf_approx(x: f32) -> f32 {
    let a = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - poly * exp(-a * a);
    return select(r, -r, x < 0.0);
}

// tanh that never overflows: exp of a non-positive argument only.
fn tanh_safe(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    let r = (1.0 - e) / (1.0 + e);
    return select(r, -r, x < 0.0);
}

const SQRT_HALF: f32 = 0.7071067811865476;       // 1/sqrt(2)
const INV_SQRT_2PI: f32 = 0.3989422804014327;    // 1/sqrt(2*pi)
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;  // sqrt(2/pi)
const GELU_TANH_C: f32 = 0.044715;

// ---- add: out = a + b ------------------------------------------------------------------
@group(0) @binding(0) var<storage, read> add_a: array<f32>;          // (n)
@group(0) @binding(1) var<storage, read> add_b: array<f32>;          // (n)
@group(0) @binding(2) var<storage, read_write> add_out: array<f32>;  // (n)
@group(0) @binding(3) var<uniform> add_params: Params;

@compute @workgroup_size(256)
fn add_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= add_params.n) { return; }
    add_out[i] = add_a[i] + add_b[i];
}

// d_a += d_out; d_b += d_out
@group(0) @binding(0) var<storage, read> addb_dout: array<f32>;      // (n)
@group(0) @binding(1) var<storage, read_write> addb_da: array<f32>;  // (n)
@group(0) @binding(2) var<storage, read_write> addb_db: array<f32>;  // (n)
@group(0) @binding(3) var<uniform> addb_params: Params;

@compute @workgroup_size(256)
fn add_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= addb_params.n) { return; }
    let g = addb_dout[i];
    addb_da[i] += g;
    addb_db[i] += g;
}

// ---- unary forward: y = f(x) ---------------------------------------------------------
@group(0) @binding(0) var<storage, read> un_x: array<f32>;           // (n)
@group(0) @binding(1) var<storage, read_write> un_y: array<f32>;     // (n)
@group(0) @binding(2) var<uniform> un_params: Params;

@compute @workgroup_size(256)
fn gelu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= un_params.n) { return; }
    let x = un_x[i];
    un_y[i] = 0.5 * x * (1.0 + erf_approx(x * SQRT_HALF));
}

@compute @workgroup_size(256)
fn gelu_tanh_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= un_params.n) { return; }
    let x = un_x[i];
    un_y[i] = 0.5 * x * (1.0 + tanh_safe(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x)));
}

@compute @workgroup_size(256)
fn tanh_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= un_params.n) { return; }
    un_y[i] = tanh_safe(un_x[i]);
}

@compute @workgroup_size(256)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= un_params.n) { return; }
    un_y[i] = max(un_x[i], 0.0);
}

// ---- unary backward: dx += f'(saved) * dy ----------------------------------------------
@group(0) @binding(0) var<storage, read> ub_saved: array<f32>;       // (n) x for GELU and ReLU, y for tanh
@group(0) @binding(1) var<storage, read> ub_dy: array<f32>;          // (n)
@group(0) @binding(2) var<storage, read_write> ub_dx: array<f32>;    // (n)
@group(0) @binding(3) var<uniform> ub_params: Params;

@compute @workgroup_size(256)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= ub_params.n) { return; }
    let x = ub_saved[i];
    let cdf = 0.5 * (1.0 + erf_approx(x * SQRT_HALF));
    let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
    ub_dx[i] += (cdf + x * pdf) * ub_dy[i];
}

@compute @workgroup_size(256)
fn gelu_tanh_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= ub_params.n) { return; }
    let x = ub_saved[i];
    let th = tanh_safe(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x));
    let dinner = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_C * x * x);
    ub_dx[i] += (0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * dinner) * ub_dy[i];
}

@compute @workgroup_size(256)
fn tanh_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= ub_params.n) { return; }
    let y = ub_saved[i];
    ub_dx[i] += (1.0 - y * y) * ub_dy[i];
}

// relu'(x) = 1 for x > 0, else 0 (torch's choice at 0)
@compute @workgroup_size(256)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i >= ub_params.n) { return; }
    ub_dx[i] += select(0.0, ub_dy[i], ub_saved[i] > 0.0);
}

// ELMo's character CNN for one filter width: valid Conv1d over the W characters of each token,
// max over positions (first maximum wins), then tanh or relu; output into columns
// out_col..out_col+F of the (N, out_stride) token features. CPU twin: crate/src/ops/char_cnn.rs.
//   char_conv_forward:         one invocation per (n, f)
//   char_conv_backward_input:  one invocation per (n, position, e): gathers from every filter
//                              whose max window covers that position (no write races)
//   char_conv_backward_weight: one invocation per (f, e, k) of W; those with e == 0 and k == 0
//                              also accumulate dbias[f]
// Flat indices from a 2-D workgroup grid.

struct CharCnnParams {
    n: u32,           // tokens
    chars: u32,       // W, characters per token
    embed: u32,       // E
    width: u32,       // K
    filters: u32,     // F
    out_stride: u32,  // row stride of out / dout
    out_col: u32,     // first column of this width
    activation: u32,  // 0 = tanh, 1 = relu
}

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

fn activate(x: f32, activation: u32) -> f32 {
    if (activation == 0u) { return tanh(x); }
    return max(x, 0.0);
}

// derivative through the activation's output y
fn activation_derivative(y: f32, activation: u32) -> f32 {
    if (activation == 0u) { return 1.0 - y * y; }
    return select(0.0, 1.0, y > 0.0);
}

// ---- forward
@group(0) @binding(0) var<storage, read> cf_chars: array<f32>;          // (N, W, E)
@group(0) @binding(1) var<storage, read> cf_weight: array<f32>;         // (F, E, K)
@group(0) @binding(2) var<storage, read> cf_bias: array<f32>;           // (F)
@group(0) @binding(3) var<storage, read_write> cf_out: array<f32>;      // (N, out_stride)
@group(0) @binding(4) var<storage, read_write> cf_argmax: array<u32>;   // (N, F)
@group(0) @binding(5) var<uniform> cf: CharCnnParams;

@compute @workgroup_size(256)
fn char_conv_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= cf.n * cf.filters) { return; }
    let n = i / cf.filters;
    let f = i % cf.filters;
    let positions = cf.chars + 1u - cf.width;
    var best = -3.402823e38;
    var best_p = 0u;
    for (var p = 0u; p < positions; p++) {
        var acc = cf_bias[f];
        for (var e = 0u; e < cf.embed; e++) {
            for (var k = 0u; k < cf.width; k++) {
                acc += cf_weight[(f * cf.embed + e) * cf.width + k] * cf_chars[(n * cf.chars + p + k) * cf.embed + e];
            }
        }
        if (acc > best) {
            best = acc;
            best_p = p;
        }
    }
    cf_argmax[i] = best_p;
    cf_out[n * cf.out_stride + cf.out_col + f] = activate(best, cf.activation);
}

// ---- backward: character embedding gradient
@group(0) @binding(0) var<storage, read> cbi_dout: array<f32>;          // (N, out_stride)
@group(0) @binding(1) var<storage, read> cbi_out: array<f32>;           // (N, out_stride)
@group(0) @binding(2) var<storage, read> cbi_argmax: array<u32>;        // (N, F)
@group(0) @binding(3) var<storage, read> cbi_weight: array<f32>;        // (F, E, K)
@group(0) @binding(4) var<storage, read_write> cbi_dchars: array<f32>;  // (N, W, E) accumulated
@group(0) @binding(5) var<uniform> cbi: CharCnnParams;

@compute @workgroup_size(256)
fn char_conv_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= cbi.n * cbi.chars * cbi.embed) { return; }
    let e = i % cbi.embed;
    let position = (i / cbi.embed) % cbi.chars;
    let n = i / (cbi.embed * cbi.chars);
    var acc = 0.0;
    for (var f = 0u; f < cbi.filters; f++) {
        let p = cbi_argmax[n * cbi.filters + f];
        // this position is character k = position - p of filter f's max window
        if (position >= p && position < p + cbi.width) {
            let col = n * cbi.out_stride + cbi.out_col + f;
            let dm = cbi_dout[col] * activation_derivative(cbi_out[col], cbi.activation);
            acc += dm * cbi_weight[(f * cbi.embed + e) * cbi.width + (position - p)];
        }
    }
    cbi_dchars[i] += acc;
}

// ---- backward: weight and bias gradients
@group(0) @binding(0) var<storage, read> cbw_dout: array<f32>;           // (N, out_stride)
@group(0) @binding(1) var<storage, read> cbw_out: array<f32>;            // (N, out_stride)
@group(0) @binding(2) var<storage, read> cbw_argmax: array<u32>;         // (N, F)
@group(0) @binding(3) var<storage, read> cbw_chars: array<f32>;          // (N, W, E)
@group(0) @binding(4) var<storage, read_write> cbw_dweight: array<f32>;  // (F, E, K) accumulated
@group(0) @binding(5) var<storage, read_write> cbw_dbias: array<f32>;    // (F) accumulated
@group(0) @binding(6) var<uniform> cbw: CharCnnParams;

@compute @workgroup_size(256)
fn char_conv_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat_index(wid, nwg, lid);
    if (i >= cbw.filters * cbw.embed * cbw.width) { return; }
    let k = i % cbw.width;
    let e = (i / cbw.width) % cbw.embed;
    let f = i / (cbw.width * cbw.embed);
    var acc = 0.0;
    var bias_acc = 0.0;
    for (var n = 0u; n < cbw.n; n++) {
        let col = n * cbw.out_stride + cbw.out_col + f;
        let dm = cbw_dout[col] * activation_derivative(cbw_out[col], cbw.activation);
        let p = cbw_argmax[n * cbw.filters + f];
        acc += dm * cbw_chars[(n * cbw.chars + p + k) * cbw.embed + e];
        bias_acc += dm;
    }
    cbw_dweight[i] += acc;
    if (e == 0u && k == 0u) {
        cbw_dbias[f] += bias_acc;
    }
}

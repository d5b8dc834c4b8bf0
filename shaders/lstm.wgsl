// ELMo's LSTM with projection and clipping (AllenNLP LstmCellWithProjection), forward and
// backward through time. CPU twin and conventions: crate/src/ops/lstm.rs.
// Gates [i, f, g, o]; row b is active at time index t iff t < lengths[b]; visiting step s of a
// row is t = s (go_forward) or t = len - 1 - s. The per-step kernels run once per visiting step
// s (params.step), s = 0 .. max(len) - 1 forward and max(len) - 1 .. 0 in the backward.
//
// Forward, per call:  lstm_input_projection (all steps at once), lstm_clear_padding,
//                     then for each s: lstm_cell_step, lstm_projection_step.
// Backward, per call: dh_carry := dh_final, dc_carry := dc_final (copies), then for each s
//                     descending: lstm_backward_projection_step, lstm_backward_cell_step,
//                     lstm_backward_hidden_step; then lstm_backward_inputs,
//                     lstm_backward_input_weights, lstm_backward_state_weights,
//                     lstm_backward_projection_weights, lstm_backward_initial_state.
//                     dproj (B, T, H) and dgates (B, T, 4C) must start zeroed.
// Flat indices from a 2-D grid of 256-invocation workgroups.

struct LstmParams {
    batch: u32,       // B
    steps: u32,       // T
    input: u32,       // I
    cell: u32,        // C
    hidden: u32,      // H
    step: u32,        // visiting step s of the per-step kernels
    go_forward: u32,  // 1 forward, 0 backward direction
    cell_clip: f32,   // 0 = none
    proj_clip: f32,   // 0 = none
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

fn time_index(go_forward: u32, s: u32, len: u32) -> u32 {
    return select(len - 1u - s, s, go_forward == 1u);
}

fn clip(x: f32, limit: f32) -> f32 {
    return select(clamp(x, -limit, limit), x, limit == 0.0);
}

// torch.clamp passes the gradient where -limit <= x <= limit
fn clip_passes(x: f32, limit: f32) -> bool {
    return limit == 0.0 || (x >= -limit && x <= limit);
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// ---- forward 1: input projection of all steps into gates (zero at padded steps)
@group(0) @binding(0) var<storage, read> ip_inputs: array<f32>;        // (B, T, I)
@group(0) @binding(1) var<storage, read> ip_w_input: array<f32>;       // (4C, I)
@group(0) @binding(2) var<storage, read> ip_lengths: array<u32>;       // (B)
@group(0) @binding(3) var<storage, read_write> ip_gates: array<f32>;   // (B, T, 4C)
@group(0) @binding(4) var<uniform> ip: LstmParams;

@compute @workgroup_size(256)
fn lstm_input_projection(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let c4 = 4u * ip.cell;
    if (idx >= ip.batch * ip.steps * c4) { return; }
    let j = idx % c4;
    let bt = idx / c4;
    let b = bt / ip.steps;
    let t = bt % ip.steps;
    var acc = 0.0;
    if (t < ip_lengths[b]) {
        for (var k = 0u; k < ip.input; k++) {
            acc += ip_w_input[j * ip.input + k] * ip_inputs[bt * ip.input + k];
        }
    }
    ip_gates[idx] = acc;
}

// ---- forward 2: zero outputs, cells and projections at padded steps
@group(0) @binding(0) var<storage, read> cp_lengths: array<u32>;           // (B)
@group(0) @binding(1) var<storage, read_write> cp_outputs: array<f32>;     // (B, T, H)
@group(0) @binding(2) var<storage, read_write> cp_cells: array<f32>;       // (B, T, C)
@group(0) @binding(3) var<storage, read_write> cp_projections: array<f32>; // (B, T, H)
@group(0) @binding(4) var<uniform> cp: LstmParams;

@compute @workgroup_size(256)
fn lstm_clear_padding(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let width = max(cp.hidden, cp.cell);
    if (idx >= cp.batch * cp.steps * width) { return; }
    let k = idx % width;
    let bt = idx / width;
    if (bt % cp.steps < cp_lengths[bt / cp.steps]) { return; }
    if (k < cp.hidden) {
        cp_outputs[bt * cp.hidden + k] = 0.0;
        cp_projections[bt * cp.hidden + k] = 0.0;
    }
    if (k < cp.cell) {
        cp_cells[bt * cp.cell + k] = 0.0;
    }
}

// ---- forward 3 (per step): gates, memory cell, o * tanh(c') for each (b, c)
@group(0) @binding(0) var<storage, read> cs_w_state: array<f32>;          // (4C, H)
@group(0) @binding(1) var<storage, read> cs_bias: array<f32>;             // (4C)
@group(0) @binding(2) var<storage, read> cs_lengths: array<u32>;          // (B)
@group(0) @binding(3) var<storage, read> cs_h_state: array<f32>;          // (B, H) previous h
@group(0) @binding(4) var<storage, read_write> cs_gates: array<f32>;      // (B, T, 4C) in: W_x x, out: activated gates
@group(0) @binding(5) var<storage, read_write> cs_cells: array<f32>;      // (B, T, C) pre-clip memory
@group(0) @binding(6) var<storage, read_write> cs_c_state: array<f32>;    // (B, C) in place
@group(0) @binding(7) var<storage, read_write> cs_hidden_pre: array<f32>; // (B, C) o * tanh(c')
@group(0) @binding(8) var<uniform> cs: LstmParams;

@compute @workgroup_size(256)
fn lstm_cell_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let C = cs.cell;
    let H = cs.hidden;
    if (idx >= cs.batch * C) { return; }
    let b = idx / C;
    let c = idx % C;
    let len = cs_lengths[b];
    if (cs.step >= len) { return; }
    let t = time_index(cs.go_forward, cs.step, len);
    let g0 = (b * cs.steps + t) * 4u * C;
    var a = vec4<f32>(0.0);
    for (var q = 0u; q < 4u; q++) {
        let j = q * C + c;
        var acc = cs_gates[g0 + j] + cs_bias[j];
        for (var k = 0u; k < H; k++) {
            acc += cs_w_state[j * H + k] * cs_h_state[b * H + k];
        }
        a[q] = acc;
    }
    let i = sigmoid(a[0]);
    let f = sigmoid(a[1]);
    let g = tanh(a[2]);
    let o = sigmoid(a[3]);
    cs_gates[g0 + c] = i;
    cs_gates[g0 + C + c] = f;
    cs_gates[g0 + 2u * C + c] = g;
    cs_gates[g0 + 3u * C + c] = o;
    let c_pre = i * g + f * cs_c_state[idx];
    cs_cells[(b * cs.steps + t) * C + c] = c_pre;
    let c_new = clip(c_pre, cs.cell_clip);
    cs_c_state[idx] = c_new;
    cs_hidden_pre[idx] = o * tanh(c_new);
}

// ---- forward 4 (per step): projection, clip, output and new h for each (b, h)
@group(0) @binding(0) var<storage, read> ps_w_proj: array<f32>;            // (H, C)
@group(0) @binding(1) var<storage, read> ps_hidden_pre: array<f32>;        // (B, C)
@group(0) @binding(2) var<storage, read> ps_lengths: array<u32>;           // (B)
@group(0) @binding(3) var<storage, read_write> ps_outputs: array<f32>;     // (B, T, H)
@group(0) @binding(4) var<storage, read_write> ps_projections: array<f32>; // (B, T, H) pre-clip
@group(0) @binding(5) var<storage, read_write> ps_h_state: array<f32>;     // (B, H)
@group(0) @binding(6) var<uniform> ps: LstmParams;

@compute @workgroup_size(256)
fn lstm_projection_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let C = ps.cell;
    let H = ps.hidden;
    if (idx >= ps.batch * H) { return; }
    let b = idx / H;
    let h = idx % H;
    let len = ps_lengths[b];
    if (ps.step >= len) { return; }
    let t = time_index(ps.go_forward, ps.step, len);
    var p = 0.0;
    for (var c = 0u; c < C; c++) {
        p += ps_w_proj[h * C + c] * ps_hidden_pre[b * C + c];
    }
    let o = (b * ps.steps + t) * H + h;
    ps_projections[o] = p;
    let y = clip(p, ps.proj_clip);
    ps_outputs[o] = y;
    ps_h_state[idx] = y;
}

// ---- backward 1 (per step): through the projection clip, for each (b, h)
@group(0) @binding(0) var<storage, read> bp_doutputs: array<f32>;      // (B, T, H)
@group(0) @binding(1) var<storage, read> bp_projections: array<f32>;   // (B, T, H)
@group(0) @binding(2) var<storage, read> bp_lengths: array<u32>;       // (B)
@group(0) @binding(3) var<storage, read> bp_dh_carry: array<f32>;      // (B, H) gradient of h from later steps
@group(0) @binding(4) var<storage, read_write> bp_dproj: array<f32>;   // (B, T, H)
@group(0) @binding(5) var<uniform> bp: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_projection_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let H = bp.hidden;
    if (idx >= bp.batch * H) { return; }
    let b = idx / H;
    let h = idx % H;
    let len = bp_lengths[b];
    if (bp.step >= len) { return; }
    let t = time_index(bp.go_forward, bp.step, len);
    let o = (b * bp.steps + t) * H + h;
    let dy = bp_doutputs[o] + bp_dh_carry[idx];
    bp_dproj[o] = select(0.0, dy, clip_passes(bp_projections[o], bp.proj_clip));
}

// ---- backward 2 (per step): through the projection and the cell, for each (b, c)
@group(0) @binding(0) var<storage, read> bc_dproj: array<f32>;           // (B, T, H)
@group(0) @binding(1) var<storage, read> bc_w_proj: array<f32>;          // (H, C)
@group(0) @binding(2) var<storage, read> bc_gates: array<f32>;           // (B, T, 4C)
@group(0) @binding(3) var<storage, read> bc_cells: array<f32>;           // (B, T, C)
@group(0) @binding(4) var<storage, read> bc_c_initial: array<f32>;       // (B, C)
@group(0) @binding(5) var<storage, read> bc_lengths: array<u32>;         // (B)
@group(0) @binding(6) var<storage, read_write> bc_dgates: array<f32>;    // (B, T, 4C) pre-activation gradients
@group(0) @binding(7) var<storage, read_write> bc_dc_carry: array<f32>;  // (B, C) in place
@group(0) @binding(8) var<uniform> bcp: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_cell_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let C = bcp.cell;
    let H = bcp.hidden;
    if (idx >= bcp.batch * C) { return; }
    let b = idx / C;
    let c = idx % C;
    let len = bc_lengths[b];
    let s = bcp.step;
    if (s >= len) { return; }
    let bt = b * bcp.steps + time_index(bcp.go_forward, s, len);
    var dhidden_pre = 0.0;
    for (var h = 0u; h < H; h++) {
        dhidden_pre += bc_w_proj[h * C + c] * bc_dproj[bt * H + h];
    }
    var c_prev = bc_c_initial[idx];
    if (s > 0u) {
        let prev_bt = b * bcp.steps + time_index(bcp.go_forward, s - 1u, len);
        c_prev = clip(bc_cells[prev_bt * C + c], bcp.cell_clip);
    }
    let g0 = bt * 4u * C;
    let i = bc_gates[g0 + c];
    let f = bc_gates[g0 + C + c];
    let g = bc_gates[g0 + 2u * C + c];
    let o = bc_gates[g0 + 3u * C + c];
    let c_pre = bc_cells[bt * C + c];
    let tc = tanh(clip(c_pre, bcp.cell_clip));
    let d_o = dhidden_pre * tc;
    let dc_new = bc_dc_carry[idx] + dhidden_pre * o * (1.0 - tc * tc);
    let dc_pre = select(0.0, dc_new, clip_passes(c_pre, bcp.cell_clip));
    bc_dgates[g0 + c] = dc_pre * g * i * (1.0 - i);
    bc_dgates[g0 + C + c] = dc_pre * c_prev * f * (1.0 - f);
    bc_dgates[g0 + 2u * C + c] = dc_pre * i * (1.0 - g * g);
    bc_dgates[g0 + 3u * C + c] = d_o * o * (1.0 - o);
    bc_dc_carry[idx] = dc_pre * f;
}

// ---- backward 3 (per step): gradient of the previous h, for each (b, k)
@group(0) @binding(0) var<storage, read> bh_w_state: array<f32>;        // (4C, H)
@group(0) @binding(1) var<storage, read> bh_dgates: array<f32>;         // (B, T, 4C)
@group(0) @binding(2) var<storage, read> bh_lengths: array<u32>;        // (B)
@group(0) @binding(3) var<storage, read_write> bh_dh_carry: array<f32>; // (B, H) replaced
@group(0) @binding(4) var<uniform> bh: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_hidden_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let H = bh.hidden;
    let c4 = 4u * bh.cell;
    if (idx >= bh.batch * H) { return; }
    let b = idx / H;
    let k = idx % H;
    let len = bh_lengths[b];
    if (bh.step >= len) { return; }
    let bt = b * bh.steps + time_index(bh.go_forward, bh.step, len);
    var acc = 0.0;
    for (var j = 0u; j < c4; j++) {
        acc += bh_w_state[j * H + k] * bh_dgates[bt * c4 + j];
    }
    bh_dh_carry[idx] = acc;
}

// ---- backward 4: input gradient, for each (b, t, i)
@group(0) @binding(0) var<storage, read> bi_w_input: array<f32>;        // (4C, I)
@group(0) @binding(1) var<storage, read> bi_dgates: array<f32>;         // (B, T, 4C), zero at padding
@group(0) @binding(2) var<storage, read_write> bi_dinputs: array<f32>;  // (B, T, I) accumulated
@group(0) @binding(3) var<uniform> bi: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_inputs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let I = bi.input;
    let c4 = 4u * bi.cell;
    if (idx >= bi.batch * bi.steps * I) { return; }
    let bt = idx / I;
    let k = idx % I;
    var acc = 0.0;
    for (var j = 0u; j < c4; j++) {
        acc += bi_w_input[j * I + k] * bi_dgates[bt * c4 + j];
    }
    bi_dinputs[idx] += acc;
}

// ---- backward 5: input weight gradient, for each (j, i)
@group(0) @binding(0) var<storage, read> bwi_inputs: array<f32>;           // (B, T, I)
@group(0) @binding(1) var<storage, read> bwi_dgates: array<f32>;           // (B, T, 4C)
@group(0) @binding(2) var<storage, read_write> bwi_dw_input: array<f32>;   // (4C, I) accumulated
@group(0) @binding(3) var<uniform> bwi: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_input_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let I = bwi.input;
    let c4 = 4u * bwi.cell;
    if (idx >= c4 * I) { return; }
    let j = idx / I;
    let k = idx % I;
    var acc = 0.0;
    for (var bt = 0u; bt < bwi.batch * bwi.steps; bt++) {
        acc += bwi_dgates[bt * c4 + j] * bwi_inputs[bt * I + k];
    }
    bwi_dw_input[idx] += acc;
}

// ---- backward 6: recurrent weight and bias gradients, for each (j, k); k == 0 also does dbias[j]
@group(0) @binding(0) var<storage, read> bws_dgates: array<f32>;          // (B, T, 4C)
@group(0) @binding(1) var<storage, read> bws_projections: array<f32>;     // (B, T, H)
@group(0) @binding(2) var<storage, read> bws_h_initial: array<f32>;       // (B, H)
@group(0) @binding(3) var<storage, read> bws_lengths: array<u32>;         // (B)
@group(0) @binding(4) var<storage, read_write> bws_dw_state: array<f32>;  // (4C, H) accumulated
@group(0) @binding(5) var<storage, read_write> bws_dbias: array<f32>;     // (4C) accumulated
@group(0) @binding(6) var<uniform> bws: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_state_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let H = bws.hidden;
    let c4 = 4u * bws.cell;
    if (idx >= c4 * H) { return; }
    let j = idx / H;
    let k = idx % H;
    var acc = 0.0;
    var bias_acc = 0.0;
    for (var b = 0u; b < bws.batch; b++) {
        let len = bws_lengths[b];
        for (var s = 0u; s < len; s++) {
            let bt = b * bws.steps + time_index(bws.go_forward, s, len);
            var h_prev = bws_h_initial[b * H + k];
            if (s > 0u) {
                let prev_bt = b * bws.steps + time_index(bws.go_forward, s - 1u, len);
                h_prev = clip(bws_projections[prev_bt * H + k], bws.proj_clip);
            }
            let dg = bws_dgates[bt * c4 + j];
            acc += dg * h_prev;
            bias_acc += dg;
        }
    }
    bws_dw_state[idx] += acc;
    if (k == 0u) {
        bws_dbias[j] += bias_acc;
    }
}

// ---- backward 7: projection weight gradient, for each (h, c)
@group(0) @binding(0) var<storage, read> bwp_dproj: array<f32>;          // (B, T, H), zero at padding
@group(0) @binding(1) var<storage, read> bwp_gates: array<f32>;          // (B, T, 4C)
@group(0) @binding(2) var<storage, read> bwp_cells: array<f32>;          // (B, T, C)
@group(0) @binding(3) var<storage, read_write> bwp_dw_proj: array<f32>;  // (H, C) accumulated
@group(0) @binding(4) var<uniform> bwp: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_projection_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let C = bwp.cell;
    let H = bwp.hidden;
    if (idx >= H * C) { return; }
    let h = idx / C;
    let c = idx % C;
    var acc = 0.0;
    for (var bt = 0u; bt < bwp.batch * bwp.steps; bt++) {
        let hidden_pre = bwp_gates[bt * 4u * C + 3u * C + c] * tanh(clip(bwp_cells[bt * C + c], bwp.cell_clip));
        acc += bwp_dproj[bt * H + h] * hidden_pre;
    }
    bwp_dw_proj[idx] += acc;
}

// ---- backward 8: gradients of the initial state, for each (b, k < max(H, C))
@group(0) @binding(0) var<storage, read> bis_dh_carry: array<f32>;         // (B, H)
@group(0) @binding(1) var<storage, read> bis_dc_carry: array<f32>;         // (B, C)
@group(0) @binding(2) var<storage, read_write> bis_dh_initial: array<f32>; // (B, H) accumulated
@group(0) @binding(3) var<storage, read_write> bis_dc_initial: array<f32>; // (B, C) accumulated
@group(0) @binding(4) var<uniform> bis: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_initial_state(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let width = max(bis.hidden, bis.cell);
    if (idx >= bis.batch * width) { return; }
    let b = idx / width;
    let k = idx % width;
    if (k < bis.hidden) {
        bis_dh_initial[b * bis.hidden + k] += bis_dh_carry[b * bis.hidden + k];
    }
    if (k < bis.cell) {
        bis_dc_initial[b * bis.cell + k] += bis_dc_carry[b * bis.cell + k];
    }
}

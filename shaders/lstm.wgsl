// The per-step parts of ELMo's LSTM (AllenNLP LstmCellWithProjection): the cell and the
// projection clip, and their backward. Equations, conventions and the CPU twin of every entry
// point (side by side with its dispatch): crate/src/ops/lstm.rs. The matrix products (input,
// recurrent and projection linear maps, their gradients) are crate/src/ops/matmul's.
//
// Gates [i, f, g, o]; row b is active at time index t iff t < lengths[b]; visiting step s of a
// row is t = s (go_forward) or t = len - 1 - s. The *_step kernels run once per visiting step
// s (params.step): s = 0 .. max(len) - 1 forward, max(len) - 1 .. 0 backward. Rows with
// s >= len are inactive: their state is left alone. One invocation per element; flat indices
// from a 2-D grid of 256-invocation workgroups; no workgroup memory. Bindings of every entry
// point: the tensors it reads, the lengths, the tensors it writes, the params (the order of
// Sequence::dispatch in ops/lstm.rs).

struct LstmParams {
    batch: u32,       // B
    steps: u32,       // T
    cell: u32,        // C
    hidden: u32,      // H
    step: u32,        // visiting step s of the *_step kernels
    go_forward: u32,  // 1 forward, 0 backward direction
    cell_clip: f32,   // 0 = none
    proj_clip: f32,   // 0 = none
}

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

fn time_index(go_forward: u32, s: u32, len: u32) -> u32 {
    return select(len - 1u - s, s, go_forward == 1u);
}

// the visiting step of time index t (t < len): the inverse of time_index
fn visiting_step(go_forward: u32, t: u32, len: u32) -> u32 {
    return select(len - 1u - t, t, go_forward == 1u);
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

// ---- forward, once: zero gates, cells, projections and outputs at padded (b, t), t >= len;
// one invocation per (b, t, k < max(4C, H))
@group(0) @binding(0) var<storage, read> cp_lengths: array<u32>;           // (B)
@group(0) @binding(1) var<storage, read_write> cp_gates: array<f32>;       // (B, T, 4C)
@group(0) @binding(2) var<storage, read_write> cp_cells: array<f32>;       // (B, T, C)
@group(0) @binding(3) var<storage, read_write> cp_projections: array<f32>; // (B, T, H)
@group(0) @binding(4) var<storage, read_write> cp_outputs: array<f32>;     // (B, T, H)
@group(0) @binding(5) var<uniform> cp: LstmParams;

@compute @workgroup_size(256)
fn lstm_clear_padding(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let c4 = 4u * cp.cell;
    let width = max(c4, cp.hidden);
    if (idx >= cp.batch * cp.steps * width) { return; }
    let k = idx % width;
    let bt = idx / width;
    if (bt % cp.steps < cp_lengths[bt / cp.steps]) { return; }
    if (k < c4) { cp_gates[bt * c4 + k] = 0.0; }
    if (k < cp.cell) { cp_cells[bt * cp.cell + k] = 0.0; }
    if (k < cp.hidden) {
        cp_projections[bt * cp.hidden + k] = 0.0;
        cp_outputs[bt * cp.hidden + k] = 0.0;
    }
}

// ---- forward, per step: the cell, one invocation per (b, c)
@group(0) @binding(0) var<storage, read> cs_recurrent: array<f32>;        // (B, 4C) h W_h^T
@group(0) @binding(1) var<storage, read> cs_lengths: array<u32>;          // (B)
@group(0) @binding(2) var<storage, read_write> cs_gates: array<f32>;      // (B, T, 4C) in: W_x x + b, out: [i, f, g, o]
@group(0) @binding(3) var<storage, read_write> cs_cells: array<f32>;      // (B, T, C) c' before the clip
@group(0) @binding(4) var<storage, read_write> cs_c_state: array<f32>;    // (B, C) c, in place
@group(0) @binding(5) var<storage, read_write> cs_hidden: array<f32>;     // (B, C) o tanh(c')
@group(0) @binding(6) var<uniform> cs: LstmParams;

@compute @workgroup_size(256)
fn lstm_cell_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let C = cs.cell;
    if (idx >= cs.batch * C) { return; }
    let b = idx / C;
    let c = idx % C;
    let len = cs_lengths[b];
    if (cs.step >= len) { return; }
    let bt = b * cs.steps + time_index(cs.go_forward, cs.step, len);
    let g0 = bt * 4u * C;
    let r0 = b * 4u * C;
    let i = sigmoid(cs_gates[g0 + c] + cs_recurrent[r0 + c]);
    let f = sigmoid(cs_gates[g0 + C + c] + cs_recurrent[r0 + C + c]);
    let g = tanh(cs_gates[g0 + 2u * C + c] + cs_recurrent[r0 + 2u * C + c]);
    let o = sigmoid(cs_gates[g0 + 3u * C + c] + cs_recurrent[r0 + 3u * C + c]);
    cs_gates[g0 + c] = i;
    cs_gates[g0 + C + c] = f;
    cs_gates[g0 + 2u * C + c] = g;
    cs_gates[g0 + 3u * C + c] = o;
    let c_pre = i * g + f * cs_c_state[idx];
    cs_cells[bt * C + c] = c_pre;
    let c_new = clip(c_pre, cs.cell_clip);
    cs_c_state[idx] = c_new;
    cs_hidden[idx] = o * tanh(c_new);
}

// ---- forward, per step: the projection clip, one invocation per (b, h)
@group(0) @binding(0) var<storage, read> ps_projection: array<f32>;        // (B, H) W_p (o tanh(c'))
@group(0) @binding(1) var<storage, read> ps_lengths: array<u32>;           // (B)
@group(0) @binding(2) var<storage, read_write> ps_projections: array<f32>; // (B, T, H) before the clip
@group(0) @binding(3) var<storage, read_write> ps_outputs: array<f32>;     // (B, T, H) h'
@group(0) @binding(4) var<storage, read_write> ps_h_state: array<f32>;     // (B, H) h
@group(0) @binding(5) var<uniform> ps: LstmParams;

@compute @workgroup_size(256)
fn lstm_projection_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let H = ps.hidden;
    if (idx >= ps.batch * H) { return; }
    let b = idx / H;
    let h = idx % H;
    let len = ps_lengths[b];
    if (ps.step >= len) { return; }
    let o = (b * ps.steps + time_index(ps.go_forward, ps.step, len)) * H + h;
    let p = ps_projection[idx];
    ps_projections[o] = p;
    let y = clip(p, ps.proj_clip);
    ps_outputs[o] = y;
    ps_h_state[idx] = y;
}

// ---- backward, once: the inputs of the weight products, one invocation per
// (b, t, k < max(C, H)) of the active (b, t): the previous state h and o tanh(c')
@group(0) @binding(0) var<storage, read> sv_projections: array<f32>;          // (B, T, H)
@group(0) @binding(1) var<storage, read> sv_gates: array<f32>;                // (B, T, 4C)
@group(0) @binding(2) var<storage, read> sv_cells: array<f32>;                // (B, T, C)
@group(0) @binding(3) var<storage, read> sv_h_initial: array<f32>;            // (B, H)
@group(0) @binding(4) var<storage, read> sv_lengths: array<u32>;              // (B)
@group(0) @binding(5) var<storage, read_write> sv_previous_h: array<f32>;     // (B, T, H)
@group(0) @binding(6) var<storage, read_write> sv_hidden: array<f32>;         // (B, T, C)
@group(0) @binding(7) var<uniform> sv: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_step_inputs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let C = sv.cell;
    let H = sv.hidden;
    let width = max(C, H);
    if (idx >= sv.batch * sv.steps * width) { return; }
    let k = idx % width;
    let bt = idx / width;
    let b = bt / sv.steps;
    let t = bt % sv.steps;
    let len = sv_lengths[b];
    if (t >= len) { return; }
    if (k < H) {
        let s = visiting_step(sv.go_forward, t, len);
        var h_prev = sv_h_initial[b * H + k];
        if (s > 0u) {
            let prev_bt = b * sv.steps + time_index(sv.go_forward, s - 1u, len);
            h_prev = clip(sv_projections[prev_bt * H + k], sv.proj_clip);
        }
        sv_previous_h[bt * H + k] = h_prev;
    }
    if (k < C) {
        let o = sv_gates[bt * 4u * C + 3u * C + k];
        sv_hidden[bt * C + k] = o * tanh(clip(sv_cells[bt * C + k], sv.cell_clip));
    }
}

// ---- backward, per step (s descending): through the projection clip, one invocation per (b, h)
@group(0) @binding(0) var<storage, read> bp_doutputs: array<f32>;         // (B, T, H)
@group(0) @binding(1) var<storage, read> bp_projections: array<f32>;      // (B, T, H)
@group(0) @binding(2) var<storage, read> bp_dh_final: array<f32>;         // (B, H)
@group(0) @binding(3) var<storage, read> bp_dh_recurrent: array<f32>;     // (B, H) from step s + 1
@group(0) @binding(4) var<storage, read> bp_lengths: array<u32>;          // (B)
@group(0) @binding(5) var<storage, read_write> bp_dproj: array<f32>;      // (B, T, H)
@group(0) @binding(6) var<storage, read_write> bp_dproj_step: array<f32>; // (B, H) 0 if inactive
@group(0) @binding(7) var<uniform> bp: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_projection_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let H = bp.hidden;
    if (idx >= bp.batch * H) { return; }
    let b = idx / H;
    let h = idx % H;
    let len = bp_lengths[b];
    let s = bp.step;
    if (s >= len) {
        bp_dproj_step[idx] = 0.0;
        return;
    }
    let o = (b * bp.steps + time_index(bp.go_forward, s, len)) * H + h;
    // the row's last step gets the final state's gradient, the others the recurrent one
    let dh = select(bp_dh_recurrent[idx], bp_dh_final[idx], s + 1u == len);
    let dp = select(0.0, bp_doutputs[o] + dh, clip_passes(bp_projections[o], bp.proj_clip));
    bp_dproj[o] = dp;
    bp_dproj_step[idx] = dp;
}

// ---- backward, per step (s descending): through the cell, one invocation per (b, c)
@group(0) @binding(0) var<storage, read> bc_dhidden: array<f32>;           // (B, C) dproj_step W_p
@group(0) @binding(1) var<storage, read> bc_gates: array<f32>;             // (B, T, 4C)
@group(0) @binding(2) var<storage, read> bc_cells: array<f32>;             // (B, T, C)
@group(0) @binding(3) var<storage, read> bc_c_initial: array<f32>;         // (B, C)
@group(0) @binding(4) var<storage, read> bc_lengths: array<u32>;           // (B)
@group(0) @binding(5) var<storage, read_write> bc_dgates: array<f32>;      // (B, T, 4C) pre-activation
@group(0) @binding(6) var<storage, read_write> bc_dgates_step: array<f32>; // (B, 4C) 0 if inactive
@group(0) @binding(7) var<storage, read_write> bc_dc_carry: array<f32>;    // (B, C) in place
@group(0) @binding(8) var<uniform> bcp: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_cell_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let C = bcp.cell;
    if (idx >= bcp.batch * C) { return; }
    let b = idx / C;
    let c = idx % C;
    let r0 = b * 4u * C;
    let len = bc_lengths[b];
    let s = bcp.step;
    if (s >= len) {
        bc_dgates_step[r0 + c] = 0.0;
        bc_dgates_step[r0 + C + c] = 0.0;
        bc_dgates_step[r0 + 2u * C + c] = 0.0;
        bc_dgates_step[r0 + 3u * C + c] = 0.0;
        return;
    }
    let bt = b * bcp.steps + time_index(bcp.go_forward, s, len);
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
    let dhidden = bc_dhidden[idx];
    let dc_new = bc_dc_carry[idx] + dhidden * o * (1.0 - tc * tc);
    let dc_pre = select(0.0, dc_new, clip_passes(c_pre, bcp.cell_clip));
    let da = vec4<f32>(dc_pre * g * i * (1.0 - i), dc_pre * c_prev * f * (1.0 - f),
                       dc_pre * i * (1.0 - g * g), dhidden * tc * o * (1.0 - o));
    for (var q = 0u; q < 4u; q++) {
        bc_dgates[g0 + q * C + c] = da[q];
        bc_dgates_step[r0 + q * C + c] = da[q];
    }
    bc_dc_carry[idx] = dc_pre * f;
}

// ---- backward, once: the initial state's gradients, one invocation per (b, k < max(H, C))
@group(0) @binding(0) var<storage, read> bi_dh_recurrent: array<f32>;       // (B, H) from step 0
@group(0) @binding(1) var<storage, read> bi_dh_final: array<f32>;           // (B, H)
@group(0) @binding(2) var<storage, read> bi_dc_carry: array<f32>;           // (B, C)
@group(0) @binding(3) var<storage, read> bi_lengths: array<u32>;            // (B)
@group(0) @binding(4) var<storage, read_write> bi_dh_initial: array<f32>;   // (B, H) accumulated
@group(0) @binding(5) var<storage, read_write> bi_dc_initial: array<f32>;   // (B, C) accumulated
@group(0) @binding(6) var<uniform> bip: LstmParams;

@compute @workgroup_size(256)
fn lstm_backward_initial_state(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_id) lid: vec3<u32>) {
    let idx = flat_index(wid, nwg, lid);
    let width = max(bip.hidden, bip.cell);
    if (idx >= bip.batch * width) { return; }
    let b = idx / width;
    let k = idx % width;
    if (k < bip.hidden) {
        let i = b * bip.hidden + k;
        // a row of length 0 passes the final state's gradient straight through
        bi_dh_initial[i] += select(bi_dh_final[i], bi_dh_recurrent[i], bi_lengths[b] > 0u);
    }
    if (k < bip.cell) {
        bi_dc_initial[b * bip.cell + k] += bi_dc_carry[b * bip.cell + k];
    }
}

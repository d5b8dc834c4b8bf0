//! The steps of the LSTM's forward and backward through time: each forward next to its
//! backward, the CPU loop next to its GPU dispatch (`shaders/lstm.wgsl`). The drivers that call
//! them, and the cell's equations, are in `mod.rs`.

use super::*;

/// Zeroes gates, cells, projections and outputs at the padded positions (t >= len).
pub(super) fn clear_padding(
    seq: &Sequence,
    saved: &mut LstmSaved,
    outputs: &mut Tensor,
) -> Result<()> {
    let LstmShape {
        batch,
        steps,
        cell,
        hidden,
        ..
    } = seq.shape;
    match outputs.gpu_context().cloned() {
        None => {
            let lengths = seq.lengths.cpu()?;
            let gates = saved.gates.cpu_mut()?; // (B, T, 4C)
            let cells = saved.cells.cpu_mut()?; // (B, T, C)
            let projections = saved.projections.cpu_mut()?; // (B, T, H)
            let outputs = outputs.cpu_mut()?; // (B, T, H)
            for b in 0..batch {
                for bt in b * steps + lengths[b] as usize..(b + 1) * steps {
                    gates[bt * 4 * cell..(bt + 1) * 4 * cell].fill(0.0);
                    cells[bt * cell..(bt + 1) * cell].fill(0.0);
                    projections[bt * hidden..(bt + 1) * hidden].fill(0.0);
                    outputs[bt * hidden..(bt + 1) * hidden].fill(0.0);
                }
            }
            Ok(())
        }
        Some(ctx) => seq.dispatch(
            &ctx,
            "lstm_clear_padding",
            &[],
            &[&saved.gates, &saved.cells, &saved.projections, outputs],
            0,
            batch * steps * (4 * cell).max(hidden),
        ),
    }
}

/// Per active (b, t): the state h the step started from (`h_initial` at the row's first
/// step, else the clipped projection of the step before) and r = o tanh(c').
pub(super) fn step_inputs(
    seq: &Sequence,
    saved: &LstmSaved,
    h_initial: &Tensor,      // (B, H)
    previous_h: &mut Tensor, // (B, T, H)
    hidden: &mut Tensor,     // (B, T, C)
) -> Result<()> {
    let LstmShape {
        batch,
        steps,
        cell,
        hidden: h,
        ..
    } = seq.shape;
    match hidden.gpu_context().cloned() {
        None => {
            let lengths = seq.lengths.cpu()?;
            let (projections, gates) = (saved.projections.cpu()?, saved.gates.cpu()?);
            let (cells, h_initial) = (saved.cells.cpu()?, h_initial.cpu()?);
            let (previous_h, hidden) = (previous_h.cpu_mut()?, hidden.cpu_mut()?);
            for b in 0..batch {
                for s in 0..lengths[b] as usize {
                    let Some(bt) = seq.position(lengths, b, s) else {
                        continue;
                    };
                    let before = s.checked_sub(1).and_then(|p| seq.position(lengths, b, p));
                    for k in 0..h {
                        previous_h[bt * h + k] = match before {
                            Some(p) => seq.clip_proj(projections[p * h + k]),
                            None => h_initial[b * h + k],
                        };
                    }
                    for k in 0..cell {
                        let o = gates[bt * 4 * cell + 3 * cell + k];
                        hidden[bt * cell + k] = o * seq.clip_cell(cells[bt * cell + k]).tanh();
                    }
                }
            }
            Ok(())
        }
        Some(ctx) => seq.dispatch(
            &ctx,
            "lstm_backward_step_inputs",
            &[&saved.projections, &saved.gates, &saved.cells, h_initial],
            &[previous_h, hidden],
            0,
            batch * steps * cell.max(h),
        ),
    }
}

/// Step `s`, per active (b, c): the gates from `gates` (W_x x + b) and `recurrent` (W_h h),
/// activated in place; the new cell into `cells` (before the clip) and `c_state` (after);
/// `hidden` = o tanh(c').
pub(super) fn cell_step(
    seq: &Sequence,
    s: usize,
    recurrent: &Tensor,    // (B, 4C)
    saved: &mut LstmSaved, // gates (B, T, 4C), cells (B, T, C)
    c_state: &mut Tensor,  // (B, C)
    hidden: &mut Tensor,   // (B, C)
) -> Result<()> {
    let LstmShape { batch, cell, .. } = seq.shape;
    match hidden.gpu_context().cloned() {
        None => {
            let lengths = seq.lengths.cpu()?;
            let recurrent = recurrent.cpu()?;
            let (gates, cells) = (saved.gates.cpu_mut()?, saved.cells.cpu_mut()?);
            let (c_state, hidden) = (c_state.cpu_mut()?, hidden.cpu_mut()?);
            for b in 0..batch {
                let Some(bt) = seq.position(lengths, b, s) else {
                    continue;
                };
                let a = &mut gates[bt * 4 * cell..(bt + 1) * 4 * cell]; // (4C)
                let r = &recurrent[b * 4 * cell..(b + 1) * 4 * cell]; // (4C)
                for k in 0..cell {
                    let i = sigmoid(a[k] + r[k]);
                    let f = sigmoid(a[cell + k] + r[cell + k]);
                    let g = (a[2 * cell + k] + r[2 * cell + k]).tanh();
                    let o = sigmoid(a[3 * cell + k] + r[3 * cell + k]);
                    (a[k], a[cell + k], a[2 * cell + k], a[3 * cell + k]) = (i, f, g, o);
                    let c_pre = i * g + f * c_state[b * cell + k];
                    cells[bt * cell + k] = c_pre;
                    let c_new = seq.clip_cell(c_pre);
                    c_state[b * cell + k] = c_new;
                    hidden[b * cell + k] = o * c_new.tanh();
                }
            }
            Ok(())
        }
        Some(ctx) => seq.dispatch(
            &ctx,
            "lstm_cell_step",
            &[recurrent],
            &[&saved.gates, &saved.cells, c_state, hidden],
            s,
            batch * cell,
        ),
    }
}

/// Per active (b, c): through the cell, from dr = `dhidden` and the carried `dc_carry`
/// (updated in place); the gates' pre-activation gradients da into `dgates` and
/// `dgates_step` (0 for rows without step s).
#[allow(clippy::too_many_arguments)]
pub(super) fn cell_step_backward(
    seq: &Sequence,
    s: usize,
    saved: &LstmSaved,
    dhidden: &Tensor,         // (B, C)
    c_initial: &Tensor,       // (B, C)
    dgates: &mut Tensor,      // (B, T, 4C)
    dgates_step: &mut Tensor, // (B, 4C)
    dc_carry: &mut Tensor,    // (B, C)
) -> Result<()> {
    let LstmShape { batch, cell, .. } = seq.shape;
    match dgates.gpu_context().cloned() {
        None => {
            let lengths = seq.lengths.cpu()?;
            let (gates, cells) = (saved.gates.cpu()?, saved.cells.cpu()?);
            let (dhidden, c_initial) = (dhidden.cpu()?, c_initial.cpu()?);
            let (dgates, dgates_step) = (dgates.cpu_mut()?, dgates_step.cpu_mut()?);
            let dc_carry = dc_carry.cpu_mut()?;
            for b in 0..batch {
                let row = b * 4 * cell..(b + 1) * 4 * cell;
                let Some(bt) = seq.position(lengths, b, s) else {
                    dgates_step[row].fill(0.0);
                    continue;
                };
                let before = s.checked_sub(1).and_then(|p| seq.position(lengths, b, p));
                let a = &gates[bt * 4 * cell..(bt + 1) * 4 * cell]; // (4C)
                for k in 0..cell {
                    let c_prev = match before {
                        Some(p) => seq.clip_cell(cells[p * cell + k]),
                        None => c_initial[b * cell + k],
                    };
                    let (i, f, g, o) = (a[k], a[cell + k], a[2 * cell + k], a[3 * cell + k]);
                    let c_pre = cells[bt * cell + k];
                    let tc = seq.clip_cell(c_pre).tanh();
                    let dr = dhidden[b * cell + k];
                    let dc_new = dc_carry[b * cell + k] + dr * o * (1.0 - tc * tc);
                    let passes = clip_passes(c_pre, seq.options.cell_clip);
                    let dc_pre = if passes { dc_new } else { 0.0 };
                    let da = [
                        dc_pre * g * i * (1.0 - i),
                        dc_pre * c_prev * f * (1.0 - f),
                        dc_pre * i * (1.0 - g * g),
                        dr * tc * o * (1.0 - o),
                    ];
                    for (q, da) in da.into_iter().enumerate() {
                        dgates[bt * 4 * cell + q * cell + k] = da;
                        dgates_step[b * 4 * cell + q * cell + k] = da;
                    }
                    dc_carry[b * cell + k] = dc_pre * f;
                }
            }
            Ok(())
        }
        Some(ctx) => seq.dispatch(
            &ctx,
            "lstm_backward_cell_step",
            &[dhidden, &saved.gates, &saved.cells, c_initial],
            &[dgates, dgates_step, dc_carry],
            s,
            batch * cell,
        ),
    }
}

/// Step `s`, per active (b, h): `projection` (W_p r) into `projections`, its clip into the
/// outputs and the state h.
pub(super) fn projection_step(
    seq: &Sequence,
    s: usize,
    projection: &Tensor,   // (B, H)
    saved: &mut LstmSaved, // projections (B, T, H)
    outputs: &mut Tensor,  // (B, T, H)
    h_state: &mut Tensor,  // (B, H)
) -> Result<()> {
    let LstmShape { batch, hidden, .. } = seq.shape;
    match h_state.gpu_context().cloned() {
        None => {
            let lengths = seq.lengths.cpu()?;
            let projection = projection.cpu()?;
            let projections = saved.projections.cpu_mut()?;
            let (outputs, h_state) = (outputs.cpu_mut()?, h_state.cpu_mut()?);
            for b in 0..batch {
                let Some(bt) = seq.position(lengths, b, s) else {
                    continue;
                };
                for k in 0..hidden {
                    let p = projection[b * hidden + k];
                    projections[bt * hidden + k] = p;
                    let y = seq.clip_proj(p);
                    outputs[bt * hidden + k] = y;
                    h_state[b * hidden + k] = y;
                }
            }
            Ok(())
        }
        Some(ctx) => seq.dispatch(
            &ctx,
            "lstm_projection_step",
            &[projection],
            &[&saved.projections, outputs, h_state],
            s,
            batch * hidden,
        ),
    }
}

/// Per active (b, h): dp = (dy + dh) through the projection clip, into `dproj` and
/// `dproj_step` (0 for rows without step s). dh is `dh_final` at the row's last step.
#[allow(clippy::too_many_arguments)]
pub(super) fn projection_step_backward(
    seq: &Sequence,
    s: usize,
    saved: &LstmSaved,
    doutputs: &Tensor,       // (B, T, H)
    dh_final: &Tensor,       // (B, H)
    dh_recurrent: &Tensor,   // (B, H) from step s + 1
    dproj: &mut Tensor,      // (B, T, H)
    dproj_step: &mut Tensor, // (B, H)
) -> Result<()> {
    let LstmShape { batch, hidden, .. } = seq.shape;
    match dproj.gpu_context().cloned() {
        None => {
            let lengths = seq.lengths.cpu()?;
            let (doutputs, projections) = (doutputs.cpu()?, saved.projections.cpu()?);
            let (dh_final, dh_recurrent) = (dh_final.cpu()?, dh_recurrent.cpu()?);
            let (dproj, dproj_step) = (dproj.cpu_mut()?, dproj_step.cpu_mut()?);
            for b in 0..batch {
                let row = b * hidden..(b + 1) * hidden;
                let Some(bt) = seq.position(lengths, b, s) else {
                    dproj_step[row].fill(0.0);
                    continue;
                };
                let last = s + 1 == lengths[b] as usize;
                let dh = if last { dh_final } else { dh_recurrent };
                for k in 0..hidden {
                    let o = bt * hidden + k;
                    let passes = clip_passes(projections[o], seq.options.proj_clip);
                    let dp = if passes {
                        doutputs[o] + dh[b * hidden + k]
                    } else {
                        0.0
                    };
                    dproj[o] = dp;
                    dproj_step[b * hidden + k] = dp;
                }
            }
            Ok(())
        }
        Some(ctx) => seq.dispatch(
            &ctx,
            "lstm_backward_projection_step",
            &[doutputs, &saved.projections, dh_final, dh_recurrent],
            &[dproj, dproj_step],
            s,
            batch * hidden,
        ),
    }
}

/// dh_initial += the gradient of h at step 0 (`dh_final` for an empty row); dc_initial +=
/// the carried cell gradient.
pub(super) fn initial_state_grads(
    seq: &Sequence,
    dh_recurrent: &Tensor,   // (B, H) from step 0
    dh_final: &Tensor,       // (B, H)
    dc_carry: &Tensor,       // (B, C)
    dh_initial: &mut Tensor, // (B, H)
    dc_initial: &mut Tensor, // (B, C)
) -> Result<()> {
    let LstmShape {
        batch,
        cell,
        hidden,
        ..
    } = seq.shape;
    match dh_initial.gpu_context().cloned() {
        None => {
            let lengths = seq.lengths.cpu()?;
            let (dh_recurrent, dh_final) = (dh_recurrent.cpu()?, dh_final.cpu()?);
            let (dh_initial, dc_initial) = (dh_initial.cpu_mut()?, dc_initial.cpu_mut()?);
            for b in 0..batch {
                let dh = if lengths[b] > 0 {
                    dh_recurrent
                } else {
                    dh_final
                };
                for k in b * hidden..(b + 1) * hidden {
                    dh_initial[k] += dh[k];
                }
            }
            for (d, &g) in dc_initial.iter_mut().zip(dc_carry.cpu()?) {
                *d += g;
            }
            Ok(())
        }
        Some(ctx) => seq.dispatch(
            &ctx,
            "lstm_backward_initial_state",
            &[dh_recurrent, dh_final, dc_carry],
            &[dh_initial, dc_initial],
            0,
            batch * cell.max(hidden),
        ),
    }
}

/// A copy of `t` on its device.
pub(super) fn copy_of(t: &Tensor, name: &str) -> Result<Tensor> {
    match t.gpu_context() {
        None => Tensor::from_vec(&t.device(), t.shape(), t.cpu()?.to_vec(), name),
        Some(ctx) => {
            let copy = Tensor::uninit(&t.device(), t.shape(), name)?;
            ctx.copy(copy.gpu()?, t.gpu()?, t.bytes())?;
            Ok(copy)
        }
    }
}

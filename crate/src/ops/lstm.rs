//! The LSTM of ELMo's biLM, as AllenNLP's `LstmCellWithProjection`
//! (`allennlp/modules/lstm_cell_with_projection.py`) computes it, with the backward through time.
//!
//! Per active step, with `x` the input and `(h, c)` the previous state:
//! ```text
//! a = W_x x + W_h h + b                          (W_x: input_linearity, no bias;
//!                                                  W_h, b: state_linearity)
//! i = sigmoid(a[0:C])  f = sigmoid(a[C:2C])  g = tanh(a[2C:3C])  o = sigmoid(a[3C:4C])
//! c' = clip(i g + f c, cell_clip)                 (memory_cell_clip_value)
//! h' = clip(W_p (o tanh(c')), proj_clip)          (state_projection, state_projection_clip_value)
//! ```
//! Gate order `[input, forget, memory, output]` is PyTorch's, as AllenNLP stores it. The TF
//! checkpoints that ELMo ships pack `[input, memory(j), forget, output]`, keep `W_x` and `W_h` in
//! one `(I + H, 4C)` matrix, and add 1 to the forget-gate pre-activation at run time
//! (`tf.nn.rnn_cell.LSTMCell`'s `forget_bias=1.0`) instead of storing it; AllenNLP's
//! `ElmoLstm.load_weights` (`allennlp/modules/elmo_lstm.py`) transposes, splits, swaps the
//! middle two gate blocks and adds 1.0 to the forget bias. [`lstm_weights_from_tensorflow`]
//! does the same.
//!
//! Variable lengths: row `b` is active at time index `t` iff `t < lengths[b]` — the rule
//! AllenNLP's sorted-batch loop implements (`batch_lengths[current_length_index] <= index`).
//! Forward direction visits `t = 0, 1, ..., len-1`; the backward direction
//! (`go_forward = false`) visits `t = len-1, ..., 0`. An inactive step leaves the state
//! unchanged and its output zero, so the final state is the state after each row's own last
//! step: pass it back in as the next call's initial state for AllenNLP's *stateful* mode, or
//! pass zeros for stateless use. Recurrent dropout (AllenNLP's `recurrent_dropout_probability`,
//! 0 in ELMo) is not part of this op.

// The CPU loops index several parallel arrays (gates, cells, weights) with one counter, as the
// equations are written; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

use crate::device::Kernel;
use crate::ops::length_check::{expect_len, product};
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Sizes of one LSTM direction of one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmShape {
    /// B
    pub batch: usize,
    /// T, the padded number of time steps
    pub steps: usize,
    /// I
    pub input: usize,
    /// C, `cell_size` (ELMo options: `lstm.dim`)
    pub cell: usize,
    /// H, `hidden_size` = the projection size (ELMo options: `lstm.projection_dim`)
    pub hidden: usize,
}

/// Clipping and direction. A clip of `None` (or `Some(0.0)`, falsy in AllenNLP) does not clip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmOptions {
    pub cell_clip: Option<f32>,
    pub proj_clip: Option<f32>,
    /// `true`: t = 0..len; `false`: t = len-1..=0 (the backward LM)
    pub go_forward: bool,
}

/// The weights, in AllenNLP's (PyTorch) layout and gate order `[i, f, g, o]`.
#[derive(Clone, Copy, Debug)]
pub struct LstmWeights<'a> {
    pub w_input: &'a [f32], // (4C, I) input_linearity.weight
    pub w_state: &'a [f32], // (4C, H) state_linearity.weight
    pub bias: &'a [f32],    // (4C) state_linearity.bias (forget block includes TF's +1)
    pub w_proj: &'a [f32],  // (H, C) state_projection.weight
}

/// Gradients of [`LstmWeights`], accumulated.
#[derive(Debug)]
pub struct LstmWeightGrads<'a> {
    pub w_input: &'a mut [f32], // (4C, I)
    pub w_state: &'a mut [f32], // (4C, H)
    pub bias: &'a mut [f32],    // (4C)
    pub w_proj: &'a mut [f32],  // (H, C)
}

/// What the forward keeps for the backward (zero at padded positions).
#[derive(Debug)]
pub struct LstmSaved<'a> {
    pub gates: &'a mut [f32],       // (B, T, 4C) activated [i, f, g, o]
    pub cells: &'a mut [f32],       // (B, T, C) memory before the cell clip
    pub projections: &'a mut [f32], // (B, T, H) projection before the proj clip
}

/// Read-only view of [`LstmSaved`] for the backward.
#[derive(Clone, Copy, Debug)]
pub struct LstmSavedRef<'a> {
    pub gates: &'a [f32],       // (B, T, 4C)
    pub cells: &'a [f32],       // (B, T, C)
    pub projections: &'a [f32], // (B, T, H)
}

impl<'a> LstmSaved<'a> {
    pub fn as_ref(&self) -> LstmSavedRef<'_> {
        LstmSavedRef {
            gates: self.gates,
            cells: self.cells,
            projections: self.projections,
        }
    }
}

/// The uniform block of `shaders/lstm.wgsl` (`LstmParams`), 48 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LstmParams {
    pub batch: u32,
    pub steps: u32,
    pub input: u32,
    pub cell: u32,
    pub hidden: u32,
    /// the step counter s (0-based, in visiting order) of the per-step kernels
    pub step: u32,
    /// 1 = forward direction, 0 = backward direction
    pub go_forward: u32,
    /// 0 = no clip
    pub cell_clip: f32,
    /// 0 = no clip
    pub proj_clip: f32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl LstmShape {
    /// The uniform block for visiting step `step`.
    pub fn params(&self, options: &LstmOptions, step: usize) -> Result<LstmParams> {
        let u = |x: usize| {
            u32::try_from(x).map_err(|_| Error::invalid(format!("lstm: size {x} exceeds u32")))
        };
        Ok(LstmParams {
            batch: u(self.batch)?,
            steps: u(self.steps)?,
            input: u(self.input)?,
            cell: u(self.cell)?,
            hidden: u(self.hidden)?,
            step: u(step)?,
            go_forward: options.go_forward as u32,
            cell_clip: options.cell_clip.unwrap_or(0.0),
            proj_clip: options.proj_clip.unwrap_or(0.0),
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        })
    }

    fn check_weights(&self, op: &str, w: &LstmWeights) -> Result<()> {
        let (i, c, h) = (self.input, self.cell, self.hidden);
        expect_len(op, "w_input", w.w_input.len(), product(op, &[4, c, i])?)?;
        expect_len(op, "w_state", w.w_state.len(), product(op, &[4, c, h])?)?;
        expect_len(op, "bias", w.bias.len(), product(op, &[4, c])?)?;
        expect_len(op, "w_proj", w.w_proj.len(), product(op, &[h, c])?)
    }

    fn check_sequence(&self, op: &str, inputs: usize, lengths: &[usize]) -> Result<()> {
        let (b, t) = (self.batch, self.steps);
        expect_len(op, "inputs", inputs, product(op, &[b, t, self.input])?)?;
        expect_len(op, "lengths", lengths.len(), b)?;
        if let Some((row, &len)) = lengths.iter().enumerate().find(|(_, &l)| l > t) {
            return Err(Error::invalid(format!(
                "{op}: length {len} of row {row} exceeds the {t} time steps"
            )));
        }
        Ok(())
    }

    fn check_saved(&self, op: &str, gates: usize, cells: usize, projections: usize) -> Result<()> {
        let (b, t, c, h) = (self.batch, self.steps, self.cell, self.hidden);
        expect_len(op, "gates", gates, product(op, &[b, t, 4, c])?)?;
        expect_len(op, "cells", cells, product(op, &[b, t, c])?)?;
        expect_len(op, "projections", projections, product(op, &[b, t, h])?)
    }
}

/// Time index of the `s`-th visited step of a row of length `len`.
fn time_index(go_forward: bool, s: usize, len: usize) -> usize {
    if go_forward {
        s
    } else {
        len - 1 - s
    }
}

fn clip(x: f32, limit: Option<f32>) -> f32 {
    match limit {
        Some(l) if l != 0.0 => x.clamp(-l, l),
        _ => x,
    }
}

/// Gradient gate of `clamp`: torch passes the gradient where `-l <= x <= l` (inclusive).
fn clip_passes(x: f32, limit: Option<f32>) -> bool {
    match limit {
        Some(l) if l != 0.0 => (-l..=l).contains(&x),
        _ => true,
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Owned LSTM weights in AllenNLP's layout, as converted from a TF checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmWeightsOwned {
    pub w_input: Vec<f32>, // (4C, I)
    pub w_state: Vec<f32>, // (4C, H)
    pub bias: Vec<f32>,    // (4C)
    pub w_proj: Vec<f32>,  // (H, C)
}

impl LstmWeightsOwned {
    pub fn view(&self) -> LstmWeights<'_> {
        LstmWeights {
            w_input: &self.w_input,
            w_state: &self.w_state,
            bias: &self.bias,
            w_proj: &self.w_proj,
        }
    }
}

/// AllenNLP's weights `(w_input (4C, I), w_state (4C, H), bias (4C), w_proj (H, C))` from one TF
/// `LSTMCell` (`W_0`, `B`, `W_P_0`): transpose, split input/recurrent columns, reorder gates
/// `[i, j, f, o]` -> `[i, f, j, o]`, add 1.0 to the forget bias (`elmo_lstm.py`, `load_weights`).
pub fn lstm_weights_from_tensorflow(
    w_0: &[f32],   // (I + H, 4C) TF layout, gates [i, j, f, o]
    b: &[f32],     // (4C) TF gates [i, j, f, o], forget bias not yet added
    w_p_0: &[f32], // (C, H)
    input: usize,
    cell: usize,
    hidden: usize,
) -> Result<LstmWeightsOwned> {
    let op = "lstm_weights_from_tensorflow";
    let c4 = product(op, &[4, cell])?;
    expect_len(op, "W_0", w_0.len(), product(op, &[input + hidden, c4])?)?;
    expect_len(op, "B", b.len(), c4)?;
    expect_len(op, "W_P_0", w_p_0.len(), product(op, &[cell, hidden])?)?;
    // TF block q of the gates -> our block
    let ours = |tf_block: usize| match tf_block {
        0 => 0, // input
        1 => 2, // j (memory) -> g
        2 => 1, // forget
        _ => 3, // output
    };
    let (mut w_input, mut w_state) = (vec![0.0f32; c4 * input], vec![0.0f32; c4 * hidden]);
    let mut bias = vec![0.0f32; c4];
    for tf_row in 0..c4 {
        let row = ours(tf_row / cell) * cell + tf_row % cell;
        for k in 0..input {
            w_input[row * input + k] = w_0[k * c4 + tf_row];
        }
        for k in 0..hidden {
            w_state[row * hidden + k] = w_0[(input + k) * c4 + tf_row];
        }
        let forget_bias = if tf_row / cell == 2 { 1.0 } else { 0.0 };
        bias[row] = b[tf_row] + forget_bias;
    }
    let mut w_proj = vec![0.0f32; hidden * cell];
    for c in 0..cell {
        for h in 0..hidden {
            w_proj[h * cell + c] = w_p_0[c * hidden + h];
        }
    }
    Ok(LstmWeightsOwned {
        w_input,
        w_state,
        bias,
        w_proj,
    })
}

/// Runs one direction over the batch. `h_state`/`c_state` hold the initial state on entry and
/// the final state on return (each row's state after its last active step).
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward_cpu(
    outputs: &mut [f32], // (B, T, H) zero past each length
    saved: LstmSaved,    // gates (B, T, 4C), cells (B, T, C), projections (B, T, H)
    h_state: &mut [f32], // (B, H) in: initial, out: final
    c_state: &mut [f32], // (B, C) in: initial, out: final
    inputs: &[f32],      // (B, T, I)
    lengths: &[usize],   // (B) each <= T
    weights: &LstmWeights,
    options: &LstmOptions,
    shape: &LstmShape,
) -> Result<()> {
    let op = "lstm_forward_cpu";
    let LstmShape {
        batch,
        steps,
        input,
        cell,
        hidden,
    } = *shape;
    shape.check_sequence(op, inputs.len(), lengths)?;
    shape.check_weights(op, weights)?;
    shape.check_saved(
        op,
        saved.gates.len(),
        saved.cells.len(),
        saved.projections.len(),
    )?;
    expect_len(op, "outputs", outputs.len(), batch * steps * hidden)?;
    expect_len(op, "h_state", h_state.len(), product(op, &[batch, hidden])?)?;
    expect_len(op, "c_state", c_state.len(), product(op, &[batch, cell])?)?;
    outputs.fill(0.0);
    saved.gates.fill(0.0);
    saved.cells.fill(0.0);
    saved.projections.fill(0.0);
    let c4 = 4 * cell;
    let mut hidden_pre = vec![0.0f32; cell]; // o * tanh(c')
    for b in 0..batch {
        let len = lengths[b];
        for s in 0..len {
            let t = time_index(options.go_forward, s, len);
            let bt = b * steps + t;
            let x = &inputs[bt * input..(bt + 1) * input];
            let gates = &mut saved.gates[bt * c4..(bt + 1) * c4];
            {
                let h = &h_state[b * hidden..(b + 1) * hidden];
                for j in 0..c4 {
                    let wx = &weights.w_input[j * input..(j + 1) * input];
                    let wh = &weights.w_state[j * hidden..(j + 1) * hidden];
                    let a = weights.bias[j]
                        + wx.iter().zip(x).map(|(&w, &v)| w * v).sum::<f32>()
                        + wh.iter().zip(h).map(|(&w, &v)| w * v).sum::<f32>();
                    gates[j] = if j / cell == 2 { a.tanh() } else { sigmoid(a) };
                }
            }
            let c_row = &mut c_state[b * cell..(b + 1) * cell];
            for k in 0..cell {
                let (i, f, g, o) = (
                    gates[k],
                    gates[cell + k],
                    gates[2 * cell + k],
                    gates[3 * cell + k],
                );
                let c_pre = i * g + f * c_row[k];
                saved.cells[bt * cell + k] = c_pre;
                let c_new = clip(c_pre, options.cell_clip);
                c_row[k] = c_new;
                hidden_pre[k] = o * c_new.tanh();
            }
            for k in 0..hidden {
                let wp = &weights.w_proj[k * cell..(k + 1) * cell];
                let p = wp
                    .iter()
                    .zip(&hidden_pre)
                    .map(|(&w, &v)| w * v)
                    .sum::<f32>();
                saved.projections[bt * hidden + k] = p;
                let y = clip(p, options.proj_clip);
                outputs[bt * hidden + k] = y;
                h_state[b * hidden + k] = y;
            }
        }
    }
    Ok(())
}

/// Gradients flowing back out of the LSTM: into its inputs, weights and initial state.
#[derive(Debug)]
pub struct LstmInputGrads<'a> {
    pub inputs: &'a mut [f32],    // (B, T, I) accumulated
    pub h_initial: &'a mut [f32], // (B, H) accumulated
    pub c_initial: &'a mut [f32], // (B, C) accumulated
}

/// Backward through time of [`lstm_forward_cpu`]. `doutputs` is the gradient of the outputs,
/// `dh_final`/`dc_final` that of the final state (zeros when the final state is not used);
/// `h_initial`/`c_initial` are the initial states the forward started from.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward_cpu(
    dinput: LstmInputGrads, // inputs (B, T, I), h_initial (B, H), c_initial (B, C), accumulated
    dweights: LstmWeightGrads, // accumulated
    doutputs: &[f32],       // (B, T, H)
    dh_final: &[f32],       // (B, H)
    dc_final: &[f32],       // (B, C)
    inputs: &[f32],         // (B, T, I)
    saved: LstmSavedRef,    // from the forward
    h_initial: &[f32],      // (B, H)
    c_initial: &[f32],      // (B, C)
    lengths: &[usize],      // (B)
    weights: &LstmWeights,
    options: &LstmOptions,
    shape: &LstmShape,
) -> Result<()> {
    let op = "lstm_backward_cpu";
    let LstmShape {
        batch,
        steps,
        input,
        cell,
        hidden,
    } = *shape;
    shape.check_sequence(op, inputs.len(), lengths)?;
    shape.check_weights(op, weights)?;
    shape.check_saved(
        op,
        saved.gates.len(),
        saved.cells.len(),
        saved.projections.len(),
    )?;
    let (bh, bc) = (product(op, &[batch, hidden])?, product(op, &[batch, cell])?);
    expect_len(op, "doutputs", doutputs.len(), batch * steps * hidden)?;
    expect_len(op, "dh_final", dh_final.len(), bh)?;
    expect_len(op, "dc_final", dc_final.len(), bc)?;
    expect_len(op, "h_initial", h_initial.len(), bh)?;
    expect_len(op, "c_initial", c_initial.len(), bc)?;
    expect_len(op, "dinputs", dinput.inputs.len(), inputs.len())?;
    expect_len(op, "dh_initial", dinput.h_initial.len(), bh)?;
    expect_len(op, "dc_initial", dinput.c_initial.len(), bc)?;
    expect_len(
        op,
        "dw_input",
        dweights.w_input.len(),
        weights.w_input.len(),
    )?;
    expect_len(
        op,
        "dw_state",
        dweights.w_state.len(),
        weights.w_state.len(),
    )?;
    expect_len(op, "dbias", dweights.bias.len(), weights.bias.len())?;
    expect_len(op, "dw_proj", dweights.w_proj.len(), weights.w_proj.len())?;
    let c4 = 4 * cell;
    let (mut dh, mut dc) = (vec![0.0f32; hidden], vec![0.0f32; cell]);
    let (mut dproj, mut dhidden_pre, mut da) =
        (vec![0.0f32; hidden], vec![0.0f32; cell], vec![0.0f32; c4]);
    let mut h_prev = vec![0.0f32; hidden];
    for b in 0..batch {
        let len = lengths[b];
        dh.copy_from_slice(&dh_final[b * hidden..(b + 1) * hidden]);
        dc.copy_from_slice(&dc_final[b * cell..(b + 1) * cell]);
        for s in (0..len).rev() {
            let t = time_index(options.go_forward, s, len);
            let bt = b * steps + t;
            // the previous state: the step visited before, or the initial state
            let prev_bt = (s > 0).then(|| b * steps + time_index(options.go_forward, s - 1, len));
            for k in 0..hidden {
                h_prev[k] = match prev_bt {
                    Some(p) => clip(saved.projections[p * hidden + k], options.proj_clip),
                    None => h_initial[b * hidden + k],
                };
            }
            let c_prev = |k: usize| match prev_bt {
                Some(p) => clip(saved.cells[p * cell + k], options.cell_clip),
                None => c_initial[b * cell + k],
            };
            let gates = &saved.gates[bt * c4..(bt + 1) * c4];
            // through the projection clip and the projection
            for k in 0..hidden {
                let dy = doutputs[bt * hidden + k] + dh[k];
                let p = saved.projections[bt * hidden + k];
                dproj[k] = if clip_passes(p, options.proj_clip) {
                    dy
                } else {
                    0.0
                };
            }
            dhidden_pre.fill(0.0);
            for k in 0..hidden {
                let wp = &weights.w_proj[k * cell..(k + 1) * cell];
                let dwp = &mut dweights.w_proj[k * cell..(k + 1) * cell];
                for j in 0..cell {
                    let c_new = clip(saved.cells[bt * cell + j], options.cell_clip);
                    dwp[j] += dproj[k] * gates[3 * cell + j] * c_new.tanh();
                    dhidden_pre[j] += dproj[k] * wp[j];
                }
            }
            // through the cell
            for j in 0..cell {
                let (i, f, g, o) = (
                    gates[j],
                    gates[cell + j],
                    gates[2 * cell + j],
                    gates[3 * cell + j],
                );
                let c_pre = saved.cells[bt * cell + j];
                let tc = clip(c_pre, options.cell_clip).tanh();
                let d_o = dhidden_pre[j] * tc;
                let dc_new = dc[j] + dhidden_pre[j] * o * (1.0 - tc * tc);
                let dc_pre = if clip_passes(c_pre, options.cell_clip) {
                    dc_new
                } else {
                    0.0
                };
                da[j] = dc_pre * g * i * (1.0 - i);
                da[cell + j] = dc_pre * c_prev(j) * f * (1.0 - f);
                da[2 * cell + j] = dc_pre * i * (1.0 - g * g);
                da[3 * cell + j] = d_o * o * (1.0 - o);
                dc[j] = dc_pre * f;
            }
            // through the linear maps
            let x = &inputs[bt * input..(bt + 1) * input];
            let dx = &mut dinput.inputs[bt * input..(bt + 1) * input];
            dh.fill(0.0);
            for r in 0..c4 {
                let g = da[r];
                dweights.bias[r] += g;
                let wx = &weights.w_input[r * input..(r + 1) * input];
                let dwx = &mut dweights.w_input[r * input..(r + 1) * input];
                for k in 0..input {
                    dwx[k] += g * x[k];
                    dx[k] += g * wx[k];
                }
                let wh = &weights.w_state[r * hidden..(r + 1) * hidden];
                let dwh = &mut dweights.w_state[r * hidden..(r + 1) * hidden];
                for k in 0..hidden {
                    dwh[k] += g * h_prev[k];
                    dh[k] += g * wh[k];
                }
            }
        }
        for k in 0..hidden {
            dinput.h_initial[b * hidden + k] += dh[k];
        }
        for k in 0..cell {
            dinput.c_initial[b * cell + k] += dc[k];
        }
    }
    Ok(())
}

// ---- on a device (CPU or GPU) -------------------------------------------------------------

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: &shaders::LSTM,
        entry,
    }
}

/// The weights as tensors (same layouts as [`LstmWeights`]).
#[derive(Clone, Copy, Debug)]
pub struct LstmWeightTensors<'a> {
    pub w_input: &'a Tensor, // (4C, I)
    pub w_state: &'a Tensor, // (4C, H)
    pub bias: &'a Tensor,    // (4C)
    pub w_proj: &'a Tensor,  // (H, C)
}

impl<'a> LstmWeightTensors<'a> {
    /// The same weights as CPU slices (an error if they live on the GPU).
    pub fn cpu(&self) -> Result<LstmWeights<'a>> {
        Ok(LstmWeights {
            w_input: self.w_input.cpu()?,
            w_state: self.w_state.cpu()?,
            bias: self.bias.cpu()?,
            w_proj: self.w_proj.cpu()?,
        })
    }
}

/// Their gradients, accumulated.
#[derive(Debug)]
pub struct LstmWeightGradTensors<'a> {
    pub w_input: &'a mut Tensor, // (4C, I)
    pub w_state: &'a mut Tensor, // (4C, H)
    pub bias: &'a mut Tensor,    // (4C)
    pub w_proj: &'a mut Tensor,  // (H, C)
}

/// What the forward keeps for the backward, as tensors.
#[derive(Debug)]
pub struct LstmSavedTensors {
    pub gates: Tensor,       // (B, T, 4C)
    pub cells: Tensor,       // (B, T, C)
    pub projections: Tensor, // (B, T, H)
}

impl LstmSavedTensors {
    /// Buffers for a forward of `shape` on `device`.
    pub fn new(device: &crate::Device, shape: &LstmShape) -> Result<Self> {
        let (b, t, c, h) = (shape.batch, shape.steps, shape.cell, shape.hidden);
        Ok(LstmSavedTensors {
            gates: Tensor::uninit(device, &[b, t, 4 * c], "lstm.gates")?,
            cells: Tensor::uninit(device, &[b, t, c], "lstm.cells")?,
            projections: Tensor::uninit(device, &[b, t, h], "lstm.projections")?,
        })
    }
}

/// Gradients flowing out of the LSTM into its inputs and initial state, as tensors.
#[derive(Debug)]
pub struct LstmInputGradTensors<'a> {
    pub inputs: &'a mut Tensor,    // (B, T, I)
    pub h_initial: &'a mut Tensor, // (B, H)
    pub c_initial: &'a mut Tensor, // (B, C)
}

/// The shape from inputs (B, T, I) and the weights; checks every weight tensor.
pub fn lstm_shape(op: &str, inputs: &Tensor, weights: &LstmWeightTensors) -> Result<LstmShape> {
    let (batch, steps, input) = match inputs.shape() {
        &[b, t, i] => (b, t, i),
        other => {
            return Err(Error::shape(
                format!("{op}: {}", inputs.name()),
                "(B, T, I)",
                other,
            ))
        }
    };
    let (hidden, cell) = match weights.w_proj.shape() {
        &[h, c] => (h, c),
        other => {
            return Err(Error::shape(
                format!("{op}: {}", weights.w_proj.name()),
                "(H, C)",
                other,
            ))
        }
    };
    if cell == 0 || hidden == 0 {
        return Err(Error::invalid(format!(
            "{op}: cell size {cell} and projection size {hidden} must be >= 1"
        )));
    }
    weights.w_input.expect_shape(op, &[4 * cell, input])?;
    weights.w_state.expect_shape(op, &[4 * cell, hidden])?;
    weights.bias.expect_shape(op, &[4 * cell])?;
    Ok(LstmShape {
        batch,
        steps,
        input,
        cell,
        hidden,
    })
}

fn check_lengths(op: &str, lengths: &[usize], shape: &LstmShape) -> Result<Vec<u32>> {
    expect_len(op, "lengths", lengths.len(), shape.batch)?;
    lengths
        .iter()
        .enumerate()
        .map(|(row, &len)| {
            if len > shape.steps {
                Err(Error::invalid(format!(
                    "{op}: length {len} of row {row} exceeds the {} time steps",
                    shape.steps
                )))
            } else {
                Ok(len as u32)
            }
        })
        .collect()
}

/// One direction of one layer on the tensors' device. `h_state (B, H)` / `c_state (B, C)`
/// hold the initial state on entry and the final state on return (keep a copy of the initial
/// state if the backward will run). `lengths` (B) live on the host: they set the number of
/// steps the GPU loop encodes. outputs (B, T, H); inputs (B, T, I).
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward(
    outputs: &mut Tensor,
    saved: &mut LstmSavedTensors,
    h_state: &mut Tensor,
    c_state: &mut Tensor,
    inputs: &Tensor,
    lengths: &[usize],
    weights: &LstmWeightTensors,
    options: &LstmOptions,
) -> Result<()> {
    let op = "lstm_forward";
    let shape = lstm_shape(op, inputs, weights)?;
    let (b, t, c, h) = (shape.batch, shape.steps, shape.cell, shape.hidden);
    outputs.expect_shape(op, &[b, t, h])?;
    saved.gates.expect_shape(op, &[b, t, 4 * c])?;
    saved.cells.expect_shape(op, &[b, t, c])?;
    saved.projections.expect_shape(op, &[b, t, h])?;
    h_state.expect_shape(op, &[b, h])?;
    c_state.expect_shape(op, &[b, c])?;
    let lengths_u32 = check_lengths(op, lengths, &shape)?;
    match outputs.gpu_context().cloned() {
        None => lstm_forward_cpu(
            outputs.cpu_mut()?,
            LstmSaved {
                gates: saved.gates.cpu_mut()?,
                cells: saved.cells.cpu_mut()?,
                projections: saved.projections.cpu_mut()?,
            },
            h_state.cpu_mut()?,
            c_state.cpu_mut()?,
            inputs.cpu()?,
            lengths,
            &weights.cpu()?,
            options,
            &shape,
        ),
        Some(ctx) => {
            if b == 0 {
                return Ok(());
            }
            let device = outputs.device();
            let lengths_t = Tensor::<u32>::from_vec(&device, &[b], lengths_u32, "lstm.lengths")?;
            let hidden_pre = Tensor::<f32>::uninit(&device, &[b, c], "lstm.hidden_pre")?;
            let p0 = shape.params(options, 0)?;
            ctx.dispatch(
                &kernel("lstm_input_projection"),
                &[inputs.gpu()?, weights.w_input.gpu()?, lengths_t.gpu()?],
                &[saved.gates.gpu()?],
                &p0,
                ctx.linear_groups(product(op, &[b, t, 4 * c])?, 256),
            )?;
            ctx.dispatch(
                &kernel("lstm_clear_padding"),
                &[lengths_t.gpu()?],
                &[outputs.gpu()?, saved.cells.gpu()?, saved.projections.gpu()?],
                &p0,
                ctx.linear_groups(product(op, &[b, t, h.max(c)])?, 256),
            )?;
            let max_len = lengths.iter().copied().max().unwrap_or(0);
            for step in 0..max_len {
                let p = shape.params(options, step)?;
                ctx.dispatch(
                    &kernel("lstm_cell_step"),
                    &[
                        weights.w_state.gpu()?,
                        weights.bias.gpu()?,
                        lengths_t.gpu()?,
                        h_state.gpu()?,
                    ],
                    &[
                        saved.gates.gpu()?,
                        saved.cells.gpu()?,
                        c_state.gpu()?,
                        hidden_pre.gpu()?,
                    ],
                    &p,
                    ctx.linear_groups(b * c, 256),
                )?;
                ctx.dispatch(
                    &kernel("lstm_projection_step"),
                    &[weights.w_proj.gpu()?, hidden_pre.gpu()?, lengths_t.gpu()?],
                    &[outputs.gpu()?, saved.projections.gpu()?, h_state.gpu()?],
                    &p,
                    ctx.linear_groups(b * h, 256),
                )?;
            }
            Ok(())
        }
    }
}

/// Backward through time of [`lstm_forward`] on the tensors' device: gradients of the inputs,
/// the initial state and the weights are accumulated from `doutputs (B, T, H)` and the
/// gradient of the final state `dh_final (B, H)`, `dc_final (B, C)` (zeros when unused).
/// `h_initial`/`c_initial` are the states the forward started from.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    dinput: LstmInputGradTensors,
    dweights: LstmWeightGradTensors,
    doutputs: &Tensor,
    dh_final: &Tensor,
    dc_final: &Tensor,
    inputs: &Tensor,
    saved: &LstmSavedTensors,
    h_initial: &Tensor,
    c_initial: &Tensor,
    lengths: &[usize],
    weights: &LstmWeightTensors,
    options: &LstmOptions,
) -> Result<()> {
    let op = "lstm_backward";
    let shape = lstm_shape(op, inputs, weights)?;
    let (b, t, c, h) = (shape.batch, shape.steps, shape.cell, shape.hidden);
    doutputs.expect_shape(op, &[b, t, h])?;
    dh_final.expect_shape(op, &[b, h])?;
    dc_final.expect_shape(op, &[b, c])?;
    h_initial.expect_shape(op, &[b, h])?;
    c_initial.expect_shape(op, &[b, c])?;
    saved.gates.expect_shape(op, &[b, t, 4 * c])?;
    saved.cells.expect_shape(op, &[b, t, c])?;
    saved.projections.expect_shape(op, &[b, t, h])?;
    dinput.inputs.expect_shape(op, inputs.shape())?;
    dinput.h_initial.expect_shape(op, &[b, h])?;
    dinput.c_initial.expect_shape(op, &[b, c])?;
    dweights.w_input.expect_shape(op, weights.w_input.shape())?;
    dweights.w_state.expect_shape(op, weights.w_state.shape())?;
    dweights.bias.expect_shape(op, weights.bias.shape())?;
    dweights.w_proj.expect_shape(op, weights.w_proj.shape())?;
    let lengths_u32 = check_lengths(op, lengths, &shape)?;
    match doutputs.gpu_context().cloned() {
        None => lstm_backward_cpu(
            LstmInputGrads {
                inputs: dinput.inputs.cpu_mut()?,
                h_initial: dinput.h_initial.cpu_mut()?,
                c_initial: dinput.c_initial.cpu_mut()?,
            },
            LstmWeightGrads {
                w_input: dweights.w_input.cpu_mut()?,
                w_state: dweights.w_state.cpu_mut()?,
                bias: dweights.bias.cpu_mut()?,
                w_proj: dweights.w_proj.cpu_mut()?,
            },
            doutputs.cpu()?,
            dh_final.cpu()?,
            dc_final.cpu()?,
            inputs.cpu()?,
            LstmSavedRef {
                gates: saved.gates.cpu()?,
                cells: saved.cells.cpu()?,
                projections: saved.projections.cpu()?,
            },
            h_initial.cpu()?,
            c_initial.cpu()?,
            lengths,
            &weights.cpu()?,
            options,
            &shape,
        ),
        Some(ctx) => {
            if b == 0 {
                return Ok(());
            }
            let device = doutputs.device();
            let c4 = 4 * c;
            let lengths_t = Tensor::<u32>::from_vec(&device, &[b], lengths_u32, "lstm.lengths")?;
            let dh_carry = Tensor::<f32>::uninit(&device, &[b, h], "lstm.dh_carry")?;
            let dc_carry = Tensor::<f32>::uninit(&device, &[b, c], "lstm.dc_carry")?;
            ctx.copy(dh_carry.gpu()?, dh_final.gpu()?, dh_final.bytes())?;
            ctx.copy(dc_carry.gpu()?, dc_final.gpu()?, dc_final.bytes())?;
            let dproj = Tensor::<f32>::zeros(&device, &[b, t, h], "lstm.dproj")?;
            let dgates = Tensor::<f32>::zeros(&device, &[b, t, c4], "lstm.dgates")?;
            let max_len = lengths.iter().copied().max().unwrap_or(0);
            for step in (0..max_len).rev() {
                let p = shape.params(options, step)?;
                ctx.dispatch(
                    &kernel("lstm_backward_projection_step"),
                    &[
                        doutputs.gpu()?,
                        saved.projections.gpu()?,
                        lengths_t.gpu()?,
                        dh_carry.gpu()?,
                    ],
                    &[dproj.gpu()?],
                    &p,
                    ctx.linear_groups(b * h, 256),
                )?;
                ctx.dispatch(
                    &kernel("lstm_backward_cell_step"),
                    &[
                        dproj.gpu()?,
                        weights.w_proj.gpu()?,
                        saved.gates.gpu()?,
                        saved.cells.gpu()?,
                        c_initial.gpu()?,
                        lengths_t.gpu()?,
                    ],
                    &[dgates.gpu()?, dc_carry.gpu()?],
                    &p,
                    ctx.linear_groups(b * c, 256),
                )?;
                ctx.dispatch(
                    &kernel("lstm_backward_hidden_step"),
                    &[weights.w_state.gpu()?, dgates.gpu()?, lengths_t.gpu()?],
                    &[dh_carry.gpu()?],
                    &p,
                    ctx.linear_groups(b * h, 256),
                )?;
            }
            let p = shape.params(options, 0)?;
            ctx.dispatch(
                &kernel("lstm_backward_inputs"),
                &[weights.w_input.gpu()?, dgates.gpu()?],
                &[dinput.inputs.gpu()?],
                &p,
                ctx.linear_groups(inputs.numel(), 256),
            )?;
            ctx.dispatch(
                &kernel("lstm_backward_input_weights"),
                &[inputs.gpu()?, dgates.gpu()?],
                &[dweights.w_input.gpu()?],
                &p,
                ctx.linear_groups(weights.w_input.numel(), 256),
            )?;
            ctx.dispatch(
                &kernel("lstm_backward_state_weights"),
                &[
                    dgates.gpu()?,
                    saved.projections.gpu()?,
                    h_initial.gpu()?,
                    lengths_t.gpu()?,
                ],
                &[dweights.w_state.gpu()?, dweights.bias.gpu()?],
                &p,
                ctx.linear_groups(weights.w_state.numel(), 256),
            )?;
            ctx.dispatch(
                &kernel("lstm_backward_projection_weights"),
                &[dproj.gpu()?, saved.gates.gpu()?, saved.cells.gpu()?],
                &[dweights.w_proj.gpu()?],
                &p,
                ctx.linear_groups(weights.w_proj.numel(), 256),
            )?;
            ctx.dispatch(
                &kernel("lstm_backward_initial_state"),
                &[dh_carry.gpu()?, dc_carry.gpu()?],
                &[dinput.h_initial.gpu()?, dinput.c_initial.gpu()?],
                &p,
                ctx.linear_groups(b * h.max(c), 256),
            )
        }
    }
}

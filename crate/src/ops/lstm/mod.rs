//! The LSTM of ELMo's biLM, as AllenNLP's `LstmCellWithProjection`
//! (`allennlp/modules/lstm_cell_with_projection.py`) computes it, forward and backward through
//! time, one op on the CPU and the GPU.
//!
//! One visiting step of one row, with `x` its input at time index `t` and `(h, c)` its state:
//! ```text
//! forward                              backward (dy: the output's gradient; dh, dc: carried
//!                                      back from the step after, the final state's at the last)
//! a  = W_x x + b + W_h h       (4C)    dp  = (dy + dh) [|p| <= proj_clip]              (H)
//! i, f, o = sigmoid(a_i, a_f, a_o)     dr  = W_p^T dp                                  (C)
//! g  = tanh(a_g)               (C)     dc' = (dc + dr o (1 - tanh² c')) [|i g + f c| <= cell_clip]
//! c' = clip(i g + f c, cell_clip)      da  = [dc' g i (1 - i), dc' c f (1 - f),
//! r  = o tanh(c')              (C)            dc' i (1 - g²), dr tanh(c') o (1 - o)]   (4C)
//! p  = W_p r                   (H)     dh  = W_h^T da (H),  dc = dc' f (C)
//! y  = h' = clip(p, proj_clip) (H)     dx  = W_x^T da,  dW_x += da x^T,  dW_h += da h^T,
//!                                      db += da,  dW_p += dp r^T
//! ```
//! `W_x` (4C, I) is `input_linearity` (no bias), `W_h` (4C, H) and `b` (4C) `state_linearity`,
//! `W_p` (H, C) `state_projection`; a clip of `None` (or 0, falsy in AllenNLP) does not clip.
//! Gate order `[i, f, g, o]` is PyTorch's, as AllenNLP stores it. The TF checkpoints that ELMo
//! ships pack `[input, memory(j), forget, output]`, keep `W_x` and `W_h` in one `(I + H, 4C)`
//! matrix and add 1 to the forget gate at run time (`forget_bias=1.0`); AllenNLP's
//! `ElmoLstm.load_weights` transposes, splits, swaps the middle gate blocks and adds 1.0 to the
//! forget bias, as [`lstm_weights_from_tensorflow`] does.
//!
//! Variable lengths: row `b` is active at time index `t` iff `t < lengths[b]` (AllenNLP's
//! sorted-batch loop, `batch_lengths[current_length_index] <= index`). Visiting step `s` of a
//! row is `t = s` forward and `t = len - 1 - s` for the backward LM (`go_forward = false`). A
//! step a row does not have leaves its state alone and its output zero, so the final state is
//! each row's own: pass it back as the next call's initial state for AllenNLP's stateful mode,
//! zeros for stateless use. Recurrent dropout (0 in ELMo) is not part of this op.
//!
//! How it runs, the same way on both devices: everything that does not wait for the previous
//! step is one product over all B*T positions through [`crate::ops::matmul`]; each step is two
//! products over the B rows (matmul too), each followed by an elementwise pass whose CPU loop
//! sits next to its dispatch of `shaders/lstm.wgsl` below.
//! ```text
//! forward   gates = x W_x^T + b (all steps); zero the padding; for s = 0 ..:
//!             recurrent = h W_h^T; cell step; projection = r W_p^T; projection step
//! backward  previous h and r of every position; for s = .. down to 0:
//!             projection step; dr = dp W_p; cell step; dh = da W_h;
//!           then the initial state, and dx, dW_x, db, dW_h, dW_p as matmul backwards
//! ```

// The CPU loops index several parallel arrays (lengths, gates, cells, states) with one row
// counter, as the kernels do; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

// The steps (each forward next to its backward, the CPU loop next to its GPU dispatch), and
// the conversion of the TensorFlow-layout weights AllenNLP ships.
mod steps;
mod tensorflow_weights;

use steps::*;
pub use tensorflow_weights::{lstm_weights_from_tensorflow, LstmWeightsOwned};

use crate::device::{Device, GpuContext};
use crate::ops::length_check::{as_u32, expect_len, product};
use crate::ops::matmul::{
    matmul_backward, matmul_forward, matmul_forward_packed, MatmulOptions, PackedWeight,
};
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Clipping and direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmOptions {
    /// `memory_cell_clip_value`; `None` or `Some(0.0)` does not clip
    pub cell_clip: Option<f32>,
    /// `state_projection_clip_value`; `None` or `Some(0.0)` does not clip
    pub proj_clip: Option<f32>,
    /// `true`: t = 0 .. len; `false`: t = len - 1 down to 0 (the backward LM)
    pub go_forward: bool,
}

/// The weights, in AllenNLP's (PyTorch) layout and gate order `[i, f, g, o]`.
#[derive(Clone, Copy, Debug)]
pub struct LstmWeights<'a> {
    pub w_input: &'a Tensor, // (4C, I) input_linearity.weight
    pub w_state: &'a Tensor, // (4C, H) state_linearity.weight
    pub bias: &'a Tensor,    // (4C) state_linearity.bias (forget block includes TF's +1)
    pub w_proj: &'a Tensor,  // (H, C) state_projection.weight
}

/// Gradients of [`LstmWeights`], accumulated.
#[derive(Debug)]
pub struct LstmWeightGrads<'a> {
    pub w_input: &'a mut Tensor, // (4C, I)
    pub w_state: &'a mut Tensor, // (4C, H)
    pub bias: &'a mut Tensor,    // (4C)
    pub w_proj: &'a mut Tensor,  // (H, C)
}

/// Gradients flowing out of the LSTM into its inputs and initial state, accumulated.
#[derive(Debug)]
pub struct LstmInputGrads<'a> {
    pub inputs: &'a mut Tensor,    // (B, T, I)
    pub h_initial: &'a mut Tensor, // (B, H)
    pub c_initial: &'a mut Tensor, // (B, C)
}

/// Zeroed gradient tensors of one LSTM's inputs, initial state and weights, owned: for callers
/// that keep no gradient tensors of their own (the kernel check, the tests).
#[derive(Debug)]
pub struct LstmGradTensors {
    pub inputs: Tensor,    // (B, T, I)
    pub h_initial: Tensor, // (B, H)
    pub c_initial: Tensor, // (B, C)
    pub w_input: Tensor,   // (4C, I)
    pub w_state: Tensor,   // (4C, H)
    pub bias: Tensor,      // (4C)
    pub w_proj: Tensor,    // (H, C)
}

impl LstmGradTensors {
    pub fn zeros(device: &Device, s: &LstmShape) -> Result<LstmGradTensors> {
        let (b, t, i, c, h) = (s.batch, s.steps, s.input, s.cell, s.hidden);
        Ok(LstmGradTensors {
            inputs: Tensor::zeros(device, &[b, t, i], "lstm.dinputs")?,
            h_initial: Tensor::zeros(device, &[b, h], "lstm.dh_initial")?,
            c_initial: Tensor::zeros(device, &[b, c], "lstm.dc_initial")?,
            w_input: Tensor::zeros(device, &[4 * c, i], "lstm.dw_input")?,
            w_state: Tensor::zeros(device, &[4 * c, h], "lstm.dw_state")?,
            bias: Tensor::zeros(device, &[4 * c], "lstm.dbias")?,
            w_proj: Tensor::zeros(device, &[h, c], "lstm.dw_proj")?,
        })
    }

    /// The two views that [`lstm_backward`] accumulates into.
    pub fn as_grads(&mut self) -> (LstmInputGrads<'_>, LstmWeightGrads<'_>) {
        let inputs = LstmInputGrads {
            inputs: &mut self.inputs,
            h_initial: &mut self.h_initial,
            c_initial: &mut self.c_initial,
        };
        let weights = LstmWeightGrads {
            w_input: &mut self.w_input,
            w_state: &mut self.w_state,
            bias: &mut self.bias,
            w_proj: &mut self.w_proj,
        };
        (inputs, weights)
    }
}

/// What [`lstm_forward`] keeps for [`lstm_backward`] (zero at padded positions).
#[derive(Debug)]
pub struct LstmSaved {
    pub gates: Tensor,       // (B, T, 4C) activated [i, f, g, o]
    pub cells: Tensor,       // (B, T, C) i g + f c, before the cell clip
    pub projections: Tensor, // (B, T, H) p, before the projection clip
}

/// Sizes of one direction of one layer.
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

impl LstmShape {
    /// The sizes from inputs (B, T, I) and the weights, every weight's shape checked.
    pub fn of(op: &str, inputs: &Tensor, weights: &LstmWeights) -> Result<LstmShape> {
        let &[batch, steps, input] = inputs.shape() else {
            let name = format!("{op}: {}", inputs.name());
            return Err(Error::shape(name, "(B, T, I)", inputs.shape()));
        };
        let (hidden, cell) = match weights.w_proj.shape() {
            &[h, c] if h > 0 && c > 0 => (h, c),
            _ => (0, 0),
        };
        let fits = cell > 0
            && weights.w_input.shape() == [4 * cell, input]
            && weights.w_state.shape() == [4 * cell, hidden]
            && weights.bias.shape() == [4 * cell];
        if !fits {
            return Err(Error::invalid(format!(
                "{op}: the weights w_input {:?}, w_state {:?}, bias {:?}, w_proj {:?} are not \
                 (4C, I), (4C, H), (4C), (H, C) with C, H >= 1 and I = {input} ({} is {:?})",
                weights.w_input.shape(),
                weights.w_state.shape(),
                weights.bias.shape(),
                weights.w_proj.shape(),
                inputs.name(),
                inputs.shape(),
            )));
        }
        Ok(LstmShape {
            batch,
            steps,
            input,
            cell,
            hidden,
        })
    }
}

/// The uniform block of `shaders/lstm.wgsl` (`LstmParams`), 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LstmParams {
    pub batch: u32,
    pub steps: u32,
    pub cell: u32,
    pub hidden: u32,
    /// the visiting step s of the per-step kernels
    pub step: u32,
    /// 1 = forward direction, 0 = backward direction
    pub go_forward: u32,
    /// 0 = no clip
    pub cell_clip: f32,
    /// 0 = no clip
    pub proj_clip: f32,
}

/// One call's sizes, options and lengths (B) as a tensor on the op's device.
impl LstmShape {
    /// (B, T, C, H): the sizes the tensors of a sequence are checked against.
    fn batch_steps_cell_hidden(&self) -> (usize, usize, usize, usize) {
        (self.batch, self.steps, self.cell, self.hidden)
    }
}

struct Sequence {
    shape: LstmShape,
    options: LstmOptions,
    lengths: Tensor<u32>, // (B)
    max_len: usize,
}

impl Sequence {
    fn new(
        op: &str,
        inputs: &Tensor,
        lengths: &[usize],
        weights: &LstmWeights,
        options: &LstmOptions,
    ) -> Result<Sequence> {
        let shape = LstmShape::of(op, inputs, weights)?;
        expect_len(op, "lengths", lengths.len(), shape.batch)?;
        if let Some((row, &len)) = lengths.iter().enumerate().find(|(_, &l)| l > shape.steps) {
            return Err(Error::invalid(format!(
                "{op}: length {len} of row {row} exceeds the {} time steps",
                shape.steps
            )));
        }
        // every flat index of the kernels fits a u32
        let widest = product(
            op,
            &[shape.batch, shape.steps, 4, shape.cell.max(shape.hidden)],
        )?;
        as_u32(op, widest)?;
        let lengths_u32 = lengths
            .iter()
            .map(|&l| as_u32(op, l))
            .collect::<Result<_>>()?;
        Ok(Sequence {
            shape,
            options: *options,
            lengths: Tensor::from_vec(
                &inputs.device(),
                &[shape.batch],
                lengths_u32,
                "lstm.lengths",
            )?,
            max_len: lengths.iter().copied().max().unwrap_or(0),
        })
    }

    fn clip_cell(&self, x: f32) -> f32 {
        clip(x, self.options.cell_clip)
    }

    fn clip_proj(&self, x: f32) -> f32 {
        clip(x, self.options.proj_clip)
    }

    /// Row `b`'s flat position `b * T + t` at visiting step `s`, `None` when it has no step `s`.
    fn position(&self, lengths: &[u32], b: usize, s: usize) -> Option<usize> {
        let len = lengths[b] as usize;
        (s < len).then(|| b * self.shape.steps + time_index(self.options.go_forward, s, len))
    }

    /// Encodes `entry` for `threads` invocations at visiting step `step`; the lengths are
    /// bound after `inputs`, `outputs` after them.
    fn dispatch(
        &self,
        ctx: &GpuContext,
        entry: &'static str,
        inputs: &[&Tensor],
        outputs: &[&Tensor],
        step: usize,
        threads: usize,
    ) -> Result<()> {
        let mut read = inputs.iter().map(|t| t.gpu()).collect::<Result<Vec<_>>>()?;
        read.push(self.lengths.gpu()?);
        let written = outputs
            .iter()
            .map(|t| t.gpu())
            .collect::<Result<Vec<_>>>()?;
        let s = &self.shape;
        let params = LstmParams {
            batch: s.batch as u32,
            steps: s.steps as u32,
            cell: s.cell as u32,
            hidden: s.hidden as u32,
            step: step as u32,
            go_forward: self.options.go_forward as u32,
            cell_clip: self.options.cell_clip.unwrap_or(0.0),
            proj_clip: self.options.proj_clip.unwrap_or(0.0),
        };
        let kernel = shaders::LSTM.kernel(entry);
        let groups = ctx.linear_groups(threads, 256);
        ctx.dispatch(&kernel, &read, &written, &params, groups)
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

/// `x (rows, in) @ W^T` with `W` stored (out, in), as `nn.Linear` keeps it.
const LINEAR: MatmulOptions = MatmulOptions {
    trans_a: false,
    trans_b: true,
    alpha: 1.0,
    accumulate: false,
};

/// `x (rows, k) @ W (k, n)`: a linear map's backward.
const PLAIN: MatmulOptions = MatmulOptions {
    trans_b: false,
    ..LINEAR
};

/// One weight's product with the (B, k) rows of a step, every step of a call: on the CPU the
/// weight's panels are packed once for all of them.
struct StepProduct<'a> {
    weight: &'a Tensor,
    options: MatmulOptions,
    packed: PackedWeight,
}

impl<'a> StepProduct<'a> {
    fn new(weight: &'a Tensor, options: MatmulOptions) -> Self {
        let packed = PackedWeight::default();
        StepProduct {
            weight,
            options,
            packed,
        }
    }

    /// out = rows @ op(weight)
    fn run(&self, out: &mut Tensor, rows: &Tensor) -> Result<()> {
        matmul_forward_packed(out, rows, self.weight, None, self.options, &self.packed)
    }
}

// ---- forward and backward through time ---------------------------------------------------

/// One direction of one layer. `h_state (B, H)` / `c_state (B, C)` hold the initial state on
/// entry and the final state on return (keep a copy of the initial state for the backward).
/// `lengths` (B, each <= T) stay on the host: they set the number of steps. Returns what the
/// backward needs.
pub fn lstm_forward(
    outputs: &mut Tensor, // (B, T, H) zero past each length
    h_state: &mut Tensor, // (B, H) in: initial, out: final
    c_state: &mut Tensor, // (B, C) in: initial, out: final
    inputs: &Tensor,      // (B, T, I)
    lengths: &[usize],    // (B)
    weights: &LstmWeights,
    options: &LstmOptions,
) -> Result<LstmSaved> {
    let op = "lstm_forward";
    let seq = Sequence::new(op, inputs, lengths, weights, options)?;
    let (b, t, c, h) = seq.shape.batch_steps_cell_hidden();
    outputs.expect_shape(op, &[b, t, h])?;
    h_state.expect_shape(op, &[b, h])?;
    c_state.expect_shape(op, &[b, c])?;
    let device = inputs.device();
    let mut saved = LstmSaved {
        gates: Tensor::uninit(&device, &[b, t, 4 * c], "lstm.gates")?,
        cells: Tensor::uninit(&device, &[b, t, c], "lstm.cells")?,
        projections: Tensor::uninit(&device, &[b, t, h], "lstm.projections")?,
    };
    if b == 0 {
        return Ok(saved);
    }
    // (B, T, 4C) = x (B, T, I) @ W_x^T + b: the part of every gate that needs no state
    matmul_forward(
        &mut saved.gates,
        inputs,
        weights.w_input,
        Some(weights.bias),
        LINEAR,
    )?;
    clear_padding(&seq, &mut saved, outputs)?;
    let mut recurrent = Tensor::uninit(&device, &[b, 4 * c], "lstm.recurrent")?; // (B, 4C)
    let mut hidden = Tensor::uninit(&device, &[b, c], "lstm.hidden")?; // (B, C) o tanh(c')
    let mut projection = Tensor::uninit(&device, &[b, h], "lstm.projection")?; // (B, H)
    let recurrent_product = StepProduct::new(weights.w_state, LINEAR); // h W_h^T
    let projection_product = StepProduct::new(weights.w_proj, LINEAR); // r W_p^T
    for s in 0..seq.max_len {
        recurrent_product.run(&mut recurrent, h_state)?;
        cell_step(&seq, s, &recurrent, &mut saved, c_state, &mut hidden)?;
        projection_product.run(&mut projection, &hidden)?;
        projection_step(&seq, s, &projection, &mut saved, outputs, h_state)?;
    }
    Ok(saved)
}

/// Backward through time of [`lstm_forward`]: accumulates the gradients of the inputs, the
/// initial state and the weights from `doutputs` and the final state's gradient
/// (`dh_final`, `dc_final`: zeros when the final state is not used). `h_initial`/`c_initial`
/// are the states the forward started from, `saved` what it returned.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    dinput: LstmInputGrads,
    dweights: LstmWeightGrads,
    doutputs: &Tensor,  // (B, T, H)
    dh_final: &Tensor,  // (B, H)
    dc_final: &Tensor,  // (B, C)
    inputs: &Tensor,    // (B, T, I)
    saved: &LstmSaved,  // from the forward
    h_initial: &Tensor, // (B, H)
    c_initial: &Tensor, // (B, C)
    lengths: &[usize],  // (B)
    weights: &LstmWeights,
    options: &LstmOptions,
) -> Result<()> {
    let op = "lstm_backward";
    let seq = Sequence::new(op, inputs, lengths, weights, options)?;
    let (b, t, c, h) = seq.shape.batch_steps_cell_hidden();
    for (tensor, shape) in [
        (doutputs, &[b, t, h][..]),
        (dh_final, &[b, h][..]),
        (dc_final, &[b, c][..]),
        (h_initial, &[b, h][..]),
        (c_initial, &[b, c][..]),
        (&saved.gates, &[b, t, 4 * c][..]),
        (&saved.cells, &[b, t, c][..]),
        (&saved.projections, &[b, t, h][..]),
        (&*dinput.inputs, inputs.shape()),
        (&*dinput.h_initial, &[b, h][..]),
        (&*dinput.c_initial, &[b, c][..]),
        (&*dweights.w_input, weights.w_input.shape()),
        (&*dweights.w_state, weights.w_state.shape()),
        (&*dweights.bias, weights.bias.shape()),
        (&*dweights.w_proj, weights.w_proj.shape()),
    ] {
        tensor.expect_shape(op, shape)?;
    }
    if b == 0 {
        return Ok(());
    }
    let device = inputs.device();
    // the inputs of dW_h and dW_p: the previous h and r = o tanh(c') of every position
    let mut previous_h = Tensor::zeros(&device, &[b, t, h], "lstm.previous_h")?; // (B, T, H)
    let mut hidden = Tensor::zeros(&device, &[b, t, c], "lstm.hidden")?; // (B, T, C)
    step_inputs(&seq, saved, h_initial, &mut previous_h, &mut hidden)?;
    let mut dproj = Tensor::zeros(&device, &[b, t, h], "lstm.dproj")?; // (B, T, H)
    let mut dgates = Tensor::zeros(&device, &[b, t, 4 * c], "lstm.dgates")?; // (B, T, 4C)
    let mut dproj_step = Tensor::zeros(&device, &[b, h], "lstm.dproj_step")?; // (B, H)
    let mut dhidden = Tensor::zeros(&device, &[b, c], "lstm.dhidden")?; // (B, C)
    let mut dgates_step = Tensor::zeros(&device, &[b, 4 * c], "lstm.dgates_step")?; // (B, 4C)
    let mut dh_recurrent = Tensor::zeros(&device, &[b, h], "lstm.dh_recurrent")?; // (B, H)
    let mut dc_carry = copy_of(dc_final, "lstm.dc_carry")?; // (B, C)
    let dhidden_product = StepProduct::new(weights.w_proj, PLAIN); // dp W_p
    let dh_product = StepProduct::new(weights.w_state, PLAIN); // da W_h
    for s in (0..seq.max_len).rev() {
        projection_step_backward(
            &seq,
            s,
            saved,
            doutputs,
            dh_final,
            &dh_recurrent,
            &mut dproj,
            &mut dproj_step,
        )?;
        dhidden_product.run(&mut dhidden, &dproj_step)?;
        cell_step_backward(
            &seq,
            s,
            saved,
            &dhidden,
            c_initial,
            &mut dgates,
            &mut dgates_step,
            &mut dc_carry,
        )?;
        dh_product.run(&mut dh_recurrent, &dgates_step)?;
    }
    initial_state_grads(
        &seq,
        &dh_recurrent,
        dh_final,
        &dc_carry,
        dinput.h_initial,
        dinput.c_initial,
    )?;
    // dx += da W_x, dW_x += da^T x, db += sum da (gates = x W_x^T + b)
    matmul_backward(
        Some(dinput.inputs),
        Some(dweights.w_input),
        Some(dweights.bias),
        &dgates,
        inputs,
        weights.w_input,
        LINEAR,
    )?;
    // dW_h += da^T h_prev (recurrent = h_prev W_h^T)
    matmul_backward(
        None,
        Some(dweights.w_state),
        None,
        &dgates,
        &previous_h,
        weights.w_state,
        LINEAR,
    )?;
    // dW_p += dp^T r (projection = r W_p^T)
    matmul_backward(
        None,
        Some(dweights.w_proj),
        None,
        &dproj,
        &hidden,
        weights.w_proj,
        LINEAR,
    )
}

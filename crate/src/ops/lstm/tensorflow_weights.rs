//! ELMo's LSTM weights as AllenNLP ships them (TensorFlow's layout) in the layout of
//! [`LstmWeights`].

use super::*;

/// LSTM weights on the host in AllenNLP's layout, as converted from a TF checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmWeightsOwned {
    pub w_input: Vec<f32>, // (4C, I)
    pub w_state: Vec<f32>, // (4C, H)
    pub bias: Vec<f32>,    // (4C)
    pub w_proj: Vec<f32>,  // (H, C)
}

/// AllenNLP's weights from one TF `LSTMCell` (`W_0`, `B`, `W_P_0`): transpose, split input /
/// recurrent columns, reorder gates `[i, j, f, o]` -> `[i, f, j, o]`, add 1.0 to the forget
/// bias (`elmo_lstm.py`, `load_weights`).
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

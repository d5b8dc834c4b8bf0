//! ELMo's character CNN (Kim, Jernite, Sontag, Rush, "Character-Aware Neural Language Models",
//! AAAI 2016; Peters et al., NAACL 2018), one filter width at a time, as AllenNLP's
//! `_ElmoCharacterEncoder.forward` (`allennlp/modules/elmo.py`) computes it: a valid
//! (unpadded) `Conv1d` over the characters of each token, the max over positions, then the
//! activation (`tanh` or `relu` from `options.json`'s `char_cnn.activation`). The output of each
//! width fills its own columns of the concatenated `(N, sum of filters)` token features.
//!
//! Weights are in PyTorch `Conv1d` layout `(F, E, K)`; the TF file stores `W_cnn_i` as
//! `(1, K, E, F)`, which AllenNLP squeezes and transposes `(2, 1, 0)`
//! ([`char_conv_weight_from_tensorflow`]).
//!
//! The backward sends each filter's gradient to the first position that attained the max
//! (torch's `max(dim)` returns the first maximal index); ties are common here because padded
//! character positions give identical windows.

use crate::ops::length_check::{expect_len, product};
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The activation after the max over positions (`options.json`: `char_cnn.activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharCnnActivation {
    Tanh,
    Relu,
}

impl CharCnnActivation {
    /// Parses the `options.json` value; anything else is an error, as in AllenNLP
    /// (`ConfigurationError("Unknown activation")`).
    pub fn from_options(name: &str) -> Result<Self> {
        match name {
            "tanh" => Ok(CharCnnActivation::Tanh),
            "relu" => Ok(CharCnnActivation::Relu),
            other => Err(Error::unsupported(format!(
                "char_cnn activation {other:?} (expected tanh or relu)"
            ))),
        }
    }
    fn apply(self, x: f32) -> f32 {
        match self {
            CharCnnActivation::Tanh => x.tanh(),
            CharCnnActivation::Relu => x.max(0.0),
        }
    }
    /// Derivative expressed through the activation's output `y`.
    fn derivative_from_output(self, y: f32) -> f32 {
        match self {
            CharCnnActivation::Tanh => 1.0 - y * y,
            CharCnnActivation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
    fn code(self) -> u32 {
        match self {
            CharCnnActivation::Tanh => 0,
            CharCnnActivation::Relu => 1,
        }
    }
}

/// Sizes of one filter width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CharConvShape {
    /// tokens
    pub n: usize,
    /// characters per token (W, 50 in ELMo)
    pub chars: usize,
    /// character embedding width (E)
    pub embed: usize,
    /// filter width in characters (K)
    pub width: usize,
    /// number of filters of this width (F)
    pub filters: usize,
    /// row stride of the concatenated output (sum of filters over all widths)
    pub out_stride: usize,
    /// first output column of this width
    pub out_col: usize,
}

impl CharConvShape {
    fn positions(&self) -> usize {
        self.chars + 1 - self.width
    }
    fn check(&self, op: &str) -> Result<()> {
        if self.embed == 0 {
            return Err(Error::invalid(format!("{op}: character embedding width 0")));
        }
        if self.width == 0 || self.width > self.chars {
            return Err(Error::invalid(format!(
                "{op}: filter width {} does not fit {} characters per token",
                self.width, self.chars
            )));
        }
        if self.out_col + self.filters > self.out_stride {
            return Err(Error::invalid(format!(
                "{op}: columns {}..{} exceed the output width {}",
                self.out_col,
                self.out_col + self.filters,
                self.out_stride
            )));
        }
        Ok(())
    }
    /// The uniform block for `shaders/char_cnn.wgsl`.
    pub fn params(&self, activation: CharCnnActivation) -> Result<CharCnnParams> {
        let u = |x: usize| {
            u32::try_from(x).map_err(|_| Error::invalid(format!("char_cnn: size {x} exceeds u32")))
        };
        Ok(CharCnnParams {
            n: u(self.n)?,
            chars: u(self.chars)?,
            embed: u(self.embed)?,
            width: u(self.width)?,
            filters: u(self.filters)?,
            out_stride: u(self.out_stride)?,
            out_col: u(self.out_col)?,
            activation: activation.code(),
        })
    }
}

/// The uniform block of `shaders/char_cnn.wgsl` (`CharCnnParams`), 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CharCnnParams {
    pub n: u32,
    pub chars: u32,
    pub embed: u32,
    pub width: u32,
    pub filters: u32,
    pub out_stride: u32,
    pub out_col: u32,
    /// 0 = tanh, 1 = relu
    pub activation: u32,
}

/// PyTorch layout `(F, E, K)` from the TF file's `W_cnn_i` of shape `(1, K, E, F)`.
pub fn char_conv_weight_from_tensorflow(
    w_tf: &[f32], // (1, K, E, F)
    width: usize,
    embed: usize,
    filters: usize,
) -> Result<Vec<f32>> {
    let op = "char_conv_weight_from_tensorflow";
    expect_len(
        op,
        "W_cnn",
        w_tf.len(),
        product(op, &[width, embed, filters])?,
    )?;
    let mut w = vec![0.0f32; w_tf.len()];
    for k in 0..width {
        for e in 0..embed {
            for f in 0..filters {
                w[(f * embed + e) * width + k] = w_tf[(k * embed + e) * filters + f];
            }
        }
    }
    Ok(w)
}

fn check_common(
    op: &str,
    s: &CharConvShape,
    out: usize,
    argmax: usize,
    chars: usize,
    weight: usize,
) -> Result<()> {
    s.check(op)?;
    expect_len(op, "out", out, product(op, &[s.n, s.out_stride])?)?;
    expect_len(op, "argmax", argmax, product(op, &[s.n, s.filters])?)?;
    expect_len(op, "chars", chars, product(op, &[s.n, s.chars, s.embed])?)?;
    expect_len(
        op,
        "weight",
        weight,
        product(op, &[s.filters, s.embed, s.width])?,
    )
}

/// `out[n, out_col + f] = act(max_p (b[f] + sum_{e,k} W[f,e,k] x[n, p + k, e]))`, keeping the
/// first maximizing position `p` in `argmax[n, f]`.
pub fn char_conv_max_forward_cpu(
    out: &mut [f32],    // (N, out_stride), columns out_col..out_col+F written
    argmax: &mut [u32], // (N, F)
    chars: &[f32],      // (N, W, E) character embeddings
    weight: &[f32],     // (F, E, K)
    bias: &[f32],       // (F)
    activation: CharCnnActivation,
    s: &CharConvShape,
) -> Result<()> {
    let op = "char_conv_max_forward_cpu";
    check_common(op, s, out.len(), argmax.len(), chars.len(), weight.len())?;
    expect_len(op, "bias", bias.len(), s.filters)?;
    let (e_, k_) = (s.embed, s.width);
    let window = e_ * k_;
    // weight (F, E, K) -> (F, K, E): each filter becomes one row that meets a window of the
    // characters (K consecutive rows of E, contiguous) as a plain dot product.
    let mut w_ke = vec![0.0f32; s.filters * window];
    for f in 0..s.filters {
        for e in 0..e_ {
            for k in 0..k_ {
                w_ke[f * window + k * e_ + e] = weight[f * window + e * k_ + k];
            }
        }
    }
    // Positions whose window equals the previous position's window (the padding characters
    // after a word fill most of the W positions) give the same value bit for bit, so they can
    // never be a strictly greater max: only the others are evaluated. Same max, same first
    // arg-max as evaluating every position.
    let mut distinct: Vec<usize> = Vec::with_capacity(s.positions());
    for n in 0..s.n {
        let x = &chars[n * s.chars * e_..(n + 1) * s.chars * e_];
        distinct.clear();
        for p in 0..s.positions() {
            if p == 0 || x[p * e_..p * e_ + window] != x[(p - 1) * e_..(p - 1) * e_ + window] {
                distinct.push(p);
            }
        }
        for f in 0..s.filters {
            let w = &w_ke[f * window..(f + 1) * window];
            let mut best = f32::NEG_INFINITY;
            let mut best_p = 0u32;
            for &p in &distinct {
                let x = &x[p * e_..p * e_ + window];
                let acc = bias[f] + w.iter().zip(x).map(|(&w, &x)| w * x).sum::<f32>();
                if acc > best {
                    best = acc;
                    best_p = p as u32;
                }
            }
            argmax[n * s.filters + f] = best_p;
            out[n * s.out_stride + s.out_col + f] = activation.apply(best);
        }
    }
    Ok(())
}

/// With `dm[n, f] = dout[n, out_col + f] act'(out[n, out_col + f])` and `p = argmax[n, f]`:
/// `dchars[n, p + k, e] += dm W[f, e, k]`, `dweight[f, e, k] += dm x[n, p + k, e]`, `dbias[f] += dm`.
#[allow(clippy::too_many_arguments)]
pub fn char_conv_max_backward_cpu(
    dchars: &mut [f32],  // (N, W, E) accumulated
    dweight: &mut [f32], // (F, E, K) accumulated
    dbias: &mut [f32],   // (F) accumulated
    dout: &[f32],        // (N, out_stride)
    out: &[f32],         // (N, out_stride) from the forward
    argmax: &[u32],      // (N, F) from the forward
    chars: &[f32],       // (N, W, E)
    weight: &[f32],      // (F, E, K)
    activation: CharCnnActivation,
    s: &CharConvShape,
) -> Result<()> {
    let op = "char_conv_max_backward_cpu";
    check_common(op, s, out.len(), argmax.len(), chars.len(), weight.len())?;
    expect_len(op, "dout", dout.len(), out.len())?;
    expect_len(op, "dchars", dchars.len(), chars.len())?;
    expect_len(op, "dweight", dweight.len(), weight.len())?;
    expect_len(op, "dbias", dbias.len(), s.filters)?;
    let (e_, k_) = (s.embed, s.width);
    for n in 0..s.n {
        for f in 0..s.filters {
            let col = n * s.out_stride + s.out_col + f;
            let dm = dout[col] * activation.derivative_from_output(out[col]);
            let p = argmax[n * s.filters + f] as usize;
            if p >= s.positions() {
                return Err(Error::invalid(format!(
                    "{op}: argmax {p} out of range (token {n}, filter {f})"
                )));
            }
            dbias[f] += dm;
            for e in 0..e_ {
                for k in 0..k_ {
                    let xi = (n * s.chars + p + k) * e_ + e;
                    let wi = (f * e_ + e) * k_ + k;
                    dweight[wi] += dm * chars[xi];
                    dchars[xi] += dm * weight[wi];
                }
            }
        }
    }
    Ok(())
}

/// One filter width's parameters, for [`char_cnn_forward_cpu`].
#[derive(Clone, Copy, Debug)]
pub struct CharConvFilter<'a> {
    pub weight: &'a [f32], // (F, E, K)
    pub bias: &'a [f32],   // (F)
    /// K
    pub width: usize,
    /// F
    pub filters: usize,
}

/// The whole char CNN on the CPU: the characters, every filter width in order, the activation.
#[derive(Clone, Copy, Debug)]
pub struct CharCnnInput<'a> {
    pub chars: &'a [f32], // (N, W, E)
    pub filters: &'a [CharConvFilter<'a>],
    pub activation: CharCnnActivation,
    /// N, W, E
    pub n: usize,
    pub w: usize,
    pub e: usize,
}

impl CharCnnInput<'_> {
    /// sum F: the features of all widths together.
    fn total_filters(&self) -> usize {
        self.filters.iter().map(|f| f.filters).sum()
    }

    /// The shape of each width in order, its output columns after those of the widths before
    /// it in the concatenated (N, sum F) features.
    fn width_shapes(&self) -> impl Iterator<Item = CharConvShape> + '_ {
        let total = self.total_filters();
        self.filters.iter().scan(0, move |col, filter| {
            let s = CharConvShape {
                n: self.n,
                chars: self.w,
                embed: self.e,
                width: filter.width,
                filters: filter.filters,
                out_stride: total,
                out_col: *col,
            };
            *col += filter.filters;
            Some(s)
        })
    }
}

/// All widths in order, concatenated along features as AllenNLP's `torch.cat(convs, dim=-1)`.
pub fn char_cnn_forward_cpu(
    out: &mut [f32],    // (N, sum F)
    argmax: &mut [u32], // (N, sum F); width i's (N, F_i) block stored contiguously, in order
    input: &CharCnnInput,
) -> Result<()> {
    let (n, total) = (input.n, input.total_filters());
    let op = "char_cnn_forward_cpu";
    expect_len(op, "out", out.len(), product(op, &[n, total])?)?;
    expect_len(op, "argmax", argmax.len(), n * total)?;
    for (filter, s) in input.filters.iter().zip(input.width_shapes()) {
        let block = &mut argmax[n * s.out_col..n * (s.out_col + s.filters)];
        char_conv_max_forward_cpu(
            out,
            block,
            input.chars,
            filter.weight,
            filter.bias,
            input.activation,
            &s,
        )?;
    }
    Ok(())
}

/// One filter width's gradients, for [`char_cnn_backward_cpu`].
#[derive(Debug)]
pub struct CharConvFilterGrad<'a> {
    pub dweight: &'a mut [f32], // (F, E, K) accumulated
    pub dbias: &'a mut [f32],   // (F) accumulated
}

/// The backward of [`char_cnn_forward_cpu`], width by width.
pub fn char_cnn_backward_cpu(
    dchars: &mut [f32],               // (N, W, E) accumulated
    grads: &mut [CharConvFilterGrad], // one per width, in order
    dout: &[f32],                     // (N, sum F)
    out: &[f32],                      // (N, sum F)
    argmax: &[u32],                   // (N, sum F) as the forward wrote it
    input: &CharCnnInput,
) -> Result<()> {
    let op = "char_cnn_backward_cpu";
    if grads.len() != input.filters.len() {
        return Err(Error::invalid(format!(
            "{op}: {} gradients for {} filter widths",
            grads.len(),
            input.filters.len()
        )));
    }
    let n = input.n;
    expect_len(
        op,
        "argmax",
        argmax.len(),
        product(op, &[n, input.total_filters()])?,
    )?;
    let widths = input.filters.iter().zip(grads.iter_mut());
    for ((filter, grad), s) in widths.zip(input.width_shapes()) {
        let block = &argmax[n * s.out_col..n * (s.out_col + s.filters)];
        char_conv_max_backward_cpu(
            dchars,
            grad.dweight,
            grad.dbias,
            dout,
            out,
            block,
            input.chars,
            filter.weight,
            input.activation,
            &s,
        )?;
    }
    Ok(())
}

// ---- on a device (CPU or GPU) -------------------------------------------------------------

/// The shape of one width from the tensors: chars (N, W, E), weight (F, E, K), out (N, S).
fn shape_of(
    op: &str,
    out: &Tensor,
    chars: &Tensor,
    weight: &Tensor,
    out_col: usize,
) -> Result<CharConvShape> {
    let (n, w, e) = match chars.shape() {
        &[n, w, e] => (n, w, e),
        other => {
            return Err(Error::shape(
                format!("{op}: {}", chars.name()),
                "(N, W, E)",
                other,
            ))
        }
    };
    let (f, k) = match weight.shape() {
        &[f, we, k] if we == e => (f, k),
        other => {
            return Err(Error::shape(
                format!("{op}: {}", weight.name()),
                format!("(F, {e}, K)"),
                other,
            ))
        }
    };
    let stride = match out.shape() {
        &[on, s] if on == n => s,
        other => {
            return Err(Error::shape(
                format!("{op}: {}", out.name()),
                format!("({n}, S)"),
                other,
            ))
        }
    };
    let s = CharConvShape {
        n,
        chars: w,
        embed: e,
        width: k,
        filters: f,
        out_stride: stride,
        out_col,
    };
    s.check(op)?;
    Ok(s)
}

/// One filter width: out[:, out_col..out_col+F] (N, S) = act(max over positions of the
/// convolution of chars (N, W, E) with weight (F, E, K) + bias (F)); argmax (N, F) kept.
pub fn char_conv_max_forward(
    out: &mut Tensor,
    argmax: &mut Tensor<u32>,
    chars: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    activation: CharCnnActivation,
    out_col: usize,
) -> Result<()> {
    let op = "char_conv_max_forward";
    let s = shape_of(op, out, chars, weight, out_col)?;
    argmax.expect_shape(op, &[s.n, s.filters])?;
    bias.expect_shape(op, &[s.filters])?;
    match out.gpu_context().cloned() {
        None => char_conv_max_forward_cpu(
            out.cpu_mut()?,
            argmax.cpu_mut()?,
            chars.cpu()?,
            weight.cpu()?,
            bias.cpu()?,
            activation,
            &s,
        ),
        Some(ctx) => ctx.dispatch(
            &shaders::CHAR_CNN.kernel("char_conv_forward"),
            &[chars.gpu()?, weight.gpu()?, bias.gpu()?],
            &[out.gpu()?, argmax.gpu()?],
            &s.params(activation)?,
            ctx.linear_groups(product(op, &[s.n, s.filters])?, 256),
        ),
    }
}

/// Backward of one width: dchars (N, W, E), dweight (F, E, K), dbias (F) accumulated.
#[allow(clippy::too_many_arguments)]
pub fn char_conv_max_backward(
    dchars: &mut Tensor,
    dweight: &mut Tensor,
    dbias: &mut Tensor,
    dout: &Tensor,
    out: &Tensor,
    argmax: &Tensor<u32>,
    chars: &Tensor,
    weight: &Tensor,
    activation: CharCnnActivation,
    out_col: usize,
) -> Result<()> {
    let op = "char_conv_max_backward";
    let s = shape_of(op, out, chars, weight, out_col)?;
    dout.expect_shape(op, out.shape())?;
    argmax.expect_shape(op, &[s.n, s.filters])?;
    dchars.expect_shape(op, chars.shape())?;
    dweight.expect_shape(op, weight.shape())?;
    dbias.expect_shape(op, &[s.filters])?;
    match dchars.gpu_context().cloned() {
        None => char_conv_max_backward_cpu(
            dchars.cpu_mut()?,
            dweight.cpu_mut()?,
            dbias.cpu_mut()?,
            dout.cpu()?,
            out.cpu()?,
            argmax.cpu()?,
            chars.cpu()?,
            weight.cpu()?,
            activation,
            &s,
        ),
        Some(ctx) => {
            let p = s.params(activation)?;
            ctx.dispatch(
                &shaders::CHAR_CNN.kernel("char_conv_backward_input"),
                &[dout.gpu()?, out.gpu()?, argmax.gpu()?, weight.gpu()?],
                &[dchars.gpu()?],
                &p,
                ctx.linear_groups(product(op, &[s.n, s.chars, s.embed])?, 256),
            )?;
            ctx.dispatch(
                &shaders::CHAR_CNN.kernel("char_conv_backward_weight"),
                &[dout.gpu()?, out.gpu()?, argmax.gpu()?, chars.gpu()?],
                &[dweight.gpu()?, dbias.gpu()?],
                &p,
                ctx.linear_groups(product(op, &[s.filters, s.embed, s.width])?, 256),
            )
        }
    }
}

//! Elementwise ops: add (the residual connection), GELU (BERT's exact erf form and the tanh
//! approximation), tanh, ReLU (DistilBERT's classifier). Kernels: `shaders/elementwise.wgsl`. All tensors of one call have
//! the same shape (any shape; flat element count `n`).

use crate::ops::cpu_parallel::for_each_part;
use crate::ops::lanes;
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::wide_simd_fn;
use crate::Result;

/// Uniform of every kernel in `elementwise.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ElementwiseParams {
    n: u32, // element count
    _pad: [u32; 3],
}

fn params(n: usize) -> ElementwiseParams {
    ElementwiseParams {
        n: n as u32,
        _pad: [0; 3],
    }
}

/// erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), the formula the WGSL kernel uses,
/// so the two backends agree to rounding. The exponential is [`lanes::exp`], so that loops
/// over this function vectorize.
#[inline(always)]
pub fn erf_approx(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let r = 1.0 - poly * lanes::exp(-a * a);
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// tanh through exp of a non-positive argument (no overflow), as in the WGSL kernel.
#[inline(always)]
fn tanh_safe(x: f32) -> f32 {
    let e = lanes::exp(-2.0 * x.abs());
    let r = (1.0 - e) / (1.0 + e);
    if x < 0.0 {
        -r
    } else {
        r
    }
}

const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
const INV_SQRT_2PI: f32 = 0.398_942_3;
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_TANH_C: f32 = 0.044715;

// ---------------------------------------------------------------------------------------
// add (residual)

/// out = a + b. out, a, b: same shape.
pub fn add_forward(out: &mut Tensor, a: &Tensor, b: &Tensor) -> Result<()> {
    a.expect_shape("add_forward", b.shape())?;
    out.expect_shape("add_forward", a.shape())?;
    match out.gpu_context().cloned() {
        None => {
            add_forward_cpu(out.cpu_mut()?, a.cpu()?, b.cpu()?);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::ELEMENTWISE.kernel("add_forward"),
            &[a.gpu()?, b.gpu()?],
            &[out.gpu()?],
            &params(a.numel()),
            ctx.linear_groups(a.numel(), 256),
        ),
    }
}

/// out (n) = a (n) + b (n)
pub fn add_forward_cpu(out: &mut [f32], a: &[f32], b: &[f32]) {
    for_each_part(out, |start, out| {
        let (a, b) = (&a[start..], &b[start..]);
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    });
}

/// da += dout; db += dout. da, db, dout: same shape.
pub fn add_backward(da: &mut Tensor, db: &mut Tensor, dout: &Tensor) -> Result<()> {
    da.expect_shape("add_backward", dout.shape())?;
    db.expect_shape("add_backward", dout.shape())?;
    match da.gpu_context().cloned() {
        None => {
            add_backward_cpu(da.cpu_mut()?, db.cpu_mut()?, dout.cpu()?);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::ELEMENTWISE.kernel("add_backward"),
            &[dout.gpu()?],
            &[da.gpu()?, db.gpu()?],
            &params(dout.numel()),
            ctx.linear_groups(dout.numel(), 256),
        ),
    }
}

/// da (n) += dout (n); db (n) += dout (n)
pub fn add_backward_cpu(da: &mut [f32], db: &mut [f32], dout: &[f32]) {
    for ((a, b), &g) in da.iter_mut().zip(db.iter_mut()).zip(dout) {
        *a += g;
        *b += g;
    }
}

// ---------------------------------------------------------------------------------------
// unary activations: forward y = f(x), backward dx += f'(.) * dy

/// Which activation; the tanh-form GELU is the one GPT-2 uses, BERT uses the erf form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// 0.5 x (1 + erf(x / sqrt 2)) (Hendrycks & Gimpel 2016), BERT's `gelu`.
    Gelu,
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), `gelu_new` / `gelu_pytorch_tanh`.
    GeluTanh,
    Tanh,
    /// max(x, 0); the derivative at 0 is 0, as in torch.
    Relu,
}

impl Activation {
    fn entries(self) -> (&'static str, &'static str) {
        match self {
            Activation::Gelu => ("gelu_forward", "gelu_backward"),
            Activation::GeluTanh => ("gelu_tanh_forward", "gelu_tanh_backward"),
            Activation::Tanh => ("tanh_forward", "tanh_backward"),
            Activation::Relu => ("relu_forward", "relu_backward"),
        }
    }

    /// f(x)
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Gelu => 0.5 * x * (1.0 + erf_approx(x * SQRT_HALF)),
            Activation::GeluTanh => {
                0.5 * x * (1.0 + tanh_safe(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x)))
            }
            Activation::Tanh => tanh_safe(x),
            Activation::Relu => x.max(0.0),
        }
    }

    /// f'(x) expressed through what backward keeps: `saved` is x for GELU and ReLU, y = tanh(x)
    /// for tanh.
    #[inline(always)]
    pub fn derivative(self, saved: f32) -> f32 {
        match self {
            Activation::Gelu => {
                let x = saved;
                let cdf = 0.5 * (1.0 + erf_approx(x * SQRT_HALF));
                let pdf = INV_SQRT_2PI * lanes::exp(-0.5 * x * x);
                cdf + x * pdf
            }
            Activation::GeluTanh => {
                let x = saved;
                let th = tanh_safe(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x));
                let dinner = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_C * x * x);
                0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * dinner
            }
            Activation::Tanh => 1.0 - saved * saved,
            Activation::Relu => {
                if saved > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// y = f(x). y, x: same shape.
pub fn activation_forward(y: &mut Tensor, x: &Tensor, activation: Activation) -> Result<()> {
    y.expect_shape("activation_forward", x.shape())?;
    match y.gpu_context().cloned() {
        None => {
            activation_forward_cpu(y.cpu_mut()?, x.cpu()?, activation);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::ELEMENTWISE.kernel(activation.entries().0),
            &[x.gpu()?],
            &[y.gpu()?],
            &params(x.numel()),
            ctx.linear_groups(x.numel(), 256),
        ),
    }
}

/// y (n) = f(x (n))
pub fn activation_forward_cpu(y: &mut [f32], x: &[f32], activation: Activation) {
    for_each_part(y, |start, y| {
        activation_part(y, x.get(start..).unwrap_or_default(), activation)
    });
}

wide_simd_fn! {
    /// y = f(x) over y's length: one loop per activation, each vectorized on its own.
    fn activation_part(y: &mut [f32], x: &[f32], activation: Activation) {
        match activation {
            Activation::Gelu => forward_with(y, x, Activation::Gelu),
            Activation::GeluTanh => forward_with(y, x, Activation::GeluTanh),
            Activation::Tanh => forward_with(y, x, Activation::Tanh),
            Activation::Relu => forward_with(y, x, Activation::Relu),
        }
    }
}

/// y = f(x), inlined with a constant `f` at each call.
#[inline(always)]
fn forward_with(y: &mut [f32], x: &[f32], f: Activation) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = f.apply(v);
    }
}

/// dx += f'(x) * dy. `saved` is the forward's input x for GELU and ReLU, its output y for tanh.
/// dx, saved, dy: same shape.
pub fn activation_backward(
    dx: &mut Tensor,
    saved: &Tensor,
    dy: &Tensor,
    activation: Activation,
) -> Result<()> {
    saved.expect_shape("activation_backward", dy.shape())?;
    dx.expect_shape("activation_backward", dy.shape())?;
    match dx.gpu_context().cloned() {
        None => {
            activation_backward_cpu(dx.cpu_mut()?, saved.cpu()?, dy.cpu()?, activation);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::ELEMENTWISE.kernel(activation.entries().1),
            &[saved.gpu()?, dy.gpu()?],
            &[dx.gpu()?],
            &params(dy.numel()),
            ctx.linear_groups(dy.numel(), 256),
        ),
    }
}

/// dx (n) += f'(saved (n)) * dy (n)
pub fn activation_backward_cpu(dx: &mut [f32], saved: &[f32], dy: &[f32], activation: Activation) {
    for_each_part(dx, |start, dx| {
        activation_backward_part(
            dx,
            saved.get(start..).unwrap_or_default(),
            dy.get(start..).unwrap_or_default(),
            activation,
        )
    });
}

wide_simd_fn! {
    /// dx += f'(saved) * dy over dx's length, one loop per activation.
    fn activation_backward_part(dx: &mut [f32], saved: &[f32], dy: &[f32], activation: Activation) {
        match activation {
            Activation::Gelu => backward_with(dx, saved, dy, Activation::Gelu),
            Activation::GeluTanh => backward_with(dx, saved, dy, Activation::GeluTanh),
            Activation::Tanh => backward_with(dx, saved, dy, Activation::Tanh),
            Activation::Relu => backward_with(dx, saved, dy, Activation::Relu),
        }
    }
}

/// dx += f'(saved) * dy, inlined with a constant `f` at each call.
#[inline(always)]
fn backward_with(dx: &mut [f32], saved: &[f32], dy: &[f32], f: Activation) {
    for ((d, &s), &g) in dx.iter_mut().zip(saved).zip(dy) {
        *d += f.derivative(s) * g;
    }
}

/// GELU (erf form), BERT's activation: y = gelu(x).
pub fn gelu_forward(y: &mut Tensor, x: &Tensor) -> Result<()> {
    activation_forward(y, x, Activation::Gelu)
}
/// dx += gelu'(x) * dy
pub fn gelu_backward(dx: &mut Tensor, x: &Tensor, dy: &Tensor) -> Result<()> {
    activation_backward(dx, x, dy, Activation::Gelu)
}
/// y = tanh(x)
pub fn tanh_forward(y: &mut Tensor, x: &Tensor) -> Result<()> {
    activation_forward(y, x, Activation::Tanh)
}
/// dx += (1 - y^2) * dy, with y = tanh(x) the forward's output.
pub fn tanh_backward(dx: &mut Tensor, y: &Tensor, dy: &Tensor) -> Result<()> {
    activation_backward(dx, y, dy, Activation::Tanh)
}

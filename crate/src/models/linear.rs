//! A fully connected layer as `torch.nn.Linear`: `y = x W^T + b`, W stored (out, in) as in
//! PyTorch checkpoints, with its backward next to it, and the initialisation transformers gives
//! a new layer (`BertPreTrainedModel._init_weights`: W ~ normal(0, initializer_range), b = 0).
//!
//! W is held in f32 (a parameter: it trains), or compressed in fp16 / bf16 / int8 ([`HalfWeight`]: inference and
//! head-only training, where the layer is frozen; its backward is refused), or, on the CPU, in
//! f32 as the GEMM's packed panels only ([`PackedOnlyWeight`]: an inference-only model, see
//! [`Linear::pack_for_inference`]; frozen until [`Linear::unpack_weight`]). The bias stays f32.

use crate::device::Device;
use crate::ops::dropout::threefry2x32;
use crate::ops::matmul::{
    matmul_backward, matmul_forward_half, matmul_forward_packed, matmul_forward_packed_only,
    HalfWeight, MatmulOptions, PackedOnlyWeight, PackedWeight, WeightDtype,
};
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::gradients::Gradients;
use super::weight_loader::WeightLoader;

/// How a layer's W (out, in) is held.
#[derive(Debug)]
pub enum LinearWeight {
    /// f32: a parameter.
    F32(Tensor),
    /// fp16, bf16 or int8, frozen.
    Half(HalfWeight),
    /// f32 on the CPU, as packed panels only, frozen (inference).
    Packed(PackedOnlyWeight),
}

#[derive(Debug)]
pub struct Linear {
    pub weight: LinearWeight, // (out, in)
    pub bias: Tensor,         // (out)
    /// The CPU matmul's packed panels of an f32 `weight`, made on first use (and after it
    /// changes).
    packed: PackedWeight,
}

const WEIGHT_IS_OUT_BY_IN: MatmulOptions = MatmulOptions {
    trans_a: false,
    trans_b: true,
    alpha: 1.0,
    accumulate: false,
};

impl Linear {
    /// `<module>.weight` (out, in) and `<module>.bias` (out), named `<prefix><module>.*`.
    pub fn load(
        weights: &WeightLoader,
        prefix: &str,
        module: &str,
        out: usize,
        inp: usize,
    ) -> Result<Self> {
        Linear::load_as(weights, prefix, module, out, inp, WeightDtype::Fp32)
    }

    /// [`Linear::load`] with W held in `dtype` (a 16-bit checkpoint tensor of that dtype is
    /// read as it is, without widening; others are converted).
    pub fn load_as(
        weights: &WeightLoader,
        prefix: &str,
        module: &str,
        out: usize,
        inp: usize,
        dtype: WeightDtype,
    ) -> Result<Self> {
        let w = format!("{module}.weight");
        let b = format!("{module}.bias");
        let canonical = format!("{prefix}{w}");
        let weight = match dtype {
            WeightDtype::Fp32 => LinearWeight::F32(weights.load(&w, &canonical, &[out, inp])?),
            half => LinearWeight::Half(weights.load_half(&w, &canonical, [out, inp], half)?),
        };
        Ok(Linear {
            weight,
            bias: weights.load(&b, &format!("{prefix}{b}"), &[out])?,
            packed: PackedWeight::default(),
        })
    }

    /// A new layer named `<name>.weight` / `<name>.bias`: W ~ normal(0, std), b = 0.
    pub fn new_random(
        device: &Device,
        name: &str,
        out: usize,
        inp: usize,
        std: f32,
        seed: u64,
    ) -> Result<Self> {
        Ok(Linear {
            weight: LinearWeight::F32(Tensor::from_vec(
                device,
                &[out, inp],
                normal_values(out * inp, std, seed),
                &format!("{name}.weight"),
            )?),
            bias: Tensor::zeros(device, &[out], &format!("{name}.bias"))?,
            packed: PackedWeight::default(),
        })
    }

    /// (out, in)
    fn shape(&self) -> [usize; 2] {
        match &self.weight {
            LinearWeight::F32(w) => [w.shape()[0], w.shape()[1]],
            LinearWeight::Half(w) => w.shape(),
            LinearWeight::Packed(w) => w.shape(),
        }
    }

    pub fn out_features(&self) -> usize {
        self.shape()[0]
    }

    pub fn in_features(&self) -> usize {
        self.shape()[1]
    }

    /// How W is held.
    pub fn dtype(&self) -> WeightDtype {
        match &self.weight {
            LinearWeight::F32(_) | LinearWeight::Packed(_) => WeightDtype::Fp32,
            LinearWeight::Half(w) => w.dtype(),
        }
    }

    /// Makes a W held compressed (16 bits, int8) or packed only an f32 parameter (exact:
    /// [`HalfWeight::to_f32_tensor`], [`PackedOnlyWeight::unpack`]), so that the layer trains,
    /// with an fp32 master weight, and stays a plain f32 tensor after. Whether it was held so.
    /// An f32 W is left as it is.
    pub async fn widen_to_f32(&mut self) -> Result<bool> {
        let plain = match &self.weight {
            LinearWeight::F32(_) => return Ok(false),
            LinearWeight::Half(half) => half.to_f32_tensor().await?,
            LinearWeight::Packed(packed) => packed.unpack()?,
        };
        self.weight = LinearWeight::F32(plain);
        self.packed = PackedWeight::default();
        Ok(true)
    }

    /// The 16-bit W, if it is one (it is not among [`Linear::parameters`]).
    pub fn half_weight(&self) -> Option<&HalfWeight> {
        match &self.weight {
            LinearWeight::Half(w) => Some(w),
            LinearWeight::F32(_) | LinearWeight::Packed(_) => None,
        }
    }

    /// The packed-only W, if it is one (it is not among [`Linear::parameters`]).
    pub fn packed_only_weight(&self) -> Option<&PackedOnlyWeight> {
        match &self.weight {
            LinearWeight::Packed(w) => Some(w),
            LinearWeight::F32(_) | LinearWeight::Half(_) => None,
        }
    }

    /// y (.., out) = x (.., in) W^T + b
    pub fn forward(&self, y: &mut Tensor, x: &Tensor) -> Result<()> {
        match &self.weight {
            LinearWeight::F32(w) => {
                matmul_forward_packed(y, x, w, Some(&self.bias), WEIGHT_IS_OUT_BY_IN, &self.packed)
            }
            LinearWeight::Half(w) => matmul_forward_half(y, x, w, Some(&self.bias)),
            LinearWeight::Packed(w) => matmul_forward_packed_only(y, x, w, Some(&self.bias)),
        }
    }

    /// A new output tensor (.., out) for input x (.., in), computed.
    pub fn apply(&self, x: &Tensor, name: &str) -> Result<Tensor> {
        let mut shape = x.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = self.out_features();
        }
        let mut y = Tensor::uninit(&x.device(), &shape, name)?;
        self.forward(&mut y, x)?;
        Ok(y)
    }

    /// dx (.., in) += dy W; with `grads`, dW (out, in) += dy^T x and db (out) += sum of dy.
    pub fn backward(
        &self,
        dx: Option<&mut Tensor>,
        dy: &Tensor,
        x: &Tensor,
        grads: Option<&mut Gradients>,
    ) -> Result<()> {
        let weight = match &self.weight {
            LinearWeight::F32(w) => w,
            LinearWeight::Half(w) => return Err(w.dtype().refuse_training(w.name())),
            LinearWeight::Packed(w) => {
                return Err(Error::unsupported(format!(
                    "the backward of {}: the weight is held packed for inference only (CPU); \
                     unpack the model's weights before training its layers",
                    w.name()
                )))
            }
        };
        match grads {
            None => matmul_backward(dx, None, None, dy, x, weight, WEIGHT_IS_OUT_BY_IN),
            Some(grads) => grads.with_weight_and_bias(weight, &self.bias, |dw, db| {
                matmul_backward(dx, Some(dw), Some(db), dy, x, weight, WEIGHT_IS_OUT_BY_IN)
            }),
        }
    }

    /// The f32 parameters: W and b, or only b when W is held in 16 bits (frozen).
    pub fn parameters(&self) -> Vec<&Tensor> {
        let mut p = Vec::with_capacity(2);
        self.push_parameters(&mut p);
        p
    }

    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut p = Vec::with_capacity(2);
        self.push_parameters_mut(&mut p);
        p
    }

    /// [`Linear::parameters`] appended to `out` (not inlined: the models list their layers'
    /// parameters in many places, and each inlined copy would grow the wasm module).
    #[inline(never)]
    pub fn push_parameters<'a>(&'a self, out: &mut Vec<&'a Tensor>) {
        if let LinearWeight::F32(w) = &self.weight {
            out.push(w);
        }
        out.push(&self.bias);
    }

    #[inline(never)]
    pub fn push_parameters_mut<'a>(&'a mut self, out: &mut Vec<&'a mut Tensor>) {
        if let LinearWeight::F32(w) = &mut self.weight {
            out.push(w);
        }
        out.push(&mut self.bias);
    }

    /// (values, bytes held) of a W that is not among [`Linear::parameters`] (16-bit or
    /// packed-only); (0, 0) for an f32 parameter.
    #[inline(never)]
    pub fn frozen_weight_held(&self) -> (usize, u64) {
        match &self.weight {
            LinearWeight::F32(_) => (0, 0),
            LinearWeight::Half(w) => (w.numel(), w.bytes()),
            LinearWeight::Packed(w) => (w.shape()[0] * w.shape()[1], w.bytes()),
        }
    }

    /// Whether W is held as packed panels only ([`Linear::pack_for_inference`]).
    pub fn is_packed_only(&self) -> bool {
        matches!(self.weight, LinearWeight::Packed(_))
    }

    /// An f32 W on the CPU is packed now for the CPU GEMM and its plain copy dropped: the
    /// layer then holds W once instead of twice after its first product (the cache of
    /// [`PackedWeight`]), gives bit-identical outputs and is frozen (not among
    /// [`Linear::parameters`]; its backward is refused) until [`Linear::unpack_weight`] or
    /// [`Linear::widen_to_f32`] (a training run). A GPU, 16-bit or already packed W is left as it is. The panels take the plain tensor's
    /// buffer (`scratch`, kept by the caller for the next layer, holds a copy of its values
    /// meanwhile: [`PackedOnlyWeight::pack`]).
    pub fn pack_for_inference(&mut self, scratch: &mut Vec<f32>) -> Result<()> {
        if !matches!(&self.weight, LinearWeight::F32(w) if !w.is_gpu()) {
            return Ok(());
        }
        // a placeholder for the moment the plain tensor is moved out (no allocation)
        let placeholder =
            LinearWeight::F32(Tensor::from_vec(&Device::Cpu, &[0, 0], Vec::new(), "")?);
        let LinearWeight::F32(plain) = std::mem::replace(&mut self.weight, placeholder) else {
            unreachable!("checked above");
        };
        self.weight = LinearWeight::Packed(PackedOnlyWeight::pack(plain, scratch)?);
        self.packed = PackedWeight::default();
        Ok(())
    }

    /// A packed-only W made a plain f32 parameter again (value for value), for training.
    pub fn unpack_weight(&mut self) -> Result<()> {
        if let LinearWeight::Packed(w) = &self.weight {
            self.weight = LinearWeight::F32(w.unpack()?);
        }
        Ok(())
    }
}

/// `n` values of normal(0, std) from a seeded counter-based generator (Threefry-2x32 + the
/// Box-Muller transform): the same seed gives the same weights on every platform.
pub fn normal_values(n: usize, std: f32, seed: u64) -> Vec<f32> {
    let key = [seed as u32, (seed >> 32) as u32];
    let mut out = Vec::with_capacity(n);
    let mut counter = 0u32;
    while out.len() < n {
        let [a, b] = threefry2x32(key, [counter, 0x6e6f_726d]); // stream "norm"
        counter += 1;
        // u1 in (0, 1], u2 in [0, 1)
        let u1 = (a as f64 + 1.0) / 4_294_967_296.0;
        let u2 = b as f64 / 4_294_967_296.0;
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push((r * theta.cos()) as f32 * std);
        if out.len() < n {
            out.push((r * theta.sin()) as f32 * std);
        }
    }
    out
}

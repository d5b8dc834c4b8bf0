//! Dropout (Srivastava et al., JMLR 2014, "inverted" form as `torch.nn.functional.dropout`):
//! `out = x * keep / (1 - p)`, with the keep mask drawn from a counter-based generator so that
//! the GPU kernel and this CPU twin produce the *same* mask bit for bit, and the backward pass
//! regenerates the mask instead of storing it.
//!
//! Generator: Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror, Shaw, "Parallel random numbers:
//! as easy as 1, 2, 3", SC 2011; the generator JAX uses). It only needs 32-bit add, xor and
//! rotate, which WGSL has. Element `i` of a call reads word `i % 2` of
//! `threefry2x32(key = seed, counter = (i / 2, stream))`; it is kept when that word is
//! `>= threshold = round(p * 2^32)`, so `P(keep) = 1 - p` up to 2^-32.
//! Different dropout sites in one step use different `stream` values with the same seed.

use crate::device::Kernel;
use crate::ops::cpu_parallel::for_each_part;
use crate::ops::length_check::expect_len;
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Threefry-2x32 rotation constants (Random123 `threefry.h`, `R_32x2_*`).
const THREEFRY_ROTATIONS: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
/// Threefish key-schedule parity constant for 32-bit words (Random123 `SKEIN_KS_PARITY32`).
const THREEFRY_PARITY: u32 = 0x1BD1_1BDA;

/// Threefry-2x32-20: encrypts `counter` under `key`; a stateless, counter-based generator.
pub fn threefry2x32(key: [u32; 2], counter: [u32; 2]) -> [u32; 2] {
    let schedule = [key[0], key[1], THREEFRY_PARITY ^ key[0] ^ key[1]];
    let mut x0 = counter[0].wrapping_add(schedule[0]);
    let mut x1 = counter[1].wrapping_add(schedule[1]);
    for round in 0..20u32 {
        x0 = x0.wrapping_add(x1);
        x1 = x1.rotate_left(THREEFRY_ROTATIONS[(round % 8) as usize]) ^ x0;
        if round % 4 == 3 {
            // key injection after every 4 rounds
            let s = round / 4 + 1;
            x0 = x0.wrapping_add(schedule[(s % 3) as usize]);
            x1 = x1
                .wrapping_add(schedule[((s + 1) % 3) as usize])
                .wrapping_add(s);
        }
    }
    [x0, x1]
}

/// One dropout mask: the same value gives the same mask on the CPU and on the GPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutMask {
    /// Probability of zeroing an element, in `[0, 1]`. `1` zeroes everything (as torch does).
    pub probability: f32,
    /// The training run's seed (the Threefry key).
    pub seed: u64,
    /// Which dropout site / step this is (the high counter word); vary it per call.
    pub stream: u32,
}

/// The uniform block of `shaders/dropout.wgsl` (`DropoutParams`), 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct DropoutParams {
    /// number of elements
    pub n: u32,
    /// elements whose random word is below this are dropped
    pub threshold: u32,
    pub key_lo: u32,
    pub key_hi: u32,
    pub stream: u32,
    /// 1 / (1 - p), or 0 when p == 1
    pub scale: f32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl DropoutMask {
    /// Validates the probability and derives the integer threshold and scale both devices use.
    pub fn params(&self, n: usize) -> Result<DropoutParams> {
        let p = self.probability;
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(format!(
                "dropout probability {p} is not in [0, 1]"
            )));
        }
        let n = u32::try_from(n)
            .map_err(|_| Error::invalid(format!("dropout over {n} elements: at most 2^32 - 1")))?;
        // p == 1 keeps every random word (threshold 0) but scales by 0: all zeros, no inf.
        let (threshold, scale) = if p >= 1.0 {
            (0u32, 0.0f32)
        } else {
            let t = (p as f64 * 4_294_967_296.0).round().min(u32::MAX as f64) as u32;
            (t, 1.0 / (1.0 - p))
        };
        Ok(DropoutParams {
            n,
            threshold,
            key_lo: self.seed as u32,
            key_hi: (self.seed >> 32) as u32,
            stream: self.stream,
            scale,
            _pad0: 0,
            _pad1: 0,
        })
    }
}

/// Multiplier of element `i` under `params`: `scale` if kept, `0` if dropped.
fn keep_scale(params: &DropoutParams, i: u32) -> f32 {
    let words = threefry2x32([params.key_lo, params.key_hi], [i / 2, params.stream]);
    if words[(i % 2) as usize] >= params.threshold {
        params.scale
    } else {
        0.0
    }
}

/// `out = x * keep / (1 - p)`.
pub fn dropout_forward_cpu(
    out: &mut [f32], // (N)
    inp: &[f32],     // (N)
    mask: DropoutMask,
) -> Result<()> {
    expect_len("dropout_forward_cpu", "out", out.len(), inp.len())?;
    let params = mask.params(inp.len())?;
    for_each_part(out, |start, out| {
        let inp = &inp[start..start + out.len()];
        for (i, (o, &x)) in out.iter_mut().zip(inp).enumerate() {
            *o = x * keep_scale(&params, (start + i) as u32);
        }
    });
    Ok(())
}

/// `dinp += dout * keep / (1 - p)`, with the mask regenerated from `mask`.
pub fn dropout_backward_cpu(
    dinp: &mut [f32], // (N) accumulated
    dout: &[f32],     // (N)
    mask: DropoutMask,
) -> Result<()> {
    expect_len("dropout_backward_cpu", "dinp", dinp.len(), dout.len())?;
    let params = mask.params(dout.len())?;
    for_each_part(dinp, |start, dinp| {
        let dout = &dout[start..start + dinp.len()];
        for (i, (d, &g)) in dinp.iter_mut().zip(dout).enumerate() {
            *d += g * keep_scale(&params, (start + i) as u32);
        }
    });
    Ok(())
}

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: &shaders::DROPOUT,
        entry,
    }
}

/// `out = x * keep / (1 - p)` on the tensors' device. out, inp: any shape, the same.
pub fn dropout_forward(out: &mut Tensor, inp: &Tensor, mask: DropoutMask) -> Result<()> {
    out.expect_shape("dropout_forward", inp.shape())?;
    match out.gpu_context().cloned() {
        None => dropout_forward_cpu(out.cpu_mut()?, inp.cpu()?, mask),
        Some(ctx) => {
            let params = mask.params(inp.numel())?;
            let groups = ctx.linear_groups(inp.numel().div_ceil(2), 256);
            ctx.dispatch(
                &kernel("dropout_forward"),
                &[inp.gpu()?],
                &[out.gpu()?],
                &params,
                groups,
            )
        }
    }
}

/// `dinp += dout * keep / (1 - p)` on the tensors' device, the mask regenerated from `mask`.
pub fn dropout_backward(dinp: &mut Tensor, dout: &Tensor, mask: DropoutMask) -> Result<()> {
    dinp.expect_shape("dropout_backward", dout.shape())?;
    match dinp.gpu_context().cloned() {
        None => dropout_backward_cpu(dinp.cpu_mut()?, dout.cpu()?, mask),
        Some(ctx) => {
            let params = mask.params(dout.numel())?;
            let groups = ctx.linear_groups(dout.numel().div_ceil(2), 256);
            ctx.dispatch(
                &kernel("dropout_backward"),
                &[dout.gpu()?],
                &[dinp.gpu()?],
                &params,
                groups,
            )
        }
    }
}

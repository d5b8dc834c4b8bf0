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

use crate::ops::cpu_parallel::for_each_part;
use crate::ops::length_check::expect_len;
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::wide_simd_fn;
use crate::{Error, Result};

/// Threefry-2x32 rotation constants (Random123 `threefry.h`, `R_32x2_*`).
const THREEFRY_ROTATIONS: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
/// Threefish key-schedule parity constant for 32-bit words (Random123 `SKEIN_KS_PARITY32`).
const THREEFRY_PARITY: u32 = 0x1BD1_1BDA;

/// Threefry-2x32-20: encrypts `counter` under `key`; a stateless, counter-based generator.
/// Inlined so that loops over many counters vectorize (see [`for_each_keep_scale`]).
#[inline(always)]
pub fn threefry2x32(key: [u32; 2], counter: [u32; 2]) -> [u32; 2] {
    const R: [u32; 8] = THREEFRY_ROTATIONS;
    let schedule = [key[0], key[1], THREEFRY_PARITY ^ key[0] ^ key[1]];
    let mut x0 = counter[0].wrapping_add(schedule[0]);
    let mut x1 = counter[1].wrapping_add(schedule[1]);
    // 20 rounds as 5 groups of 4, each followed by a key injection. Written out (constant
    // rotations, no branch) so that a loop over counters becomes vector code.
    let mut four_rounds = |rotations: [u32; 4], s: u32| {
        for r in rotations {
            x0 = x0.wrapping_add(x1);
            x1 = x1.rotate_left(r) ^ x0;
        }
        x0 = x0.wrapping_add(schedule[(s % 3) as usize]);
        x1 = x1
            .wrapping_add(schedule[((s + 1) % 3) as usize])
            .wrapping_add(s);
    };
    four_rounds([R[0], R[1], R[2], R[3]], 1);
    four_rounds([R[4], R[5], R[6], R[7]], 2);
    four_rounds([R[0], R[1], R[2], R[3]], 3);
    four_rounds([R[4], R[5], R[6], R[7]], 4);
    four_rounds([R[0], R[1], R[2], R[3]], 5);
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

/// Pairs of elements per block of [`for_each_keep_scale`]: 8 Threefry calls side by side,
/// which the compiler turns into vector code (8 u32 lanes in AVX2, 4 in wasm simd128).
const PAIRS_PER_BLOCK: usize = 8;

/// Calls `apply(i, multiplier)` for every element index `i` in `range`, with multiplier
/// `scale` if element `i` is kept and `0` if dropped. Element `i` reads word `i % 2` of the
/// Threefry block of counter `(i / 2, stream)`, as the WGSL kernel does: one call serves two
/// elements.
#[inline(always)]
fn for_each_keep_scale(
    params: &DropoutParams,
    range: std::ops::Range<usize>,
    mut apply: impl FnMut(usize, f32),
) {
    let key = [params.key_lo, params.key_hi];
    let mut pair = range.start / 2;
    let end_pair = range.end.div_ceil(2);
    while pair < end_pair {
        let mut scales = [0.0f32; 2 * PAIRS_PER_BLOCK];
        for (l, two) in scales.chunks_exact_mut(2).enumerate() {
            let words = threefry2x32(key, [(pair + l) as u32, params.stream]);
            for (scale, word) in two.iter_mut().zip(words) {
                *scale = if word >= params.threshold {
                    params.scale
                } else {
                    0.0
                };
            }
        }
        let first = 2 * pair;
        for (j, &scale) in scales.iter().enumerate() {
            let i = first + j;
            if range.contains(&i) {
                apply(i, scale);
            }
        }
        pair += PAIRS_PER_BLOCK;
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
    for_each_part(out, |start, out| dropout_part(out, inp, &params, start));
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
        dropout_backward_part(dinp, dout, &params, start)
    });
    Ok(())
}

wide_simd_fn! {
    /// out = inp * keep / (1 - p) for the elements `start..start + out.len()`.
    fn dropout_part(out: &mut [f32], inp: &[f32], params: &DropoutParams, start: usize) {
        for_each_keep_scale(params, start..start + out.len(), |i, scale| {
            out[i - start] = inp[i] * scale;
        })
    }
}

wide_simd_fn! {
    /// dinp += dout * keep / (1 - p) for the elements `start..start + dinp.len()`.
    fn dropout_backward_part(dinp: &mut [f32], dout: &[f32], params: &DropoutParams, start: usize) {
        for_each_keep_scale(params, start..start + dinp.len(), |i, scale| {
            dinp[i - start] += dout[i] * scale;
        })
    }
}

wide_simd_fn! {
    /// out = inp * keep / (1 - p) for the elements `start..start + out.len()` of a dropout
    /// over `params.n` elements, where `inp` holds just those elements (one block of a larger
    /// tensor: the fused CPU attention's per-head probabilities). The same values as
    /// [`dropout_forward_cpu`] gives for that block.
    pub(crate) fn dropout_block_cpu(out: &mut [f32], inp: &[f32], params: &DropoutParams, start: usize) {
        let inp = &inp[..out.len()];
        for_each_keep_scale(params, start..start + out.len(), |i, scale| {
            out[i - start] = inp[i - start] * scale;
        })
    }
}

wide_simd_fn! {
    /// values *= keep / (1 - p), indexed as [`dropout_block_cpu`]: the backward of a block's
    /// dropout applied to its gradient in place (what [`dropout_backward_cpu`] adds to zeros).
    pub(crate) fn dropout_block_in_place_cpu(values: &mut [f32], params: &DropoutParams, start: usize) {
        for_each_keep_scale(params, start..start + values.len(), |i, scale| {
            values[i - start] *= scale;
        })
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
                &shaders::DROPOUT.kernel("dropout_forward"),
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
                &shaders::DROPOUT.kernel("dropout_backward"),
                &[dout.gpu()?],
                &[dinp.gpu()?],
                &params,
                groups,
            )
        }
    }
}

//! Seeded shuffling, the train / validation split and mini-batches of example indices. The
//! generator is SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number
//! generators", OOPSLA 2014): tiny, seedable, and the same on every platform, so a seed gives
//! the same split natively and in the browser.

use crate::{Error, Result};

/// SplitMix64: one 64-bit state, advanced by a constant, output mixed.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by the multiply-shift method (bias below 2^-32 for the sizes
    /// used here).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in `[lo, hi)`, from 24 random bits (every value an f32 can hold exactly).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    /// `n` values uniform in `[lo, hi)` (random inputs for checks and benchmarks).
    pub fn uniform_values(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    /// Fisher-Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Which examples train and which validate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
}

/// Shuffles `0..n` with `seed` and keeps the last `round(n * fraction)` for validation.
/// `fraction` in `[0, 1)`; at least one training example must remain.
pub fn train_validation_split(n: usize, fraction: f32, seed: u64) -> Result<Split> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::invalid(format!(
            "validation fraction must be in [0, 1), found {fraction}"
        )));
    }
    let validation_count = (n as f64 * fraction as f64).round() as usize;
    if n == 0 || validation_count >= n {
        return Err(Error::invalid(format!(
            "{n} examples leave none to train on with a validation fraction of {fraction}"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed).shuffle(&mut order);
    let validation = order.split_off(n - validation_count);
    Ok(Split {
        train: order,
        validation,
    })
}

/// The mini-batches of one epoch: `indices` shuffled with `(seed, epoch)`, cut into batches of
/// `batch_size` (the last one shorter).
pub fn epoch_batches(
    indices: &[usize],
    batch_size: usize,
    seed: u64,
    epoch: usize,
) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(Error::invalid("batch size must be at least 1"));
    }
    let mut order = indices.to_vec();
    let mut rng = SplitMix64::new(seed ^ (epoch as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    rng.shuffle(&mut order);
    Ok(order.chunks(batch_size).map(<[usize]>::to_vec).collect())
}

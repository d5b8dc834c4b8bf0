//! Head-only training reads the encoder once: each example's feature vector (its pooled /
//! [CLS] hidden state) is computed a single time, kept on the host, and every epoch's batches
//! are gathered from it. No encoder activations or gradients exist during training.

use crate::device::Device;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Features of N examples: one row of `width` values each.
pub struct FeatureCache {
    pub width: usize,
    features: Vec<f32>, // (N, width)
}

impl FeatureCache {
    pub fn new(width: usize) -> Self {
        FeatureCache {
            width,
            features: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.features.len() / self.width.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        (self.features.len() * 4) as u64
    }

    /// Appends the rows of `rows (n, width)`.
    pub fn push_rows(&mut self, rows: &[f32]) -> Result<()> {
        if self.width == 0 || !rows.len().is_multiple_of(self.width) {
            return Err(Error::shape(
                "feature cache: rows",
                format!("(n, {})", self.width),
                rows.len(),
            ));
        }
        self.features.extend_from_slice(rows);
        Ok(())
    }

    pub fn row(&self, index: usize) -> &[f32] {
        &self.features[index * self.width..(index + 1) * self.width]
    }

    /// The rows `indices` as one `(indices.len(), width)` tensor on `device`.
    pub fn gather(&self, device: &Device, indices: &[usize], name: &str) -> Result<Tensor> {
        let n = self.len();
        let mut batch = Vec::with_capacity(indices.len() * self.width);
        for &i in indices {
            if i >= n {
                return Err(Error::invalid(format!(
                    "feature cache: example {i} requested, {n} cached"
                )));
            }
            batch.extend_from_slice(self.row(i));
        }
        Tensor::from_vec(device, &[indices.len(), self.width], batch, name)
    }
}

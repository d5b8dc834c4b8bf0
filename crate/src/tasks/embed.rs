//! Sentence embeddings and their cosine similarities, as sentence-transformers computes them:
//! the last hidden state pooled over each text's tokens (the masked mean, or the [CLS] token),
//! then L2-normalised when asked. A text longer than the model is read in windows whose pooled
//! vectors are averaged before normalising.

use crate::models::RunMode;
use crate::ops::pooling::{cls_pooling_forward, mean_pooling_forward};
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::pipeline::{mask_tensor, Pipeline};
use super::windows::average_per_text;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            other => Err(Error::invalid(format!(
                "pooling must be mean or cls, found {other:?}"
            ))),
        }
    }
}

/// Scales each row of `rows (N, C)` to unit length (a zero row stays zero), as
/// `torch.nn.functional.normalize` (eps 1e-12).
pub fn l2_normalize_rows(rows: &mut [f32], c: usize) {
    for row in rows.chunks_mut(c.max(1)) {
        let norm = row.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        let scale = 1.0 / norm.max(1e-12);
        row.iter_mut().for_each(|x| *x = (*x as f64 * scale) as f32);
    }
}

impl Pipeline {
    /// One embedding per text, `(texts, hidden_size)` row-major.
    pub async fn embed<S: AsRef<str>>(
        &self,
        texts: &[S],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<f32>> {
        let windows = self.windows(texts)?;
        let c = self.hidden_size();
        let device = self.device().clone();
        let mut pooled_windows = vec![0f32; windows.len() * c]; // (W, C)
        let mut pending = Vec::new();
        self.encode_windows_in_batches(&windows, &RunMode::inference(), |batch| {
            let b = batch.input.batch;
            let mut pooled = Tensor::uninit(&device, &[b, c], "pooled")?; // (B, C)
            match pooling {
                Pooling::Mean => {
                    let mask = mask_tensor(&device, &batch.input)?;
                    mean_pooling_forward(&mut pooled, &batch.output.hidden, &mask)?
                }
                Pooling::Cls => cls_pooling_forward(&mut pooled, &batch.output.hidden)?,
            }
            pending.push((batch.windows.clone(), pooled));
            Ok(())
        })
        .await?;
        for (rows, pooled) in pending {
            let values = pooled.to_vec().await?;
            for (i, &w) in rows.iter().enumerate() {
                pooled_windows[w * c..(w + 1) * c].copy_from_slice(&values[i * c..(i + 1) * c]);
            }
        }
        let mut embeddings = average_per_text(&windows, &pooled_windows, c, texts.len())?;
        if normalize {
            l2_normalize_rows(&mut embeddings, c);
        }
        Ok(embeddings)
    }

    /// Cosine similarity of every text of `a` with every text of `b`: `(a.len(), b.len())`
    /// row-major, from mean-pooled embeddings.
    pub async fn similarity<S: AsRef<str>>(&self, a: &[S], b: &[S]) -> Result<Vec<f32>> {
        if a.is_empty() || b.is_empty() {
            return Err(Error::invalid(
                "similarity needs at least one text on each side",
            ));
        }
        let c = self.hidden_size();
        let ea = self.embed(a, Pooling::Mean, true).await?;
        let eb = self.embed(b, Pooling::Mean, true).await?;
        let mut out = Vec::with_capacity(a.len() * b.len());
        for x in ea.chunks(c) {
            for y in eb.chunks(c) {
                let dot: f64 = x.iter().zip(y).map(|(&p, &q)| p as f64 * q as f64).sum();
                out.push(dot as f32);
            }
        }
        Ok(out)
    }
}

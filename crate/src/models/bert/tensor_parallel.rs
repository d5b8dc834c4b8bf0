//! One forward pass split over several engines (the package's CPU workers), each holding a
//! shard of every encoder layer: tensor parallelism, for the calls too small to split by
//! sentences (one text, with a pool of two workers).
//!
//! Every shard computes a contiguous range of the output features of each of the layer's six
//! products (rows of W), and the shards swap their parts four times per layer (an all-gather,
//! through [`ShardExchange`]) so that each holds the whole activation before the next product
//! or LayerNorm:
//!
//! ```text
//! x (B, T, C), the same in every shard
//! q, k, v = query_s(x), key_s(x), value_s(x)      (B, T, Cs)  this shard's heads only
//! ctx_s   = attention(q, k, v, mask)              (B, T, Cs)
//! ctx     = gather(ctx_s)                         (B, T, C)   1st swap
//! a       = gather(attention_output_s(ctx))       (B, T, C)   2nd swap (its rows Cs' of C)
//! h1      = attention_norm(a + x)                 (B, T, C)
//! u       = gather(act(intermediate_s(h1)))       (B, T, I)   3rd swap (rows Is of I)
//! y       = output_norm(gather(output_s(u)) + h1) (B, T, C)   4th swap
//! ```
//!
//! Splitting the output features (and never the sum over input features) keeps every value's
//! arithmetic what one engine does: each output feature is the same dot product over the same
//! inputs in the same order (the GEMM's order does not depend on which columns a call
//! computes), and the attention of a head does not depend on the other heads. So the hidden
//! states are bit-identical to [`BertModel::encode`]'s (tests/rust/models/tensor_parallel.rs).
//! The price is the swaps (four small messages per layer) and a copy of each shard's rows of
//! the layer weights (1/shards of them, made once and kept until the weights change).
//! Inference only: no dropout, nothing saved for a backward.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use crate::ops::attention::{attention_forward_keeping, AttentionSaved};
use crate::ops::elementwise::{activation_forward, add_forward};
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::encoder_input::EncoderInput;
use super::encoder_layer::EncoderLayer;
use super::{BertModel, EncoderOutput};
use crate::models::layer_norm::LayerNorm;
use crate::models::linear::Linear;
use crate::models::RunMode;

/// Which shard this engine computes, of how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardPlan {
    pub index: usize,
    pub count: usize,
}

impl ShardPlan {
    /// Shard `index` of `count`; an error unless `index < count`.
    pub fn new(index: usize, count: usize) -> Result<ShardPlan> {
        if index >= count {
            return Err(Error::invalid(format!(
                "tensor-parallel shard {index} of {count}: the index must be below the count"
            )));
        }
        Ok(ShardPlan { index, count })
    }

    /// Shard `shard`'s part of `units` things (heads, features): contiguous ranges whose sizes
    /// differ by at most one, the larger ones first.
    fn range_of(count: usize, shard: usize, units: usize) -> Range<usize> {
        let (base, extra) = (units / count, units % count);
        let start = shard * base + shard.min(extra);
        start..start + base + usize::from(shard < extra)
    }

    /// This shard's part of `units`.
    fn range(&self, units: usize) -> Range<usize> {
        ShardPlan::range_of(self.count, self.index, units)
    }

    /// The size of every shard's part of `units`, in shard order.
    fn widths(&self, units: usize) -> Vec<usize> {
        (0..self.count)
            .map(|shard| ShardPlan::range_of(self.count, shard, units).len())
            .collect()
    }
}

/// How the shards swap their parts: each call takes this shard's part of one gather (rows of
/// a row-major (rows, width) block) and gives every shard's part of it, in shard order (its
/// own included). Every shard makes the same calls in the same order.
pub trait ShardExchange {
    fn all_gather(
        &self,
        part: Vec<f32>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>>> + '_>>;
}

/// One encoder layer's rows for one shard: its heads' q, k, v, and its ranges of the outputs
/// of the other three products (their biases with them).
#[derive(Debug)]
struct LayerShard {
    query: Linear,            // (Cs, C): this shard's heads
    key: Linear,              // (Cs, C)
    value: Linear,            // (Cs, C)
    attention_output: Linear, // (Cs', C)
    intermediate: Linear,     // (Is, C)
    output: Linear,           // (Cs', I)
    heads: usize,
}

/// Every layer's shard, with the widths of every shard's parts (for the gathers).
#[derive(Debug)]
pub struct TensorShards {
    plan: ShardPlan,
    layers: Vec<LayerShard>,
    /// Every shard's width of the attention context (its heads x head size), in shard order.
    context_widths: Vec<usize>,
    /// Every shard's width of C, in shard order.
    hidden_widths: Vec<usize>,
    /// Every shard's width of I, in shard order.
    intermediate_widths: Vec<usize>,
}

impl LayerShard {
    #[inline(never)]
    fn of(layer: &EncoderLayer, plan: ShardPlan) -> Result<LayerShard> {
        let c = layer.query.out_features();
        let i = layer.intermediate.out_features();
        let head_size = c / layer.heads;
        let heads = plan.range(layer.heads);
        let columns = heads.start * head_size..heads.end * head_size;
        let mut shard = LayerShard {
            query: layer.query.output_rows(columns.clone())?,
            key: layer.key.output_rows(columns.clone())?,
            value: layer.value.output_rows(columns)?,
            attention_output: layer.attention_output.output_rows(plan.range(c))?,
            intermediate: layer.intermediate.output_rows(plan.range(i))?,
            output: layer.output.output_rows(plan.range(c))?,
            heads: heads.len(),
        };
        let mut scratch = Vec::new(); // (see `Linear::pack_for_inference`)
        for linear in [
            &mut shard.query,
            &mut shard.key,
            &mut shard.value,
            &mut shard.attention_output,
            &mut shard.intermediate,
            &mut shard.output,
        ] {
            linear.pack_for_inference(&mut scratch)?;
        }
        Ok(shard)
    }
}

impl BertModel {
    /// Makes (or keeps) this engine's shard of every encoder layer for `plan`. Refused on the
    /// GPU, for compressed (16-bit, int8) layers, and for more shards than heads.
    pub fn prepare_shards(&mut self, plan: ShardPlan) -> Result<()> {
        if self.tensor_shards.as_ref().is_some_and(|s| s.plan == plan) {
            return Ok(());
        }
        self.tensor_shards = None;
        if self.device.is_gpu() {
            return Err(Error::unsupported(
                "tensor-parallel shards on the GPU (they split the CPU path over workers)",
            ));
        }
        let heads = self.layers.first().map_or(0, |layer| layer.heads);
        if plan.count > heads {
            return Err(Error::invalid(format!(
                "{} tensor-parallel shards for {heads} attention heads: at most one shard per head",
                plan.count
            )));
        }
        let layers = (self.layers.iter())
            .map(|layer| LayerShard::of(layer, plan))
            .collect::<Result<Vec<_>>>()?;
        let d = self.dims();
        self.tensor_shards = Some(TensorShards {
            plan,
            layers,
            context_widths: plan
                .widths(heads)
                .iter()
                .map(|h| h * (d.hidden / heads))
                .collect(),
            hidden_widths: plan.widths(d.hidden),
            intermediate_widths: plan.widths(d.intermediate),
        });
        Ok(())
    }

    /// The shards of [`BertModel::prepare_shards`], if any.
    pub fn shard_plan(&self) -> Option<ShardPlan> {
        self.tensor_shards.as_ref().map(|s| s.plan)
    }

    /// Drops the shards (their weights are copies: after the model's weights change they are
    /// out of date).
    pub(crate) fn drop_shards(&mut self) {
        self.tensor_shards = None;
    }

    /// [`BertModel::encode`] for inference, this engine computing its shard of every layer and
    /// swapping parts with the others through `exchange`: the same last hidden state, bit for
    /// bit, in every shard.
    pub async fn encode_sharded(
        &self,
        input: &EncoderInput,
        exchange: &dyn ShardExchange,
    ) -> Result<EncoderOutput> {
        let shards = self.tensor_shards.as_ref().ok_or_else(|| {
            Error::invalid("encode_sharded before prepare_shards: this engine has no shards")
        })?;
        self.check_attention_fits(input)?;
        let mask = self.additive_mask(input)?; // (B, T)
        let (mut x, _) = self.embeddings.forward(input, None, false)?; // (B, T, C)
        for (layer, shard) in self.layers.iter().zip(&shards.layers) {
            x = layer_forward_sharded(layer, shard, shards, &x, &mask, exchange).await?;
        }
        Ok(EncoderOutput {
            hidden: x,
            batch: input.batch,
            seq: input.seq,
            mask,
            mode: RunMode::inference(),
            lowest_trained: self.layers.len(),
            layer_inputs: Vec::new(),
            layer_saved: Vec::new(),
            embeddings_saved: None,
        })
    }
}

/// One layer (see the module's diagram): y (B, T, C) from x (B, T, C) and the additive mask
/// (B, T). The steps between the swaps are plain functions (below), so that only a few tensors
/// live across each swap.
async fn layer_forward_sharded(
    layer: &EncoderLayer,
    shard: &LayerShard,
    shards: &TensorShards,
    x: &Tensor,
    mask: &Tensor,
    exchange: &dyn ShardExchange,
) -> Result<Tensor> {
    let context_part = shard.attention_context(x, mask)?; // (B, T, Cs)
    let context = gather(
        exchange,
        &context_part,
        &shards.context_widths,
        "attention.context",
    )
    .await?; // (B, T, C)
    let a_part = shard.attention_output.apply(&context, "attention_output")?; // (B, T, Cs')
    let a = gather(exchange, &a_part, &shards.hidden_widths, "attention_output").await?; // (B, T, C)
    let h1 = residual_norm(&layer.attention_norm, &a, x, "h1")?; // (B, T, C)
    let act_part = shard.intermediate_act(&h1, layer)?; // (B, T, Is)
    let act = gather(
        exchange,
        &act_part,
        &shards.intermediate_widths,
        "intermediate_act",
    )
    .await?; // (B, T, I)
    let o_part = shard.output.apply(&act, "ffn_output")?; // (B, T, Cs')
    let o = gather(exchange, &o_part, &shards.hidden_widths, "ffn_output").await?; // (B, T, C)
    residual_norm(&layer.output_norm, &o, &h1, "layer_output") // (B, T, C)
}

impl LayerShard {
    /// This shard's heads' attention context (B, T, Cs) of x (B, T, C).
    #[inline(never)]
    fn attention_context(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let device = x.device();
        let &[b, t, _] = x.shape() else {
            return Err(Error::shape(
                "a sharded layer's input",
                "(B, T, C)",
                x.shape(),
            ));
        };
        let q = self.query.apply(x, "q")?; // (B, T, Cs)
        let k = self.key.apply(x, "k")?; // (B, T, Cs)
        let v = self.value.apply(x, "v")?; // (B, T, Cs)
        let cs = q.shape()[2];
        let mut attention = AttentionSaved::new(&device, b, t, cs, self.heads)?;
        let mut context = Tensor::uninit(&device, &[b, t, cs], "attention.context")?; // (B, T, Cs)
                                                                                      // q, k, v move into `attention` (read in place on the CPU)
        attention_forward_keeping(&mut context, &mut attention, [q, k, v], Some(mask), None)?;
        Ok(context)
    }

    /// act(intermediate_s(h1)) (B, T, Is) of h1 (B, T, C).
    #[inline(never)]
    fn intermediate_act(&self, h1: &Tensor, layer: &EncoderLayer) -> Result<Tensor> {
        let pre = self.intermediate.apply(h1, "intermediate")?; // (B, T, Is)
        let mut act = Tensor::uninit(&h1.device(), pre.shape(), "intermediate_act")?; // (B, T, Is)
        activation_forward(&mut act, &pre, layer.activation)?;
        Ok(act)
    }
}

/// norm(sum + residual) (B, T, C), as the layer's own forward adds and normalizes.
#[inline(never)]
fn residual_norm(norm: &LayerNorm, sum: &Tensor, residual: &Tensor, name: &str) -> Result<Tensor> {
    let mut added = Tensor::uninit(&sum.device(), sum.shape(), "residual")?; // (B, T, C)
    add_forward(&mut added, sum, residual)?;
    Ok(norm.forward(&added, name)?.0)
}

#[inline(never)]
/// (.., W) from this shard's (.., widths[index]): every shard's columns side by side, in
/// shard order, row by row.
async fn gather(
    exchange: &dyn ShardExchange,
    part: &Tensor,
    widths: &[usize],
    name: &str,
) -> Result<Tensor> {
    let shape = part.shape();
    let own_width = shape.last().copied().unwrap_or(0);
    let rows = part.numel() / own_width.max(1);
    let parts = exchange.all_gather(part.cpu()?.to_vec()).await?;
    if parts.len() != widths.len() {
        return Err(Error::invalid(format!(
            "tensor-parallel gather of {name}: {} parts came back for {} shards",
            parts.len(),
            widths.len()
        )));
    }
    for (shard, (p, &w)) in parts.iter().zip(widths).enumerate() {
        if p.len() != rows * w {
            return Err(Error::invalid(format!(
                "tensor-parallel gather of {name}: shard {shard}'s part has {} values, expected {rows} rows x {w}",
                p.len()
            )));
        }
    }
    let width: usize = widths.iter().sum();
    let mut full = Vec::with_capacity(rows * width); // (rows, W)
    for r in 0..rows {
        for (p, &w) in parts.iter().zip(widths) {
            full.extend_from_slice(&p[r * w..(r + 1) * w]);
        }
    }
    let mut full_shape = shape.to_vec();
    if let Some(last) = full_shape.last_mut() {
        *last = width;
    }
    Tensor::from_vec(&part.device(), &full_shape, full, name)
}

// How many parameters each freezing policy trains, worked out from a model's config.json (the
// shapes of transformers' BERT and DistilBERT modules), for lab 5's table. The engine trains:
//   head   : the new task head only (DistilBERT's sequence head includes its pre_classifier);
//   top:K  : the head, the top K encoder layers and, for a sequence head read through BERT's
//            pooler ([CLS] pooling), the pooler;
//   all    : everything: embeddings, every layer, the pooler where it is read, the head.
// (crate/src/models/bert/encoder_input.rs `Freeze`, crate/src/models/bert/heads.rs.) The browser test
// checks these counts against the tensors `webnlu train-head --out` / `train-tokens --out` changed.

/** The sizes of a BERT or DistilBERT config: hidden H, intermediate I, layers, vocabulary, positions, type ids. */
export function architecture(config) {
  if (config.model_type === 'distilbert') {
    return { kind: 'distilbert', hidden: config.dim, intermediate: config.hidden_dim, layers: config.n_layers,
      vocab: config.vocab_size, positions: config.max_position_embeddings, types: 0 };
  }
  return { kind: 'bert', hidden: config.hidden_size, intermediate: config.intermediate_size, layers: config.num_hidden_layers,
    vocab: config.vocab_size, positions: config.max_position_embeddings, types: config.type_vocab_size ?? 2 };
}

/** A linear layer's weight and bias. */
const linear = (inputs, outputs) => inputs * outputs + outputs;

/** One encoder layer: query, key, value, output projections; the feed-forward pair; two LayerNorms. */
export function layerParameters({ hidden: h, intermediate: i }) {
  return 4 * linear(h, h) + linear(h, i) + linear(i, h) + 2 * 2 * h;
}

/** The embeddings: words, positions, token types (BERT), and their LayerNorm. */
export function embeddingParameters({ hidden: h, vocab, positions, types }) {
  return (vocab + positions + types) * h + 2 * h;
}

/**
 * The parameter counts of one run: `{ head, layer, pooler, embeddings, total, trainable }` for
 * `task` ('sequence' or 'tokens'), `labels` outputs (1 for regression), `pooled`: whether a
 * sequence head reads BERT's pooler (the [CLS] pooling; not for mean pooling), and `freeze`
 * ('head' | 'top:K' | 'all').
 */
export function trainableParameters(config, { task, labels, pooled, freeze }) {
  const arch = architecture(config);
  const h = arch.hidden;
  const head = task === 'sequence' && arch.kind === 'distilbert' ? linear(h, h) + linear(h, labels) : linear(h, labels);
  const pooler = task === 'sequence' && arch.kind === 'bert' && pooled ? linear(h, h) : 0;
  const layer = layerParameters(arch);
  const embeddings = embeddingParameters(arch);
  const total = embeddings + arch.layers * layer + pooler + head;
  let trainable;
  if (freeze === 'head') trainable = head;
  else if (freeze === 'all') trainable = total;
  else {
    const k = Number(/^top:(\d+)$/.exec(freeze)?.[1]);
    if (!(k >= 1 && k <= arch.layers)) throw new Error(`freeze policy ${freeze}: the model has ${arch.layers} layers (use top:1 … top:${arch.layers})`);
    trainable = head + pooler + k * layer;
  }
  return { head, layer, pooler, embeddings, total, trainable, layers: arch.layers, hidden: h };
}

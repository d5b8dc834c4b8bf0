// A random-weight BertForMaskedLM checkpoint of any shape, written as transformers saves one
// (config.json, model.safetensors with the decoder tied to the word embeddings, vocab.txt,
// tokenizer_config.json), for tests of big shapes that must not be committed.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The words of the vocabulary after the specials (the tests' texts use only these). */
export const WORDS = ['the', 'capital', 'of', 'france', 'is', 'paris', 'a', 'cup', 'tea', '.'];

/** Deterministic values in [-0.035, 0.035) (xorshift32): the std of normal(0, 0.02). */
function randomValues(n, seed) {
  const out = new Float32Array(n);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    out[i] = (state / 4294967296 - 0.5) * 0.0693;
  }
  return out;
}

/** A safetensors file of [name, shape, Float32Array] entries. */
function safetensors(tensors) {
  const header = {};
  let offset = 0;
  for (const [name, shape, values] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + values.byteLength] };
    offset += values.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, Buffer.from(json), ...tensors.map(([, , v]) => Buffer.from(v.buffer, v.byteOffset, v.byteLength))]);
}

/**
 * Writes the checkpoint of `{ vocab, hidden, layers, heads, intermediate, positions }` into `dir`;
 * returns the bytes of model.safetensors.
 */
export function writeRandomBert(dir, { vocab, hidden, layers, heads, intermediate, positions }) {
  const c = hidden;
  let seed = 1;
  const tensors = [];
  const random = (name, shape) => tensors.push([name, shape, randomValues(shape.reduce((a, b) => a * b, 1), seed++)]);
  const norm = (stem) => {
    tensors.push([`${stem}.weight`, [c], new Float32Array(c).fill(1)]);
    tensors.push([`${stem}.bias`, [c], new Float32Array(c)]);
  };
  random('embeddings.word_embeddings.weight', [vocab, c]);
  random('embeddings.position_embeddings.weight', [positions, c]);
  random('embeddings.token_type_embeddings.weight', [2, c]);
  norm('embeddings.LayerNorm');
  for (let l = 0; l < layers; l++) {
    const layer = `encoder.layer.${l}`;
    for (const [module, out, inp] of [
      ['attention.self.query', c, c], ['attention.self.key', c, c], ['attention.self.value', c, c],
      ['attention.output.dense', c, c], ['intermediate.dense', intermediate, c], ['output.dense', c, intermediate],
    ]) {
      random(`${layer}.${module}.weight`, [out, inp]);
      random(`${layer}.${module}.bias`, [out]);
    }
    norm(`${layer}.attention.output.LayerNorm`);
    norm(`${layer}.output.LayerNorm`);
  }
  random('cls.predictions.transform.dense.weight', [c, c]);
  random('cls.predictions.transform.dense.bias', [c]);
  norm('cls.predictions.transform.LayerNorm');
  random('cls.predictions.bias', [vocab]);
  const weights = safetensors(tensors);
  writeFileSync(join(dir, 'model.safetensors'), weights);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    model_type: 'bert', architectures: ['BertForMaskedLM'], vocab_size: vocab, hidden_size: c,
    num_hidden_layers: layers, num_attention_heads: heads, intermediate_size: intermediate, hidden_act: 'gelu',
    max_position_embeddings: positions, type_vocab_size: 2, layer_norm_eps: 1e-12,
  }));
  const words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...WORDS];
  for (let i = 0; words.length < vocab; i++) words.push(`w${i}`);
  writeFileSync(join(dir, 'vocab.txt'), `${words.join('\n')}\n`);
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: true }));
  return weights.length;
}

/** Looking inside a model: `Model.inspect` and `Model.wordVectors` (declarations; re-exported by index.d.ts). */

import type { AbortOptions } from './index.js';

/** Options of `Model.inspect`. */
export interface InspectOptions extends AbortOptions {
  /** A second text: the pair is encoded `[CLS] text [SEP] pair [SEP]`, type ids 0 then 1 (DistilBERT reports them but does not use them, as in transformers). */
  pair?: string;
  /** Also report every selected layer's attention probabilities (default false). */
  attentions?: boolean;
  /**
   * Which hidden states: 'all' (default: L + 1 of them) or indices into the L + 1 (0 = the
   * embeddings' output, K = layer K's output); reported in increasing order, each once.
   */
  layers?: 'all' | number[];
}

/**
 * What `Model.inspect` gives: transformers' `output_hidden_states` / `output_attentions`
 * (eager attention) for one text or pair, as typed arrays with their shapes.
 */
export interface Inspection {
  /** (T) WordPiece tokens, `[CLS]` / `[SEP]` included. */
  tokens: string[];
  /** (2T) `[start, end, ...]` in UTF-16 code units of the token's own text (the `pair`'s for its tokens); 0, 0 for special tokens. */
  offsets: Uint32Array;
  /** (T) 0 for the text, 1 for the pair. */
  typeIds: Uint32Array;
  /** (T) 1 for `[CLS]` / `[SEP]`. */
  specialTokensMask: Uint32Array;
  /** The indices (into the L + 1 hidden states) held by `hiddenStates`, increasing. */
  layers: number[];
  /** (S, T, C) row-major, S = `layers.length`, C = `model.hiddenSize`. */
  hiddenStates: Float32Array;
  /** `[S, T, C]` */
  hiddenStatesShape: number[];
  /** The encoder layers (0-based, transformers' index into `attentions`) of `attentions`: those that produced a selected hidden state K >= 1 (layer K - 1); null without `attentions: true`. */
  attentionLayers: number[] | null;
  /** (A, heads, T, T) post-softmax probabilities, each row summing to 1; null without `attentions: true`. */
  attentions: Float32Array | null;
  /** `[A, heads, T, T]`, or null. */
  attentionsShape: number[] | null;
  /** (T, C) view of hidden state `index` (0 = embeddings), undefined if it was not selected. */
  hiddenState(index: number): Float32Array | undefined;
  /** (heads, T, T) view of layer `layer`'s attention probabilities (0-based), undefined if not reported. */
  attention(layer: number): Float32Array | undefined;
}

/** One word of `Model.wordVectors`. */
export interface WordVector {
  /** The word as written (`text.slice(start, end)`). */
  word: string;
  /** UTF-16 start in the text. */
  start: number;
  /** UTF-16 end, exclusive. */
  end: number;
  /** How many WordPiece tokens it was split into (its vector is their mean). */
  pieces: number;
  /** (hiddenSize) a view into `WordVectors.vectors`. */
  vector: Float32Array;
}

/** What `Model.wordVectors` gives. */
export interface WordVectors {
  /** The words in text order. */
  words: WordVector[];
  /** (W, hiddenSize) row-major, row w = `words[w].vector`. */
  vectors: Float32Array;
  /** `[W, hiddenSize]` */
  shape: [number, number];
  /** The hidden state they come from (0 = embeddings, L = the last layer). */
  layer: number;
}

/** Options of `Model.wordVectors`. */
export interface WordVectorOptions extends AbortOptions {
  /** The hidden state to read (0 = embeddings, ..., L = the last layer, the default). */
  layer?: number;
}

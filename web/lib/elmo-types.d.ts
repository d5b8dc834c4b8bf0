/** ELMo: AllenNLP's biLM, its layers, and training a classifier on them (declarations; re-exported by index.d.ts). */

import type { AbortOptions, Classification, DisposedError, Runtime, WebnluError } from './index.js';
import type { TrainingStep } from './training-types.js';

/** AllenNLP's files of an ELMo biLM, for `Runtime.loadElmo`. */
export interface ElmoFiles {
  /**
   * options.json: its text (a string starting with `{`), the parsed object, a URL (any other
   * string, or a `URL`), or a `File`/`Blob`/bytes.
   */
  options: string | URL | Record<string, unknown> | Blob | ArrayBuffer | ArrayBufferView;
  /** The weights (`.hdf5`): a URL, or a `File`/`Blob`/`ArrayBuffer`/`Uint8Array` (copied, never detached). */
  weights: string | URL | Blob | ArrayBuffer | ArrayBufferView;
}

/**
 * The layers of one `ElmoModel.embed` call, as one array: `layers[((k * B + b) * T + t) * D + j]`
 * is value `j` of word `t` of sentence `b` in layer `k`. Layer 0 is the character-CNN token
 * layer (its vector twice), layers 1.. the biLSTM layers (forward half, then backward half).
 * Sentence boundaries are removed; positions at or beyond `lengths[b]` are zero.
 */
export class ElmoLayers {
  private constructor();
  /** K * B * T * D values, row-major. */
  readonly layers: Float32Array;
  /** `[K, B, T, D]`: layers, sentences, words of the longest sentence, 2 * projection_dim. */
  readonly shape: [number, number, number, number];
  /** Words of each sentence (B entries). */
  readonly lengths: number[];
  /** The D values of word `word` of sentence `sentence` in layer `layer` (a view into `layers`). */
  vector(layer: number, sentence: number, word: number): Float32Array;
  /**
   * One sentence the way the CLI writes it (`webnlu elmo`: `{"layers": [...]}`): K layers,
   * each a list of `lengths[sentence]` per-token vectors (views into `layers`).
   */
  sentence(sentence: number): Float32Array[][];
}

/** A loaded ELMo biLM. Make one with `Runtime.loadElmo`. */
export class ElmoModel {
  private constructor();
  /** The runtime (thread, worker) it lives in. */
  readonly runtime: Runtime;
  /** 'gpu' or 'cpu': where it runs (the runtime's device). */
  readonly device: 'gpu' | 'cpu';
  /** K: the token layer plus one per LSTM layer. */
  readonly numLayers: number;
  /** D: 2 * projection_dim, the width of every vector. */
  readonly outputDim: number;
  /** Bytes of options.json and the weights. */
  readonly bytes: number;
  /** Seconds from `loadElmo` to ready (download included). */
  readonly loadSeconds: number;
  /**
   * The biLM's layers for tokenized sentences (each an array of words; a word longer than the
   * options' `max_characters_per_token` is truncated, as AllenNLP does). By default every
   * sentence starts from a fresh LSTM state. With `{ stateful: true }`, sentence `b` starts from
   * the final LSTM state of sentence `b` of the previous stateful call (AllenNLP's `Elmo`: a
   * long text read in consecutive batches, one row per stream); a stateless call,
   * `resetState()` or `trainClassifier` forget the kept states.
   * @throws WebnluError when `sentences` is not a non-empty `string[][]` (the message names the entry).
   */
  embed(sentences: string[][], options?: { stateful?: boolean } & AbortOptions): Promise<ElmoLayers>;
  /** Forgets the LSTM states kept by stateful `embed` calls. */
  resetState(): Promise<void>;
  /**
   * Trains a sentence classifier on the biLM's features, as `webnlu elmo-train`: each layer
   * averaged over the sentence's words, standardized (mean and deviation of the training
   * sentences), mixed by a learned scalar mix, then a linear head; cross-entropy, AdamW.
   * The examples are shuffled with `seed` and the last `round(validation * n)` held out.
   */
  trainClassifier(examples: ElmoExample[], options?: ElmoTrainOptions): ElmoTrainingRun;
  /** Frees its memory (GPU buffers too); later calls reject with DisposedError. */
  dispose(): void;
  /** Whether `dispose()` was called (later calls reject with DisposedError). */
  readonly disposed: boolean;
}

/** One labelled sentence for `ElmoModel.trainClassifier`: its words, or a text split at whitespace. */
export type ElmoExample =
  | { words: string[]; label: string | number }
  | { text: string; label: string | number };

/**
 * Options of `ElmoModel.trainClassifier`. Apart from `signal` and the callbacks, they go to the
 * engine as they are, where one reader (Rust's `ElmoTrainOptions`, which `webnlu elmo-train`'s
 * flags fill too) fills in the defaults and checks them: a misspelt name (the list of valid ones
 * in the message), a value of the wrong type or out of its range rejects `done` with a
 * WebnluError naming the option, the value and what it must be (e.g. ``unknown training option:
 * unknown field `batch_size`, expected one of `training`, ...``, `batchSize must be a positive
 * integer (>= 1), found 0`).
 */
export interface ElmoTrainOptions extends AbortOptions {
  /**
   * What learns: 'head' (default; the linear head on cached features), 'mix' (the head and the
   * scalar mix), 'end-to-end' (also every biLM weight, in place: the model's `embed` changes).
   * The CLI's `--mix` / `--end-to-end`.
   */
  training?: 'head' | 'mix' | 'end-to-end';
  /** Epochs to run, an integer >= 1. Default 10. */
  epochs?: number;
  /** Sentences per optimizer step, an integer >= 1. Default 32. */
  batchSize?: number;
  /** AdamW learning rate (constant), finite and > 0. Default 3e-3 (the CLI's `--lr`). */
  learningRate?: number;
  /** Seeds the head's initialization, the split and each epoch's order; an integer >= 0. Default 1. */
  seed?: number;
  /**
   * Share of the examples held out (the last `round(validation * n)` of the seeded shuffle), in
   * [0, 1). Default 0.1. The CLI takes counts instead (`--train N --test M`).
   */
  validation?: number;
  /** Called after each epoch. */
  onProgress?: (report: ElmoEpochReport) => void;
  /**
   * Called within each epoch after every engine call of optimizer steps (about a quarter of a
   * second of them; one step per batch) but the epoch's last: `{ phase: 'training', epoch, done,
   * total }`, `done` of the epoch's `total` steps.
   */
  onStep?: (step: TrainingStep) => void;
}

/** One epoch of `ElmoModel.trainClassifier`. */
export interface ElmoEpochReport {
  /** 1 for the first epoch. */
  epoch: number;
  /** Mean cross-entropy over the training sentences (each batch measured before its update). */
  trainLoss: number;
  trainAccuracy: number;
  /** On the held-out sentences after the epoch; null without any. */
  testLoss: number | null;
  testAccuracy: number | null;
  /** The held-out share of the most frequent label (what always guessing it scores). */
  testChance: number | null;
  /** softmax of the scalar mix's weights, one per layer. */
  mixWeights: number[];
  mixGamma: number;
  trainSentences: number;
  heldOutSentences: number;
  /** Wall-clock seconds of the epoch (the features of the training sentences come before the first: see `done`). */
  seconds: number;
}

/** A classifier training on an ELMo model's features. */
export class ElmoTrainingRun {
  private constructor();
  /** Called after each epoch (may be set after the run started). */
  onProgress: ((report: ElmoEpochReport) => void) | null;
  /** Called with the progress inside an epoch (may be set after the run started); see `TrainingStep`. */
  onStep: ((step: TrainingStep) => void) | null;
  /** The reports of the epochs finished so far. */
  readonly epochs: ElmoEpochReport[];
  /** The labels in class order (the order of `scores`), sorted as strings; null until started. */
  readonly labels: string[] | null;
  /**
   * Resolves when the run ends (all epochs, or stopped); rejects with the error that ended it
   * (an AbortError for `signal`: the run stops at the next engine call of steps, or at once while
   * one runs, and is then freed, so `classify` rejects). Never an unhandled rejection.
   */
  readonly done: Promise<{ epochs: ElmoEpochReport[]; stopped: boolean; seconds: number }>;
  /**
   * Ends the run after the running engine call (a few optimizer steps); `done` resolves with the
   * finished epochs and `stopped: true` (the steps of an unfinished epoch stay in the head).
   */
  stop(): void;
  /** Classifies sentences (word arrays, or strings split at whitespace) with the head as trained so far. */
  classify(sentences: Array<string | string[]>): Promise<Classification[]>;
  /** Stops the run and frees the classifier (the biLM stays). */
  dispose(): void;
}

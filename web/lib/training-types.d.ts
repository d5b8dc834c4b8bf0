/** Fine-tuning: the options, progress reports and `TrainingRun` (declarations; re-exported by index.d.ts). */

import type { AbortOptions, Model, WebnluError } from './index.js';

/** The report of one finished training epoch. */
export interface EpochReport {
  /** Epoch number, from 1. */
  epoch: number;
  /** Mean training loss over the epoch. */
  loss: number;
  /** Accuracy on the training examples during the epoch (exact match for multi-label; null for regression). */
  accuracy: number | null;
  /** Accuracy on the validation examples after the epoch (when there are some; null for regression). */
  validationAccuracy?: number | null;
  /** Regression: the mean absolute error on the validation examples. */
  validationMae?: number | null;
  /** Regression: Pearson's correlation of predictions and targets on the validation examples (null without variance). */
  validationPearson?: number | null;
  /** What the run trains and holds for it, as the engine allocated it. */
  costs: TrainingCosts;
  /** Wall-clock seconds of the epoch, measured in JS. */
  seconds: number;
}

/** The parameters a training run trains and the memory it holds for that (`EpochReport.costs`). */
export interface TrainingCosts {
  /** Parameter values that receive gradients (the new head, plus the encoder layers `freeze` opens). */
  trainedParameters: number;
  /** Bytes of the optimizer's state: AdamW's two moments (m and v) of every trained value. */
  optimizerStateBytes: number;
  /** Bytes of the cached encoder features of head-only training (0 otherwise). */
  featureCacheBytes: number;
}

/**
 * Progress inside an epoch (`TrainingOptions.onStep`), for every training run
 * (`trainClassifier`, `trainRegressor`, `trainTokenClassifier`, `trainMaskedLM`, and ELMo's
 * `trainClassifier`: `ElmoTrainOptions.onStep`):
 * - `{ phase: 'encoding', epoch: 1, done, total }`: head-only training's feature pass, which
 *   reads every example through the encoder once before the first epoch's steps (the bulk of such
 *   a run), in chunks of 32 examples; `done` the examples read so far (0 first, `total` last);
 *   sequence classification only;
 * - `{ phase: 'training', epoch, done, total }`: `done` of the epoch's `total` optimizer steps,
 *   after each engine call of steps (about a quarter of a second of them) but the last (then
 *   `onProgress` reports the epoch).
 */
export interface TrainingStep {
  phase: 'encoding' | 'training';
  epoch: number;
  done: number;
  total: number;
}

/**
 * The options of every training run (`trainClassifier`, `trainTokenClassifier`, `trainMaskedLM`).
 * Apart from `signal` and the callbacks, they go to the engine as they are, where one reader
 * (Rust's `TrainOptions`, shared with the CLI's flags) fills in the defaults and checks them: a
 * misspelt name (the list of valid ones in the message), a value of the wrong type or out of its
 * range rejects `done` with a WebnluError naming the option, the value and what it must be. An
 * option of another kind of run (`pooling`, `truncate` or `task` for a token or masked-LM run,
 * `mlmProbability` for a classifier) is refused the same way.
 */
export interface TrainingOptions {
  /**
   * Aborts the run (see `AbortOptions`): a signal already aborted rejects `done` at once; one
   * aborted during the feature pass stops it after the running chunk of examples (the model is
   * then unchanged); during an epoch, `done` rejects at once and the engine finishes its running
   * call (a few optimizer steps; the steps done stay in the model, as with `stop()`) before the
   * run is freed. `done` rejects with the
   * AbortError.
   */
  signal?: AbortSignal;
  /** Called with the progress inside an epoch (see `TrainingStep`); may be set after the run started. */
  onStep?: (step: TrainingStep) => void;
  /** Which weights learn: 'head' (default; only the new classifier, on cached features), 'top:K' (the head and the top K encoder layers, 1 <= K <= the model's layers), 'all'. */
  freeze?: 'head' | 'all' | `top:${number}`;
  /** Epochs to run, >= 1. Default 3. */
  epochs?: number;
  /** Peak AdamW learning rate of the linear schedule, finite and >= 0. Default 1e-3. */
  learningRate?: number;
  /** Examples per micro-batch, >= 1. Default 32. */
  batchSize?: number;
  /**
   * Micro-batches whose gradients add up before one optimizer step (an effective batch of
   * `accumulation * batchSize` without holding its activations at once), >= 1. Default 1.
   */
  accumulation?: number;
  /**
   * The fraction of `examples` held out to measure `validationAccuracy` after each epoch, in
   * [0, 1) (the engine picks them with a shuffle seeded by `seed`). Default 0.1; 0 for none.
   */
  validation?: number;
  /** Seed (an integer >= 0) for the head's initialization, dropout, shuffling and the validation split. Default 42 (as the CLI's `--seed`). */
  seed?: number;
  /** AdamW weight decay (not on biases and LayerNorm weights, as the Hugging Face Trainer), finite and >= 0. Default 0.01. */
  weightDecay?: number;
  /** The share of the optimizer steps over which the learning rate rises linearly from 0, in [0, 1]. Default 0. */
  warmupRatio?: number;
  /** Global-norm gradient clipping, > 0; `null`: none. Default 1. */
  maxGradNorm?: number | null;
}

/** Options of `Model.trainClassifier`. */
export interface TrainOptions extends TrainingOptions {
  /**
   * The features the classifier reads: 'cls' (the [CLS] token, through BERT's pooler) or
   * 'mean' (the mean of the tokens). Default: 'mean' for sentence-transformers models, else 'cls'
   * (`null` too).
   */
  pooling?: 'cls' | 'mean';
  /**
   * What the head predicts (transformers' `problem_type`): 'classification' (default; one class
   * per text, cross-entropy), 'regression' (a number per text, MSE; `predict` reads it) or
   * 'multi_label' (any set of the labels, BCE with logits; `classify` gives a sigmoid per label
   * and `labels`). Saved in config.json.
   */
  task?: 'classification' | 'regression' | 'multi_label';
  /**
   * An example longer than the model's window is read as `classify` reads it: in overlapping
   * windows whose logits are averaged before the loss (and for `validationAccuracy`). `true`:
   * train on its first window only. Default false.
   */
  truncate?: boolean;
  /** Called after each epoch. */
  onProgress?: (report: EpochReport) => void;
}

/** One word-labelled sentence for `Model.trainTokenClassifier`. */
export interface WordExample {
  words: string[];
  /** One label per word, e.g. IOB2 tags (`B-PER`, `I-PER`, `O`). */
  labels: string[];
}

/** Entity-level precision, recall and F1 (seqeval's default mode). */
export interface EntityScore {
  precision: number;
  recall: number;
  f1: number;
  /** The number of true entities. */
  support: number;
}

/** Entity-level scores on the held-out examples, overall (micro average) and per entity type. */
export interface EntityScores {
  overall: EntityScore;
  /** By entity type (`PER` for `B-PER` / `I-PER`). */
  perType: Record<string, EntityScore>;
}

/** The report of one finished epoch of token-classification training. */
export interface TokenEpochReport extends EpochReport {
  /** Mean loss over the epoch's labelled tokens (a word's first WordPiece). `accuracy`, `validationAccuracy`: of the words. */
  loss: number;
  /** Entity-level scores on the held-out examples after the epoch; null without validation. */
  validationEntities: EntityScores | null;
}

/** Options of `Model.trainTokenClassifier`. */
export interface TokenTrainOptions extends TrainingOptions {
  /** Called after each epoch. */
  onProgress?: (report: TokenEpochReport) => void;
}

/** The report of one finished epoch of masked-LM training. */
export interface MaskedLmEpochReport {
  /** Epoch number, from 1. */
  epoch: number;
  /** What the run trains and holds for it (`featureCacheBytes` 0). */
  costs: TrainingCosts;
  /** Mean cross-entropy over the epoch's chosen (corrupted) tokens. */
  loss: number;
  /** Mean cross-entropy over the held-out texts' chosen tokens (one fixed draw); null without validation. */
  validationLoss: number | null;
  /** exp(validationLoss). */
  validationPerplexity: number | null;
  /** Wall-clock seconds of the epoch, measured in JS. */
  seconds: number;
}

/** Options of `Model.trainMaskedLM`. */
export interface MaskedLmTrainOptions extends TrainingOptions {
  /** The share of the tokens chosen for prediction (of them 80% [MASK], 10% random, 10% kept), in (0, 1). Default 0.15. */
  mlmProbability?: number;
  /** Called after each epoch. */
  onProgress?: (report: MaskedLmEpochReport) => void;
}

/** What every epoch report has. */
export interface AnyEpochReport {
  epoch: number;
  loss: number;
  seconds: number;
}

/** The end of a training run. */
export interface TrainingResult<R extends AnyEpochReport = EpochReport> {
  /** One report per finished epoch. */
  epochs: R[];
  /** Whether `stop()` ended it early. */
  stopped: boolean;
  /** Wall-clock seconds of the whole run. */
  seconds: number;
}

/**
 * A fine-tuning in progress. Epochs run one after the other in the engine, a few optimizer steps
 * per engine call; `stop()` ends the run after the running engine call (a few optimizer steps,
 * or a chunk of a head-only sequence classifier's feature pass, with no epoch run). The trained
 * head is then the model's: `classify`.
 */
export class TrainingRun<R extends AnyEpochReport = EpochReport> {
  private constructor();
  /** Called after each epoch (may be set after the run started). */
  onProgress: ((report: R) => void) | null;
  /** Called with the progress inside an epoch (may be set after the run started); see `TrainingStep`. */
  onStep: ((step: TrainingStep) => void) | null;
  /** The reports of the epochs finished so far. */
  readonly epochs: R[];
  /**
   * Resolves when the run ends (all epochs, or stopped); rejects with the error that ended it
   * (an AbortError for `signal`). Never an unhandled rejection: a run nobody awaits fails quietly.
   * Until it settles, every other call on the model (and a second training run) is refused with
   * a WebnluError saying the model is being trained.
   */
  readonly done: Promise<TrainingResult<R>>;
  /**
   * Ends the run after the running engine call (see the class); `done` resolves with the
   * finished epochs and `stopped: true` (the steps of an unfinished epoch stay in the model).
   */
  stop(): void;
}

// TrainingRun (a fine-tuning in progress, epoch after epoch or in steps, with progress, stop and
// abort) and the checks of what the training methods of Model (runtime.js) are given: examples,
// labels and options.
// Types and docs: index.d.ts.

import { throwIfAborted, trainingSignal } from './abort.js';
import { WebnluError } from './errors.js';
import { checkLabelTypes, checkTaskText } from './input-checks.js';
import { holdForTraining, releaseAfter } from './memory.js';
import { cachesFeatures, encodeFeatures, StepwiseRun } from './training-steps.js';

/** The problems `trainClassifier` solves (its `task` option). */
export const TASKS = ['classification', 'regression', 'multi_label'];

/** A label for `task`: a name or class index; a finite number; a list of names without commas. */
function checkLabel(label, task, what) {
  if (task === 'regression') {
    if (typeof label !== 'number' || !Number.isFinite(label)) throw new WebnluError(`${what} must be a finite number for regression, got ${JSON.stringify(label)}`);
  } else if (task === 'multi_label') {
    if (!Array.isArray(label) || label.some((l) => typeof l !== 'string' || l.includes(','))) {
      throw new WebnluError(`${what} must be a list of label names (strings without commas) for multi_label, got ${JSON.stringify(label)}`);
    }
  } else if (typeof label !== 'string' && !Number.isInteger(label)) {
    throw new WebnluError(`${what} must be a string or an integer, got ${JSON.stringify(label)}`);
  }
}

export function checkExamples(examples, name, task = 'classification') {
  if (!Array.isArray(examples) || examples.length === 0) throw new WebnluError(`${name} must be a non-empty array of { text, pair?, label }`);
  examples.forEach((example, i) => {
    if (example === null || typeof example !== 'object') throw new WebnluError(`${name}[${i}] must be { text, pair?, label }`);
    checkTaskText(example.text, `${name}[${i}].text`);
    if (example.pair !== undefined && example.pair !== null) checkTaskText(example.pair, `${name}[${i}].pair`);
    checkLabel(example.label, task, `${name}[${i}].label`);
  });
  if (task === 'classification') checkLabelTypes(examples, name);
}

/** `{ words, labels }` examples with a label per word, or a non-empty string (CoNLL / JSON lines). */
export function checkWordExamples(examples, name) {
  if (typeof examples === 'string') {
    if (examples.trim() === '') throw new WebnluError(`${name} is an empty string (expected CoNLL text or { words, labels } examples)`);
    return;
  }
  if (!Array.isArray(examples) || examples.length === 0) throw new WebnluError(`${name} must be CoNLL text or a non-empty array of { words, labels }`);
  examples.forEach((example, i) => {
    const { words, labels } = example ?? {};
    if (!Array.isArray(words) || !Array.isArray(labels)) throw new WebnluError(`${name}[${i}] must be { words: string[], labels: string[] }`);
    if (words.length !== labels.length) {
      throw new WebnluError(`${name}[${i}] has ${words.length} words but ${labels.length} labels (one label per word)`);
    }
    words.forEach((word, w) => { if (typeof word !== 'string') throw new WebnluError(`${name}[${i}].words[${w}] must be a string`); });
    labels.forEach((label, w) => { if (typeof label !== 'string') throw new WebnluError(`${name}[${i}].labels[${w}] must be a string`); });
  });
}

/**
 * The two defaults the loop reads itself (how many epochs it runs; whether a head-only run encodes
 * its features first): those of `TrainOptions::default()` (crate/src/tasks/train_options.rs),
 * sent with the options so that the engine runs what the loop counts.
 */
const DEFAULT_EPOCHS = 3;
const DEFAULT_FREEZE = 'head';

/**
 * A fine-tuning in progress: one epoch after the other in the engine, `onProgress` after each,
 * until `epochs` are done or `stop()` is called. A run goes by engine calls of a few optimizer
 * steps (and, for a head-only sequence classifier, its feature pass by chunks of examples) with
 * `onStep` between them (training-steps.js); `stop()` takes effect after the running call.
 * `signal` aborts it at the same boundaries, or at
 * once while an engine call runs (the engine finishes that call; the run is then freed): `done`
 * rejects with the AbortError. `done` is never an unhandled rejection.
 */
export class TrainingRun extends StepwiseRun {
  /** The engine the model lives in (the trainer is an engine object of its own). */
  #channel;
  /** The engine operation that makes the trainer ('model.trainer', 'model.tokenTrainer', ...). */
  #op;

  /**
   * @private Use `model.trainClassifier`, `trainTokenClassifier` or `trainMaskedLM`. The
   * training options go to the engine as they are (Rust's `TrainOptions::from_json` reads and
   * checks every one: an unknown name, a wrong type or a value out of range rejects `done`);
   * here only what Rust cannot see: `signal`, `onProgress`, `onStep`.
   */
  constructor(model, channel, op, examples, options) {
    const { signal: givenSignal, onProgress, onStep, ...engineOptions } = options;
    super({ onProgress, onStep });
    const signal = trainingSignal(givenSignal); // already aborted: `done` rejects
    const trainerOptions = { ...engineOptions, epochs: engineOptions.epochs ?? DEFAULT_EPOCHS, freeze: engineOptions.freeze ?? DEFAULT_FREEZE };
    // A function would vanish on its way (JSON, or fail to clone to a worker): sent as a text,
    // Rust names the option (a misspelt callback such as `onEpoch` is an unknown option).
    for (const [name, value] of Object.entries(trainerOptions)) {
      if (typeof value === 'function') trainerOptions[name] = 'a function';
    }
    this.model = model;
    this.#channel = channel;
    this.#op = op;
    holdForTraining(model, this); // other calls on the model are refused until `done` settles (memory.js)
    this.done = releaseAfter(model, this, this.loop(examples, trainerOptions, trainerOptions.epochs, signal));
    this.done.catch(() => {}); // a failure is for whoever awaits `done`, never an unhandled rejection
  }

  async loop(examples, trainerOptions, epochs, signal) {
    throwIfAborted(signal);
    const started = performance.now();
    const handle = await this.model.call(this.#op, { examples, options: trainerOptions }, signal);
    let finished = false;
    try {
      const encoded = !cachesFeatures(this.#op, trainerOptions) || await encodeFeatures(this, this.#channel, handle, examples, trainerOptions, signal);
      // the first epoch's time includes the feature pass; a stop during that pass runs no epoch
      if (encoded) await this.runEpochs(epochs, started, (maxSteps) => this.model.call('trainer.runSteps', { handle, maxSteps }, signal));
      await this.#channel.call('trainer.finish', { handle });
      finished = true;
    } finally {
      if (!finished) {
        // after an abort the engine may still be in the epoch: the run is freed once it is out
        const freed = this.#channel.call('free', { handle }).catch(() => {});
        if (!signal?.aborted) await freed;
      }
    }
    return this.result(started);
  }
}

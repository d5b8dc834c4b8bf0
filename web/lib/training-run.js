// TrainingRun (a fine-tuning in progress, epoch after epoch or in steps, with progress, stop and
// abort) and the checks of what the training methods of Model (runtime.js) are given: examples,
// labels and options.
// Types and docs: index.d.ts.

import { throwIfAborted, trainingSignal } from './abort.js';
import { WebnluError } from './errors.js';
import { checkLabelTypes, checkTaskText } from './input-checks.js';
import { holdForTraining, releaseAfter } from './memory.js';
import { cachesFeatures, encodeFeatures, runEpoch } from './training-steps.js';

const FREEZE = /^(head|all|top:[1-9][0-9]*)$/;

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

/** Options only a sequence classifier takes (a token classifier labels every token, cut to the max length). */
export const SEQUENCE_OPTIONS = ['pooling', 'truncate', 'task'];
/** Options that only one kind of run takes: each run names its own among them. */
const OWN_OPTIONS = [...SEQUENCE_OPTIONS, 'mlmProbability'];
/** The optimizer options passed to the engine as they are, each a number (maxGradNorm: or null). */
const NUMBER_OPTIONS = ['learningRate', 'weightDecay', 'warmupRatio'];

/**
 * A fine-tuning in progress: one epoch after the other in the engine, `onProgress` after each,
 * until `epochs` are done or `stop()` is called. A run goes by engine calls of a few optimizer
 * steps (and, for a head-only sequence classifier, its feature pass by chunks of examples) with
 * `onStep` between them (training-steps.js); `stop()` takes effect after the running call.
 * `signal` aborts it at the same boundaries, or at
 * once while an engine call runs (the engine finishes that call; the run is then freed): `done`
 * rejects with the AbortError. `done` is never an unhandled rejection.
 */
export class TrainingRun {
  /** The engine the model lives in (the trainer is an engine object of its own). */
  #channel;
  /** The engine operation that makes the trainer ('model.trainer', 'model.tokenTrainer', ...). */
  #op;
  #stopped = false;

  /** @private Use `model.trainClassifier`, `model.trainTokenClassifier` or `model.trainMaskedLM`. */
  constructor(model, channel, op, examples, options, ownOptions) {
    const {
      freeze = 'head', epochs = 3, batchSize, validation, seed = 0, accumulation, maxGradNorm, pooling, truncate, onProgress, onStep,
    } = options;
    const signal = trainingSignal(options.signal); // already aborted: `done` rejects
    if (onStep !== undefined && onStep !== null && typeof onStep !== 'function') throw new WebnluError(`onStep must be a function, got ${typeof onStep}`);
    for (const name of OWN_OPTIONS) {
      if (options[name] !== undefined && !ownOptions.includes(name)) {
        throw new WebnluError(name === 'mlmProbability'
          ? 'mlmProbability is an option of trainMaskedLM'
          : `${name} is an option of trainClassifier; token classification and masked-LM training read examples cut to the max length`);
      }
    }
    if (validation !== undefined && !(typeof validation === 'number' && validation >= 0 && validation < 1)) {
      throw new WebnluError(`validation must be the fraction of examples to hold out, in [0, 1), got ${JSON.stringify(validation)}`);
    }
    if (typeof freeze !== 'string' || !FREEZE.test(freeze)) {
      throw new WebnluError(`freeze must be 'head', 'top:K' (K >= 1) or 'all', got ${JSON.stringify(freeze)}`);
    }
    if (!Number.isInteger(epochs) || epochs < 1) throw new WebnluError(`epochs must be a positive integer, got ${epochs}`);
    for (const [name, value] of [['batchSize', batchSize], ['accumulation', accumulation]]) {
      if (value !== undefined && !(Number.isInteger(value) && value >= 1)) throw new WebnluError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    for (const name of NUMBER_OPTIONS) {
      if (options[name] !== undefined && !(typeof options[name] === 'number' && Number.isFinite(options[name]))) {
        throw new WebnluError(`${name} must be a finite number, got ${JSON.stringify(options[name])}`);
      }
    }
    if (maxGradNorm !== undefined && maxGradNorm !== null && !(typeof maxGradNorm === 'number' && maxGradNorm > 0)) {
      throw new WebnluError(`maxGradNorm must be a positive number, or null for no clipping, got ${JSON.stringify(maxGradNorm)}`);
    }
    if (pooling !== undefined && pooling !== 'cls' && pooling !== 'mean') {
      throw new WebnluError(`pooling must be 'cls' or 'mean', got ${JSON.stringify(pooling)}`);
    }
    this.model = model;
    this.onProgress = onProgress ?? null;
    this.onStep = onStep ?? null;
    /** The report of every finished epoch. */
    this.epochs = [];
    const trainerOptions = { freeze, epochs, seed };
    for (const name of [...NUMBER_OPTIONS, 'batchSize', 'accumulation', 'validation', 'maxGradNorm', 'pooling', 'task', 'mlmProbability']) {
      if (options[name] !== undefined) trainerOptions[name] = options[name];
    }
    if (truncate !== undefined) {
      if (typeof truncate !== 'boolean') throw new WebnluError(`truncate must be true or false, got ${JSON.stringify(truncate)}`);
      trainerOptions.truncate = truncate;
    }
    this.#channel = channel;
    this.#op = op;
    holdForTraining(model, this); // other calls on the model are refused until `done` settles (memory.js)
    this.done = releaseAfter(model, this, this.loop(examples, trainerOptions, epochs, signal));
    this.done.catch(() => {}); // a failure is for whoever awaits `done`, never an unhandled rejection
  }

  /**
   * Ends the run after the engine call now running (a few optimizer steps, or a chunk of a
   * head-only sequence classifier's feature pass); `done` then resolves with
   * `stopped: true` and the epochs finished (the steps of an unfinished one stay in the model).
   */
  stop() {
    this.#stopped = true;
  }

  /** Whether `stop()` was called. */
  get stopping() {
    return this.#stopped;
  }

  /** Calls `onStep` with `step`, if there is one. */
  reportStep(step) {
    if (typeof this.onStep === 'function') this.onStep(step);
  }

  async loop(examples, trainerOptions, epochs, signal) {
    throwIfAborted(signal);
    const started = performance.now();
    const handle = await this.model.call(this.#op, { examples, options: trainerOptions }, signal);
    let finished = false;
    try {
      const encoded = !cachesFeatures(this.#op, trainerOptions) || await encodeFeatures(this, this.#channel, handle, examples, trainerOptions, signal);
      for (let epoch = 0; encoded && epoch < epochs && !this.#stopped; epoch++) {
        const epochStarted = epoch === 0 ? started : performance.now(); // the first epoch's time includes the feature pass
        const report = await runEpoch(this, (maxSteps) => this.model.call('trainer.runSteps', { handle, maxSteps }, signal));
        if (report === null) break; // stopped within the epoch
        const withTime = { ...report, seconds: (performance.now() - epochStarted) / 1000 };
        this.epochs.push(withTime);
        if (typeof this.onProgress === 'function') this.onProgress(withTime);
      }
      await this.#channel.call('trainer.finish', { handle });
      finished = true;
    } finally {
      if (!finished) {
        // after an abort the engine may still be in the epoch: the run is freed once it is out
        const freed = this.#channel.call('free', { handle }).catch(() => {});
        if (!signal?.aborted) await freed;
      }
    }
    return { epochs: this.epochs, stopped: this.#stopped, seconds: (performance.now() - started) / 1000 };
  }
}

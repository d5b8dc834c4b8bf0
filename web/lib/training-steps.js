// Progress and cancellation inside a fine-tuning's epochs. Head-only sequence classification
// (the default `freeze: 'head'`) spends most of its first epoch encoding every example once (its
// cached features); TrainingRun runs that pass here, FEATURE_CHUNK examples per engine call, and
// between calls reports `onStep({ phase: 'encoding', ... })`, honours `stop()` and looks at the
// run's AbortSignal. The chunks' rows joined in example order are the rows one pass gives (each
// window is encoded on its own: the worker pool splits this same pass), so the training is the
// same as with the pass inside the engine. Then every run's epochs (sequence and token classifiers,
// masked-LM, ELMo's classifier) go a few optimizer steps per engine call (`runEpoch`:
// `trainer.runSteps` / `elmoTrainer.runSteps`, about STEP_CALL_SECONDS each), with
// `onStep({ phase: 'training', ... })`, stop and abort between calls; the engine computes the
// same epoch as in one call (the `*_in_steps_is_the_epochs_run_whole` tests in tests/rust/).

import { callAbortable, joinParts, nextTask } from './abort.js';
import { WebnluError } from './errors.js';
import { featureItem } from './engine-channel.js';
import { transferablesOf } from './engine.js';

/** Examples encoded per engine call of the feature pass (one report and one look at stop/abort each). */
export const FEATURE_CHUNK = 32;

/** About how long one engine call of optimizer steps should take (the steps per call adapt to it). */
export const STEP_CALL_SECONDS = 0.25;

/** The most optimizer steps one engine call takes. */
const MAX_STEPS_PER_CALL = 256;

/** Whether a run of engine operation `op` with `trainerOptions` caches encoder features (head-only sequence classification). */
export function cachesFeatures(op, trainerOptions) {
  return op === 'model.trainer' && trainerOptions.freeze === 'head';
}

/**
 * The feature pass of head-only run `run` (a TrainingRun) for trainer `handle` in the engine
 * behind `channel`: the features of
 * `examples` computed in chunks and given to the trainer. Resolves to false when `stop()` came
 * before the end (the trainer is then left without features and no epoch runs), else true.
 */
export async function encodeFeatures(run, channel, handle, examples, trainerOptions, signal) {
  const texts = examples.map(featureItem);
  const total = texts.length;
  const parts = [];
  run.reportStep({ phase: 'encoding', epoch: 1, done: 0, total });
  for (let start = 0; start < total; start += FEATURE_CHUNK) {
    if (start > 0) await nextTask(); // a click on stop, an abort, a repaint of the progress
    if (run.stopping) return false;
    const chunk = texts.slice(start, start + FEATURE_CHUNK);
    parts.push(await run.model.call('model.headFeatures', { texts: chunk, options: trainerOptions }, signal));
    run.reportStep({ phase: 'encoding', epoch: 1, done: start + chunk.length, total });
  }
  const features = joinParts(parts);
  await callAbortable(channel, 'trainer.setFeatures', { handle, features }, transferablesOf(features), signal);
  return true;
}

/**
 * The next epoch of run `run` (a TrainingRun or an ElmoTrainingRun: `reportStep`, `stopping`), a
 * few optimizer steps per engine call (`callSteps(maxSteps)`: the first call takes one; later
 * ones as many as took STEP_CALL_SECONDS so far), yielding to the event loop between calls.
 * Resolves to the epoch's report, or to null when `stop()` came before its end (the steps done
 * stay in the model).
 */
export async function runEpoch(run, callSteps) {
  let maxSteps = 1;
  for (;;) {
    const started = performance.now();
    const report = await callSteps(maxSteps);
    if (report.phase !== 'training') return report; // the epoch's report
    run.reportStep(report);
    const perStep = (performance.now() - started) / 1000 / maxSteps;
    maxSteps = Math.max(1, Math.min(MAX_STEPS_PER_CALL, Math.floor(STEP_CALL_SECONDS / Math.max(perStep, 1e-6))));
    await nextTask(); // a click on stop, an abort, a repaint of the progress
    if (run.stopping) return null;
  }
}

/**
 * What TrainingRun and ElmoTrainingRun have in common: the callbacks (`onProgress` after each
 * epoch, `onStep` within one), the reports of the epochs done, `stop()`, and the loop over the
 * epochs, each run by `runEpoch`.
 */
export class StepwiseRun {
  #stopped = false;

  /** Checks and keeps the callbacks of `options`. */
  constructor({ onProgress, onStep }) {
    for (const [name, value] of [['onProgress', onProgress], ['onStep', onStep]]) {
      if (value !== undefined && value !== null && typeof value !== 'function') throw new WebnluError(`${name} must be a function, got ${typeof value}`);
    }
    this.onProgress = onProgress ?? null;
    this.onStep = onStep ?? null;
    /** The report of every finished epoch. */
    this.epochs = [];
  }

  /**
   * Ends the run after the engine call now running (a few optimizer steps, or a chunk of a
   * head-only sequence classifier's feature pass); `done` then resolves with `stopped: true` and
   * the epochs finished (the steps of an unfinished one stay in the model).
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

  /**
   * Up to `epochs` epochs, each by `runEpoch(this, callSteps)`, until `stop()`: each report gets
   * its `seconds` (the first epoch's counted from `started`) and goes to `onProgress`.
   */
  async runEpochs(epochs, started, callSteps) {
    for (let epoch = 0; epoch < epochs && !this.#stopped; epoch++) {
      const epochStarted = epoch === 0 ? started : performance.now();
      const report = await runEpoch(this, callSteps);
      if (report === null) break; // stopped within the epoch
      const withTime = { ...report, seconds: (performance.now() - epochStarted) / 1000 };
      this.epochs.push(withTime);
      if (typeof this.onProgress === 'function') this.onProgress(withTime);
    }
  }

  /** What `done` resolves to: the epochs' reports, whether `stop()` ended it, the seconds since `started`. */
  result(started) {
    return { epochs: this.epochs, stopped: this.#stopped, seconds: (performance.now() - started) / 1000 };
  }
}

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

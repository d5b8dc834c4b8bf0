// What `Runtime.memoryUsage()` reports and how a worker pool joins its workers' figures; the
// guard that keeps a model to one training run and no other call while the run is in progress.
// Types and docs: index.d.ts (MemoryUsage) and README.md ("Memory").

import { WebnluError } from './errors.js';

/** The numeric fields of one engine's `runtime.memoryUsage`, in the order they are summed. */
const FIELDS = ['gpuBytes', 'gpuBuffers', 'cpuPoolBytes', 'wasmBytes'];

/**
 * The figures of a pool's workers as one: each field summed over the workers, and `workers`, the
 * figures of each worker in pool order.
 */
export function sumMemoryUsage(perWorker) {
  const total = {};
  for (const field of FIELDS) total[field] = perWorker.reduce((sum, usage) => sum + usage[field], 0);
  return { ...total, workers: perWorker.map((usage) => ({ ...usage })) };
}

/** The engine operations a training run makes on its model (everything else waits for the run to end). */
const TRAINING_OPS = new Set([
  'model.trainer', 'model.tokenTrainer', 'model.mlmTrainer', 'model.headFeatures',
  'trainer.setFeatures', 'trainer.runEpoch', 'trainer.runSteps', 'trainer.finish',
]);

/**
 * Refuses `op` on `model` while one of its training runs is in progress (a training run changes
 * the weights epoch after epoch: another call would read a half-trained model, and a second run
 * would mix its steps with the first's). Returns the error to reject with, or null.
 */
export function refusedDuringTraining(model, op) {
  const run = trainingRunOf(model);
  if (run === null || TRAINING_OPS.has(op)) return null;
  const what = op.replace(/^model\./, '');
  return new WebnluError(`${what}: this model is being trained (a TrainingRun is in progress); await run.done (or run.stop() and then await run.done) before calling ${what}`);
}

/** The training run in progress on each model (a model absent or mapped to nothing: none). */
const runsInProgress = new WeakMap();

/** The training run in progress on `model`, or null. */
export function trainingRunOf(model) {
  return runsInProgress.get(model) ?? null;
}

/** Marks `model` as training for as long as `run.done` has not settled; refuses a second run. */
export function holdForTraining(model, run) {
  if (runsInProgress.has(model)) {
    throw new WebnluError('this model is already being trained (a TrainingRun is in progress); await its done before starting another');
  }
  runsInProgress.set(model, run);
}

/** Ends `holdForTraining`'s mark once `done` settles; returns `done`. */
export function releaseAfter(model, run, done) {
  const release = () => { if (runsInProgress.get(model) === run) runsInProgress.delete(model); };
  done.then(release, release);
  return done;
}

// Progress within an epoch for the runs other than the sequence classifier's (in Node: the
// page-thread path, DirectChannel, on the CPU): a token classifier, masked-LM fine-tuning and
// ELMo's sentence classifier each go a few optimizer steps per engine call, so `onStep` reports
// `{ phase: 'training', epoch, done, total }` with `done` growing within each epoch (the first
// call of an epoch takes one step), `stop()` in the middle of an epoch ends the run with no
// epoch reported, and a signal aborted in the middle of the second epoch rejects `done` with an
// AbortError after one epoch; the model then trains again. (The engine computes the same epoch
// in steps as whole: the `*_in_steps_is_the_epochs_run_whole` Rust tests.) The worker and the
// pool: tests/browser/abort.test.mjs.
// Models: the committed random BERT checkpoints (2 layers, width 32) and the ELMo fixture.
//
// Needs: pkg/ (make pkg).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${ROOT}pkg/index.js`)) throw new Error(`missing ${ROOT}pkg/index.js: run \`make pkg\``);
const { Runtime } = await import(`${ROOT}pkg/index.js`);

const RANDOM = `${ROOT}tests/fixtures/bert-reference/random`;
const ELMO = `${ROOT}tests/fixtures/models/elmo-fixture`;
const WORDS = ['the', 'man', 'woman', 'river', 'city', 'saw', 'liked', 'old', 'big', 'dog'];

function bertFiles(name) {
  return { files: Object.fromEntries(['config.json', 'vocab.txt', 'model.safetensors'].map((file) => [file, readFileSync(`${RANDOM}/${name}/${file}`)])) };
}

function elmoFiles() {
  return { options: readFileSync(`${ELMO}/options.json`, 'utf8'), weights: readFileSync(`${ELMO}/lm_weights.hdf5`) };
}

/** `count` word lists of the random vocabulary, each different. */
function sentences(count) {
  return Array.from({ length: count }, (_, i) => Array.from({ length: 4 + (i % 4) }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]));
}

const isAbort = (error) => error instanceof DOMException && error.name === 'AbortError';

/**
 * Checks a run kind through `start(options)` (a TrainingRun or an ElmoTrainingRun) whose epochs
 * have `total` optimizer steps: onStep's reports, stop() mid-epoch, abort mid-epoch.
 */
async function checkSteps(start, options, total) {
  const steps = [];
  const result = await start({ ...options, onStep: (step) => steps.push(step) }).done;
  assert.equal(result.epochs.length, 2);
  for (const epoch of [1, 2]) {
    const ofEpoch = steps.filter((s) => s.epoch === epoch);
    assert.deepEqual(ofEpoch[0], { phase: 'training', epoch, done: 1, total });
    assert.ok(ofEpoch.every((s, i) => s.phase === 'training' && s.total === total && s.done < total
      && (i === 0 || s.done > ofEpoch[i - 1].done)), JSON.stringify(ofEpoch));
  }
  // stop() at the first step report: the run ends within its first epoch
  const stopped = start({ ...options, onStep: () => stopped.stop() });
  const stoppedResult = await stopped.done;
  assert.deepEqual([stoppedResult.stopped, stoppedResult.epochs.length], [true, 0]);
  // aborted within the second epoch: done rejects, the first epoch is kept
  const controller = new AbortController();
  const aborted = start({ ...options, signal: controller.signal, onStep: (step) => { if (step.epoch === 2) controller.abort(); } });
  await assert.rejects(aborted.done, isAbort);
  assert.equal(aborted.epochs.length, 1);
  // and the model trains again
  assert.equal((await start({ ...options, epochs: 1 }).done).epochs.length, 1);
}

let rt;

before(async () => {
  rt = await Runtime.create({ device: 'cpu' });
});

after(() => rt?.dispose());

test('token classification: onStep within epochs, stop() and abort mid-epoch', async () => {
  const model = await rt.loadModel(bertFiles('bert-random-ner'));
  const examples = sentences(40).map((words) => ({ words, labels: words.map((w) => (w === 'man' || w === 'woman' ? 'B-PER' : 'O')) }));
  // 36 training examples (4 held out) in batches of 2: 18 steps an epoch
  await checkSteps((options) => model.trainTokenClassifier(examples, options),
    { epochs: 2, batchSize: 2, validation: 0.1, seed: 3, freeze: 'all' }, 18);
  model.dispose();
});

test('masked-LM: onStep within epochs, stop() and abort mid-epoch', async () => {
  const model = await rt.loadModel(bertFiles('bert-random'));
  const texts = sentences(40).map((words) => words.join(' '));
  // 36 training texts in batches of 4: 9 steps an epoch
  await checkSteps((options) => model.trainMaskedLM(texts, options),
    { epochs: 2, batchSize: 4, validation: 0.1, seed: 3, freeze: 'all' }, 9);
  model.dispose();
});

test('ELMo classifier: onStep within epochs, stop() and abort mid-epoch; embed unchanged by head training', async () => {
  const elmo = await rt.loadElmo(elmoFiles());
  const examples = sentences(40).map((words, i) => ({ words, label: i % 3 === 0 ? 'x' : 'y' }));
  const probe = [['the', 'old', 'man'], ['a', 'big', 'river']];
  const before = await elmo.embed(probe);
  // 36 training sentences (4 held out) in batches of 4: 9 steps an epoch
  await checkSteps((options) => elmo.trainClassifier(examples, options),
    { epochs: 2, batchSize: 4, validation: 0.1, seed: 3, training: 'mix' }, 9);
  assert.deepEqual(Array.from((await elmo.embed(probe)).layers), Array.from(before.layers));
  elmo.dispose();
});

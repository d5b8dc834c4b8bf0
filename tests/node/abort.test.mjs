// Cancellation in Node (the page-thread path, DirectChannel, on the CPU): the `signal` option of
// every asynchronous method. A signal already aborted rejects at once with a DOMException named
// AbortError (the signal's own reason when it is one); a signal aborted during a long list stops
// the engine between its chunks (the next call comes long before the whole list would have
// been done) and the model then gives exactly what it gave before; training aborted in the
// feature pass (from `onStep`) or between epochs rejects `done` with AbortError and the model
// then trains exactly as a fresh copy does; `stop()` takes effect within the feature pass;
// `onStep` counts the examples encoded; a `done` nobody awaits never makes an unhandled
// rejection; within an epoch, `onStep` counts the optimizer steps and stop() / abort take effect
// between its engine calls. The browser paths (worker, pool, GPU): tests/browser/abort.test.mjs.
// Models: the committed random BertForSequenceClassification (2 layers, width 32) and the
// ELMo fixture.
//
// Needs: pkg/ (make pkg).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${ROOT}pkg/index.js`)) throw new Error(`missing ${ROOT}pkg/index.js: run \`make pkg\``);
const { Runtime, WebnluError } = await import(`${ROOT}pkg/index.js`);

const CLASSIFIER = `${ROOT}tests/fixtures/bert-reference/random/bert-random-classifier`;
const ELMO = `${ROOT}tests/fixtures/models/elmo-fixture`;
const WORDS = ['the', 'man', 'woman', 'river', 'city', 'saw', 'liked', 'old', 'big', 'dog'];

function classifierFiles() {
  return { files: Object.fromEntries(['config.json', 'vocab.txt', 'model.safetensors'].map((name) => [name, readFileSync(`${CLASSIFIER}/${name}`)])) };
}

function elmoFiles() {
  return { options: readFileSync(`${ELMO}/options.json`, 'utf8'), weights: readFileSync(`${ELMO}/lm_weights.hdf5`) };
}

/** `count` short texts of the random model's vocabulary, each different. */
function texts(count) {
  return Array.from({ length: count }, (_, i) => Array.from({ length: 4 + (i % 5) }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]).join(' '));
}

function examples(count) {
  return texts(count).map((text, i) => ({ text, label: i % 3 === 0 ? 'a' : 'b' }));
}

const isAbort = (error) => error instanceof DOMException && error.name === 'AbortError';

let rt;
let model;

before(async () => {
  rt = await Runtime.create({ device: 'cpu' });
  model = await rt.loadModel(classifierFiles());
});

after(() => rt?.dispose());

test('a signal already aborted rejects every method at once with an AbortError', async () => {
  const signal = AbortSignal.abort();
  const elmo = await rt.loadElmo(elmoFiles());
  const calls = {
    loadModel: () => rt.loadModel(classifierFiles(), { signal }),
    loadElmo: () => rt.loadElmo(elmoFiles(), { signal }),
    loadTokenizer: () => rt.loadTokenizer(classifierFiles(), { signal }),
    fillMask: () => model.fillMask('the [MASK] man', { signal }),
    embed: () => model.embed(['the man'], { signal }),
    similarity: () => model.similarity(['the man'], ['a dog'], { signal }),
    'similarity(a, options)': () => model.similarity(['the man'], { signal }),
    classify: () => model.classify(['the man'], { signal }),
    classifyTokens: () => model.classifyTokens(['the man'], { signal }),
    inspect: () => model.inspect('the man', { signal }),
    wordVectors: () => model.wordVectors('the man', { signal }),
    nextSentence: () => model.nextSentence('the man', 'a dog', { signal }),
    predict: () => model.predict(['the man'], { signal }),
    save: () => model.save({ signal }),
    trainClassifier: () => model.trainClassifier(examples(4), { signal }).done,
    trainRegressor: () => model.trainRegressor([{ text: 'the man', label: 1 }], { signal }).done,
    trainTokenClassifier: () => model.trainTokenClassifier([{ words: ['the'], labels: ['O'] }], { signal }).done,
    trainMaskedLM: () => model.trainMaskedLM(['the man'], { signal }).done,
    'elmo.embed': () => elmo.embed([['the', 'man']], { signal }),
    'elmo.trainClassifier': () => elmo.trainClassifier([{ text: 'a b', label: 'x' }], { signal }).done,
  };
  for (const [name, call] of Object.entries(calls)) {
    await assert.rejects(call(), isAbort, `${name} did not reject with an AbortError`);
  }
  // the signal's reason when it is an AbortError; else a new one that names the reason
  const mine = new DOMException('stopped by the test', 'AbortError');
  await assert.rejects(model.embed(['the man'], { signal: AbortSignal.abort(mine) }), (error) => error === mine);
  await assert.rejects(model.classify(['the man'], { signal: AbortSignal.abort('user left') }),
    (error) => isAbort(error) && /user left/.test(error.message));
  // not a signal: a WebnluError, before anything runs
  await assert.rejects(model.embed(['the man'], { signal: 'no' }), WebnluError);
  assert.throws(() => model.trainClassifier(examples(4), { signal: {} }), WebnluError);
  elmo.dispose();
});

test('a signal aborted during a long list stops the engine early; the model then gives the same results', async () => {
  const few = texts(5);
  const before = { classify: await model.classify(few), embed: await model.embed(few), similarity: await model.similarity(few) };
  const many = texts(2560); // 80 chunks of 32

  let started = performance.now();
  await model.embed(many);
  const whole = performance.now() - started;

  for (const run of [(signal) => model.embed(many, { signal }), (signal) => model.classify(many, { signal }),
    (signal) => model.similarity(many, few, { signal })]) {
    const controller = new AbortController();
    started = performance.now();
    const aborted = run(controller.signal);
    setTimeout(() => controller.abort(), 0); // runs at the engine's first yield, after one chunk
    await assert.rejects(aborted, isAbort);
    const next = await model.classify(few); // queued behind the aborted call: it waits for it to stop
    const elapsed = performance.now() - started;
    assert.deepEqual(next, before.classify);
    // One chunk of 80 and a small call: far less than the whole list (generous for a loaded machine).
    assert.ok(elapsed < whole / 3, `the aborted call took ${elapsed.toFixed(0)} ms, the whole list ${whole.toFixed(0)} ms`);
  }
  assert.deepEqual(await model.embed(few), before.embed);
  assert.deepEqual(await model.similarity(few), before.similarity);
  // a list given with a signal (run in chunks) gives what it gives without one, bit for bit
  const some = texts(70);
  assert.deepEqual(await model.embed(some, { signal: new AbortController().signal }), await model.embed(some));
  assert.deepEqual(await model.classify(some, { signal: new AbortController().signal }), await model.classify(some));
});

test('training: onStep reports the feature pass; abort there or between epochs rejects done; then the model trains as a fresh copy', async () => {
  const data = examples(96); // 3 chunks of 32 in the feature pass
  const options = { epochs: 2, batchSize: 8, seed: 3, learningRate: 0.05 };
  const fresh = await rt.loadModel(classifierFiles());
  const steps = [];
  const expected = await fresh.trainClassifier(data, { ...options, onStep: (step) => steps.push(step) }).done;
  assert.deepEqual(steps.filter((s) => s.phase === 'encoding').map((s) => [s.epoch, s.done, s.total]),
    [[1, 0, 96], [1, 32, 96], [1, 64, 96], [1, 96, 96]]);
  // the optimizer steps: 87 training examples (9 held out) in batches of 8, 11 steps an epoch;
  // the first call of an epoch takes one step, so each epoch reports at least step 1 of 11
  const training = steps.filter((s) => s.phase === 'training');
  for (const epoch of [1, 2]) {
    const ofEpoch = training.filter((s) => s.epoch === epoch);
    assert.deepEqual(ofEpoch[0], { phase: 'training', epoch, done: 1, total: 11 });
    assert.ok(ofEpoch.every((s, i) => s.total === 11 && s.done < 11 && (i === 0 || s.done > ofEpoch[i - 1].done)), JSON.stringify(ofEpoch));
  }
  const expectedScores = await fresh.classify(texts(6));
  fresh.dispose();

  const copy = await rt.loadModel(classifierFiles());
  // aborted in the feature pass: the model is not touched
  const inPass = new AbortController();
  const seen = [];
  const passRun = copy.trainClassifier(data, { ...options, signal: inPass.signal, onStep: (step) => { seen.push(step.done); if (step.done === 32) inPass.abort(); } });
  await assert.rejects(passRun.done, isAbort);
  assert.deepEqual(seen, [0, 32]);
  assert.equal(passRun.epochs.length, 0);
  // stop() in the feature pass: done resolves, no epoch
  const stopped = copy.trainClassifier(data, { ...options, onStep: (step) => { if (step.done === 32) stopped.stop(); } });
  const result = await stopped.done;
  assert.equal(result.stopped, true);
  assert.equal(result.epochs.length, 0);
  // then a normal run trains exactly as on the fresh copy
  const after = await copy.trainClassifier(data, options).done;
  assert.deepEqual(after.epochs.map(({ seconds, ...e }) => e), expected.epochs.map(({ seconds, ...e }) => e));
  assert.deepEqual(await copy.classify(texts(6)), expectedScores);

  // within an epoch's steps (freeze 'all'): stop() ends the run after the running call, abort
  // rejects done; the epoch is not reported; the model works and trains again
  const stoppedInEpoch = copy.trainClassifier(data, { ...options, freeze: 'all',
    onStep: (step) => { if (step.phase === 'training') stoppedInEpoch.stop(); } });
  const stoppedResult = await stoppedInEpoch.done;
  assert.deepEqual([stoppedResult.stopped, stoppedResult.epochs.length], [true, 0]);
  const inSteps = new AbortController();
  const stepRun = copy.trainClassifier(data, { ...options, freeze: 'all', signal: inSteps.signal,
    onStep: (step) => { if (step.phase === 'training' && step.epoch === 2) inSteps.abort(); } });
  await assert.rejects(stepRun.done, isAbort);
  assert.equal(stepRun.epochs.length, 1);

  // aborted between epochs (from onProgress): done rejects, the epochs done are kept
  const between = new AbortController();
  const epochRun = copy.trainClassifier(data, { ...options, epochs: 3, freeze: 'all', signal: between.signal, onProgress: () => between.abort() });
  await assert.rejects(epochRun.done, isAbort);
  assert.equal(epochRun.epochs.length, 1);
  // the model still works, and trains again
  assert.equal((await copy.classify(texts(3))).length, 3);
  assert.equal((await copy.trainClassifier(data, { ...options, epochs: 1 }).done).epochs.length, 1);
  copy.dispose();
});

test('ELMo: training aborted between epochs rejects done; embed then gives what it gave before', async () => {
  const elmo = await rt.loadElmo(elmoFiles());
  const sentences = [['the', 'old', 'man'], ['a', 'big', 'river', 'ran']];
  const before = await elmo.embed(sentences);
  const controller = new AbortController();
  const run = elmo.trainClassifier(Array.from({ length: 12 }, (_, i) => ({ words: sentences[i % 2], label: i % 2 ? 'x' : 'y' })),
    { epochs: 5, signal: controller.signal, onProgress: () => controller.abort() });
  await assert.rejects(run.done, isAbort);
  assert.equal(run.epochs.length, 1);
  const again = await elmo.embed(sentences);
  assert.deepEqual(Array.from(again.layers), Array.from(before.layers));
  elmo.dispose();
});

test('a TrainingRun whose done is never awaited makes no unhandled rejection (failed or aborted)', async () => {
  const unhandled = [];
  const onUnhandled = (reason) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    // A model takes one run at a time (the others are refused while one is in progress), so
    // each run is let end before the next starts: by watching the model, never by awaiting done.
    const ended = async () => { while (model.training) await new Promise((resolve) => setTimeout(resolve, 5)); };
    // fails in the engine: this checkpoint has no masked-LM head
    model.trainMaskedLM(texts(4), { epochs: 1 });
    await ended();
    const controller = new AbortController();
    model.trainClassifier(examples(8), { epochs: 3, freeze: 'all', signal: controller.signal, onProgress: () => controller.abort() });
    await ended();
    model.trainClassifier(examples(8), { signal: AbortSignal.abort() });
    await ended();
    const elmo = await rt.loadElmo(elmoFiles());
    elmo.trainClassifier([{ text: 'a b', label: 'x' }], { signal: AbortSignal.abort() });
    await model.classify(['the man']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    elmo.dispose();
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  assert.deepEqual(unhandled.map(String), []);
});

// Cancellation in real Chromium, on every path: the page's thread on the GPU (SwiftShader) and
// on the CPU, one worker (`worker: true, threads: 1`), and the CPU pool (`threads: 2`). In each:
// a signal already aborted rejects loadModel, embed, classify, fillMask, similarity, inspect and
// the training runs with a DOMException named AbortError; a signal aborted during a long list
// rejects with AbortError and the engine stops early (the next call is answered long before the
// whole list would be done), after which the model gives exactly what it gave before; loadModel
// aborted from its progress callback rejects and a normal load then works; head-only training
// aborted in its feature pass (from `onStep`) rejects `done`, and the model then trains exactly
// as a fresh copy; training aborted within an epoch's steps (a sequence classifier's and a token
// classifier's) or between epochs rejects `done`;
// and runs whose `done` nobody awaits (failed or aborted) fire no `unhandledrejection`. Model:
// the committed random BertForSequenceClassification (2 layers, width 32).
//
// Needs: pkg/ (make pkg), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'make pkg']]);

const REFERENCE = `${ROOT}tests/fixtures/bert-reference/random`;

let session;
let page;
const errors = [];
const notFound = [];

before(async () => {
  session = await openSession({ mounts: [['/reference/', REFERENCE]] });
  page = await openHarnessPage(session, errors, notFound);
});

after(() => closeSession(session));

/**
 * Everything the test checks on one runtime (`options`), run in the page. `long`: the texts of
 * the list aborted during its run; `trainingExamples`: of the runs aborted in the feature pass,
 * at the `onStep` of `abortAtExample` examples read; `compareTraining`: train a fresh copy too,
 * abort embed as well as classify, and time the whole list (the CPU: SwiftShader runs this model
 * at about 0.15 s a text, so the GPU run is kept short).
 */
async function abortEverywhere({ options, long, trainingExamples, compareTraining, abortAtExample }) {
  const { Runtime } = window.webnlu;
  const WORDS = ['the', 'man', 'woman', 'river', 'city', 'saw', 'liked', 'old', 'big', 'dog'];
  const texts = (count) => Array.from({ length: count }, (_, i) => Array.from({ length: 4 + (i % 5) }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]).join(' '));
  const examples = (count) => texts(count).map((text, i) => ({ text, label: i % 3 === 0 ? 'a' : 'b' }));
  const SOURCE = '/reference/bert-random-classifier/';
  const problems = [];
  const unhandled = [];
  const onUnhandled = (event) => unhandled.push(String(event.reason));
  window.addEventListener('unhandledrejection', onUnhandled);
  const isAbort = (error) => error instanceof DOMException && error.name === 'AbortError';
  const expectAbort = async (name, promise) => {
    try {
      await promise;
      problems.push(`${name}: resolved`);
    } catch (error) {
      if (!isAbort(error)) problems.push(`${name}: ${error?.name}: ${error?.message}`);
    }
  };
  const same = (name, a, b) => { if (JSON.stringify(a) !== JSON.stringify(b)) problems.push(`${name}: ${JSON.stringify(a).slice(0, 200)}, expected ${JSON.stringify(b).slice(0, 200)}`); };
  const rows = (list) => list.map((row) => Array.from(row));

  const rt = await Runtime.create(options);
  const model = await rt.loadModel(SOURCE);
  const few = texts(5);
  const before = { classify: await model.classify(few), embed: rows(await model.embed(few)) };

  // already aborted: at once
  const signal = AbortSignal.abort();
  await expectAbort('loadModel', rt.loadModel(SOURCE, { signal }));
  await expectAbort('embed', model.embed(few, { signal }));
  await expectAbort('classify', model.classify(few, { signal }));
  await expectAbort('fillMask', model.fillMask('the [MASK]', { signal }));
  await expectAbort('similarity', model.similarity(few, { signal }));
  await expectAbort('inspect', model.inspect('the man', { signal }));
  await expectAbort('trainClassifier', model.trainClassifier(examples(4), { signal }).done);

  // during a long list: rejected, and the engine stopped early
  const many = texts(long);
  let started = performance.now();
  if (compareTraining) await model.classify(many);
  const whole = compareTraining ? performance.now() - started : null;
  const timings = [];
  const during = [['classify', (s) => model.classify(many, { signal: s })], ['embed', (s) => model.embed(many, { signal: s })]];
  for (const [name, run] of compareTraining ? during : during.slice(0, 1)) {
    const controller = new AbortController();
    started = performance.now();
    const aborted = run(controller.signal);
    setTimeout(() => controller.abort(), 0);
    await expectAbort(`${name} during`, aborted);
    const rejectedAfter = performance.now() - started;
    same(`classify after ${name}`, await model.classify(few), before.classify);
    timings.push({ name, rejectedAfter, nextAnsweredAfter: performance.now() - started });
  }
  same('embed', rows(await model.embed(few)), before.embed);

  // loadModel aborted once its files are fetched (from onProgress): rejected; a load then works
  const loading = new AbortController();
  await expectAbort('loadModel during', rt.loadModel(SOURCE, {
    signal: loading.signal,
    onProgress: (p) => { if (p.file === 'model.safetensors' && p.loaded === p.total) loading.abort(); },
  }));
  const reloaded = await rt.loadModel(SOURCE);
  same('a model loaded after the aborted load', await reloaded.classify(few), before.classify);
  reloaded.dispose();

  // training: aborted in the feature pass, then trained as a fresh copy would be
  const data = examples(trainingExamples);
  const trainOptions = { epochs: compareTraining ? 2 : 1, batchSize: 8, seed: 3, learningRate: 0.05 };
  const inPass = new AbortController();
  const steps = [];
  const passRun = model.trainClassifier(data, { ...trainOptions, signal: inPass.signal, onStep: (step) => { steps.push(step.done); if (step.done === abortAtExample) inPass.abort(); } });
  await expectAbort('trainClassifier in the feature pass', passRun.done);
  same('steps before the abort', steps, abortAtExample === 0 ? [0] : [0, abortAtExample]);
  if (compareTraining) {
    const trained = (await model.trainClassifier(data, trainOptions).done).epochs.map((e) => [e.loss, e.accuracy, e.validationAccuracy]);
    const fresh = await rt.loadModel(SOURCE);
    const freshSteps = [];
    const expected = (await fresh.trainClassifier(data, { ...trainOptions, onStep: (step) => { if (step.phase === 'encoding') freshSteps.push(step.done); } }).done).epochs.map((e) => [e.loss, e.accuracy, e.validationAccuracy]);
    same('training after the aborted run', trained, expected);
    same('onStep', freshSteps, Array.from({ length: Math.ceil(trainingExamples / 32) + 1 }, (_, i) => Math.min(32 * i, trainingExamples)));
    same('classify after training', await model.classify(few), await fresh.classify(few));
    fresh.dispose();
  }
  // within an epoch's optimizer steps (freeze 'all': 10 steps of 4 examples, the first call takes one)
  const inSteps = new AbortController();
  const stepsSeen = [];
  const stepRun = model.trainClassifier(examples(40), { ...trainOptions, batchSize: 4, validation: 0, freeze: 'all', signal: inSteps.signal,
    onStep: (step) => { stepsSeen.push([step.phase, step.epoch, step.done, step.total]); if (step.phase === 'training') inSteps.abort(); } });
  await expectAbort('trainClassifier within an epoch', stepRun.done);
  same('the steps reported before the abort', stepsSeen, [['training', 1, 1, 10]]);
  // a token classifier's epoch goes in steps too (10 steps of 4 examples): abort at its first report
  const tokenAbort = new AbortController();
  const tokenSteps = [];
  const wordExamples = texts(40).map((text) => {
    const words = text.split(' ');
    return { words, labels: words.map((word) => (word === 'man' || word === 'woman' ? 'B-PER' : 'O')) };
  });
  const tokenRun = model.trainTokenClassifier(wordExamples, { ...trainOptions, batchSize: 4, validation: 0, freeze: 'all', signal: tokenAbort.signal,
    onStep: (step) => { tokenSteps.push([step.phase, step.epoch, step.done, step.total]); tokenAbort.abort(); } });
  await expectAbort('trainTokenClassifier within an epoch', tokenRun.done);
  same('the token steps reported before the abort', tokenSteps, [['training', 1, 1, 10]]);
  // between epochs
  const between = new AbortController();
  const epochRun = model.trainClassifier(examples(8), { ...trainOptions, epochs: 3, freeze: 'all', signal: between.signal, onProgress: () => between.abort() });
  await expectAbort('trainClassifier between epochs', epochRun.done);
  if (epochRun.epochs.length !== 1) problems.push(`between epochs: ${epochRun.epochs.length} epochs done`);
  if ((await model.classify(few)).length !== few.length) problems.push('classify after the aborted training');

  // never awaited: a failed run (no masked-LM head) and aborted ones. A model takes one run at
  // a time (others are refused while one is in progress), so each is let end before the next
  // starts: by watching the model, never by awaiting done.
  const ended = async () => { while (model.training) await new Promise((resolve) => setTimeout(resolve, 5)); };
  model.trainMaskedLM(few, { epochs: 1 });
  await ended();
  model.trainClassifier(examples(8), { signal: AbortSignal.abort() });
  await ended();
  const late = new AbortController();
  model.trainClassifier(examples(4), { freeze: 'all', epochs: 3, signal: late.signal, onProgress: () => late.abort() });
  await ended();
  await model.classify(few);
  await new Promise((resolve) => setTimeout(resolve, 200));
  window.removeEventListener('unhandledrejection', onUnhandled);
  rt.dispose();
  return { device: rt.device.kind, threads: rt.device.threads, worker: rt.worker, problems, unhandled, whole, timings };
}

const CPU = { long: 8192, trainingExamples: 96, compareTraining: true, abortAtExample: 32 }; // 256 chunks of 32
// SwiftShader takes seconds per chunk of 32: one list aborted during its run, the feature pass
// aborted before its first chunk
const GPU = { long: 40, trainingExamples: 40, compareTraining: false, abortAtExample: 0 };
for (const [options, sizes] of [[{ device: 'gpu' }, GPU], [{ device: 'cpu', worker: false }, CPU], [{ device: 'cpu', worker: true, threads: 1 }, CPU], [{ device: 'cpu', threads: 2 }, CPU]]) {
  test(`abort on ${JSON.stringify(options)}: before, during, loading, training; then the same results; no unhandled rejection`, async () => {
    const got = await page.evaluate(abortEverywhere, { options, ...sizes });
    assert.equal(got.device, options.device);
    assert.equal(got.threads, options.threads ?? 1);
    assert.equal(got.worker, Boolean(options.worker || options.threads));
    assert.deepEqual(got.problems, []);
    assert.deepEqual(got.unhandled, []);
    for (const { name, nextAnsweredAfter } of got.whole === null ? [] : got.timings) {
      // a chunk or two of 256 and a small call: far less than the whole list (generous for a loaded machine)
      assert.ok(nextAnsweredAfter < got.whole / 3, `${name}: the call after the aborted one came after ${nextAnsweredAfter.toFixed(0)} ms; the whole list takes ${got.whole.toFixed(0)} ms`);
    }
    console.log(`# ${JSON.stringify(options)}: whole list ${got.whole?.toFixed(0) ?? '(not run)'} ms; ${got.timings.map((t) => `${t.name} rejected after ${t.rejectedAfter.toFixed(0)} ms, next call answered after ${t.nextAnsweredAfter.toFixed(0)} ms`).join('; ')}`);
  });
}

test('no unexpected console errors', () => {
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

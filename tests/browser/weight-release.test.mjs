// The weight file is freed once a model holds its tensors (issue 14, item 3): in Chromium, where
// ArrayBuffer.prototype.transfer exists (Node 20 has none, so the Node tests cannot see it),
// `releaseWeightFiles` detaches the buffers of model.safetensors / pytorch_model.bin that their
// views span whole and leaves every other file and partial view alone; and a model loaded from a
// URL (twice: the second from the Cache API, which the first load filled before its bytes were
// freed) or from the caller's local files (whose own arrays stay intact) still fills a mask
// with the same probabilities, on the page's thread and in a worker.
//
// Needs: pkg/ (make pkg), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'make pkg']]);

const MODEL = `${ROOT}tests/fixtures/bert-reference/random/bert-random`;
const TEXT = 'the capital of france is [MASK] .';

let session;
let page;
const errors = [];
const notFound = [];

before(async () => {
  session = await openSession({ mounts: [['/release-model/', MODEL]] });
  page = await openHarnessPage(session, errors, notFound);
});

after(() => closeSession(session));

test('releaseWeightFiles detaches whole weight-file buffers only', async () => {
  const got = await page.evaluate(async () => {
    const { releaseWeightFiles } = await import('/pkg/engine.js');
    const weights = new Uint8Array(1000).fill(7);
    const bin = new Uint8Array(64);
    const config = new Uint8Array(10);
    const shared = new Uint8Array(100);
    const partial = shared.subarray(10, 50); // a view into a bigger buffer: not ours to free
    releaseWeightFiles(new Map([['model.safetensors', weights], ['config.json', config]]));
    releaseWeightFiles({ 'pytorch_model.bin': bin });
    releaseWeightFiles(new Map([['model.safetensors', partial]]));
    releaseWeightFiles(new Map([['model.safetensors', weights]])); // already detached: no error
    releaseWeightFiles(new Map()); // nothing to free
    return {
      hasTransfer: typeof ArrayBuffer.prototype.transfer === 'function',
      weights: weights.buffer.byteLength, bin: bin.buffer.byteLength,
      config: config.byteLength, shared: shared.byteLength, partial: partial.byteLength,
    };
  });
  assert.ok(got.hasTransfer, 'Chromium has ArrayBuffer.prototype.transfer');
  assert.deepEqual(got, { hasTransfer: true, weights: 0, bin: 0, config: 10, shared: 100, partial: 40 });
});

test('models still load and fill masks the same: URL (network, then cache), local files, worker', async () => {
  const got = await page.evaluate(async ({ text }) => {
    const { Runtime, clearCache } = window.webnlu;
    await clearCache();
    const scores = async (rt, source) => {
      const model = await rt.loadModel(source);
      const fill = await model.fillMask(text, { topK: 5 });
      const fromCache = model.fromCache;
      model.dispose();
      return { top: fill[0].map((p) => [p.id, p.score]), fromCache };
    };
    const rt = await Runtime.create({ device: 'cpu' });
    const network = await scores(rt, '/release-model/');
    const cached = await scores(rt, '/release-model/');
    const names = ['config.json', 'vocab.txt', 'model.safetensors'];
    const files = Object.fromEntries(await Promise.all(names.map(async (name) =>
      [name, new Uint8Array(await (await fetch(`/release-model/${name}`, { cache: 'no-store' })).arrayBuffer())])));
    const before = files['model.safetensors'].slice();
    const local = await scores(rt, { files });
    const intact = files['model.safetensors'].byteLength === before.byteLength &&
      files['model.safetensors'].every((byte, i) => byte === before[i]);
    rt.dispose();
    const inWorker = await Runtime.create({ device: 'cpu', worker: true });
    const worker = await scores(inWorker, '/release-model/');
    inWorker.dispose();
    await clearCache();
    return { network, cached, local, worker, intact };
  }, { text: TEXT });
  assert.deepEqual(got.network.fromCache, []);
  assert.ok(got.cached.fromCache.includes('model.safetensors'), `second load from the cache: ${JSON.stringify(got.cached.fromCache)}`);
  assert.ok(got.intact, "the caller's own model.safetensors array is left as it was");
  // the same wasm CPU path on the same weights: bit for bit
  for (const other of ['cached', 'local', 'worker']) assert.deepEqual(got[other].top, got.network.top, other);
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

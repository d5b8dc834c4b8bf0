// model.safetensors streams into the tensors in Chromium (web/lib/weight-stream.js): a model
// loaded from a URL (the network, then the Cache API, which the first load filled through a tee
// of the download) fills a mask with exactly the probabilities of the same model loaded from the
// whole file (the engine's Uint8Array path), on the GPU (tensors uploaded as they complete) and
// on the CPU, on the page's thread, in a worker (the stream transferred to it) and in the CPU
// pool (the stream tee'd to each worker); an abort mid-stream in a worker rejects with the
// AbortError and the worker loads normally afterwards.
//
// Needs: pkg/ (bash web/build-package.sh), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'bash web/build-package.sh']]);

const MODEL = `${ROOT}tests/fixtures/bert-reference/random/bert-random`;
const TEXT = 'the capital of france is [MASK] .';

let session;
let page;
const errors = [];
const notFound = [];

before(async () => {
  session = await openSession({ mounts: [['/stream-model/', MODEL]] });
  page = await openHarnessPage(session, errors, notFound);
});

after(() => closeSession(session));

test('streamed loads fill masks exactly as whole-file loads: GPU and CPU, page, worker, pool, network and cache', async () => {
  const got = await page.evaluate(async ({ text }) => {
    const { Runtime, clearCache } = window.webnlu;
    const { Engine } = await import('/pkg/engine.js');
    const top = (fill) => fill[0].map((p) => [p.id, p.score]);
    const names = ['config.json', 'vocab.txt', 'model.safetensors'];
    const whole = async (device) => { // the engine's whole-file path, as before streaming
      const engine = new Engine();
      await engine.run('init', {});
      const { handle: runtime } = await engine.run('runtime.create', { device });
      const files = new Map(await Promise.all(names.map(async (name) =>
        [name, new Uint8Array(await (await fetch(`/stream-model/${name}`, { cache: 'no-store' })).arrayBuffer())])));
      const loaded = await engine.run('model.load', { runtime, files, dtype: 'fp32' });
      const fill = await engine.run('model.fillMask', { handle: loaded.handle, texts: [text], topK: 5 });
      await engine.run('free', { handle: loaded.handle });
      await engine.run('free', { handle: runtime });
      return top(fill[0]);
    };
    const streamed = async (options, cache = false) => {
      const rt = await Runtime.create(options);
      const progress = [];
      const model = await rt.loadModel('/stream-model/', {
        cache, onProgress: (event) => { if (event.file === 'model.safetensors') progress.push(event.loaded); },
      });
      const fill = await model.fillMask(text, { topK: 5 });
      const result = { top: top(fill), fromCache: model.fromCache, bytes: model.bytes, device: rt.device.kind, last: progress.at(-1) };
      rt.dispose();
      return result;
    };
    await clearCache();
    const size = (await (await fetch('/stream-model/model.safetensors', { cache: 'no-store' })).arrayBuffer()).byteLength;
    const out = { size, gpuWhole: await whole('gpu'), cpuWhole: await whole('cpu') };
    out.gpuPage = await streamed({ device: 'gpu', worker: false });
    out.gpuWorker = await streamed({ device: 'gpu', worker: true });
    out.cpuPage = await streamed({ device: 'cpu', threads: 1 });
    out.cpuWorker = await streamed({ device: 'cpu', threads: 1, worker: true });
    out.cpuPool = await streamed({ device: 'cpu', threads: 2 });
    out.network = await streamed({ device: 'cpu', threads: 1 }, true);
    out.cached = await streamed({ device: 'cpu', threads: 1 }, true);
    await clearCache();
    return out;
  }, { text: TEXT });
  assert.equal(got.gpuPage.device, 'gpu');
  assert.equal(got.gpuWorker.device, 'gpu');
  // the same kernels on the same weights: bit for bit
  for (const name of ['gpuPage', 'gpuWorker']) assert.deepEqual(got[name].top, got.gpuWhole, name);
  for (const name of ['cpuPage', 'cpuWorker', 'cpuPool', 'network', 'cached']) assert.deepEqual(got[name].top, got.cpuWhole, name);
  for (const name of ['gpuPage', 'gpuWorker', 'cpuPage', 'cpuWorker', 'cpuPool', 'network', 'cached']) {
    assert.equal(got[name].last, got.size, `${name}: progress reaches the file's size`);
  }
  assert.deepEqual(got.network.fromCache, []);
  assert.ok(got.cached.fromCache.includes('model.safetensors'), `second load from the cache: ${JSON.stringify(got.cached.fromCache)}`);
  assert.equal(got.cached.bytes, got.network.bytes);
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

test('an abort mid-stream in a worker rejects with the AbortError; the worker then loads normally', async () => {
  const got = await page.evaluate(async ({ text }) => {
    const { Runtime } = window.webnlu;
    const rt = await Runtime.create({ device: 'cpu', threads: 1, worker: true });
    const controller = new AbortController();
    const bytes = new Uint8Array(await (await fetch('/stream-model/model.safetensors', { cache: 'no-store' })).arrayBuffer());
    const slowFetch = async (url) => {
      if (!url.endsWith('model.safetensors')) return fetch(url, { cache: 'no-store' });
      let sent = 0;
      return new Response(new ReadableStream({
        pull(c) { // 1000 bytes, then the abort: no more bytes come
          if (sent === 0) { c.enqueue(bytes.slice(0, 1000)); sent = 1000; return undefined; }
          controller.abort();
          return new Promise(() => {});
        },
      }));
    };
    let aborted;
    try {
      await rt.loadModel('/stream-model/', { cache: false, fetch: slowFetch, signal: controller.signal });
      aborted = 'loaded';
    } catch (error) {
      aborted = error.name;
    }
    const model = await rt.loadModel('/stream-model/', { cache: false });
    const fill = await model.fillMask(text, { topK: 1 });
    rt.dispose();
    return { aborted, top: fill[0].length };
  }, { text: TEXT });
  assert.deepEqual(got, { aborted: 'AbortError', top: 1 });
});

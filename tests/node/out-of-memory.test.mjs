// Out of memory and the lost-device API in Node (the CPU path of the wasm module): one text of
// 30,000 tokens on a random BERT with 40,000 positions needs (1, 2, T, T) attention scores of
// 7.2 GB, over the 4 GiB bound of one tensor; 20,000 tokens need 3.2 GB, under the bound but
// over what wasm32's allocator can reserve in one piece. Both are OutOfMemoryErrors naming the
// tensor and its bytes, nothing big is allocated (the wasm memory stays small), and the same
// model then embeds a short text exactly as before. Also: DeviceLostError and OutOfMemoryError
// cross the worker boundary with their fields, and a CPU runtime's `device.lost` never resolves.
//
// Needs: pkg/ (make pkg).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomBert } from '../browser/random-checkpoint.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${ROOT}pkg/index.js`)) throw new Error(`missing ${ROOT}pkg/index.js: run \`make pkg\``);
const { Runtime, DeviceError, DeviceLostError, OutOfMemoryError, WebnluError } = await import(`${ROOT}pkg/index.js`);
const { errorFromWire, errorToWire } = await import(`${ROOT}pkg/errors.js`);

let dir;
let rt;
let model;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webnlu-long-positions-'));
  writeRandomBert(dir, { vocab: 32, hidden: 16, layers: 1, heads: 2, intermediate: 32, positions: 40_000 });
  rt = await Runtime.create({ device: 'cpu' });
  const files = Object.fromEntries(['config.json', 'model.safetensors', 'vocab.txt', 'tokenizer_config.json']
    .map((name) => [name, readFileSync(join(dir, name))]));
  model = await rt.loadModel({ files });
});

after(() => {
  rt?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const textOf = (words) => Array.from({ length: words }, (_, i) => ['the', 'capital', 'of', 'paris'][i % 4]).join(' ');

for (const words of [30_000, 20_000]) {
  test(`${words} tokens: an OutOfMemoryError naming the attention scores, then the model works as before`, async () => {
    const short = ['the capital of france is paris'];
    const want = Array.from((await model.embed(short))[0]);
    const t = words + 2; // [CLS] and [SEP]
    await assert.rejects(model.embed([textOf(words)]), (error) => {
      assert.ok(error instanceof OutOfMemoryError && error instanceof WebnluError, `${error.name}: ${error.message}`);
      assert.equal(error.name, 'OutOfMemoryError');
      assert.match(error.what, /attention/);
      assert.match(error.what, new RegExp(`\\[1, 2, ${t}, ${t}\\]`));
      assert.equal(error.bytes, 2 * t * t * 4);
      assert.match(error.message, /^embed: out of memory: tensor "attention\.[a-z_]+" of shape/);
      return true;
    });
    assert.deepEqual(Array.from((await model.embed(short))[0]), want);
    const { wasmBytes } = await rt.memoryUsage();
    // the model is 2.7 MB; the long text's other tensors (T x 32 floats) a few MB each
    assert.ok(wasmBytes < 256 * 1024 * 1024, `wasm memory grew to ${wasmBytes} bytes`);
  });
}

test('DeviceLostError and OutOfMemoryError cross the worker boundary with their fields', () => {
  const lost = errorFromWire(errorToWire(new DeviceLostError('embed: the GPU device was lost (destroyed): x', { reason: 'destroyed' })));
  assert.ok(lost instanceof DeviceLostError && lost instanceof DeviceError && lost instanceof WebnluError);
  assert.equal(lost.reason, 'destroyed');
  assert.equal(lost.message, 'embed: the GPU device was lost (destroyed): x');
  const oom = errorFromWire(errorToWire(new OutOfMemoryError('m', { what: 'tensor "x"', bytes: 12 })));
  assert.ok(oom instanceof OutOfMemoryError);
  assert.deepEqual([oom.what, oom.bytes, oom.name], ['tensor "x"', 12, 'OutOfMemoryError']);
});

test('a CPU runtime: device.lost is a promise that never resolves, and not an enumerable field', async () => {
  assert.ok(rt.device.lost instanceof Promise);
  assert.ok(!Object.keys(rt.device).includes('lost'));
  assert.ok(!('lost' in JSON.parse(JSON.stringify(rt.device))));
  const outcome = await Promise.race([rt.device.lost.then(() => 'resolved'), new Promise((resolve) => setTimeout(() => resolve('pending'), 200))]);
  assert.equal(outcome, 'pending');
});

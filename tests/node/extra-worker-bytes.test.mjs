// model.extraWorkerBytes (web/lib/runtime.js): the memory the other workers' copies of a model
// take, (threads - 1) * (bytes + weightBytes): each worker is sent the files (held while it
// loads them) and holds the weights in the loaded dtype (fp32 layer matrices packed only). In Node (no Web Workers) the pool is two engines on this thread
// (DirectChannel), behind a Runtime made as Runtime.openPool makes one. The committed random
// BERT checkpoint, loaded in fp32 and in fp16: the fp16 figure is smaller by exactly what its
// 16-bit layer matrices save. The measurement behind the formula is in runtime.js's comment.
//
// Needs: pkg/ (make pkg).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${ROOT}pkg/index.js`)) throw new Error(`missing ${ROOT}pkg/index.js: run \`make pkg\``);
const { DirectChannel, WorkerPool } = await import(`${ROOT}pkg/engine-channel.js`);
const { Runtime } = await import(`${ROOT}pkg/index.js`);

const MODEL = `${ROOT}tests/fixtures/bert-reference/random/bert-random`;
const localFiles = () => ({
  files: Object.fromEntries(['config.json', 'vocab.txt', 'model.safetensors'].map((name) => [name, readFileSync(`${MODEL}/${name}`)])),
});

/** A CPU runtime over a pool of `threads` engines on this thread (what openPool builds of workers). */
async function poolRuntime(threads) {
  const pool = new WorkerPool(Array.from({ length: threads }, () => new DirectChannel()));
  const info = await pool.call('init', {});
  const created = await pool.call('runtime.create', { device: 'cpu' });
  return new Runtime(pool, created.handle, { ...created.device, threads }, info, {});
}

test('extraWorkerBytes: (threads - 1) x (file bytes + weight bytes), smaller in fp16 by what the weights save', async () => {
  const rt = await poolRuntime(3);
  assert.equal(rt.device.threads, 3);
  const full = await rt.loadModel(localFiles());
  const half = await rt.loadModel(localFiles(), { dtype: 'fp16' });
  assert.equal(full.dtype, 'fp32');
  assert.equal(half.dtype, 'fp16');
  assert.equal(half.bytes, full.bytes, 'the same files');
  assert.equal(full.extraWorkerBytes, 2 * (full.bytes + full.weightBytes));
  assert.equal(half.extraWorkerBytes, 2 * (half.bytes + half.weightBytes));

  // The encoder matrices (2 layers of 4 x 32 x 32 + 2 x 32 x 37 values) go from 4 bytes a value
  // to 2, both in the CPU matmul's packed layout (fp32 packed at load: `packWeights`), whose
  // padding (each NR-wide strip of W^T padded past `out`, under 8 columns a matrix) saves 2
  // bytes a padded value too: the saving is at least 2 bytes a value, and at most that plus 2 a
  // padded value.
  const { hidden_size: h, intermediate_size: i, num_hidden_layers: layers } = full.config;
  const values = layers * (4 * h * h + 2 * h * i);
  const saved = full.weightBytes - half.weightBytes;
  assert.ok(saved >= 2 * values && saved <= 2 * (values + layers * 6 * 7 * Math.max(h, i)), `saved ${saved} bytes for ${values} values`);
  assert.equal(full.extraWorkerBytes - half.extraWorkerBytes, 2 * saved, 'fp16: smaller by the saved weight bytes, per extra worker');
  full.dispose();
  half.dispose();
  rt.dispose();

  const one = await Runtime.create({ device: 'cpu', threads: 1 });
  const alone = await one.loadModel(localFiles(), { dtype: 'fp16' });
  assert.equal(alone.extraWorkerBytes, 0, 'one thread: no other copy');
  one.dispose();
});

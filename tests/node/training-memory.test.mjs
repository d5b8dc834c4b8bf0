// A training run that cannot fit is refused before its first step (Node, the CPU path): with
// the limit lowered on purpose (`rt.setMemoryLimit`, after the load), `trainClassifier` and
// `trainMaskedLM` reject with an OutOfMemoryError whose message names the need, its parts and
// what to try, and no onStep / onProgress fires; with the limit back (null) the same run trains.
// On the page's thread and in a pool of engines (as `threads: N` makes of workers; in Node two
// engines on this thread behind the pool's channel, as in extra-worker-bytes.test.mjs).
//
// Needs: pkg/ (make pkg).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${ROOT}pkg/index.js`)) throw new Error(`missing ${ROOT}pkg/index.js: run \`make pkg\``);
const { Runtime, OutOfMemoryError, WebnluError } = await import(`${ROOT}pkg/index.js`);
const { DirectChannel, WorkerPool } = await import(`${ROOT}pkg/engine-channel.js`);

const RANDOM = `${ROOT}tests/fixtures/bert-reference/random`;
const localFiles = (name) => ({
  files: Object.fromEntries(['config.json', 'vocab.txt', 'model.safetensors'].map((file) => [file, readFileSync(`${RANDOM}/${name}/${file}`)])),
});

/** A CPU runtime over a pool of `threads` engines on this thread (what openPool builds of workers). */
async function poolRuntime(threads) {
  const pool = new WorkerPool(Array.from({ length: threads }, () => new DirectChannel()));
  const info = await pool.call('init', {});
  const created = await pool.call('runtime.create', { device: 'cpu' });
  return new Runtime(pool, created.handle, { ...created.device, threads }, info, {});
}

const EXAMPLES = Array.from({ length: 6 }, (_, i) => ({
  text: ['the old man saw a dog near the river', 'a small bird in the tree', 'the big house near the river'][i % 3],
  label: ['a', 'b'][i % 2],
}));

for (const [mode, open] of [['page', () => Runtime.create({ device: 'cpu' })], ['pool of 2', () => poolRuntime(2)]]) {
  test(`${mode}: a run over the limit is refused before its first step, with its parts and what to try`, async () => {
    const rt = await open();
    try {
      const model = await rt.loadModel(localFiles('bert-random-classifier'));
      const mlm = await rt.loadModel(localFiles('bert-random'));
      await rt.setMemoryLimit(1000);
      const events = [];
      const options = {
        freeze: 'top:1', epochs: 1, batchSize: 2, validation: 0, seed: 3,
        onProgress: (report) => events.push(['epoch', report]), onStep: (step) => events.push(['step', step]),
      };
      await assert.rejects(model.trainClassifier(EXAMPLES, options).done, (error) => {
        assert.ok(error instanceof OutOfMemoryError && error instanceof WebnluError, `${error.name}: ${error.message}`);
        assert.equal(error.what, 'train_classifier (freeze top:1)');
        assert.ok(error.bytes > 1000, `${error.bytes}`);
        for (const part of ['over the limit of 1000 bytes', 'MiB of weights as fp32', 'MiB of gradients + AdamW moments',
          'MiB of activations at batch 2 x 11 tokens', 'try, in this order: ', 'a smaller batchSize', 'training fewer layers']) {
          assert.ok(error.message.includes(part), `${part} in ${error.message}`);
        }
        return true;
      });
      assert.deepEqual(events, [], 'no step and no epoch before the refusal');

      await assert.rejects(mlm.trainMaskedLM(EXAMPLES.map((e) => e.text), { freeze: 'all', epochs: 1, batchSize: 2, validation: 0 }).done,
        (error) => error instanceof OutOfMemoryError && /train_masked_lm \(freeze all\)/.test(error.message));

      await rt.setMemoryLimit(null);
      const { epochs } = await model.trainClassifier(EXAMPLES, options).done;
      assert.equal(epochs.length, 1);
      assert.ok(events.some(([kind]) => kind === 'epoch'), 'the run at the default limit reports its epoch');
      await assert.rejects(rt.setMemoryLimit(-1), /whole number >= 0, or null/);
    } finally {
      rt.dispose();
    }
  });
}

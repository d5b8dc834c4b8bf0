// A training run that cannot fit is refused before its first step, in real Chromium on every
// path the package has: the page's thread on the GPU (SwiftShader), a worker, and a pool of
// two CPU workers. With the limit lowered on purpose (`rt.setMemoryLimit(1000)`, after the load)
// `trainClassifier` rejects with an OutOfMemoryError naming the run, its parts and what to try,
// and no onStep / onProgress fires; with the limit back (null) the same run trains one epoch.
// The committed random BERT classifier (2 layers, width 32).
//
// Needs: pkg/ (make pkg), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT, closeSession, openHarnessPage, openSession, requireFiles } from './browser-session.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'make pkg']]);

const REFERENCE = `${ROOT}tests/fixtures/bert-reference/random`;

const PATHS = [
  { device: 'gpu', worker: false },
  { device: 'cpu', worker: true, threads: 1 },
  { device: 'cpu', worker: true, threads: 2 },
];

let session;
let page;
const errors = [];

before(async () => {
  session = await openSession({ mounts: [['/reference/', REFERENCE]] });
  page = await openHarnessPage(session, errors);
});

after(() => closeSession(session));

for (const options of PATHS) {
  test(`a run over the memory limit is refused before its first step: ${JSON.stringify(options)}`, async () => {
    const got = await page.evaluate(async (options) => {
      const { Runtime, OutOfMemoryError } = window.webnlu;
      const rt = await Runtime.create(options);
      try {
        const model = await rt.loadModel('/reference/bert-random-classifier/');
        const examples = ['the old man saw a dog near the river', 'a small bird in the tree', 'the big house near the river', 'a cat sat on the car']
          .map((text, i) => ({ text, label: ['a', 'b'][i % 2] }));
        const events = [];
        const run = { freeze: 'top:1', epochs: 1, batchSize: 2, validation: 0, onStep: () => events.push('step'), onProgress: () => events.push('epoch') };
        await rt.setMemoryLimit(1000);
        let refusal = null;
        try {
          await model.trainClassifier(examples, run).done;
        } catch (error) {
          refusal = { oom: error instanceof OutOfMemoryError, name: error.name, what: error.what, bytes: error.bytes, message: error.message };
        }
        const eventsAtRefusal = [...events];
        await rt.setMemoryLimit(null);
        const { epochs } = await model.trainClassifier(examples, run).done;
        return { kind: rt.device.kind, refusal, eventsAtRefusal, epochs: epochs.length, events };
      } finally {
        rt.dispose();
      }
    }, options);
    assert.equal(got.kind, options.device);
    assert.ok(got.refusal?.oom, JSON.stringify(got.refusal));
    assert.equal(got.refusal.what, 'train_classifier (freeze top:1)');
    for (const part of ['over the limit of 1000 bytes', 'MiB of weights as fp32', 'MiB of gradients + AdamW moments',
      'MiB of activations at batch 2 x 11 tokens', 'try, in this order: ']) {
      assert.ok(got.refusal.message.includes(part), `${part} in ${got.refusal.message}`);
    }
    assert.deepEqual(got.eventsAtRefusal, [], 'nothing ran before the refusal');
    assert.equal(got.epochs, 1);
    assert.ok(got.events.includes('epoch'));
    // (the loader asks for the optional tokenizer files this checkpoint lacks: 404s)
    assert.deepEqual(errors.filter((e) => !e.includes('404')), []);
  });
}

// A vocabulary larger than one WebGPU storage binding (issue 14, item 1) in real Chromium: an
// mBERT-shaped checkpoint (119,547 x 288 word embeddings, 137.7 MB, over WebGPU's default
// 134,217,728-byte maxStorageBufferBindingSize; one small layer so it stays fast) is made here
// with random weights (a temporary folder, never committed) and run by fill-mask on the GPU path
// (WebGPU on SwiftShader, the package's default limits: the embeddings and the tied decoder in
// row shards) and on the CPU path (wasm); both give the native CLI's probabilities within 1e-4.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';
import { cli, maxAbsDiff, requireCli } from './cli-reference.mjs';
import { writeRandomBert } from './random-checkpoint.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'make pkg']]);
requireCli();

// mBERT's vocabulary at hidden 288: 137.7 MB of word embeddings, one small layer
const SHAPE = { vocab: 119547, hidden: 288, layers: 1, heads: 4, intermediate: 64, positions: 64 };
const MASKED = ['the capital of france is [MASK] .', 'a [MASK] of tea .'];
const TOP_K = 20;

let session;
let dir;
let reference;
const errors = [];
const notFound = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webnlu-big-vocabulary-'));
  writeRandomBert(dir, SHAPE);
  reference = cli('fill-mask', dir, MASKED, ['--top-k', String(TOP_K)]).map((line) => line.masks);
  session = await openSession({ mounts: [['/big-vocabulary/', dir]] });
});

after(async () => {
  await closeSession(session);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function fillInPage(device) {
  const page = await openHarnessPage(session, errors, notFound);
  const got = await page.evaluate(async ({ device, masked, topK }) => {
    const adapter = await navigator.gpu?.requestAdapter();
    const { Runtime } = window.webnlu;
    const rt = await Runtime.create({ device });
    const started = performance.now();
    const model = await rt.loadModel('/big-vocabulary/');
    const fill = [];
    for (const text of masked) fill.push(await model.fillMask(text, { topK }));
    const seconds = (performance.now() - started) / 1000;
    model.dispose();
    rt.dispose();
    return { device: rt.device, fill, seconds, adapterBindingLimit: adapter?.limits.maxStorageBufferBindingSize };
  }, { device, masked: MASKED, topK: TOP_K });
  await page.close();
  return got;
}

/** Probabilities within 1e-4 of the native CPU's; ids equal except between near-ties. */
function compare(got, label) {
  let worst = 0;
  got.fill.forEach((masks, t) => {
    assert.equal(masks.length, reference[t].length, `${label}: masks of ${JSON.stringify(MASKED[t])}`);
    masks.forEach((predictions, m) => {
      const want = reference[t][m];
      worst = Math.max(worst, maxAbsDiff(predictions.map((p) => p.score), want.map((p) => p.score)));
      predictions.forEach((p, k) => {
        if (p.id === want[k].id) return;
        const same = want.find((w) => w.id === p.id);
        assert.ok(same && Math.abs(same.score - p.score) <= 1e-4, `${label}: rank ${k} of ${JSON.stringify(MASKED[t])}: ${p.id} vs ${want[k].id}`);
      });
    });
  });
  assert.ok(worst <= 1e-4, `${label}: probabilities differ by ${worst}`);
  console.log(`# ${label}: device ${JSON.stringify(got.device)}; adapter maxStorageBufferBindingSize ${got.adapterBindingLimit}; ` +
    `max |diff| vs native CPU ${worst.toExponential(2)}; load + fill-mask ${got.seconds.toFixed(2)} s`);
}

test('an mBERT-shaped vocabulary on WebGPU (default limits: row shards) gives the CPU probabilities', async () => {
  const got = await fillInPage('gpu');
  assert.equal(got.device.kind, 'gpu', `asked for the GPU, got ${JSON.stringify(got.device)}`);
  compare(got, 'gpu');
});

test('and on the wasm CPU path', async () => {
  const got = await fillInPage('cpu');
  assert.equal(got.device.kind, 'cpu');
  compare(got, 'cpu');
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

// A lost GPU device and out-of-memory, in real Chromium (GPU: SwiftShader).
// Device loss, on the page's thread and in a worker: the device destroyed between calls (on the
// page: the real `GPUDevice.destroy()` of the device the package opened, caught from
// `GPUAdapter.prototype.requestDevice`; in the worker, which the page cannot reach, the
// package's own `runtime.destroyDevice`, which calls the same `GPUDevice.destroy()` through
// wgpu) rejects every later call with a `DeviceLostError` (also an instance of DeviceError,
// reason 'destroyed'; training runs' `done` too), refuses loadModel, and resolves
// `rt.device.lost`; destroyed during a long embed, the call in flight rejects with
// DeviceLostError instead of hanging; a new GPU runtime and a CPU runtime then load the model
// and give the results of before.
// Out of memory, on the page's CPU, one worker's CPU, the pool of two workers and the page's
// GPU: one text of 30,000 tokens on a random BERT with 40,000 positions needs (1, 2, T, T)
// attention scores of 7.2 GB, over the 4 GiB one tensor may hold: an OutOfMemoryError naming the
// tensor and its bytes, refused before the first op, with the wasm memory still small (nothing
// was allocated); on the CPU also 20,000 tokens (3.2 GB: under the bound, refused by the
// allocator's reservation, over 2 GiB in one piece); then the same model embeds a short text
// exactly as before.
//
// Needs: pkg/ (make pkg), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';
import { writeRandomBert } from './random-checkpoint.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'make pkg']]);

const REFERENCE = `${ROOT}tests/fixtures/bert-reference/random`;

let session;
let page;
let dir;
const errors = [];
const notFound = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webnlu-long-positions-'));
  writeRandomBert(dir, { vocab: 32, hidden: 16, layers: 1, heads: 2, intermediate: 32, positions: 40_000 });
  session = await openSession({ mounts: [['/reference/', REFERENCE], ['/long/', dir]] });
  page = await openHarnessPage(session, errors, notFound);
});

after(async () => {
  await closeSession(session);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** In the page: the device loss checks on `options` ({ device: 'gpu', worker }); problems found. */
async function loseTheDevice(options) {
  const { Runtime, DeviceError, DeviceLostError } = window.webnlu;
  const SOURCE = '/reference/bert-random-classifier/';
  const WORDS = ['the', 'man', 'woman', 'river', 'city', 'saw', 'liked', 'old', 'big', 'dog'];
  const texts = (count) => Array.from({ length: count }, (_, i) => Array.from({ length: 6 + (i % 5) }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]).join(' '));
  const problems = [];
  const unhandled = [];
  const onUnhandled = (event) => unhandled.push(String(event.reason));
  window.addEventListener('unhandledrejection', onUnhandled);

  // the GPUDevices the package opens on this page (worker: false)
  const devices = [];
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    devices.push(device);
    return device;
  };
  const destroy = async (rt) => {
    if (options.worker) await (await import('/pkg/runtime.js')).callEngineForTests(rt, 'runtime.destroyDevice');
    else devices.at(-1).destroy();
  };
  /** `promise` rejects with a DeviceLostError within 60 s (a hang is a failure, not a timeout of the test). */
  const expectLost = async (name, promise) => {
    const hung = new Promise((resolve) => setTimeout(() => resolve('hung for 60 s'), 60_000));
    try {
      const outcome = await Promise.race([promise, hung]);
      problems.push(`${name}: ${outcome === 'hung for 60 s' ? outcome : 'resolved'}`);
    } catch (error) {
      if (!(error instanceof DeviceLostError) || !(error instanceof DeviceError)) problems.push(`${name}: ${error?.name}: ${error?.message}`);
      else if (!['destroyed', 'unknown'].includes(error.reason)) problems.push(`${name}: reason ${error.reason}`);
      else if (!/GPU device was lost/.test(error.message)) problems.push(`${name}: message ${error.message}`);
    }
  };
  const close = (name, got, want) => {
    const worst = Math.max(...got.flatMap((row, i) => Array.from(row, (x, j) => Math.abs(x - want[i][j]))));
    // GPU and CPU kernels sum in other orders: 1e-4 on unit-length embeddings of width 32
    if (!(worst < 1e-4)) problems.push(`${name}: differs by ${worst}`);
  };
  const few = texts(3);

  try {
    // between calls
    const rt = await Runtime.create(options);
    if (rt.device.kind !== 'gpu') return [`got a ${rt.device.kind} runtime`];
    if (!(rt.device.lost instanceof Promise)) problems.push('rt.device.lost is not a Promise');
    if (Object.keys(rt.device).includes('lost')) problems.push('device.lost is enumerable');
    const model = await rt.loadModel(SOURCE);
    const want = (await model.embed(few)).map((row) => Array.from(row));
    await destroy(rt);
    const lostInfo = await Promise.race([rt.device.lost, new Promise((resolve) => setTimeout(() => resolve(null), 30_000))]);
    if (lostInfo === null) problems.push('rt.device.lost did not resolve within 30 s');
    else if (lostInfo.reason !== 'destroyed' || typeof lostInfo.message !== 'string') problems.push(`lost: ${JSON.stringify(lostInfo)}`);
    await expectLost('embed after the loss', model.embed(few));
    await expectLost('classify after the loss', model.classify(few));
    await expectLost('inspect after the loss', model.inspect('the man saw'));
    await expectLost('a second embed after the loss', model.embed(few));
    await expectLost('loadModel after the loss', rt.loadModel(SOURCE));
    const examples = texts(6).map((text, i) => ({ text, label: i % 2 === 0 ? 'a' : 'b' }));
    await expectLost('trainClassifier after the loss', model.trainClassifier(examples, { epochs: 1 }).done);
    await expectLost('trainClassifier (end to end) after the loss', model.trainClassifier(examples, { epochs: 1, freeze: 'all' }).done);
    rt.dispose();

    // recovery in the same page: the GPU again, and the CPU
    const again = await Runtime.create(options);
    const modelAgain = await again.loadModel(SOURCE);
    close('a new GPU runtime', await modelAgain.embed(few), want);
    const cpu = await Runtime.create({ ...options, device: 'cpu' });
    close('a CPU runtime', await (await cpu.loadModel(SOURCE)).embed(few), want);
    cpu.dispose();

    // during a call: a long list (seconds on SwiftShader), destroyed once it runs
    let settled = false;
    const long = modelAgain.embed(texts(80));
    long.then(() => { settled = true; }, () => { settled = true; });
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (settled) problems.push('the long embed ended before the destroy: not in flight');
    await destroy(again);
    await expectLost('embed in flight', long);
    await expectLost('the model loaded before, after the loss', modelAgain.embed(few));
    again.dispose();
  } catch (error) {
    problems.push(`unexpected: ${error?.name}: ${error?.message}`);
  } finally {
    GPUAdapter.prototype.requestDevice = requestDevice;
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  window.removeEventListener('unhandledrejection', onUnhandled);
  if (unhandled.length > 0) problems.push(`unhandled rejections: ${unhandled.join('; ')}`);
  return problems;
}

/** In the page: the out-of-memory checks on `options`; problems found. */
async function runOutOfMemory({ options, tokens }) {
  const { Runtime, OutOfMemoryError, WebnluError } = window.webnlu;
  const problems = [];
  const rt = await Runtime.create(options);
  const model = await rt.loadModel('/long/');
  const short = ['the capital of france is paris'];
  const want = Array.from((await model.embed(short))[0]);
  for (const count of tokens) {
    const text = Array.from({ length: count }, (_, i) => ['the', 'capital', 'of', 'paris'][i % 4]).join(' ');
    try {
      await model.embed([text]);
      problems.push(`${count} tokens: resolved`);
    } catch (error) {
      const t = count + 2; // [CLS] and [SEP]
      if (!(error instanceof OutOfMemoryError) || !(error instanceof WebnluError)) {
        problems.push(`${count} tokens: ${error?.name}: ${error?.message}`);
      } else if (!/attention/.test(error.what) || !/out of memory/.test(error.message)) {
        problems.push(`${count} tokens: what ${error.what}, message ${error.message}`);
      } else if (error.bytes !== 2 * t * t * 4) {
        problems.push(`${count} tokens: bytes ${error.bytes}, expected the (1, 2, ${t}, ${t}) scores' ${2 * t * t * 4}`);
      }
    }
    const again = Array.from((await model.embed(short))[0]);
    if (JSON.stringify(again) !== JSON.stringify(want)) problems.push(`${count} tokens: the next embed differs`);
  }
  const { wasmBytes } = await rt.memoryUsage();
  // the model is 2.7 MB; what the long texts' smaller tensors took is tens of MB at most
  if (!(wasmBytes < 256 * 1024 * 1024)) problems.push(`wasm memory grew to ${wasmBytes} bytes`);
  rt.dispose();
  return problems;
}

for (const worker of [false, true]) {
  test(`device loss (GPU, ${worker ? 'worker' : 'page thread'}): typed rejections between and during calls, device.lost, recovery`, async () => {
    assert.deepEqual(await page.evaluate(loseTheDevice, { device: 'gpu', worker }), []);
  });
}

for (const [options, tokens] of [
  [{ device: 'cpu', worker: false }, [30_000, 20_000]],
  [{ device: 'cpu', worker: true, threads: 1 }, [30_000, 20_000]],
  [{ device: 'cpu', threads: 2 }, [30_000]], // the pool: the error crosses from a worker of two
  [{ device: 'gpu', worker: false }, [30_000]], // 3.2 GB would be made on the GPU: not tried
]) {
  test(`out of memory on ${JSON.stringify(options)}: an OutOfMemoryError naming the tensor, then the model works`, async () => {
    assert.deepEqual(await page.evaluate(runOutOfMemory, { options, tokens }), []);
  });
}

test('no unexpected console errors', () => {
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

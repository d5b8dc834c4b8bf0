// The package's CPU path in Node (V8 runs the same wasm as Chromium): all-MiniLM-L6-v2
// embeddings of 20 sentences as one batch and as 20 single calls, and a head-only training
// epoch (the feature pass) on the VADER movie-review sentences. Medians of --repeat runs
// after one warm-up. For timing the wasm kernels without a browser; the browser comparison
// with transformers.js is tests/bench/browser-bench.mjs.
//
//   node tests/bench/node-cpu-bench.mjs [--pkg DIR] [--repeat N] [--train N] [--cpu] [--only batch|singles] [--json]
//
// Needs pkg/ (make pkg) and tests/fixtures/models/all-minilm-l6-v2 (tests/setup/fetch-assets.sh).

import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SENTENCES } from './page/sentences.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values: args } = parseArgs({
  options: {
    pkg: { type: 'string', default: `${ROOT}pkg` },
    repeat: { type: 'string', default: '5' },
    train: { type: 'string', default: '0' },
    model: { type: 'string', default: `${ROOT}tests/fixtures/models/all-minilm-l6-v2` },
    json: { type: 'boolean', default: false },
    cpu: { type: 'boolean', default: false },
    only: { type: 'string', default: '' }, // 'batch' or 'singles' (for profiles)
  },
});
const repeat = Number(args.repeat);
const { Runtime } = await import(pathToFileURL(`${args.pkg}/index.js`).href);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Wall-clock ms, or with --cpu the process's CPU ms (user + system), which a busy machine
// disturbs less: the wasm runs on one thread.
function clock() {
  if (!args.cpu) return performance.now();
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
async function timed(run) {
  await run(); // warm-up
  const ms = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = clock();
    await run();
    ms.push(clock() - t0);
  }
  return median(ms);
}

const files = Object.fromEntries(['config.json', 'tokenizer.json', 'model.safetensors']
  .map((name) => [name, readFileSync(`${args.model}/${name}`)]));
const rt = await Runtime.create({ device: 'cpu' });
const t0 = performance.now();
const model = await rt.loadModel({ files });
const loadMs = performance.now() - t0;

const result = { load_ms: loadMs };
if (args.only !== 'singles') result.batch_of_20_ms = await timed(() => model.embed(SENTENCES));
if (args.only !== 'batch') {
  result.single_calls_20_ms = await timed(async () => { for (const s of SENTENCES) await model.embed([s]); });
}

const trainCount = Number(args.train);
if (trainCount > 0) {
  const lines = readFileSync(`${ROOT}tests/fixtures/models/vader/movieReviewSnippets_GroundTruth.txt`, 'utf8')
    .split('\n').filter(Boolean).slice(0, trainCount);
  const examples = lines.map((line) => {
    const [, rating, text] = line.split('\t');
    return { text, label: Number(rating) >= 0 ? 'positive' : 'negative' };
  });
  const run = model.trainClassifier(examples, { freeze: 'head', epochs: 2, validation: 0.25, learningRate: 2e-3 });
  const { epochs } = await run.done;
  result.train_examples = trainCount;
  result.train_epoch_seconds = epochs.map((e) => e.seconds);
  result.validation_accuracy = epochs.at(-1).validationAccuracy;
}
model.dispose();
rt.dispose();

if (args.json) console.log(JSON.stringify(result));
else for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(22)} ${Array.isArray(v) ? v.map((x) => x.toFixed(2)).join(' ') : typeof v === 'number' ? v.toFixed(1) : v}`);

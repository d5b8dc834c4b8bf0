// The CPU path's worker pool in headless Chromium: seconds to embed 20 sentences as one batch
// (all-MiniLM-L6-v2, mean pooling) with `threads: 1` (the page's thread, and one worker) and
// `threads: 2` (two workers, 10 sentences each), after a warm-up, and the ratio. The pool's
// results are checked equal to one thread's, bit for bit.
//
// The machine's cores are shared with other processes, so every round first measures a control:
// the same fixed amount of plain arithmetic in one Node worker thread, then split over two. Its
// speed-up is the parallelism the machine gave at that moment, the ceiling for the pool's; then
// each configuration embeds once (the configurations interleaved, so that a change of load
// touches them alike). Printed: per round, the control's speed-up and each configuration's
// seconds; then the medians.
//
// Run: node tests/bench/worker-pool-embed.mjs [--repeat 5] [--threads 1,2] [--json]
// Needs: pkg/ (make pkg), tests/fixtures/models/all-minilm-l6-v2, /usr/bin/chromium.

import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { MODELS, ROOT, openHarnessPage, openSession, requireFiles } from '../browser/browser-session.mjs';

requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${MODELS}/all-minilm-l6-v2/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2'],
]);

const { values } = parseArgs({
  options: { repeat: { type: 'string', default: '5' }, threads: { type: 'string', default: '1,2' }, json: { type: 'boolean', default: false } },
});
const repeat = Number(values.repeat);
const threadCounts = values.threads.split(',').map(Number);

// 20 sentences of 6 to 20 words, as a user would embed a short list.
const WORDS = ('the quick brown fox jumps over a lazy dog while children play in the park near the old river ' +
  'and a man reads his paper on a bench under the tall trees of the square').split(' ');
const SENTENCES = Array.from({ length: 20 }, (_, i) => {
  const start = (i * 7) % (WORDS.length - 20);
  return `${WORDS.slice(start, start + 6 + ((i * 5) % 15)).join(' ')}.`;
});

/** Two Node worker threads that each sum `n` square roots on request. */
function controlWorkers() {
  const source = `const { parentPort } = require('node:worker_threads');
    parentPort.on('message', (n) => { let x = 0; for (let i = 0; i < n; i++) x += Math.sqrt(i); parentPort.postMessage(x); });`;
  return [new Worker(source, { eval: true }), new Worker(source, { eval: true })];
}

/** Seconds for `total` square roots in one worker thread, then split over two: [one, two]. */
async function parallelControl(workers, total) {
  const run = (worker, n) => new Promise((resolve) => { worker.once('message', resolve); worker.postMessage(n); });
  let started = performance.now();
  await run(workers[0], total);
  const one = (performance.now() - started) / 1000;
  started = performance.now();
  await Promise.all(workers.map((worker) => run(worker, total / 2)));
  return [one, (performance.now() - started) / 1000];
}

const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

const configurations = threadCounts.flatMap((threads) => (threads === 1
  ? [{ threads: 1, worker: false, label: 'threads 1, page thread' }, { threads: 1, worker: true, label: 'threads 1, one worker' }]
  : [{ threads, worker: true, label: `threads ${threads}` }]));
const rounds = [];
const load = { before: loadavg()[0] };
const session = await openSession();
const workers = controlWorkers();
const errors = [];
try {
  const page = await openHarnessPage(session, errors);
  await page.evaluate(async ({ configurations, sentences }) => {
    window.benchRuntimes = [];
    for (const { threads, worker } of configurations) {
      const rt = await window.webnlu.Runtime.create({ device: 'cpu', threads, worker });
      const model = await rt.loadModel('/models/all-minilm-l6-v2/');
      await model.embed(sentences); // warm-up: the first calls grow the wasm memory
      window.benchRuntimes.push({ rt, model });
    }
  }, { configurations, sentences: SENTENCES });
  await parallelControl(workers, 1e7); // warm-up: compile the loop
  let reference = null;
  for (let round = 0; round < repeat; round++) {
    const [one, two] = await parallelControl(workers, 6e8);
    const seconds = [];
    for (const [index, configuration] of configurations.entries()) {
      const got = await page.evaluate(async ({ index, sentences }) => {
        const started = performance.now();
        const rows = await window.benchRuntimes[index].model.embed(sentences);
        return { seconds: (performance.now() - started) / 1000, embedding: rows.flatMap((row) => Array.from(row)) };
      }, { index, sentences: SENTENCES });
      reference ??= got.embedding;
      const identical = got.embedding.length === reference.length && got.embedding.every((x, i) => Object.is(x, reference[i]));
      if (!identical) throw new Error(`${configuration.label}: the embeddings differ from threads 1`);
      seconds.push(got.seconds);
    }
    rounds.push({ controlSpeedup: one / two, seconds });
  }
  await page.evaluate(() => window.benchRuntimes.forEach(({ rt }) => rt.dispose()));
  await page.close();
} finally {
  await Promise.all(workers.map((worker) => worker.terminate()));
  await session.browser.close();
  session.server.close();
}
load.after = loadavg()[0];

const results = configurations.map((configuration, index) => ({
  ...configuration,
  medianSeconds: median(rounds.map((r) => r.seconds[index])),
  bestSeconds: Math.min(...rounds.map((r) => r.seconds[index])),
  // per round, against the page thread of the same round
  medianSpeedup: median(rounds.map((r) => r.seconds[0] / r.seconds[index])),
}));
const controlMedian = median(rounds.map((r) => r.controlSpeedup));
if (values.json) {
  console.log(JSON.stringify({ sentences: SENTENCES.length, model: 'all-MiniLM-L6-v2', load, controlMedian, rounds, results }));
} else {
  console.log(`all-MiniLM-L6-v2, ${SENTENCES.length} sentences in one embed call, headless Chromium, ${repeat} rounds:`);
  console.log(`  round  control (2 threads / 1)  ${configurations.map((c) => c.label.padStart(24)).join('')}`);
  rounds.forEach((r, i) => console.log(`  ${String(i + 1).padStart(5)}  ${`${r.controlSpeedup.toFixed(2)}x`.padStart(23)}  ${r.seconds.map((s) => `${s.toFixed(3)} s`.padStart(24)).join('')}`));
  for (const r of results) {
    console.log(`  ${r.label.padEnd(24)} median ${r.medianSeconds.toFixed(3)} s, best ${r.bestSeconds.toFixed(3)} s, median speed-up vs the page thread ${r.medianSpeedup.toFixed(2)}x`);
  }
  console.log(`  control median speed-up ${controlMedian.toFixed(2)}x (the parallelism the machine gave); ` +
    `1-minute load average ${load.before.toFixed(2)} before, ${load.after.toFixed(2)} after (2 cores)`);
  if (errors.length > 0) console.log(`console errors: ${errors.join('\n')}`);
}

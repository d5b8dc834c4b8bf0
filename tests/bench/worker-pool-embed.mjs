// The CPU path's worker pool in headless Chromium: seconds to embed 20 sentences as one batch
// (all-MiniLM-L6-v2, mean pooling) with `threads: 1` (the page's thread, and one worker) and
// `threads: 2` (two workers, 10 sentences each), each the best of `--repeat` runs after a
// warm-up (the runs of the configurations interleaved), and the ratio. The pool's results are checked equal to one thread's, bit for bit.
//
// A control measured right after: the same fixed amount of plain arithmetic in one Node worker
// thread, then split over two; its speed-up is the parallelism the machine gave this process at
// that time (other processes share the cores), the ceiling for the pool's.
//
// Run: node tests/bench/worker-pool-embed.mjs [--repeat 3] [--threads 1,2] [--json]
// Needs: pkg/ (make pkg), tests/fixtures/models/all-minilm-l6-v2, /usr/bin/chromium.

import { loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { MODELS, ROOT, openPage, openSession, requireFiles } from '../browser/browser-session.mjs';

requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${MODELS}/all-minilm-l6-v2/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2'],
]);

const { values } = parseArgs({
  options: { repeat: { type: 'string', default: '3' }, threads: { type: 'string', default: '1,2' }, json: { type: 'boolean', default: false } },
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

const loadBefore = loadavg()[0];
const session = await openSession();
const errors = [];
const results = [];
try {
  const page = await openPage(await session.browser.newContext(), `${session.url}harness/`, errors);
  const configurations = threadCounts.flatMap((threads) => (threads === 1
    ? [{ threads: 1, worker: false, label: 'threads 1, page thread' }, { threads: 1, worker: true, label: 'threads 1, one worker' }]
    : [{ threads, worker: true, label: `threads ${threads}` }]));
  // All runtimes open at once, and the rounds interleave them (one run of each per round), so
  // that a change in the machine's load (other processes) touches every configuration alike.
  const opened = await page.evaluate(async ({ configurations, sentences }) => {
    window.benchRuntimes = [];
    for (const { threads, worker } of configurations) {
      const rt = await window.webnlu.Runtime.create({ device: 'cpu', threads, worker });
      const model = await rt.loadModel('/models/all-minilm-l6-v2/');
      await model.embed(sentences.slice(0, 2)); // warm-up: the first calls grow the wasm memory
      window.benchRuntimes.push({ rt, model });
    }
    return window.benchRuntimes.map(({ rt }) => rt.device.threads);
  }, { configurations, sentences: SENTENCES });
  const seconds = configurations.map(() => []);
  let reference = null;
  for (let round = 0; round < repeat; round++) {
    for (const [index, configuration] of configurations.entries()) {
      const got = await page.evaluate(async ({ index, sentences }) => {
        const started = performance.now();
        const rows = await window.benchRuntimes[index].model.embed(sentences);
        return { seconds: (performance.now() - started) / 1000, embedding: rows.flatMap((row) => Array.from(row)) };
      }, { index, sentences: SENTENCES });
      reference ??= got.embedding;
      const identical = got.embedding.length === reference.length && got.embedding.every((x, i) => Object.is(x, reference[i]));
      if (!identical) throw new Error(`${configuration.label}: the embeddings differ from threads 1`);
      seconds[index].push(got.seconds);
    }
  }
  await page.evaluate(() => window.benchRuntimes.forEach(({ rt }) => rt.dispose()));
  configurations.forEach((configuration, index) => results.push({
    ...configuration, best: Math.min(...seconds[index]), seconds: seconds[index], threadsReported: opened[index],
  }));
  await page.close();
} finally {
  await session.browser.close();
  session.server.close();
}
/** Seconds for `total` square roots in one worker thread, then split over two: [one, two]. */
async function parallelControl(total = 2e9) {
  const source = `const { parentPort } = require('node:worker_threads');
    parentPort.on('message', (n) => { let x = 0; for (let i = 0; i < n; i++) x += Math.sqrt(i); parentPort.postMessage(x); });`;
  const workers = [new Worker(source, { eval: true }), new Worker(source, { eval: true })];
  const run = (worker, n) => new Promise((resolve) => { worker.once('message', resolve); worker.postMessage(n); });
  await Promise.all(workers.map((worker) => run(worker, 1e6))); // warm-up: compile the loop
  let started = performance.now();
  await run(workers[0], total);
  const one = (performance.now() - started) / 1000;
  started = performance.now();
  await Promise.all(workers.map((worker) => run(worker, total / 2)));
  const two = (performance.now() - started) / 1000;
  await Promise.all(workers.map((worker) => worker.terminate()));
  return [one, two];
}

const control = await parallelControl();
const load = { before: loadBefore, after: loadavg()[0] };
const base = results[0].best;
for (const result of results) result.speedup = base / result.best;
if (values.json) {
  console.log(JSON.stringify({ sentences: SENTENCES.length, model: 'all-MiniLM-L6-v2', repeat, load, control, results }));
} else {
  console.log(`all-MiniLM-L6-v2, ${SENTENCES.length} sentences in one embed call, headless Chromium, best of ${repeat}:`);
  for (const r of results) {
    console.log(`  ${r.label.padEnd(24)} ${r.best.toFixed(3)} s  (runs ${r.seconds.map((s) => s.toFixed(3)).join(', ')})  speed-up vs page thread ${r.speedup.toFixed(2)}x`);
  }
  // Other processes on the machine take cores from the workers: the ratio means little when the
  // load average is above the number of cores.
  console.log(`  control (plain arithmetic, Node worker threads): one ${control[0].toFixed(2)} s, two ${control[1].toFixed(2)} s, speed-up ${(control[0] / control[1]).toFixed(2)}x`);
  console.log(`  1-minute load average ${load.before.toFixed(2)} before, ${load.after.toFixed(2)} after (this machine has 2 cores)`);
  if (errors.length > 0) console.log(`console errors: ${errors.join('\n')}`);
}

// Peak memory of Chromium while the package loads a big checkpoint and runs one fill-mask:
//   node tests/bigmodels/browser-memory.mjs DIR [gpu|cpu] [--bound X] [--threads N] [--dtype D]
//   node tests/bigmodels/browser-memory.mjs --shape bert-base|mbert [gpu|cpu] [--bound X] [--threads N] [--dtype D]
// DIR is a checkpoint folder (e.g. a random bert-base- or mBERT-shaped BertForMaskedLM saved by
// transformers); --shape writes a random one of that shape to a temporary folder (deleted
// after). The resident sets (VmRSS) of every process of this script's Chromium (the browser,
// renderer, GPU and worker processes, found as descendants of this process) are summed every
// 50 ms; printed: the sum with the empty harness page open, its peak during load + fill-mask,
// and the difference against the weights' size, and what is held over idle once they are done. Shared pages count once per process, so the sum
// is an upper bound. With --bound X (issue 14: 1.5), exits 1 when peak - idle is over X times
// the weights (`make check-memory`). --threads N is Runtime.create's `threads` (the CPU path's
// default is a pool of 2 workers, each holding a copy of the model by design; 1: one copy, on
// the page's thread). --dtype D is loadModel's `dtype` (fp32, the default; fp16, bf16, int8).

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHarnessPage, openSession } from '../browser/browser-session.mjs';
import { writeRandomBert } from '../browser/random-checkpoint.mjs';
import { BIG_SHAPES } from './shapes.mjs';
import { descendantsRss } from './process-memory.mjs';

const SHAPES = { 'bert-base': BIG_SHAPES['bert-base'], mbert: BIG_SHAPES.mbert };
const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args.splice(at, 2)[1];
};
const shape = option('--shape');
const boundText = option('--bound');
const threadsText = option('--threads');
const dtype = option('--dtype') ?? 'fp32';
if (!['fp32', 'fp16', 'bf16', 'int8'].includes(dtype)) throw new Error(`--dtype ${dtype}: fp32, fp16, bf16 or int8`);
const threads = threadsText === undefined ? undefined : Number(threadsText);
if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) throw new Error(`--threads ${threadsText}: a positive integer`);
const bound = boundText === undefined ? undefined : Number(boundText);
if (bound !== undefined && !(bound > 0)) throw new Error(`--bound ${boundText}: a positive factor`);
if (shape !== undefined && !SHAPES[shape]) throw new Error(`unknown --shape ${shape} (bert-base, mbert)`);
const temporary = shape === undefined ? undefined : mkdtempSync(join(tmpdir(), `webnlu-browser-memory-${shape}-`));
if (temporary) writeRandomBert(temporary, SHAPES[shape]);
const [dir = temporary, device = 'gpu'] = shape === undefined ? args : [temporary, ...args];
if (!dir) throw new Error('usage: node tests/bigmodels/browser-memory.mjs DIR|--shape NAME [gpu|cpu] [--bound X]');

const weights = statSync(join(dir, 'model.safetensors')).size;
const session = await openSession({ mounts: [['/checkpoint/', dir]] });
try {
  const page = await openHarnessPage(session, []);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idle = descendantsRss();
  let peak = idle;
  const timer = setInterval(() => { peak = Math.max(peak, descendantsRss()); }, 50);
  const got = await page.evaluate(async ({ device, threads, dtype }) => {
    const { Runtime } = window.webnlu;
    const rt = await Runtime.create(threads === undefined ? { device } : { device, threads });
    const started = performance.now();
    const model = await rt.loadModel('/checkpoint/', { cache: false, dtype });
    const fill = await model.fillMask('the capital of france is [MASK] .', { topK: 1 });
    return { seconds: (performance.now() - started) / 1000, device: rt.device.kind, threads: rt.device.threads, top: fill[0][0] };
  }, { device, threads, dtype });
  clearInterval(timer);
  const end = descendantsRss(); // what stays held once the load and the fill-mask are done
  peak = Math.max(peak, end);
  const mib = (kib) => (kib / 1024).toFixed(0);
  const label = shape === undefined ? dir : `${shape} shape`;
  const ok = bound === undefined || (peak - idle) * 1024 <= bound * weights;
  console.log(`${bound === undefined ? '' : ok ? 'ok   ' : 'FAIL '}${label} (${dtype}) on ${got.device}${got.device === 'cpu' ? ` (threads: ${got.threads})` : ''}: weights ${(weights / 1048576).toFixed(0)} MiB; Chromium RSS idle ${mib(idle)} MiB, ` +
    `peak ${mib(peak)} MiB, peak - idle ${mib(peak - idle)} MiB = ${((peak - idle) * 1024 / weights).toFixed(2)}x the weights; ` +
    `after the fill-mask ${mib(end - idle)} MiB over idle = ${((end - idle) * 1024 / weights).toFixed(2)}x; ` +
    `load + fill-mask ${got.seconds.toFixed(1)} s (top: ${got.top.token} ${got.top.score.toExponential(2)})` +
    `${bound === undefined ? '' : ` (bound ${bound}x)`}`);
  if (!ok) process.exitCode = 1;
} finally {
  await session.browser.close();
  session.server.close();
  if (temporary) rmSync(temporary, { recursive: true, force: true });
}

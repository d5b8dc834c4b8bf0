// Peak memory of Chromium while the package loads a big checkpoint and runs one fill-mask:
//   node tests/bigmodels/browser-memory.mjs DIR [gpu|cpu]
// DIR is a checkpoint folder (e.g. a random bert-base- or mBERT-shaped BertForMaskedLM saved by
// transformers). The resident sets (VmRSS) of every process of this script's Chromium (the
// browser, renderer, GPU and worker processes, found as descendants of this process) are summed
// every 50 ms; printed: the sum with the empty harness page open, its peak during load +
// fill-mask, and the difference against the weights' size. Shared pages count once per process,
// so the sum is an upper bound. Not a test: numbers for issue 14's memory items.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openPage, openSession } from '../browser/browser-session.mjs';

const [dir, device = 'gpu'] = process.argv.slice(2);
if (!dir) throw new Error('usage: node tests/bigmodels/browser-memory.mjs DIR [gpu|cpu]');

function parentOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch { return -1; }
}

function rssKib(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return line ? Number(line.split(/\s+/)[1]) : 0;
  } catch { return 0; }
}

/** Sum of VmRSS (KiB) of every descendant of this process. */
function descendantsRss() {
  const pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  const parent = new Map(pids.map((pid) => [pid, parentOf(pid)]));
  const ours = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) if (!ours.has(pid) && ours.has(ppid)) { ours.add(pid); grew = true; }
  }
  ours.delete(process.pid);
  let sum = 0;
  for (const pid of ours) sum += rssKib(pid);
  return sum;
}

const weights = statSync(join(dir, 'model.safetensors')).size;
const session = await openSession({ mounts: [['/checkpoint/', dir]] });
try {
  const page = await openPage(await session.browser.newContext(), `${session.url}harness/`, []);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idle = descendantsRss();
  let peak = idle;
  const timer = setInterval(() => { peak = Math.max(peak, descendantsRss()); }, 50);
  const got = await page.evaluate(async (device) => {
    const { Runtime } = window.webnlu;
    const rt = await Runtime.create({ device });
    const started = performance.now();
    const model = await rt.loadModel('/checkpoint/', { cache: false });
    const fill = await model.fillMask('the capital of france is [MASK] .', { topK: 1 });
    return { seconds: (performance.now() - started) / 1000, device: rt.device.kind, top: fill[0][0] };
  }, device);
  clearInterval(timer);
  peak = Math.max(peak, descendantsRss());
  const mib = (kib) => (kib / 1024).toFixed(0);
  console.log(`${dir} on ${got.device}: weights ${(weights / 1048576).toFixed(0)} MiB; Chromium RSS idle ${mib(idle)} MiB, ` +
    `peak ${mib(peak)} MiB, peak - idle ${mib(peak - idle)} MiB = ${((peak - idle) * 1024 / weights).toFixed(2)}x the weights; ` +
    `load + fill-mask ${got.seconds.toFixed(1)} s (top: ${got.top.token} ${got.top.score.toExponential(2)})`);
} finally {
  await session.browser.close();
  session.server.close();
}

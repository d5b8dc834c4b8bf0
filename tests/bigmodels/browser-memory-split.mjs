// Where Chromium's memory goes while the package loads a big checkpoint: the peak VmRSS of each
// of its processes (browser, renderer, GPU, utility...), sampled every 50 ms, by phase (load,
// then one fill-mask), and the page's wasm memory (its high-water mark) after the load:
//   node tests/bigmodels/browser-memory-split.mjs --shape bert-base|mbert [gpu|cpu] [--threads N] [--warm]
// The per-process view of tests/bigmodels/browser-memory.mjs (which sums them). --warm: the idle
// figures are taken with the runtime created and a tiny model's fill-mask run and freed (the
// device opened, the shaders compiled), so that what follows is the big model's own cost.

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHarnessPage, openSession } from '../browser/browser-session.mjs';
import { writeRandomBert } from '../browser/random-checkpoint.mjs';
import { BIG_SHAPES } from './shapes.mjs';

const SHAPES = { 'bert-base': BIG_SHAPES['bert-base'], mbert: BIG_SHAPES.mbert };
const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args.splice(at, 2)[1];
};
const shape = option('--shape') ?? 'bert-base';
const threadsText = option('--threads');
const threads = threadsText === undefined ? undefined : Number(threadsText);
const warmAt = args.indexOf('--warm');
const warm = warmAt >= 0 && args.splice(warmAt, 1).length > 0;
const [device = 'gpu'] = args;
if (!SHAPES[shape]) throw new Error(`unknown --shape ${shape} (bert-base, mbert)`);

/** Chromium's processes (descendants of this one): pid -> a label from its --type. */
function processes() {
  const pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  const parent = new Map();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const ours = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parent) if (!ours.has(pid) && ours.has(ppid)) { ours.add(pid); grew = true; }
  }
  ours.delete(process.pid);
  const found = new Map();
  for (const pid of ours) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/); // Chromium rewrites its title: spaces
      const type = cmdline.find((a) => a.startsWith('--type='))?.slice(7) ?? 'browser';
      const sub = cmdline.find((a) => a.startsWith('--utility-sub-type='))?.slice(19).split('.').pop();
      const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
      found.set(pid, { label: `${type}${sub ? `:${sub}` : ''} ${pid}`, kib: line ? Number(line.split(/\s+/)[1]) : 0 });
    } catch { /* gone */ }
  }
  return found;
}

const temporary = mkdtempSync(join(tmpdir(), `webnlu-memory-split-${shape}-`));
writeRandomBert(temporary, SHAPES[shape]);
const weights = statSync(join(temporary, 'model.safetensors')).size;
const tiny = new URL('../fixtures/bert-reference/random/bert-random', import.meta.url).pathname;
const session = await openSession({ mounts: [['/checkpoint/', temporary], ['/tiny/', tiny]] });
try {
  const page = await openHarnessPage(session, []);
  await page.evaluate(async ({ device, threads, warm }) => {
    const { Runtime } = window.webnlu;
    window.rt = await Runtime.create(threads === undefined ? { device } : { device, threads });
    if (!warm) return;
    const small = await window.rt.loadModel('/tiny/', { cache: false });
    await small.fillMask('the [MASK] sat', { topK: 1 });
    small.dispose();
  }, { device, threads, warm });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const idle = new Map([...processes()].map(([pid, p]) => [pid, p.kib]));
  const peaks = new Map();
  let phase = 'load';
  const sample = () => {
    let sum = 0;
    for (const [pid, p] of processes()) {
      sum += p.kib;
      const key = `${phase}\t${p.label}`;
      peaks.set(key, Math.max(peaks.get(key) ?? 0, p.kib - (idle.get(pid) ?? 0)));
    }
    peaks.set(`${phase}\tsum`, Math.max(peaks.get(`${phase}\tsum`) ?? 0, sum - [...idle.values()].reduce((a, b) => a + b, 0)));
  };
  const timer = setInterval(sample, 50);
  await page.evaluate(async () => {
    window.model = await window.rt.loadModel('/checkpoint/', { cache: false });
  });
  sample();
  const usage = await page.evaluate(() => window.rt.memoryUsage());
  phase = 'fill-mask';
  await page.evaluate(() => window.model.fillMask('the capital of france is [MASK] .', { topK: 1 }));
  sample();
  clearInterval(timer);
  const mib = (kib) => (kib / 1024).toFixed(0);
  console.log(`${shape} on ${device}${threads === undefined ? '' : ` threads ${threads}`}${warm ? ' (idle: runtime open, shaders compiled)' : ' (idle: runtime open)'}: weights ${(weights / 1048576).toFixed(0)} MiB; peak RSS - idle per process and phase (MiB):`);
  for (const [key, kib] of [...peaks].sort()) if (kib > 5 * 1024) console.log(`  ${key}\t${mib(kib)}`);
  console.log(`  runtime.memoryUsage() after the load: ${JSON.stringify(usage)}`);
} finally {
  await session.browser.close();
  session.server.close();
  rmSync(temporary, { recursive: true, force: true });
}

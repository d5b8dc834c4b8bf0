// `make check-big-models`: issue 14's "the big ones run". Random-weight BERT checkpoints of real
// shapes (bert-base, BERTimbau-base, mBERT, bert-large; written to a temporary folder by
// `writeRandomBert`, deleted after) run fill-mask, embed and a head-only training step on every
// dtype and device, natively (the CLI) and in headless Chromium (the package), and the figures
// are printed as one table: load time, peak memory, throughput.
//
//   node tests/bigmodels/model-table.mjs [--shapes bert-base,bertimbau,mbert,bert-large]
//     [--dtypes fp32,fp16,int8] [--devices cpu,gpu] [--where native,chromium] [--json FILE]
//
// Fails (exit 1, after the table) when any run fails, or when the GPU's fill-mask probabilities
// differ from the CPU's by more than 1e-4 for the same shape and dtype (top 5 of every mask).
// Native peak memory: /usr/bin/time's max RSS of `webnlu fill-mask` (load + one text), minus the
// same command's on a tiny model on the same device (the binary's own baseline). Chromium: the summed RSS of all its
// processes (process-memory.mjs) at its peak while the page loads and runs everything, minus the
// same with the empty page open. Throughput: natively `webnlu bench model` (B x T random tokens,
// forward and one head-only training step, one warm-up then one timed run); in Chromium, `embed`
// of 8 short texts and one epoch of head-only `trainClassifier` on 8 examples (one batch).
//
// Needs: the release CLI (cargo build --release --bin webnlu, or WEBNLU_CLI), pkg/ (make pkg),
// /usr/bin/time, Chromium. Slow: minutes per shape; bert-large's fp32 file is 1.3 GB.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomBert, WORDS } from '../browser/random-checkpoint.mjs';
import { openHarnessPage, openSession } from '../browser/browser-session.mjs';
import { samplePeakRss } from './process-memory.mjs';
import { BIG_SHAPES } from './shapes.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = process.env.WEBNLU_CLI ?? `${ROOT}target/release/webnlu`;
const ENV = { XDG_RUNTIME_DIR: '/tmp', WGPU_BACKEND: 'vulkan', ...process.env };

/** Shapes of the issue (vocabulary sizes from the real checkpoints' config.json). */
const SHAPES = BIG_SHAPES;
const TINY = { vocab: 64, hidden: 32, layers: 1, heads: 2, intermediate: 64, positions: 64 };

const MASKED = ['the capital of france is [MASK] .', 'a [MASK] of tea .'];
/** Eight texts of 6-12 words of the random vocabulary. */
const TEXTS = Array.from({ length: 8 }, (_, i) =>
  Array.from({ length: 6 + (i % 7) }, (_, j) => WORDS[(i * 3 + j * 5) % WORDS.length]).join(' '));
const EXAMPLES = Array.from({ length: 8 }, (_, i) => ({ text: TEXTS[i % 8], label: i % 2 ? 'pos' : 'neg' }));
/** Native throughput's batch: B sequences of T tokens (small: lavapipe runs bert-large too). */
const BENCH = { batch: 4, seq: 64 };

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}
const shapes = option('shapes', Object.keys(SHAPES).join(',')).split(',');
const dtypes = option('dtypes', 'fp32,fp16,int8').split(',');
const devices = option('devices', 'cpu,gpu').split(',');
const where = option('where', 'native,chromium').split(',');
const jsonFile = option('json', null);
for (const s of shapes) if (!SHAPES[s]) throw new Error(`unknown shape ${s} (${Object.keys(SHAPES).join(', ')})`);

const MIB = 1048576;
const rows = [];
const failures = [];

// ---- native --------------------------------------------------------------------------------

/** stdout and /usr/bin/time's figures (max RSS, wall seconds) of one CLI run; time's line goes to a file. */
function cli(args, input = '') {
  const shell = `"$@" 2>"$WEBNLU_TIME_FILE"`;
  const timeFile = join(tmpdir(), `webnlu-time-${process.pid}`);
  const stdout = execFileSync('sh', ['-c', shell, 'sh', '/usr/bin/time', '-f', '@@time %M %e', CLI, ...args], {
    input, encoding: 'utf8', env: { ...ENV, WEBNLU_TIME_FILE: timeFile }, maxBuffer: 256 * MIB,
  });
  const stderr = execFileSync('cat', [timeFile], { encoding: 'utf8' });
  rmSync(timeFile, { force: true });
  const line = stderr.split('\n').find((l) => l.startsWith('@@time '));
  if (!line) throw new Error(`no /usr/bin/time line from webnlu ${args[0]}: ${stderr.slice(-500)}`);
  const [, rss, seconds] = line.split(' ');
  return { stdout, maxRssKib: Number(rss), seconds: Number(seconds) };
}

function nativeRun(dir, device, dtype, baselineKib) {
  const common = ['--model', dir, '--device', device, '--dtype', dtype];
  const fill = cli(['fill-mask', ...common, '--top-k', '5'], `${MASKED.join('\n')}\n`);
  const masks = fill.stdout.trim().split('\n').map((line) => JSON.parse(line).masks);
  const embed = cli(['embed', ...common], `${TEXTS.join('\n')}\n`);
  const embeddings = embed.stdout.trim().split('\n').map((line) => JSON.parse(line).embedding);
  if (embeddings.length !== TEXTS.length || embeddings.some((e) => !e.every(Number.isFinite))) {
    throw new Error('embed: not one finite embedding per text');
  }
  const bench = cli(['bench', 'model', '--models', dir, '--device', device, '--dtype', dtype, '--policies', 'head',
    '--batch', String(BENCH.batch), '--seq', String(BENCH.seq), '--repeat', '1', '--json']);
  const measured = JSON.parse(bench.stdout.trim().split('\n').at(-1));
  return {
    masks,
    loadSeconds: measured.load_ms / 1000,
    peakMib: (fill.maxRssKib - baselineKib) / 1024,
    weightBytes: measured.weight_bytes,
    forward: `${measured.forward_tokens_per_s.toFixed(0)} tok/s`,
    training: `${measured.training[0].train_step_tokens_per_s.toFixed(0)} tok/s`,
  };
}

// ---- Chromium ------------------------------------------------------------------------------

async function chromiumRun(session, device, dtype) {
  const page = await openHarnessPage(session, []);
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const sampler = samplePeakRss();
    const idle = sampler.stop();
    const peak = samplePeakRss();
    const got = await page.evaluate(async ({ device, dtype, masked, texts, examples }) => {
      const { Runtime } = window.webnlu;
      const rt = await Runtime.create({ device, threads: 1 });
      let started = performance.now();
      const model = await rt.loadModel('/checkpoint/', { cache: false, dtype });
      const loadSeconds = (performance.now() - started) / 1000;
      const masks = (await model.fillMask(masked, { topK: 5 })).map((perMask) => perMask.map((top) =>
        top.map(({ id, score }) => ({ id, score }))));
      started = performance.now();
      const embeddings = await model.embed(texts);
      const embedSeconds = (performance.now() - started) / 1000;
      if (embeddings.length !== texts.length || embeddings.some((e) => !e.every(Number.isFinite))) {
        throw new Error('embed: not one finite embedding per text');
      }
      started = performance.now();
      const run = model.trainClassifier(examples, { freeze: 'head', epochs: 1, validation: 0, batchSize: 8 });
      await run.done;
      const trainSeconds = (performance.now() - started) / 1000;
      const result = { kind: rt.device.kind, loadSeconds, masks, embedSeconds, trainSeconds, weightBytes: model.weightBytes };
      model.dispose();
      rt.dispose();
      return result;
    }, { device, dtype, masked: MASKED, texts: TEXTS, examples: EXAMPLES });
    const peakKib = peak.stop();
    if (got.kind !== device) throw new Error(`asked for ${device}, ran on ${got.kind}`);
    return {
      masks: got.masks,
      loadSeconds: got.loadSeconds,
      peakMib: (peakKib - idle) / 1024,
      weightBytes: got.weightBytes,
      forward: `${(TEXTS.length / got.embedSeconds).toFixed(1)} texts/s`,
      training: `${got.trainSeconds.toFixed(1)} s/epoch`,
    };
  } finally {
    await page.context().close();
  }
}

// ---- the table -----------------------------------------------------------------------------

/** Largest |p_gpu - p_cpu| over the top 5 of every mask, matching tokens by id. */
function worstDifference(cpu, gpu) {
  let worst = 0;
  cpu.forEach((perText, t) => perText.forEach((want, m) => gpu[t][m].forEach((p) => {
    const same = want.find((w) => w.id === p.id);
    worst = Math.max(worst, same ? Math.abs(same.score - p.score) : Infinity);
  })));
  return worst;
}

function record(row) {
  rows.push(row);
  const cells = [row.shape, row.fileMib, row.dtype, row.where, row.device, row.weightMib, row.load, row.peak, row.forward, row.training, row.note];
  console.log(`| ${cells.join(' | ')} |`);
}

console.log('| model | file MiB | dtype | where | device | resident weights MiB | load s | peak memory MiB (x weights) | forward | head training | note |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
const tinyDir = mkdtempSync(join(tmpdir(), 'webnlu-tiny-'));
writeRandomBert(tinyDir, TINY);
/** The binary's own use on each device (a GPU device maps its driver): the tiny model's run. */
const baselineKib = Object.fromEntries(devices.map((device) => [device, where.includes('native')
  ? cli(['fill-mask', '--model', tinyDir, '--device', device], `${MASKED[0]}\n`).maxRssKib : 0]));
rmSync(tinyDir, { recursive: true, force: true });

for (const shape of shapes) {
  const dir = mkdtempSync(join(tmpdir(), `webnlu-${shape}-`));
  try {
    const fileBytes = writeRandomBert(dir, SHAPES[shape]);
    const fileMib = (fileBytes / MIB).toFixed(0);
    for (const place of where) {
      const session = place === 'chromium' ? await openSession({ mounts: [['/checkpoint/', dir]] }) : null;
      try {
        for (const dtype of dtypes) {
          const byDevice = {};
          for (const device of devices) {
            const base = { shape, fileMib, dtype, where: place, device };
            try {
              const r = place === 'native' ? nativeRun(dir, device, dtype, baselineKib[device]) : await chromiumRun(session, device, dtype);
              byDevice[device] = r;
              let note = '';
              if (device === 'gpu' && byDevice.cpu) {
                const worst = worstDifference(byDevice.cpu.masks, r.masks);
                note = `fill-mask vs cpu ${worst.toExponential(1)}`;
                if (!(worst <= 1e-4)) failures.push(`${shape} ${dtype} ${place}: GPU fill-mask differs from the CPU's by ${worst}`);
              }
              record({
                ...base,
                weightMib: (r.weightBytes / MIB).toFixed(0),
                load: r.loadSeconds.toFixed(1),
                peak: `${r.peakMib.toFixed(0)} (${(r.peakMib * MIB / fileBytes).toFixed(2)}x)`,
                forward: r.forward,
                training: r.training,
                note,
              });
            } catch (error) {
              const message = String(error.message ?? error).split('\n').find((l) => l.trim() !== '') ?? String(error);
              failures.push(`${shape} ${dtype} ${place} ${device}: ${message}`);
              record({ ...base, weightMib: '-', load: '-', peak: '-', forward: '-', training: '-', note: `FAILED: ${message.slice(0, 160)}` });
            }
          }
        }
      } finally {
        if (session) {
          await session.browser.close();
          session.server.close();
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ bench: BENCH, rows }, null, 1));
if (failures.length > 0) {
  console.error(`\n${failures.length} failed:\n${failures.join('\n')}`);
  process.exit(1);
}

// `make check-mbert-shape`: a full mBERT-shaped checkpoint (119,547 x 768 word embeddings,
// 12 layers, 679 MiB of random weights, written to a temporary folder and deleted after) run by
// the native CLI's fill-mask on the CPU and on the GPU (WGPU_BACKEND: lavapipe here, whose
// storage bindings are WebGPU's default 128 MiB, so the embeddings and the tied decoder are 3
// row shards). Fails unless the GPU's probabilities (top 20 of every mask) are within 1e-4 of
// the CPU's; prints both peak RSS (/usr/bin/time) against the weights' size. Slow (about a
// minute on lavapipe), hence not in the default test run.
//
// Needs: the CLI (cargo build --bin webnlu, or WEBNLU_CLI), /usr/bin/time.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomBert } from '../browser/random-checkpoint.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = process.env.WEBNLU_CLI ?? `${ROOT}target/debug/webnlu`;
const SHAPE = { vocab: 119547, hidden: 768, layers: 12, heads: 12, intermediate: 3072, positions: 512 };
const MASKED = ['the capital of france is [MASK] .', 'a [MASK] of tea .'];

function fillMask(dir, device) {
  const output = execFileSync('/usr/bin/time', ['-f', 'maxrss_kb %M', CLI, 'fill-mask', '--model', dir, '--device', device, '--top-k', '20'], {
    input: `${MASKED.join('\n')}\n`, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['pipe', 'pipe', 'pipe'],
    env: { XDG_RUNTIME_DIR: '/tmp', WGPU_BACKEND: 'vulkan', ...process.env },
  });
  return output.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line).masks);
}

/** Peak RSS in kB of one run (time's line goes to stderr, so the run is repeated through a shell). */
function peakRss(dir, device) {
  const line = execFileSync('sh', ['-c', `printf '%s\\n' "$1" | /usr/bin/time -f 'maxrss_kb %M' "$2" fill-mask --model "$3" --device "$4" 2>&1 >/dev/null | tail -1`,
    'sh', MASKED[0], CLI, dir, device], { encoding: 'utf8', env: { XDG_RUNTIME_DIR: '/tmp', WGPU_BACKEND: 'vulkan', ...process.env } });
  return Number(line.trim().split(' ')[1]);
}

const dir = mkdtempSync(join(tmpdir(), 'webnlu-mbert-shape-'));
try {
  const bytes = writeRandomBert(dir, SHAPE);
  const cpu = fillMask(dir, 'cpu');
  const gpu = fillMask(dir, 'gpu');
  let worst = 0;
  cpu.forEach((masks, t) => masks.forEach((want, m) => {
    const got = gpu[t][m];
    got.forEach((p, k) => {
      worst = Math.max(worst, Math.abs(p.score - want[k].score));
      if (p.id !== want[k].id) {
        const same = want.find((w) => w.id === p.id);
        if (!same || Math.abs(same.score - p.score) > 1e-4) throw new Error(`text ${t} mask ${m} rank ${k}: ${p.id} vs ${want[k].id}`);
      }
    });
  }));
  if (!(worst <= 1e-4)) throw new Error(`GPU probabilities differ from the CPU's by ${worst}`);
  const rss = { cpu: peakRss(dir, 'cpu'), gpu: peakRss(dir, 'gpu') };
  console.log(`mBERT shape (weights ${(bytes / 1e6).toFixed(1)} MB): fill-mask GPU vs CPU max |diff| ${worst.toExponential(2)} ` +
    `(top 20 of ${cpu.flat().length} masks); peak RSS cpu ${(rss.cpu / 1024).toFixed(0)} MiB, gpu ${(rss.gpu / 1024).toFixed(0)} MiB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

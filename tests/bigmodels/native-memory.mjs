// `make check-memory` (native part): the peak resident set of the CLI's `fill-mask` on random
// checkpoints of real shapes (bert-base, mBERT), on the CPU and on the GPU (WGPU_BACKEND; lavapipe
// here, whose "GPU memory" is this process's memory too), against issue 14's bound:
//
//   peak RSS <= 1.3 x the weights' bytes + the baseline,
//
// where the baseline is the peak RSS of the same command on a tiny model on the same device (the
// binary, its allocator, the tokenizer, and on the GPU the driver). Prints every figure; exits 1
// when a bound is exceeded. The checkpoints are written to a temporary folder and deleted after.
//
//   node tests/bigmodels/native-memory.mjs [bert-base|mbert ...]   (default: both)
//
// Needs: the CLI (cargo build --bin webnlu, or WEBNLU_CLI), /usr/bin/time.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomBert } from '../browser/random-checkpoint.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = process.env.WEBNLU_CLI ?? `${ROOT}target/debug/webnlu`;
if (!existsSync(CLI)) throw new Error(`no CLI at ${CLI}: cargo build --bin webnlu (or set WEBNLU_CLI)`);

/** The bound's factor on the weights' bytes (issue 14, "What must be shown"). */
export const NATIVE_FACTOR = 1.3;

const BASE = { hidden: 768, layers: 12, heads: 12, intermediate: 3072, positions: 512 };
export const SHAPES = {
  tiny: { vocab: 100, hidden: 32, layers: 2, heads: 2, intermediate: 64, positions: 64 },
  'bert-base': { vocab: 30522, ...BASE },
  mbert: { vocab: 119547, ...BASE },
};
const TEXT = 'the capital of france is [MASK] .';

/** Peak RSS in bytes of one `fill-mask` run (time's figure is in KiB). */
function peakRss(dir, device) {
  const line = execFileSync('sh', ['-c', `printf '%s\\n' "$1" | /usr/bin/time -f 'maxrss_kb %M' "$2" fill-mask --model "$3" --device "$4" 2>&1 >/dev/null | tail -1`,
    'sh', TEXT, CLI, dir, device], { encoding: 'utf8', env: { XDG_RUNTIME_DIR: '/tmp', WGPU_BACKEND: 'vulkan', ...process.env } });
  const kib = Number(line.trim().split(' ')[1]);
  if (!line.startsWith('maxrss_kb') || !Number.isFinite(kib)) throw new Error(`fill-mask --device ${device} on ${dir} failed: ${line}`);
  return kib * 1024;
}

/** Writes the checkpoint of shape `name` to a temporary folder, runs `measure(dir, weightBytes)`, deletes it. */
function withCheckpoint(name, measure) {
  const dir = mkdtempSync(join(tmpdir(), `webnlu-memory-${name}-`));
  try {
    return measure(dir, writeRandomBert(dir, SHAPES[name]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const mib = (bytes) => `${(bytes / 1048576).toFixed(0)} MiB`;

const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['bert-base', 'mbert'];
for (const name of wanted) if (!SHAPES[name] || name === 'tiny') throw new Error(`unknown shape ${name} (bert-base, mbert)`);
console.log(`CLI: ${CLI}`);
const baseline = withCheckpoint('tiny', (dir) => ({ cpu: peakRss(dir, 'cpu'), gpu: peakRss(dir, 'gpu') }));
console.log(`baseline (tiny model): cpu ${mib(baseline.cpu)}, gpu ${mib(baseline.gpu)}`);
let failed = 0;
for (const name of wanted) {
  withCheckpoint(name, (dir, weights) => {
    for (const device of ['cpu', 'gpu']) {
      const peak = peakRss(dir, device);
      const bound = NATIVE_FACTOR * weights + baseline[device];
      const ok = peak <= bound;
      if (!ok) failed++;
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} fill-mask --device ${device}: weights ${mib(weights)}, peak RSS ${mib(peak)} ` +
        `= ${((peak - baseline[device]) / weights).toFixed(2)}x the weights + the baseline (bound ${NATIVE_FACTOR}x: ${mib(bound)})`);
    }
  });
}
if (failed > 0) {
  console.log(`${failed} native memory bound(s) exceeded`);
  process.exit(1);
}

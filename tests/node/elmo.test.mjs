// Node test of ELMo in the npm package (pkg/, `WasmElmo` from the wasm-bindgen glue): loads
// AllenNLP's fixture biLM from options.json + lm_weights.hdf5 and compares every layer of every
// sentence of sentences.json with the native CLI (`webnlu elmo --device cpu`, one batch of 30,
// stateless). Tolerance 1e-5 absolute: both run the same f32 CPU code; only the order of a few
// sums may differ (the native matmul kernel), and the layers are O(1).
//
// Needs: pkg/ (make pkg), the webnlu binary (cargo build --bin webnlu; WEBNLU_BIN overrides) and
// the fixture (bash tests/fixtures/generate.sh).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = `${ROOT}tests/fixtures/models/elmo-fixture`;

if (!existsSync(`${ROOT}pkg/webnlu_wasm.js`)) throw new Error('pkg/ is missing: run `make pkg`');
for (const name of ['options.json', 'lm_weights.hdf5', 'sentences.json']) {
  if (!existsSync(`${FIXTURE}/${name}`)) {
    throw new Error(`missing ${FIXTURE}/${name}: run \`bash tests/fixtures/generate.sh\``);
  }
}
const { default: initWasm, WasmElmo } = await import(`${ROOT}pkg/webnlu_wasm.js`);

const binary = process.env.WEBNLU_BIN
  ?? [`${ROOT}target/debug/webnlu`, `${ROOT}target/release/webnlu`].find((p) => existsSync(p));
if (!binary) throw new Error('no webnlu binary: run `cargo build --bin webnlu` (or set WEBNLU_BIN)');

const optionsJson = readFileSync(`${FIXTURE}/options.json`, 'utf8');
const weights = new Uint8Array(readFileSync(`${FIXTURE}/lm_weights.hdf5`));
const sentences = JSON.parse(readFileSync(`${FIXTURE}/sentences.json`, 'utf8')).flat();

before(async () => {
  await initWasm({ module_or_path: readFileSync(`${ROOT}pkg/webnlu_wasm_bg.wasm`) });
});

test('WasmElmo.embed matches the native CLI on the fixture within 1e-5', async (context) => {
  const elmo = await WasmElmo.load(optionsJson, weights, 'cpu');
  assert.equal(elmo.device, 'cpu');
  assert.equal(elmo.numLayers, 3);
  assert.equal(elmo.outputDim, 32);
  const tokenized = sentences.map((s) => s.split(/\s+/).filter((w) => w.length > 0));
  const result = await elmo.embed(tokenized);
  const [k, b, t, d] = result.shape;
  const layers = result.layers;
  const lengths = result.lengths;
  assert.deepEqual([k, b, d], [3, sentences.length, 32]);
  assert.equal(layers.length, k * b * t * d);

  const cli = spawnSync(binary, [
    'elmo', '--options', `${FIXTURE}/options.json`, '--weights', `${FIXTURE}/lm_weights.hdf5`,
    '--device', 'cpu', '--batch-size', String(sentences.length),
  ], { input: sentences.join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(cli.status, 0, cli.stderr);
  const lines = cli.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(lines.length, sentences.length);

  let worst = 0;
  let compared = 0;
  lines.forEach((line, s) => {
    assert.equal(lengths[s], tokenized[s].length, `sentence ${s} length`);
    line.layers.forEach((layer, layerIndex) => {
      assert.equal(layer.length, lengths[s]);
      layer.forEach((vector, word) => {
        vector.forEach((want, j) => {
          const got = layers[((layerIndex * b + s) * t + word) * d + j];
          worst = Math.max(worst, Math.abs(got - want));
          compared++;
        });
      });
    });
    // Padding beyond the sentence is zero.
    for (let word = lengths[s]; word < t; word++) {
      for (let j = 0; j < d; j++) assert.equal(layers[((2 * b + s) * t + word) * d + j], 0);
    }
  });
  assert.ok(compared > 5000, `compared ${compared} values`);
  context.diagnostic(`max |wasm - native| = ${worst} over ${compared} values`);
  assert.ok(worst <= 1e-5, `max |wasm - native| = ${worst}`);
});

test('WasmElmo refuses bad input with a message that names it', async () => {
  await assert.rejects(WasmElmo.load(optionsJson, new Uint8Array([1, 2, 3]), 'cpu'), /weights\.hdf5/);
  await assert.rejects(WasmElmo.load('{', weights, 'cpu'), /options\.json/);
  await assert.rejects(WasmElmo.load(optionsJson, weights, 'tpu'), /tpu/);
  const elmo = await WasmElmo.load(optionsJson, weights, 'cpu');
  await assert.rejects(elmo.embed([['fine'], 'not an array']), /sentence 1 is not an array/);
  await assert.rejects(elmo.embed([['fine', 7]]), /word 1 of sentence 0/);
  const empty = await elmo.embed([[], ['One']]);
  assert.deepEqual(Array.from(empty.lengths), [0, 1]);
});

test('WasmElmo trainer: head-only and end-to-end epochs equal `webnlu elmo-train` epoch by epoch (1e-4)', async () => {
  const vader = `${ROOT}tests/fixtures/models/vader/movieReviewSnippets_GroundTruth.txt`;
  if (!existsSync(vader)) throw new Error(`missing ${vader}: run \`bash tests/setup/fetch-assets.sh vader\``);
  // 100 labelled lines: the CLI trains on 80 and holds out 20 after its seeded shuffle; the
  // trainer gets the same sentences in the same order with validation 0.2.
  const lines = readFileSync(vader, 'utf8').split('\n').map((l) => l.replace(/\r$/, '')).filter((line) => {
    const [, rating, text] = line.split('\t');
    return text !== undefined && Number(rating) !== 0 && text.trim() !== '';
  }).slice(0, 100);
  const data = `${mkdtempSync(`${tmpdir()}/webnlu-elmo-`)}/rated.tsv`;
  writeFileSync(data, `${lines.join('\n')}\n`);
  const cli = spawnSync(binary, [
    'elmo-train', '--options', `${FIXTURE}/options.json`, '--weights', `${FIXTURE}/lm_weights.hdf5`, '--data', data,
    '--train', '80', '--test', '20', '--epochs', '3', '--batch-size', '10', '--lr', '0.02', '--seed', '9', '--device', 'cpu',
  ], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  const want = cli.stdout.trim().split('\n').map((line) => JSON.parse(line));
  const examples = lines.map((line) => {
    const [, rating, text] = line.split('\t');
    return { words: text.split(/\s+/).filter((w) => w !== ''), label: Number(rating) > 0 ? 'pos' : 'neg' };
  });
  const elmo = await WasmElmo.load(optionsJson, weights, 'cpu');
  const trainer = await elmo.trainer(examples, { training: 'head', batchSize: 10, learningRate: 0.02, seed: 9, validation: 0.2 });
  assert.deepEqual(trainer.labels, ['neg', 'pos']); // sorted: class 0 = negative, as the CLI's labels
  for (const epoch of want) {
    const got = await trainer.runEpoch();
    assert.equal(got.epoch, epoch.epoch);
    assert.deepEqual([got.trainSentences, got.heldOutSentences], [80, 20]);
    for (const [js, native] of [['trainLoss', 'train_loss'], ['trainAccuracy', 'train_accuracy'], ['testLoss', 'test_loss'],
      ['testAccuracy', 'test_accuracy'], ['testChance', 'test_chance']]) {
      assert.ok(Math.abs(got[js] - epoch[native]) <= 1e-4, `epoch ${epoch.epoch} ${js}: ${got[js]} vs CLI ${epoch[native]}`);
    }
  }
  // End to end (the biLM's weights learn too): the same epochs as `elmo-train --end-to-end`,
  // and the model's own layers change.
  const endToEnd = spawnSync(binary, [
    'elmo-train', '--options', `${FIXTURE}/options.json`, '--weights', `${FIXTURE}/lm_weights.hdf5`, '--data', data,
    '--train', '80', '--test', '20', '--epochs', '2', '--batch-size', '20', '--lr', '0.01', '--seed', '4', '--end-to-end', '--device', 'cpu',
  ], { encoding: 'utf8' });
  assert.equal(endToEnd.status, 0, endToEnd.stderr);
  const tuned = await WasmElmo.load(optionsJson, weights, 'cpu');
  const before = (await tuned.embed([['a', 'moving', 'film']], false)).layers;
  const deep = await tuned.trainer(examples, { training: 'end-to-end', batchSize: 20, learningRate: 0.01, seed: 4, validation: 0.2 });
  for (const epoch of endToEnd.stdout.trim().split('\n').map((line) => JSON.parse(line))) {
    const got = await deep.runEpoch();
    for (const [js, native] of [['trainLoss', 'train_loss'], ['testLoss', 'test_loss'], ['testAccuracy', 'test_accuracy']]) {
      assert.ok(Math.abs(got[js] - epoch[native]) <= 1e-4, `end to end, epoch ${epoch.epoch} ${js}: ${got[js]} vs CLI ${epoch[native]}`);
    }
  }
  const after = (await tuned.embed([['a', 'moving', 'film']], false)).layers;
  assert.ok(after.some((v, i) => Math.abs(v - before[i]) > 1e-4), 'end-to-end training changed the biLM');

  const probabilities = await trainer.classify([['a', 'moving', 'film'], ['dull']]);
  assert.equal(probabilities.length, 4);
  await assert.rejects(elmo.trainer([{ words: ['x'], label: 1 }], { training: 'all' }), /training must be/);
  await assert.rejects(elmo.trainer([{ words: ['x'], label: 1 }], {}), /1 distinct label/);
  await assert.rejects(elmo.trainer(examples, { validation: 1.5 }), /validation must be the fraction/);
  await assert.rejects(elmo.trainer(examples, { lerningRate: 0.1 }), /unknown field `lerningRate`/);
});

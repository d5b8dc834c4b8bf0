// loadModel's `packWeights` (default true) on the CPU path in Node: an fp32 model's encoder
// layers' weight matrices are held as the CPU matmul's packed panels only, made at load
// (`model.packedWeightMatrices()`: all of them), with no plain copy. Packing is the same GEMM
// on the same panels, so everything is compared bit for bit with a model loaded with
// `packWeights: false` (plain weights, panels cached beside them on first use): the outputs,
// the losses of head-only training (which leaves every matrix packed), of `top:1` (which unpacks
// the top layer's six) and of `all` (which unpacks them all), for a sequence classifier, a token
// classifier and masked-LM fine-tuning, and the saved files before and after each run, which
// load back to the same predictions. A 16-bit model is not packed; a
// wrong `packWeights` is refused. The pool (two engines on this thread, as Runtime.openPool
// builds of workers): each engine loads packed, a deep run unpacks the first engine's copy,
// the others reload its saved files packed, and the answers equal one engine's.
//
// Needs: pkg/ (make pkg).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${ROOT}pkg/index.js`)) throw new Error(`missing ${ROOT}pkg/index.js: run \`make pkg\``);
const { Runtime, WebnluError } = await import(`${ROOT}pkg/index.js`);
const { DirectChannel, WorkerPool } = await import(`${ROOT}pkg/engine-channel.js`);

// The committed random BertForSequenceClassification: 2 layers (6 matrices each: query, key,
// value, attention output, intermediate 32 -> 37 and output 37 -> 32), vocabulary of 84 words.
const MODEL = `${ROOT}tests/fixtures/bert-reference/random/bert-random-classifier`;
const localFiles = () => ({
  files: Object.fromEntries(['config.json', 'vocab.txt', 'model.safetensors'].map((name) => [name, readFileSync(`${MODEL}/${name}`)])),
});
const MATRICES = 2 * 6;
const WORDS = 'the old man walked to the river and saw a small bird in the tree near the big house'.split(' ');
const EXAMPLES = Array.from({ length: 8 }, (_, e) => ({
  text: Array.from({ length: 5 + e }, (_, i) => WORDS[(i * (e + 3)) % WORDS.length]).join(' '),
  label: e % 2 ? 'good' : 'bad',
}));
const TEXTS = EXAMPLES.map((e) => e.text);
const SETTINGS = { epochs: 2, learningRate: 1e-3, batchSize: 4, validation: 0, seed: 5 };

const bits = (values) => Array.from(new Uint32Array(Float32Array.from(values).buffer));
/** Every number of a classify result (its label, its score, every label's) as f32 bits. */
const classifyBits = (results) => results.map((r) => ({ ...r, score: bits([r.score]), scores: bits(r.scores) }));
const sameBytes = (a, b) => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));

test('fp32 on the CPU: packed only at load, the same outputs, training and saved files as plain weights, bit for bit', async () => {
  const rt = await Runtime.create({ device: 'cpu', threads: 1 });
  const packed = await rt.loadModel(localFiles());
  const plain = await rt.loadModel(localFiles(), { packWeights: false });
  assert.equal(await packed.packedWeightMatrices(), MATRICES);
  assert.equal(await plain.packedWeightMatrices(), 0);
  assert.deepEqual(bits(await packed.embed(TEXTS).then((rows) => rows.flatMap((r) => [...r]))),
    bits(await plain.embed(TEXTS).then((rows) => rows.flatMap((r) => [...r]))));
  assert.deepEqual(classifyBits(await packed.classify(TEXTS)), classifyBits(await plain.classify(TEXTS)));
  // saved before any training: the packed values written as they were loaded
  const savedPacked = await packed.save();
  const savedPlain = await plain.save();
  assert.ok(sameBytes(savedPacked['model.safetensors'], savedPlain['model.safetensors']), 'the same safetensors');
  assert.equal(await packed.packedWeightMatrices(), MATRICES, 'saving keeps the panels');

  // each run on both models, in turn: the same losses bit for bit, and what stays packed
  for (const [freeze, left] of [['head', MATRICES], ['top:1', MATRICES - 6], ['all', 0]]) {
    const losses = [];
    for (const model of [packed, plain]) {
      const { epochs } = await model.trainClassifier(EXAMPLES, { ...SETTINGS, freeze }).done;
      assert.equal(epochs.length, 2);
      losses.push(epochs.map((r) => r.loss));
    }
    assert.deepEqual(bits(losses[0]), bits(losses[1]), `freeze ${freeze}: ${losses[0]} vs ${losses[1]}`);
    assert.equal(await packed.packedWeightMatrices(), left, `after freeze ${freeze}`);
    assert.equal(await plain.packedWeightMatrices(), 0);
    const [a, b] = [await packed.save(), await plain.save()];
    assert.ok(sameBytes(a['model.safetensors'], b['model.safetensors']), `freeze ${freeze}: the same safetensors`);
    assert.ok(sameBytes(a['config.json'], b['config.json']));
  }

  // the deep-trained model's files load back (packed again) to the same predictions
  const files = await packed.save();
  const reloaded = await rt.loadModel({ files });
  assert.equal(await reloaded.packedWeightMatrices(), MATRICES);
  assert.deepEqual(classifyBits(await reloaded.classify(TEXTS)), classifyBits(await packed.classify(TEXTS)));

  // not packed: a 16-bit model (its own packed format), and a wrong option is refused
  const half = await rt.loadModel(localFiles(), { dtype: 'fp16' });
  assert.equal(await half.packedWeightMatrices(), 0);
  await assert.rejects(rt.loadModel(localFiles(), { packWeights: 'yes' }),
    (error) => error instanceof WebnluError && /packWeights must be true or false, found "yes"/.test(error.message));
  for (const model of [packed, plain, reloaded, half]) model.dispose();
  rt.dispose();
});

test('token-classifier and masked-LM training unpack the layers they train, with the losses of plain weights bit for bit', async () => {
  const rt = await Runtime.create({ device: 'cpu', threads: 1 });
  const dir = (name) => `${ROOT}tests/fixtures/bert-reference/random/${name}`;
  const files = (name) => ({ files: Object.fromEntries(['config.json', 'vocab.txt', 'model.safetensors'].map((file) => [file, readFileSync(`${dir(name)}/${file}`)])) });
  const words = Array.from({ length: 12 }, (_, i) => ({
    words: ['the', 'old', 'man', 'saw', 'the', 'big', i % 2 ? 'river' : 'house'],
    labels: ['O', 'B-PER', 'I-PER', 'O', 'O', 'B-LOC', 'I-LOC'],
  }));
  const runs = [
    ['bert-random-ner', 'top:1', MATRICES - 6, (model) => model.trainTokenClassifier(words, { ...SETTINGS, freeze: 'top:1' })],
    ['bert-random', 'all', 0, (model) => model.trainMaskedLM(TEXTS, { ...SETTINGS, freeze: 'all', mlmProbability: 0.3 })],
  ];
  for (const [name, freeze, left, train] of runs) {
    const losses = [];
    const saved = [];
    for (const packWeights of [true, false]) {
      const model = await rt.loadModel(files(name), { packWeights });
      assert.equal(await model.packedWeightMatrices(), packWeights ? MATRICES : 0, name);
      losses.push((await train(model).done).epochs.map((r) => r.loss));
      assert.equal(await model.packedWeightMatrices(), packWeights ? left : 0, `${name} after freeze ${freeze}`);
      saved.push((await model.save())['model.safetensors']);
      model.dispose();
    }
    assert.deepEqual(bits(losses[0]), bits(losses[1]), `${name}: ${losses[0]} vs ${losses[1]}`);
    assert.ok(sameBytes(saved[0], saved[1]), `${name}: the same safetensors`);
  }
  rt.dispose();
});

test('a pool of two engines: every copy packed at load; after a deep run the others reload the trained copy packed', async () => {
  const pool = new WorkerPool([new DirectChannel(), new DirectChannel()]);
  const info = await pool.call('init', {});
  const created = await pool.call('runtime.create', { device: 'cpu' });
  const rt = new Runtime(pool, created.handle, { ...created.device, threads: 2 }, info, {});
  const one = await Runtime.create({ device: 'cpu', threads: 1 });
  const pooled = await rt.loadModel(localFiles());
  const alone = await one.loadModel(localFiles());
  // each engine's own count (Model.packedWeightMatrices() asks the first)
  const counts = async () => Promise.all(pool.entry(pooledHandle(pool)).workerHandles.map((handle, i) =>
    pool.channels[i].call('model.packedWeightMatrices', { handle })));
  assert.deepEqual(await counts(), [MATRICES, MATRICES]);
  const runs = [];
  for (const model of [pooled, alone]) runs.push((await model.trainClassifier(EXAMPLES, { ...SETTINGS, freeze: 'all' }).done).epochs.map((r) => r.loss));
  assert.deepEqual(bits(runs[0]), bits(runs[1]));
  // the first engine's copy trained (unpacked); the second loaded its saved files, packed
  assert.deepEqual(await counts(), [0, MATRICES]);
  assert.equal(await pooled.packedWeightMatrices(), 0, "the first worker's copy");
  assert.deepEqual(classifyBits(await pooled.classify(TEXTS)), classifyBits(await alone.classify(TEXTS)));
  pooled.dispose();
  alone.dispose();
  rt.dispose();
  one.dispose();
});

/** The pool handle of the one model loaded in `pool`. */
function pooledHandle(pool) {
  const models = [...pool.objects.entries()].filter(([, entry]) => entry.kind === 'model');
  assert.equal(models.length, 1);
  return models[0][0];
}

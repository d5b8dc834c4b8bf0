// `trainTokenClassifier` in real Chromium on every path the package has: the GPU (WebGPU on
// SwiftShader) and the CPU (wasm), on the page's thread and in worker mode, and the CPU pool of
// two workers (`threads: 2`: trained in the first worker, the trained model then copied to the
// second). Each run's epochs equal `webnlu train-tokens --device cpu` (the CPU paths within
// 1e-5 relative, the same Rust f32 code; the GPU within 1e-4 of the loss, sums in other orders,
// as the native CPU/GPU test in tests/rust/tasks/train_tokens.rs); `classifyTokens` then labels
// with the new head (the pool answers it from either worker), CoNLL text trains as the arrays
// do, and a bad example is a WebnluError. Then the same paths for regression (`trainRegressor`,
// `predict`) and multi-label classification (`task: 'multi_label'`, `classify` with `labels`),
// head-only, against `webnlu train-head --task`; and masked-LM fine-tuning (`trainMaskedLM` of
// the random BertForPreTraining, then `fillMask`) against `webnlu train-mlm`. The model: the committed random
// BertForTokenClassification (bert-random-ner); the data: tiny hand-written sets.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';
import { CLI, requireCli } from './cli-reference.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'make pkg']]);
requireCli();

const REFERENCE = `${ROOT}tests/fixtures/bert-reference/random`;
const SETTINGS = { freeze: 'top:1', epochs: 2, learningRate: 5e-3, batchSize: 4, accumulation: 2, validation: 0.25, seed: 5 };
const FLAGS = ['--freeze', 'top:1', '--epochs', '2', '--learning-rate', '0.005', '--batch-size', '4', '--accumulation', '2',
  '--validation', '0.25', '--seed', '5'];
const PATHS = [
  { device: 'gpu', worker: false }, { device: 'cpu', worker: false },
  { device: 'gpu', worker: true }, { device: 'cpu', worker: true },
  { device: 'cpu', threads: 2 },
];

/** 40 sentences: people and places of the random vocabulary, IOB2 tags. */
function tinyNerSet() {
  const people = ['man', 'woman', 'child'];
  const places = ['river', 'city', 'house'];
  const verbs = ['saw', 'liked', 'found'];
  return Array.from({ length: 40 }, (_, i) => {
    const [person, place, verb] = [people[i % 3], places[Math.floor(i / 3) % 3], verbs[Math.floor(i / 9) % 3]];
    return i % 2 === 0
      ? { words: ['the', 'old', person, verb, 'the', 'big', place], labels: ['O', 'B-PER', 'I-PER', 'O', 'O', 'B-LOC', 'I-LOC'] }
      : { words: ['a', person, verb, 'a', 'dog', 'near', 'the', place, '.'], labels: ['O', 'B-PER', 'O', 'O', 'O', 'O', 'O', 'B-LOC', 'O'] };
  });
}

/** Texts of the random vocabulary: a mood score (regression) and the animals named (multi-label). */
function problemExamples() {
  const animals = ['cat', 'dog', 'bird'];
  const moods = { happy: 1.5, sad: -1.5, good: 1.5, bad: -1.5, old: 0 };
  return Array.from({ length: 30 }, (_, i) => {
    const [a, b, mood] = [animals[i % 3], animals[Math.floor(i / 3) % 3], Object.keys(moods)[i % 5]];
    return { text: `the ${mood} ${a} saw a ${b} near the river`, value: moods[mood], animals: [...new Set([a, b])] };
  });
}
const PROBLEM_SETTINGS = { freeze: 'head', epochs: 2, learningRate: 1e-2, batchSize: 8, validation: 0.2, seed: 4 };
const PROBLEM_FLAGS = ['--freeze', 'head', '--epochs', '2', '--learning-rate', '0.01', '--batch-size', '8', '--validation', '0.2', '--seed', '4'];

/** 60 sentences of the random vocabulary with a strong pattern. */
function mlmCorpus() {
  const animals = ['cat', 'dog', 'bird', 'fish'];
  const places = ['house', 'tree', 'river'];
  return Array.from({ length: 60 }, (_, i) => `the ${animals[i % 4]} sat on the ${places[i % 3]} and the ${animals[(i + 1) % 4]} saw the ${places[(i + 2) % 3]} .`);
}
const MLM_SETTINGS = { freeze: 'top:1', epochs: 2, learningRate: 5e-3, batchSize: 8, validation: 0.25, seed: 2 };
const MLM_FLAGS = ['--freeze', 'top:1', '--epochs', '2', '--learning-rate', '0.005', '--batch-size', '8', '--validation', '0.25', '--seed', '2'];

let session;
let want;
let wantMlm;
const wantProblems = {};
const errors = [];
const notFound = [];

before(async () => {
  const dir = `${ROOT}target/browser-tests`;
  mkdirSync(dir, { recursive: true });
  const file = `${dir}/tiny-ner.jsonl`;
  writeFileSync(file, tinyNerSet().map((e) => JSON.stringify(e)).join('\n') + '\n');
  want = execFileSync(CLI, ['train-tokens', '--model', `${REFERENCE}/bert-random-ner`, '--device', 'cpu', '--examples', file, ...FLAGS],
    { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } })
    .split('\n').filter(Boolean).map((line) => JSON.parse(line)).filter((line) => line.epoch !== undefined);
  for (const task of ['regression', 'multi_label']) {
    const tsv = `${dir}/problem-${task}.tsv`;
    writeFileSync(tsv, problemExamples().map((e) => `${e.text}\t${task === 'regression' ? e.value : e.animals.join(',')}`).join('\n') + '\n');
    wantProblems[task] = execFileSync(CLI, ['train-head', '--model', `${REFERENCE}/bert-random-ner`, '--device', 'cpu', '--examples', tsv,
      '--task', task === 'regression' ? 'regression' : 'multi-label', ...PROBLEM_FLAGS],
    { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } })
      .split('\n').filter(Boolean).map((line) => JSON.parse(line)).filter((line) => line.epoch !== undefined);
  }
  const corpus = `${dir}/mlm-corpus.txt`;
  writeFileSync(corpus, mlmCorpus().join('\n') + '\n');
  wantMlm = execFileSync(CLI, ['train-mlm', '--model', `${REFERENCE}/bert-random`, '--device', 'cpu', '--texts', corpus, ...MLM_FLAGS],
    { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } })
    .split('\n').filter(Boolean).map((line) => JSON.parse(line)).filter((line) => line.epoch !== undefined);
  session = await openSession({ mounts: [['/reference/', REFERENCE]] });
});

after(() => closeSession(session));

test('trainTokenClassifier on the GPU and CPU paths, page thread, worker and pool, equals `webnlu train-tokens`', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const runs = await page.evaluate(async ({ paths, examples, settings }) => {
    const out = [];
    for (const options of paths) {
      const rt = await window.webnlu.Runtime.create(options);
      const model = await rt.loadModel('/reference/bert-random-ner/');
      const started = performance.now();
      const seen = [];
      const { epochs } = await model.trainTokenClassifier(examples, { ...settings, onProgress: (r) => seen.push(r.epoch) }).done;
      const seconds = (performance.now() - started) / 1000;
      const tokens = await model.classifyTokens(['the old woman saw the big city', 'a child liked the river']);
      let error = null;
      try { await model.trainTokenClassifier([{ words: ['a', 'b'], labels: ['O'] }]).done; } catch (e) { error = `${e.name}: ${e.message}`; }
      out.push({ options, device: rt.device, worker: rt.worker, epochs, seen, seconds, tokens, error });
      rt.dispose();
    }
    // CoNLL text trains as the arrays do (CPU, page thread)
    const rt = await window.webnlu.Runtime.create({ device: 'cpu', worker: false });
    const model = await rt.loadModel('/reference/bert-random-ner/');
    const text = examples.map((e) => e.words.map((w, i) => `${w}\t${e.labels[i]}`).join('\n')).join('\n\n');
    const conll = (await model.trainTokenClassifier(text, settings).done).epochs;
    rt.dispose();
    return { out, conll };
  }, { paths: PATHS, examples: tinyNerSet(), settings: SETTINGS });
  await page.close();
  for (const { options, device, worker, epochs, seen, seconds, tokens, error } of runs.out) {
    const label = `${device.kind.toUpperCase()}, ${options.threads ? `pool of ${device.threads}` : worker ? 'worker' : 'page thread'}`;
    assert.equal(device.kind, options.device, label);
    assert.deepEqual(seen, [1, 2], label);
    epochs.forEach((got, i) => {
      const loss = Math.abs(got.loss - want[i].loss);
      if (device.kind === 'cpu') {
        assert.ok(loss <= 1e-5 * want[i].loss, `${label}, epoch ${i + 1}: loss ${got.loss} vs the CLI's ${want[i].loss}`);
        assert.ok(Math.abs(got.validationEntities.overall.f1 - want[i].validation_entities.overall.f1) <= 1e-6, `${label}: entity F1`);
      } else {
        assert.ok(loss <= 1e-4, `${label}, epoch ${i + 1}: loss ${got.loss} vs the CLI's ${want[i].loss}`);
      }
      assert.deepEqual(Object.keys(got.validationEntities.perType).sort(), ['LOC', 'PER'], label);
    });
    assert.equal(tokens.length, 2);
    assert.deepEqual(tokens[0].map((t) => t.token), ['the', 'old', 'woman', 'saw', 'the', 'big', 'city']);
    for (const t of tokens.flat()) assert.ok(['B-LOC', 'B-PER', 'I-LOC', 'I-PER', 'O'].includes(t.label), `${label}: ${t.label}`);
    assert.match(error, /^WebnluError: .*examples\[0\] has 2 words but 1 labels/, label);
    console.log(`# trainTokenClassifier ${label}: 2 epochs in ${seconds.toFixed(2)} s, losses ${epochs.map((e) => e.loss.toFixed(6)).join(', ')} ` +
      `(CLI ${want.map((e) => e.loss.toFixed(6)).join(', ')}), held-out entity F1 ${epochs.at(-1).validationEntities.overall.f1.toFixed(3)}`);
  }
  runs.conll.forEach((got, i) => assert.ok(Math.abs(got.loss - want[i].loss) <= 1e-5 * want[i].loss, `CoNLL text, epoch ${i + 1}`));
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

test('trainRegressor + predict and multi-label trainClassifier + classify on every path equal `webnlu train-head --task`', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const runs = await page.evaluate(async ({ paths, examples, settings }) => {
    const out = [];
    const text = 'the happy cat saw a dog near the river';
    for (const options of paths) {
      const rt = await window.webnlu.Runtime.create(options);
      const regressor = await rt.loadModel('/reference/bert-random-ner/');
      const regression = (await regressor.trainRegressor(examples.map((e) => ({ text: e.text, label: e.value })), settings).done).epochs;
      const value = await regressor.predict(text);
      const tagger = await rt.loadModel('/reference/bert-random-ner/');
      const multi = (await tagger.trainClassifier(examples.map((e) => ({ text: e.text, label: e.animals })), { ...settings, task: 'multi_label' }).done).epochs;
      const classified = await tagger.classify(text);
      let error = null;
      try { await tagger.predict(text); } catch (e) { error = `${e.name}: ${e.message}`; }
      out.push({ options, device: rt.device, worker: rt.worker, regression, value, multi, classified, error });
      rt.dispose();
    }
    return out;
  }, { paths: PATHS, examples: problemExamples(), settings: PROBLEM_SETTINGS });
  await page.close();
  for (const { options, device, worker, regression, value, multi, classified, error } of runs) {
    const label = `${device.kind.toUpperCase()}, ${options.threads ? `pool of ${device.threads}` : worker ? 'worker' : 'page thread'}`;
    assert.equal(device.kind, options.device, label);
    // CPU: the same Rust f32 code as the CLI (1e-5 relative); GPU: other summation orders (1e-4)
    const close = (got, expected) => (device.kind === 'cpu' ? Math.abs(got - expected) <= 1e-5 * Math.abs(expected) : Math.abs(got - expected) <= 1e-4);
    regression.forEach((got, i) => {
      assert.ok(close(got.loss, wantProblems.regression[i].loss), `${label}, regression epoch ${i + 1}: ${got.loss} vs ${wantProblems.regression[i].loss}`);
      assert.ok(close(got.validationMae, wantProblems.regression[i].validation_mae), `${label}: MAE`);
      assert.equal(got.accuracy, null, label);
    });
    multi.forEach((got, i) => assert.ok(close(got.loss, wantProblems.multi_label[i].loss), `${label}, multi-label epoch ${i + 1}: ${got.loss} vs ${wantProblems.multi_label[i].loss}`));
    assert.equal(typeof value, 'number', label);
    assert.equal(classified.scores.length, 3, label);
    assert.deepEqual(classified.labels, ['bird', 'cat', 'dog'].filter((_, i) => classified.scores[i] >= 0.5), label);
    assert.match(error, /^WebnluError: predict is for a regression head/, label);
    console.log(`# ${label}: regression losses ${regression.map((e) => e.loss.toFixed(6)).join(', ')} (CLI ${wantProblems.regression.map((e) => e.loss.toFixed(6)).join(', ')}), ` +
      `held-out MAE ${regression.at(-1).validationMae.toFixed(4)}; multi-label losses ${multi.map((e) => e.loss.toFixed(6)).join(', ')}`);
  }
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

test('trainMaskedLM + fillMask on every path equal `webnlu train-mlm`', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const runs = await page.evaluate(async ({ paths, texts, settings }) => {
    const out = [];
    for (const options of paths) {
      const rt = await window.webnlu.Runtime.create(options);
      const model = await rt.loadModel('/reference/bert-random/');
      const { epochs } = await model.trainMaskedLM(texts, settings).done;
      const filled = await model.fillMask('the cat sat on the [MASK] .');
      let error = null;
      try { await (await rt.loadModel('/reference/bert-random-ner/')).trainMaskedLM(texts).done; } catch (e) { error = `${e.name}: ${e.message}`; }
      out.push({ options, device: rt.device, worker: rt.worker, epochs, filled, error });
      rt.dispose();
    }
    return out;
  }, { paths: PATHS, texts: mlmCorpus(), settings: MLM_SETTINGS });
  await page.close();
  for (const { options, device, worker, epochs, filled, error } of runs) {
    const label = `${device.kind.toUpperCase()}, ${options.threads ? `pool of ${device.threads}` : worker ? 'worker' : 'page thread'}`;
    // CPU: the same Rust f32 code as the CLI (1e-5 relative); GPU: other summation orders (1e-4 relative)
    const tolerance = device.kind === 'cpu' ? 1e-5 : 1e-4;
    epochs.forEach((got, i) => {
      assert.ok(Math.abs(got.loss - wantMlm[i].loss) <= tolerance * wantMlm[i].loss, `${label}, epoch ${i + 1}: loss ${got.loss} vs ${wantMlm[i].loss}`);
      assert.ok(Math.abs(got.validationPerplexity - wantMlm[i].validation_perplexity) <= tolerance * wantMlm[i].validation_perplexity, `${label}: perplexity`);
    });
    assert.equal(filled[0].length, 5, label);
    assert.match(error, /^WebnluError: .*no masked-LM head/, label);
    console.log(`# trainMaskedLM ${label}: losses ${epochs.map((e) => e.loss.toFixed(6)).join(', ')} (CLI ${wantMlm.map((e) => e.loss.toFixed(6)).join(', ')}), ` +
      `held-out perplexity ${epochs.map((e) => e.validationPerplexity.toFixed(3)).join(', ')}`);
  }
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

// The training options reach Rust's one reader (TrainOptions::from_json) unchanged on every path
// (the page thread, a worker, the pool): a misspelt option (also a misspelt callback, a function
// value), a value of the wrong type and one out of range are refused by name before any epoch.
test('training options: unknown, ill-typed and out-of-range options are refused by name on every path', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const runs = await page.evaluate(async ({ paths, examples }) => {
    const out = [];
    for (const options of paths) {
      const rt = await window.webnlu.Runtime.create(options);
      const model = await rt.loadModel('/reference/bert-random-ner/');
      const messages = [];
      for (const bad of [{ learning_rate: 0.1 }, { onEpoch: () => {} }, { epochs: '3' }, { validation: 1.5 }, { pooling: 'mean' }]) {
        let epochs = 0;
        try {
          await model.trainTokenClassifier(examples, { ...bad, onProgress: () => { epochs += 1; } }).done;
          messages.push(null);
        } catch (e) {
          messages.push(`${e.name}: ${e.message} (epochs ${epochs})`);
        }
      }
      out.push({ options, device: rt.device, worker: rt.worker, messages });
      rt.dispose();
    }
    return out;
  }, { paths: PATHS, examples: tinyNerSet() });
  await page.close();
  for (const { options, device, worker, messages } of runs) {
    const label = `${device.kind.toUpperCase()}, ${options.threads ? `pool of ${device.threads}` : worker ? 'worker' : 'page thread'}`;
    const patterns = [
      /^WebnluError: .*unknown training option: unknown field `learning_rate`, expected one of `freeze`, `epochs`, `learningRate`.* \(epochs 0\)$/,
      /^WebnluError: .*unknown training option: unknown field `onEpoch`.* \(epochs 0\)$/,
      /^WebnluError: .*training option epochs: invalid type: string "3".* \(epochs 0\)$/,
      /^WebnluError: .*validation must be the fraction of examples to hold out, in \[0, 1\), found 1\.5 \(epochs 0\)$/,
      /^WebnluError: .*pooling does not apply to token classification.* \(epochs 0\)$/,
    ];
    patterns.forEach((pattern, i) => assert.match(messages[i] ?? 'no error', pattern, label));
  }
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

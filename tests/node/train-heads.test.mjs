// Fine-tuning from JavaScript equal to the native CLI, epoch by epoch (Node, the CPU path):
// `trainTokenClassifier` (NER on word-labelled sentences, as arrays or CoNLL text) equal to
// `webnlu train-tokens`, its held-out entity scores included, for head-only and all-layers
// training; then `classifyTokens` on the result, save -> load, stop(), and the errors for bad
// input. Also `trainClassifier` with the optimizer options (accumulation, weight decay, warmup,
// clipping, pooling) equal to `webnlu train-head` with the same flags: every option reaches Rust;
// and regression (`trainRegressor`, `predict`) and multi-label classification (`task:
// 'multi_label'`, sigmoid scores and `labels`) equal to `webnlu train-head --task`; and masked-LM
// fine-tuning (`trainMaskedLM`, the committed random BertForPreTraining) equal to
// `webnlu train-mlm`, its held-out perplexity falling, fillMask and save on the result.
// The model: the committed random BertForTokenClassification (bert-random-ner, 2 layers, width
// 32); the data: a tiny hand-written NER set of the model's 84-word vocabulary (written here).
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = process.env.WEBNLU_CLI ?? `${ROOT}target/debug/webnlu`;
for (const [file, how] of [[`${ROOT}pkg/index.js`, 'make pkg'], [CLI, 'cargo build --bin webnlu']]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}
const { Runtime, WebnluError } = await import(`${ROOT}pkg/index.js`);

const NER = `${ROOT}tests/fixtures/bert-reference/random/bert-random-ner`;
const DIR = `${ROOT}target/node-tests`;

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

function conll(examples) {
  return `-DOCSTART- O\n\n${examples.map((e) => e.words.map((w, i) => `${w} ${e.labels[i]}`).join('\n')).join('\n\n')}\n`;
}

function nerFiles() {
  return { files: Object.fromEntries(['config.json', 'vocab.txt', 'model.safetensors'].map((name) => [name, readFileSync(`${NER}/${name}`)])) };
}

/** The epoch lines of a CLI training command. */
function cliEpochs(command, args) {
  return execFileSync(CLI, [command, '--model', NER, '--device', 'cpu', ...args],
    { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } })
    .split('\n').filter(Boolean).map((line) => JSON.parse(line)).filter((line) => line.epoch !== undefined);
}

/** 1e-5 relative: the same Rust f32 code natively and as wasm, on the same CPU. */
function assertClose(got, want, what) {
  assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(Math.abs(want), 1e-6), `${what}: ${got} vs the CLI's ${want}`);
}

let rt;
before(async () => {
  rt = await Runtime.create({ device: 'cpu' });
  mkdirSync(DIR, { recursive: true });
});
after(() => rt?.dispose());

test('trainTokenClassifier equals `webnlu train-tokens` epoch by epoch (head and all), arrays and CoNLL text alike', async () => {
  const examples = tinyNerSet();
  const file = `${DIR}/tiny-ner.conll`;
  writeFileSync(file, conll(examples));
  const settings = { epochs: 3, learningRate: 2e-2, batchSize: 4, accumulation: 2, validation: 0.25, seed: 5, weightDecay: 0.02, warmupRatio: 0.2, maxGradNorm: 0.5 };
  const flags = ['--examples', file, '--epochs', '3', '--learning-rate', '0.02', '--batch-size', '4', '--accumulation', '2',
    '--validation', '0.25', '--seed', '5', '--weight-decay', '0.02', '--warmup-ratio', '0.2', '--max-grad-norm', '0.5'];
  for (const freeze of ['head', 'all']) {
    const want = cliEpochs('train-tokens', [...flags, '--freeze', freeze]);
    for (const input of ['array', 'conll']) {
      const model = await rt.loadModel(nerFiles());
      const seen = [];
      const run = model.trainTokenClassifier(input === 'array' ? examples : conll(examples), { ...settings, freeze, onProgress: (r) => seen.push(r) });
      const { epochs, stopped } = await run.done;
      assert.equal(stopped, false);
      assert.equal(epochs.length, 3);
      assert.deepEqual(seen, epochs);
      epochs.forEach((got, i) => {
        const label = `${freeze}, ${input}, epoch ${i + 1}`;
        assertClose(got.loss, want[i].loss, `${label} loss`);
        assertClose(got.accuracy, want[i].accuracy, `${label} accuracy`);
        assertClose(got.validationAccuracy, want[i].validation_accuracy, `${label} validation accuracy`);
        const [g, w] = [got.validationEntities, want[i].validation_entities];
        assert.deepEqual(Object.keys(g.perType), Object.keys(w.per_type), label);
        for (const key of ['precision', 'recall', 'f1', 'support']) {
          assertClose(g.overall[key], w.overall[key], `${label} entity ${key}`);
          for (const type of Object.keys(w.per_type)) assertClose(g.perType[type][key], w.per_type[type][key], `${label} ${type} ${key}`);
        }
        assert.ok(got.seconds >= 0);
      });
      if (freeze === 'all' && input === 'array') {
        assert.ok(epochs.some((e) => e.validationEntities.overall.f1 > 0), 'some entities found: the scores compared are not all 0');
        console.log(`# trainTokenClassifier (all, CPU, Node) vs train-tokens: losses ${epochs.map((e) => e.loss.toFixed(6)).join(', ')}; ` +
          `held-out entity F1 ${epochs.map((e) => e.validationEntities.overall.f1.toFixed(3)).join(', ')}`);
      }
      model.dispose();
    }
  }
});

test('after trainTokenClassifier, classifyTokens labels words with the new head, and the saved model loads the same', async () => {
  const model = await rt.loadModel(nerFiles());
  const { epochs } = await model.trainTokenClassifier(tinyNerSet(), { freeze: 'all', epochs: 8, learningRate: 1e-2, batchSize: 4, seed: 3 }).done;
  assert.ok(epochs.at(-1).loss < epochs[0].loss / 2, `the loss falls: ${epochs.map((e) => e.loss)}`);
  const tokens = await model.classifyTokens('the old woman saw the big city');
  assert.deepEqual(tokens.map((t) => t.label), ['O', 'B-PER', 'I-PER', 'O', 'O', 'B-LOC', 'I-LOC']);
  const files = await model.save();
  const config = JSON.parse(new TextDecoder().decode(files['config.json']));
  assert.deepEqual(config.architectures, ['BertForTokenClassification']);
  const reloaded = await rt.loadModel({ files });
  assert.deepEqual(await reloaded.classifyTokens('the old woman saw the big city'), tokens);
  model.dispose();
  reloaded.dispose();
});

test('trainTokenClassifier: stop() after the first epoch, and clear errors for bad input', async () => {
  const model = await rt.loadModel(nerFiles());
  const run = model.trainTokenClassifier(tinyNerSet(), { epochs: 5, validation: 0, onProgress: () => run.stop() });
  const result = await run.done;
  assert.equal(result.stopped, true);
  assert.equal(result.epochs.length, 1);
  assert.equal(result.epochs[0].validationEntities, null);
  assert.equal(result.epochs[0].validationAccuracy, null);

  const rejects = (examples, options, pattern) => assert.rejects(async () => model.trainTokenClassifier(examples, options).done, pattern);
  await rejects([{ words: ['a', 'b'], labels: ['O'] }], {}, (e) => e instanceof WebnluError && /examples\[0\] has 2 words but 1 labels/.test(e.message));
  await rejects([], {}, /non-empty array/);
  await rejects('  \n', {}, /empty string/);
  await rejects([{ text: 'a', label: 'b' }], {}, /must be \{ words: string\[\], labels: string\[\] \}/);
  await rejects(tinyNerSet(), { pooling: 'mean' }, /pooling does not apply to token classification/);
  await rejects(tinyNerSet(), { accumulation: 0 }, /accumulation must be a positive integer/);
  await rejects(tinyNerSet(), { maxGradNorm: -1 }, /maxGradNorm must be a positive number, or null/);
  // found by Rust: a CoNLL line without a label, a single label, a policy beyond the layers
  await rejects('the O\ncat\n', {}, /line 2: expected a word and its label/);
  await rejects([{ words: ['a'], labels: ['O'] }], {}, /1 label\(s\)/);
  await rejects(tinyNerSet(), { freeze: 'top:3' }, /top:3: the model has 2 layers/);
  // the model still works
  assert.equal((await model.classifyTokens('the cat')).length, 2);
  model.dispose();
});

test('trainClassifier passes accumulation, weight decay, warmup, clipping and pooling: equal to `webnlu train-head` with those flags', async () => {
  const examples = tinyNerSet().map((e, i) => ({ text: e.words.join(' '), label: i % 3 === 0 ? 'three' : 'other' }));
  const tsv = `${DIR}/tiny-sentences.tsv`;
  writeFileSync(tsv, examples.map((e) => `${e.text}\t${e.label}`).join('\n') + '\n');
  const options = { freeze: 'top:1', epochs: 2, learningRate: 3e-3, batchSize: 4, accumulation: 3, validation: 0.2, seed: 9,
    weightDecay: 0.05, warmupRatio: 0.3, maxGradNorm: null, pooling: 'mean' };
  const want = cliEpochs('train-head', ['--examples', tsv, '--freeze', 'top:1', '--epochs', '2', '--learning-rate', '0.003',
    '--batch-size', '4', '--accumulation', '3', '--validation', '0.2', '--seed', '9', '--weight-decay', '0.05',
    '--warmup-ratio', '0.3', '--max-grad-norm', 'none', '--pooling', 'mean']);
  const model = await rt.loadModel(nerFiles());
  const { epochs } = await model.trainClassifier(examples, options).done;
  epochs.forEach((got, i) => {
    assertClose(got.loss, want[i].loss, `epoch ${i + 1} loss`);
    assertClose(got.validationAccuracy, want[i].validation_accuracy, `epoch ${i + 1} validation accuracy`);
  });
  // the same run with the defaults is another run: the options were not ignored
  const model2 = await rt.loadModel(nerFiles());
  const plain = await model2.trainClassifier(examples, { freeze: 'top:1', epochs: 2, learningRate: 3e-3, batchSize: 4, validation: 0.2, seed: 9 }).done;
  assert.notEqual(plain.epochs[1].loss, epochs[1].loss);
  model.dispose();
  model2.dispose();
});

/** Texts of the random vocabulary: a mood score (regression) and the animals named (multi-label). */
function problemExamples() {
  const animals = ['cat', 'dog', 'bird'];
  const moods = { happy: 1.5, sad: -1.5, good: 1.5, bad: -1.5, old: 0 };
  return Array.from({ length: 30 }, (_, i) => {
    const [a, b, mood] = [animals[i % 3], animals[Math.floor(i / 3) % 3], Object.keys(moods)[i % 5]];
    return { text: `the ${mood} ${a} saw a ${b} near the river`, value: moods[mood], animals: [...new Set([a, b])] };
  });
}

test('trainRegressor / trainClassifier({ task: multi_label }) equal `webnlu train-head --task`; predict gives numbers, classify the labels', async () => {
  const examples = problemExamples();
  const settings = { freeze: 'all', epochs: 3, learningRate: 1e-2, batchSize: 8, validation: 0.2, seed: 4, pooling: 'mean' };
  const flags = ['--freeze', 'all', '--epochs', '3', '--learning-rate', '0.01', '--batch-size', '8', '--validation', '0.2', '--seed', '4', '--pooling', 'mean'];
  for (const task of ['regression', 'multi_label']) {
    const tsv = `${DIR}/problem-${task}.tsv`;
    writeFileSync(tsv, examples.map((e) => `${e.text}\t${task === 'regression' ? e.value : e.animals.join(',')}`).join('\n') + '\n');
    const want = cliEpochs('train-head', ['--examples', tsv, '--task', task === 'regression' ? 'regression' : 'multi-label', ...flags]);
    const model = await rt.loadModel(nerFiles());
    const run = task === 'regression'
      ? model.trainRegressor(examples.map((e) => ({ text: e.text, label: e.value })), settings)
      : model.trainClassifier(examples.map((e) => ({ text: e.text, label: e.animals })), { ...settings, task });
    const { epochs } = await run.done;
    epochs.forEach((got, i) => {
      assertClose(got.loss, want[i].loss, `${task}, epoch ${i + 1} loss`);
      if (task === 'regression') {
        assert.equal(got.accuracy, null);
        assertClose(got.validationMae, want[i].validation_mae, `${task}, epoch ${i + 1} MAE`);
        // Pearson divides by the spread of the predictions, small after an epoch or two (they are
        // nearly constant): the 1e-7 differences of the predictions grow to ~1e-5 relative here
        const pearson = Math.abs(got.validationPearson - want[i].validation_pearson);
        assert.ok(pearson <= 1e-4 * Math.abs(want[i].validation_pearson), `${task}, epoch ${i + 1} Pearson: ${got.validationPearson} vs ${want[i].validation_pearson}`);
      } else {
        assertClose(got.validationAccuracy, want[i].validation_accuracy, `${task}, epoch ${i + 1} exact match`);
      }
    });
    const text = 'the happy cat saw a dog near the river';
    if (task === 'regression') {
      const value = await model.predict(text);
      assert.equal(typeof value, 'number');
      assert.deepEqual(await model.predict([text]), [value]);
      assert.equal((await model.classify(text)).score, value);
    } else {
      const result = await model.classify(text);
      assert.equal(result.scores.length, 3);
      assert.ok(Array.isArray(result.labels), JSON.stringify(result));
      assert.deepEqual(result.labels, ['bird', 'cat', 'dog'].filter((_, i) => result.scores[i] >= 0.5));
      await assert.rejects(model.predict(text), /predict is for a regression head/);
    }
    const files = await model.save();
    const config = JSON.parse(new TextDecoder().decode(files['config.json']));
    assert.equal(config.problem_type, task === 'regression' ? 'regression' : 'multi_label_classification');
    model.dispose();
  }
  const model = await rt.loadModel(nerFiles());
  await assert.rejects(async () => model.trainRegressor([{ text: 'a', label: 'high' }]).done, /must be a finite number for regression/);
  await assert.rejects(async () => model.trainClassifier([{ text: 'a', label: ['x,y'] }], { task: 'multi_label' }).done, /strings without commas/);
  await assert.rejects(async () => model.trainClassifier(examples, { task: 'ranking' }).done, /task must be one of/);
  await assert.rejects(async () => model.trainClassifier([{ text: 'a', label: ['x'] }, { text: 'b', label: [] }], { task: 'multi_label' }).done, /1 label\(s\)/);
  model.dispose();
});

const PRETRAINING = `${ROOT}tests/fixtures/bert-reference/random/bert-random`;

/** 60 sentences of the random vocabulary with a strong pattern. */
function mlmCorpus() {
  const animals = ['cat', 'dog', 'bird', 'fish'];
  const places = ['house', 'tree', 'river'];
  return Array.from({ length: 60 }, (_, i) => `the ${animals[i % 4]} sat on the ${places[i % 3]} and the ${animals[(i + 1) % 4]} saw the ${places[(i + 2) % 3]} .`);
}

test('trainMaskedLM equals `webnlu train-mlm` epoch by epoch; the held-out perplexity falls; fillMask and save use the result', async () => {
  const texts = mlmCorpus();
  const file = `${DIR}/mlm-corpus.txt`;
  writeFileSync(file, texts.join('\n') + '\n');
  const want = execFileSync(CLI, ['train-mlm', '--model', PRETRAINING, '--device', 'cpu', '--texts', file, '--freeze', 'all', '--epochs', '3',
    '--learning-rate', '0.005', '--batch-size', '8', '--accumulation', '2', '--validation', '0.25', '--seed', '2', '--mlm-probability', '0.2'],
  { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } })
    .split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const initial = want[0].initial_validation_perplexity;
  const wantEpochs = want.filter((line) => line.epoch !== undefined);
  const files = Object.fromEntries(['config.json', 'vocab.txt', 'model.safetensors'].map((name) => [name, readFileSync(`${PRETRAINING}/${name}`)]));
  const model = await rt.loadModel({ files });
  const before = await model.fillMask('the cat sat on the [MASK] .');
  const { epochs } = await model.trainMaskedLM(texts, { freeze: 'all', epochs: 3, learningRate: 5e-3, batchSize: 8, accumulation: 2,
    validation: 0.25, seed: 2, mlmProbability: 0.2 }).done;
  epochs.forEach((got, i) => {
    assertClose(got.loss, wantEpochs[i].loss, `epoch ${i + 1} loss`);
    assertClose(got.validationPerplexity, wantEpochs[i].validation_perplexity, `epoch ${i + 1} perplexity`);
  });
  assert.ok(epochs.at(-1).validationPerplexity < initial / 2, `perplexity ${initial} -> ${epochs.map((e) => e.validationPerplexity)}`);
  const after = await model.fillMask('the cat sat on the [MASK] .');
  assert.notDeepEqual(after, before, 'fill-mask reads the trained head');
  const saved = await model.save();
  const reloaded = await rt.loadModel({ files: saved });
  assert.deepEqual(await reloaded.fillMask('the cat sat on the [MASK] .'), after);
  console.log(`# trainMaskedLM (all, CPU, Node) vs train-mlm: held-out perplexity ${initial.toFixed(2)} -> ${epochs.map((e) => e.validationPerplexity.toFixed(2)).join(', ')}`);
  model.dispose();
  reloaded.dispose();

  const noHead = await rt.loadModel(nerFiles());
  await assert.rejects(noHead.trainMaskedLM(texts).done, /no masked-LM head/);
  await assert.rejects(async () => noHead.trainMaskedLM(texts, { mlmProbability: 1.5 }).done, /mlmProbability must be in \(0, 1\)/);
  await assert.rejects(async () => noHead.trainMaskedLM(texts, { pooling: 'mean' }).done, /pooling, windows \/ truncate and the task are options of a classifier/);
  await assert.rejects(async () => noHead.trainMaskedLM([]).done, /texts is empty/);
  await assert.rejects(async () => noHead.trainClassifier([{ text: 'a', label: 'b' }], { mlmProbability: 0.2 }).done, /mlmProbability \(0\.2\) is an option of masked-LM training/);
  noHead.dispose();
});

// The options object goes to Rust as it is (TrainOptions::from_json, the reader the CLI's flags
// share): every kind of run names a misspelt option (with the valid ones), a value of the wrong
// type and a value out of its range, before any epoch; only signal and the callbacks are JS's.
test('training options: unknown, ill-typed and out-of-range options are refused by name for every kind of run', async () => {
  const model = await rt.loadModel(nerFiles());
  const texts = ['the man saw the river', 'a woman found the city'];
  const runs = [
    (options) => model.trainClassifier([{ text: 'the man', label: 'a' }, { text: 'the city', label: 'b' }], options),
    (options) => model.trainTokenClassifier(tinyNerSet(), options),
    (options) => model.trainMaskedLM(texts, options),
  ];
  const refusals = [
    [{ learning_rate: 0.1 }, /unknown training option: unknown field `learning_rate`, expected one of `freeze`, `epochs`, `learningRate`/],
    [{ onEpoch: () => {} }, /unknown training option: unknown field `onEpoch`/],
    [{ epochs: '3' }, /training option epochs: invalid type: string "3"/],
    [{ batchSize: 2.5 }, /training option batchSize: invalid type: floating point `2.5`/],
    [{ freeze: 'top' }, /training option freeze: freeze policy must be head, top:K/],
    [{ epochs: 0 }, /epochs must be a positive integer \(>= 1\), found 0/],
    [{ validation: 1 }, /validation must be the fraction of examples to hold out, in \[0, 1\), found 1/],
    [{ warmupRatio: -0.5 }, /warmupRatio must be in \[0, 1\], found -0.5/],
    [{ learningRate: -1 }, /learningRate must be a finite number >= 0, found -1/],
    [{ mlmProbability: 0 }, /mlmProbability must be in \(0, 1\), found 0/],
  ];
  for (const run of runs) {
    for (const [options, pattern] of refusals) {
      let epochs = 0;
      await assert.rejects(async () => run({ ...options, onProgress: () => { epochs += 1; } }).done,
        (e) => e instanceof WebnluError && pattern.test(e.message), JSON.stringify(options));
      assert.equal(epochs, 0, 'refused before any epoch');
    }
  }
  // JS's own: the callbacks
  assert.throws(() => runs[0]({ onStep: 3 }), /onStep must be a function, got number/);
  assert.throws(() => runs[1]({ onProgress: 'x' }), /onProgress must be a function, got string/);
  // the model still trains after the refusals
  const { epochs } = await runs[1]({ epochs: 1, validation: 0 }).done;
  assert.equal(epochs.length, 1);
  model.dispose();
});

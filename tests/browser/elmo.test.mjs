// ELMo through the package's API in real Chromium (`rt.loadElmo({ options, weights })`, then
// `embed(string[][])`) against the native CLI (`webnlu elmo --device cpu`, the reference): every
// value of every layer of every sentence of AllenNLP's fixture (sentences.json, 30 sentences),
// on the page's thread and in worker mode, on the CPU path (wasm) and the GPU path (WebGPU on
// SwiftShader). The files come by URL (fetched, cached) on the page thread and as a Blob and an
// ArrayBuffer in the worker, so both ways in are used.
//
// Tolerance 1e-5 absolute, on both paths: the values are O(1) (projections clipped to [-3, 3]),
// and the model is tiny (LSTM 64 cells, projections of 16, char-CNN filters up to 64), so every
// sum has at most a few hundred f32 terms: a different order of summation (GPU, native matmul)
// moves a value by ~1e-6 at most, while any wrong gate, mask or direction moves it by ~1e-1.
// The measured differences are printed with each run.
// `trainClassifier` runs in steps: `onStep` reports the steps of each epoch (growing counts,
// the first call of an epoch one step), and the epochs still equal the CLI's; its options are
// Rust's to check (an unknown one and one out of range reject `done` with Rust's message) in
// every mode.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu), the fixture
// tests/fixtures/models/elmo-fixture (bash tests/fixtures/generate.sh), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { MODELS, ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';
import { CLI, maxAbsDiff, requireCli } from './cli-reference.mjs';

const FIXTURE = `${MODELS}/elmo-fixture`;
requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${FIXTURE}/options.json`, 'bash tests/fixtures/generate.sh'],
  [`${FIXTURE}/lm_weights.hdf5`, 'bash tests/fixtures/generate.sh'],
  [`${FIXTURE}/sentences.json`, 'bash tests/fixtures/generate.sh'],
  [`${MODELS}/vader/movieReviewSnippets_GroundTruth.txt`, 'bash tests/setup/fetch-assets.sh vader'],
]);
requireCli();

/** The same absolute tolerance on both paths; the reason is in the header. */
const TOLERANCE = 1e-5;
const SENTENCES = JSON.parse(readFileSync(`${FIXTURE}/sentences.json`, 'utf8')).flat()
  .map((sentence) => sentence.split(/\s+/).filter((word) => word !== ''));

let session;
/** Per sentence, the CLI's layers: [layer][word][dim]. */
let reference;
const errors = [];
const notFound = [];

before(async () => {
  const output = execFileSync(CLI, [
    'elmo', '--options', `${FIXTURE}/options.json`, '--weights', `${FIXTURE}/lm_weights.hdf5`, '--device', 'cpu',
  ], {
    input: `${SENTENCES.map((words) => words.join(' ')).join('\n')}\n`, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  reference = output.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line).layers);
  assert.equal(reference.length, SENTENCES.length, 'one CLI line per sentence');
  session = await openSession();
});

after(() => closeSession(session));

/** Loads the fixture with `rt.loadElmo` on `device`, embeds SENTENCES, returns plain arrays. */
async function runInPage(device, worker) {
  const page = await openHarnessPage(session, errors, notFound);
  const got = await page.evaluate(async ({ device, worker, sentences }) => {
    const { Runtime } = window.webnlu;
    const rt = await Runtime.create({ device, worker });
    const base = '/models/elmo-fixture/';
    const progress = [];
    const onProgress = ({ file, fileIndex }) => progress.push(`${fileIndex}:${file}`);
    const started = performance.now();
    // Page thread: both files by URL. Worker: options.json as a Blob, the weights as an ArrayBuffer.
    const files = worker
      ? { options: await (await fetch(`${base}options.json`)).blob(), weights: await (await fetch(`${base}lm_weights.hdf5`)).arrayBuffer() }
      : { options: `${base}options.json`, weights: `${base}lm_weights.hdf5` };
    const elmo = await rt.loadElmo(files, { onProgress });
    const loadSeconds = (performance.now() - started) / 1000;
    const embedStarted = performance.now();
    const out = await elmo.embed(sentences);
    const embedSeconds = (performance.now() - embedStarted) / 1000;
    const [K, B, T, D] = out.shape;
    // Every value beyond a sentence's length must be zero.
    let paddingNonZero = 0;
    for (let k = 0; k < K; k++) {
      for (let b = 0; b < B; b++) {
        for (let t = out.lengths[b]; t < T; t++) {
          for (let j = 0; j < D; j++) if (out.layers[((k * B + b) * T + t) * D + j] !== 0) paddingNonZero++;
        }
      }
    }
    const layers = sentences.map((_, b) => out.sentence(b).map((layer) => layer.map((vector) => Array.from(vector))));
    const result = {
      device: rt.device, worker: rt.worker, elmoDevice: elmo.device, numLayers: elmo.numLayers, outputDim: elmo.outputDim,
      shape: out.shape, lengths: out.lengths, paddingNonZero, layers, progress: [...new Set(progress)],
      loadSeconds, embedSeconds,
    };
    elmo.dispose();
    try { await elmo.embed(sentences); } catch (error) { result.afterDispose = error.name; }
    rt.dispose();
    return result;
  }, { device, worker, sentences: SENTENCES });
  await page.close();
  return got;
}

function compare(got, device, worker, label) {
  assert.equal(got.device.kind, device, `${label}: asked for ${device}, got ${JSON.stringify(got.device)}`);
  assert.equal(got.elmoDevice, device);
  assert.equal(got.worker, worker);
  assert.equal(got.numLayers, 3);
  assert.equal(got.outputDim, 32);
  const longest = Math.max(...SENTENCES.map((words) => words.length));
  assert.deepEqual(got.shape, [3, SENTENCES.length, longest, 32]);
  assert.deepEqual(got.lengths, SENTENCES.map((words) => words.length));
  assert.equal(got.paddingNonZero, 0, `${label}: values beyond the sentences' lengths`);
  assert.equal(got.afterDispose, 'DisposedError');
  assert.deepEqual(got.progress, ['0:options.json', '1:weights.hdf5']);
  let worst = 0;
  let compared = 0;
  got.layers.forEach((layers, s) => {
    assert.equal(layers.length, reference[s].length, `${label}: layers of sentence ${s}`);
    layers.forEach((words, k) => {
      assert.equal(words.length, reference[s][k].length, `${label}: words of sentence ${s} layer ${k}`);
      words.forEach((vector, t) => {
        worst = Math.max(worst, maxAbsDiff(vector, reference[s][k][t]));
        compared += vector.length;
      });
    });
  });
  assert.ok(compared > 10_000, `${label}: compared only ${compared} values`);
  assert.ok(worst <= TOLERANCE, `${label}: max |browser - native CPU| = ${worst} > ${TOLERANCE}`);
  console.log(`# ${label}: device ${JSON.stringify(got.device)}; max |diff| vs native CPU over ${compared} values: ` +
    `${worst.toExponential(2)}; load ${got.loadSeconds.toFixed(2)} s, embed ${SENTENCES.length} sentences ${got.embedSeconds.toFixed(2)} s`);
}

test('CPU path (wasm), page thread and worker: loadElmo + embed equal the native CLI', async () => {
  compare(await runInPage('cpu', false), 'cpu', false, 'ELMo CPU, page thread');
  compare(await runInPage('cpu', true), 'cpu', true, 'ELMo CPU, worker');
});

test('GPU path (WebGPU on SwiftShader), page thread and worker: loadElmo + embed equal the native CLI', async () => {
  compare(await runInPage('gpu', false), 'gpu', false, 'ELMo GPU, page thread');
  compare(await runInPage('gpu', true), 'gpu', true, 'ELMo GPU, worker');
});

test('bad input: a clear error, and the model keeps working', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const got = await page.evaluate(async () => {
    const rt = await window.webnlu.Runtime.create({ device: 'cpu', worker: true });
    const base = '/models/elmo-fixture/';
    const out = {};
    const message = (error) => `${error.name}: ${error.message}`;
    try { await rt.loadElmo({ options: '{"lstm": ', weights: `${base}lm_weights.hdf5` }); } catch (error) { out.badJson = message(error); }
    try { await rt.loadElmo({ options: `${base}options.json`, weights: new Uint8Array([1, 2, 3, 4]) }); } catch (error) { out.badWeights = message(error); }
    try { await rt.loadElmo({ options: `${base}options.json` }); } catch (error) { out.noWeights = message(error); }
    const elmo = await rt.loadElmo({ options: `${base}options.json`, weights: `${base}lm_weights.hdf5` });
    try { await elmo.embed(['not tokenized']); } catch (error) { out.notTokenized = message(error); }
    try { await elmo.embed([]); } catch (error) { out.empty = message(error); }
    out.after = (await elmo.embed([['still', 'works']])).shape;
    elmo.dispose();
    rt.dispose();
    return out;
  });
  await page.close();
  assert.match(got.badJson, /^ModelLoadError: .*options\.json is not valid JSON/);
  assert.match(got.badWeights, /^WebnluError: .*(hdf5|HDF5|signature|weights)/);
  assert.match(got.noWeights, /give \{ options, weights \}/);
  assert.match(got.notTokenized, /sentences\[0\] must be an array of words/);
  assert.match(got.empty, /sentences is empty/);
  assert.deepEqual(got.after, [3, 1, 2, 32]);
});

// ---- training a classifier on ELMo features, and stateful embedding, against the CLI

/** 80 labelled movie-review lines of VADER (id<TAB>rating<TAB>text, rating != 0): 60 train, 20 held out. */
const RATED_LINES = readFileSync(`${MODELS}/vader/movieReviewSnippets_GroundTruth.txt`, 'utf8')
  .split('\n').map((line) => line.replace(/\r$/, ''))
  .filter((line) => {
    const [, rating, text] = line.split('\t');
    return text !== undefined && Number(rating) !== 0 && text.trim() !== '';
  }).slice(0, 80);
/** The same sentences as `trainClassifier` examples: the CLI's words and label (sign of the rating). */
const RATED_EXAMPLES = RATED_LINES.map((line) => {
  const [, rating, text] = line.split('\t');
  return { text, label: Number(rating) > 0 ? 1 : 0 };
});
/** Training settings given to both: the CLI's flags and the JS options. */
const TRAIN = { epochs: 2, batchSize: 16, learningRate: 0.01, seed: 3 };
/** Tolerance of the epoch figures: means of O(1) losses over features that differ by ~1e-6. */
const TRAIN_TOLERANCE = 1e-4;

function cliTrainingEpochs() {
  const data = `${mkdtempSync(`${tmpdir()}/webnlu-elmo-`)}/rated.tsv`;
  writeFileSync(data, `${RATED_LINES.join('\n')}\n`);
  const output = execFileSync(CLI, [
    'elmo-train', '--options', `${FIXTURE}/options.json`, '--weights', `${FIXTURE}/lm_weights.hdf5`, '--data', data,
    '--train', '60', '--test', '20', '--epochs', String(TRAIN.epochs), '--batch-size', String(TRAIN.batchSize),
    '--lr', String(TRAIN.learningRate), '--seed', String(TRAIN.seed), '--mix', '--device', 'cpu',
  ], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  return output.trim().split('\n').map((line) => JSON.parse(line));
}

/** `webnlu elmo --stateful --batch-size 3` over the first 6 fixture sentences: two calls of 3. */
function cliStatefulLayers() {
  const output = execFileSync(CLI, [
    'elmo', '--options', `${FIXTURE}/options.json`, '--weights', `${FIXTURE}/lm_weights.hdf5`, '--device', 'cpu',
    '--stateful', '--batch-size', '3',
  ], { input: `${SENTENCES.slice(0, 6).map((words) => words.join(' ')).join('\n')}\n`, encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  return output.trim().split('\n').map((line) => JSON.parse(line).layers);
}

/** In a page: stateful embedding in two calls, then a head + mix classifier, with `runtimeOptions`. */
async function trainInPage(runtimeOptions) {
  const page = await openHarnessPage(session, errors, notFound);
  const got = await page.evaluate(async ({ runtimeOptions, sentences, examples, train }) => {
    const rt = await window.webnlu.Runtime.create(runtimeOptions);
    const base = '/models/elmo-fixture/';
    const elmo = await rt.loadElmo({ options: `${base}options.json`, weights: `${base}lm_weights.hdf5` });
    const asLists = (out) => out.lengths.map((_, b) => out.sentence(b).map((layer) => layer.map((v) => Array.from(v))));
    const stateful = [
      ...asLists(await elmo.embed(sentences.slice(0, 3), { stateful: true })),
      ...asLists(await elmo.embed(sentences.slice(3, 6), { stateful: true })),
    ];
    await elmo.resetState();
    const fresh = asLists(await elmo.embed(sentences.slice(3, 6), { stateful: true }));
    const progress = [];
    const steps = [];
    const run = elmo.trainClassifier(examples, {
      training: 'mix', validation: 0.25, ...train, onProgress: (report) => progress.push(report.epoch),
      onStep: (step) => steps.push([step.phase, step.epoch, step.done, step.total]),
    });
    const done = await run.done;
    const predictions = await run.classify(['a wonderful , moving film', ['dull', 'and', 'tedious']]);
    const out = { device: rt.device.kind, stateful, fresh, epochs: done.epochs, progress, steps, labels: run.labels, predictions };
    run.dispose();
    try { await run.classify(['x']); } catch (error) { out.afterDispose = error.name; }
    try { await elmo.trainClassifier([{ text: 'only one label', label: 'a' }, { text: 'same', label: 'a' }]).done; } catch (error) { out.oneLabel = error.message; }
    try { elmo.trainClassifier([{ words: [], label: 1 }]); } catch (error) { out.noWords = error.message; }
    // the options go to Rust as they are (ElmoTrainOptions::from_json): its refusals reject `done`
    const refusal = async (options) => {
      try { await elmo.trainClassifier(examples, options).done; return 'trained'; } catch (error) { return `${error.name}: ${error.message}`; }
    };
    out.badTraining = await refusal({ training: 'everything' });
    out.unknownOption = await refusal({ lerningRate: 0.1 });
    out.outOfRange = await refusal({ batchSize: 0 });
    elmo.dispose();
    rt.dispose();
    return out;
  }, { runtimeOptions, sentences: SENTENCES, examples: RATED_EXAMPLES, train: TRAIN });
  await page.close();
  return got;
}

function compareTraining(got, cliEpochs, cliStateful, label) {
  assert.equal(got.device, label.startsWith('GPU') ? 'gpu' : 'cpu', label);
  // Stateful: the second call continues the first call's rows, as the CLI's second batch does.
  let worst = 0;
  got.stateful.forEach((layers, s) => layers.forEach((words, k) => words.forEach((vector, t) => {
    worst = Math.max(worst, maxAbsDiff(vector, cliStateful[s][k][t]));
  })));
  assert.ok(worst <= TOLERANCE, `${label}: stateful embed vs CLI: ${worst}`);
  // After resetState the same sentences start fresh: as the stateless reference, not as the continued rows.
  let freshWorst = 0;
  let continuedGap = 0;
  got.fresh.forEach((layers, s) => layers.forEach((words, k) => words.forEach((vector, t) => {
    freshWorst = Math.max(freshWorst, maxAbsDiff(vector, reference[3 + s][k][t]));
    continuedGap = Math.max(continuedGap, maxAbsDiff(vector, cliStateful[3 + s][k][t]));
  })));
  assert.ok(freshWorst <= TOLERANCE, `${label}: after resetState vs stateless CLI: ${freshWorst}`);
  assert.ok(continuedGap > 1e-3, `${label}: the kept state changes the layers (gap ${continuedGap})`);
  // Training: epoch by epoch what `webnlu elmo-train --mix` reports.
  assert.deepEqual(got.progress, [1, 2]);
  // Within each epoch (60 sentences in batches of 16: 4 steps) the engine calls take a few steps
  // each, the first one step: onStep reports step 1 of 4 first, then growing counts below 4.
  for (const epoch of [1, 2]) {
    const ofEpoch = got.steps.filter(([, e]) => e === epoch);
    assert.deepEqual(ofEpoch[0], ['training', epoch, 1, 4], `${label}: ${JSON.stringify(got.steps)}`);
    assert.ok(ofEpoch.every(([phase, , done, total], i) => phase === 'training' && total === 4 && done < 4
      && (i === 0 || done > ofEpoch[i - 1][2])), `${label}: ${JSON.stringify(got.steps)}`);
  }
  assert.deepEqual(got.labels, ['0', '1']);
  got.epochs.forEach((epoch, i) => {
    const want = cliEpochs[i];
    assert.equal(epoch.epoch, want.epoch);
    assert.equal(epoch.trainSentences, 60);
    assert.equal(epoch.heldOutSentences, 20);
    for (const [js, cli] of [['trainLoss', 'train_loss'], ['testLoss', 'test_loss'], ['trainAccuracy', 'train_accuracy'],
      ['testAccuracy', 'test_accuracy'], ['testChance', 'test_chance'], ['mixGamma', 'mix_gamma']]) {
      assert.ok(Math.abs(epoch[js] - want[cli]) <= TRAIN_TOLERANCE, `${label} epoch ${i + 1} ${js}: ${epoch[js]} vs CLI ${want[cli]}`);
    }
    assert.ok(maxAbsDiff(epoch.mixWeights, want.mix_weights) <= TRAIN_TOLERANCE, `${label}: mix weights`);
  });
  assert.equal(got.predictions.length, 2);
  for (const p of got.predictions) {
    assert.ok(Math.abs(p.scores[0] + p.scores[1] - 1) < 1e-5 && p.score === Math.max(...p.scores), JSON.stringify(p));
    assert.ok(['0', '1'].includes(p.label));
  }
  assert.equal(got.afterDispose, 'DisposedError');
  assert.match(got.oneLabel, /1 distinct label/);
  assert.match(got.noWords, /examples\[0\] has no words/);
  assert.match(got.badTraining, /training must be 'head', 'mix' or 'end-to-end'/);
  assert.match(got.unknownOption, /^WebnluError: .*unknown training option: unknown field `lerningRate`, expected one of `training`, `epochs`, `batchSize`/, label);
  assert.match(got.outOfRange, /^WebnluError: .*batchSize must be a positive integer \(>= 1\), found 0/, label);
  console.log(`# ${label}: stateful max |diff| ${worst.toExponential(2)}; epochs ${got.epochs.map((e) =>
    `loss ${e.trainLoss.toFixed(4)} held-out ${e.testAccuracy.toFixed(3)}`).join(', ')}`);
}

test('trainClassifier and stateful embed equal the CLI (elmo-train --mix, elmo --stateful): CPU page, worker, pool of 2; GPU page, worker', async () => {
  const cliEpochs = cliTrainingEpochs();
  const cliStateful = cliStatefulLayers();
  assert.equal(cliEpochs.length, TRAIN.epochs);
  compareTraining(await trainInPage({ device: 'cpu', worker: false }), cliEpochs, cliStateful, 'CPU, page thread');
  compareTraining(await trainInPage({ device: 'cpu', worker: true }), cliEpochs, cliStateful, 'CPU, worker');
  compareTraining(await trainInPage({ device: 'cpu', threads: 2 }), cliEpochs, cliStateful, 'CPU, pool of 2 workers');
  compareTraining(await trainInPage({ device: 'gpu', worker: false }), cliEpochs, cliStateful, 'GPU, page thread');
  compareTraining(await trainInPage({ device: 'gpu', worker: true }), cliEpochs, cliStateful, 'GPU, worker');
});

test('no errors in the console', () => {
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

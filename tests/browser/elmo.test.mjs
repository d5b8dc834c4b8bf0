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
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu), the fixture
// tests/fixtures/models/elmo-fixture (bash tests/fixtures/generate.sh), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { MODELS, ROOT, openPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';
import { CLI, maxAbsDiff, requireCli } from './cli-reference.mjs';

const FIXTURE = `${MODELS}/elmo-fixture`;
requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${FIXTURE}/options.json`, 'bash tests/fixtures/generate.sh'],
  [`${FIXTURE}/lm_weights.hdf5`, 'bash tests/fixtures/generate.sh'],
  [`${FIXTURE}/sentences.json`, 'bash tests/fixtures/generate.sh'],
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

after(async () => {
  await session?.browser.close();
  session?.server.close();
});

/** Loads the fixture with `rt.loadElmo` on `device`, embeds SENTENCES, returns plain arrays. */
async function runInPage(device, worker) {
  const page = await openPage(await session.browser.newContext(), `${session.url}harness/`, errors, undefined, notFound);
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
  const page = await openPage(await session.browser.newContext(), `${session.url}harness/`, errors, undefined, notFound);
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

test('no errors in the console', () => {
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

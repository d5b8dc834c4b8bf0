// webnlu: the JavaScript API of the npm package.
//
// The Rust core is compiled to WebAssembly and exposed by wasm-bindgen as low-level classes
// (`./webnlu_wasm.js`, generated at build time). This file is the friendly layer on top: it loads
// the module once (browser or Node), checks text before it crosses into Rust, turns Rust errors
// into `WebnluError`s and returns plain objects of typed arrays. Types and documentation for every
// export are in `index.d.ts`.

import initWasm, { WasmTokenizer, webnluVersion as wasmVersion } from './webnlu_wasm.js';

/** Error thrown by every webnlu function; `message` says what is wrong and with which input. */
export class WebnluError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'WebnluError';
  }
}

let ready = null;
let initialized = false;

const isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null;

/**
 * Loads and instantiates the WebAssembly module. Call (and await) it once before anything else;
 * later calls return the same promise. `source` may be a URL, a Response, bytes or a compiled
 * `WebAssembly.Module`. Without one, browsers fetch `webnlu_wasm_bg.wasm` next to this file and
 * Node reads that file from disk.
 */
export function init(source) {
  if (ready === null) {
    ready = (async () => {
      let input = source;
      if (input === undefined && isNode) {
        // Node's fetch() cannot read file: URLs, so read the bytes ourselves. The specifier is a
        // variable so that browser bundlers do not try to resolve a Node built-in.
        const fsModule = 'node:fs/promises';
        const { readFile } = await import(/* @vite-ignore */ fsModule);
        input = await readFile(new URL('./webnlu_wasm_bg.wasm', import.meta.url));
      }
      await initWasm(input === undefined ? undefined : { module_or_path: input });
      initialized = true;
    })();
    ready.catch(() => { ready = null; });
  }
  return ready;
}

export default init;

/** Throws unless `init()` has finished. */
function assertReady(what) {
  if (!initialized) {
    throw new WebnluError(`${what}: call and await init() first`);
  }
}

/** The version of the webnlu crate compiled into the loaded module (after `init()`). */
export function webnluVersion() {
  assertReady('webnluVersion');
  return wasmVersion();
}

/**
 * Index of the first lone UTF-16 surrogate in `text`, or -1 when the text is well formed.
 * JavaScript strings may hold unpaired surrogates (for example a string cut in the middle of an
 * emoji); they are not Unicode text and cannot become the UTF-8 that the Rust side reads.
 */
export function findLoneSurrogate(text) {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) { i++; continue; }
      return i;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return i;
  }
  return -1;
}

function checkText(text, name) {
  if (typeof text !== 'string') {
    throw new WebnluError(`${name} must be a string, got ${text === null ? 'null' : typeof text}`);
  }
  // isWellFormed() is fast native code where it exists (Chrome 111, Node 20); fall back to a scan.
  if (typeof text.isWellFormed === 'function' ? text.isWellFormed() : findLoneSurrogate(text) < 0) return;
  const at = findLoneSurrogate(text);
  const hex = text.charCodeAt(at).toString(16).toUpperCase();
  throw new WebnluError(
    `${name} contains a lone UTF-16 surrogate U+${hex} at index ${at}, which is not valid Unicode; ` +
    `repair it first, e.g. with text.toWellFormed(), which replaces it by U+FFFD ` +
    `(the BERT normalizer then drops that character)`);
}

/** Runs a call into Rust, turning its JsError into a WebnluError. */
function callRust(what, fn) {
  try {
    return fn();
  } catch (error) {
    if (error instanceof WebnluError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new WebnluError(message.startsWith(what) ? message : `${what}: ${message}`, { cause: error });
  }
}

function optionalNonNegativeInteger(value, name) {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new WebnluError(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

const TRUNCATION_STRATEGIES = ['longest_first', 'only_first', 'only_second'];

/**
 * Copies an encoding and its overflow windows out of wasm memory into plain JS values and
 * frees the Rust side. `vocab` is the tokenizer's token list, to name the tokens without
 * sending strings across.
 */
function takeEncoding(wasmEncoding, tokenizer, vocab) {
  try {
    // [W, T_0 .. T_{W-1}, per window: ids | typeIds | attentionMask | specialTokensMask | offsets (2T)]
    const all = wasmEncoding.packed();
    const strings = wasmEncoding.tokensUnlessVocab(tokenizer);
    const windowCount = all[0];
    const windows = [];
    let at = 1 + windowCount;
    let tokenAt = 0;
    for (let w = 0; w < windowCount; w++) {
      const n = all[1 + w];
      const ids = all.slice(at, at + n);
      windows.push({
        ids,
        typeIds: all.slice(at + n, at + 2 * n),
        attentionMask: all.slice(at + 2 * n, at + 3 * n),
        specialTokensMask: all.slice(at + 3 * n, at + 4 * n),
        offsets: all.slice(at + 4 * n, at + 6 * n),
        tokens: strings ? strings.slice(tokenAt, tokenAt + n) : Array.from(ids, (id) => vocab[id]),
        overflowing: [],
      });
      at += 6 * n;
      tokenAt += n;
    }
    windows[0].overflowing = windows.slice(1);
    return windows[0];
  } finally {
    wasmEncoding.free();
  }
}

/**
 * A WordPiece tokenizer (BERT family) with the same results as Hugging Face `tokenizers`:
 * ids, type ids, attention mask, special-tokens mask, tokens and offsets. Offsets are in UTF-16
 * code units, so `text.slice(offsets[2 * i], offsets[2 * i + 1])` is the text of token `i`.
 * Call `free()` when done to release its memory in the wasm heap.
 */
export class Tokenizer {
  /** @private Use `Tokenizer.fromVocab` or `Tokenizer.fromTokenizerJson`. */
  constructor(inner) {
    this._inner = inner;
    this._vocab = null; // the vocabulary's tokens by id, fetched at the first encode
  }

  /** @private The wasm object; throws once `free()` has run. */
  get inner() {
    if (this._inner === null) throw new WebnluError('this Tokenizer was freed');
    return this._inner;
  }

  /** Builds a tokenizer from the text of a `vocab.txt` (one token per line, id = line number). */
  static fromVocab(vocabText, options = {}) {
    assertReady('Tokenizer.fromVocab');
    checkText(vocabText, 'vocab text');
    const { lowercase = true, stripAccents, handleChineseChars = true, cleanText = true } = options;
    if (stripAccents !== undefined && typeof stripAccents !== 'boolean') {
      throw new WebnluError(`stripAccents must be true, false or undefined (follow lowercase), got ${stripAccents}`);
    }
    return new Tokenizer(callRust('vocab.txt', () =>
      WasmTokenizer.fromVocab(vocabText, Boolean(lowercase), stripAccents, Boolean(handleChineseChars), Boolean(cleanText))));
  }

  /** Builds a tokenizer from the text of a Hugging Face `tokenizer.json` (BERT WordPiece only). */
  static fromTokenizerJson(jsonText) {
    assertReady('Tokenizer.fromTokenizerJson');
    checkText(jsonText, 'tokenizer.json text');
    return new Tokenizer(callRust('tokenizer.json', () => WasmTokenizer.fromTokenizerJson(jsonText)));
  }

  /**
   * Tokenizes `text`, or the pair (`text`, `pair`) as `[CLS] text [SEP] pair [SEP]`.
   * Options override the truncation and padding read from a tokenizer.json.
   */
  encode(text, pair, options = {}) {
    if (pair !== undefined && pair !== null && typeof pair === 'object') {
      options = pair;
      pair = undefined;
    }
    checkText(text, 'text');
    if (pair !== undefined && pair !== null) checkText(pair, 'pair');
    const { addSpecialTokens = true, maxLength, stride, truncation, padding } = options;
    if (truncation !== undefined && !TRUNCATION_STRATEGIES.includes(truncation)) {
      throw new WebnluError(`truncation must be one of ${TRUNCATION_STRATEGIES.join(', ')}, got ${truncation}`);
    }
    const max = maxLength === false ? undefined : optionalNonNegativeInteger(maxLength, 'maxLength');
    const strideValue = optionalNonNegativeInteger(stride, 'stride');
    const padTo = padding === false ? undefined : optionalNonNegativeInteger(padding, 'padding');
    const inner = this.inner;
    this._vocab ??= inner.vocabTokens();
    return takeEncoding(callRust('encode', () => inner.encode(
      text, pair ?? undefined, Boolean(addSpecialTokens), max, strideValue, truncation,
      maxLength === false, padTo, padding === false)), inner, this._vocab);
  }

  /** Turns ids back into text: `##` pieces joined, spaces before punctuation cleaned as HF does. */
  decode(ids, options = {}) {
    const { skipSpecialTokens = true } = options;
    let array = ids;
    if (!(array instanceof Uint32Array)) {
      if (!Array.isArray(array) && !ArrayBuffer.isView(array)) {
        throw new WebnluError('ids must be an array or a typed array of token ids');
      }
      for (const id of array) {
        if (!Number.isInteger(Number(id)) || Number(id) < 0 || Number(id) > 0xffffffff) {
          throw new WebnluError(`ids must be non-negative integers, found ${id}`);
        }
      }
      array = Uint32Array.from(array, Number);
    }
    return callRust('decode', () => this.inner.decode(array, Boolean(skipSpecialTokens)));
  }

  /** Number of tokens in the vocabulary. */
  get vocabSize() {
    return this.inner.vocabSize();
  }

  /** The id of `token`, or undefined when it is not in the vocabulary. */
  tokenToId(token) {
    checkText(token, 'token');
    return this.inner.tokenToId(token);
  }

  /** The token with id `id`, or undefined when there is none. */
  idToToken(id) {
    return this.inner.idToToken(id);
  }

  /** Releases the tokenizer's memory in the wasm heap; the object cannot be used afterwards. */
  free() {
    if (this._inner !== null) this._inner.free();
    this._inner = null;
    this._vocab = null;
  }
}

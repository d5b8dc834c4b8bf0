// The WordPiece tokenizer class of the package: a documented wrapper around the wasm-bindgen
// `WasmTokenizer` that checks text before it crosses into Rust and returns plain objects of
// typed arrays. Also `tokenizerFromFiles`, which picks tokenizer.json or vocab.txt (+ the
// lowercasing of tokenizer_config.json) from a model's files.

import { assertReady, bindings, callRust, checkText } from './wasm-module.js';
import { WebnluError } from './errors.js';

function optionalNonNegativeInteger(value, name) {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new WebnluError(`${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

const TRUNCATION_STRATEGIES = ['longest_first', 'only_first', 'only_second'];

/**
 * An encoding and its overflow windows from the numbers `encodePacked` copied out of wasm
 * memory: `[flag, W, T_0 .. T_{W-1}, per window: ids | typeIds | attentionMask |
 * specialTokensMask | offsets (2T)]`. The typed arrays are views into that one copy (no copy
 * per field); `tokens` are named from `vocab` (the tokenizer's token list), or taken from
 * `strings` when the flag said they are not the vocabulary's.
 */
function unpackEncoding(all, strings, vocab) {
  const windowCount = all[1];
  const windows = [];
  let at = 2 + windowCount;
  let tokenAt = 0;
  for (let w = 0; w < windowCount; w++) {
    const n = all[2 + w];
    const ids = all.subarray(at, at + n);
    const window = {
      ids,
      typeIds: all.subarray(at + n, at + 2 * n),
      attentionMask: all.subarray(at + 2 * n, at + 3 * n),
      specialTokensMask: all.subarray(at + 3 * n, at + 4 * n),
      offsets: all.subarray(at + 4 * n, at + 6 * n),
      tokens: strings ? strings.slice(tokenAt, tokenAt + n) : namesOf(ids, vocab),
      overflowing: [],
    };
    windows.push(window);
    at += 6 * n;
    tokenAt += n;
  }
  windows[0].overflowing = windows.slice(1);
  return windows[0];
}

/** The vocabulary's names of `ids` (a plain loop: faster than `Array.from` with a map). */
function namesOf(ids, vocab) {
  const names = new Array(ids.length);
  for (let i = 0; i < ids.length; i++) names[i] = vocab[ids[i]];
  return names;
}

/**
 * A WordPiece tokenizer (BERT family) with the same results as Hugging Face `tokenizers`:
 * ids, type ids, attention mask, special-tokens mask, tokens and offsets. Offsets are in UTF-16
 * code units, so `text.slice(offsets[2 * i], offsets[2 * i + 1])` is the text of token `i`.
 * Call `free()` when done to release its memory in the wasm heap.
 */
export class Tokenizer {
  /** The wasm tokenizer (null once freed). */
  #inner;
  /** The vocabulary's tokens by id, fetched at the first encode. */
  #vocab = null;

  /** @private Use `Tokenizer.fromVocab` or `Tokenizer.fromTokenizerJson`. */
  constructor(inner) {
    this.#inner = inner;
  }

  /** @private The wasm object; throws once `free()` has run. */
  get inner() {
    if (this.#inner === null) throw new WebnluError('this Tokenizer was freed');
    return this.#inner;
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
      bindings.WasmTokenizer.fromVocab(vocabText, Boolean(lowercase), stripAccents, Boolean(handleChineseChars), Boolean(cleanText))));
  }

  /** Builds a tokenizer from the text of a Hugging Face `tokenizer.json` (BERT WordPiece only). */
  static fromTokenizerJson(jsonText) {
    assertReady('Tokenizer.fromTokenizerJson');
    checkText(jsonText, 'tokenizer.json text');
    return new Tokenizer(callRust('tokenizer.json', () => bindings.WasmTokenizer.fromTokenizerJson(jsonText)));
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
    this.#vocab ??= inner.vocabTokens();
    const all = callRust('encode', () => inner.encodePacked(
      text, pair ?? undefined, Boolean(addSpecialTokens), max, strideValue, truncation,
      maxLength === false, padTo, padding === false));
    return unpackEncoding(all, all[0] === 1 ? inner.takeLastTokens() : null, this.#vocab);
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
    if (this.#inner !== null) this.#inner.free();
    this.#inner = null;
    this.#vocab = null;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of `bytes` (UTF-8), or a WebnluError naming `file`. */
export function decodeUtf8(bytes, file) {
  try {
    return utf8.decode(bytes);
  } catch (error) {
    throw new WebnluError(`${file} is not UTF-8 text`, { cause: error });
  }
}

/**
 * A tokenizer from a model's files (a Map of file name -> Uint8Array): tokenizer.json when
 * there is one, else vocab.txt with the `do_lower_case` of tokenizer_config.json (default true).
 */
export function tokenizerFromFiles(files) {
  if (files.has('tokenizer.json')) return Tokenizer.fromTokenizerJson(decodeUtf8(files.get('tokenizer.json'), 'tokenizer.json'));
  if (files.has('vocab.txt')) {
    let lowercase = true;
    if (files.has('tokenizer_config.json')) {
      let config;
      try {
        config = JSON.parse(decodeUtf8(files.get('tokenizer_config.json'), 'tokenizer_config.json'));
      } catch (error) {
        throw new WebnluError(`tokenizer_config.json is not valid JSON: ${error.message}`, { cause: error });
      }
      if (typeof config.do_lower_case === 'boolean') lowercase = config.do_lower_case;
    }
    return Tokenizer.fromVocab(decodeUtf8(files.get('vocab.txt'), 'vocab.txt'), { lowercase });
  }
  throw new WebnluError(`no tokenizer.json or vocab.txt among the files (${[...files.keys()].join(', ') || 'none'})`);
}

/** The WordPiece tokenizer of the package (declarations; re-exported by index.d.ts). */

import type { WebnluError } from './index.js';

/**
 * Index of the first unpaired UTF-16 surrogate in `text`, or -1 if the text is well formed.
 * Such text is refused by the tokenizer (it is not Unicode); `text.toWellFormed()` repairs it by
 * replacing each lone surrogate with U+FFFD, a character that BERT's normalizer then drops.
 */
export function findLoneSurrogate(text: string): number;

/** Options for a tokenizer built from a plain `vocab.txt`, as in Hugging Face's `BertWordPieceTokenizer`. */
export interface VocabOptions {
  /** Lowercase the text (uncased models). Default true. */
  lowercase?: boolean;
  /** Remove accents (NFD, then drop combining marks). Default: follows `lowercase`. */
  stripAccents?: boolean;
  /** Put spaces around CJK ideographs so that each becomes its own word. Default true. */
  handleChineseChars?: boolean;
  /** Drop control characters and U+FFFD, turn every whitespace into a space. Default true. */
  cleanText?: boolean;
}

/** How to cut a sequence (or pair) that is longer than `maxLength`, as Hugging Face names them. */
export type TruncationStrategy = 'longest_first' | 'only_first' | 'only_second';

/**
 * Per-call options of `Tokenizer.encode`. Left out, truncation and padding are the tokenizer's
 * own (those of its tokenizer.json; none for a vocab.txt).
 */
export interface EncodeOptions {
  /** Add `[CLS]` and `[SEP]` (and pair type ids). Default true. */
  addSpecialTokens?: boolean;
  /**
   * Truncate to this many tokens (special tokens included); the tokens cut off come back as
   * `overflowing` windows. `false`: no truncation, even if the tokenizer.json sets one.
   */
  maxLength?: number | false;
  /** Tokens that each overflow window repeats from the end of the previous one. Default: the tokenizer's, else 0. */
  stride?: number;
  /** Which sequence of a pair loses tokens first. Default: the tokenizer's, else `'longest_first'`. */
  truncation?: TruncationStrategy;
  /**
   * Pad with `[PAD]` (attention mask 0) up to this many tokens. `false`: no padding, even if the
   * tokenizer.json sets one (a `BatchLongest` padding pads the overflow windows to the first).
   */
  padding?: number | false;
}

/**
 * One tokenized text or pair. All arrays have one entry per token, except `offsets` (two).
 * Offsets are UTF-16 code units of the JavaScript string that the token came from (`text` for
 * type id 0, `pair` for type id 1): `text.slice(offsets[2*i], offsets[2*i+1])` is token `i`'s text.
 * Special and padding tokens have the offsets `[0, 0]`. The typed arrays of one encoding (and
 * its windows) are views into one buffer copied out of the wasm heap.
 */
export interface Encoding {
  /** Token ids in the vocabulary. */
  ids: Uint32Array;
  /** 0 for the first text (and `[CLS]` and its `[SEP]`), 1 for the pair's second text. */
  typeIds: Uint32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Uint32Array;
  /** 1 for special tokens (`[CLS]`, `[SEP]`, `[PAD]`), 0 for tokens from the text. */
  specialTokensMask: Uint32Array;
  /** Start and end of every token, flattened: `[start0, end0, start1, end1, ...]`, UTF-16 code units. */
  offsets: Uint32Array;
  /** The tokens as strings; word continuations start with `##`. */
  tokens: string[];
  /** The windows cut off by truncation, in order (each with the same fields, `overflowing` empty). */
  overflowing: Encoding[];
}

/** Options of `Tokenizer.decode`. */
export interface DecodeOptions {
  /** Leave out `[CLS]`, `[SEP]`, `[PAD]` and other special tokens. Default true. */
  skipSpecialTokens?: boolean;
}

/**
 * A BERT WordPiece tokenizer giving the results of Hugging Face `tokenizers` (ids, type ids,
 * masks, tokens, offsets), with a linear-time WordPiece (Song et al., EMNLP 2021).
 * Lives in wasm memory: call `free()` when you no longer need it.
 */
export class Tokenizer {
  private constructor();
  /**
   * A tokenizer from the text of a `vocab.txt` (one token per line; id = line number).
   * @throws WebnluError when the vocab has no `[UNK]`, a duplicate token, or is empty.
   */
  static fromVocab(vocabText: string, options?: VocabOptions): Tokenizer;
  /**
   * A tokenizer from the text of a Hugging Face `tokenizer.json` (BertNormalizer,
   * BertPreTokenizer, WordPiece, BERT post-processor; its truncation and padding are kept).
   * @throws WebnluError when the JSON is malformed or names a type webnlu does not support.
   */
  static fromTokenizerJson(jsonText: string): Tokenizer;
  /**
   * Tokenizes `text`, or the pair `[CLS] text [SEP] pair [SEP]`.
   * @throws WebnluError on a lone surrogate in the text or bad options.
   */
  encode(text: string, pair?: string | null, options?: EncodeOptions): Encoding;
  encode(text: string, options?: EncodeOptions): Encoding;
  /** Ids back to text: `##` pieces joined, spaces before punctuation removed as HF's clean-up does. */
  decode(ids: ArrayLike<number> | Uint32Array, options?: DecodeOptions): string;
  /** Number of tokens in the vocabulary. */
  readonly vocabSize: number;
  /** The id of `token`, or undefined when the vocabulary lacks it. */
  tokenToId(token: string): number | undefined;
  /** The token with this id, or undefined. */
  idToToken(id: number): string | undefined;
  /** Releases the wasm memory; the tokenizer cannot be used afterwards. */
  free(): void;
}

// ------------------------------------------------------------------ models: sources and files

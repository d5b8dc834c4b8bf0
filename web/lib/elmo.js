// ELMo in the package: `runtime.loadElmo({ options, weights })` reads AllenNLP's two files
// (options.json and the .hdf5 weights) from URLs or local files, and `ElmoModel` embeds
// tokenized sentences through the engine (this thread or the worker), wrapping the wasm class
// `WasmElmo`. The layers come back as one Float32Array (moved, not copied, out of the worker)
// with its shape; `ElmoLayers.sentence(i)` gives the CLI's `{"layers": [...]}` of one sentence.

import { DisposedError, ModelLoadError, WebnluError } from './errors.js';
import { fetchFile } from './model-loader.js';
import { localFileBytes } from './model-source.js';
import { decodeUtf8 } from './tokenizer.js';
import { checkText } from './wasm-module.js';

const OPTIONS_FILE = 'options.json';
const WEIGHTS_FILE = 'weights.hdf5';

function isUrl(value) {
  return typeof value === 'string' || value instanceof URL;
}

/** Whether `value` is bytes or a Blob/File (read locally, never fetched). */
function isLocalBytes(value) {
  return (typeof Blob !== 'undefined' && value instanceof Blob) || value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/**
 * The text of options.json from `options`: its text (a string starting with `{`), the parsed
 * object, a URL (a string or URL), or a File/Blob/bytes. Checked to be a JSON object here, so
 * that a wrong file is named before the weights are downloaded.
 */
async function optionsText(options, loadOptions) {
  let text;
  if (typeof options === 'string' && options.trimStart().startsWith('{')) {
    text = options;
  } else if (isUrl(options)) {
    const { bytes } = await fetchFile(options, OPTIONS_FILE, { ...loadOptions, fileIndex: 0, fileCount: 2 });
    text = decodeUtf8(bytes, OPTIONS_FILE);
  } else if (isLocalBytes(options)) {
    const bytes = await localFileBytes(OPTIONS_FILE, options);
    reportLocal(loadOptions, OPTIONS_FILE, bytes, 0);
    text = decodeUtf8(bytes, OPTIONS_FILE);
  } else if (options !== null && typeof options === 'object') {
    return JSON.stringify(options);
  } else {
    throw new ModelLoadError(`loadElmo: options must be the options.json text, its parsed object, a URL, or a File/Blob/bytes; got ${options === null ? 'null' : typeof options}`,
      { file: OPTIONS_FILE });
  }
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(`loadElmo: options.json is not valid JSON: ${error.message}`, { file: OPTIONS_FILE, cause: error });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ModelLoadError('loadElmo: options.json must hold a JSON object (with "lstm" and "char_cnn")', { file: OPTIONS_FILE });
  }
  return text;
}

/** One progress event for a file read whole from local bytes (as `fetchModelFiles` reports local files). */
function reportLocal(loadOptions, file, bytes, fileIndex) {
  if (typeof loadOptions.onProgress === 'function') {
    loadOptions.onProgress({ file, loaded: bytes.length, total: bytes.length, fromCache: false, fileIndex, fileCount: 2 });
  }
}

/** The bytes of the weights (.hdf5) from a URL or a File/Blob/ArrayBuffer/typed array (copied). */
async function weightsBytes(weights, loadOptions) {
  if (isUrl(weights)) return (await fetchFile(weights, WEIGHTS_FILE, { ...loadOptions, fileIndex: 1, fileCount: 2 })).bytes;
  if (isLocalBytes(weights)) {
    const bytes = await localFileBytes(WEIGHTS_FILE, weights);
    reportLocal(loadOptions, WEIGHTS_FILE, bytes, 1);
    return bytes;
  }
  throw new ModelLoadError(`loadElmo: weights must be a URL or a File/Blob/ArrayBuffer/Uint8Array of the .hdf5 file; got ${weights === null ? 'null' : typeof weights}`,
    { file: WEIGHTS_FILE });
}

/**
 * `{ options: text, weights: Uint8Array }` from what `loadElmo` was given; both files are read
 * here, on the calling thread, so that the engine only ever sees text and bytes.
 */
export async function readElmoFiles(files, loadOptions = {}) {
  if (files === null || typeof files !== 'object' || !('options' in files) || !('weights' in files)) {
    throw new WebnluError('loadElmo: give { options, weights }: options.json (text, object, URL or File) and the .hdf5 weights (URL, File, Blob or bytes)');
  }
  const options = await optionsText(files.options, loadOptions);
  const weights = await weightsBytes(files.weights, loadOptions);
  return { options, weights };
}

/** Throws a WebnluError unless `sentences` is a non-empty array of arrays of well-formed strings. */
function checkSentences(sentences) {
  if (!Array.isArray(sentences)) throw new WebnluError(`sentences must be an array of tokenized sentences (string[][]), got ${typeof sentences}`);
  if (sentences.length === 0) throw new WebnluError('sentences is empty: give at least one sentence');
  sentences.forEach((words, i) => {
    if (!Array.isArray(words)) {
      throw new WebnluError(`sentences[${i}] must be an array of words (string[]), got ${typeof words}` +
        (typeof words === 'string' ? '; split it into words first, e.g. text.split(\' \')' : ''));
    }
    words.forEach((word, j) => checkText(word, `sentences[${i}][${j}]`));
  });
}

/**
 * The layers of one `ElmoModel.embed` call: `layers` holds K * B * T * D values, row-major
 * (layer, sentence, word, dim), zero beyond each sentence's `lengths[b]` words.
 */
export class ElmoLayers {
  /** @private Made by `ElmoModel.embed`. */
  constructor({ layers, shape, lengths }) {
    if (!(layers instanceof Float32Array) || shape.length !== 4 || layers.length !== shape.reduce((a, b) => a * b, 1)) {
      throw new WebnluError(`embed: expected a Float32Array of shape [K, B, T, D] from the module, got ${layers?.length} values for shape ${JSON.stringify(shape)}`);
    }
    this.layers = layers;
    this.shape = shape;
    this.lengths = lengths;
  }

  /** The vector (a Float32Array view of D values) of word `word` of sentence `sentence` in layer `layer`. */
  vector(layer, sentence, word) {
    const [K, B, T, D] = this.shape;
    if (!(layer >= 0 && layer < K && sentence >= 0 && sentence < B && word >= 0 && word < this.lengths[sentence])) {
      throw new WebnluError(`vector(${layer}, ${sentence}, ${word}): out of range (layers ${K}, sentences ${B}, words of that sentence ${this.lengths[sentence]})`);
    }
    const at = ((layer * B + sentence) * T + word) * D;
    return this.layers.subarray(at, at + D);
  }

  /**
   * One sentence as the CLI writes it (`webnlu elmo`: `{"layers": [...]}`): one entry per
   * layer, each a list of `lengths[sentence]` per-token vectors (Float32Array views).
   */
  sentence(sentence) {
    const [K] = this.shape;
    return Array.from({ length: K }, (_, k) =>
      Array.from({ length: this.lengths[sentence] ?? 0 }, (_, t) => this.vector(k, sentence, t)));
  }
}

/** A loaded ELMo biLM (AllenNLP's options.json + weights). Make one with `runtime.loadElmo()`. */
export class ElmoModel {
  /** @private */
  constructor(runtime, loaded, meta) {
    this.runtime = runtime;
    this._handle = loaded.handle;
    this._disposed = false;
    this.device = loaded.device;
    this.numLayers = loaded.numLayers;
    this.outputDim = loaded.outputDim;
    this.bytes = meta.bytes;
    this.loadSeconds = meta.loadSeconds;
  }

  /**
   * The biLM's layers for tokenized sentences (`string[][]`), each sentence on its own (fresh
   * LSTM state): an `ElmoLayers` of shape [numLayers, sentences, longest, outputDim].
   */
  async embed(sentences) {
    if (this._disposed) throw new DisposedError('this ElmoModel was disposed');
    checkSentences(sentences);
    const out = await this.runtime._channel.call('elmo.embed', { handle: this._handle, sentences });
    return new ElmoLayers(out);
  }

  /** Frees the model's memory (GPU buffers included); later calls reject with DisposedError. */
  dispose() {
    if (this._disposed) return;
    this._disposed = true;
    this.runtime._channel.call('free', { handle: this._handle }).catch(() => {});
  }
}

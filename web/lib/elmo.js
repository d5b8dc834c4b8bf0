// ELMo in the package: `runtime.loadElmo({ options, weights })` reads AllenNLP's two files
// (options.json and the .hdf5 weights) from URLs or local files, and `ElmoModel` embeds
// tokenized sentences through the engine (this thread or the worker), wrapping the wasm class
// `WasmElmo`. The layers come back as one Float32Array (moved, not copied, out of the worker)
// with its shape; `ElmoLayers.sentence(i)` gives the CLI's `{"layers": [...]}` of one sentence.
// `ElmoModel.trainClassifier` trains a sentence classifier on the biLM's features (as `webnlu
// elmo-train`), a few optimizer steps per engine call (training-steps.js), as an
// `ElmoTrainingRun`.

import { callAbortable, checkSignal, isAbortError, throwIfAborted, trainingSignal } from './abort.js';
import { DisposedError, ModelLoadError, WebnluError } from './errors.js';
import { channelOf, EngineObject } from './engine-object.js';
import { fetchFile } from './model-loader.js';
import { localFileBytes } from './model-source.js';
import { StepwiseRun } from './training-steps.js';
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
export class ElmoModel extends EngineObject {
  /** @private Use `runtime.loadElmo`. */
  constructor(runtime, channel, loaded, meta) {
    super(channel, loaded.handle, 'ElmoModel');
    this.runtime = runtime;
    this.device = loaded.device;
    this.numLayers = loaded.numLayers;
    this.outputDim = loaded.outputDim;
    this.bytes = meta.bytes;
    this.loadSeconds = meta.loadSeconds;
  }

  /**
   * The biLM's layers for tokenized sentences (`string[][]`): an `ElmoLayers` of shape
   * [numLayers, sentences, longest, outputDim]. `signal` aborts the call (abort.js; one engine
   * call: the batch is not cut, so an abort during it discards the result). By default each sentence starts from a fresh
   * LSTM state. `{ stateful: true }`: sentence b starts from the final state of sentence b of
   * the previous stateful call (AllenNLP's `Elmo`, for a text read in consecutive batches);
   * a call without it, `resetState()` or training forget the kept states.
   */
  async embed(sentences, { stateful = false, signal } = {}) {
    this.checkOpen();
    checkSignal(signal);
    checkSentences(sentences);
    if (typeof stateful !== 'boolean') throw new WebnluError(`stateful must be true or false, got ${JSON.stringify(stateful)}`);
    const out = await this.call('elmo.embed', { sentences, stateful }, signal);
    return new ElmoLayers(out);
  }

  /** Forgets the LSTM states kept by stateful `embed` calls. */
  async resetState() {
    this.checkOpen();
    await this.call('elmo.resetState');
  }

  /**
   * Starts training a sentence classifier on the biLM's features (mean over the words of each
   * layer, scalar mix, linear head, cross-entropy, AdamW), as `webnlu elmo-train` does:
   * `examples` are `{ words: string[], label }` or `{ text, label }` (text split at whitespace),
   * label a string or an integer. Options: `training` ('head', 'mix' or 'end-to-end', which also
   * trains the biLM's weights in place), `epochs`, `batchSize`, `learningRate`, `seed`,
   * `validation` (share held out, default 0.1), read and checked by Rust's `ElmoTrainOptions`
   * (the CLI's flags fill the same type): an unknown name, a wrong type or a value out of range
   * rejects `done` naming the option; and JS's own: `onProgress` (after each epoch), `onStep`
   * (within an epoch: `{ phase: 'training', epoch, done, total }` optimizer steps), `signal`
   * (aborts it at the next step: `done` rejects with the AbortError and the run is freed).
   * Returns an `ElmoTrainingRun`.
   */
  trainClassifier(examples, options = {}) {
    this.checkOpen();
    return new ElmoTrainingRun(this, examples, options);
  }

  checkOpen() {
    if (this.disposed) throw new DisposedError('this ElmoModel was disposed');
  }
}

/** `examples` as `{ words, label }` for the engine; a WebnluError naming the first bad one. */
function elmoExamples(examples) {
  if (!Array.isArray(examples) || examples.length === 0) {
    throw new WebnluError('examples must be a non-empty array of { words, label } or { text, label }');
  }
  return examples.map((example, i) => {
    if (example === null || typeof example !== 'object') throw new WebnluError(`examples[${i}] must be an object { words, label } or { text, label }`);
    const { label } = example;
    if (!(typeof label === 'string' || Number.isInteger(label))) {
      throw new WebnluError(`examples[${i}].label must be a string or an integer, got ${JSON.stringify(label)}`);
    }
    let words;
    if (Array.isArray(example.words)) {
      example.words.forEach((word, j) => checkText(word, `examples[${i}].words[${j}]`));
      words = example.words;
    } else if (typeof example.text === 'string') {
      checkText(example.text, `examples[${i}].text`);
      words = example.text.split(/\s+/).filter((word) => word !== '');
    } else {
      throw new WebnluError(`examples[${i}] needs words (string[]) or text (a string)`);
    }
    if (words.length === 0) throw new WebnluError(`examples[${i}] has no words`);
    return { words, label };
  });
}

/** Sentences to classify: each `string[]` (words) or a string (split at whitespace). */
function sentencesToClassify(sentences) {
  if (!Array.isArray(sentences)) throw new WebnluError(`sentences must be an array of strings or of word arrays, got ${typeof sentences}`);
  return sentences.map((sentence, i) => {
    if (typeof sentence === 'string') {
      checkText(sentence, `sentences[${i}]`);
      return sentence.split(/\s+/).filter((word) => word !== '');
    }
    if (!Array.isArray(sentence)) throw new WebnluError(`sentences[${i}] must be a string or an array of words`);
    sentence.forEach((word, j) => checkText(word, `sentences[${i}][${j}]`));
    return sentence;
  });
}

/**
 * A classifier training on an ELMo model's features: epochs one after the other in the engine, a
 * few optimizer steps per engine call with `onStep` between them, `onProgress` after each epoch,
 * until `epochs` are done or `stop()` (after the running call: the steps done stay in the head).
 * `classify` uses the head as trained so far.
 */
export class ElmoTrainingRun extends StepwiseRun {
  /** The channel to the engine the biLM and its trainer live in. */
  #channel;
  /** The trainer's engine handle (null until the run has started). */
  #handle = null;
  #disposed = false;

  /**
   * @private Use `elmo.trainClassifier`. The training options go to the engine as they are
   * (Rust's `ElmoTrainOptions::from_json` reads and checks every one, `epochs` included: an
   * unknown name, a wrong type or a value out of range rejects `done`); here only what Rust
   * cannot see: `signal`, `onProgress`, `onStep`.
   */
  constructor(elmo, examples, options = {}) {
    const { signal: givenSignal, onProgress, onStep, ...trainerOptions } = options;
    super({ onProgress, onStep });
    const signal = trainingSignal(givenSignal); // already aborted: `done` rejects
    // A function would vanish on its way (JSON, or fail to clone to a worker): sent as a text,
    // Rust names the option (a misspelt callback such as `onEpoch` is an unknown option).
    for (const [name, value] of Object.entries(trainerOptions)) {
      if (typeof value === 'function') trainerOptions[name] = 'a function';
    }
    this.elmo = elmo;
    /** The class names, in the order of `scores` (set once the run has started). */
    this.labels = null;
    this.#channel = channelOf(elmo);
    this.done = this.loop(elmoExamples(examples), trainerOptions, signal);
    this.done.catch(() => {}); // a failure is for whoever awaits `done`, never an unhandled rejection
  }

  async loop(examples, trainerOptions, signal) {
    throwIfAborted(signal);
    const started = performance.now();
    const channel = this.#channel;
    // `epochs`: the options' as Rust read them (its default when left out)
    const created = await this.elmo.call('elmo.trainer', { examples, options: trainerOptions }, signal);
    this.#handle = created.handle;
    this.labels = created.labels;
    try {
      await this.runEpochs(created.epochs, performance.now(), (maxSteps) => callAbortable(channel, 'elmoTrainer.runSteps', { handle: this.#handle, maxSteps }, [], signal));
    } catch (error) {
      if (isAbortError(error)) this.dispose(); // an aborted run is freed (once the engine is out of its call)
      throw error;
    }
    return this.result(started);
  }

  /**
   * Classifies sentences with the head as trained so far (after `done`, the trained one):
   * `{ label, score, scores }` each, `scores` in the order of `labels`.
   */
  async classify(sentences) {
    if (this.#disposed) throw new DisposedError('this ElmoTrainingRun was disposed');
    if (this.#handle === null) await this.done;
    const words = sentencesToClassify(sentences);
    if (words.length === 0) return [];
    const probabilities = await this.#channel.call('elmoTrainer.classify', { handle: this.#handle, sentences: words });
    const classes = this.labels.length;
    return words.map((_, i) => {
      const scores = Array.from(probabilities.subarray(i * classes, (i + 1) * classes));
      let best = 0;
      scores.forEach((p, c) => { if (p > scores[best]) best = c; });
      return { label: this.labels[best], score: scores[best], scores };
    });
  }

  /** Stops the run and frees the classifier (the biLM stays); later `classify` calls reject. */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    this.stop();
    this.done.catch(() => {}).then(() => {
      if (this.#handle !== null) this.#channel.call('free', { handle: this.#handle }).catch(() => {});
    });
  }
}

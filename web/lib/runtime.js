// The public API for models: Runtime (a device, on this thread or in a worker), Model (one
// loaded BERT-family model: fill-mask, embeddings, similarity, fine-tuning, classification,
// token classification, saving), TrainingRun (a fine-tuning in progress) and LoadedTokenizer (a model's tokenizer,
// asynchronous so that it works the same in worker mode); ELMo models are in elmo.js.
// Types and docs: index.d.ts.

import { DirectChannel, WorkerChannel } from './engine-channel.js';
import { ElmoModel, readElmoFiles } from './elmo.js';
import { transferablesOf } from './engine.js';
import { DisposedError, UnsupportedError, WebnluError } from './errors.js';
import { checkText, checkTexts } from './wasm-module.js';
import { clearCache, fetchModelFiles, listCachedFiles } from './model-loader.js';
import { DEFAULT_HUB_URL, TOKENIZER_FILE_ROLES } from './model-source.js';
import { decodeUtf8 } from './tokenizer.js';

const FREEZE = /^(head|all|top:[1-9][0-9]*)$/;

/** A device to run models on, and the thread they run in. Make one with `Runtime.create()`. */
export class Runtime {
  /** @private Use `Runtime.create`. */
  constructor(channel, handle, device, info, options) {
    this._channel = channel;
    this._handle = handle;
    this._disposed = false;
    this.device = Object.freeze(device);
    this.version = info.version;
    this.wasmBuild = info.wasmBuild;
    this.worker = info.inWorker;
    this.hubUrl = options.hubUrl ?? DEFAULT_HUB_URL;
  }

  /**
   * Opens a runtime. `device`: 'auto' (WebGPU when there is an adapter that is not a software
   * fallback, else the CPU), 'gpu' or 'cpu'. `worker: true` runs everything in a Web Worker.
   */
  static async create(options = {}) {
    const { device = 'auto', worker = false, wasm } = options;
    const channel = worker ? new WorkerChannel() : new DirectChannel();
    try {
      const info = await channel.call('init', { wasm: worker && typeof wasm !== 'string' ? undefined : wasm });
      const created = await channel.call('runtime.create', { device });
      return new Runtime(channel, created.handle, created.device, info, options);
    } catch (error) {
      channel.close();
      throw error;
    }
  }

  /** Deletes every model file cached by webnlu in this origin (the Cache API cache). */
  static clearCache() {
    return clearCache();
  }

  /** The files in webnlu's cache: `[{ url, bytes }]`. */
  static listCachedFiles() {
    return listCachedFiles();
  }

  /** Same as the static `Runtime.clearCache()`. */
  clearCache() {
    return clearCache();
  }

  checkOpen() {
    if (this._disposed) throw new DisposedError('this Runtime was disposed');
  }

  /**
   * Loads a BERT or DistilBERT model from a Hub id, a base URL or `{ files }`, reporting download
   * progress, and keeping downloads in the Cache API.
   */
  async loadModel(source, options = {}) {
    this.checkOpen();
    if (this._handle === null) {
      throw new UnsupportedError(`loadModel: ${this.device.reason}`);
    }
    const started = performance.now();
    const fetched = await fetchModelFiles(source, { hubUrl: this.hubUrl, ...options });
    const config = parseConfig(fetched.files.get('config.json'));
    const names = [...fetched.files.keys()];
    const loaded = await this._channel.call('model.load', { runtime: this._handle, files: fetched.files },
      transferablesOf(fetched.files));
    return new Model(this, loaded, {
      config, files: names, source: fetched.label, fromCache: fetched.fromCache, bytes: fetched.bytes,
      loadSeconds: (performance.now() - started) / 1000,
    });
  }

  /**
   * Loads an ELMo biLM from AllenNLP's files: `options` (options.json: its text, the parsed
   * object, a URL, or a File/Blob) and `weights` (the .hdf5: a URL, or a File/Blob/ArrayBuffer/
   * Uint8Array), onto this runtime's device. URLs are fetched with progress and cached as
   * `loadModel` does (options: onProgress, cache, fetch, signal).
   */
  async loadElmo(files, options = {}) {
    this.checkOpen();
    const started = performance.now();
    const read = await readElmoFiles(files, options);
    const device = this.device.kind === 'none' ? this.device.requested : this.device.kind;
    const bytes = new TextEncoder().encode(read.options).length + read.weights.length; // before the weights move to the worker
    const loaded = await this._channel.call('elmo.load', { options: read.options, weights: read.weights, device },
      transferablesOf(read.weights));
    return new ElmoModel(this, loaded, {
      bytes,
      loadSeconds: (performance.now() - started) / 1000,
    });
  }

  /** Loads only the tokenizer (tokenizer.json or vocab.txt) of a model, by the same rules as `loadModel`. */
  async loadTokenizer(source, options = {}) {
    this.checkOpen();
    const fetched = await fetchModelFiles(source, { hubUrl: this.hubUrl, roles: TOKENIZER_FILE_ROLES, ...options });
    const created = await this._channel.call('tokenizer.create', { files: fetched.files }, transferablesOf(fetched.files));
    return new LoadedTokenizer(this, created.handle, created.vocabSize);
  }

  /** Frees the device (and stops the worker); models of this runtime stop working. */
  dispose() {
    if (this._disposed) return;
    this._disposed = true;
    if (this._handle !== null) this._channel.call('free', { handle: this._handle }).catch(() => {});
    if (this.worker) this._channel.close();
  }
}

function parseConfig(bytes) {
  try {
    return JSON.parse(decodeUtf8(bytes, 'config.json'));
  } catch (error) {
    throw new WebnluError(`config.json is not valid JSON: ${error.message}`, { cause: error });
  }
}

/** A tokenizer living in the runtime's engine (this thread or its worker). */
export class LoadedTokenizer {
  /** @private Use `runtime.loadTokenizer` or `model.tokenizer`. */
  constructor(runtime, handle, vocabSize) {
    this._runtime = runtime;
    this._handle = handle;
    this.vocabSize = vocabSize;
    this._disposed = false;
  }

  call(op, args) {
    if (this._disposed) return Promise.reject(new DisposedError('this tokenizer was disposed'));
    return this._runtime._channel.call(op, { handle: this._handle, ...args });
  }

  /** Tokenizes `text` (or a pair), as `Tokenizer.encode` does; resolves to an Encoding. */
  encode(text, pair, options) {
    if (pair !== null && typeof pair === 'object') { options = pair; pair = undefined; }
    try {
      checkText(text, 'text');
      if (pair !== undefined && pair !== null) checkText(pair, 'pair');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.call('tokenizer.encode', { text, pair, options });
  }

  /** Ids back to text. */
  decode(ids, options) {
    return this.call('tokenizer.decode', { ids: Array.from(ids), options });
  }

  /** The id of `token`, or undefined. */
  tokenToId(token) {
    return this.call('tokenizer.tokenToId', { token });
  }

  /** Frees the tokenizer. */
  dispose() {
    if (this._disposed) return;
    this._disposed = true;
    this._runtime._channel.call('free', { handle: this._handle }).catch(() => {});
  }
}

/** One loaded BERT-family model. Make one with `runtime.loadModel()`. */
export class Model {
  /** @private */
  constructor(runtime, loaded, meta) {
    this.runtime = runtime;
    this._handle = loaded.handle;
    this._disposed = false;
    this.hiddenSize = loaded.hiddenSize;
    this.config = meta.config;
    this.files = meta.files;
    this.source = meta.source;
    this.fromCache = meta.fromCache;
    this.bytes = meta.bytes;
    this.loadSeconds = meta.loadSeconds;
    this.tokenizer = new LoadedTokenizer(runtime, loaded.tokenizer, undefined);
    this.tokenizer.dispose = () => {}; // freed with the model
  }

  call(op, args = {}) {
    if (this._disposed) return Promise.reject(new DisposedError('this Model was disposed'));
    return this.runtime._channel.call(op, { handle: this._handle, ...args });
  }

  /** Top-k fillers for every `[MASK]` of `text`: one list per mask, best first. */
  async fillMask(text, options = {}) {
    const { topK = 5 } = options;
    checkText(text, 'text');
    if (!Number.isInteger(topK) || topK < 1) throw new WebnluError(`topK must be a positive integer, got ${topK}`);
    return this.call('model.fillMask', { text, topK });
  }

  /** One embedding per text (a Float32Array of `hiddenSize`); one text in, one array out. */
  async embed(texts, options = {}) {
    const { pooling = 'mean', normalize = true } = options;
    const single = typeof texts === 'string';
    const list = single ? [texts] : texts;
    checkTexts(list, 'texts');
    if (pooling !== 'mean' && pooling !== 'cls') throw new WebnluError(`pooling must be 'mean' or 'cls', got ${JSON.stringify(pooling)}`);
    const flat = await this.call('model.embed', { texts: list, pooling, normalize: Boolean(normalize) });
    const rows = splitRows(flat, list.length, 'embed');
    return single ? rows[0] : rows;
  }

  /** Cosine similarity of every text of `a` with every text of `b` (default: `a`): rows of Float32Array. */
  async similarity(a, b = a) {
    checkTexts(a, 'a');
    checkTexts(b, 'b');
    const flat = await this.call('model.similarity', { a, b });
    return splitRows(flat, a.length, 'similarity');
  }

  /** Starts fine-tuning a sequence classifier on `examples` ({ text, label }); see TrainingRun. */
  trainClassifier(examples, options = {}) {
    return new TrainingRun(this, examples, options);
  }

  /** Predictions of the classifier head (trained here or loaded with the model). */
  async classify(texts) {
    const single = typeof texts === 'string';
    const list = single ? [texts] : texts;
    checkTexts(list, 'texts');
    const results = await this.call('model.classify', { texts: list });
    return single ? results[0] : results;
  }

  /**
   * The label of every WordPiece token of each text (needs a token-classification head):
   * `{ token, start, end, label, score }` in text order, `text.slice(start, end)` the token's
   * characters (UTF-16 offsets); one text in, one list out.
   */
  async classifyTokens(texts) {
    const single = typeof texts === 'string';
    const list = single ? [texts] : texts;
    checkTexts(list, 'texts');
    const results = await this.call('model.classifyTokens', { texts: list });
    return single ? results[0] : results;
  }

  /** The model as Hugging Face files: `{ 'config.json': Uint8Array, 'model.safetensors': Uint8Array }`. */
  async save() {
    return this.call('model.save');
  }

  /** Frees the model's memory (GPU buffers included); later calls reject with DisposedError. */
  dispose() {
    if (this._disposed) return;
    this._disposed = true;
    this.runtime._channel.call('free', { handle: this._handle }).catch(() => {});
  }
}

/** `flat` (n * width) as n row views of one buffer. */
function splitRows(flat, n, what) {
  if (!(flat instanceof Float32Array) || flat.length % n !== 0) {
    throw new WebnluError(`${what}: expected a Float32Array with a multiple of ${n} values from the module`);
  }
  const width = flat.length / n;
  return Array.from({ length: n }, (_, i) => flat.subarray(i * width, (i + 1) * width));
}

function checkExamples(examples, name) {
  if (!Array.isArray(examples) || examples.length === 0) throw new WebnluError(`${name} must be a non-empty array of { text, label }`);
  examples.forEach((example, i) => {
    if (example === null || typeof example !== 'object') throw new WebnluError(`${name}[${i}] must be { text, label }`);
    checkText(example.text, `${name}[${i}].text`);
    if (typeof example.label !== 'string' && !Number.isInteger(example.label)) {
      throw new WebnluError(`${name}[${i}].label must be a string or an integer, got ${JSON.stringify(example.label)}`);
    }
  });
}

/**
 * A fine-tuning in progress: one epoch after the other in the engine, `onProgress` after each,
 * until `epochs` are done or `stop()` is called (it takes effect at the end of the running epoch).
 */
export class TrainingRun {
  /** @private Use `model.trainClassifier`. */
  constructor(model, examples, options) {
    const { freeze = 'head', epochs = 3, learningRate, batchSize, validation, seed = 0, truncate, onProgress } = options;
    checkExamples(examples, 'examples');
    if (validation !== undefined && !(typeof validation === 'number' && validation >= 0 && validation < 1)) {
      throw new WebnluError(`validation must be the fraction of examples to hold out, in [0, 1), got ${JSON.stringify(validation)}`);
    }
    if (typeof freeze !== 'string' || !FREEZE.test(freeze)) {
      throw new WebnluError(`freeze must be 'head', 'top:K' (K >= 1) or 'all', got ${JSON.stringify(freeze)}`);
    }
    if (!Number.isInteger(epochs) || epochs < 1) throw new WebnluError(`epochs must be a positive integer, got ${epochs}`);
    this.model = model;
    this.onProgress = onProgress ?? null;
    /** The report of every finished epoch. */
    this.epochs = [];
    this._stopped = false;
    const trainerOptions = { freeze, epochs, seed };
    if (learningRate !== undefined) trainerOptions.learningRate = learningRate;
    if (batchSize !== undefined) trainerOptions.batchSize = batchSize;
    if (validation !== undefined) trainerOptions.validation = validation;
    if (truncate !== undefined) {
      if (typeof truncate !== 'boolean') throw new WebnluError(`truncate must be true or false, got ${JSON.stringify(truncate)}`);
      trainerOptions.truncate = truncate;
    }
    this.done = this.loop(examples, trainerOptions, epochs);
  }

  /** Ends the run after the epoch now running; `done` then resolves with `stopped: true`. */
  stop() {
    this._stopped = true;
  }

  async loop(examples, trainerOptions, epochs) {
    const started = performance.now();
    const handle = await this.model.call('model.trainer', { examples, options: trainerOptions });
    let finished = false;
    try {
      for (let epoch = 0; epoch < epochs && !this._stopped; epoch++) {
        const epochStarted = performance.now();
        const report = await this.model.call('trainer.runEpoch', { handle });
        const withTime = { ...report, seconds: (performance.now() - epochStarted) / 1000 };
        this.epochs.push(withTime);
        if (typeof this.onProgress === 'function') this.onProgress(withTime);
      }
      await this.model.runtime._channel.call('trainer.finish', { handle });
      finished = true;
    } finally {
      if (!finished) await this.model.runtime._channel.call('free', { handle }).catch(() => {});
    }
    return { epochs: this.epochs, stopped: this._stopped, seconds: (performance.now() - started) / 1000 };
  }
}

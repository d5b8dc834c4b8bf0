// The public API for models: Runtime (a device, on this thread or in a worker), Model (one
// loaded BERT-family model: fill-mask, embeddings, similarity, fine-tuning of a sequence or a
// token classifier or of the masked-LM head, classification, token classification, next-sentence
// prediction, inspection and word vectors, saving) and LoadedTokenizer (a model's tokenizer,
// asynchronous so that it works the same in worker mode). A fine-tuning in progress is a
// TrainingRun (training-run.js); ELMo models are in elmo.js.
// Types and docs: index.d.ts.

import { callAbortable, checkSignal, throwIfAborted } from './abort.js';
import { DirectChannel, WorkerChannel, WorkerPool } from './engine-channel.js';
import { channelOf, EngineObject } from './engine-object.js';
import { deviceLostError, deviceLostPromise } from './device-lost.js';
import { ElmoModel, readElmoFiles } from './elmo.js';
import { releaseWeightFiles, transferablesOf } from './engine.js';
import { DisposedError, UnsupportedError, WebnluError, WorkerError } from './errors.js';
import { checkTaskText, checkTaskTexts } from './input-checks.js';
import { refusedDuringTraining, trainingRunOf } from './memory.js';
import { checkText } from './wasm-module.js';
import { clearCache, fetchModelFiles, listCachedFiles } from './model-loader.js';
import { forWorker } from './weight-stream.js';
import { DEFAULT_HUB_URL, TOKENIZER_FILE_ROLES } from './model-source.js';
import { decodeUtf8 } from './tokenizer.js';
import { checkExamples, checkWordExamples, TASKS, TrainingRun } from './training-run.js';

/** `loadModel`'s `dtype` values: how the encoder layers' weight matrices are held. */
const WEIGHT_DTYPES = ['fp32', 'fp16', 'bf16', 'int8'];

/**
 * The most workers `threads` takes by default: each holds a copy of every model, and beyond a
 * few cores the page, the browser and the memory want their share.
 */
export const MAX_DEFAULT_THREADS = 4;

/**
 * How many engines the CPU path runs in parallel, from `Runtime.create`'s options:
 * `threads` when given, else `navigator.hardwareConcurrency` up to MAX_DEFAULT_THREADS, and 1
 * where there are no Web Workers (Node), for `worker: false` (the page's thread) and for 'gpu'.
 */
export function resolveThreads({ device = 'auto', worker, threads }) {
  const workersExist = typeof Worker !== 'undefined';
  if (threads === undefined) {
    if (!workersExist || worker === false || device === 'gpu') return 1;
    const cores = globalThis.navigator?.hardwareConcurrency;
    return Math.max(1, Math.min(MAX_DEFAULT_THREADS, Number.isInteger(cores) ? cores : 1));
  }
  if (!Number.isInteger(threads) || threads < 1) {
    throw new WebnluError(`threads must be a positive integer, got ${JSON.stringify(threads)}`);
  }
  if (threads > 1) {
    if (device === 'gpu') {
      throw new WebnluError(`threads: ${threads} is for the CPU path (device 'cpu' or 'auto'); device 'gpu' computes on the one GPU`);
    }
    if (worker === false) {
      throw new WebnluError(`threads: ${threads} runs the models in ${threads} Web Workers, but worker: false asks for the page's thread; leave out worker, or give threads: 1`);
    }
    if (!workersExist) {
      throw new WorkerError(`threads: ${threads} needs Web Workers (a browser); in Node use threads: 1 (the default there)`);
    }
  }
  return threads;
}

/**
 * For this repository's tests only (runtime.js, not exported from index.js): `op` on the engine
 * behind `runtime` with its handle, e.g. 'runtime.destroyDevice' in a worker the page cannot reach.
 */
export let callEngineForTests;

/** A device to run models on, and the thread they run in. Make one with `Runtime.create()`. */
export class Runtime {
  /** The engine this runtime's models live in (this thread's, a worker's, or a pool's). */
  #channel;
  /** The engine's runtime handle (null where the device is unsupported). */
  #handle;
  #disposed = false;
  /** `{ reason, message }` once the GPU device is lost, else null. */
  #lost = null;

  static {
    callEngineForTests = (runtime, op, args = {}) => runtime.#channel.call(op, { runtime: runtime.#handle, ...args });
  }

  /** @private Use `Runtime.create`. */
  constructor(channel, handle, device, info, options) {
    this.#channel = channel;
    this.#handle = handle;
    const lost = deviceLostPromise(channel, handle, device.kind);
    lost.then((info) => { this.#lost = info; });
    // `lost` is not enumerable: the device stays a plain, serializable description
    this.device = Object.freeze(Object.defineProperty({ ...device, threads: device.threads ?? 1 }, 'lost', { value: lost }));
    this.version = info.version;
    this.wasmBuild = info.wasmBuild;
    this.worker = info.inWorker;
    this.hubUrl = options.hubUrl ?? DEFAULT_HUB_URL;
  }

  /**
   * Opens a runtime. `device`: 'auto' (the CPU without a hardware WebGPU adapter, else whichever
   * of GPU and CPU ran a short calibration faster, remembered per origin), 'gpu' or 'cpu'.
   * `worker: true` runs everything in a Web Worker. `threads` > 1 (on the CPU) runs that many
   * workers, each with its own copy of every model, and splits lists of texts among them.
   * `f16Arithmetic: true` multiplies fp16 weights in f16 (sums in f32) where the GPU has
   * `shader-f16`; `device.f16Arithmetic` says whether it does.
   * `_testHooks` is for this repository's tests only (see engine.js, openAutoRuntime).
   */
  static async create(options = {}) {
    const { device = 'auto', worker = false } = options;
    const threads = resolveThreads(options);
    if (device === 'cpu' && threads > 1) return Runtime.openPool(threads, options, null);
    const runtime = await Runtime.open(worker ? new WorkerChannel() : new DirectChannel(), options);
    if (runtime.device.kind !== 'cpu' || threads === 1) return runtime;
    // 'auto' chose the CPU: a pool of workers takes over from the one engine that decided.
    runtime.dispose();
    return Runtime.openPool(threads, options, runtime.device.reason);
  }

  /** A runtime on one engine: this thread (DirectChannel) or one worker (WorkerChannel). */
  static async open(channel, options) {
    const { device = 'auto', wasm, _testHooks: testHooks, f16Arithmetic } = options;
    try {
      const info = await channel.call('init', { wasm: channel.inWorker && typeof wasm !== 'string' ? undefined : wasm });
      const created = await channel.call('runtime.create', { device, testHooks, f16Arithmetic });
      return new Runtime(channel, created.handle, created.device, info, options);
    } catch (error) {
      channel.close();
      throw error;
    }
  }

  /** A CPU runtime on a pool of `threads` workers; `autoReason`: why 'auto' chose the CPU, if it did. */
  static async openPool(threads, options, autoReason) {
    const { device = 'auto', wasm } = options;
    const pool = WorkerPool.open(threads);
    try {
      const info = await pool.call('init', { wasm: typeof wasm === 'string' ? wasm : undefined });
      const created = await pool.call('runtime.create', { device: 'cpu', f16Arithmetic: options.f16Arithmetic });
      const reason = `${autoReason ?? created.device.reason}; ${threads} Web Workers in parallel, each with its own copy of every model`;
      return new Runtime(pool, created.handle, { ...created.device, requested: device, reason, threads }, info, options);
    } catch (error) {
      pool.close();
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
    if (this.#disposed) throw new DisposedError('this Runtime was disposed');
  }

  /**
   * Loads a BERT or DistilBERT model from a Hub id, a base URL or `{ files }`, reporting download
   * progress, and keeping downloads in the Cache API.
   */
  async loadModel(source, options = {}) {
    this.checkOpen();
    const signal = checkSignal(options.signal);
    if (this.#handle === null) {
      throw new UnsupportedError(`loadModel: ${this.device.reason}`);
    }
    if (this.#lost !== null) throw deviceLostError('loadModel', this.#lost);
    const dtype = options.dtype ?? 'fp32';
    if (!WEIGHT_DTYPES.includes(dtype)) {
      throw new WebnluError(`loadModel: unknown dtype ${JSON.stringify(dtype)}: expected ${WEIGHT_DTYPES.map((d) => `'${d}'`).join(', ')}`);
    }
    const packWeights = options.packWeights ?? true;
    if (typeof packWeights !== 'boolean') {
      throw new WebnluError(`loadModel: packWeights must be true or false, found ${JSON.stringify(packWeights)}`);
    }
    const started = performance.now();
    // model.safetensors streams into the model's tensors as it arrives (weight-stream.js)
    const fetched = await fetchModelFiles(source, { hubUrl: this.hubUrl, ...options, streamWeights: true });
    const config = parseConfig(fetched.files.get('config.json'));
    const names = [...fetched.files.keys()];
    const files = this.#channel.inWorker ? forWorker(fetched.files) : fetched.files;
    const loaded = await callAbortable(this.#channel, 'model.load', { runtime: this.#handle, files, dtype, packWeights },
      transferablesOf(files), signal);
    // the model holds its tensors: a fetched pytorch_model.bin (ours; sent to a worker, it is
    // detached here already) is freed now rather than at a later garbage collection
    releaseWeightFiles(fetched.files);
    await fetched.cacheWrites; // the streamed download is in the cache for the next visit
    return new Model(this, this.#channel, loaded, {
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
    const signal = checkSignal(options.signal);
    const started = performance.now();
    const read = await readElmoFiles(files, options);
    throwIfAborted(signal); // local files are read whole
    const device = this.device.kind === 'none' ? this.device.requested : this.device.kind;
    const bytes = new TextEncoder().encode(read.options).length + read.weights.length; // before the weights move to the worker
    const loaded = await callAbortable(this.#channel, 'elmo.load', { options: read.options, weights: read.weights, device },
      transferablesOf(read.weights), signal);
    return new ElmoModel(this, this.#channel, loaded, {
      bytes,
      loadSeconds: (performance.now() - started) / 1000,
    });
  }

  /** Loads only the tokenizer (tokenizer.json or vocab.txt) of a model, by the same rules as `loadModel`. */
  async loadTokenizer(source, options = {}) {
    this.checkOpen();
    const signal = checkSignal(options.signal);
    const fetched = await fetchModelFiles(source, { hubUrl: this.hubUrl, roles: TOKENIZER_FILE_ROLES, ...options });
    const created = await callAbortable(this.#channel, 'tokenizer.create', { files: fetched.files }, transferablesOf(fetched.files), signal);
    return new LoadedTokenizer(this.#channel, created.handle, created.vocabSize);
  }

  /**
   * What this runtime holds: `{ gpuBytes, gpuBuffers, cpuPoolBytes, wasmBytes }` (GPU buffers
   * live and pooled, the CPU pool, the wasm memory); with `threads` > 1 the sums over the
   * workers and `workers`, each worker's figures. Waits for the calls asked for before it.
   */
  memoryUsage() {
    this.checkOpen();
    if (this.#handle === null) return Promise.reject(new UnsupportedError(`memoryUsage: ${this.device.reason}`));
    return this.#channel.call('runtime.memoryUsage', { runtime: this.#handle });
  }

  /**
   * Gives back what the runtime keeps only for reuse (pooled GPU buffers, cached bind groups
   * and uniform buffers, the CPU pool), in every worker; loaded models stay. After the calls
   * asked for before it.
   */
  trim() {
    this.checkOpen();
    if (this.#handle === null) return Promise.reject(new UnsupportedError(`trim: ${this.device.reason}`));
    return this.#channel.call('runtime.trim', { runtime: this.#handle });
  }

  /**
   * Sets the most bytes a model load or a training run may need (`null`: the default), in
   * every worker. Loads and runs on the CPU are held to the wasm module's 4 GiB by default;
   * runs on the GPU to no total by default (WebGPU does not say how much memory an adapter
   * has), only to its per-buffer limit. A run over the limit rejects with an
   * `OutOfMemoryError` before its first step, naming what it needs and what to try. For
   * callers that know their budget, and for tests that lower it on purpose.
   */
  setMemoryLimit(bytes) {
    this.checkOpen();
    if (bytes !== null && !(Number.isSafeInteger(bytes) && bytes >= 0)) {
      return Promise.reject(new WebnluError(`setMemoryLimit: bytes must be a whole number >= 0, or null, got ${JSON.stringify(bytes)}`));
    }
    if (this.#handle === null) return Promise.reject(new UnsupportedError(`setMemoryLimit: ${this.device.reason}`));
    return this.#channel.call('runtime.setMemoryLimit', { runtime: this.#handle, bytes });
  }

  /** Frees the device (and stops the worker); models of this runtime stop working. */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#handle !== null) this.#channel.call('free', { handle: this.#handle }).catch(() => {});
    if (this.worker) this.#channel.close();
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
export class LoadedTokenizer extends EngineObject {
  /** @private Use `runtime.loadTokenizer` or `model.tokenizer`. */
  constructor(channel, handle, vocabSize) {
    super(channel, handle, 'tokenizer');
    this.vocabSize = vocabSize;
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

}

/**
 * One item of a task that takes texts, as the engine takes it: a string stays a string,
 * `{ text, pair }` and a `[text, pair]` tuple become `{ text, pair }` (a null or absent `pair`:
 * the text alone). `name` names it in errors.
 */
export function taskItem(item, name) {
  if (typeof item === 'string') {
    checkTaskText(item, name);
    return item;
  }
  if (Array.isArray(item)) {
    if (item.length !== 2) {
      throw new WebnluError(`${name} must be a string or a pair ({ text, pair } or [text, pair] of two strings), got an array of ${item.length}`);
    }
    checkTaskText(item[0], `${name}[0]`);
    checkTaskText(item[1], `${name}[1]`);
    return { text: item[0], pair: item[1] };
  }
  if (item !== null && typeof item === 'object') {
    checkTaskText(item.text, `${name}.text`);
    if (item.pair === undefined || item.pair === null) return item.text;
    checkTaskText(item.pair, `${name}.pair`);
    return { text: item.text, pair: item.pair };
  }
  throw new WebnluError(`${name} must be a string or a pair ({ text, pair } or [text, pair]), got ${item === null ? 'null' : typeof item}`);
}

/** A non-empty list of task items (see `taskItem`). */
function taskItems(items, name) {
  if (!Array.isArray(items)) throw new WebnluError(`${name} must be an array of texts or pairs, got ${typeof items}`);
  if (items.length === 0) throw new WebnluError(`${name} is empty: give at least one text`);
  return items.map((item, i) => taskItem(item, `${name}[${i}]`));
}

/** Whether a task's argument is one item (a string or `{ text, pair }`), not a list of them. */
function isSingleItem(texts) {
  return typeof texts === 'string' || (texts !== null && typeof texts === 'object' && !Array.isArray(texts));
}

/** The `truncate` option of a task (default false), checked. */
function truncateOption(options, what) {
  if (options === null || typeof options !== 'object') throw new WebnluError(`${what}: options must be an object, got ${options === null ? 'null' : typeof options}`);
  const { truncate = false } = options;
  if (typeof truncate !== 'boolean') throw new WebnluError(`${what}: truncate must be true or false, got ${JSON.stringify(truncate)}`);
  return truncate;
}

/** A pair for `nextSentence`: `{ text, pair }` with both texts. */
function pairItem(item, name) {
  const read = taskItem(item, name);
  if (typeof read === 'string') throw new WebnluError(`${name} must be a pair ({ text, pair } or [text, pair]), got a single text`);
  return read;
}

/** One loaded BERT-family model. Make one with `runtime.loadModel()`. */
export class Model extends EngineObject {
  /** @private Use `runtime.loadModel`. */
  constructor(runtime, channel, loaded, meta) {
    super(channel, loaded.handle, 'Model');
    this.runtime = runtime;
    this.hiddenSize = loaded.hiddenSize;
    /** Parameters the checkpoint lacked and the load initialized randomly (warned about, as transformers does). */
    this.newlyInitialized = loaded.newlyInitialized ?? [];
    /** How the encoder layers' weight matrices are held: 'fp32', 'fp16', 'bf16' or 'int8' (`loadModel`'s `dtype`). */
    this.dtype = loaded.dtype;
    /** Bytes of the parameters as loaded on the device (16-bit weights at 2 bytes a value, int8 at 1 plus a 4-byte scale a row). */
    this.weightBytes = loaded.weightBytes;
    if (this.newlyInitialized.length > 0) {
      console.warn(`webnlu: some weights of ${meta.source} were not in the checkpoint and are newly initialized: ${this.newlyInitialized.join(', ')}; fine-tune the model before trusting what it predicts`);
    }
    this.config = meta.config;
    this.files = meta.files;
    this.source = meta.source;
    this.fromCache = meta.fromCache;
    this.bytes = meta.bytes;
    /** The memory the other workers' copies of this model take: (threads - 1) x (bytes + weightBytes). */
    // Per worker: the file bytes it is sent (held in JS memory while the model loads, read
    // tensor by tensor into wasm memory, then freed), and the weights it holds in the loaded
    // dtype (fp32 layer matrices as the CPU matmul's packed panels only, made at load:
    // `packWeights`; 16-bit layers at 2 bytes a value, packed: no second copy either). Measured
    // in Node (all-MiniLM-L6-v2: files 91,335,584 bytes; one engine, load then embed 20
    // texts): the wasm memory grew 105,709,568 bytes by the end of the load and 115,212,288
    // after the embedding in fp32 (weights 90,852,864; with `packWeights: false` 157,679,616,
    // the panels cached beside the plain weights) and 96,075,776 in fp16 (weights 69,619,200):
    // the weights plus about 15 MB at load and 25 MB after (the tokenizer and a call's working
    // memory), which this does not count; the file bytes count the load's peak.
    this.extraWorkerBytes = (runtime.device.threads - 1) * (meta.bytes + loaded.weightBytes);
    this.loadSeconds = meta.loadSeconds;
    this.tokenizer = new LoadedTokenizer(channel, loaded.tokenizer, undefined);
    this.tokenizer.dispose = () => {}; // freed with the model
  }

  /** @private EngineObject's `call`, refused while a training run is in progress (memory.js). */
  call(op, args = {}, signal = undefined, transfer = []) {
    const refused = this.disposed ? null : refusedDuringTraining(this, op);
    if (refused !== null) return Promise.reject(refused);
    return super.call(op, args, signal, transfer);
  }

  /** The training run in progress on this model (other calls are refused until it ends), or null. */
  get training() {
    return trainingRunOf(this);
  }

  /**
   * Top-k fillers for every `[MASK]` of `text` (or of both texts of a pair `{ text, pair }`):
   * one list per mask, best first. A list of texts (or pairs, `{ text, pair }` or
   * `[text, pair]`) gives one such result per item.
   */
  async fillMask(texts, options = {}) {
    const { topK = 5 } = options;
    const signal = checkSignal(options.signal);
    const single = isSingleItem(texts);
    const list = single ? [taskItem(texts, 'text')] : taskItems(texts, 'texts');
    if (!Number.isInteger(topK) || topK < 1) throw new WebnluError(`topK must be a positive integer, got ${topK}`);
    const results = await this.call('model.fillMask', { texts: list, topK }, signal);
    return single ? results[0] : results;
  }

  /** One embedding per text (a Float32Array of `hiddenSize`); one text in, one array out. */
  async embed(texts, options = {}) {
    const { pooling = 'mean', normalize = true } = options;
    const signal = checkSignal(options.signal);
    const single = typeof texts === 'string';
    const list = single ? [texts] : texts;
    checkTaskTexts(list, 'texts');
    if (pooling !== 'mean' && pooling !== 'cls') throw new WebnluError(`pooling must be 'mean' or 'cls', got ${JSON.stringify(pooling)}`);
    const flat = await this.call('model.embed', { texts: list, pooling, normalize: Boolean(normalize) }, signal);
    const rows = splitRows(flat, list.length, 'embed');
    return single ? rows[0] : rows;
  }

  /**
   * Cosine similarity of every text of `a` with every text of `b` (default: `a`): rows of
   * Float32Array. `options` (`{ signal }`) may come second when `b` is left out.
   */
  async similarity(a, b = a, options = {}) {
    if (b !== null && typeof b === 'object' && !Array.isArray(b)) { options = b; b = a; }
    const signal = checkSignal(options.signal);
    checkTaskTexts(a, 'a');
    checkTaskTexts(b, 'b');
    const flat = await this.call('model.similarity', { a, b }, signal);
    return splitRows(flat, a.length, 'similarity');
  }

  /**
   * Starts fine-tuning a sequence classifier on `examples` ({ text, pair?, label }); see TrainingRun.
   * `task`: 'classification' (default), 'regression' (label a number) or 'multi_label' (label
   * a list of names).
   */
  trainClassifier(examples, options = {}) {
    // `task` decides how the labels are checked here (the engine checks the other options)
    const { task = 'classification' } = options;
    if (!TASKS.includes(task)) throw new WebnluError(`task must be one of ${TASKS.join(', ')}, got ${JSON.stringify(task)}`);
    checkExamples(examples, 'examples', task);
    return new TrainingRun(this, channelOf(this), 'model.trainer', examples, options);
  }

  /**
   * Starts masked-LM fine-tuning (domain adaptation) on `texts` with BERT's corruption
   * (`mlmProbability` of the tokens, default 0.15; 80% [MASK], 10% random, 10% kept; seeded);
   * needs the model's masked-LM head; see TrainingRun. Each epoch reports the held-out loss
   * and perplexity; `fillMask` and `save` then use the result.
   */
  trainMaskedLM(texts, options = {}) {
    checkTaskTexts(texts, 'texts');
    if (texts.length === 0) throw new WebnluError('texts is empty: masked-LM training needs texts');
    return new TrainingRun(this, channelOf(this), 'model.mlmTrainer', texts, options);
  }

  /** `trainClassifier` with `task: 'regression'`: one number per text, MSE. */
  trainRegressor(examples, options = {}) {
    return this.trainClassifier(examples, { ...options, task: 'regression' });
  }

  /**
   * Starts fine-tuning a token classifier (NER) on `examples`: `{ words, labels }` (one label
   * per word) or CoNLL text (word first, label last, a blank line between sentences); see
   * TrainingRun. Each epoch reports the held-out entity-level scores (`validationEntities`).
   */
  trainTokenClassifier(examples, options = {}) {
    checkWordExamples(examples, 'examples');
    return new TrainingRun(this, channelOf(this), 'model.tokenTrainer', examples, options);
  }

  /**
   * The numbers a regression head (one output: trained with `trainRegressor`, or a checkpoint
   * with one label) gives: one number per text, one text in, one number out.
   */
  async predict(texts, options = {}) {
    const signal = checkSignal(options.signal);
    const single = typeof texts === 'string';
    const list = single ? [texts] : texts;
    checkTaskTexts(list, 'texts');
    const results = await this.call('model.classify', { texts: list }, signal);
    if (results.some((r) => r.scores.length !== 1)) {
      throw new WebnluError(`predict is for a regression head (one output); this classifier has ${results[0].scores.length} labels: use classify`);
    }
    const values = results.map((r) => r.score);
    return single ? values[0] : values;
  }

  /**
   * Predictions of the classifier head (trained here or loaded with the model), for texts or
   * pairs of texts (`{ text, pair }`, or `[text, pair]` in a list). A text longer than the model
   * is read in windows whose logits are averaged, a pair longer than the model is an error;
   * `{ truncate: true }` cuts both instead (a text to its first window, a pair `longest_first`).
   */
  async classify(texts, options = {}) {
    const single = isSingleItem(texts);
    const list = single ? [taskItem(texts, 'text')] : taskItems(texts, 'texts');
    const truncate = truncateOption(options, 'classify');
    const results = await this.call('model.classify', { texts: list, truncate }, checkSignal(options.signal));
    return single ? results[0] : results;
  }

  /**
   * The label of every WordPiece token of each text (needs a token-classification head):
   * `{ token, start, end, label, score }` in text order, `text.slice(start, end)` the token's
   * characters (UTF-16 offsets); one text in, one list out. For a pair (`{ text, pair }` or
   * `[text, pair]` in a list) each token also has `sequence`: 0 for the text, 1 for the pair,
   * its offsets in that string. `{ truncate: true }`: long texts and pairs cut, as `classify`.
   */
  async classifyTokens(texts, options = {}) {
    const single = isSingleItem(texts);
    const list = single ? [taskItem(texts, 'text')] : taskItems(texts, 'texts');
    const truncate = truncateOption(options, 'classifyTokens');
    const results = await this.call('model.classifyTokens', { texts: list, truncate }, checkSignal(options.signal));
    return single ? results[0] : results;
  }

  /**
   * Next-sentence prediction with the checkpoint's head (BertForPreTraining /
   * BertForNextSentencePrediction): `nextSentence(a, b)` resolves to `{ isNext, scores, logits }`,
   * `isNext` the probability that `b` follows `a` (`scores` = [isNext, 1 - isNext]);
   * `nextSentence([[a, b], { text, pair }, ...])` to one such result per pair. A pair longer than
   * the model is an error; `{ truncate: true }` (the last argument) cuts it `longest_first`.
   */
  async nextSentence(a, b, options) {
    const single = typeof b === 'string';
    if (!single) options = b;
    const pairs = single
      ? [pairItem([a, b], 'nextSentence(a, b)')]
      : (() => {
          if (!Array.isArray(a) || a.length === 0) throw new WebnluError('nextSentence takes (a, b) or a non-empty array of pairs');
          return a.map((item, i) => pairItem(item, `pairs[${i}]`));
        })();
    const truncate = truncateOption(options ?? {}, 'nextSentence');
    const results = await this.call('model.nextSentence', { pairs, truncate }, checkSignal(options?.signal));
    return single ? results[0] : results;
  }

  /**
   * The inside of the model for one text (or a pair, `{ pair }`): its tokens, the hidden state
   * after the embeddings and after every layer (`hiddenStates`, (S, T, C) in one Float32Array,
   * S = `layers.length`) and, with `{ attentions: true }`, every layer's attention
   * probabilities (`attentions`, (A, heads, T, T)). `layers`: 'all' (default) or indices into the
   * L + 1 hidden states (0 = embeddings); the attentions are those of the layers that made a
   * selected hidden state (`attentionLayers`, 0-based). Offsets in UTF-16 code units of the
   * token's own text. A text longer than the model's positions is refused (one window).
   */
  async inspect(text, options = {}) {
    const { pair, attentions = false, layers = 'all' } = options;
    const signal = checkSignal(options.signal);
    checkTaskText(text, 'text');
    if (pair !== undefined && pair !== null) checkTaskText(pair, 'pair');
    if (typeof attentions !== 'boolean') throw new WebnluError(`attentions must be true or false, got ${JSON.stringify(attentions)}`);
    if (layers !== 'all' && !(Array.isArray(layers) && layers.length > 0 && layers.every(isIndex))) {
      throw new WebnluError(`layers must be 'all' or a non-empty array of hidden-state indices (0 = embeddings), got ${JSON.stringify(layers)}`);
    }
    const result = await this.call('model.inspect', { text, pair: pair ?? null, attentions, layers }, signal);
    const [, t, c] = result.hiddenStatesShape;
    const [, heads] = result.attentionsShape ?? [0, 0];
    return {
      ...result,
      /** (T, C) view of hidden state `index` (an index into the L + 1), or undefined if not selected. */
      hiddenState(index) {
        const s = result.layers.indexOf(index);
        return s < 0 ? undefined : result.hiddenStates.subarray(s * t * c, (s + 1) * t * c);
      },
      /** (heads, T, T) view of the attention probabilities of layer `layer` (0-based), or undefined. */
      attention(layer) {
        const a = result.attentionLayers === null ? -1 : result.attentionLayers.indexOf(layer);
        return a < 0 ? undefined : result.attentions.subarray(a * heads * t * t, (a + 1) * heads * t * t);
      },
    };
  }

  /**
   * One vector per word of `text` (words as the tokenizer splits them: whitespace and
   * punctuation; special tokens left out): the mean of the word's WordPiece vectors at hidden
   * state `layer` (default the last). `words`: `{ word, start, end, pieces, vector }` in text
   * order (UTF-16 offsets, `vector` a view into `vectors`, (W, hiddenSize)).
   */
  async wordVectors(text, options = {}) {
    const { layer } = options;
    const signal = checkSignal(options.signal);
    checkTaskText(text, 'text');
    if (layer !== undefined && !isIndex(layer)) {
      throw new WebnluError(`layer must be a hidden-state index (0 = embeddings), got ${JSON.stringify(layer)}`);
    }
    const out = await this.call('model.wordVectors', { text, layer: layer ?? null }, signal);
    const c = out.hiddenSize;
    const words = out.words.map((word, w) => ({
      word, start: out.starts[w], end: out.ends[w], pieces: out.pieces[w],
      vector: out.vectors.subarray(w * c, (w + 1) * c),
    }));
    return { words, vectors: out.vectors, shape: [words.length, c], layer: out.layer };
  }

  /**
   * How many of the encoder layers' weight matrices are held now as the CPU matmul's packed
   * panels only (`loadModel`'s `packWeights`); a training run that trains layers unpacks theirs.
   */
  async packedWeightMatrices(options = {}) {
    return this.call('model.packedWeightMatrices', {}, checkSignal(options.signal));
  }

  /** The model as Hugging Face files: `{ 'config.json': Uint8Array, 'model.safetensors': Uint8Array }`. */
  async save(options = {}) {
    return this.call('model.save', {}, checkSignal(options.signal));
  }
}

/** A hidden-state or layer index: an integer that fits the module's u32. */
function isIndex(value) {
  return Number.isInteger(value) && value >= 0 && value < 2 ** 32;
}

/** `flat` (n * width) as n row views of one buffer. */
function splitRows(flat, n, what) {
  if (!(flat instanceof Float32Array) || flat.length % n !== 0) {
    throw new WebnluError(`${what}: expected a Float32Array with a multiple of ${n} values from the module`);
  }
  const width = flat.length / n;
  return Array.from({ length: n }, (_, i) => flat.subarray(i * width, (i + 1) * width));
}

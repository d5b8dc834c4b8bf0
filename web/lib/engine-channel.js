// How the public classes reach the engine: directly on this thread, by messages to the Web
// Worker of worker.js, or through a pool of such workers (the CPU path with `threads` > 1).
// All three offer `call(op, args, transfer, signal)` -> Promise and `close()`; `signal` (an
// AbortSignal, see abort.js) tells the engine to stop the call at its next boundary.
// Over a worker, arguments listed in `transfer` and the typed arrays of results move
// without a copy (transferables); errors come back as their own WebnluError subclasses.

import { throwIfAborted } from './abort.js';
import { Engine } from './engine.js';
import { DisposedError, errorFromWire, WebnluError, WorkerError } from './errors.js';
import { sumMemoryUsage } from './memory.js';
import { isStreamedFile, STREAMED_WEIGHTS, teeStream } from './weight-stream.js';

/** The engine on the calling thread. */
export class DirectChannel {
  constructor() {
    this.engine = new Engine();
    this.inWorker = false;
  }

  call(op, args, transfer, signal) {
    return this.engine.run(op, args, signal);
  }

  close() {}
}

/** The engine in a module Web Worker. */
export class WorkerChannel {
  /** Starts worker.js; the URL is written out so that bundlers (Vite, webpack) bundle the worker. */
  constructor() {
    if (typeof Worker === 'undefined') {
      throw new WorkerError('worker mode needs Web Workers (a browser); in Node use Runtime.create({ worker: false })');
    }
    this.inWorker = true;
    this.pending = new Map();
    this.nextId = 1;
    this.failure = null;
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'webnlu' });
    this.worker.addEventListener('message', (event) => this.receive(event.data));
    this.worker.addEventListener('error', (event) => {
      event.preventDefault();
      this.fail(new WorkerError(`the webnlu worker failed: ${event.message || 'it could not be loaded (see the console)'}`));
    });
    this.worker.addEventListener('messageerror', () => this.fail(new WorkerError('a message from the webnlu worker could not be read')));
  }

  receive({ id, ok, result, error }) {
    const waiting = this.pending.get(id);
    if (waiting === undefined) return;
    this.pending.delete(id);
    if (ok) waiting.resolve(result);
    else waiting.reject(errorFromWire(error));
  }

  /** Rejects every waiting call and all later ones with `error`. */
  fail(error) {
    this.failure = error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }

  call(op, args = {}, transfer = [], signal = undefined) {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    const abortable = signal !== undefined && signal !== null;
    const answered = new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ id, op, args, abortable }, transfer);
      } catch (error) {
        this.pending.delete(id);
        reject(new WorkerError(`could not send ${op} to the webnlu worker: ${error.message}`, { cause: error }));
      }
    });
    if (!abortable) return answered;
    // the worker's engine sees the abort at its next boundary; its answer still comes
    const forward = () => { if (this.pending.has(id)) this.worker.postMessage({ abort: id }); };
    signal.addEventListener('abort', forward, { once: true });
    const forget = () => signal.removeEventListener('abort', forward);
    answered.then(forget, forget);
    return answered;
  }

  close() {
    this.worker.terminate();
    this.fail(new WorkerError('the runtime was disposed (its worker is stopped)'));
  }
}

/**
 * The operations on a list of texts that a pool splits: op -> the argument holding the list (its
 * items strings or `{ text, pair }` pairs). Every text or pair is computed on its own (the Rust side reads each text alone; batches only group
 * them, and padding does not change a text's numbers: tests/browser/worker-pool.test.mjs checks
 * bit-equality with one thread), so contiguous chunks concatenated in order give what one
 * engine gives for the whole list.
 */
const SPLIT_ARGUMENT = {
  'model.embed': 'texts',
  'model.similarity': 'a', // each worker: its rows of `a` against all of `b`
  'model.classify': 'texts',
  'model.classifyTokens': 'texts',
  'model.fillMask': 'texts',
  'model.nextSentence': 'pairs',
  'model.headFeatures': 'texts', // head-only training's encoder pass over the examples
};

/** Operations that create an object in the first worker only: its kind in the pool. */
const CREATED_KIND = {
  'tokenizer.create': 'tokenizer',
  'elmo.load': 'elmo',
  'elmo.trainer': 'elmoTrainer',
};

/** What head-only training encodes for an example: its text, or `{ text, pair }` for a pair. */
export function featureItem(example) {
  return example.pair === undefined || example.pair === null ? example.text : { text: example.text, pair: example.pair };
}

/**
 * `items` cut into at most `parts` contiguous, non-empty chunks whose sizes differ by at most one
 * (the larger ones first); an empty list gives no chunks.
 */
export function splitIntoChunks(items, parts) {
  const count = Math.min(parts, items.length);
  const chunks = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const size = Math.floor(items.length / count) + (i < items.length % count ? 1 : 0);
    chunks.push(items.slice(start, start + size));
    start += size;
  }
  return chunks;
}

/** The results of the chunks, in order, as one: typed arrays joined, lists concatenated. */
export function concatenateResults(parts) {
  if (parts.length > 0 && parts.every((part) => part instanceof Float32Array)) {
    const joined = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of parts) { joined.set(part, offset); offset += part.length; }
    return joined;
  }
  if (parts.every(Array.isArray)) return parts.flat(1);
  throw new WebnluError('a pool worker answered with results that cannot be joined (neither Float32Array nor list)');
}

/**
 * The engine in several module Web Workers, each with its own wasm instance and its own copy of
 * every model (the CPU path of `Runtime.create({ threads })`; the Rust module is
 * single-threaded, so the parallelism is one engine per worker, and no SharedArrayBuffer is
 * needed). Lists of texts (SPLIT_ARGUMENT) are split into contiguous chunks, one per worker, run
 * at once, and joined in order; models are loaded into every worker; everything else
 * (tokenizers, training, save, ELMo) runs in the first worker.
 *
 * The pool has handles of its own, each naming the object's handle in every worker that holds
 * it. Calls run one after the other, as on one engine. Fine-tuning runs in the first worker
 * (its head-only feature pass split among all); from its first epoch on, the other workers'
 * copies are out of date: until they have been replaced by the trained model (saved in the
 * first worker, loaded in the others), that model's calls all run in the first worker, so no
 * call ever reads an old copy.
 */
export class WorkerPool {
  /** `channels`: one per worker (WorkerChannel; tests pass others with the same interface). */
  constructor(channels) {
    if (channels.length < 1) throw new WebnluError('a worker pool needs at least one worker');
    this.channels = channels;
    this.inWorker = true;
    /** pool handle -> { kind, workerHandles: [handle in worker 0, in worker 1, ...], ... } */
    this.objects = new Map();
    this.nextHandle = 1;
    this.queue = Promise.resolve();
  }

  /** A pool of `size` new workers running worker.js. */
  static open(size) {
    const channels = [];
    try {
      for (let i = 0; i < size; i++) channels.push(new WorkerChannel());
    } catch (error) {
      for (const channel of channels) channel.close();
      throw error;
    }
    return new WorkerPool(channels);
  }

  get size() {
    return this.channels.length;
  }

  call(op, args = {}, transfer = [], signal = undefined) {
    const result = this.queue.then(() => {
      throwIfAborted(signal);
      return this.dispatch(op, args, transfer, signal);
    });
    this.queue = result.catch(() => {});
    return result;
  }

  close() {
    for (const channel of this.channels) channel.close();
  }

  keep(kind, workerHandles, extra = {}) {
    const handle = this.nextHandle++;
    this.objects.set(handle, { kind, workerHandles, ...extra });
    return handle;
  }

  entry(handle) {
    const entry = this.objects.get(handle);
    if (entry === undefined) throw new DisposedError('this object was disposed (no such handle in the worker pool)');
    return entry;
  }

  /** `args` with the pool handles of `handle` and `runtime` replaced by worker `index`'s. */
  forWorker(index, args) {
    const mapped = { ...args };
    for (const name of ['handle', 'runtime']) {
      if (typeof args[name] === 'number') mapped[name] = this.entry(args[name]).workerHandles[index];
    }
    return mapped;
  }

  /**
   * `model.load`'s arguments for each worker: the files copied (moved only to the last), and a
   * streamed weight file (weight-stream.js) tee'd, each worker reading its own branch.
   */
  loadArguments(args, transfer) {
    const weights = args.files instanceof Map ? args.files.get(STREAMED_WEIGHTS) : undefined;
    const last = this.size - 1;
    if (!isStreamedFile(weights)) {
      return this.channels.map((_, i) => ({ args: this.forWorker(i, args), transfer: i === last ? transfer : [] }));
    }
    const branches = teeStream(weights.stream, this.size);
    const others = transfer.filter((item) => item !== weights.stream);
    return branches.map((stream, i) => {
      const files = new Map(args.files);
      files.set(STREAMED_WEIGHTS, { ...weights, stream });
      return { args: this.forWorker(i, { ...args, files }), transfer: i === last ? [...others, stream] : [stream] };
    });
  }

  /** The same call in every worker (the arguments copied, and moved only to the last). */
  async broadcast(op, args, transfer = [], signal = undefined) {
    const settled = await Promise.allSettled(this.channels.map((channel, i) =>
      channel.call(op, this.forWorker(i, args), i === this.size - 1 ? transfer : [], signal)));
    return resultsOrFirstError(settled);
  }

  async dispatch(op, args, transfer, signal) {
    switch (op) {
      case 'init':
        return (await this.broadcast(op, args))[0];
      case 'runtime.create': {
        const created = await this.broadcast(op, args);
        return { ...created[0], handle: this.keep('runtime', created.map((c) => c.handle)) };
      }
      case 'runtime.memoryUsage':
        return sumMemoryUsage(await this.broadcast(op, args));
      case 'runtime.trim':
      case 'runtime.setMemoryLimit':
        await this.broadcast(op, args);
        return null;
      case 'model.load': {
        const perWorker = this.loadArguments(args, transfer);
        const settled = await Promise.allSettled(this.channels.map((channel, i) =>
          channel.call(op, perWorker[i].args, perWorker[i].transfer, signal)));
        if (settled.some((outcome) => outcome.status === 'rejected')) { // (an abort, say): free the copies that loaded
          settled.forEach((outcome, i) => {
            if (outcome.status === 'fulfilled') this.channels[i].call('free', { handle: outcome.value.handle }).catch(() => {});
          });
        }
        const loaded = resultsOrFirstError(settled);
        const tokenizer = this.keep('tokenizer', [loaded[0].tokenizer]);
        const handle = this.keep('model', loaded.map((l) => l.handle),
          { runtime: args.runtime, tokenizer, replicasCurrent: true, packWeights: args.packWeights ?? true });
        return { ...loaded[0], handle, tokenizer };
      }
      case 'model.trainer': {
        this.entry(args.handle);
        const trainer = await this.first(op, args, transfer, signal);
        const headOnly = (args.options?.freeze ?? 'head') === 'head';
        return this.keep('trainer', [trainer], { model: args.handle, headOnly: headOnly ? args : null });
      }
      case 'model.mlmTrainer':
      case 'model.tokenTrainer': {
        // trains in the first worker; its features are its own (no split pass)
        this.entry(args.handle);
        const trainer = await this.first(op, args, transfer, signal);
        return this.keep('trainer', [trainer], { model: args.handle, headOnly: null });
      }
      case 'trainer.runEpoch':
      case 'trainer.runSteps':
        return this.runEpoch(op, args, signal);
      case 'trainer.setFeatures': // the run's features come from the caller: no split pass in runEpoch
        this.entry(args.handle).headOnly = null;
        return this.first(op, args, transfer, signal);
      case 'trainer.finish': {
        const trainer = this.entry(args.handle);
        await this.first(op, args);
        this.objects.delete(args.handle);
        await this.refreshReplicas(trainer.model);
        return null;
      }
      case 'free':
        return this.free(args.handle);
      default:
        if (op in SPLIT_ARGUMENT) return this.split(op, args, signal);
        if (op in CREATED_KIND) { // objects that live in the first worker only
          const created = await this.first(op, args, transfer, signal);
          return { ...created, handle: this.keep(CREATED_KIND[op], [created.handle]) };
        }
        return this.first(op, args, transfer, signal);
    }
  }

  /**
   * One epoch (or some of its steps: `trainer.runSteps`), in the first worker. Before the first
   * epoch of a head-only run, while every worker still has the same model, the encoder pass over the examples (the cached features,
   * the bulk of such a run) is split among the workers and handed to the first worker's run: the
   * same features, so the same training (tests/node/worker-pool.test.mjs).
   */
  async runEpoch(op, args, signal) {
    const trainer = this.entry(args.handle);
    const model = this.objects.get(trainer.model);
    if (trainer.headOnly !== null) {
      const { examples, options } = trainer.headOnly;
      trainer.headOnly = null;
      if (model?.replicasCurrent && this.size > 1) {
        const features = await this.split('model.headFeatures', { handle: trainer.model, texts: examples.map(featureItem), options }, signal);
        await this.first('trainer.setFeatures', { handle: args.handle, features }, [features.buffer], signal);
      }
    }
    if (model !== undefined) model.replicasCurrent = false; // from now on only the first worker's copy learns
    return this.first(op, args, [], signal);
  }

  /** The call in the first worker only. */
  first(op, args, transfer = [], signal = undefined) {
    return this.channels[0].call(op, this.forWorker(0, args), transfer, signal);
  }

  /** A list op: one contiguous chunk of the list per worker, the results joined in order. */
  async split(op, args, signal) {
    const name = SPLIT_ARGUMENT[op];
    const model = this.entry(args.handle);
    if (!model.replicasCurrent) return this.first(op, args, [], signal);
    const chunks = splitIntoChunks(args[name], this.size);
    const settled = await Promise.allSettled(chunks.map((chunk, i) =>
      this.channels[i].call(op, this.forWorker(i, { ...args, [name]: chunk }), [], signal)));
    return concatenateResults(resultsOrFirstError(settled));
  }

  async free(handle) {
    const entry = this.objects.get(handle);
    if (entry === undefined) return null;
    this.objects.delete(handle);
    await Promise.allSettled(entry.workerHandles.map((h, i) => this.channels[i].call('free', { handle: h })));
    if (entry.kind === 'model') this.objects.delete(entry.tokenizer); // freed with the model in each worker
    // A training run that ended by an error may have changed the model after some steps.
    if (entry.kind === 'trainer') await this.refreshReplicas(entry.model);
    return null;
  }

  /**
   * Replaces the other workers' copies of `modelHandle` by the first worker's model (saved
   * there, loaded in each), after a fine-tuning. If that fails, the model stays in the first
   * worker alone (`replicasCurrent` false): slower, never wrong.
   */
  async refreshReplicas(modelHandle) {
    const model = this.objects.get(modelHandle);
    if (model === undefined || model.replicasCurrent || this.size === 1) {
      if (model !== undefined && this.size === 1) model.replicasCurrent = true;
      return;
    }
    try {
      // Only a model with every layer in f32 saves (a 16-bit model whose run trained all its
      // layers, widened to fp32 then, or an fp32 one): its copies load in fp32, value for value.
      // A model with 16-bit layers left is refused here and stays in the first worker alone.
      // Layers held packed only are saved value for value (and packed again at load, as the
      // model was loaded: its packWeights).
      const saved = await this.first('model.save', { handle: modelHandle });
      const files = new Map(Object.entries(saved));
      const runtime = this.entry(model.runtime);
      for (let i = 1; i < this.size; i++) {
        const loaded = await this.channels[i].call('model.load', { runtime: runtime.workerHandles[i], files, dtype: 'fp32', packWeights: model.packWeights });
        const old = model.workerHandles[i];
        model.workerHandles[i] = loaded.handle;
        await this.channels[i].call('free', { handle: old });
      }
      model.replicasCurrent = true;
    } catch {
      model.replicasCurrent = false;
    }
  }
}

/** The values of settled calls in order, or the error of the first that failed (in list order). */
function resultsOrFirstError(settled) {
  const failed = settled.find((outcome) => outcome.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((outcome) => outcome.value);
}

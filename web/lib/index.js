// webnlu: the JavaScript API of the npm package.
//
// The Rust core is compiled to WebAssembly and exposed by wasm-bindgen as low-level classes
// (`./webnlu_wasm.js`, generated at build time). The files of this folder are the friendly
// layer on top; this one only gathers their exports. Types and documentation for every export
// are in `index.d.ts`.
//   wasm-module.js   init(), text checks, Rust errors -> WebnluError
//   tokenizer.js     Tokenizer (synchronous, this thread)
//   model-source.js  Hub id / URL / local files -> which files to get
//   model-loader.js  fetch with progress, Cache API, clearCache()
//   runtime.js       Runtime, Model, LoadedTokenizer
//   training-run.js  TrainingRun (and the checks of training examples and options)
//   examples.js      parseExamples (the Rust examples parser of the CLI)
//   elmo.js          ElmoModel, ElmoLayers, ElmoTrainingRun (Runtime.loadElmo)
//   engine.js        the wasm objects and the operations on them (this thread or the worker)
//   device-choice.js how device 'auto' decides (calibration, remembered decisions)
//   engine-channel.js, worker.js   the ways to reach the engine: this thread, a worker, a pool
//   abort.js         the `signal` option: AbortError, aborting calls through the channels
//   device-lost.js   a lost GPU device: `rt.device.lost`, DeviceLostError for later calls
//   training-steps.js  head-only training's feature pass in chunks (onStep, stop, abort)

import { bindings, assertReady, init } from './wasm-module.js';

export { init, findLoneSurrogate, wasmBuildFor } from './wasm-module.js';
export { Tokenizer } from './tokenizer.js';
export {
  WebnluError, ModelLoadError, DeviceError, DeviceLostError, OutOfMemoryError, UnsupportedError, DisposedError, WorkerError,
} from './errors.js';
export { Runtime, Model, LoadedTokenizer } from './runtime.js';
export { TrainingRun } from './training-run.js';
export { parseExamples } from './examples.js';
export { ElmoModel, ElmoLayers, ElmoTrainingRun } from './elmo.js';
export { fetchModelFiles, clearCache, listCachedFiles, CACHE_NAME } from './model-loader.js';
export { resolveModelSource, DEFAULT_HUB_URL, MODEL_FILE_ROLES } from './model-source.js';

export default init;

/** The version of the webnlu crate compiled into the loaded module (after `init()`). */
export function webnluVersion() {
  assertReady('webnluVersion');
  return bindings.webnluVersion();
}

// Loading the WebAssembly module once (browser or Node) and the checks every call into Rust
// shares: is the module ready, is this text valid Unicode, Rust errors -> WebnluError.
// The generated glue `./webnlu_wasm.js` is imported as a namespace so that a build without the
// model bindings (WasmRuntime, WasmModel) still loads: `bindings.WasmModel` is then undefined
// and `modelBinding()` says so by name.

import * as bindings from './webnlu_wasm.js';
import { DeviceError, DeviceLostError, ModelLoadError, OutOfMemoryError, UnsupportedError, WebnluError } from './errors.js';

let ready = null;
let initialized = false;
let chosenBuild = null;

// Two builds of the same Rust code ship side by side: `webnlu_wasm_bg.wasm` uses WebAssembly
// SIMD (simd128, in every browser with WebGPU) and `webnlu_wasm_relaxed_bg.wasm` also uses
// relaxed SIMD's fused multiply-add in the matmul (Chrome 114+, Edge; Firefox and Safari
// not yet). The loader validates a tiny module of each kind to pick the faster one this engine
// runs. Both export the same functions, so one JS glue serves both.
const RELAXED_SIMD_PROBE = new Uint8Array([ // (func (result v128) f32x4.relaxed_madd of three splats)
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: [] -> [v128]
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x0a, 0x1c, 0x01, 0x1a, 0x00, // code: one body of 26 bytes, no locals
  0x43, 0, 0, 0, 0, 0xfd, 0x13, 0x43, 0, 0, 0, 0, 0xfd, 0x13, 0x43, 0, 0, 0, 0, 0xfd, 0x13, // 3 x f32x4.splat(0)
  0xfd, 0x85, 0x02, 0x0b, // f32x4.relaxed_madd, end
]);
const SIMD_PROBE = new Uint8Array([ // (func (result v128) f32x4.splat(0))
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,
  0x03, 0x02, 0x01, 0x00,
  0x0a, 0x0b, 0x01, 0x09, 0x00, 0x43, 0, 0, 0, 0, 0xfd, 0x13, 0x0b,
]);

/**
 * Which build this engine should run: 'relaxed-simd' or 'simd128'. `WEBNLU_WASM_BUILD`
 * ('simd128' or 'relaxed-simd', in globalThis or Node's environment) forces one, for tests.
 */
export function wasmBuildFor(validate = (bytes) => WebAssembly.validate(bytes)) {
  const forced = globalThis.WEBNLU_WASM_BUILD ?? (isNode ? process.env.WEBNLU_WASM_BUILD : undefined);
  if (forced !== undefined && forced !== '') {
    if (forced !== 'simd128' && forced !== 'relaxed-simd') {
      throw new WebnluError(`WEBNLU_WASM_BUILD must be simd128 or relaxed-simd, got ${JSON.stringify(forced)}`);
    }
    return forced;
  }
  if (!validate(SIMD_PROBE)) {
    throw new UnsupportedError('this JavaScript engine has no WebAssembly SIMD (simd128), which webnlu needs: ' +
      'Chrome/Edge 91+, Firefox 89+, Safari 16.4+ and Node 16+ have it');
  }
  return validate(RELAXED_SIMD_PROBE) ? 'relaxed-simd' : 'simd128';
}

/** The build that `init()` loaded ('relaxed-simd' or 'simd128'), or null before / for a custom source. */
export function loadedWasmBuild() {
  return chosenBuild;
}

const isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null;

/**
 * Loads and instantiates the WebAssembly module. Later calls return the same promise. `source`
 * may be a URL, a Response, bytes or a compiled `WebAssembly.Module`. Without one, the build
 * that `wasmBuildFor()` picks (`webnlu_wasm_relaxed_bg.wasm` or `webnlu_wasm_bg.wasm`, next to
 * the glue) is fetched, or read from disk in Node.
 */
export function init(source) {
  if (ready === null) {
    ready = (async () => {
      let input = source;
      let build = null;
      if (input === undefined) {
        build = wasmBuildFor();
        // Written out twice so that bundlers (Vite, webpack) see both files as assets.
        input = build === 'relaxed-simd'
          ? new URL('./webnlu_wasm_relaxed_bg.wasm', import.meta.url)
          : new URL('./webnlu_wasm_bg.wasm', import.meta.url);
        if (isNode) {
          // Node's fetch() cannot read file: URLs, so read the bytes ourselves. The specifier is
          // a variable so that browser bundlers do not try to resolve a Node built-in.
          const fsModule = 'node:fs/promises';
          const { readFile } = await import(/* @vite-ignore */ fsModule);
          input = await readFile(input);
        }
      }
      await bindings.default({ module_or_path: input });
      chosenBuild = build;
      initialized = true;
    })();
    ready.catch(() => { ready = null; });
  }
  return ready;
}

/** Throws unless `init()` has finished. */
export function assertReady(what) {
  if (!initialized) throw new WebnluError(`${what}: call and await init() first`);
}

/** The wasm-bindgen export `name` (a class), or an UnsupportedError naming what lacks it. */
export function modelBinding(name, what) {
  const found = bindings[name];
  if (typeof found !== 'function') {
    throw new UnsupportedError(
      `${what}: this build of the webnlu wasm module has no ${name} (built without the model bindings)`);
  }
  return found;
}

/** Whether the loaded glue exports `name`. */
export function hasBinding(name) {
  return typeof bindings[name] === 'function';
}

/** The raw wasm-bindgen exports (for the tokenizer and version calls). */
export { bindings };

/**
 * Index of the first lone UTF-16 surrogate in `text`, or -1 when the text is well formed.
 * JavaScript strings may hold unpaired surrogates (for example a string cut in the middle of an
 * emoji); they are not Unicode text and cannot become the UTF-8 that the Rust side reads.
 */
export function findLoneSurrogate(text) {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) { i++; continue; }
      return i;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return i;
  }
  return -1;
}

/** Throws a WebnluError unless `text` is a well-formed string; `name` names it in the message. */
export function checkText(text, name) {
  if (typeof text !== 'string') {
    throw new WebnluError(`${name} must be a string, got ${text === null ? 'null' : typeof text}`);
  }
  // isWellFormed() is fast native code where it exists (Chrome 111, Node 20); fall back to a scan.
  if (typeof text.isWellFormed === 'function' ? text.isWellFormed() : findLoneSurrogate(text) < 0) return;
  const at = findLoneSurrogate(text);
  const hex = text.charCodeAt(at).toString(16).toUpperCase();
  throw new WebnluError(
    `${name} contains a lone UTF-16 surrogate U+${hex} at index ${at}, which is not valid Unicode; ` +
    `repair it first, e.g. with text.toWellFormed(), which replaces it by U+FFFD ` +
    `(the BERT normalizer then drops that character)`);
}

/** Throws a WebnluError unless `texts` is a non-empty array of well-formed strings. */
export function checkTexts(texts, name) {
  if (!Array.isArray(texts)) throw new WebnluError(`${name} must be an array of strings, got ${typeof texts}`);
  if (texts.length === 0) throw new WebnluError(`${name} is empty: give at least one text`);
  texts.forEach((text, i) => checkText(text, `${name}[${i}]`));
}

/** The classes that a Rust error's kind maps to (crate/src/wasm/mod.rs sets the JS `name`). */
const RUST_ERROR_CLASSES = { UnsupportedError, DeviceError, DeviceLostError, OutOfMemoryError, ModelLoadError };

/**
 * The message of a Rust JsError (or anything thrown) as a WebnluError prefixed with `what`: an
 * UnsupportedError, DeviceError, DeviceLostError (with `reason`), OutOfMemoryError (with `what`
 * and `bytes`) or ModelLoadError when Rust named that kind, else a WebnluError. A trap of the
 * module (e.g. an allocation that failed outside the checked paths) stays a WebnluError.
 */
export function rustError(what, error) {
  if (error instanceof WebnluError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const Class = (error instanceof Error && Object.hasOwn(RUST_ERROR_CLASSES, error.name)) ? RUST_ERROR_CLASSES[error.name] : WebnluError;
  const text = message.startsWith(what) ? message : `${what}: ${message}`;
  if (Class === DeviceLostError) return new DeviceLostError(text, { reason: error.reason, cause: error });
  if (Class === OutOfMemoryError) return new OutOfMemoryError(text, { what: error.what, bytes: error.bytes, cause: error });
  return new Class(text, { cause: error });
}

/** Runs a synchronous call into Rust, turning its JsError into a WebnluError. */
export function callRust(what, fn) {
  try {
    return fn();
  } catch (error) {
    throw rustError(what, error);
  }
}

/** Awaits an asynchronous call into Rust, turning its rejection into a WebnluError. */
export async function callRustAsync(what, fn) {
  try {
    return await fn();
  } catch (error) {
    throw rustError(what, error);
  }
}

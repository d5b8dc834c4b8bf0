// Loading the WebAssembly module once (browser or Node) and the checks every call into Rust
// shares: is the module ready, is this text valid Unicode, Rust errors -> WebnluError.
// The generated glue `./webnlu_wasm.js` is imported as a namespace so that a build without the
// model bindings (WasmRuntime, WasmModel) still loads: `bindings.WasmModel` is then undefined
// and `modelBinding()` says so by name.

import * as bindings from './webnlu_wasm.js';
import { UnsupportedError, WebnluError } from './errors.js';

let ready = null;
let initialized = false;

const isNode = typeof process !== 'undefined' && process.versions != null && process.versions.node != null;

/**
 * Loads and instantiates the WebAssembly module. Later calls return the same promise. `source`
 * may be a URL, a Response, bytes or a compiled `WebAssembly.Module`. Without one, browsers
 * fetch `webnlu_wasm_bg.wasm` next to the glue and Node reads that file from disk.
 */
export function init(source) {
  if (ready === null) {
    ready = (async () => {
      let input = source;
      if (input === undefined && isNode) {
        // Node's fetch() cannot read file: URLs, so read the bytes ourselves. The specifier is a
        // variable so that browser bundlers do not try to resolve a Node built-in.
        const fsModule = 'node:fs/promises';
        const { readFile } = await import(/* @vite-ignore */ fsModule);
        input = await readFile(new URL('./webnlu_wasm_bg.wasm', import.meta.url));
      }
      await bindings.default(input === undefined ? undefined : { module_or_path: input });
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

/** The message of a Rust JsError (or anything thrown) as a WebnluError prefixed with `what`. */
export function rustError(what, error) {
  if (error instanceof WebnluError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new WebnluError(message.startsWith(what) ? message : `${what}: ${message}`, { cause: error });
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

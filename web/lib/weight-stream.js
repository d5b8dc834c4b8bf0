// model.safetensors as a stream: `loadModel` never holds the whole weight file in JS memory.
// The file (a fetch body, a Cache API entry, a Blob's stream, or a caller's own bytes read in
// 1 MiB slices) travels as a `StreamedFile` object in the model's files, with its ReadableStream
// transferred to a worker, or tee'd to each worker of a pool; the engine pushes every chunk into
// a `WasmWeightStream` (crate/src/wasm/weight_stream.rs), which copies its bytes into the
// tensors they belong to, and then builds the model from them (`WasmModel.load_streamed`).
// pytorch_model.bin (a zip of a pickle, read by seeking) keeps the whole-file path.

import { abortError, throwIfAborted } from './abort.js';
import { ModelLoadError } from './errors.js';
import { callRust } from './wasm-module.js';

/** The weight file that is streamed (pytorch_model.bin is read whole). */
export const STREAMED_WEIGHTS = 'model.safetensors';

/** Bytes per chunk when a caller's own array is streamed (each chunk a copy of its slice). */
const ARRAY_CHUNK_BYTES = 1 << 20;

/**
 * A weight file to stream: a plain object (so it crosses postMessage, its stream transferred):
 * `{ streamedFile: name, stream, length, url }`; `length` is the file's size when known
 * (Content-Length, a Blob's size), else undefined; `url` names its source in errors.
 */
export function streamedFile(name, stream, length, url = undefined) {
  return { streamedFile: name, stream, length, url };
}

/** Whether `value` is a `streamedFile`. */
export function isStreamedFile(value) {
  return value !== null && typeof value === 'object' && typeof value.streamedFile === 'string' &&
    typeof ReadableStream !== 'undefined' && value.stream instanceof ReadableStream;
}

/** `stream` with `onChunk(loaded)` called as each chunk passes (the bytes so far). */
export function countingStream(stream, onChunk) {
  let loaded = 0;
  return stream.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      loaded += chunk.byteLength;
      onChunk(loaded);
      controller.enqueue(chunk);
    },
  }));
}

/** A stream of `bytes` (the caller's: never detached nor changed) in slices copied one at a time. */
export function arrayStream(bytes) {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        return;
      }
      const end = Math.min(at + ARRAY_CHUNK_BYTES, bytes.length);
      controller.enqueue(bytes.slice(at, end));
      at = end;
    },
  }, { highWaterMark: 0 });
}

/** `stream` split into `count` streams with the same chunks (one per worker of a pool). */
export function teeStream(stream, count) {
  const branches = [];
  let rest = stream;
  for (let i = 1; i < count; i++) {
    const [branch, remaining] = rest.tee();
    branches.push(branch);
    rest = remaining;
  }
  branches.push(rest);
  return branches;
}

/**
 * Pushes `file`'s chunks into a new `WasmWeightStream` of `runtime` as they arrive and returns it,
 * complete (for `WasmModel.load_streamed`, which takes it over). Between chunks `signal` is
 * checked: an abort cancels the stream and frees what was received. A source that fails (the
 * network) rejects with a ModelLoadError naming the file and URL; the file's own faults
 * (a header that is not JSON, a truncated file) with the wasm loader's error naming them.
 */
export async function receiveWeights(WasmWeightStream, runtime, file, dtype, signal) {
  const length = Number.isFinite(file.length) ? file.length : undefined;
  const weights = callRust('loadModel', () => new WasmWeightStream(runtime, dtype, length));
  const reader = file.stream.getReader();
  // an abort ends a read that waits (a stalled source): the read resolves as done
  const onAbort = () => reader.cancel(abortError(signal)).catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      throwIfAborted(signal);
      let next;
      try {
        next = await reader.read();
      } catch (error) {
        if (error?.name === 'AbortError') throw error;
        const from = file.url === undefined ? '' : ` from ${file.url}`;
        throw new ModelLoadError(`${file.streamedFile}: the download${from} broke off after ${weights.received} bytes: ${error?.message ?? error}`,
          { url: file.url, file: file.streamedFile, cause: error });
      }
      throwIfAborted(signal);
      if (next.done) return weights;
      callRust('loadModel', () => weights.push(next.value));
    }
  } catch (error) {
    weights.free();
    reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

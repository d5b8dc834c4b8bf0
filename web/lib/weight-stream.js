// model.safetensors as a stream: `loadModel` never holds the whole weight file in JS memory.
// The file (a fetch body, a Cache API entry, a Blob's stream, or a caller's own bytes read in
// 1 MiB slices) travels as a `streamedFile` object in the model's files; the engine pushes every
// chunk into a `WasmWeightStream` (crate/src/wasm/weight_stream.rs), which copies its bytes into
// the tensors they belong to, and then builds the model from them (`WasmModel.load_streamed`).
// On the page's thread a byte stream (fetch bodies, Blobs, the caller's array) is read with a
// BYOB reader into one reused buffer: no garbage chunk per read (in Chromium hundreds of MiB of
// them would wait for a collection while the model loads). For a worker the stream is wrapped to
// count progress on the page and transferred (`forWorker`), for a pool tee'd to each worker.
// pytorch_model.bin (a zip of a pickle, read by seeking) keeps the whole-file path.

import { abortError, throwIfAborted } from './abort.js';
import { ModelLoadError } from './errors.js';
import { callRust } from './wasm-module.js';

/** The weight file that is streamed (pytorch_model.bin is read whole). */
export const STREAMED_WEIGHTS = 'model.safetensors';

/** Bytes per chunk when a caller's own array is streamed (each chunk a copy of its slice). */
const ARRAY_CHUNK_BYTES = 1 << 20;

/**
 * A weight file to stream: a plain object `{ streamedFile: name, stream, length, url, onRead }`;
 * `length` is the file's size when known (Content-Length, a Blob's size), else undefined; `url`
 * names its source in errors; `onRead(loaded)`, called by the reader on this thread as bytes
 * arrive, reports progress (`forWorker` moves it into the stream before the file is posted).
 */
export function streamedFile(name, stream, length, url = undefined, onRead = undefined) {
  return { streamedFile: name, stream, length, url, onRead };
}

/** Whether `value` is a `streamedFile`. */
export function isStreamedFile(value) {
  return value !== null && typeof value === 'object' && typeof value.streamedFile === 'string' &&
    typeof ReadableStream !== 'undefined' && value.stream instanceof ReadableStream;
}

/**
 * `files` (a Map) for posting to a worker: a streamed file's progress callback (not cloneable)
 * becomes a counting wrapper of its stream, read on this thread as the worker pulls.
 */
export function forWorker(files) {
  const file = files instanceof Map ? files.get(STREAMED_WEIGHTS) : undefined;
  if (!isStreamedFile(file) || file.onRead === undefined) return files;
  const posted = new Map(files);
  const stream = countingStream(file.stream, file.onRead);
  posted.set(STREAMED_WEIGHTS, streamedFile(file.streamedFile, stream, file.length, file.url));
  return posted;
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

/**
 * A byte stream of `bytes` (the caller's: never detached nor changed), copied 1 MiB at a time
 * into the reader's buffer (a BYOB reader), else as slices.
 */
export function arrayStream(bytes) {
  let at = 0;
  return new ReadableStream({
    type: 'bytes',
    pull(controller) {
      const request = controller.byobRequest;
      if (at >= bytes.length) {
        controller.close();
        request?.respond(0);
        return;
      }
      if (request) {
        const n = Math.min(request.view.byteLength, bytes.length - at);
        new Uint8Array(request.view.buffer, request.view.byteOffset, n).set(bytes.subarray(at, at + n));
        at += n;
        request.respond(n);
        return;
      }
      const end = Math.min(at + ARRAY_CHUNK_BYTES, bytes.length);
      controller.enqueue(bytes.slice(at, end));
      at = end;
    },
  });
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
 * Pushes `file`'s chunks into a new `WasmWeightStream` of `runtime` as they arrive and returns it
 * (`config`: the bytes of config.json, checked before any chunk and against the file's header),
 * complete (for `WasmModel.load_streamed`, which takes it over). Between chunks `signal` is
 * checked: an abort cancels the stream and frees what was received. A source that fails (the
 * network) rejects with a ModelLoadError naming the file and URL; the file's own faults
 * (a header that is not JSON, a truncated file) with the wasm loader's error naming them.
 */
export async function receiveWeights(WasmWeightStream, runtime, file, config, dtype, signal) {
  const length = Number.isFinite(file.length) ? file.length : undefined;
  const weights = callRust('loadModel', () => new WasmWeightStream(runtime, config, dtype, length));
  const { reader, byob } = readerOf(file.stream);
  // an abort ends a read that waits (a stalled source): the read resolves as done
  const onAbort = () => reader.cancel(abortError(signal)).catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  let buffer = byob ? new ArrayBuffer(ARRAY_CHUNK_BYTES) : undefined;
  try {
    for (;;) {
      throwIfAborted(signal);
      let next;
      try {
        next = await (byob ? reader.read(new Uint8Array(buffer)) : reader.read());
      } catch (error) {
        if (error?.name === 'AbortError') throw error;
        const from = file.url === undefined ? '' : ` from ${file.url}`;
        throw new ModelLoadError(`${file.streamedFile}: the download${from} broke off after ${weights.received} bytes: ${error?.message ?? error}`,
          { url: file.url, file: file.streamedFile, cause: error });
      }
      throwIfAborted(signal);
      if (next.done) return weights;
      callRust('loadModel', () => weights.push(next.value));
      if (byob) buffer = next.value.buffer; // the same memory, handed back by the read
      file.onRead?.(weights.received);
    }
  } catch (error) {
    weights.free();
    reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** A BYOB reader of `stream` where it is a byte stream, else its default reader. */
function readerOf(stream) {
  try {
    return { reader: stream.getReader({ mode: 'byob' }), byob: true };
  } catch {
    return { reader: stream.getReader(), byob: false };
  }
}

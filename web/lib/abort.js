// Cancellation: the `signal` option (an AbortSignal) of every asynchronous method. A signal
// already aborted rejects the call at once; one aborted while the call runs rejects its promise
// as soon as this thread sees the abort event, and the engine stops the work at its next
// boundary (before the operation starts, between chunks of texts, after an object is created:
// then it is freed). The engine's queue goes on with the next call, so the model works as
// before. What "during" means on each path: web/lib/README.md, "Cancelling a call".

import { WebnluError } from './errors.js';

/**
 * The texts an engine call reads between two looks at an aborted signal (lists longer than this
 * run in chunks when a signal is given). Every text is computed on its own (the worker pool's
 * split relies on the same fact), so chunks give the numbers the whole list gives.
 */
export const ABORT_CHUNK = 32;

/** The error an aborted call rejects with: the signal's `reason` if it is an AbortError DOMException, else a new one. */
export function abortError(signal) {
  const reason = signal?.reason;
  if (reason instanceof DOMException && reason.name === 'AbortError') return reason;
  const why = reason === undefined ? '' : `: ${reason instanceof Error ? reason.message : String(reason)}`;
  return new DOMException(`The operation was aborted${why}`, 'AbortError');
}

/** Whether `error` is the rejection of an aborted call. */
export function isAbortError(error) {
  return error instanceof DOMException && error.name === 'AbortError';
}

/** `signal` checked (undefined, null or an AbortSignal); throws the AbortError if it is aborted. */
export function checkSignal(signal, what = 'signal') {
  if (signal === undefined || signal === null) return undefined;
  if (typeof AbortSignal === 'undefined' || !(signal instanceof AbortSignal)) {
    throw new WebnluError(`${what} must be an AbortSignal (from an AbortController), got ${typeof signal}`);
  }
  if (signal.aborted) throw abortError(signal);
  return signal;
}

/**
 * A training run's `signal` option: checked as `checkSignal` does, but one that is already
 * aborted is kept (the run then ends at once and its `done` rejects) instead of thrown.
 */
export function trainingSignal(signal) {
  try {
    return checkSignal(signal);
  } catch (error) {
    if (!isAbortError(error)) throw error;
    return signal;
  }
}

/** Throws the AbortError when `signal` is aborted (a boundary inside an operation). */
export function throwIfAborted(signal) {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * The operations whose result holds a new engine object: where to find its handle. A result
 * that arrives after its call was aborted is freed, so an abort never leaks a model or trainer.
 */
const CREATED_HANDLE = {
  'model.load': (result) => result.handle,
  'elmo.load': (result) => result.handle,
  'tokenizer.create': (result) => result.handle,
  'elmo.trainer': (result) => result.handle,
  'model.trainer': (result) => result,
  'model.tokenTrainer': (result) => result,
  'model.mlmTrainer': (result) => result,
};

/**
 * `channel.call(op, args, transfer, signal)`, rejecting with the AbortError as soon as `signal`
 * aborts (the engine is told through `signal` and stops at its next boundary; its queue goes
 * on). A result that comes after the abort is discarded, and an object it created is freed.
 */
export function callAbortable(channel, op, args, transfer, signal) {
  if (signal === undefined || signal === null) return channel.call(op, args, transfer);
  if (signal.aborted) return Promise.reject(abortError(signal));
  const running = channel.call(op, args, transfer, signal);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      reject(abortError(signal));
      running.then((late) => {
        const handle = createdHandle(op, late);
        if (handle !== undefined) channel.call('free', { handle }).catch(() => {});
      }, () => {});
    };
    signal.addEventListener('abort', onAbort, { once: true });
    running.then(
      (result) => { signal.removeEventListener('abort', onAbort); resolve(result); },
      (error) => { signal.removeEventListener('abort', onAbort); reject(error); },
    );
  });
}

/**
 * A promise that resolves in a later task of the event loop: the CPU path computes without
 * awaiting anything but microtasks, so an abort event (a click, a timer, the worker's abort
 * message) and the page's rendering only get their turn at such a yield. A timer, not
 * `scheduler.yield()`, whose continuation Chromium runs ahead of the tasks already waiting.
 */
export function nextTask() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * `run(part)` over `items` in chunks of ABORT_CHUNK (all at once without a signal), yielding to
 * the event loop and looking at `signal` before each chunk after the first; resolves to the
 * chunks' results joined in order (`joinParts`).
 */
export async function inChunks(items, signal, run) {
  if (signal === undefined || signal === null || items.length <= ABORT_CHUNK) return run(items);
  const parts = [];
  for (let start = 0; start < items.length; start += ABORT_CHUNK) {
    if (start > 0) await nextTask();
    throwIfAborted(signal);
    parts.push(await run(items.slice(start, start + ABORT_CHUNK)));
  }
  return joinParts(parts);
}

/** The results of chunks, in order, as one: Float32Arrays joined, lists concatenated. */
export function joinParts(parts) {
  if (parts.length === 1) return parts[0];
  if (parts.every((part) => part instanceof Float32Array)) {
    const joined = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of parts) { joined.set(part, offset); offset += part.length; }
    return joined;
  }
  return parts.flat(1);
}

/** The handle of the object that `op`'s `result` created, or undefined. */
export function createdHandle(op, result) {
  const handle = result === null || result === undefined ? undefined : CREATED_HANDLE[op]?.(result);
  return typeof handle === 'number' ? handle : undefined;
}

// EngineObject: what a model or a tokenizer living in a runtime's engine (this thread's, a
// worker's or a pool's) is on this side: its handle there, the channel to it, and `dispose()`,
// which frees it there. LoadedTokenizer, Model (runtime.js) and ElmoModel (elmo.js) extend it.

import { callAbortable } from './abort.js';
import { DisposedError } from './errors.js';

/**
 * The channel to an object's engine, for the package's own modules (not exported from
 * index.js): a training run talks to its trainer, an engine object of its own, through it.
 */
export let channelOf;

export class EngineObject {
  #channel;
  #handle;
  #disposed = false;
  /** What the object is called in errors ('Model', 'tokenizer', ...). */
  #kind;

  static {
    channelOf = (object) => object.#channel;
  }

  constructor(channel, handle, kind) {
    this.#channel = channel;
    this.#handle = handle;
    this.#kind = kind;
  }

  /** Whether `dispose()` was called. */
  get disposed() {
    return this.#disposed;
  }

  /**
   * @private `op` on this object in the engine (`args.handle`, if given, names another engine
   * object, e.g. a trainer); `signal` (checked by the caller) may abort it (abort.js); `transfer`:
   * buffers of `args` to move to a worker instead of copying. Rejects once disposed.
   */
  call(op, args = {}, signal = undefined, transfer = []) {
    if (this.#disposed) return Promise.reject(new DisposedError(`this ${this.#kind} was disposed`));
    return callAbortable(this.#channel, op, { handle: this.#handle, ...args }, transfer, signal);
  }

  /** Frees the object in the engine (a model's GPU buffers included); later calls reject with DisposedError. */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#channel.call('free', { handle: this.#handle }).catch(() => {});
  }
}

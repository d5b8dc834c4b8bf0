// How the public classes reach the engine: directly on this thread, or by messages to the
// Web Worker of worker.js. Both offer `call(op, args, transfer)` -> Promise and `close()`.
// Over the worker, arguments listed in `transfer` and the typed arrays of results move
// without a copy (transferables); errors come back as their own WebnluError subclasses.

import { Engine } from './engine.js';
import { errorFromWire, WorkerError } from './errors.js';

/** The engine on the calling thread. */
export class DirectChannel {
  constructor() {
    this.engine = new Engine();
    this.inWorker = false;
  }

  call(op, args) {
    return this.engine.run(op, args);
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

  call(op, args = {}, transfer = []) {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ id, op, args }, transfer);
      } catch (error) {
        this.pending.delete(id);
        reject(new WorkerError(`could not send ${op} to the webnlu worker: ${error.message}`, { cause: error }));
      }
    });
  }

  close() {
    this.worker.terminate();
    this.fail(new WorkerError('the runtime was disposed (its worker is stopped)'));
  }
}

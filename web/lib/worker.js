// The Web Worker of `Runtime.create({ worker: true })`: an engine (engine.js) that answers the
// page's messages `{ id, op, args }` with `{ id, ok, result }` or `{ id, ok: false, error }`,
// moving the typed arrays of results to the page without copies. `{ abort: id }` aborts call
// `id` (its `signal` was aborted on the page): the engine stops it at its next boundary.

import { Engine, transferablesOf } from './engine.js';
import { errorToWire } from './errors.js';

const engine = new Engine();
/** id -> AbortController of the calls that the page may abort (sent with `abortable: true`). */
const abortable = new Map();

self.addEventListener('message', async (event) => {
  if (event.data.abort !== undefined) {
    abortable.get(event.data.abort)?.abort();
    return;
  }
  const { id, op, args } = event.data;
  const controller = event.data.abortable ? new AbortController() : null;
  if (controller !== null) abortable.set(id, controller);
  try {
    const result = await engine.run(op, args, controller?.signal);
    self.postMessage({ id, ok: true, result }, transferablesOf(result));
  } catch (error) {
    self.postMessage({ id, ok: false, error: errorToWire(error) });
  } finally {
    abortable.delete(id);
  }
});

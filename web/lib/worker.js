// The Web Worker of `Runtime.create({ worker: true })`: an engine (engine.js) that answers the
// page's messages `{ id, op, args }` with `{ id, ok, result }` or `{ id, ok: false, error }`,
// moving the typed arrays of results to the page without copies.

import { Engine, transferablesOf } from './engine.js';
import { errorToWire } from './errors.js';

const engine = new Engine();

self.addEventListener('message', async (event) => {
  const { id, op, args } = event.data;
  try {
    const result = await engine.run(op, args);
    self.postMessage({ id, ok: true, result }, transferablesOf(result));
  } catch (error) {
    self.postMessage({ id, ok: false, error: errorToWire(error) });
  }
});

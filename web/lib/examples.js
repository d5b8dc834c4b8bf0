// parseExamples: labelled examples from text, read by the Rust parser of the tasks
// (crate/src/tasks/examples.rs, the one the CLI's `train-head --examples` uses), so that a page
// and the command line read the same file the same way. Synchronous, on the calling thread,
// after init(): it needs no Runtime, so it is the same in page, worker and pool modes.

import { assertReady, bindings, callRust, checkText } from './wasm-module.js';
import { WebnluError } from './errors.js';

/**
 * The examples of `text`: `{ text, label }` each, and `pair` for pairs of texts. `format` is
 * 'auto' (default), 'rated' (VADER `id<TAB>rating<TAB>text`), 'tsv', 'csv' or 'lines'
 * (`text,label` or `text<TAB>label` per line). A bad line throws a WebnluError naming it.
 */
export function parseExamples(text, { format = 'auto' } = {}) {
  assertReady('parseExamples');
  checkText(text, 'parseExamples: text');
  if (typeof format !== 'string') {
    throw new WebnluError(`parseExamples: format must be a string (auto, rated, tsv, csv or lines), got ${typeof format}`);
  }
  return callRust('parseExamples', () => bindings.parseExamples(text, format));
}

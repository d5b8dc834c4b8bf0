// ELMo's training options through the package (`elmo.trainClassifier`, in Node the page-thread
// path on the CPU): the options object goes to Rust as it is (`ElmoTrainOptions::from_json`, the
// type `webnlu elmo-train`'s flags fill), so a misspelt name (with the valid ones), a value of the
// wrong type and a value out of its range reject `done` with Rust's message naming the option,
// before any epoch; JS checks only the callbacks; a left-out `epochs` runs Rust's default (10).
// The worker and the pool: tests/browser/elmo.test.mjs.
//
// Needs: pkg/ (make pkg) and the fixture (bash tests/fixtures/generate.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${ROOT}pkg/index.js`)) throw new Error(`missing ${ROOT}pkg/index.js: run \`make pkg\``);
const { Runtime, WebnluError } = await import(`${ROOT}pkg/index.js`);

const ELMO = `${ROOT}tests/fixtures/models/elmo-fixture`;
const WORDS = ['the', 'man', 'woman', 'river', 'city', 'saw', 'liked', 'old', 'big', 'dog'];

/** 20 labelled sentences of the fixture's words, two labels. */
const EXAMPLES = Array.from({ length: 20 }, (_, i) => ({
  words: Array.from({ length: 3 + (i % 3) }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]),
  label: i % 2 ? 'x' : 'y',
}));

let rt;
let elmo;

before(async () => {
  rt = await Runtime.create({ device: 'cpu' });
  elmo = await rt.loadElmo({ options: readFileSync(`${ELMO}/options.json`, 'utf8'), weights: readFileSync(`${ELMO}/lm_weights.hdf5`) });
});

after(() => {
  elmo?.dispose();
  rt?.dispose();
});

test('ELMo training options: unknown, ill-typed and out-of-range options are refused with Rust\'s message', async () => {
  const refusals = [
    [{ batch_size: 4 }, /unknown training option: unknown field `batch_size`, expected one of `training`, `epochs`, `batchSize`, `learningRate`, `seed`, `validation`/],
    [{ freeze: 'all' }, /unknown training option: unknown field `freeze`/], // BERT's, not ELMo's
    [{ onEpoch: () => {} }, /unknown training option: unknown field `onEpoch`/],
    [{ training: 'everything' }, /training option training: training must be 'head', 'mix' or 'end-to-end', found "everything"/],
    [{ epochs: '3' }, /training option epochs: invalid type: string "3"/],
    [{ batchSize: 2.5 }, /training option batchSize: invalid type: floating point `2.5`/],
    [{ epochs: 0 }, /epochs must be a positive integer \(>= 1\), found 0/],
    [{ batchSize: 0 }, /batchSize must be a positive integer \(>= 1\), found 0/],
    [{ learningRate: 0 }, /learningRate must be a finite number > 0, found 0/],
    [{ validation: 1 }, /validation must be the fraction of examples to hold out, in \[0, 1\), found 1/],
  ];
  for (const [options, pattern] of refusals) {
    let epochs = 0;
    const run = elmo.trainClassifier(EXAMPLES, { ...options, onProgress: () => { epochs += 1; } });
    await assert.rejects(run.done, (e) => e instanceof WebnluError && pattern.test(e.message), JSON.stringify(options));
    assert.equal(epochs, 0, 'refused before any epoch');
  }
  // JS's own: the callbacks, at once
  assert.throws(() => elmo.trainClassifier(EXAMPLES, { onStep: 3 }), /onStep must be a function, got number/);
  assert.throws(() => elmo.trainClassifier(EXAMPLES, { onProgress: 'x' }), /onProgress must be a function, got string/);
});

test('ELMo training options: what is left out takes Rust\'s defaults (10 epochs, 0.1 held out)', async () => {
  const { epochs } = await elmo.trainClassifier(EXAMPLES, { batchSize: 8, seed: undefined }).done; // undefined = left out
  assert.equal(epochs.length, 10);
  assert.deepEqual([epochs[0].trainSentences, epochs[0].heldOutSentences], [18, 2]);
  // and what is given is used
  const given = await elmo.trainClassifier(EXAMPLES, { epochs: 2, validation: 0.25, training: 'mix' }).done;
  assert.equal(given.epochs.length, 2);
  assert.deepEqual([given.epochs[0].trainSentences, given.epochs[0].heldOutSentences], [15, 5]);
});

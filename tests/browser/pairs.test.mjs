// Sentence pairs and next-sentence prediction in real Chromium, in every mode of the package:
// the page's thread and a Web Worker, each on the GPU (SwiftShader WebGPU) and the CPU, and the
// CPU pool (threads: 2). Pair classification (BERT, DistilBERT) and next-sentence probabilities
// equal transformers' (tests/fixtures/bert-reference/pairs.json) within 1e-5 everywhere; the
// pool equals one CPU thread bit for bit (lists of pairs split among the workers, and head-only
// training on pair examples with its feature pass split); token labels and mask fillers of a
// pair, a long pair cut with `truncate: true` (or refused without it), and the errors of bad
// pairs, are the same in every mode.
//
// Needs: pkg/ (make pkg), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'make pkg']]);

const REFERENCE = JSON.parse(readFileSync(`${ROOT}tests/fixtures/bert-reference/pairs.json`, 'utf8'));
const MODES = [
  { device: 'cpu', worker: false, threads: 1 },
  { device: 'gpu', worker: false },
  { device: 'cpu', worker: true, threads: 1 },
  { device: 'gpu', worker: true },
  { device: 'cpu', threads: 2 },
];
const EXAMPLES = Array.from({ length: 12 }, (_, i) => {
  const words = ['good', 'bad', 'happy', 'sad', 'funny', 'boring'];
  return { text: `the film was ${words[i % 6]}`, pair: `a ${words[(i * 5) % 6]} movie`, label: i % 3 ? 'yes' : 'no' };
});

let session;
const errors = [];
const notFound = [];

before(async () => {
  session = await openSession({ mounts: [['/reference/', `${ROOT}tests/fixtures/bert-reference/random`]] });
});

after(() => closeSession(session));

/** Everything this test compares, on one runtime opened with `options`. */
async function computeAll({ options, pairs, examples }) {
  const rt = await window.webnlu.Runtime.create(options);
  const out = { device: rt.device.kind, threads: rt.device.threads, worker: rt.worker };
  const outcome = async (promise) => {
    try { await promise; return 'resolved'; } catch (error) { return `${error.name}: ${error.message}`; }
  };
  for (const name of ['bert-random-classifier', 'distilbert-random-classifier']) {
    const model = await rt.loadModel(`/reference/${name}/`);
    out[name] = await model.classify(pairs[name]);
    out[`${name}:one`] = await model.classify({ text: pairs[name][0][0], pair: pairs[name][0][1] });
    model.dispose();
  }
  const bert = await rt.loadModel('/reference/bert-random/');
  out.nsp = await bert.nextSentence(pairs['bert-random']);
  out.nspOne = await bert.nextSentence(pairs['bert-random'][1][0], pairs['bert-random'][1][1]);
  const long = ['the old man walked near the river and liked the birds . '.repeat(4), 'a very funny movie ! '.repeat(12)];
  out.nspCut = await bert.nextSentence([long, ['a', 'b']], { truncate: true });
  out.longPair = await outcome(bert.nextSentence(long[0], long[1]));
  out.fill = await bert.fillMask([['the [MASK] ran .', 'it was [MASK] .'], 'a [MASK] day'], { topK: 3 });
  const run = bert.trainClassifier(examples, { freeze: 'head', epochs: 2, learningRate: 0.01, validation: 0, seed: 5 });
  out.losses = (await run.done).epochs.map((e) => e.loss);
  out.trained = await bert.classify(examples.slice(0, 5).map((e) => [e.text, e.pair]));
  bert.dispose();
  const ner = await rt.loadModel('/reference/bert-random-ner/');
  out.tokens = await ner.classifyTokens([{ text: 'the man saw a bird', pair: 'it was in the city' }, 'a big river']);
  out.noHead = await outcome(ner.nextSentence('a', 'b'));
  out.threeTexts = await outcome(ner.classify([['a', 'b', 'c']]));
  out.after = (await ner.classifyTokens('still works')).length;
  ner.dispose();
  rt.dispose();
  return out;
}

function assertClose(got, want, tolerance, what) {
  assert.equal(got.length, want.length, `${what}: lengths`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tolerance, `${what}[${i}]: ${g} vs ${want[i]} (tolerance ${tolerance})`));
}

test('pairs and next-sentence on the page and in a worker, GPU and CPU, and in the CPU pool: transformers within 1e-5, the pool equal to one thread', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const pairs = Object.fromEntries(['bert-random-classifier', 'distilbert-random-classifier', 'bert-random']
    .map((name) => [name, REFERENCE[name].whole.pairs]));
  const runs = [];
  for (const options of MODES) runs.push(await page.evaluate(computeAll, { options, pairs, examples: EXAMPLES }));
  await page.close();

  assert.deepEqual(runs.map((r) => [r.device, r.worker, r.threads]),
    [['cpu', false, 1], ['gpu', false, 1], ['cpu', true, 1], ['gpu', true, 1], ['cpu', true, 2]]);
  for (const [i, run] of runs.entries()) {
    const mode = JSON.stringify(MODES[i]);
    // f32 on both sides; on the GPU the sums run in another order: still within 1e-5
    for (const name of ['bert-random-classifier', 'distilbert-random-classifier']) {
      assertClose(run[name].flatMap((r) => r.scores), REFERENCE[name].whole.probabilities.flat(), 1e-5, `${mode} ${name}`);
      assert.deepEqual(run[`${name}:one`], run[name][0], `${mode} ${name}: one pair`);
    }
    assertClose(run.nsp.flatMap((r) => r.scores), REFERENCE['bert-random'].whole.probabilities.flat(), 1e-5, `${mode} nsp`);
    assert.deepEqual(run.nspOne, run.nsp[1], `${mode}: nextSentence(a, b)`);
    assertClose(run.nspCut.flatMap((r) => r.scores), runs[0].nspCut.flatMap((r) => r.scores), 1e-5, `${mode}: a pair cut longest_first`);
    assert.match(run.longPair, /^WebnluError: .*pair 0 is 119 tokens long \(56 \+ 60 of its two texts and 3 special tokens\), the model reads at most 64/, mode);
    assert.equal(run.fill.length, 2);
    assert.equal(run.fill[0].length, 2, `${mode}: a mask in each text of the pair`);
    assert.deepEqual(run.tokens[0].map((t) => t.sequence), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], mode);
    assert.ok(run.tokens[1].every((t) => t.sequence === undefined), mode);
    assert.match(run.noHead, /^WebnluError: .*no next-sentence head.*cls\.seq_relationship\.weight/, mode);
    assert.match(run.threeTexts, /^WebnluError: texts\[0\] must be a string or a pair/, mode);
    assert.equal(run.after, 2, `${mode}: the model works after the errors`);
    // the same tokens, labels and fillers in every mode (the scores differ by rounding on the GPU)
    assert.deepEqual(run.tokens.map((list) => list.map((t) => [t.token, t.start, t.end, t.sequence])),
      runs[0].tokens.map((list) => list.map((t) => [t.token, t.start, t.end, t.sequence])), mode);
    assert.deepEqual(run.fill.map((masks) => masks.map((m) => m[0].token)), runs[0].fill.map((masks) => masks.map((m) => m[0].token)), mode);
    assertClose(run.losses, runs[0].losses, 1e-5 * Math.abs(runs[0].losses[0]), `${mode} training losses`);
  }
  // The pool splits lists of pairs (and the feature pass of head-only training) among its
  // workers; each pair is computed on its own, so it equals one thread bit for bit.
  const [cpu, , , , pool] = runs;
  for (const key of ['bert-random-classifier', 'distilbert-random-classifier', 'nsp', 'nspOne', 'nspCut', 'longPair', 'fill', 'losses', 'trained', 'tokens', 'noHead']) {
    assert.deepEqual(pool[key], cpu[key], `${key}: threads 2 differs from threads 1`);
  }
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

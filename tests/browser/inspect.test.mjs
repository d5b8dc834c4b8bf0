// Model.inspect and Model.wordVectors in real Chromium on every path: the GPU (WebGPU on
// SwiftShader) and the CPU (Rust compiled to wasm), on the page's thread, in worker mode, and in
// the CPU worker pool (`threads: 2`), against the native CLI `webnlu inspect --device cpu`
// (checked against transformers in tests/rust/tasks/inspect.rs): tokens, type ids, UTF-16
// offsets, every hidden state and attention probability of a text and of a pair, for the
// committed random BERT and DistilBERT checkpoints; word vectors = the mean of each word's
// pieces of the CLI's hidden state; a long text refused with its length.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu), /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';
import { cli, maxAbsDiff, requireCli } from './cli-reference.mjs';

requireFiles([[`${ROOT}pkg/index.js`, 'make pkg']]);
requireCli();

const REFERENCE = `${ROOT}tests/fixtures/bert-reference/random`;
const CHECKPOINTS = ['bert-random', 'distilbert-random'];
const TEXT = 'the woman walked near the happy dogs .';
const PAIR = ['a small 🐦 bird sang', 'it was véry funny !'];
const LONG = 'the cat sat . '.repeat(20);
const PATHS = [
  { device: 'gpu', worker: false },
  { device: 'cpu', worker: false },
  { device: 'gpu', worker: true },
  { device: 'cpu', worker: true, threads: 1 },
  { device: 'cpu', worker: true, threads: 2 },
];

let session;
const reference = {};
const errors = [];
const notFound = [];

before(async () => {
  for (const checkpoint of CHECKPOINTS) {
    reference[checkpoint] = cli('inspect', `${REFERENCE}/${checkpoint}`, [TEXT, PAIR.join('\t')], ['--attentions']);
  }
  session = await openSession({ mounts: [['/reference/', REFERENCE]] });
});

after(() => closeSession(session));

/** (C+1,) UTF-16 index of every code-point boundary of `text`. */
function utf16At(text) {
  const at = [0];
  for (const character of text) at.push(at.at(-1) + character.length);
  return at;
}

test('inspect and wordVectors on the GPU and CPU paths, page thread, worker and pool, equal the native CLI', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const runs = await page.evaluate(async ({ paths, checkpoints, text, pair, long }) => {
    const out = [];
    for (const options of paths) {
      const rt = await window.webnlu.Runtime.create(options);
      const run = { ...options, device: rt.device.kind, worker: rt.worker, threads: rt.device.threads, models: {} };
      for (const checkpoint of checkpoints) {
        const model = await rt.loadModel(`/reference/${checkpoint}/`);
        const rows = [await model.inspect(text, { attentions: true }), await model.inspect(pair[0], { pair: pair[1], attentions: true })];
        const words = await model.wordVectors(text, { layer: 1 });
        let error = null;
        try { await model.inspect(long); } catch (e) { error = `${e.name}: ${e.message}`; }
        run.models[checkpoint] = {
          rows: rows.map((r) => ({
            tokens: r.tokens, offsets: Array.from(r.offsets), typeIds: Array.from(r.typeIds), specials: Array.from(r.specialTokensMask),
            layers: r.layers, attentionLayers: r.attentionLayers, hiddenShape: r.hiddenStatesShape, attentionsShape: r.attentionsShape,
            hidden: Array.from(r.hiddenStates), attentions: Array.from(r.attentions),
            viewOk: r.hiddenState(1).length === r.hiddenStatesShape[1] * r.hiddenStatesShape[2] && r.attention(0).length === r.attentionsShape.slice(1).reduce((a, b) => a * b),
          })),
          words: words.words.map((w) => ({ word: w.word, start: w.start, end: w.end, pieces: w.pieces, vector: Array.from(w.vector) })),
          error,
        };
        model.dispose();
      }
      rt.dispose();
      out.push(run);
    }
    return out;
  }, { paths: PATHS, checkpoints: CHECKPOINTS, text: TEXT, pair: PAIR, long: LONG });
  await page.close();
  assert.deepEqual(runs.map((r) => [r.device, r.worker]), PATHS.map((p) => [p.device, p.worker]));
  assert.equal(runs.at(-1).threads, 2, 'the last run is the pool of two workers');
  for (const run of runs) {
    const label = `${run.device.toUpperCase()}, ${run.threads > 1 ? `pool of ${run.threads}` : run.worker ? 'worker' : 'page thread'}`;
    // CPU: the same Rust f32 code as the native CLI, compiled to wasm (1e-5). GPU: sums in
    // other orders on SwiftShader: the issue's tolerances against PyTorch (hidden states 1e-4,
    // probabilities 1e-5).
    const [hiddenTolerance, attentionTolerance] = run.device === 'cpu' ? [1e-5, 1e-5] : [1e-4, 1e-5];
    for (const checkpoint of CHECKPOINTS) {
      const got = run.models[checkpoint];
      let hiddenDiff = 0;
      let attentionDiff = 0;
      got.rows.forEach((row, r) => {
        const want = reference[checkpoint][r];
        const t = want.tokens.length;
        assert.deepEqual(row.tokens, want.tokens, `${label} ${checkpoint} row ${r}`);
        assert.deepEqual(row.typeIds, want.type_ids);
        assert.deepEqual([row.layers, row.attentionLayers], [want.layers, want.attention_layers]);
        assert.deepEqual([row.hiddenShape, row.attentionsShape], [[3, t, 32], [2, 4, t, t]]);
        assert.ok(row.viewOk, `${label}: hiddenState / attention views`);
        hiddenDiff = Math.max(hiddenDiff, maxAbsDiff(row.hidden, want.hidden_states.flat(Infinity)));
        attentionDiff = Math.max(attentionDiff, maxAbsDiff(row.attentions, want.attentions.flat(Infinity)));
        const texts = r === 0 ? [TEXT] : PAIR;
        const at = texts.map(utf16At);
        let specials = 0;
        want.offsets.forEach(([start, end], i) => {
          if (row.specials[i]) { specials++; return; }
          const which = specials >= 2 ? 1 : 0;
          assert.deepEqual(row.offsets.slice(2 * i, 2 * i + 2), [at[which][start], at[which][end]], `${label}: offsets of token ${i}`);
        });
      });
      assert.ok(hiddenDiff <= hiddenTolerance, `${label} ${checkpoint}: hidden states differ by ${hiddenDiff}`);
      assert.ok(attentionDiff <= attentionTolerance, `${label} ${checkpoint}: attentions differ by ${attentionDiff}`);
      // word vectors at hidden state 1: the mean of the CLI's pieces
      const state = reference[checkpoint][0].hidden_states[1]; // (T, C)
      const rows = [[1], [2], [3, 4], [5], [6], [7], [8, 9], [10]];
      assert.deepEqual(got.words.map((w) => [w.word, TEXT.slice(w.start, w.end), w.pieces]),
        ['the', 'woman', 'walked', 'near', 'the', 'happy', 'dogs', '.'].map((w, i) => [w, w, rows[i].length]));
      const wordDiff = Math.max(...got.words.map((w, i) =>
        maxAbsDiff(w.vector, state[0].map((_, j) => rows[i].reduce((sum, r) => sum + state[r][j], 0) / rows[i].length))));
      assert.ok(wordDiff <= hiddenTolerance, `${label} ${checkpoint}: word vectors differ by ${wordDiff}`);
      assert.match(got.error, /^WebnluError: .*the text is 82 tokens long/, `${label}: ${got.error}`);
      console.log(`# inspect ${label} ${checkpoint} vs native CPU: hidden ${hiddenDiff.toExponential(2)}, attentions ${attentionDiff.toExponential(2)}, word vectors ${wordDiff.toExponential(2)}`);
    }
  }
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

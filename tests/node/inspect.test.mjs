// Model.inspect and Model.wordVectors in Node (the CPU device, Rust compiled to wasm) against
// `webnlu inspect --device cpu` (the native CLI, itself checked against transformers in
// tests/rust/tasks/inspect.rs): tokens, type ids, every hidden state and every attention
// probability of a text and of a pair (the committed random BERT and DistilBERT checkpoints),
// offsets converted to UTF-16, the layer selection, word vectors = the mean of each word's
// pieces of the CLI's hidden state, and the errors (long text, bad layers).
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu),
// tests/fixtures/models/all-minilm-l6-v2 (tests/setup/fetch-assets.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cli, maxAbsDiff } from '../browser/cli-reference.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RANDOM = `${ROOT}tests/fixtures/bert-reference/random`;
const MINILM = `${ROOT}tests/fixtures/models/all-minilm-l6-v2`;
for (const [file, how] of [
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [process.env.WEBNLU_CLI ?? `${ROOT}target/debug/webnlu`, 'cargo build --bin webnlu'],
  [`${MINILM}/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2'],
]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}
const { Runtime, WebnluError } = await import(`${ROOT}pkg/index.js`);

// Non-ASCII on purpose: 'é' is one UTF-16 unit, '🐦' two (an [UNK] for the random vocabulary).
const TEXT = 'the woman walked near the happy dogs .';
const PAIR = ['a small 🐦 bird sang', 'it was véry funny !'];

function files(dir, names) {
  return { files: Object.fromEntries(names.map((name) => [name, readFileSync(`${dir}/${name}`)])) };
}

/** The nested lists of the CLI as one flat list. */
const flat = (nested) => nested.flat(Infinity);

/** (C+1,) UTF-16 index of every code-point boundary of `text`. */
function utf16At(text) {
  const at = [0];
  for (const character of text) at.push(at.at(-1) + character.length);
  return at;
}

let rt;
before(async () => {
  rt = await Runtime.create({ device: 'cpu' });
});
after(() => rt?.dispose());

for (const checkpoint of ['bert-random', 'distilbert-random']) {
  test(`inspect of a text and a pair equals \`webnlu inspect --attentions\` (${checkpoint})`, async () => {
    const dir = `${RANDOM}/${checkpoint}`;
    const model = await rt.loadModel(files(dir, ['config.json', 'model.safetensors', 'vocab.txt']));
    const want = cli('inspect', dir, [TEXT, PAIR.join('\t')], ['--attentions']);
    const got = [
      await model.inspect(TEXT, { attentions: true }),
      await model.inspect(PAIR[0], { pair: PAIR[1], attentions: true }),
    ];
    let maxHidden = 0;
    let maxAttention = 0;
    got.forEach((inside, row) => {
      const cliLine = want[row];
      const t = cliLine.tokens.length;
      assert.deepEqual(inside.tokens, cliLine.tokens);
      assert.deepEqual(Array.from(inside.typeIds), cliLine.type_ids);
      assert.deepEqual(inside.layers, cliLine.layers);
      assert.deepEqual(inside.attentionLayers, cliLine.attention_layers);
      assert.deepEqual(inside.hiddenStatesShape, [3, t, 32]);
      assert.deepEqual(inside.attentionsShape, [2, 4, t, t]);
      // 1e-5: the same Rust f32 code as the native CLI on the same CPU, compiled to wasm.
      maxHidden = Math.max(maxHidden, maxAbsDiff(inside.hiddenStates, flat(cliLine.hidden_states)));
      maxAttention = Math.max(maxAttention, maxAbsDiff(inside.attentions, flat(cliLine.attentions)));
      // offsets: the CLI's code points as UTF-16 of each token's own text
      const texts = row === 0 ? [TEXT] : PAIR;
      const at = texts.map(utf16At);
      let specials = 0;
      cliLine.offsets.forEach(([start, end], i) => {
        if (inside.specialTokensMask[i]) { specials++; return; }
        const which = specials >= 2 ? 1 : 0;
        assert.deepEqual([inside.offsets[2 * i], inside.offsets[2 * i + 1]], [at[which][start], at[which][end]], `token ${i}`);
        const written = texts[which].slice(inside.offsets[2 * i], inside.offsets[2 * i + 1]);
        if (inside.tokens[i] !== '[UNK]') assert.equal(written.normalize('NFD').replace(/\p{Mn}/gu, ''), inside.tokens[i].replace(/^##/, ''));
      });
      // the views
      assert.deepEqual(inside.hiddenState(2), inside.hiddenStates.subarray(2 * t * 32, 3 * t * 32));
      assert.equal(inside.attention(1).length, 4 * t * t);
    });
    assert.ok(maxHidden <= 1e-5, `hidden states differ by ${maxHidden}`);
    assert.ok(maxAttention <= 1e-5, `attentions differ by ${maxAttention}`);
    console.log(`# inspect ${checkpoint} (CPU, Node) vs native CLI: hidden ${maxHidden.toExponential(2)}, attentions ${maxAttention.toExponential(2)}`);
    model.dispose();
  });
}

test('inspect: layers select hidden states and their layers\' attentions; errors name what is wrong', async () => {
  const dir = `${RANDOM}/bert-random`;
  const model = await rt.loadModel(files(dir, ['config.json', 'model.safetensors', 'vocab.txt']));
  const all = await model.inspect(TEXT, { attentions: true });
  const some = await model.inspect(TEXT, { attentions: true, layers: [2, 0] });
  assert.deepEqual(some.layers, [0, 2]);
  assert.deepEqual(some.attentionLayers, [1]);
  assert.deepEqual(some.hiddenState(2), all.hiddenState(2));
  assert.equal(some.hiddenState(1), undefined);
  assert.deepEqual(some.attention(1), all.attention(1));
  const plain = await model.inspect(TEXT);
  assert.equal(plain.attentions, null);
  assert.deepEqual(plain.hiddenStates, all.hiddenStates);
  await assert.rejects(model.inspect('the cat sat . '.repeat(20)), /the text is 82 tokens long .*at most 64/);
  await assert.rejects(model.inspect(TEXT, { layers: [3] }), /hidden state 3 does not exist/);
  await assert.rejects(model.inspect(TEXT, { layers: 'last' }), WebnluError);
  await assert.rejects(model.wordVectors(TEXT, { layer: -1 }), WebnluError);
  await assert.rejects(model.inspect(TEXT, { layers: [2 ** 32] }), WebnluError, 'no wrap-around to 0');
  assert.equal((await model.inspect(TEXT)).tokens.length, all.tokens.length, 'the model works after errors');
  model.dispose();
});

test('wordVectors: one vector per word, the mean of its pieces of the CLI\'s hidden state', async () => {
  const dir = `${RANDOM}/bert-random`;
  const model = await rt.loadModel(files(dir, ['config.json', 'model.safetensors', 'vocab.txt']));
  const [line] = cli('inspect', dir, [TEXT], ['--layers', '1']);
  const got = await model.wordVectors(TEXT, { layer: 1 });
  assert.equal(got.layer, 1);
  assert.deepEqual(got.shape, [8, 32]);
  assert.deepEqual(got.words.map((w) => [w.word, w.pieces]),
    [['the', 1], ['woman', 1], ['walked', 2], ['near', 1], ['the', 1], ['happy', 1], ['dogs', 2], ['.', 1]]);
  const state = line.hidden_states[0]; // (T, C): [CLS] the woman walk ##ed near the happy dog ##s . [SEP]
  const rows = [[1], [2], [3, 4], [5], [6], [7], [8, 9], [10]];
  let maxDiff = 0;
  got.words.forEach((word, w) => {
    assert.equal(TEXT.slice(word.start, word.end), word.word);
    const mean = state[0].map((_, j) => rows[w].reduce((sum, r) => sum + state[r][j], 0) / rows[w].length);
    maxDiff = Math.max(maxDiff, maxAbsDiff(word.vector, mean));
  });
  assert.ok(maxDiff <= 1e-5, `word vectors differ from the mean of the CLI's pieces by ${maxDiff}`);
  assert.equal((await model.wordVectors(TEXT)).layer, 2, 'the last hidden state by default');
  model.dispose();
});

test('wordVectors of "banco" in three senses (all-MiniLM-L6-v2): UTF-16 spans, one vector each', async () => {
  const model = await rt.loadModel(files(MINILM, ['config.json', 'model.safetensors', 'tokenizer.json']));
  const sentences = ['Vou pagar a conta no banco amanhã.', 'Sentei no banco da praça para ler.', 'Eu banco o jantar de hoje 🙂.'];
  const vectors = [];
  for (const text of sentences) {
    const { words } = await model.wordVectors(text);
    for (const w of words) assert.equal(text.slice(w.start, w.end), w.word);
    const banco = words.find((w) => w.word === 'banco');
    assert.ok(banco, `"banco" in ${JSON.stringify(text)}`);
    assert.equal(banco.vector.length, 384);
    vectors.push(banco.vector);
  }
  const last = (await model.wordVectors(sentences[2])).words.at(-1);
  assert.equal(last.word, '.');
  assert.equal(last.start, sentences[2].length - 1, 'after the emoji (two UTF-16 units)');
  assert.ok(maxAbsDiff(vectors[0], vectors[1]) > 1e-3, 'the same word in other sentences: other vectors');
  model.dispose();
});

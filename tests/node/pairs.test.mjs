// Sentence pairs and next-sentence prediction in the package (Node, the CPU device): the
// committed random checkpoints loaded from local files give transformers' probabilities
// (tests/fixtures/bert-reference/pairs.json) within 1e-5 and the native CLI's numbers
// (`classify --pair`, `next-sentence`, `classify-tokens --pair`, `fill-mask --pair`,
// `train-head` on a pair TSV); every way of writing a pair ({ text, pair }, [text, pair] in a
// list) gives the same; bad pairs and a model without the next-sentence head are clear errors.
//
// Needs: pkg/ (make pkg), the native CLI (cargo build --bin webnlu).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RANDOM = `${ROOT}tests/fixtures/bert-reference/random`;
const CLI = process.env.WEBNLU_CLI ?? `${ROOT}target/debug/webnlu`;
for (const [file, how] of [[`${ROOT}pkg/index.js`, 'make pkg'], [CLI, 'cargo build --bin webnlu']]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}
const { Runtime, WebnluError } = await import(`${ROOT}pkg/index.js`);
const REFERENCE = JSON.parse(readFileSync(`${ROOT}tests/fixtures/bert-reference/pairs.json`, 'utf8'));

/** The random checkpoint `name` as { files }. */
function files(name) {
  const dir = `${RANDOM}/${name}`;
  return { files: Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(`${dir}/${f}`)])) };
}

function cli(command, name, lines, extra = []) {
  const output = execFileSync(CLI, [command, '--model', `${RANDOM}/${name}`, '--device', 'cpu', ...extra],
    { input: `${lines.join('\n')}\n`, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  return output.split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/** |got - want| <= tolerance, value by value. */
function assertClose(got, want, tolerance, what) {
  assert.equal(got.length, want.length, `${what}: lengths`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tolerance, `${what}[${i}]: ${g} vs ${want[i]} (tolerance ${tolerance})`));
}

const tabbed = (pairs) => pairs.map(([a, b]) => `${a}\t${b}`);

let rt;
before(async () => {
  rt = await Runtime.create({ device: 'cpu' });
});
after(() => rt?.dispose());

test('classify of pairs equals transformers (1e-5) and `webnlu classify --pair`, BERT and DistilBERT', async () => {
  for (const name of ['bert-random-classifier', 'distilbert-random-classifier']) {
    const pairs = REFERENCE[name].whole.pairs;
    const model = await rt.loadModel(files(name));
    const asObjects = await model.classify(pairs.map(([text, pair]) => ({ text, pair })));
    const asTuples = await model.classify(pairs);
    const one = await model.classify({ text: pairs[0][0], pair: pairs[0][1] });
    // transformers' probabilities: f32 on both sides, a softmax of logits equal to a few 1e-7
    assertClose(asObjects.flatMap((r) => r.scores), REFERENCE[name].whole.probabilities.flat(), 1e-5, name);
    assert.deepEqual(asTuples, asObjects, `${name}: tuples and objects`);
    assert.deepEqual(one, asObjects[0], `${name}: one pair`);
    // the same Rust f32 code natively and as wasm, on the same CPU: equal to a few ulps
    const native = cli('classify', name, tabbed(pairs), ['--pair']);
    asObjects.forEach((r, i) => {
      assert.equal(r.label, native[i].label);
      assertClose(r.scores, native[i].scores, 1e-6, `${name} pair ${i} vs the CLI`);
    });
    // a pair without its second text is the text alone
    assert.deepEqual(await model.classify([{ text: pairs[0][0] }]), await model.classify([pairs[0][0]]));
    model.dispose();
  }
});

test('nextSentence(a, b) and of a list equal transformers (1e-5) and `webnlu next-sentence`', async () => {
  const model = await rt.loadModel(files('bert-random'));
  const { pairs, probabilities, logits } = REFERENCE['bert-random'].whole;
  const batch = await model.nextSentence(pairs);
  const single = await model.nextSentence(pairs[1][0], pairs[1][1]);
  assertClose(batch.flatMap((r) => r.scores), probabilities.flat(), 1e-5, 'nsp probabilities');
  assertClose(batch.flatMap((r) => r.logits), logits.flat(), 1e-5, 'nsp logits');
  batch.forEach((r) => assert.equal(r.isNext, r.scores[0]));
  assert.deepEqual(single, batch[1]);
  assert.deepEqual(await model.nextSentence(pairs.map(([text, pair]) => ({ text, pair }))), batch);
  const native = cli('next-sentence', 'bert-random', tabbed(pairs));
  batch.forEach((r, i) => assertClose(r.scores, native[i].scores, 1e-6, `pair ${i} vs the CLI`));
  model.dispose();
});

test('classifyTokens and fillMask of a pair equal the CLI with --pair; tokens say their text', async () => {
  const ner = await rt.loadModel(files('bert-random-ner'));
  const pair = { text: 'the man saw a bird', pair: 'it was in the city' };
  const tokens = await ner.classifyTokens(pair);
  const [native] = cli('classify-tokens', 'bert-random-ner', [`${pair.text}\t${pair.pair}`], ['--pair']);
  assert.deepEqual(tokens.map((t) => [t.token, t.sequence, t.start, t.end, t.label]),
    native.tokens.map((t) => [t.token, t.sequence, t.start, t.end, t.label]));
  // each token's offsets are in its own text ('it' is not in the random vocabulary: [UNK])
  for (const t of tokens) assert.equal((t.sequence === 0 ? pair.text : pair.pair).slice(t.start, t.end), t.token === '[UNK]' ? 'it' : t.token);
  assert.deepEqual(new Set(tokens.map((t) => t.sequence)), new Set([0, 1]));
  ner.dispose();

  const mlm = await rt.loadModel(files('bert-random'));
  const masked = ['the [MASK] ran .', 'it was [MASK] .'];
  const fills = await mlm.fillMask({ text: masked[0], pair: masked[1] }, { topK: 3 });
  const [want] = cli('fill-mask', 'bert-random', [masked.join('\t')], ['--pair', '--top-k', '3']);
  assert.equal(fills.length, 2, 'a mask in each text');
  assert.deepEqual(fills.map((m) => m.map((p) => p.token)), want.masks.map((m) => m.map((p) => p.token)));
  assert.deepEqual(await mlm.fillMask([masked], { topK: 3 }), [fills]);
  mlm.dispose();
});

test('trainClassifier on pair examples equals `webnlu train-head` on a text<TAB>text_pair<TAB>label file', async () => {
  const words = ['good', 'bad', 'happy', 'sad', 'funny', 'boring'];
  const examples = Array.from({ length: 12 }, (_, i) => ({
    text: `the film was ${words[i % words.length]}`, pair: `a ${words[(i * 5) % words.length]} movie`, label: i % 3 ? 'yes' : 'no',
  }));
  const dir = `${ROOT}target/node-tests`;
  mkdirSync(dir, { recursive: true });
  const tsv = `${dir}/pair-examples.tsv`;
  writeFileSync(tsv, `text\ttext_pair\tlabel\n${examples.map((e) => `${e.text}\t${e.pair}\t${e.label}`).join('\n')}\n`);
  const model = await rt.loadModel(files('bert-random'));
  const { epochs } = await model.trainClassifier(examples, { freeze: 'top:1', epochs: 2, learningRate: 1e-3, batchSize: 4, validation: 0, seed: 3 }).done;
  const want = execFileSync(CLI, ['train-head', '--model', `${RANDOM}/bert-random`, '--device', 'cpu', '--examples', tsv,
    '--freeze', 'top:1', '--epochs', '2', '--learning-rate', '0.001', '--batch-size', '4', '--validation', '0', '--seed', '3'],
  { encoding: 'utf8' }).split('\n').filter(Boolean).map((line) => JSON.parse(line)).filter((line) => line.epoch !== undefined);
  // 1e-5 relative: the same Rust f32 code natively and as wasm, on the same CPU.
  epochs.forEach((got, i) => assert.ok(Math.abs(got.loss - want[i].loss) <= 1e-5 * Math.abs(want[i].loss),
    `epoch ${i + 1}: loss ${got.loss} vs webnlu train-head ${want[i].loss}`));
  // the second text is read: the same examples without it train to another loss
  const alone = await rt.loadModel(files('bert-random'));
  const single = await alone.trainClassifier(examples.map(({ text, label }) => ({ text, label })),
    { freeze: 'top:1', epochs: 1, learningRate: 1e-3, batchSize: 4, validation: 0, seed: 3 }).done;
  assert.notEqual(single.epochs[0].loss, epochs[0].loss);
  model.dispose();
  alone.dispose();
});

test('{ truncate: true } cuts a long pair longest_first, as `--truncate` does', async () => {
  const long = ['the old man walked near the river and liked the birds . '.repeat(4), 'a very funny movie ! '.repeat(12)];
  const classifier = await rt.loadModel(files('bert-random-classifier'));
  const cut = await classifier.classify([long], { truncate: true });
  const [native] = cli('classify', 'bert-random-classifier', tabbed([long]), ['--pair', '--truncate']);
  assertClose(cut[0].scores, native.scores, 1e-6, 'classify, truncated');
  await assert.rejects(classifier.classify([long]), /pair 0 is \d+ tokens long/);
  await assert.rejects(classifier.classify([long], { truncate: 'yes' }), /classify: truncate must be true or false/);
  classifier.dispose();
  const bert = await rt.loadModel(files('bert-random'));
  const nsp = await bert.nextSentence(long[0], long[1], { truncate: true });
  assert.deepEqual(await bert.nextSentence([long], { truncate: true }), [nsp]);
  const [wantNsp] = cli('next-sentence', 'bert-random', tabbed([long]), ['--truncate']);
  assertClose(nsp.scores, wantNsp.scores, 1e-6, 'nextSentence, truncated');
  bert.dispose();
  const ner = await rt.loadModel(files('bert-random-ner'));
  const tokens = await ner.classifyTokens({ text: long[0], pair: long[1] }, { truncate: true });
  const [wantTokens] = cli('classify-tokens', 'bert-random-ner', tabbed([long]), ['--pair', '--truncate']);
  assert.deepEqual(tokens.map((t) => [t.token, t.sequence, t.label]), wantTokens.tokens.map((t) => [t.token, t.sequence, t.label]));
  // longest_first: 61 tokens of room for 56 + 60, both more than half: the shorter text keeps
  // 30, the longer 31
  assert.deepEqual([0, 1].map((s) => tokens.filter((t) => t.sequence === s).length), [30, 31]);
  ner.dispose();
});

test('bad pairs and a model without the next-sentence head are clear errors', async () => {
  const classifier = await rt.loadModel(files('bert-random-classifier'));
  await assert.rejects(classifier.nextSentence('a', 'b'), (e) => e instanceof WebnluError
    && /no next-sentence head/.test(e.message) && /cls\.seq_relationship\.weight/.test(e.message));
  await assert.rejects(classifier.classify([['a', 'b', 'c']]), /texts\[0\] must be a string or a pair .* got an array of 3/);
  await assert.rejects(classifier.classify([{ text: 'a', pair: 7 }]), /texts\[0\]\.pair must be a string/);
  await assert.rejects(classifier.nextSentence(['just one text']), /pairs\[0\] must be a pair/);
  const long = 'the old man walked near the river and liked the birds . '.repeat(4);
  await assert.rejects(classifier.classify([['a', 'b'], [long, long]]), /pair 1 is 115 tokens long \(56 \+ 56 of its two texts and 3 special tokens\), the model reads at most 64/);
  assert.throws(() => classifier.trainClassifier([{ text: 'a', pair: 1, label: 'x' }]), /examples\[0\]\.pair must be a string/);
  assert.equal((await classifier.classify(['still works'])).length, 1);
  classifier.dispose();
  const distil = await rt.loadModel(files('distilbert-random'));
  await assert.rejects(distil.nextSentence('a', 'b'), /DistilBERT was trained without next-sentence prediction/);
  distil.dispose();
});

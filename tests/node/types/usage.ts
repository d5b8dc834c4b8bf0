// Type-checked (tsc --strict --noEmit, tests/node/types.test.mjs) against pkg/index.d.ts:
// the documented API, used the way the README shows it. Never run.
import init, {
  Runtime, Tokenizer, ModelLoadError, DeviceError, DeviceLostError, OutOfMemoryError, clearCache, fetchModelFiles, parseExamples,
} from 'webnlu';
import type { DeviceLostInfo } from 'webnlu';
import type {
  ElmoEpochReport, ElmoLayers, ElmoModel, ElmoTrainingRun, EntityScore, EpochReport, Inspection, LoadProgress, MaskPrediction,
  MaskedLmEpochReport, MemoryUsage, NextSentence, ParsedExample, TokenEpochReport, TokenLabel, TrainingStep, WeightDtype, WordExample,
  WordVectors,
} from 'webnlu';

export async function readme(): Promise<void> {
  const rt = await Runtime.create({ device: 'auto', worker: true });
  const kind: 'gpu' | 'cpu' | 'none' = rt.device.kind;
  const reason: string = rt.device.reason;
  const pool = await Runtime.create({ device: 'cpu', threads: 2 });
  const threads: number = pool.device.threads;
  const f16 = await Runtime.create({ device: 'gpu', f16Arithmetic: true });
  const inF16: boolean = f16.device.f16Arithmetic;
  const onProgress = (p: LoadProgress) => console.log(p.file, p.loaded, p.total ?? '?', p.fromCache);
  const model = await rt.loadModel('sentence-transformers/all-MiniLM-L6-v2', { onProgress });
  const fills: MaskPrediction[][] = await model.fillMask('the cat sat on the [MASK].', { topK: 5 });
  const fillsPerText: MaskPrediction[][][] = await model.fillMask(['a [MASK].', 'b [MASK].']);
  const extraBytes: number = model.extraWorkerBytes;
  const half = await rt.loadModel('sentence-transformers/all-MiniLM-L6-v2', { dtype: 'fp16' });
  const dtype: WeightDtype = half.dtype;
  const weightBytes: number = half.weightBytes;
  const int8: WeightDtype = (await rt.loadModel('sentence-transformers/all-MiniLM-L6-v2', { dtype: 'int8' })).dtype;
  const plain = await rt.loadModel('sentence-transformers/all-MiniLM-L6-v2', { packWeights: false });
  const packedMatrices: number = await model.packedWeightMatrices() + await plain.packedWeightMatrices({ signal: new AbortController().signal });
  const vectors: Float32Array[] = await model.embed(['a', 'b'], { pooling: 'mean', normalize: true });
  const one: Float32Array = await model.embed('a');
  const matrix: Float32Array[] = await model.similarity(['a'], ['b', 'c']);
  const pasted: ParsedExample[] = parseExamples('good,pos\nbad,neg', { format: 'lines' });
  model.trainClassifier(parseExamples('text,label\ngood,pos'));
  const run = model.trainClassifier([{ text: 'good', label: 'pos' }, { text: 'bad', label: 'neg' }],
    { freeze: 'top:2', epochs: 3, learningRate: 1e-3, batchSize: 16, validation: 0.2,
      onProgress: (r: EpochReport) => console.log(r.epoch, r.loss, r.accuracy, r.validationAccuracy) });
  const inProgress: boolean = model.training !== null;
  const gone: boolean = model.disposed || model.tokenizer.disposed;
  run.stop();
  const result = await run.done;
  const tuned = model.trainClassifier([{ text: 'good', label: 1 }], { pooling: 'mean', accumulation: 2, weightDecay: 0,
    warmupRatio: 0.1, maxGradNorm: null, truncate: true });
  const ner: WordExample[] = [{ words: ['Zola', 'lives', 'in', 'Paris'], labels: ['B-PER', 'O', 'O', 'B-LOC'] }];
  const tagging = model.trainTokenClassifier(ner, { freeze: 'all', epochs: 2, maxGradNorm: 1, accumulation: 2,
    onProgress: (r: TokenEpochReport) => console.log(r.loss, r.validationEntities?.overall.f1, r.validationEntities?.perType.PER?.recall) });
  const fromConll = model.trainTokenClassifier('Zola B-PER\nlives O\n\nParis B-LOC\n', { validation: 0 });
  const perLoc: EntityScore | undefined = (await tagging.done).epochs[0].validationEntities?.perType.LOC;
  fromConll.stop();
  const regressor = model.trainRegressor([{ text: 'great', label: 4.5 }], { freeze: 'head', onProgress: (r: EpochReport) => console.log(r.validationMae, r.validationPearson) });
  const multi = model.trainClassifier([{ text: 'a cat and a dog', label: ['cat', 'dog'] }], { task: 'multi_label' });
  const value: number = await model.predict('great');
  const values: number[] = await model.predict(['great', 'bad']);
  const chosen: string[] | undefined = (await model.classify('a cat')).labels;
  console.log(regressor.epochs, multi.epochs, value, values, chosen);
  const adapting = model.trainMaskedLM(['Call me Ishmael.', 'The whale.'], { freeze: 'all', mlmProbability: 0.2,
    onProgress: (r: MaskedLmEpochReport) => console.log(r.loss, r.validationPerplexity) });
  const perplexity: number | null = (await adapting.done).epochs[0].validationPerplexity;
  console.log(perplexity);
  console.log(tuned.epochs.length, perLoc?.support);
  const labels = (await model.classify(['great'])).map((c) => [c.label, c.score, c.scores[0]]);
  const entities: TokenLabel[][] = await model.classifyTokens(['Zola lives in Paris']);
  const first: TokenLabel[] = await model.classifyTokens('Zola lives in Paris');
  const spans = first.map((t) => [t.token, 'Zola lives in Paris'.slice(t.start, t.end), t.label, t.score.toFixed(3)]);
  const files: Record<string, Uint8Array> = await model.save();
  const encoding = await model.tokenizer.encode('hello', { maxLength: 8 });
  const ids: Uint32Array = encoding.ids;
  model.dispose();
  await rt.trim();
  await rt.setMemoryLimit(512 * 1024 * 1024);
  await rt.setMemoryLimit(null);
  const usage: MemoryUsage = await rt.memoryUsage();
  const held: number = usage.gpuBytes + usage.gpuBuffers + usage.cpuPoolBytes + usage.wasmBytes;
  const perWorker: number[] = ((await pool.memoryUsage()).workers ?? []).map((w) => w.wasmBytes);
  console.log(held, perWorker);
  rt.dispose();
  pool.dispose();
  await clearCache();
  const local = await fetchModelFiles({ files: { 'config.json': new Blob(['{}']) } });
  const bytes: Uint8Array | undefined = local.files.get('config.json');
  await init();
  const tokenizer = Tokenizer.fromVocab('[UNK]\n');
  tokenizer.free();
  try { await rt.loadModel('/models/x/'); } catch (error) {
    if (error instanceof ModelLoadError) console.log(error.url, error.status, error.file);
  }
  console.log(kind, reason, threads, fillsPerText, extraBytes, fills, vectors, one, matrix, result.stopped, labels, entities, spans, files, ids, bytes);
}

export async function pairs(): Promise<void> {
  const rt = await Runtime.create({ device: 'cpu' });
  const model = await rt.loadModel('textattack/bert-base-uncased-MRPC');
  const paraphrase = await model.classify({ text: 'He said hi.', pair: 'He greeted us.' });
  const batch = await model.classify([['a', 'b'], { text: 'c', pair: 'd' }, 'a single text', { text: 'e' }]);
  const tokens: TokenLabel[] = await model.classifyTokens({ text: 'Zola', pair: 'Paris' });
  const sequence: 0 | 1 | undefined = tokens[0].sequence;
  const masks: MaskPrediction[][] = await model.fillMask({ text: 'a [MASK] day', pair: 'it [MASK]' });
  const nsp: NextSentence = await model.nextSentence('I went out.', 'It was raining.');
  const nsps: NextSentence[] = await model.nextSentence([['a', 'b'], { text: 'c', pair: 'd' }], { truncate: true });
  const cut = await model.classify([['a long text', 'another']], { truncate: true });
  const cutTokens: TokenLabel[] = await model.classifyTokens({ text: 'a', pair: 'b' }, { truncate: false });
  const cutNsp: NextSentence = await model.nextSentence('a', 'b', { truncate: true });
  const isNext: number = nsp.isNext + nsps[0].scores[1] + nsp.logits[0];
  const run = model.trainClassifier([{ text: 'a', pair: 'b', label: 'yes' }, { text: 'c', pair: 'd', label: 0 }]);
  console.log(paraphrase.label, batch.length, sequence, masks, isNext, (await run.done).epochs, cut, cutTokens, cutNsp);
  model.dispose();
  rt.dispose();
}

export async function elmo(optionsFile: File, weights: ArrayBuffer): Promise<void> {
  const rt = await Runtime.create({ device: 'cpu' });
  const fromUrls: ElmoModel = await rt.loadElmo({ options: '/elmo/options.json', weights: new URL('https://example.org/w.hdf5') },
    { onProgress: (p: LoadProgress) => console.log(p.fileIndex, p.loaded) });
  const local = await rt.loadElmo({ options: optionsFile, weights });
  const parsed = await rt.loadElmo({ options: { lstm: { dim: 64 } }, weights: new Uint8Array(weights) });
  const out: ElmoLayers = await local.embed([['The', 'cat', 'sat'], ['Hi']]);
  const [k, b, t, d]: [number, number, number, number] = out.shape;
  const value: number = out.layers[((k - 1) * b * t) * d];
  const firstWord: Float32Array = out.vector(2, 0, 0);
  const cliShaped: Float32Array[][] = out.sentence(1);
  const width: number = local.outputDim * local.numLayers + out.lengths[0];
  console.log(local.device, value, firstWord, cliShaped, width);
  const continued: ElmoLayers = await local.embed([['and', 'then']], { stateful: true });
  await local.resetState();
  const run: ElmoTrainingRun = local.trainClassifier(
    [{ text: 'a fine film', label: 'pos' }, { words: ['dull'], label: 0 }],
    { training: 'mix', epochs: 2, batchSize: 8, learningRate: 1e-2, seed: 3, validation: 0.25,
      onProgress: (e: ElmoEpochReport) => console.log(e.epoch, e.trainLoss, e.testAccuracy ?? 'no held-out', e.mixWeights[0]) });
  const { epochs, stopped } = await run.done;
  const [first] = await run.classify(['a moving film', ['dull']]);
  console.log(continued.shape, epochs.length, stopped, run.labels?.[0], first.label, first.scores[0]);
  run.dispose();
  fromUrls.dispose();
  parsed.dispose();
  local.dispose();
}

export async function inspection(): Promise<void> {
  const rt = await Runtime.create({ device: 'cpu' });
  const model = await rt.loadModel('sentence-transformers/all-MiniLM-L6-v2');
  const inside: Inspection = await model.inspect('Vou pagar no banco', { attentions: true });
  const [s, t, c]: number[] = inside.hiddenStatesShape;
  const last: Float32Array | undefined = inside.hiddenState(inside.layers[s - 1]);
  const firstLayer: Float32Array | undefined = inside.attention(0);
  const probabilities: Float32Array | null = inside.attentions;
  const starts: number = inside.offsets[2 * (t - 2)] + inside.typeIds[0] + inside.specialTokensMask[0];
  const pair = await model.inspect('a question', { pair: 'an answer', layers: [0, 6] });
  const tokens: string[] = pair.tokens;
  const words: WordVectors = await model.wordVectors('sentei no banco da praça', { layer: 6 });
  const bank = words.words.find((w) => w.word === 'banco');
  const vector: Float32Array | undefined = bank?.vector;
  const [w, width]: [number, number] = words.shape;
  console.log(c, last, firstLayer, probabilities, starts, tokens, vector, w, width, words.vectors.length, words.layer, bank?.start, bank?.end, bank?.pieces);
}

export async function cancellation(): Promise<void> {
  const rt = await Runtime.create({ worker: true });
  const controller = new AbortController();
  const { signal } = controller;
  const model = await rt.loadModel('google-bert/bert-base-uncased', { signal });
  const masks: MaskPrediction[][] = await model.fillMask('a [MASK]', { topK: 3, signal });
  const vectors: Float32Array[] = await model.embed(['a', 'b'], { signal });
  const same: Float32Array[] = await model.similarity(['a', 'b'], { signal });
  const across: Float32Array[] = await model.similarity(['a'], ['b'], { signal });
  const labels = await model.classify('a', { truncate: true, signal });
  const tokens = await model.classifyTokens(['a'], { signal });
  const next = await model.nextSentence('a', 'b', { signal });
  const value: number = await model.predict('a', { signal });
  const inside = await model.inspect('a', { signal });
  const words = await model.wordVectors('a', { signal });
  const files = await model.save({ signal });
  const run = model.trainClassifier([{ text: 'a', label: 'x' }], {
    signal,
    onStep: (step: TrainingStep) => console.log(step.phase, step.epoch, step.done, step.total),
  });
  run.onStep = null;
  controller.abort();
  try {
    await run.done;
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') console.log('aborted');
  }
  model.trainTokenClassifier('a O', { signal, onStep: (step) => console.log(step.done) });
  model.trainMaskedLM(['a'], { signal });
  const elmo = await rt.loadElmo({ options: 'o.json', weights: 'w.hdf5' }, { signal });
  const layers = await elmo.embed([['a']], { stateful: true, signal });
  const elmoRun = elmo.trainClassifier([{ text: 'a', label: 1 }], { signal, onStep: (step: TrainingStep) => console.log(step.epoch, step.done, step.total) });
  elmoRun.onStep = null;
  console.log(masks, vectors, same, across, labels, tokens, next, value, inside, words, files, layers, elmoRun.epochs);
}

async function deviceLossAndMemory(): Promise<void> {
  const rt = await Runtime.create({ device: 'gpu' });
  const lost: DeviceLostInfo = await rt.device.lost;
  const reason: 'destroyed' | 'unknown' = lost.reason;
  const model = await rt.loadModel('bert-base-uncased');
  try {
    await model.embed(['a']);
  } catch (error) {
    if (error instanceof DeviceLostError) {
      const why: 'destroyed' | 'unknown' = error.reason;
      const alsoDevice: DeviceError = error;
      console.log(why, alsoDevice.name);
    } else if (error instanceof OutOfMemoryError) {
      const what: string = error.what;
      const bytes: number = error.bytes;
      console.log(what, bytes);
    }
  }
  console.log(reason, lost.message);
}

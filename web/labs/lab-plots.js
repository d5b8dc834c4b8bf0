// The labs' plots, in plain SVG (styles as attributes, so a PNG export looks the same): a labelled
// heatmap with a colour legend, a labelled scatter plot, and a bar strip. Nothing here knows
// about models.

const SVG = 'http://www.w3.org/2000/svg';
const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, Noto Sans, sans-serif';

/** An SVG element with attributes (and text). */
export function svgElement(name, attributes = {}, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

// A light-to-dark blue scale (readable with dark text on its light end, white on its dark end).
const STOPS = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];

/** The colour of `t` in [0, 1] on the scale. */
export function scaleColor(t) {
  const x = Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), 1) * (STOPS.length - 1);
  const i = Math.min(Math.floor(x), STOPS.length - 2);
  const f = x - i;
  const [r, g, b] = STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c)));
  return `rgb(${r},${g},${b})`;
}

/** Text colour for a cell of scale value `t`. */
function inkOn(t) {
  return t > 0.55 ? '#ffffff' : '#1d2330';
}

/** Shortens a label to `max` characters. */
function clip(label, max) {
  return label.length > max ? `${label.slice(0, max - 1)}…` : label;
}

/**
 * A heatmap of `values` (rows of numbers) with row and column labels, a title, the value in each
 * cell (`format`, when the cells are large enough), and a legend from `min` to `max`. Every
 * cell is a `rect` with `data-row`, `data-col` and `data-value`.
 */
export function heatmap({ values, rowLabels, colLabels, title, min = 0, max = 1, format = (v) => v.toFixed(2), cell = 44, rowTitle = '', colTitle = '', labelChars = 24 }) {
  const rows = values.length;
  const cols = values[0]?.length ?? 0;
  const labelWidth = Math.min(labelChars, Math.max(4, ...rowLabels.map((l) => l.length))) * 7.2 + 16;
  const colLabelHeight = Math.min(labelChars, Math.max(4, ...colLabels.map((l) => l.length))) * 6.4 + 14;
  const top = 30 + colLabelHeight;
  const left = labelWidth + (rowTitle ? 18 : 0);
  const width = Math.max(left + cols * cell + 90, Math.ceil(title.length * 8.6) + 16); // the title fits (14 px bold: about 8.5 px a character)
  const height = top + rows * cell + 24;
  const svg = svgElement('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, 'font-family': FONT });
  svg.append(svgElement('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }));
  svg.append(svgElement('text', { x: 8, y: 18, 'font-size': 14, 'font-weight': 600, fill: '#1d2330' }, title));
  const span = max - min || 1;
  values.forEach((row, r) => {
    row.forEach((value, c) => {
      const t = (value - min) / span;
      const rect = svgElement('rect', {
        x: left + c * cell, y: top + r * cell, width: cell - 1, height: cell - 1, fill: scaleColor(t),
        'data-row': r, 'data-col': c, 'data-value': value,
      });
      rect.append(svgElement('title', {}, `${rowLabels[r]} × ${colLabels[c]}: ${format(value)}`));
      svg.append(rect);
      if (cell >= 30) {
        svg.append(svgElement('text', {
          x: left + c * cell + cell / 2, y: top + r * cell + cell / 2 + 4, 'font-size': Math.min(12, cell / 3.4),
          'text-anchor': 'middle', fill: inkOn(t), 'pointer-events': 'none',
        }, format(value)));
      }
    });
  });
  rowLabels.forEach((label, r) => {
    svg.append(svgElement('text', { x: left - 6, y: top + r * cell + cell / 2 + 4, 'font-size': 12, 'text-anchor': 'end', fill: '#1d2330' }, clip(label, labelChars)));
  });
  colLabels.forEach((label, c) => {
    const x = left + c * cell + cell / 2 + 4;
    svg.append(svgElement('text', { x, y: top - 6, 'font-size': 12, 'text-anchor': 'start', fill: '#1d2330', transform: `rotate(-60 ${x} ${top - 6})` }, clip(label, labelChars)));
  });
  if (rowTitle) {
    const y = top + (rows * cell) / 2;
    svg.append(svgElement('text', { x: 12, y, 'font-size': 12, fill: '#5d6677', 'text-anchor': 'middle', transform: `rotate(-90 12 ${y})` }, rowTitle));
  }
  if (colTitle) svg.append(svgElement('text', { x: left + (cols * cell) / 2, y: height - 6, 'font-size': 12, fill: '#5d6677', 'text-anchor': 'middle' }, colTitle));
  // legend: a vertical bar from min (bottom) to max (top)
  const legendX = left + cols * cell + 18;
  const legendHeight = Math.max(60, Math.min(rows * cell, 160));
  for (let k = 0; k < 20; k++) {
    svg.append(svgElement('rect', { x: legendX, y: top + legendHeight - ((k + 1) * legendHeight) / 20, width: 14, height: legendHeight / 20 + 0.5, fill: scaleColor((k + 0.5) / 20) }));
  }
  svg.append(svgElement('text', { x: legendX + 18, y: top + 10, 'font-size': 11, fill: '#1d2330' }, format(max)));
  svg.append(svgElement('text', { x: legendX + 18, y: top + legendHeight, 'font-size': 11, fill: '#1d2330' }, format(min)));
  return svg;
}

// Colours of groups (senses) in scatter plots.
export const GROUP_COLORS = ['#d1495b', '#2f5fd0', '#2a9d4b', '#e09f1f', '#7b4fc9', '#00a1b0'];

/**
 * A scatter plot of `points` ([{ x, y, label, group }]) with axis titles, a legend of the
 * groups (`groups`: names in colour order), and each point's label beside it.
 */
export function scatter({ points, groups, title, xTitle, yTitle, width = 520, height = 380 }) {
  const margin = { left: 56, right: 150, top: 34, bottom: 46 };
  const svg = svgElement('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, 'font-family': FONT });
  svg.append(svgElement('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }));
  svg.append(svgElement('text', { x: 8, y: 18, 'font-size': 14, 'font-weight': 600, fill: '#1d2330' }, title));
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const pad = (lo, hi) => { const d = (hi - lo) || 1; return [lo - 0.12 * d, hi + 0.12 * d]; };
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const sx = (x) => margin.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y) => margin.top + plotH - ((y - y0) / (y1 - y0)) * plotH;
  svg.append(svgElement('rect', { x: margin.left, y: margin.top, width: plotW, height: plotH, fill: 'none', stroke: '#d9dee7' }));
  if (x0 < 0 && x1 > 0) svg.append(svgElement('line', { x1: sx(0), x2: sx(0), y1: margin.top, y2: margin.top + plotH, stroke: '#e6e8ee' }));
  if (y0 < 0 && y1 > 0) svg.append(svgElement('line', { x1: margin.left, x2: margin.left + plotW, y1: sy(0), y2: sy(0), stroke: '#e6e8ee' }));
  svg.append(svgElement('text', { x: margin.left + plotW / 2, y: height - 10, 'font-size': 12, 'text-anchor': 'middle', fill: '#5d6677' }, xTitle));
  const yMid = margin.top + plotH / 2;
  svg.append(svgElement('text', { x: 16, y: yMid, 'font-size': 12, 'text-anchor': 'middle', fill: '#5d6677', transform: `rotate(-90 16 ${yMid})` }, yTitle));
  points.forEach((p, i) => {
    const circle = svgElement('circle', { cx: sx(p.x), cy: sy(p.y), r: 6, fill: GROUP_COLORS[p.group % GROUP_COLORS.length], stroke: '#ffffff', 'stroke-width': 1.5, 'data-index': i });
    circle.append(svgElement('title', {}, p.label));
    svg.append(circle);
    svg.append(svgElement('text', { x: sx(p.x) + 8, y: sy(p.y) + 4, 'font-size': 11, fill: '#1d2330' }, String(i + 1)));
  });
  groups.forEach((name, g) => {
    const y = margin.top + 10 + g * 20;
    svg.append(svgElement('circle', { cx: width - margin.right + 16, cy: y, r: 6, fill: GROUP_COLORS[g % GROUP_COLORS.length] }));
    svg.append(svgElement('text', { x: width - margin.right + 28, y: y + 4, 'font-size': 12, fill: '#1d2330' }, clip(name, 18)));
  });
  return svg;
}

/**
 * Horizontal bars: `items` ([{ label, value }], value in 0..1, shown as a percentage), best
 * first, with a title. Each bar is a `rect` with `data-label` and `data-value`.
 */
export function barChart({ items, title, width = 460 }) {
  const rowHeight = 24;
  const left = 130;
  const height = 34 + items.length * rowHeight + 10;
  const svg = svgElement('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, 'font-family': FONT });
  svg.append(svgElement('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }));
  svg.append(svgElement('text', { x: 8, y: 18, 'font-size': 14, 'font-weight': 600, fill: '#1d2330' }, title));
  const best = Math.max(...items.map((item) => item.value), 1e-9);
  const barWidth = width - left - 70;
  items.forEach(({ label, value }, i) => {
    const y = 32 + i * rowHeight;
    svg.append(svgElement('text', { x: left - 8, y: y + 15, 'font-size': 13, 'text-anchor': 'end', fill: '#1d2330' }, clip(label, 16)));
    svg.append(svgElement('rect', { x: left, y: y + 3, width: Math.max(1, (barWidth * value) / best), height: rowHeight - 7, rx: 3, fill: '#2f5fd0', 'data-label': label, 'data-value': value }));
    svg.append(svgElement('text', { x: left + Math.max(1, (barWidth * value) / best) + 6, y: y + 15, 'font-size': 12, fill: '#1d2330' }, `${(100 * value).toFixed(1)}%`));
  });
  return svg;
}

/**
 * Two bars per group (`groups`: [{ label, values: [a, b] }], values in 0..1), a legend for the
 * two series (`series`), a title and a y axis in percent. Each bar has `data-group`, `data-series`
 * and `data-value`.
 */
export function pairedBars({ groups, series, title, yTitle, width = 640, height = 300 }) {
  const margin = { left: 60, right: 16, top: 48, bottom: 56 };
  const svg = svgElement('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, 'font-family': FONT });
  svg.append(svgElement('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }));
  svg.append(svgElement('text', { x: 8, y: 18, 'font-size': 14, 'font-weight': 600, fill: '#1d2330' }, title));
  const colors = ['#2f5fd0', '#d1495b'];
  series.forEach((name, s) => {
    svg.append(svgElement('rect', { x: margin.left + s * 170, y: 28, width: 12, height: 12, fill: colors[s] }));
    svg.append(svgElement('text', { x: margin.left + s * 170 + 18, y: 38, 'font-size': 12, fill: '#1d2330' }, name));
  });
  const top = Math.max(1e-6, ...groups.flatMap((g) => g.values));
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const y = (v) => margin.top + plotH - (v / top) * plotH;
  for (const k of [0, 0.5, 1]) {
    svg.append(svgElement('line', { x1: margin.left, x2: margin.left + plotW, y1: y(k * top), y2: y(k * top), stroke: '#e6e8ee' }));
    svg.append(svgElement('text', { x: margin.left - 6, y: y(k * top) + 4, 'font-size': 11, 'text-anchor': 'end', fill: '#1d2330' }, `${(100 * k * top).toFixed(1)}%`));
  }
  const yMid = margin.top + plotH / 2;
  svg.append(svgElement('text', { x: 14, y: yMid, 'font-size': 12, 'text-anchor': 'middle', fill: '#5d6677', transform: `rotate(-90 14 ${yMid})` }, yTitle));
  const slot = plotW / Math.max(groups.length, 1);
  const bar = Math.min(28, slot / 3);
  groups.forEach((group, g) => {
    group.values.forEach((value, s) => {
      const x = margin.left + g * slot + slot / 2 - bar + s * bar;
      svg.append(svgElement('rect', { x, y: y(value), width: bar - 2, height: margin.top + plotH - y(value), fill: colors[s], 'data-group': g, 'data-series': s, 'data-value': value }));
    });
    svg.append(svgElement('text', { x: margin.left + g * slot + slot / 2, y: height - margin.bottom + 18, 'font-size': 12, 'text-anchor': 'middle', fill: '#1d2330' }, clip(group.label, Math.max(6, Math.floor(slot / 7)))));
  });
  return svg;
}

/**
 * Lines over epochs: `series` ([{ name, values }], values[e] for epoch e + 1; null for none) with a
 * legend, a title, axis titles, and a y axis from `min` (default: 0, or the lowest value when it
 * is negative) to the largest value. Each point is a `circle` with `data-series` (the name),
 * `data-epoch` and `data-value`.
 */
export function lineChart({ series, title, xTitle = 'epoch', yTitle, epochs, format = (v) => v.toFixed(2), width = 460, height = 300, min }) {
  const margin = { left: 64, right: 16, top: 52, bottom: 46 };
  const svg = svgElement('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, 'font-family': FONT });
  svg.append(svgElement('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }));
  svg.append(svgElement('text', { x: 8, y: 18, 'font-size': 14, 'font-weight': 600, fill: '#1d2330' }, title));
  series.forEach(({ name }, s) => {
    svg.append(svgElement('rect', { x: margin.left + s * 120, y: 28, width: 12, height: 12, fill: GROUP_COLORS[s % GROUP_COLORS.length] }));
    svg.append(svgElement('text', { x: margin.left + s * 120 + 18, y: 38, 'font-size': 12, fill: '#1d2330' }, clip(name, 14)));
  });
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && Number.isFinite(v));
  const lo = min ?? Math.min(0, ...values);
  const hi = Math.max(lo + 1e-6, ...values);
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const x = (epoch) => margin.left + (epochs <= 1 ? plotW / 2 : ((epoch - 1) / (epochs - 1)) * plotW);
  const y = (v) => margin.top + plotH - ((v - lo) / (hi - lo)) * plotH;
  for (const k of [0, 0.5, 1]) {
    const v = lo + k * (hi - lo);
    svg.append(svgElement('line', { x1: margin.left, x2: margin.left + plotW, y1: y(v), y2: y(v), stroke: '#e6e8ee' }));
    svg.append(svgElement('text', { x: margin.left - 6, y: y(v) + 4, 'font-size': 11, 'text-anchor': 'end', fill: '#1d2330' }, format(v)));
  }
  for (let epoch = 1; epoch <= epochs; epoch++) {
    svg.append(svgElement('text', { x: x(epoch), y: margin.top + plotH + 16, 'font-size': 11, 'text-anchor': 'middle', fill: '#1d2330' }, String(epoch)));
  }
  svg.append(svgElement('text', { x: margin.left + plotW / 2, y: height - 8, 'font-size': 12, 'text-anchor': 'middle', fill: '#5d6677' }, xTitle));
  const yMid = margin.top + plotH / 2;
  svg.append(svgElement('text', { x: 14, y: yMid, 'font-size': 12, 'text-anchor': 'middle', fill: '#5d6677', transform: `rotate(-90 14 ${yMid})` }, yTitle));
  series.forEach(({ name, values: points }, s) => {
    const color = GROUP_COLORS[s % GROUP_COLORS.length];
    const drawn = points.map((v, e) => [e + 1, v]).filter(([, v]) => v !== null && Number.isFinite(v));
    if (drawn.length > 1) {
      svg.append(svgElement('polyline', { points: drawn.map(([e, v]) => `${x(e)},${y(v)}`).join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }));
    }
    for (const [e, v] of drawn) {
      const dot = svgElement('circle', { cx: x(e), cy: y(v), r: 4, fill: color, 'data-series': name, 'data-epoch': e, 'data-value': v });
      dot.append(svgElement('title', {}, `${name}, epoch ${e}: ${format(v)}`));
      svg.append(dot);
    }
  });
  return svg;
}

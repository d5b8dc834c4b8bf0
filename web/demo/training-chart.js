// The live chart of a fine-tuning run, drawn on a <canvas>: loss per epoch (left axis, from 0
// to the largest loss seen) and training / held-out accuracy per epoch (right axis, 0..1).

const COLORS = { loss: '#c0392b', accuracy: '#2f5fd0', validation: '#1e8449', grid: '#d9dee7', ink: '#5d6677' };

/** Draws `epochs` ([{ epoch, loss, accuracy, validationAccuracy }]) for a run of `total` epochs. */
export function drawTrainingChart(canvas, epochs, total) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const pad = { left: 48, right: 48, top: 24, bottom: 32 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const maxLoss = Math.max(1e-6, ...epochs.map((e) => e.loss));
  const x = (epoch) => pad.left + (total <= 1 ? plotW / 2 : ((epoch - 1) / (total - 1)) * plotW);
  const yLoss = (loss) => pad.top + plotH * (1 - loss / maxLoss);
  const yAcc = (accuracy) => pad.top + plotH * (1 - accuracy);

  g.font = '12px system-ui, sans-serif';
  g.strokeStyle = COLORS.grid;
  g.fillStyle = COLORS.ink;
  g.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const y = pad.top + (plotH * k) / 4;
    g.beginPath(); g.moveTo(pad.left, y); g.lineTo(pad.left + plotW, y); g.stroke();
    g.textAlign = 'right';
    g.fillText((maxLoss * (1 - k / 4)).toFixed(2), pad.left - 6, y + 4);
    g.textAlign = 'left';
    g.fillText(`${100 - 25 * k}%`, pad.left + plotW + 6, y + 4);
  }
  g.textAlign = 'center';
  for (let epoch = 1; epoch <= total; epoch++) g.fillText(String(epoch), x(epoch), height - pad.bottom + 16);
  g.fillText('epoch', pad.left + plotW / 2, height - 4);

  const series = [
    ['loss', (e) => e.loss, yLoss],
    ['accuracy', (e) => e.accuracy, yAcc],
    ['validation', (e) => e.validationAccuracy, yAcc],
  ];
  for (const [name, value, y] of series) {
    const points = epochs.filter((e) => Number.isFinite(value(e)));
    if (points.length === 0) continue;
    g.strokeStyle = g.fillStyle = COLORS[name];
    g.lineWidth = 2;
    g.beginPath();
    points.forEach((e, i) => (i === 0 ? g.moveTo(x(e.epoch), y(value(e))) : g.lineTo(x(e.epoch), y(value(e)))));
    g.stroke();
    for (const e of points) { g.beginPath(); g.arc(x(e.epoch), y(value(e)), 3, 0, 2 * Math.PI); g.fill(); }
  }
  // Legend.
  g.textAlign = 'left';
  let at = pad.left;
  for (const [name, label] of [['loss', 'loss (left)'], ['accuracy', 'train accuracy'], ['validation', 'held-out accuracy']]) {
    g.fillStyle = COLORS[name];
    g.fillRect(at, 6, 12, 12);
    g.fillStyle = COLORS.ink;
    g.fillText(label, at + 16, 16);
    at += g.measureText(label).width + 36;
  }
}

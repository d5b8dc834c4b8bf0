// The similarity view: sentences (one per line) -> a heatmap of their cosine similarities,
// and a query -> the sentences ranked by similarity to it. Preloaded with the Portuguese
// "banco": a bank, a bench, and "eu banco" (I'll pay).

const $ = (id) => document.getElementById(id);

function sentences() {
  return $('sim-sentences').value.split('\n').map((line) => line.trim()).filter((line) => line !== '');
}

/** A color from white (<= 0) to deep blue (1) for a cosine similarity. */
function heat(value) {
  const t = Math.max(0, Math.min(1, value));
  const mix = (from, to) => Math.round(from + (to - from) * t);
  return `rgb(${mix(255, 33)}, ${mix(255, 84)}, ${mix(255, 180)})`;
}

function drawHeatmap(texts, rows) {
  const table = document.createElement('table');
  const head = table.createTHead().insertRow();
  head.append(document.createElement('th'));
  texts.forEach((_, j) => {
    const th = document.createElement('th');
    th.textContent = String(j + 1);
    th.title = texts[j];
    head.append(th);
  });
  const body = table.createTBody();
  rows.forEach((row, i) => {
    const tr = body.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = `${i + 1}. ${texts[i]}`;
    tr.append(th);
    row.forEach((value, j) => {
      const cell = tr.insertCell();
      cell.dataset.value = String(value);
      cell.textContent = value.toFixed(2);
      cell.style.background = heat(value);
      cell.style.color = value > 0.6 ? '#fff' : 'inherit';
      cell.title = `${texts[i]}\n${texts[j]}\ncosine ${value.toFixed(4)}`;
    });
  });
  $('sim-heatmap').replaceChildren(table);
}

export function setupSimilarity({ picker, errorBox, reportResult }) {
  const showError = errorBox('sim-error');
  const models = picker('sim', 'all-minilm-l6-v2');

  async function compare() {
    showError(null);
    $('sim-run').disabled = true;
    try {
      const texts = sentences();
      if (texts.length === 0) throw new Error('write at least one sentence (one per line)');
      const model = await models.model();
      const started = performance.now();
      const rows = await model.similarity(texts);
      const ms = performance.now() - started;
      drawHeatmap(texts, rows.map((row) => Array.from(row)));
      $('sim-timing').textContent = `${texts.length} sentences in ${ms.toFixed(0)} ms on ${model.runtime.device.kind.toUpperCase()}`;
      document.body.dataset.similarityDone = String(Number(document.body.dataset.similarityDone ?? 0) + 1);
      reportResult('similarity');
    } catch (error) {
      showError(error);
    } finally {
      $('sim-run').disabled = false;
    }
  }

  async function search() {
    showError(null);
    try {
      const texts = sentences();
      const query = $('sim-query').value.trim();
      if (query === '' || texts.length === 0) throw new Error('write a query and at least one sentence');
      const model = await models.model();
      const [row] = await model.similarity([query], texts);
      const ranked = texts.map((text, i) => ({ text, score: row[i] })).sort((a, b) => b.score - a.score);
      $('sim-ranked').replaceChildren(...ranked.map(({ text, score }) => {
        const item = document.createElement('li');
        item.dataset.score = String(score);
        const value = document.createElement('span');
        value.className = 'score';
        value.textContent = score.toFixed(3);
        item.append(value, ` ${text}`);
        return item;
      }));
      document.body.dataset.searchDone = String(Number(document.body.dataset.searchDone ?? 0) + 1);
      reportResult('search');
    } catch (error) {
      showError(error);
    }
  }

  $('sim-run').addEventListener('click', compare);
  $('sim-search').addEventListener('click', search);
  $('sim-query').addEventListener('keydown', (event) => { if (event.key === 'Enter') search(); });
}

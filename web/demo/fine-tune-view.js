// The fine-tuning view: examples (movie-review sentences or the visitor's own), 20% of them
// held out by the engine; a freezing policy; a training run with a live chart and table per
// epoch (and a progress bar while the first epoch reads the examples through the model); the
// held-out accuracy (on sentences it never trained on) after each epoch; then
// classify a typed sentence, and download the trained model.

import { drawTrainingChart } from './training-chart.js';
import { download } from './download.js';
import init, { parseExamples } from 'webnlu';
import { movieReviews } from './training-examples.js';

const $ = (id) => document.getElementById(id);
const HELD_OUT = 0.2;

function percent(value) {
  return Number.isFinite(value) ? `${(100 * value).toFixed(1)}%` : '–';
}

export function setupFineTune({ picker, errorBox, reportResult }) {
  const showError = errorBox('ft-error');
  const models = picker('ft', 'all-minilm-l6-v2');
  let run = null;
  let stopping = false; // stop() was clicked: the status says so until the run ends
  let trained = null; // the model whose classifier was trained

  async function examples() {
    const source = document.querySelector('input[name=ft-data]:checked').value;
    if (source === 'reviews') return movieReviews(Number($('ft-count').value));
    const text = $('ft-paste').value;
    if (text.trim() === '') throw new Error('paste some examples (text,label per line) or open a CSV file');
    await init();
    // a CSV with text and label columns, else text,label or text<TAB>label lines (as the CLI reads them)
    return parseExamples(text);
  }

  function setTraining(on) {
    $('ft-train').disabled = on;
    $('ft-stop').disabled = !on;
    for (const id of ['ft-try', 'ft-try-run', 'ft-download']) $(id).disabled = on || trained === null;
  }

  async function train() {
    showError(null);
    $('ft-heldout').textContent = '';
    $('ft-try-result').textContent = '';
    setTraining(true);
    try {
      const all = await examples();
      const labels = [...new Set(all.map((example) => example.label))];
      if (labels.length < 2) throw new Error(`the examples need at least two labels, found ${labels.length}: ${labels.join(', ')}`);
      $('ft-data-status').textContent = `${all.length} examples (${100 * HELD_OUT}% held out to measure accuracy); labels: ${labels.join(', ')}`;
      const model = await models.model();
      const epochs = Number($('ft-epochs').value);
      const learningRate = Number($('ft-lr').value);
      if (!Number.isFinite(learningRate) || learningRate <= 0) throw new Error(`the learning rate must be a positive number, got ${$('ft-lr').value}`);
      const rows = $('ft-epochs-table').tBodies[0];
      rows.replaceChildren();
      drawTrainingChart($('ft-chart'), [], epochs);
      const device = model.runtime.device.kind.toUpperCase();
      $('ft-status').textContent = `training on ${device}: reading the examples…`;
      run = model.trainClassifier(all, {
        freeze: $('ft-freeze').value, epochs, learningRate, validation: HELD_OUT, seed: 7,
        // within an epoch: head-only, the first reads every example through the model once (in
        // chunks); then each epoch's optimizer steps
        onStep: (step) => {
          const bar = $('ft-progress');
          bar.hidden = false;
          bar.max = step.total;
          bar.value = step.done;
          if (!stopping) {
            $('ft-status').textContent = step.phase === 'encoding'
              ? `training on ${device}: reading the examples (${step.done} of ${step.total})…`
              : `training on ${device}: epoch ${step.epoch} of ${epochs}, step ${step.done} of ${step.total}…`;
          }
          if (step.phase === 'encoding') document.body.dataset.examplesRead = String(step.done);
        },
        onProgress: (report) => {
          $('ft-progress').hidden = true;
          drawTrainingChart($('ft-chart'), run.epochs, epochs);
          const row = rows.insertRow();
          for (const value of [report.epoch, report.loss.toFixed(4), percent(report.accuracy), percent(report.validationAccuracy), report.seconds.toFixed(2)]) {
            row.insertCell().textContent = String(value);
          }
          $('ft-status').textContent = `epoch ${report.epoch} of ${epochs} done (${report.seconds.toFixed(2)} s)`;
          document.body.dataset.epochsDone = String(report.epoch);
        },
      });
      const result = await run.done;
      if (result.epochs.length === 0) { // stopped within the first epoch: nothing to report
        $('ft-status').textContent = 'stopped before the end of the first epoch';
        return;
      }
      trained = model;
      const accuracy = result.epochs.at(-1)?.validationAccuracy;
      const held = Math.round(HELD_OUT * all.length);
      const [first, ...later] = result.epochs.map((e) => e.seconds);
      const laterMean = later.length > 0 ? later.reduce((a, b) => a + b, 0) / later.length : undefined;
      $('ft-heldout').textContent = `Held-out accuracy: ${percent(accuracy)} (on about ${held} sentences it never trained on; ` +
        `chance is about ${percent(1 / labels.length)}). ${result.stopped ? 'Stopped early. ' : ''}` +
        `On ${model.runtime.device.kind.toUpperCase()}: epoch 1 ${first.toFixed(1)} s (it reads every sentence through the model once)` +
        `${laterMean === undefined ? '' : `, later epochs ${laterMean.toFixed(2)} s each`}.`;
      $('ft-heldout').dataset.accuracy = String(accuracy);
      $('ft-status').textContent = `done: ${result.epochs.length} epochs in ${result.seconds.toFixed(1)} s`;
      document.body.dataset.trainingDone = 'true';
      reportResult('fine-tuning');
    } catch (error) {
      $('ft-status').textContent = '';
      showError(error);
    } finally {
      run = null;
      stopping = false;
      $('ft-progress').hidden = true;
      setTraining(false);
    }
  }

  async function tryIt() {
    showError(null);
    try {
      const [prediction] = await trained.classify([$('ft-try').value]);
      $('ft-try-result').textContent = `${prediction.label} (${percent(prediction.score)})`;
      $('ft-try-result').dataset.label = String(prediction.label);
    } catch (error) {
      showError(error);
    }
  }

  async function save() {
    showError(null);
    try {
      const files = await trained.save();
      for (const [name, bytes] of Object.entries(files)) download(name, bytes);
    } catch (error) {
      showError(error);
    }
  }

  $('ft-train').addEventListener('click', train);
  $('ft-stop').addEventListener('click', () => {
    run?.stop();
    stopping = true;
    $('ft-status').textContent = $('ft-progress').hidden ? 'stopping after this epoch…' : 'stopping after these steps…';
  });
  $('ft-try-run').addEventListener('click', tryIt);
  $('ft-try').addEventListener('keydown', (event) => { if (event.key === 'Enter') tryIt(); });
  $('ft-download').addEventListener('click', save);
  $('ft-file').addEventListener('change', async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    $('ft-paste').value = await file.text();
    document.querySelector('input[name=ft-data][value=own]').checked = true;
    $('ft-data-status').textContent = `loaded ${file.name}`;
  });
  drawTrainingChart($('ft-chart'), [], Number($('ft-epochs').value));
}

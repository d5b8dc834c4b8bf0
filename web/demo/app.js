// The demo page's frame: the tabs (one view each, chosen by the URL's #hash), the page's one
// webnlu Runtime (in a Web Worker, so the page never freezes), the device line, the
// "page load -> first result" timing, and the model-based views (fill-mask, fine-tune,
// similarity). The tokenizer view runs on its own (tokenizer-view.js).
// URL options, for trying devices: ?device=auto|gpu|cpu (default auto), ?worker=0 (page thread).

import { Runtime } from 'webnlu';
import { ModelPicker, localModels } from './model-picker.js';
import { offerCpuOnDeviceLoss } from './device-lost.js';
import { setupFillMask } from './fill-mask-view.js';
import { setupFineTune } from './fine-tune-view.js';
import { setupSimilarity } from './similarity-view.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

function showView(name) {
  const views = [...document.querySelectorAll('.view')];
  const known = views.some((view) => view.dataset.view === name);
  const chosen = known ? name : 'tokenizer';
  for (const view of views) view.hidden = view.dataset.view !== chosen;
  for (const tab of document.querySelectorAll('.tabs [role=tab]')) {
    tab.setAttribute('aria-selected', String(tab.dataset.view === chosen));
  }
  document.body.dataset.view = chosen;
}

/** An error box: `show(error)` puts the message in, `show(null)` hides it. */
export function errorBox(id) {
  const box = $(id);
  return (error) => {
    box.hidden = error === null;
    box.textContent = error === null ? '' : `${error.name && error.name !== 'Error' ? `${error.name}: ` : ''}${error.message ?? error}`;
  };
}

let firstResultShown = false;
/** Records a result's time; the first one also gives "page load -> first result". */
export function reportResult(what) {
  if (firstResultShown) return;
  firstResultShown = true;
  const seconds = performance.now() / 1000;
  $('timing-status').textContent = `page load → first result (${what}): ${seconds.toFixed(2)} s`;
  document.body.dataset.firstResultSeconds = seconds.toFixed(3);
}

function describeDevice(runtime) {
  const { kind, adapter, reason } = runtime.device;
  const { threads } = runtime.device;
  const where = threads > 1 ? `in ${threads} Web Workers` : runtime.worker ? 'in a Web Worker' : 'on the page thread';
  const name = kind === 'gpu' ? `GPU (WebGPU: ${adapter})` : kind === 'cpu' ? 'CPU (WebAssembly)' : 'none';
  return `Device: ${name}, ${where}${reason ? ` — ${reason}` : ''}`;
}

async function main() {
  const tabFromHash = () => showView(location.hash.slice(1));
  window.addEventListener('hashchange', tabFromHash);
  tabFromHash();

  const device = params.get('device') ?? 'auto';
  const worker = params.get('worker') !== '0';
  // ?threads=N: the CPU path's workers (default: the package's, up to 4; 1 with ?worker=0)
  const threads = params.has('threads') ? Number(params.get('threads')) : undefined;
  const options = { device, worker, threads, hubUrl: params.get('hub') ?? undefined };
  const runtime = Runtime.create(options);
  const pickers = [];
  runtime.then(
    (rt) => {
      $('device-status').textContent = describeDevice(rt);
      document.body.dataset.device = rt.device.kind;
      offerCpuOnDeviceLoss(rt, {
        status: $('device-status'), dataset: document.body.dataset, options, describe: describeDevice,
        useRuntime: (cpu) => Promise.all(pickers.map((picker) => picker.useRuntime(cpu))),
      });
    },
    (error) => {
      $('device-status').textContent = `Device: could not start (${error.name}: ${error.message}). The tokenizer still works.`;
      document.body.dataset.device = 'failed';
    });
  runtime.catch(() => {}); // each view reports it again when used

  const models = await localModels();
  const picker = (prefix, defaultLocal, onChange) => {
    const made = new ModelPicker(
      document.querySelector(`.model-picker[data-for=${prefix}]`), { prefix, defaultLocal, runtime, localModels: models, onChange });
    pickers.push(made);
    return made;
  };
  const context = { runtime, picker, errorBox, reportResult };
  setupFillMask(context);
  setupFineTune(context);
  setupSimilarity(context);
  document.body.dataset.appReady = 'true';
}

main().catch((error) => {
  $('device-status').textContent = `The page failed to start: ${error.message}`;
});

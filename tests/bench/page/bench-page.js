// The page of tests/bench/browser-bench.mjs: webnlu (the package mounted at /bench-pkg/) and
// transformers.js (its bundled ESM build at /bench-tjs/, ONNX Runtime Web's wasm files at
// /bench-ort/) embed the same sentences on the CPU, one library after the other inside each
// repetition so that a busy machine slows both alike. Everything runs on the page thread.
// window.runBench(options) resolves to plain numbers (ms) and the agreement of the embeddings.

import { SENTENCES } from './sentences.mjs';

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

/** Rows of a transformers.js Tensor of shape [n, d] as Float32Arrays. */
function tensorRows(tensor) {
  const [n, d] = tensor.dims;
  return Array.from({ length: n }, (_, i) => tensor.data.slice(i * d, (i + 1) * d));
}

async function loadTransformersJs(options) {
  const imported = performance.now();
  const transformers = await import('/bench-tjs/transformers.js');
  const importMs = performance.now() - imported;
  const { env, pipeline } = transformers;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = '/bench-onnx/';
  env.useBrowserCache = false;
  env.backends.onnx.wasm.wasmPaths = '/bench-ort/';
  if (options.ortThreads) env.backends.onnx.wasm.numThreads = options.ortThreads;
  const started = performance.now();
  const extractor = await pipeline('feature-extraction', options.onnxModel, { dtype: 'fp32', device: 'wasm' });
  const loadMs = performance.now() - started;
  const embed = async (texts) => tensorRows(await extractor(texts, { pooling: 'mean', normalize: true }));
  return {
    embed, importMs, loadMs, version: transformers.env.version,
    ortThreads: env.backends.onnx.wasm.numThreads,
    ortVersion: env.backends.onnx.versions?.web ?? null,
  };
}

async function loadWebnlu(options) {
  const imported = performance.now();
  const webnlu = await import('/bench-pkg/index.js');
  const importMs = performance.now() - imported;
  const started = performance.now();
  // A pool of workers needs worker mode; one thread runs on the page, as transformers.js does.
  const runtime = await webnlu.Runtime.create(options.threads > 1
    ? { device: 'cpu', worker: true, threads: options.threads }
    : { device: 'cpu', ...(options.threads === 1 ? { threads: 1 } : {}) });
  const names = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
  const fetched = await Promise.all(names.map(async (name) => {
    const response = await fetch(`/bench-model/${name}`);
    return response.ok ? [name, new Uint8Array(await response.arrayBuffer())] : null;
  }));
  const files = Object.fromEntries(fetched.filter((entry) => entry !== null));
  const model = await runtime.loadModel({ files });
  const loadMs = performance.now() - started;
  const embed = (texts) => model.embed(texts, { pooling: 'mean', normalize: true });
  return { embed, model, importMs, loadMs, version: runtime.version, wasmBuild: runtime.wasmBuild, device: runtime.device, worker: runtime.worker };
}

/**
 * options: { onnxModel, threads, ortThreads, repeat, warmup }. Loads both (load times), checks
 * that they agree, then times one batch of 20 and 20 single calls, `repeat` times each after
 * `warmup` untimed rounds; medians in ms.
 */
window.runBench = async (options) => {
  const repeat = options.repeat ?? 5;
  const warmup = options.warmup ?? 1;
  const tjs = await loadTransformersJs(options);
  const wn = await loadWebnlu(options);
  const libs = { webnlu: wn, transformersjs: tjs };

  const singles = async (lib) => {
    const rows = [];
    for (const text of SENTENCES) rows.push(...(await lib.embed([text])));
    return rows;
  };
  const outputs = {};
  for (const [name, lib] of Object.entries(libs)) {
    outputs[name] = { batch: await lib.embed(SENTENCES), singles: await singles(lib) };
  }
  const agreement = {};
  for (const kind of ['batch', 'singles']) {
    const cosines = SENTENCES.map((_, i) => cosine(outputs.webnlu[kind][i], outputs.transformersjs[kind][i]));
    agreement[kind] = { min_cosine: Math.min(...cosines), worst_sentence: cosines.indexOf(Math.min(...cosines)) };
  }
  const selfCosines = SENTENCES.map((_, i) => cosine(outputs.webnlu.batch[i], outputs.webnlu.singles[i]));
  agreement.webnlu_batch_vs_single_min_cosine = Math.min(...selfCosines);

  for (let w = 1; w < warmup; w++) {
    for (const lib of Object.values(libs)) { await lib.embed(SENTENCES); await singles(lib); }
  }
  const times = { webnlu: { batch: [], singles: [] }, transformersjs: { batch: [], singles: [] } };
  for (let r = 0; r < repeat; r++) {
    for (const [name, lib] of Object.entries(libs)) {
      let t = performance.now();
      await lib.embed(SENTENCES);
      times[name].batch.push(performance.now() - t);
      t = performance.now();
      await singles(lib);
      times[name].singles.push(performance.now() - t);
    }
  }
  const summary = (name) => ({
    load_ms: libs[name].loadMs,
    import_ms: libs[name].importMs,
    batch20_ms: median(times[name].batch),
    singles20_ms: median(times[name].singles),
    batch20_runs_ms: times[name].batch,
    singles20_runs_ms: times[name].singles,
  });
  return {
    crossOriginIsolated: self.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
    userAgent: navigator.userAgent,
    sentences: SENTENCES.length,
    words: SENTENCES.map((s) => s.split(/\s+/).length),
    repeat,
    warmup,
    webnlu: { ...summary('webnlu'), version: wn.version, wasm_build: wn.wasmBuild, device: wn.device, worker: wn.worker, threads_requested: options.threads ?? null },
    transformersjs: { ...summary('transformersjs'), version: tjs.version, ort_web_version: tjs.ortVersion, ort_threads: tjs.ortThreads },
    agreement,
  };
};

// The demo's fine-tuning (web/demo/fine-tune-view.js): its sample of `count` movie-review
// sentences, head only, 20% held out, seed 7; webnlu alone (transformers.js cannot train).
window.runTrainBench = async (options) => {
  const { movieReviews } = await import('/demo/training-examples.js');
  const examples = await movieReviews(options.count);
  const wn = await loadWebnlu(options);
  const run = wn.model.trainClassifier(examples, {
    freeze: 'head', epochs: options.epochs, learningRate: 0.01, validation: 0.2, seed: 7,
  });
  const result = await run.done;
  return {
    examples: examples.length,
    threads: wn.device.threads ?? 1,
    wasm_build: wn.wasmBuild,
    epoch_seconds: result.epochs.map((e) => e.seconds),
    validation_accuracy: result.epochs.map((e) => e.validationAccuracy),
  };
};

document.body.dataset.ready = 'true';

// The page of tests/bench/browser-bench.mjs: webnlu (the package mounted at /bench-pkg/) and
// transformers.js (its bundled ESM build at /bench-tjs/, ONNX Runtime Web's wasm files at
// /bench-ort/) embed the same sentences on the CPU, one library after the other inside each
// repetition so that a busy machine slows both alike. Everything runs on the page thread.
// window.runBench(options) resolves to plain numbers (ms) and the agreement of the embeddings.

// Twenty English sentences of 5 to 30 words, varied in length, punctuation and vocabulary.
export const SENTENCES = [
  'The cat sat quietly on the warm windowsill.',
  'Interest rates rose again this quarter, and mortgage applications fell to their lowest level in a decade.',
  'Please remember to water the tomatoes before you leave for the airport tomorrow morning.',
  'He plays the violin beautifully.',
  'A small earthquake shook the coastal town overnight, but no injuries or serious damage were reported by local officials.',
  'Which train goes to the museum district?',
  'The committee postponed its decision until the independent auditors finish reviewing the hospital\'s accounts for the last three years.',
  'Fresh bread smells wonderful in the early morning.',
  'Photosynthesis converts sunlight, water and carbon dioxide into glucose and oxygen inside the chloroplasts of green plant cells.',
  'My laptop battery died during the presentation, so I finished it from memory.',
  'Stock markets in Asia opened lower on Monday.',
  'She spent the summer hiking across the Scottish Highlands with nothing but a tent, a map, and an old camera.',
  'Can you recommend a good book about the history of mathematics?',
  'The referee\'s controversial call in the final minute decided the championship, and fans argued about it for weeks afterwards.',
  'Dolphins communicate using clicks and whistles.',
  'Our new software release fixes the login bug, speeds up searches, and adds a dark mode that many users requested.',
  'It rained all weekend, so we stayed inside and played board games.',
  'The ancient library held thousands of fragile manuscripts, some written more than a thousand years ago by monks working by candlelight.',
  'I would like two coffees and a croissant, please.',
  'Volunteers planted four hundred trees along the river to prevent erosion and give birds a place to nest.',
];

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
  const runtime = await webnlu.Runtime.create(options.threads ? { device: 'cpu', threads: options.threads } : { device: 'cpu' });
  const names = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
  const fetched = await Promise.all(names.map(async (name) => {
    const response = await fetch(`/bench-model/${name}`);
    return response.ok ? [name, new Uint8Array(await response.arrayBuffer())] : null;
  }));
  const files = Object.fromEntries(fetched.filter((entry) => entry !== null));
  const model = await runtime.loadModel({ files });
  const loadMs = performance.now() - started;
  const embed = (texts) => model.embed(texts, { pooling: 'mean', normalize: true });
  return { embed, importMs, loadMs, version: runtime.version, device: runtime.device, worker: runtime.worker };
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
    webnlu: { ...summary('webnlu'), version: wn.version, device: wn.device, worker: wn.worker, threads_requested: options.threads ?? null },
    transformersjs: { ...summary('transformersjs'), version: tjs.version, ort_web_version: tjs.ortVersion, ort_threads: tjs.ortThreads },
    agreement,
  };
};

document.body.dataset.ready = 'true';

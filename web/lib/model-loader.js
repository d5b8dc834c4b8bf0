// Fetching a model's files: which ones (model-source.js), with byte-level progress read from
// the response stream, kept in the browser's Cache API (cache `webnlu-models-v1`, keyed by URL)
// so that a second visit loads with no network request at all: for every file the cache is
// asked first, for each candidate in order, and only then the network.

import { ModelLoadError, WebnluError } from './errors.js';
import { localFileBytes, MODEL_FILE_ROLES, resolveModelSource } from './model-source.js';
import { arrayStream, STREAMED_WEIGHTS, streamedFile } from './weight-stream.js';

/** The Cache API cache that holds downloaded model files. */
export const CACHE_NAME = 'webnlu-models-v1';

/** The cache, or null where there is none (Node, opaque origins, storage switched off). */
async function openCache() {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/**
 * Deletes every model file webnlu has cached in this origin. Resolves to true when there was a
 * cache to delete; false where there was none or no Cache API.
 */
export async function clearCache() {
  if (typeof caches === 'undefined') return false;
  return caches.delete(CACHE_NAME);
}

/** The cached files: `[{ url, bytes }]` (bytes from Content-Length; -1 when unknown). */
export async function listCachedFiles() {
  const cache = await openCache();
  if (cache === null) return [];
  const requests = await cache.keys();
  return Promise.all(requests.map(async (request) => {
    const response = await cache.match(request);
    const length = response?.headers.get('content-length');
    return { url: request.url, bytes: length === null || length === undefined ? -1 : Number(length) };
  }));
}

/**
 * Reads `response`'s body chunk by chunk, calling `progress(loaded, total)` after each;
 * `total` is the Content-Length when the body is not content-encoded (it would then count
 * compressed bytes), else undefined.
 */
async function readBody(response, progress) {
  const total = bodyLength(response);
  if (response.body === null || typeof response.body.getReader !== 'function') {
    const bytes = new Uint8Array(await response.arrayBuffer());
    progress(bytes.length, total ?? bytes.length);
    return bytes;
  }
  const reader = response.body.getReader();
  // (total,) filled in place when the length is known; else the chunks, joined at the end.
  let buffer = total !== undefined ? new Uint8Array(total) : null;
  const chunks = [];
  let loaded = 0;
  progress(0, total);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (buffer !== null && loaded + value.length <= buffer.length) {
      buffer.set(value, loaded);
    } else {
      if (buffer !== null) { chunks.push(buffer.subarray(0, loaded)); buffer = null; } // longer than announced
      chunks.push(value);
    }
    loaded += value.length;
    progress(loaded, total);
  }
  if (buffer !== null) return loaded === buffer.length ? buffer : buffer.slice(0, loaded);
  const joined = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) { joined.set(chunk, at); at += chunk.length; }
  return joined;
}

/** The Content-Length of `response` when its body is not content-encoded (it would then count compressed bytes), else undefined. */
function bodyLength(response) {
  const length = response.headers.get('content-length');
  return length !== null && !response.headers.get('content-encoding') ? Number(length) : undefined;
}

/**
 * `response`'s body as a `streamedFile` (weight-stream.js) that reports progress as the loader
 * reads it; a download (not `cached`) goes to the cache at the same time, through a
 * tee of the body (`writes` gets the promise of that write).
 */
function streamBody(response, { name, url, store, cached, writes }, progress) {
  const total = bodyLength(response);
  let body = response.body;
  if (body === null || typeof body.getReader !== 'function') { // no body stream: read whole, then streamed
    body = new ReadableStream({
      async start(controller) {
        controller.enqueue(new Uint8Array(await response.arrayBuffer()));
        controller.close();
      },
    });
  }
  if (!cached && store !== null) {
    const [toLoad, toCache] = body.tee();
    body = toLoad;
    writes.push(storeInCache(store, url, toCache, response.headers.get('content-type'), total));
  }
  progress(0, total);
  return streamedFile(name, body, total, url, (loaded) => progress(loaded, total));
}

/** fetch(url), turning a network failure into a ModelLoadError that names the URL. */
async function fetchOrThrow(fetchImpl, url, file, signal) {
  try {
    return await fetchImpl(url, { signal });
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    throw new ModelLoadError(`could not fetch ${url}: ${error?.message ?? error} (offline, or the server does not allow this page's origin?)`,
      { url, file, cause: error });
  }
}

/** The error for a non-OK response to `url`. */
function httpError(response, url, file) {
  const hint = response.status === 401 || response.status === 403
    ? ' (on the Hugging Face Hub this means the model does not exist, or it is gated and needs a login)'
    : '';
  return new ModelLoadError(`${file}: HTTP ${response.status} ${response.statusText || ''}`.trim() + ` for ${url}${hint}`,
    { url, file, status: response.status });
}

/**
 * Fetches (or reads) the files of a model named by `source` (see `resolveModelSource`).
 * Resolves to `{ files: Map<name, Uint8Array>, label, base, fromCache: [names], bytes,
 * cacheWrites }`.
 *
 * Options: `onProgress({ file, loaded, total, fromCache, fileIndex, fileCount })` after each
 * chunk; `roles` (default: config, tokenizer, weights); `cache` (default true: read and fill
 * the Cache API); `hubUrl`, `revision`; `fetch` (default globalThis.fetch); `signal`;
 * `streamWeights` (default false): model.safetensors is not read here but handed over as a
 * `streamedFile` (weight-stream.js) for the model's loader to read as it arrives: its progress
 * events come as the loader reads, `bytes` counts what was read so far, and a download is
 * cached as it streams (`cacheWrites` resolves when those writes are done; they never reject).
 * @throws ModelLoadError naming the file and URL that failed.
 */
export async function fetchModelFiles(source, options = {}) {
  const { onProgress, roles = MODEL_FILE_ROLES, cache = true, signal, streamWeights = false } = options;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const resolved = resolveModelSource(source, options);
  const report = (event) => { if (typeof onProgress === 'function') onProgress(event); };
  const files = new Map();

  // bytes of the streamed weight file read so far (by the loader)
  let streamedBytes = 0;
  const streamed = (name) => streamWeights && name === STREAMED_WEIGHTS;

  if (resolved.kind === 'files') {
    const given = new Map(resolved.entries);
    const chosen = chooseLocal(given, roles);
    let index = 0;
    for (const name of chosen) {
      const fileIndex = index++;
      if (streamed(name)) {
        const { stream, length } = localStream(name, given.get(name));
        const progress = (loaded) => {
          streamedBytes = loaded;
          report({ file: name, loaded, total: length, fromCache: false, fileIndex, fileCount: chosen.length });
        };
        files.set(name, streamedFile(name, stream, length, undefined, progress));
        continue;
      }
      const bytes = await localFileBytes(name, given.get(name));
      files.set(name, bytes);
      report({ file: name, loaded: bytes.length, total: bytes.length, fromCache: false, fileIndex, fileCount: chosen.length });
    }
    return { files, label: resolved.label, base: null, fromCache: [], get bytes() { return sum(files) + streamedBytes; }, cacheWrites: Promise.resolve() };
  }

  if (typeof fetchImpl !== 'function') throw new WebnluError('no fetch() in this environment: pass options.fetch, or give { files }');
  const store = cache ? await openCache() : null;
  const fromCache = [];
  const writes = []; // cache writes of streamed files, finishing after their loads
  const wanted = roles.filter((role) => role.onlyWith === undefined);
  const conditional = roles.filter((role) => role.onlyWith !== undefined);
  const plan = [...wanted];
  let fileIndex = 0;
  for (let r = 0; r < plan.length; r++) {
    const role = plan[r];
    const found = await findFile(role, resolved.base, store, fetchImpl, signal);
    if (found === null) {
      if (!role.required) continue;
      throw new ModelLoadError(
        `no ${role.candidates.join(' or ')} at ${resolved.base} (the model's ${role.role}; ` +
        `is ${JSON.stringify(resolved.label)} the right model, and does it have these files?)`,
        { url: resolved.base + role.candidates[0], file: role.candidates[0], status: 404 });
    }
    const { name, url, response, cached } = found;
    const fileCount = plan.length; // grows when a vocab.txt brings its tokenizer_config.json
    if (streamed(name)) { // read by the model's loader as it arrives (weight-stream.js)
      const index = fileIndex++;
      files.set(name, streamBody(response, { name, url, store, cached, writes }, (loaded, total) => {
        streamedBytes = loaded;
        report({ file: name, loaded, total, fromCache: cached, fileIndex: index, fileCount });
      }));
      if (cached) fromCache.push(name);
      continue;
    }
    let bytes;
    try {
      bytes = await readBody(response, (loaded, total) =>
        report({ file: name, loaded, total, fromCache: cached, fileIndex, fileCount }));
    } catch (error) {
      if (error?.name === 'AbortError') throw error;
      throw new ModelLoadError(`${name}: the download from ${url} broke off: ${error?.message ?? error}`, { url, file: name, cause: error });
    }
    fileIndex++;
    files.set(name, bytes);
    if (cached) fromCache.push(name);
    else if (store !== null) await storeInCache(store, url, bytes, response.headers.get('content-type'));
    for (const extra of conditional) if (extra.onlyWith === name) plan.splice(r + 1, 0, extra);
  }
  return {
    files, label: resolved.label, base: resolved.base, fromCache,
    get bytes() { return sum(files) + streamedBytes; },
    cacheWrites: Promise.all(writes),
  };
}

/** A local weight file value as `{ stream, length }`: a Blob's own stream, or the caller's bytes read in slices (never detached). */
function localStream(name, value) {
  if (typeof Blob !== 'undefined' && value instanceof Blob) return { stream: value.stream(), length: value.size };
  let bytes;
  if (value instanceof ArrayBuffer) bytes = new Uint8Array(value);
  else if (ArrayBuffer.isView(value)) bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  else if (typeof value === 'string') bytes = new TextEncoder().encode(value);
  else throw new ModelLoadError(`${name}: expected a File, Blob, ArrayBuffer, typed array or string, got ${value === null ? 'null' : typeof value}`, { file: name });
  return { stream: arrayStream(bytes), length: bytes.length };
}

/**
 * The first of `role`'s candidates in the cache, else the first the server has (404: try the
 * next): `{ name, url, response, cached }`, or null when none exists.
 */
async function findFile(role, base, store, fetchImpl, signal) {
  if (store !== null) {
    for (const name of role.candidates) {
      const url = base + name;
      const response = await store.match(url);
      if (response === undefined) continue;
      if (response.status === ABSENT) return null; // an optional file known to be missing
      return { name, url, response, cached: true };
    }
  }
  for (const name of role.candidates) {
    const url = base + name;
    const response = await fetchOrThrow(fetchImpl, url, name, signal);
    if (response.status === 404) { await response.body?.cancel(); continue; }
    if (!response.ok) throw httpError(response, url, name);
    return { name, url, response, cached: false };
  }
  // Remember that an optional file is missing, so that the next visit asks nobody.
  if (!role.required && store !== null) {
    await store.put(base + role.candidates[0], new Response(null, { status: ABSENT })).catch(() => {});
  }
  return null;
}

/** The status of the cache entry that marks an optional file as missing on the server. */
const ABSENT = 404;

/**
 * Puts `body` (bytes, or a stream `length` bytes long when known) in the cache under `url`; a
 * full disk only costs the next visit a download, and a download that broke off or was aborted
 * stores nothing.
 */
async function storeInCache(store, url, body, contentType, length = body.length) {
  const headers = { 'content-type': contentType ?? 'application/octet-stream' };
  if (length !== undefined) headers['content-length'] = String(length);
  try {
    await store.put(url, new Response(body, { headers }));
  } catch (error) {
    if (error?.name === 'AbortError') return;
    console.warn(`webnlu: could not cache ${url} (${error?.message ?? error}); it will be downloaded again next time`);
  }
}

/** The names of `given` to use, by role; throws a ModelLoadError naming a missing one. */
function chooseLocal(given, roles) {
  const chosen = [];
  for (const role of roles) {
    if (role.onlyWith !== undefined && !given.has(role.onlyWith)) continue;
    const name = role.candidates.find((candidate) => given.has(candidate));
    if (name !== undefined) chosen.push(name);
    else if (role.required) {
      throw new ModelLoadError(
        `the files given lack the model's ${role.role}: need ${role.candidates.join(' or ')}, got ${[...given.keys()].join(', ') || 'none'}`,
        { file: role.candidates[0] });
    }
  }
  return chosen;
}

/** Bytes of the files held whole (a streamed file counts where it is read: see `bytes`). */
function sum(files) {
  let total = 0;
  for (const bytes of files.values()) if (ArrayBuffer.isView(bytes)) total += bytes.length;
  return total;
}

/**
 * Fetches one file from `url` (absolute, or relative to the page) the way `fetchModelFiles`
 * fetches each file of a model: the Cache API first, then the network, with progress after
 * every chunk, and the download kept in the cache. Resolves to `{ bytes, url, fromCache }`.
 * Options: `onProgress`, `cache` (default true), `fetch`, `signal`, and `fileIndex`/`fileCount`
 * for the progress events. Used for files that are not named by a base URL (ELMo's two files).
 * @throws ModelLoadError naming `file` and the URL (a 404 included: there is no other candidate).
 */
export async function fetchFile(url, file, options = {}) {
  const { onProgress, cache = true, signal, fileIndex = 0, fileCount = 1 } = options;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw new WebnluError(`${file}: no fetch() in this environment to get ${url}; pass options.fetch, or give the file's bytes`);
  let absolute;
  try {
    absolute = new URL(url, typeof location !== 'undefined' ? location.href : undefined).href;
  } catch (error) {
    throw new ModelLoadError(`${file}: ${JSON.stringify(String(url))} is not a valid URL`, { file, cause: error });
  }
  const store = cache ? await openCache() : null;
  let response = store === null ? undefined : await store.match(absolute);
  const cached = response !== undefined && response.status !== ABSENT;
  if (!cached) {
    response = await fetchOrThrow(fetchImpl, absolute, file, signal);
    if (!response.ok) throw httpError(response, absolute, file);
  }
  let bytes;
  try {
    bytes = await readBody(response, (loaded, total) => {
      if (typeof onProgress === 'function') onProgress({ file, loaded, total, fromCache: cached, fileIndex, fileCount });
    });
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    throw new ModelLoadError(`${file}: the download from ${absolute} broke off: ${error?.message ?? error}`, { url: absolute, file, cause: error });
  }
  if (!cached && store !== null) await storeInCache(store, absolute, bytes, response.headers.get('content-type'));
  return { bytes, url: absolute, fromCache: cached };
}

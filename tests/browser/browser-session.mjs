// What the browser tests share: Chromium (Debian's, driven by playwright-core, WebGPU on
// SwiftShader with --enable-unsafe-webgpu), the demo server with the test harness page mounted
// and every request counted, and the checks that a test's inputs exist.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../../web/serve.mjs';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MODELS = `${ROOT}tests/fixtures/models`;
export const SCREENSHOTS = `${ROOT}tests/browser/screenshots`;
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Throws, naming the command that makes it, for the first of [[file, how], ...] that is missing. */
export function requireFiles(list) {
  for (const [file, how] of list) {
    if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
  }
}

/**
 * Starts the server (with /harness/ and a local Hub at /hub/<name>/resolve/main/ for every
 * folder of tests/fixtures/models, plus `mounts`) and Chromium. `requests` lists every URL
 * path asked for.
 */
export async function openSession({ mounts = [] } = {}) {
  const requests = [];
  const { server, url } = await startServer({
    port: 0,
    mounts: [
      ...mounts,
      ['/harness/', `${ROOT}tests/browser/harness`],
      ['/hub/local/', MODELS], // /hub/local/<model>/resolve/main/<file>, see hubFolder below
    ],
    onRequest: (request) => requests.push(new URL(request.url, 'http://127.0.0.1').pathname),
    rewrite: (path) => path.replace(/^\/hub\/local\/([^/]+)\/resolve\/main\//, '/hub/local/$1/'),
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--enable-unsafe-webgpu', '--disable-quic'] });
  return { server, url, browser, requests };
}

/** A model file the loader asks for and may not find (it then takes the next candidate, or none). */
export const PROBED = /\/(modules\.json|tokenizer_config\.json|tokenizer\.json|model\.safetensors)$/;

/**
 * The console errors that are not the line Chromium logs for each 404 of a probed optional file;
 * throws when a 404 was for anything else. `notFound`: the URLs answered 404.
 */
export function unexpectedConsoleErrors(errors, notFound) {
  const wrong = notFound.filter((url) => !PROBED.test(url));
  if (wrong.length > 0) throw new Error(`404 for files that are no optional probe: ${wrong.join(', ')}`);
  let probes = notFound.length;
  return errors.filter((line) => {
    if (probes > 0 && /Failed to load resource: the server responded with a status of 404/.test(line)) { probes--; return false; }
    return true;
  });
}

/**
 * Opens `url` in a new page of `context`, collecting console errors into `errors` and the URLs
 * answered 404 into `notFound` (when given).
 */
export async function openPage(context, url, errors, readySelector = 'body[data-ready="true"]', notFound = null) {
  const page = await context.newPage();
  if (notFound !== null) page.on('response', (response) => { if (response.status() === 404) notFound.push(response.url()); });
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(url);
  await page.waitForSelector(readySelector, { state: 'attached', timeout: 120_000 });
  return page;
}

/** The test harness (/harness/) in a new page of a new context of `session`, as `openPage` opens it. */
export async function openHarnessPage(session, errors, notFound = null) {
  return openPage(await session.browser.newContext(), `${session.url}harness/`, errors, undefined, notFound);
}

/** Closes what `openSession` started (either may be missing when the session failed to open). */
export async function closeSession(session) {
  await session?.browser.close();
  session?.server.close();
}

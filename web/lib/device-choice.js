// How `device: 'auto'` picks the GPU or the CPU: by measuring, not by guessing. When the
// browser offers a hardware WebGPU adapter, the same small workload (crate/src/wasm/
// calibration.rs: a (64, 384) x (384, 384) matmul, a MiniLM layer over a short batch) is timed on
// the GPU and on the CPU, and the faster one wins. The decision is remembered per origin, adapter
// and package version, so that only the first visit pays for the measurement (about a second).
// A software fallback adapter (SwiftShader, lavapipe) goes straight to the CPU, unmeasured: there
// the CPU kernels are 50-250x faster (shared/notes/WEBGPU.md).
// What the one matmul does not see: a whole model is many small kernels, each a dispatch, so it
// favours the GPU more than a whole forward would. On SwiftShader in headless Chromium here the
// calibration matmul ran 1.6-2.5x slower than the wasm CPU, a MiniLM forward about 7x slower.
// A close call measured on a hardware adapter may therefore still be the CPU's in practice.
//
// `decideAutoDevice` is the rule itself, a pure function (tests/node/device-choice.test.mjs);
// the engine (engine.js, 'runtime.create') gathers its inputs: the adapter, what was
// remembered, what was measured.

import { DeviceError } from './errors.js';

/** Matmuls per timed calibration run; the time reported is per matmul. */
export const CALIBRATION_REPEATS = 4;
/** Timed runs per device (after one warm-up run); the fastest counts, to ignore hiccups. */
export const CALIBRATION_ROUNDS = 3;

/** The fields of `GPUAdapter.info` that identify an adapter (and whether it is software). */
export function adapterIdentity(adapter) {
  const { vendor = '', architecture = '', description = '', isFallbackAdapter = false } = adapter?.info ?? {};
  return { vendor, architecture, description, isFallbackAdapter: Boolean(isFallbackAdapter || adapter?.isFallbackAdapter) };
}

/** A readable name of an adapter identity: "vendor architecture description". */
export function adapterLabel(identity) {
  return [identity.vendor, identity.architecture, identity.description].filter(Boolean).join(' ') || 'unnamed WebGPU adapter';
}

/** The key a decision is remembered under: the package version and the adapter. */
export function decisionKey(identity, version) {
  return `webnlu ${version} auto-device ${identity.vendor}|${identity.architecture}|${identity.description}`;
}

function formatMs(ms) {
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
}

/**
 * The 'auto' rule. Inputs:
 * - `adapter`: the adapter's identity (`adapterIdentity`), or null when there is none;
 * - `remembered`: `{ kind, cpuMs, gpuMs, storedIn }` from an earlier visit, or null;
 * - `measured`: `{ cpuMs, gpuMs }` from a calibration just run (gpuMs Infinity when the GPU failed,
 *   with `gpuError`), or null when none was run yet;
 * - `storedIn`: where the measured decision was kept ('origin' or 'session'; null: nowhere, as
 *   after a failed GPU, which may work next time);
 * - `calibrateFallback`: a TEST HOOK only: treat a software fallback adapter as hardware, so that
 *   the calibration can run in headless Chromium, whose only adapter is SwiftShader.
 * Returns `{ kind: 'gpu' | 'cpu', reason, calibrate: false }`, or `{ calibrate: true }` when a
 * calibration has to be run first (then call again with `measured`).
 */
export function decideAutoDevice({ adapter, remembered = null, measured = null, storedIn = null, calibrateFallback = false }) {
  if (adapter === null || adapter === undefined) {
    return { kind: 'cpu', calibrate: false, reason: 'auto: no WebGPU adapter in this browser, so the CPU' };
  }
  const name = adapterLabel(adapter);
  if (adapter.isFallbackAdapter && !calibrateFallback) {
    return {
      kind: 'cpu', calibrate: false,
      reason: `auto: the WebGPU adapter (${name}) is a software fallback, where the CPU kernels are faster; not calibrated`,
    };
  }
  const times = measured ?? remembered;
  if (times === null) return { calibrate: true };
  if (!Number.isFinite(times.cpuMs) && !Number.isFinite(times.gpuMs)) {
    throw new DeviceError(`auto: calibration gave no time for either device (cpu ${times.cpuMs}, gpu ${times.gpuMs})`);
  }
  // The GPU on a tie: it leaves the CPU to the page.
  const kind = times.gpuMs <= times.cpuMs ? 'gpu' : 'cpu';
  const gpuPart = Number.isFinite(times.gpuMs) ? `gpu ${formatMs(times.gpuMs)}` : `gpu failed (${measured?.gpuError ?? 'unknown error'})`;
  let how = `remembered for this ${remembered?.storedIn ?? 'origin'} (${name})`;
  if (measured !== null) how = storedIn ? `measured now on ${name}, remembered for this ${storedIn}` : `measured now on ${name}, not remembered`;
  return {
    kind, calibrate: false,
    reason: `auto: cpu ${formatMs(times.cpuMs)} vs ${gpuPart} per calibration matmul (64x384 by 384x384), so the ${kind.toUpperCase()}; ${how}`,
  };
}

// ---------------------------------------------------------------- remembering decisions
//
// Where: the Cache API (cache `webnlu-device-v1`), which pages and Web Workers of one origin share,
// so a decision made in worker mode holds on the page thread too; else `localStorage` (pages only,
// e.g. an http:// origin without the Cache API); else only in memory, for this page or worker
// (the reason then says "session").

const DECISION_CACHE = 'webnlu-device-v1';
const sessionDecisions = new Map();

function decisionUrl(key) {
  // The Cache API keys by http(s) URL; this one is never fetched.
  return `https://webnlu.invalid/auto-device/${encodeURIComponent(key)}`;
}

/** The decision remembered under `key` ({ kind, cpuMs, gpuMs, storedIn }), or null. */
export async function readDecision(key) {
  try {
    if (globalThis.caches) {
      const cache = await caches.open(DECISION_CACHE);
      const response = await cache.match(decisionUrl(key));
      if (response) return { ...(await response.json()), storedIn: 'origin' };
    } else if (globalThis.localStorage) {
      const text = localStorage.getItem(key);
      if (text !== null) return { ...JSON.parse(text), storedIn: 'origin' };
    }
  } catch {
    // An unreadable store (storage blocked, a broken entry) is no decision: measure again.
  }
  const kept = sessionDecisions.get(key);
  return kept ? { ...kept, storedIn: 'session' } : null;
}

/** Keeps `decision` ({ kind, cpuMs, gpuMs }) under `key`; resolves to 'origin' or 'session'. */
export async function writeDecision(key, decision) {
  sessionDecisions.set(key, decision);
  const text = JSON.stringify(decision);
  try {
    if (globalThis.caches) {
      const cache = await caches.open(DECISION_CACHE);
      await cache.put(decisionUrl(key), new Response(text, { headers: { 'Content-Type': 'application/json' } }));
      return 'origin';
    }
    if (globalThis.localStorage) {
      localStorage.setItem(key, text);
      return 'origin';
    }
  } catch {
    // Storage refused (quota, private mode): remembered for this session only.
  }
  return 'session';
}

/**
 * Milliseconds per calibration matmul on `runtime` (a WasmRuntime): one warm-up run (shader
 * compilation, buffer allocation), then the fastest of `CALIBRATION_ROUNDS` timed runs.
 */
export async function timeCalibration(runtime) {
  await runtime.run_calibration_workload(1);
  let best = Infinity;
  for (let round = 0; round < CALIBRATION_ROUNDS; round++) {
    const started = performance.now();
    await runtime.run_calibration_workload(CALIBRATION_REPEATS);
    best = Math.min(best, (performance.now() - started) / CALIBRATION_REPEATS);
  }
  return best;
}

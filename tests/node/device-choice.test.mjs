// The rule of `device: 'auto'` (web/lib/device-choice.js, decideAutoDevice), a pure function of
// the adapter, the remembered decision and the measured times: no adapter or a software
// fallback -> the CPU without calibrating; a hardware adapter -> calibrate, then the faster
// device, both outcomes, with the times in the reason; a remembered decision is used without
// measuring; a GPU that failed the calibration loses. Also where decisions are remembered in
// Node (no Cache API, no localStorage: this session only), and the key (adapter and version).
//
// Needs: pkg/ (make pkg).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(`${ROOT}pkg/device-choice.js`)) throw new Error(`missing ${ROOT}pkg/device-choice.js: run \`make pkg\``);
const { adapterIdentity, decideAutoDevice, decisionKey, readDecision, writeDecision } = await import(`${ROOT}pkg/device-choice.js`);

const HARDWARE = adapterIdentity({ info: { vendor: 'nvidia', architecture: 'hopper', description: 'H100', isFallbackAdapter: false } });
const SOFTWARE = adapterIdentity({ info: { vendor: 'google', architecture: 'swiftshader', description: '', isFallbackAdapter: true } });

test('no adapter: the CPU, nothing measured', () => {
  const decision = decideAutoDevice({ adapter: null });
  assert.equal(decision.kind, 'cpu');
  assert.equal(decision.calibrate, false);
  assert.match(decision.reason, /no WebGPU adapter/);
});

test('a software fallback adapter: the CPU without calibrating, even with times at hand', () => {
  const decision = decideAutoDevice({ adapter: SOFTWARE, remembered: { kind: 'gpu', cpuMs: 9, gpuMs: 1, storedIn: 'origin' } });
  assert.equal(decision.kind, 'cpu');
  assert.equal(decision.calibrate, false);
  assert.match(decision.reason, /google swiftshader\) is a software fallback.*not calibrated/);
});

test('a hardware adapter with nothing remembered asks for a calibration', () => {
  assert.deepEqual(decideAutoDevice({ adapter: HARDWARE }), { calibrate: true });
  // the test hook makes a software adapter calibrate too (headless Chromium has only SwiftShader)
  assert.deepEqual(decideAutoDevice({ adapter: SOFTWARE, calibrateFallback: true }), { calibrate: true });
});

test('measured: the faster device wins, and the reason says what was measured and where it is kept', () => {
  const cpuFaster = decideAutoDevice({ adapter: HARDWARE, measured: { cpuMs: 3.1, gpuMs: 7.9 }, storedIn: 'origin' });
  assert.equal(cpuFaster.kind, 'cpu');
  assert.equal(cpuFaster.reason,
    'auto: cpu 3.10 ms vs gpu 7.90 ms per calibration matmul (64x384 by 384x384), so the CPU; measured now on nvidia hopper H100, remembered for this origin');
  const gpuFaster = decideAutoDevice({ adapter: HARDWARE, measured: { cpuMs: 31.4, gpuMs: 2.5 }, storedIn: 'session' });
  assert.equal(gpuFaster.kind, 'gpu');
  assert.match(gpuFaster.reason, /^auto: cpu 31\.4 ms vs gpu 2\.50 ms .* so the GPU; measured now .* remembered for this session$/);
  assert.equal(decideAutoDevice({ adapter: HARDWARE, measured: { cpuMs: 2, gpuMs: 2 } }).kind, 'gpu', 'a tie goes to the GPU');
});

test('a GPU that failed the calibration loses, and the decision is not remembered', () => {
  const decision = decideAutoDevice({ adapter: HARDWARE, measured: { cpuMs: 4, gpuMs: Infinity, gpuError: 'device lost' }, storedIn: null });
  assert.equal(decision.kind, 'cpu');
  assert.match(decision.reason, /gpu failed \(device lost\).*not remembered$/);
});

test('remembered: used without measuring, both ways', () => {
  for (const [kind, cpuMs, gpuMs] of [['cpu', 1.5, 6], ['gpu', 20, 3]]) {
    const decision = decideAutoDevice({ adapter: HARDWARE, remembered: { kind, cpuMs, gpuMs, storedIn: 'origin' } });
    assert.equal(decision.kind, kind);
    assert.equal(decision.calibrate, false);
    assert.match(decision.reason, /remembered for this origin \(nvidia hopper H100\)$/);
  }
});

test('decisions are keyed by adapter and version; in Node they live for the session', async () => {
  const key = decisionKey(HARDWARE, '9.9.9');
  assert.equal(key, 'webnlu 9.9.9 auto-device nvidia|hopper|H100');
  assert.notEqual(decisionKey(SOFTWARE, '9.9.9'), key);
  assert.notEqual(decisionKey(HARDWARE, '9.9.10'), key);
  assert.equal(await readDecision(key), null);
  assert.equal(await writeDecision(key, { kind: 'gpu', cpuMs: 5, gpuMs: 1 }), 'session');
  assert.deepEqual(await readDecision(key), { kind: 'gpu', cpuMs: 5, gpuMs: 1, storedIn: 'session' });
  assert.equal(await readDecision(decisionKey(HARDWARE, '9.9.10')), null);
});

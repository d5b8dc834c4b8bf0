// A lost GPU device (destroyed, a driver reset, the browser's GPU process gone). The Rust side
// (crate/src/device/lost.rs) rejects the calls in flight and every later GPU call with a
// `DeviceLostError`; this module gives the runtime its `device.lost` promise and refuses new
// models on a lost device before any work. Recovery: a new Runtime (the GPU again, or the CPU)
// and a reload of the models; the page goes on.

import { DeviceLostError } from './errors.js';

/** A promise that never settles: the loss of a device that cannot be lost (the CPU). */
const never = () => new Promise(() => {});

/**
 * Engine side: `{ reason, message }` once the GPU device of `wasmRuntime` is lost; never for a
 * CPU runtime (its `device_lost()` is undefined).
 */
export async function waitForDeviceLoss(wasmRuntime) {
  const lost = wasmRuntime.device_lost();
  if (lost === undefined) return never();
  const { reason, message } = await lost;
  return { reason, message };
}

/**
 * Page side: the `device.lost` promise of a runtime on `channel` with the runtime `handle` and
 * device `kind`. It resolves with `{ reason, message }` when the GPU device is lost, and never
 * on the CPU, for a runtime without models (handle null), or after `dispose()` (the worker
 * stopped: no loss to report).
 */
export function deviceLostPromise(channel, handle, kind) {
  if (kind !== 'gpu' || handle === null) return never();
  return channel.call('runtime.lost', { runtime: handle }).then(
    (info) => (info === null ? never() : Object.freeze(info)),
    () => never());
}

/** The error of a call made after the loss `info` ('destroyed' or 'unknown' and a message). */
export function deviceLostError(what, info) {
  return new DeviceLostError(
    `${what}: the GPU device was lost (${info.reason}): ${info.message}; ` +
    'open a new Runtime (the GPU again, or device: \'cpu\') and load the model again',
    { reason: info.reason });
}

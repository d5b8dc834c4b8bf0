// A lost GPU device (destroyed, a driver reset, the browser's GPU process gone). The Rust side
// (crate/src/device/lost.rs) rejects every GPU call after the loss with a `DeviceLostError`;
// this module rejects a model's calls in flight at the moment of the loss (LossWatch, in the
// engine), gives the runtime its `device.lost` promise, and refuses new models on a lost device
// before any work. Recovery: a new Runtime (the GPU again, or the CPU)
// and a reload of the models; the page goes on.

import { DeviceLostError } from './errors.js';

/** A promise that never settles: the loss of a device that cannot be lost (the CPU). */
const never = () => new Promise(() => {});

/**
 * Engine side: watches the GPU device of one runtime. `promise` resolves with
 * `{ reason, message }` once it is lost (never for a CPU runtime, whose `device_lost()` is
 * undefined); `guard` makes a call in flight reject at that moment.
 */
export class LossWatch {
  constructor(wasmRuntime) {
    this.info = null;
    /** The rejections of the calls in flight, called on the loss (each removed when its call settles). */
    this.inFlight = new Set();
    const lost = wasmRuntime.device_lost();
    this.canBeLost = lost !== undefined;
    this.promise = this.canBeLost
      ? lost.then(({ reason, message }) => {
        this.info = { reason, message };
        for (const reject of this.inFlight) reject(this.info);
        this.inFlight.clear();
        return this.info;
      })
      : never();
  }

  /**
   * `call` (the promise of operation `what`), rejecting with a DeviceLostError as soon as the
   * device is lost: on the page's thread a read-back in flight settles only when the browser
   * has finished the GPU work already submitted, which may take seconds. The engine's queue
   * still waits for `call` itself, so the next operation never enters a wasm object in use.
   */
  guard(what, call) {
    if (!this.canBeLost || this.info !== null) return call; // after the loss Rust reports it
    return new Promise((resolve, reject) => {
      const onLoss = (info) => reject(deviceLostError(what, info));
      this.inFlight.add(onLoss);
      call.then(resolve, reject).finally(() => this.inFlight.delete(onLoss));
    });
  }
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

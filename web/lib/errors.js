// The errors thrown by webnlu. Every one is a `WebnluError`; the subclasses say which part
// failed, so callers can tell a missing file from a missing GPU without reading messages.
// Errors cross the worker boundary as plain {name, message, ...fields} and are rebuilt here.
// Each class's `name` is set on its prototype, by hand: a minifier may rename the classes.

/** Error thrown by every webnlu function; `message` says what is wrong and with which input. */
export class WebnluError extends Error {}
WebnluError.prototype.name = 'WebnluError';

/** A model or tokenizer file could not be fetched, read or found; `url`/`file`/`status` say which. */
export class ModelLoadError extends WebnluError {
  constructor(message, { url, file, status, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.url = url;
    this.file = file;
    this.status = status;
  }
}
ModelLoadError.prototype.name = 'ModelLoadError';

/** The device asked for is not available (for example `device: 'gpu'` without WebGPU). */
export class DeviceError extends WebnluError {}
DeviceError.prototype.name = 'DeviceError';

/**
 * The GPU device of a runtime was lost: destroyed (`GPUDevice.destroy()`), a driver reset, the
 * browser's GPU process gone. The calls in flight and every later call on that runtime's GPU
 * reject with it; `reason` is WebGPU's: 'destroyed' or 'unknown'. A new `Runtime` (the GPU
 * again, or `device: 'cpu'`) and a reload of the model go on; `rt.device.lost` resolves too.
 * It is a `DeviceError`, so `instanceof DeviceError` still holds.
 */
export class DeviceLostError extends DeviceError {
  constructor(message, { reason = 'unknown', cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DeviceLostError';
    this.reason = reason;
  }
}

/**
 * An allocation was refused: the wasm module's memory (4 GiB at most, `memory.grow` refused) or
 * the GPU's. `what` names the tensor, buffer or file, `bytes` what it needed. Nothing was left
 * half-done: the runtime and its models work for smaller inputs (fewer or shorter texts).
 */
export class OutOfMemoryError extends WebnluError {
  constructor(message, { what, bytes, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'OutOfMemoryError';
    this.what = what;
    this.bytes = bytes;
  }
}

/** What was asked for does not exist in this build or this environment (e.g. a worker in Node). */
export class UnsupportedError extends WebnluError {}
UnsupportedError.prototype.name = 'UnsupportedError';

/** A model, tokenizer, training run or runtime was used after `dispose()`. */
export class DisposedError extends WebnluError {}
DisposedError.prototype.name = 'DisposedError';

/** The Web Worker of a `Runtime.create({ worker: true })` failed to start or died. */
export class WorkerError extends WebnluError {}
WorkerError.prototype.name = 'WorkerError';

const CLASSES = {
  WebnluError, ModelLoadError, DeviceError, DeviceLostError, OutOfMemoryError, UnsupportedError, DisposedError, WorkerError,
};

/** A structured-cloneable description of `error`, for postMessage. */
export function errorToWire(error) {
  if (error instanceof WebnluError) {
    const { url, file, status, reason, what, bytes } = error;
    return { name: error.name, message: error.message, url, file, status, reason, what, bytes };
  }
  if (error instanceof DOMException && error.name === 'AbortError') return { name: 'AbortError', message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { name: 'WebnluError', message };
}

/** The error described by `wire`, as an instance of its class (WebnluError when unknown). */
export function errorFromWire(wire) {
  if (wire.name === 'AbortError') return new DOMException(wire.message, 'AbortError');
  const Class = CLASSES[wire.name] ?? WebnluError;
  if (Class === ModelLoadError || Class === DeviceLostError || Class === OutOfMemoryError) return new Class(wire.message, wire);
  return new Class(wire.message);
}

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

/** What was asked for does not exist in this build or this environment (e.g. a worker in Node). */
export class UnsupportedError extends WebnluError {}
UnsupportedError.prototype.name = 'UnsupportedError';

/** A model, tokenizer, training run or runtime was used after `dispose()`. */
export class DisposedError extends WebnluError {}
DisposedError.prototype.name = 'DisposedError';

/** The Web Worker of a `Runtime.create({ worker: true })` failed to start or died. */
export class WorkerError extends WebnluError {}
WorkerError.prototype.name = 'WorkerError';

const CLASSES = { WebnluError, ModelLoadError, DeviceError, UnsupportedError, DisposedError, WorkerError };

/** A structured-cloneable description of `error`, for postMessage. */
export function errorToWire(error) {
  if (error instanceof WebnluError) {
    const { url, file, status } = error;
    return { name: error.name, message: error.message, url, file, status };
  }
  if (error instanceof DOMException && error.name === 'AbortError') return { name: 'AbortError', message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { name: 'WebnluError', message };
}

/** The error described by `wire`, as an instance of its class (WebnluError when unknown). */
export function errorFromWire(wire) {
  if (wire.name === 'AbortError') return new DOMException(wire.message, 'AbortError');
  const Class = CLASSES[wire.name] ?? WebnluError;
  if (Class === ModelLoadError) return new ModelLoadError(wire.message, wire);
  return new Class(wire.message);
}

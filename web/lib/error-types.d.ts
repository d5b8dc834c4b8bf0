// The error classes of webnlu (re-exported by index.d.ts). Each crosses the worker boundary
// and the wasm boundary by its `name` (errors.js), so `instanceof` holds for errors raised in Rust
// or in a worker.

/** The error thrown by webnlu; `message` names the input at fault and what is wrong with it. */
export class WebnluError extends Error {
  name: string;
}

/** A model or tokenizer file could not be fetched, read or found. */
export class ModelLoadError extends WebnluError {
  name: 'ModelLoadError';
  /** The URL that failed, when the file came from the network. */
  url?: string;
  /** The file name (e.g. `config.json`). */
  file?: string;
  /** The HTTP status, when the server answered with an error (404: not there). */
  status?: number;
}

/** The device asked for is not available (`device: 'gpu'` without a WebGPU adapter). */
export class DeviceError extends WebnluError {
  /** 'DeviceLostError' for its subclass `DeviceLostError`. */
  name: 'DeviceError' | 'DeviceLostError';
}

/**
 * The runtime's GPU device was lost: destroyed (`GPUDevice.destroy()`), a driver reset, or the
 * browser's GPU process gone. The calls in flight on that runtime and every later one that
 * needs its GPU reject with it (`loadModel` too); `runtime.device.lost` resolves. Open a new
 * `Runtime` (the GPU again, or `device: 'cpu'`) and load the model again: the page goes on.
 * A `DeviceError` too (`instanceof DeviceError` holds).
 */
export class DeviceLostError extends DeviceError {
  name: 'DeviceLostError';
  /** WebGPU's `GPUDeviceLostInfo.reason`: 'destroyed' (destroyed on purpose) or 'unknown'. */
  reason: 'destroyed' | 'unknown';
}

/**
 * An allocation was refused: the wasm module's memory (4 GiB at most; one tensor holds at most
 * 4 GiB, and the browser may refuse to grow the memory before that) or the GPU's. Nothing was
 * left half-done: the runtime and its models work on for smaller inputs (fewer or shorter texts).
 */
export class OutOfMemoryError extends WebnluError {
  name: 'OutOfMemoryError';
  /** What was being allocated: a tensor with its name and shape (e.g. `tensor "attention.scores" of shape [1, 2, 30002, 30002]`), a GPU buffer, or a file. */
  what: string;
  /** The bytes it needed. */
  bytes: number;
}

/** Not available in this build or environment (a build without model bindings; a worker in Node). */
export class UnsupportedError extends WebnluError {
  name: 'UnsupportedError';
}

/** A model, tokenizer or runtime was used after `dispose()`. */
export class DisposedError extends WebnluError {
  name: 'DisposedError';
}

/** The Web Worker of worker mode failed to start, died, or was stopped by `dispose()`. */
export class WorkerError extends WebnluError {
  name: 'WorkerError';
}

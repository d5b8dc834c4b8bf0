// How the workers of a pool swap the parts of a tensor-parallel call (one small call computed
// by every worker at once, each its shard of every layer: crate/src/models/bert/tensor_parallel.rs).
// Each worker holds a MessagePort to every other (made by the pool at its start). A swap posts
// this worker's part to every peer and waits for theirs; the parts come back in shard order,
// its own included. Messages carry the call's run number: parts left over from a run that
// failed are skipped. A worker whose call fails tells its peers, so that none waits forever.

import { WebnluError } from './errors.js';

/** What the error of a worker says when another worker's failure stopped its part. */
export const RELAYED_FAILURE = 'of the tensor-parallel call failed';

export class ShardPeers {
  /** `ports[j]`: the port to shard j (null at `index`, this worker's own). */
  constructor(index, ports) {
    this.index = index;
    this.count = ports.length;
    this.ports = ports;
    this.inbox = ports.map(() => []); // per peer: messages not yet read, in arrival order
    this.waiting = ports.map(() => null); // per peer: the resolver of a read waiting for one
    ports.forEach((port, shard) => {
      if (port === null || port === undefined) return;
      port.onmessage = (event) => this.receive(shard, event.data);
    });
  }

  receive(shard, message) {
    const waiting = this.waiting[shard];
    if (waiting === null) {
      this.inbox[shard].push(message);
    } else {
      this.waiting[shard] = null;
      waiting(message);
    }
  }

  /** The next message from `shard`. */
  next(shard) {
    if (this.inbox[shard].length > 0) return Promise.resolve(this.inbox[shard].shift());
    return new Promise((resolve) => { this.waiting[shard] = resolve; });
  }

  /** Every shard's part of this swap of run `run`, in shard order (`part` is this worker's). */
  async gather(run, part) {
    this.ports.forEach((port) => port?.postMessage({ run, part }));
    return Promise.all(this.ports.map(async (port, shard) => {
      if (port === null || port === undefined) return part;
      for (;;) {
        const message = await this.next(shard);
        if (message.run !== run) continue; // left over from an earlier run that failed
        if (message.failed !== undefined) throw new WebnluError(`worker ${shard} ${RELAYED_FAILURE}: ${message.failed}`);
        return message.part;
      }
    }));
  }

  /** Tells every peer that this worker's part of run `run` failed with `error`. */
  fail(run, error) {
    const failed = error instanceof Error ? error.message : String(error);
    this.ports.forEach((port) => port?.postMessage({ run, failed }));
  }

  close() {
    this.ports.forEach((port) => port?.close());
  }
}

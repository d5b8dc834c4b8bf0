// The resident memory of a process tree, read from /proc: what the big-model scripts report as
// a browser's peak (Chromium's browser, renderer, GPU and worker processes are all descendants
// of the Node process that launched it). Shared pages count once per process, so a sum is an
// upper bound.

import { readdirSync, readFileSync } from 'node:fs';

/** The parent pid of `pid`, or -1 when it is gone. */
function parentOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch { return -1; }
}

/** VmRSS of `pid` in KiB (0 when it is gone). */
function rssKib(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return line ? Number(line.split(/\s+/)[1]) : 0;
  } catch { return 0; }
}

/** Sum of VmRSS (KiB) of every descendant of this process (not this process itself). */
export function descendantsRss() {
  const pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
  const parent = new Map(pids.map((pid) => [pid, parentOf(pid)]));
  const ours = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) if (!ours.has(pid) && ours.has(ppid)) { ours.add(pid); grew = true; }
  }
  ours.delete(process.pid);
  let sum = 0;
  for (const pid of ours) sum += rssKib(pid);
  return sum;
}

/**
 * Samples `descendantsRss` every `ms` until `stop()`; `stop()` returns the peak in KiB (at least
 * one sample, taken at the start).
 */
export function samplePeakRss(ms = 50) {
  let peak = descendantsRss();
  const timer = setInterval(() => { peak = Math.max(peak, descendantsRss()); }, ms);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, descendantsRss());
    },
  };
}

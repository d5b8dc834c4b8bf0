// The native CLI as the reference of the browser tests: `webnlu fill-mask|embed|similarity|
// classify-tokens --model DIR --device cpu`, one text per stdin line, one JSON object per output
// line; and the comparisons of results with it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ROOT } from './browser-session.mjs';

export const CLI = process.env.WEBNLU_CLI ?? `${ROOT}target/debug/webnlu`;

/** Throws with the command that builds the CLI when it is missing. */
export function requireCli() {
  if (!existsSync(CLI)) throw new Error(`missing ${CLI}: run \`cargo build --bin webnlu\` (or set WEBNLU_CLI)`);
}

/** Runs `webnlu <command> --model <dir> --device cpu [extra]` on `lines`; the parsed JSON lines. */
export function cli(command, modelDir, lines, extra = []) {
  const output = execFileSync(CLI, [command, '--model', modelDir, '--device', 'cpu', ...extra], {
    input: `${lines.join('\n')}\n`, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  return output.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line));
}

/** The largest |a[i] - b[i]| over two equally long number lists (throws when the lengths differ). */
export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** (C+1,) the UTF-16 index of every code-point boundary of `text`. */
function utf16AtCodePoint(text) {
  const at = [0];
  for (const character of text) at.push(at[at.length - 1] + character.length);
  return at;
}

/**
 * Asserts `got` (classifyTokens of `text`) equals `want` (the CLI's tokens): tokens and labels
 * equal, offsets equal after code points -> UTF-16, scores within `tolerance`; returns the
 * largest score difference.
 */
export function assertTokensEqualCli(got, want, text, tolerance, label) {
  assert.equal(got.length, want.length, `${label}: token count of ${JSON.stringify(text)}`);
  const at = utf16AtCodePoint(text);
  let maxDiff = 0;
  got.forEach((t, i) => {
    const w = want[i];
    assert.deepEqual([t.token, t.start, t.end, t.label], [w.token, at[w.start], at[w.end], w.label], `${label}: token ${i} of ${JSON.stringify(text)}`);
    maxDiff = Math.max(maxDiff, Math.abs(t.score - w.score));
  });
  assert.ok(maxDiff <= tolerance, `${label}: scores differ by ${maxDiff} (> ${tolerance})`);
  return maxDiff;
}

// The TypeScript declarations of the package (pkg/index.d.ts) type-check the documented usage
// (tests/node/types/usage.ts, tsc --strict) and reject wrong calls (types/misuse.ts).
//
// Needs: pkg/ (make pkg), tsc (tests/node_modules, npm ci in tests/).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = `${ROOT}tests/node_modules/.bin/tsc`;
const TYPES = `${ROOT}tests/node/types`;
for (const [file, how] of [[`${ROOT}pkg/index.d.ts`, 'make pkg'], [TSC, 'bash tests/setup/setup.sh (npm ci in tests/)']]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}

/** tsc -p on one of the projects in tests/node/types: { status, output }. */
function tsc(project) {
  const run = spawnSync(TSC, ['-p', `${TYPES}/${project}`], { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

test('the documented usage type-checks with --strict', () => {
  const { status, output } = tsc('tsconfig.json');
  assert.equal(status, 0, output);
});

test('wrong calls are type errors', () => {
  const { status, output } = tsc('tsconfig.misuse.json');
  assert.notEqual(status, 0, 'misuse.ts type-checked');
  for (const line of [6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]) assert.match(output, new RegExp(`misuse\\.ts\\(${line},`), `no type error on line ${line}:\n${output}`);
});

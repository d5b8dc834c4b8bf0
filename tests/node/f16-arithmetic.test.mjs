// Runtime.create({ f16Arithmetic }) in Node (the CPU device: no WebGPU here): the option is
// accepted and routed, `device.f16Arithmetic` reports false (f16 arithmetic needs a GPU with
// shader-f16), an fp16 model's embeddings are exactly the default runtime's, and a value that is
// not a boolean is refused naming the option. The f16 path itself is tested natively on
// lavapipe (tests/rust/ops/f16_matmul.rs, tests/rust/tasks/f16_arithmetic.rs); SwiftShader, the
// browser tests' WebGPU, does not offer shader-f16.
//
// Needs: pkg/ (make pkg), tests/fixtures/models/all-minilm-l6-v2 (tests/setup/fetch-assets.sh).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MINILM = `${ROOT}tests/fixtures/models/all-minilm-l6-v2`;
for (const [file, how] of [
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${MINILM}/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2'],
]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}
const { Runtime, WebnluError } = await import(`${ROOT}pkg/index.js`);

const FILES = ['config.json', 'tokenizer.json', 'model.safetensors', 'modules.json'];
const localFiles = () => ({ files: Object.fromEntries(FILES.map((name) => [name, readFileSync(`${MINILM}/${name}`)])) });
const TEXTS = ['A quick brown fox jumps over the lazy dog.', 'Rain is expected over the weekend in the north.'];

test('f16Arithmetic is reported per device and the CPU ignores it', async () => {
  const plain = await Runtime.create({ device: 'cpu' });
  const asked = await Runtime.create({ device: 'cpu', f16Arithmetic: true });
  try {
    assert.equal(plain.device.f16Arithmetic, false);
    assert.equal(asked.device.f16Arithmetic, false, 'the CPU has no f16 path');
    const want = await (await plain.loadModel(localFiles(), { dtype: 'fp16' })).embed(TEXTS);
    const got = await (await asked.loadModel(localFiles(), { dtype: 'fp16' })).embed(TEXTS);
    assert.deepEqual(got, want);
  } finally {
    plain.dispose();
    asked.dispose();
  }
});

test('f16Arithmetic that is not a boolean is refused naming it', async () => {
  await assert.rejects(Runtime.create({ device: 'cpu', f16Arithmetic: 'yes' }), (error) => {
    assert.ok(error instanceof WebnluError, String(error));
    assert.match(error.message, /f16Arithmetic must be true or false, got "yes"/);
    return true;
  });
});

// `Runtime.create({ f16Arithmetic })` in real Chromium, in the package's three modes (the page's
// thread and `worker: true` on WebGPU, a `threads: 2` CPU pool): the option is routed and
// reported (`rt.device.f16Arithmetic`), and a non-boolean is refused with a WebnluError in each.
// SwiftShader, headless Chromium's WebGPU, does not offer `shader-f16` (asserted here, so this
// test says when that changes), so the f16 path itself cannot run in these browser tests: it
// reports false and an fp16 model's embeddings equal those without the option. The f16 kernel
// is tested natively on lavapipe (tests/rust/ops/f16_matmul.rs, tests/rust/tasks/f16_arithmetic.rs).
//
// Needs: pkg/ (make pkg), tests/fixtures/models/all-minilm-l6-v2 (tests/setup/fetch-assets.sh),
// /usr/bin/chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MODELS, ROOT, closeSession, openHarnessPage, openSession, requireFiles, unexpectedConsoleErrors } from './browser-session.mjs';

requireFiles([
  [`${ROOT}pkg/index.js`, 'make pkg'],
  [`${MODELS}/all-minilm-l6-v2/model.safetensors`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2'],
]);

let session;
const errors = [];
const notFound = [];

before(async () => {
  session = await openSession();
});

after(() => closeSession(session));

test('f16Arithmetic is routed in every mode, reported false without shader-f16, and checked', async () => {
  const page = await openHarnessPage(session, errors, notFound);
  const result = await page.evaluate(async () => {
    const { Runtime, WebnluError } = window.webnlu;
    const adapter = await navigator.gpu.requestAdapter();
    const out = { shaderF16: adapter.features.has('shader-f16'), modes: [] };
    for (const options of [{ device: 'gpu' }, { device: 'gpu', worker: true }, { device: 'cpu', threads: 2 }]) {
      const rt = await Runtime.create({ ...options, f16Arithmetic: true });
      const mode = { options, kind: rt.device.kind, threads: rt.device.threads, f16Arithmetic: rt.device.f16Arithmetic };
      rt.dispose();
      try {
        (await Runtime.create({ ...options, f16Arithmetic: 'yes' })).dispose();
        mode.refused = null;
      } catch (error) {
        mode.refused = { isWebnluError: error instanceof WebnluError, message: error.message };
      }
      out.modes.push(mode);
    }
    // The same fp16 model with and without the option on the page's thread (WebGPU).
    const texts = ['A man is eating food.', 'The girl is carrying a baby.'];
    const embed = async (f16Arithmetic) => {
      const rt = await Runtime.create({ device: 'gpu', f16Arithmetic });
      const model = await rt.loadModel('/models/all-minilm-l6-v2/', { dtype: 'fp16' });
      const vectors = (await model.embed(texts)).map((v) => Array.from(v));
      rt.dispose();
      return vectors;
    };
    out.plain = await embed(false);
    out.asked = await embed(true);
    return out;
  });
  await page.close();
  assert.equal(result.shaderF16, false, 'SwiftShader now offers shader-f16: test the f16 path here');
  assert.deepEqual(result.modes.map((m) => [m.kind, m.threads]), [['gpu', 1], ['gpu', 1], ['cpu', 2]]);
  for (const mode of result.modes) {
    assert.equal(mode.f16Arithmetic, false, JSON.stringify(mode));
    assert.ok(mode.refused?.isWebnluError, JSON.stringify(mode));
    assert.match(mode.refused.message, /f16Arithmetic must be true or false, got "yes"/);
  }
  assert.deepEqual(result.asked, result.plain);
  assert.deepEqual(unexpectedConsoleErrors(errors, notFound), []);
});

// The labs' numerics (web/labs/lab-math.js) on cases with known answers: cosine, the 2-D PCA
// (points on a plane inside 6-D keep their distances; the shares of variance), the seeded
// generator, word vectors from pieces, and BERT's 15% / 80-10-10 corruption.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { corrupt, cosine, cosineMatrix, pca2, seededRandom, wordVectorFrom } from '../../web/labs/lab-math.js';

test('cosine: parallel 1, orthogonal 0, opposite -1, a zero vector 0', () => {
  assert.equal(cosine([1, 2, 3], [2, 4, 6]).toFixed(12), '1.000000000000');
  assert.equal(cosine([1, 0], [0, 5]), 0);
  assert.equal(cosine([1, 1], [-1, -1]).toFixed(12), '-1.000000000000');
  assert.equal(cosine([0, 0], [1, 1]), 0);
  assert.deepEqual(cosineMatrix([[1, 0], [0, 1]]), [[1, 0], [0, 1]]);
});

test('pca2: points on a plane inside 6-D keep their pairwise distances; the variance is all in two components', () => {
  const random = seededRandom(3);
  // an orthonormal pair u, v in 6-D, and points c + a u + b v
  const u = [1, 1, 0, 0, 1, 1].map((x) => x / 2);
  const v = [1, -1, 0, 0, -1, 1].map((x) => x / 2);
  const flat = Array.from({ length: 7 }, () => [4 * random() - 2, random() - 0.5]);
  const points = flat.map(([a, b]) => u.map((x, j) => 3 + a * x + b * v[j]));
  const { points: projected, explained } = pca2(points);
  const distance = (p, q) => Math.hypot(...p.map((x, j) => x - q[j]));
  for (let i = 0; i < points.length; i++) {
    for (let j = 0; j < i; j++) {
      assert.ok(Math.abs(distance(projected[i], projected[j]) - distance(points[i], points[j])) < 1e-9, `distance ${i}-${j}`);
    }
  }
  assert.ok(Math.abs(explained[0] + explained[1] - 1) < 1e-9, `shares ${explained}`);
  assert.ok(explained[0] >= explained[1]);
  assert.ok(projected[0][0] >= 0 && projected[0][1] >= 0, 'signs fixed by the first point');
});

test('seededRandom: the same seed gives the same draws, in [0, 1)', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const draws = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(draws, Array.from({ length: 1000 }, () => b()));
  assert.ok(draws.every((x) => x >= 0 && x < 1));
  assert.notDeepEqual(draws.slice(0, 5), Array.from({ length: 5 }, seededRandom(43)));
});

test('wordVectorFrom: the mean of the pieces inside the word; special tokens (0, 0) never count', () => {
  const state = Float32Array.from([9, 9, 1, 2, 3, 4, 5, 6, 9, 9]); // (T=5, C=2)
  const offsets = Uint32Array.from([0, 0, 0, 3, 3, 5, 6, 8, 0, 0]); // [CLS] un ##bel next [SEP]
  const { vector, pieces } = wordVectorFrom(state, 2, offsets, 0, 5);
  assert.deepEqual([...vector], [2, 3]);
  assert.equal(pieces, 2);
});

test('corrupt: round(15%) positions, about 80% [MASK], 10% random, 10% unchanged over many seeds', () => {
  const tokens = Array.from({ length: 40 }, (_, i) => `t${i}`);
  const counts = { mask: 0, random: 0, kept: 0 };
  for (let seed = 1; seed <= 2000; seed++) {
    const chosen = corrupt(tokens, seed, 100);
    assert.equal(chosen.length, 6);
    assert.equal(new Set(chosen.map((c) => c.index)).size, 6, 'without replacement');
    for (const c of chosen) {
      counts[c.kind]++;
      assert.equal(c.randomId === null, c.kind !== 'random');
      if (c.randomId !== null) assert.ok(c.randomId >= 0 && c.randomId < 100);
    }
  }
  const total = 6 * 2000;
  // 12,000 Bernoulli draws: one standard deviation of a 10% share is 0.27 points; 1.5 points is > 5 sigma
  assert.ok(Math.abs(counts.mask / total - 0.8) < 0.015, JSON.stringify(counts));
  assert.ok(Math.abs(counts.random / total - 0.1) < 0.015, JSON.stringify(counts));
  assert.ok(Math.abs(counts.kept / total - 0.1) < 0.015, JSON.stringify(counts));
  assert.deepEqual(corrupt(tokens, 7, 100), corrupt(tokens, 7, 100), 'the same seed, the same draw');
  assert.equal(corrupt(['a', 'b'], 1, 10).length, 1, 'at least one position');
});

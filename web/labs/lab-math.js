// The small numerics of the labs: cosine similarity, a 2-D PCA, a seeded random generator, and
// the grouping of WordPiece vectors into word vectors, BERT's masked-LM corruption.
// No imports: Node tests load this file as it is (tests/node/labs-math.test.mjs).

/** Cosine of two equally long vectors (0 when one is all zeros). */
export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** (N, N) cosines of N vectors, as rows of numbers. */
export function cosineMatrix(vectors) {
  return vectors.map((a) => vectors.map((b) => cosine(a, b)));
}

/**
 * The first two principal components of N vectors of width C: `{ points: [[x, y], ...],
 * explained: [share1, share2] }` (share of the total variance). Power iteration on the (N, N)
 * Gram matrix of the centred vectors (N is small here), with deflation; signs are fixed so that
 * the first point has a non-negative coordinate on each axis (a stable picture).
 */
export function pca2(vectors) {
  const n = vectors.length;
  const width = vectors[0]?.length ?? 0;
  const mean = new Float64Array(width);
  for (const v of vectors) for (let j = 0; j < width; j++) mean[j] += v[j] / n;
  const centred = vectors.map((v) => Float64Array.from(v, (x, j) => x - mean[j])); // (N, C)
  const gram = centred.map((a) => centred.map((b) => a.reduce((s, x, j) => s + x * b[j], 0))); // (N, N)
  const total = gram.reduce((s, row, i) => s + row[i], 0);
  const axes = [];
  const values = [];
  for (let k = 0; k < 2; k++) {
    let u = Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % 13) / 13); // (N) fixed start
    let value = 0;
    for (let step = 0; step < 200; step++) {
      const next = gram.map((row) => row.reduce((s, g, j) => s + g * u[j], 0));
      const norm = Math.hypot(...next);
      if (norm === 0) break;
      value = norm;
      u = next.map((x) => x / norm);
    }
    axes.push(u);
    values.push(value);
    // deflate: G -= value * u u^T
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) gram[i][j] -= value * u[i] * u[j];
  }
  // coordinates of point i on axis k: sqrt(value_k) * u_k[i]
  const points = Array.from({ length: n }, (_, i) => axes.map((u, k) => Math.sqrt(Math.max(values[k], 0)) * u[i]));
  for (let k = 0; k < 2; k++) {
    if (n > 0 && points[0][k] < 0) for (const p of points) p[k] = -p[k];
  }
  return { points, explained: values.map((v) => (total > 0 ? v / total : 0)) };
}

/** A seeded generator of numbers in [0, 1) (mulberry32): the same seed, the same draws. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The vector of a word at one hidden state: the mean of the rows (tokens) of `state` (T, C)
 * whose offsets fall inside [start, end) (special tokens, offsets 0..0, never do).
 */
export function wordVectorFrom(state, width, offsets, start, end) {
  const vector = new Float32Array(width);
  let pieces = 0;
  for (let t = 0; t < offsets.length / 2; t++) {
    const [s, e] = [offsets[2 * t], offsets[2 * t + 1]];
    if (e > s && s >= start && e <= end) {
      for (let j = 0; j < width; j++) vector[j] += state[t * width + j];
      pieces++;
    }
  }
  for (let j = 0; j < width; j++) vector[j] /= Math.max(pieces, 1);
  return { vector, pieces };
}

/**
 * BERT's corruption of `tokens` (the text's tokens, specials left out) with `seed`: round(15%)
 * positions (at least 1) drawn without replacement; each becomes [MASK] (80%), a random
 * vocabulary id (10%) or stays (10%). [{ index, kind: 'mask' | 'random' | 'kept', randomId }].
 */
export function corrupt(tokens, seed, vocabSize) {
  const random = seededRandom(seed);
  const order = tokens.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const count = Math.max(1, Math.round(0.15 * tokens.length));
  return order.slice(0, count).sort((a, b) => a - b).map((index) => {
    const r = random();
    const kind = r < 0.8 ? 'mask' : r < 0.9 ? 'random' : 'kept';
    return { index, kind, randomId: kind === 'random' ? Math.floor(random() * vocabSize) : null };
  });
}

// Where the fine-tuning view's examples come from: the movie-review sentences of Hutto &
// Gilbert (ICWSM 2014; served by `make demo` from the vaderSentiment package) as a balanced,
// seeded sample. The file is read by the package's `parseExamples` (the Rust parser the CLI
// uses), as are the visitor's own examples (fine-tune-view.js).

import init, { parseExamples } from 'webnlu';

export const MOVIE_REVIEWS_URL = '/models/vader/movieReviewSnippets_GroundTruth.txt';

/** A seeded shuffle (mulberry32), so the same sample and split come back on every visit. */
export function shuffled(items, seed) {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * `count` movie-review sentences, half positive and half negative (the sign of the mean human
 * rating, -4..4; ratings of exactly 0 are left out), picked by a seeded shuffle.
 */
export async function movieReviews(count, seed = 1, url = MOVIE_REVIEWS_URL) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`the movie reviews are not served (${MOVIE_REVIEWS_URL}: HTTP ${response.status}); run \`make demo\`, which prepares them`);
  }
  const text = await response.text();
  await init();
  const all = parseExamples(text, { format: 'rated' });
  const mixed = shuffled(all, seed);
  const half = Math.floor(count / 2);
  const positive = mixed.filter((example) => example.label === 'positive').slice(0, half);
  const negative = mixed.filter((example) => example.label === 'negative').slice(0, count - half);
  return shuffled([...positive, ...negative], seed + 1);
}

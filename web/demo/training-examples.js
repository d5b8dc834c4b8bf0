// Where the fine-tuning view's examples come from: the movie-review sentences of Hutto &
// Gilbert (ICWSM 2014; served by `make demo` from the vaderSentiment package) as a balanced,
// seeded sample, or the visitor's own examples (pasted lines or a CSV file).

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
  const all = [];
  for (const line of (await response.text()).split(/\r?\n/)) {
    const [, rating, text] = line.split('\t');
    const value = Number(rating);
    if (text === undefined || !Number.isFinite(value) || value === 0) continue;
    all.push({ text: text.trim(), label: value > 0 ? 'positive' : 'negative' });
  }
  const mixed = shuffled(all, seed);
  const half = Math.floor(count / 2);
  const positive = mixed.filter((example) => example.label === 'positive').slice(0, half);
  const negative = mixed.filter((example) => example.label === 'negative').slice(0, count - half);
  return shuffled([...positive, ...negative], seed + 1);
}

/** The fields of one CSV record (RFC 4180 quotes), and where the next one starts. */
function csvRecord(text, at) {
  const fields = [];
  let field = '';
  let quoted = false;
  for (; at < text.length; at++) {
    const c = text[at];
    if (quoted) {
      if (c === '"' && text[at + 1] === '"') { field += '"'; at++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') { fields.push(field); field = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[at + 1] === '\n') at++;
      at++;
      break;
    } else field += c;
  }
  fields.push(field);
  return { fields, next: at };
}

/**
 * The visitor's examples: a CSV whose header names `text` and `label` columns, else one example
 * per line as `text<TAB>label` or `text,label` (the label after the last comma).
 * @throws Error naming the line that has no label.
 */
export function parseExamples(text) {
  const firstLine = text.split(/\r?\n/, 1)[0].toLowerCase();
  const header = csvRecord(firstLine, 0).fields.map((name) => name.trim());
  if (header.includes('text') && header.includes('label')) {
    const [textColumn, labelColumn] = [header.indexOf('text'), header.indexOf('label')];
    const examples = [];
    let at = csvRecord(text, 0).next;
    let row = 1;
    while (at < text.length) {
      const { fields, next } = csvRecord(text, at);
      at = next;
      row++;
      if (fields.length === 1 && fields[0].trim() === '') continue;
      const [t, l] = [fields[textColumn]?.trim(), fields[labelColumn]?.trim()];
      if (!t || !l) throw new Error(`CSV row ${row}: needs a text and a label`);
      examples.push({ text: t, label: l });
    }
    return examples;
  }
  const examples = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const cut = line.includes('\t') ? line.lastIndexOf('\t') : line.lastIndexOf(',');
    const [t, l] = [line.slice(0, cut).trim(), line.slice(cut + 1).trim()];
    if (cut < 0 || t === '' || l === '') throw new Error(`line ${i + 1} has no label: write "text,label" or "text<TAB>label"`);
    examples.push({ text: t, label: l });
  });
  return examples;
}

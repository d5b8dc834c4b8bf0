// Lab 5's three datasets, small seeded subsets of what `make demo` serves:
//   sentiment: movie-review sentences (Hutto & Gilbert, ICWSM 2014) labelled by the sign of the
//              mean human rating, half positive, half negative (the demo's sample);
//   rating:    the same sentences with the rating itself, a number in [-4, 4] (regression);
//   ner:       tweets of WNUT 2016 (named entities, 10 types, IOB2 tags), sentences that have an
//              entity and at most 25 words.
// And each subset as the text file the CLI reads (TSV for train-head, CoNLL for train-tokens), so
// a student (and the browser test) can run the same training with `webnlu`.

import { MOVIE_REVIEWS_URL, movieReviews, shuffled } from '/demo/training-examples.js';

export const NER_URL = '/models/wnut16/ner.txt';
const NER_MAX_WORDS = 25;

async function fetchText(url, prepare) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} is not served (HTTP ${response.status}); run \`make demo\`, which prepares ${prepare}`);
  return response.text();
}

/** `count` movie-review sentences with their mean human rating (-4..4), seeded. */
export async function ratedReviews(count, seed) {
  const all = [];
  for (const line of (await fetchText(MOVIE_REVIEWS_URL, 'the movie reviews (vader)')).split(/\r?\n/)) {
    const [, rating, text] = line.split('\t');
    const value = Number(rating);
    if (text === undefined || rating === '' || !Number.isFinite(value)) continue;
    all.push({ text: text.trim(), label: value });
  }
  return shuffled(all, seed).slice(0, count);
}

/** The sentences of a CoNLL text (word, label per line; a blank line between sentences). */
export function conllSentences(text) {
  const sentences = [];
  let words = [];
  let labels = [];
  const flush = () => { if (words.length > 0) sentences.push({ words, labels }); words = []; labels = []; };
  for (const line of text.split(/\r?\n/)) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === '' || fields[0] === '-DOCSTART-') { flush(); continue; }
    if (fields.length < 2) throw new Error(`${NER_URL}: the line “${line}” has no label`);
    words.push(fields[0]);
    labels.push(fields.at(-1));
  }
  flush();
  return sentences;
}

/** `count` WNUT 2016 sentences with at least one entity and at most 25 words, seeded. */
export async function nerSentences(count, seed) {
  const all = conllSentences(await fetchText(NER_URL, 'the WNUT 2016 tweets (wnut16)'))
    .filter((s) => s.words.length <= NER_MAX_WORDS && s.labels.some((label) => label !== 'O'));
  return shuffled(all, seed).slice(0, count);
}

/** The three tasks of the lab: what the head predicts, how the examples come, how the CLI reads them. */
export const TASKS = {
  sentiment: {
    title: 'Sentiment (sequence classification)',
    load: (count, seed) => movieReviews(count, seed),
    file: 'sentiment.tsv',
    toFile: (examples) => examples.map((e) => `${e.text}\t${e.label}`).join('\n') + '\n',
  },
  rating: {
    title: 'Rating (regression, −4 … 4)',
    load: (count, seed) => ratedReviews(count, seed),
    file: 'rating.tsv',
    toFile: (examples) => examples.map((e) => `${e.text}\t${e.label}`).join('\n') + '\n',
  },
  ner: {
    title: 'Named entities (token classification)',
    load: (count, seed) => nerSentences(count, seed),
    file: 'ner.conll',
    toFile: (examples) => examples.map((e) => e.words.map((w, i) => `${w}\t${e.labels[i]}`).join('\n')).join('\n\n') + '\n',
  },
};

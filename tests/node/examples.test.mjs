// Node tests of `parseExamples`, the package's door to the Rust examples parser of the CLI
// (crate/src/tasks/examples.rs; its formats are tested in tests/rust/tasks/examples.rs): what
// the demo reads (VADER's rated file, pasted `text,label` lines, a CSV), pairs, and the errors.
//
// Needs: pkg/ (make pkg) and tests/fixtures/models/vader (tests/setup/fetch-assets.sh vader).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MOVIE_REVIEWS = `${ROOT}tests/fixtures/models/vader/movieReviewSnippets_GroundTruth.txt`;

if (!existsSync(`${ROOT}pkg/index.js`)) throw new Error('pkg/ is missing: run `make pkg`');
const { default: init, parseExamples, WebnluError } = await import(`${ROOT}pkg/index.js`);

// called here, at import: `before` runs ahead of every test
const errorBeforeInit = (() => {
  try {
    parseExamples('good,positive');
    return null;
  } catch (error) {
    return error;
  }
})();

test('before init() it says so', () => {
  assert.ok(errorBeforeInit instanceof WebnluError && /init\(\)/.test(errorBeforeInit.message), String(errorBeforeInit));
});

before(async () => {
  await init();
});

test('pasted lines: the label after the last tab, else after the last comma; trimmed', () => {
  assert.deepEqual(parseExamples('a gorgeous, moving film ,positive\r\nso dull\tnegative\n\n'), [
    { text: 'a gorgeous, moving film', label: 'positive' },
    { text: 'so dull', label: 'negative' },
  ]);
});

test('a CSV with text and label columns (any order, quoted fields), and pairs from TSV', () => {
  assert.deepEqual(parseExamples('label,Text\npositive,"good, ""really"""\nnegative,bad\n'), [
    { text: 'good, "really"', label: 'positive' },
    { text: 'bad', label: 'negative' },
  ]);
  assert.deepEqual(parseExamples('text\ttext_pair\tlabel\nA man sleeps.\tA person rests.\tentailment\n', { format: 'tsv' }), [
    { text: 'A man sleeps.', pair: 'A person rests.', label: 'entailment' },
  ]);
});

test("VADER's movie reviews read as the CLI reads them: the rating's sign, 0 left out", { skip: !existsSync(MOVIE_REVIEWS) && 'no vader fixture' }, () => {
  const examples = parseExamples(readFileSync(MOVIE_REVIEWS, 'utf8'), { format: 'rated' });
  // the counts of tests/rust/tasks/train.rs (the_movie_review_file_reads_as_signed_ratings)
  assert.equal(examples.filter((e) => e.label === 'positive').length, 5242);
  assert.equal(examples.filter((e) => e.label === 'negative').length, 5326);
  assert.ok(examples[0].text.startsWith('The Rock is destined'));
  assert.ok(examples.every((e) => e.text === e.text.trim() && e.pair === undefined));
});

test('bad input is a WebnluError naming the line or the option', () => {
  for (const [text, options, expected] of [
    ['good,positive\nno label here\n', undefined, /line 2: no label/],
    ['good,positive\nbad,\n', undefined, /line 2: empty label/],
    ['text,label\nfine,pos\n"",neg\n', undefined, /line 3: empty text/],
    ['\n \n', undefined, /no examples/],
    ['1\tgood\tx\n', { format: 'rated' }, /line 1/],
    ['good,positive', { format: 'json' }, /auto, rated, tsv, csv or lines/],
    ['good,positive', { format: 3 }, /format must be a string/],
  ]) {
    assert.throws(() => parseExamples(text, options), (error) => error instanceof WebnluError && expected.test(error.message),
      `${JSON.stringify(text)} ${JSON.stringify(options)}`);
  }
  assert.throws(() => parseExamples(42), /text must be a string/);
});

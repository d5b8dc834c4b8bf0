#!/usr/bin/env node
// Node tokenizer benchmark, bench-only (not in `make test` or CI): the wasm WordPiece Tokenizer
// of pkg/ against transformers.js' tokenizer (AutoTokenizer on the same tokenizer.json; pure JS,
// @huggingface/tokenizers), one text per call, on one thread. Both without truncation or
// padding (tokenizer.json of all-MiniLM-L6-v2 pads and truncates to 128; transformers.js'
// encode does neither), both with [CLS]/[SEP]. Throughput in MB/s of UTF-8 input, median over
// --repeat passes after a warm-up pass; before timing, checks that both give the same ids on a
// sample of lines (--check N, default every line) and reports the lines that differ.
//
//   bash tests/bench/setup-browser-bench.sh
//   node tests/bench/tokenizer-bench.mjs [--tokenizer DIR] [--input FILE] [--pkg DIR]
//       [--repeat N] [--check N] [--json]
//
// --tokenizer: a folder with tokenizer.json (+ tokenizer_config.json), default
// tests/fixtures/models/all-minilm-l6-v2; --input: one text per line ('\n' only), default the
// text column of the four VADER ground-truth files (tests/fixtures/models/vader: tweets, movie
// reviews, Amazon reviews, NYT editorials; 23,703 texts, 2.39 MB); --pkg: another build of the
// package (default pkg/). Ratio: webnlu MB/s / transformers.js MB/s (above 1: webnlu faster).

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BENCH = `${ROOT}tests/bench`;

const { values: args } = parseArgs({
  options: {
    tokenizer: { type: 'string', default: `${ROOT}tests/fixtures/models/all-minilm-l6-v2` },
    input: { type: 'string' },
    pkg: { type: 'string', default: `${ROOT}pkg` },
    repeat: { type: 'string', default: '5' },
    check: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

const tokenizerDir = resolve(args.tokenizer);
const pkgDir = resolve(args.pkg);
const tjsEntry = `${BENCH}/node_modules/@huggingface/transformers/dist/transformers.node.mjs`;
for (const [file, how] of [
  [`${tokenizerDir}/tokenizer.json`, 'bash tests/setup/fetch-assets.sh all-minilm-l6-v2 (or --tokenizer DIR)'],
  [`${pkgDir}/index.js`, 'bash web/build-package.sh (or --pkg DIR)'],
  [tjsEntry, 'bash tests/bench/setup-browser-bench.sh'],
]) {
  if (!existsSync(file)) throw new Error(`missing ${file}: run \`${how}\``);
}

/** The texts: --input's lines, or the third column of the VADER ground-truth files. */
function readCorpus() {
  if (args.input) {
    return { name: args.input, lines: readFileSync(args.input, 'utf8').split('\n').filter((line) => line.length > 0) };
  }
  const vader = `${ROOT}tests/fixtures/models/vader`;
  if (!existsSync(vader)) throw new Error(`missing ${vader}: run \`bash tests/setup/fetch-assets.sh vader\` (or --input FILE)`);
  const lines = [];
  for (const file of readdirSync(vader).filter((name) => name.endsWith('_GroundTruth.txt')).sort()) {
    for (const row of readFileSync(`${vader}/${file}`, 'utf8').split('\n')) {
      const text = row.split('\t').slice(2).join('\t').trim();
      if (text.length > 0) lines.push(text);
    }
  }
  return { name: 'VADER ground truth (4 files)', lines };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const corpus = readCorpus();
const bytes = corpus.lines.reduce((sum, line) => sum + Buffer.byteLength(line, 'utf8'), 0);
const repeat = Number(args.repeat);
const checkCount = args.check === undefined ? corpus.lines.length : Math.min(Number(args.check), corpus.lines.length);

// webnlu: the wasm Tokenizer of the package.
const webnlu = await import(pathToFileURL(`${pkgDir}/index.js`).href);
await webnlu.init();
const wn = webnlu.Tokenizer.fromTokenizerJson(readFileSync(`${tokenizerDir}/tokenizer.json`, 'utf8'));
const wnEncode = (text) => wn.encode(text, { maxLength: false, padding: false }).ids;

// transformers.js: AutoTokenizer on the same folder, as a local model (no network).
const { AutoTokenizer, env } = await import(pathToFileURL(tjsEntry).href);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = `${dirname(tokenizerDir)}/`;
const tjs = await AutoTokenizer.from_pretrained(basename(tokenizerDir));
const tjsEncode = (text) => tjs.encode(text);

// Same ids on the sample?
const mismatches = [];
for (let i = 0; i < checkCount; i++) {
  const a = Array.from(wnEncode(corpus.lines[i]));
  const b = tjsEncode(corpus.lines[i]);
  if (a.length !== b.length || a.some((id, k) => id !== b[k])) mismatches.push({ line: i, text: corpus.lines[i], webnlu: a, transformersjs: b });
}

const encoders = { webnlu: wnEncode, transformersjs: tjsEncode };
const tokens = {};
for (const [name, encode] of Object.entries(encoders)) { // warm-up pass, counting tokens
  tokens[name] = 0;
  for (const line of corpus.lines) tokens[name] += encode(line).length;
}
// The two alternate pass by pass, so that a busy machine slows both alike.
const passes = { webnlu: [], transformersjs: [] };
for (let r = 0; r < repeat; r++) {
  for (const [name, encode] of Object.entries(encoders)) {
    const started = performance.now();
    for (const line of corpus.lines) encode(line);
    passes[name].push((performance.now() - started) / 1000);
  }
}
const results = {};
for (const name of Object.keys(encoders)) {
  const seconds = median(passes[name]);
  results[name] = { seconds, mb_per_s: bytes / 1e6 / seconds, tokens_per_s: tokens[name] / seconds, tokens: tokens[name], passes_s: passes[name] };
}
const w = results.webnlu;
const t = results.transformersjs;
const summary = {
  bench: 'tokenizer', corpus: corpus.name, lines: corpus.lines.length, bytes, repeat,
  webnlu: { mb_per_s: w.mb_per_s, tokens_per_s: w.tokens_per_s, median_s: w.seconds, passes_s: w.passes_s, tokens: w.tokens },
  transformersjs: {
    version: env.version, mb_per_s: t.mb_per_s, tokens_per_s: t.tokens_per_s, median_s: t.seconds, passes_s: t.passes_s, tokens: t.tokens,
  },
  ratio_webnlu_over_transformersjs_mb_per_s: Number((w.mb_per_s / t.mb_per_s).toFixed(3)),
  ids_checked_lines: checkCount,
  ids_mismatched_lines: mismatches.length,
  node: process.version,
};
if (!args.json) {
  console.log(`corpus: ${corpus.name}: ${corpus.lines.length} lines, ${(bytes / 1e6).toFixed(2)} MB; one text per call, median of ${repeat} passes after a warm-up`);
  console.log('                   MB/s   tokens/s');
  console.log(`webnlu (wasm)   ${w.mb_per_s.toFixed(2).padStart(7)} ${Math.round(w.tokens_per_s).toString().padStart(10)}`);
  console.log(`transformers.js ${t.mb_per_s.toFixed(2).padStart(7)} ${Math.round(t.tokens_per_s).toString().padStart(10)}   (${env.version})`);
  console.log(`webnlu / transformers.js: ${summary.ratio_webnlu_over_transformersjs_mb_per_s}x`);
  console.log(`same ids: ${checkCount - mismatches.length} of ${checkCount} lines checked`);
  for (const m of mismatches.slice(0, 3)) {
    console.log(`  line ${m.line}: ${JSON.stringify(m.text.slice(0, 120))}\n    webnlu ${JSON.stringify(m.webnlu.slice(0, 40))}\n    tjs    ${JSON.stringify(m.transformersjs.slice(0, 40))}`);
  }
}
console.log(JSON.stringify(summary));
wn.free();
if (w.tokens !== t.tokens) console.error(`note: token counts differ (${w.tokens} vs ${t.tokens})`);

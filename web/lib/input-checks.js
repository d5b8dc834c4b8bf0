// Checks of model-task inputs beyond `checkText`'s (wasm-module.js): the longest text a task
// takes, and what a list of training examples may not mix. Errors name the item.

import { WebnluError } from './errors.js';
import { checkText, checkTexts } from './wasm-module.js';

/**
 * Classification labels are either all names (strings) or all class indices (integers): a mix
 * would make `1` and `'1'` two different classes of one head without a word. `name`: the
 * list's name in errors.
 */
export function checkLabelTypes(examples, name) {
  const kindOf = (label) => (typeof label === 'string' ? 'a string' : 'a number');
  const first = kindOf(examples[0].label);
  const other = examples.findIndex((example) => kindOf(example.label) !== first);
  if (other >= 0) {
    throw new WebnluError(`${name} mixes label types: ${name}[0].label is ${first} (${JSON.stringify(examples[0].label)}) but ` +
      `${name}[${other}].label is ${kindOf(examples[other].label)} (${JSON.stringify(examples[other].label)}); ` +
      'give every label as a name (string) or every label as a class index (integer)');
  }
}

/**
 * The longest text a model task takes, in UTF-16 code units (JavaScript's `length`): about
 * 200,000 words, which a model reads as some 500 windows of 512 tokens (minutes of work for a
 * base-size model on the CPU). A longer text is refused before it is sent: split it, or
 * classify its beginning. The tokenizer alone takes longer texts.
 */
export const MAX_TASK_TEXT_LENGTH = 1_000_000;

/** `checkText`, and not longer than MAX_TASK_TEXT_LENGTH. */
export function checkTaskText(text, name) {
  checkText(text, name);
  if (text.length > MAX_TASK_TEXT_LENGTH) {
    throw new WebnluError(`${name} is ${text.length} characters long, over the ${MAX_TASK_TEXT_LENGTH} a model task takes per text ` +
      '(it would be read as hundreds of windows); split it into parts, or pass its beginning');
  }
}

/** `checkTexts` with `checkTaskText`'s limit on each text. */
export function checkTaskTexts(texts, name) {
  checkTexts(texts, name);
  texts.forEach((text, i) => checkTaskText(text, `${name}[${i}]`));
}

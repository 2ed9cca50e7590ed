// Hash routing shared by the console and the portal: `#/path?query` → a view that returns
// the page's content. Views receive a context saying who is looking and what they may do.

import { h, replace, loading, errorBox } from './dom.js';
import { seg } from './api.js';

/**
 * Starts routing. `routes` = [[pattern, view]] with patterns like `/app/:app/msg/:msg`;
 * `ctx` is handed to every view (with `go`, `link` and `appLink` added here).
 */
export function startRouter(ctx, routes, main) {
  const compiled = routes.map(([pattern, view]) => {
    const names = [];
    const source = pattern.replace(/:([a-z]+)/g, (_, name) => {
      names.push(name);
      return '([^/]+)';
    });
    return { regex: new RegExp(`^${source}$`), names, view };
  });
  let generation = 0;

  ctx.link = (path) => `#${path}`;
  ctx.go = (path) => {
    if (window.location.hash === `#${path}`) render();
    else window.location.hash = path;
  };
  ctx.appLink = (app, rest = '') => (ctx.portal ? `#${rest || '/'}` : `#/app/${seg(app)}${rest}`);
  ctx.reload = () => render();

  async function render() {
    // In-page anchors such as the skip link are not routes.
    if (window.location.hash && !window.location.hash.startsWith('#/')) return;
    const hash = window.location.hash.startsWith('#/') ? window.location.hash.slice(1) : '/';
    const [path, search = ''] = hash.split('?');
    const query = new URLSearchParams(search);
    const mine = ++generation;
    for (const route of compiled) {
      const match = route.regex.exec(path);
      if (!match) continue;
      const params = {};
      route.names.forEach((name, index) => {
        params[name] = decodeURIComponent(match[index + 1]);
      });
      markCurrent(path);
      replace(main, loading());
      let content;
      try {
        content = await route.view(ctx, params, query);
      } catch (error) {
        content = h('section', {}, h('h1', { tabindex: '-1' }, 'This page could not be shown'), errorBox(error));
      }
      if (mine !== generation) return;
      replace(main, content);
      const title = main.querySelector('h1');
      document.title = `${title ? title.textContent : ''} · ${ctx.siteTitle}`;
      if (title && ctx.navigated) {
        title.setAttribute('tabindex', '-1');
        title.focus({ preventScroll: false });
      }
      ctx.navigated = true;
      return;
    }
    replace(main, h('section', {}, h('h1', { tabindex: '-1' }, 'Not found'), h('p', {}, 'There is no page at this address. '), h('a', { href: '#/' }, 'Back to the start')));
  }

  function markCurrent(path) {
    for (const link of document.querySelectorAll('nav a[data-section]')) {
      const section = link.dataset.section;
      const current = section === '/' ? path === '/' : path.startsWith(section);
      if (current) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  window.addEventListener('hashchange', render);
  render();
}

/** Builds a hash path with a query from an object (empty values left out). */
export function withQuery(path, values) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    for (const item of [value].flat()) {
      if (item !== undefined && item !== null && item !== '') query.append(name, item);
    }
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// Applications: a page of them at a time (keyset paging with the API's iterator), lookup by
// id or uid, search by name, and creation.

import { api, ApiError, seg } from '../api.js';
import { h, heading, empty, toast, responsive } from '../dom.js';
import { field, formError, onSubmit } from '../forms.js';
import { timeElement } from '../format.js';
import { withQuery } from '../router.js';

const PAGE = 50;
/** How many applications a name search reads at most. */
const SEARCH_LIMIT = 5000;

export async function applications(ctx, _params, query) {
  const search = (query.get('q') || '').trim();
  const page = h('section', {}, heading(1, 'Applications'));

  const box = field('Find an application', 'q', { type: 'search', value: search, hint: 'Its id (app_…), its uid, or part of its name.' });
  const searchForm = h('form', { class: 'toolbar', role: 'search' }, box, h('button', { type: 'submit', class: 'button' }, 'Find'), search ? h('a', { href: '#/apps', class: 'button subtle' }, 'Clear') : null);
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    ctx.go(withQuery('/apps', { q: box.control.value.trim() }));
  });
  page.append(searchForm, createForm(ctx));

  if (search) {
    page.append(await searchResults(ctx, search));
  } else {
    const list = await api('GET', '/app', { query: { limit: PAGE, iterator: query.get('iterator') } });
    page.append(table(ctx, list.data), pager(list, query));
  }
  return page;
}

async function searchResults(ctx, search) {
  try {
    const app = await api('GET', `/app/${seg(search)}`);
    return table(ctx, [app]);
  } catch (error) {
    if (!(error instanceof ApiError && (error.status === 404 || error.status === 422))) throw error;
  }
  const needle = search.toLowerCase();
  const found = [];
  let iterator;
  let read = 0;
  for (;;) {
    const list = await api('GET', '/app', { query: { limit: 250, iterator } });
    read += list.data.length;
    found.push(...list.data.filter((app) => app.name.toLowerCase().includes(needle) || (app.uid || '').toLowerCase().includes(needle)));
    if (list.done || !list.iterator || read >= SEARCH_LIMIT) {
      const note = list.done ? `${found.length} of ${read} applications match.` : `${found.length} matches among the first ${read} applications; look one up by id or uid to go beyond.`;
      return h('div', {}, h('p', { class: 'muted', role: 'status' }, note), table(ctx, found));
    }
    iterator = list.iterator;
  }
}

function table(ctx, apps) {
  if (!apps.length) return empty('No applications here yet.');
  return h('div', { class: 'table-wrap' }, responsive(h('table', {},
    h('caption', { class: 'visually-hidden' }, 'Applications'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'uid'), h('th', { scope: 'col' }, 'id'), h('th', { scope: 'col' }, 'Created'))),
    h('tbody', {}, apps.map((app) => h('tr', {},
      h('td', {}, h('a', { href: ctx.appLink(app.id) }, app.name || app.id)),
      h('td', {}, app.uid ? h('code', {}, app.uid) : '—'),
      h('td', {}, h('code', {}, app.id)),
      h('td', {}, timeElement(app.createdAt)),
    ))),
  )));
}

export function pager(list, query, path = null) {
  const base = path || window.location.hash.slice(1).split('?')[0];
  const keep = Object.fromEntries([...query.entries()].filter(([name]) => name !== 'iterator'));
  const links = [];
  if (query.get('iterator')) links.push(h('a', { class: 'button subtle', href: `#${withQuery(base, keep)}` }, '⇤ First page'));
  if (query.get('iterator') && list.prevIterator) links.push(h('a', { class: 'button subtle', href: `#${withQuery(base, { ...keep, iterator: list.prevIterator })}` }, '← Newer'));
  if (!list.done && list.iterator) links.push(h('a', { class: 'button subtle', href: `#${withQuery(base, { ...keep, iterator: list.iterator })}` }, 'Older →'));
  return links.length ? h('nav', { class: 'pager', 'aria-label': 'Pages' }, links) : h('span');
}

function createForm(ctx) {
  const name = field('Name', 'name', { required: true, placeholder: 'Acme Inc.' });
  const uid = field('uid (optional)', 'uid', { hint: 'Your own id for it, e.g. your customer id.', placeholder: 'acme' });
  const form = h('form', { class: 'stack', novalidate: true }, name, uid, formError(), h('button', { type: 'submit', class: 'button primary' }, 'Create application'));
  onSubmit(form, async () => {
    const body = { name: name.control.value.trim() };
    if (uid.control.value.trim()) body.uid = uid.control.value.trim();
    const app = await api('POST', '/app', { body });
    toast(`Application ${app.name} created.`, 'good');
    ctx.go(`/app/${seg(app.id)}`);
  });
  return h('details', { class: 'card create' }, h('summary', {}, 'New application'), form);
}

// API tokens: create (the token is shown once), list, revoke.

import { api, seg } from '../api.js';
import { h, heading, empty, toast, actionButton, responsive } from '../dom.js';
import { field, formError, onSubmit } from '../forms.js';
import { timeElement } from '../format.js';

export async function tokens(ctx) {
  const page = h('section', {}, heading(1, 'API tokens'));
  if (!ctx.features.has('/api/v1/auth/token')) {
    page.append(empty('This server manages tokens with `webhookd token create` only.'));
    return page;
  }
  const reveal = h('div', { 'aria-live': 'polite' });
  const name = field('Name', 'name', { required: true, placeholder: 'billing service', hint: 'Who or what uses it, so you know what to revoke.' });
  const form = h('form', { class: 'card stack', novalidate: true }, h('h2', {}, 'Create a token'), name, formError(), h('button', { type: 'submit', class: 'button primary' }, 'Create token'));
  onSubmit(form, async () => {
    const created = await api('POST', '/auth/token', { body: { name: name.control.value.trim() } });
    name.control.value = '';
    const value = h('code', { class: 'secret-value', id: 'new-token' }, created.token);
    const copy = h('button', { type: 'button', class: 'button' }, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(created.token);
        toast('Copied.', 'good');
      } catch {
        toast('Copying is not allowed here: select the token and copy it.', 'error');
      }
    });
    // The first token ends local mode: the node requires a token from then on. Sign in with
    // this one at once, so the page (and the token shown only once) stays.
    let signedIn = null;
    if (ctx.who && ctx.who.kind === 'local') {
      try {
        const session = await api('POST', '/auth/session', { body: { token: created.token }, quiet401: true });
        if (session && session.kind === 'operator') {
          ctx.signedIn(session);
          signedIn = h('p', {}, 'This node now requires a token, so local mode has ended; this page is signed in with this one. Revoking it signs you out.');
        }
      } catch {
        // Keep the token on screen; the sign-in page comes with the next call.
      }
    }
    reveal.replaceChildren(h('div', { class: 'callout callout-good' },
      h('p', {}, h('strong', {}, `Token “${created.name}” created. `), 'Copy it now: it is shown only this once.'),
      h('p', { class: 'secret' }, value, ' ', copy),
      signedIn));
    await refresh();
  });
  const listBox = h('div');
  async function refresh() {
    const list = await api('GET', '/auth/token', { query: { limit: 250 } });
    const items = list.data || list;
    if (!items.length) {
      listBox.replaceChildren(empty('No tokens made here yet. Tokens from WEBHOOKD_API_TOKENS are not listed.'));
      return;
    }
    listBox.replaceChildren(h('div', { class: 'table-wrap' }, responsive(h('table', {},
      h('caption', {}, 'Tokens'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'id'), h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', {}, items.map((token) => h('tr', {},
        h('td', {}, token.name || '—'),
        h('td', {}, h('code', {}, token.id)),
        h('td', {}, timeElement(token.createdAt)),
        h('td', {}, actionButton('Revoke', async () => {
          await api('DELETE', `/auth/token/${seg(token.id)}`);
          toast('Token revoked.', 'good');
          await refresh();
        }, { tone: 'danger', confirmText: `Revoke the token “${token.name}”? Whatever uses it stops working at once.` })))))))));
  }
  await refresh();
  page.append(reveal, form, h('h2', {}, 'Tokens'), listBox);
  return page;
}

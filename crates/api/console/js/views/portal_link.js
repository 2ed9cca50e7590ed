// Making a portal link for one application from the console: the capabilities it grants and
// how long it lasts; the link is shown once, to copy and hand to the customer.

import { api, seg, ALL_CAPABILITIES } from '../api.js';
import { h, uid, toast } from '../dom.js';
import { field, formError, onSubmit } from '../forms.js';

const ROUTE = '/api/v1/auth/app-portal-access/{}';

const DESCRIPTIONS = {
  ViewBase: 'See endpoints, messages, attempts and event types',
  ViewEndpointSecret: 'Reveal endpoint secrets',
  ManageEndpointSecret: 'Rotate endpoint secrets',
  CreateAttempts: 'Resend, recover and send examples',
  ManageEndpoint: 'Create, change and delete endpoints',
};

const EXPIRIES = [['86400', '1 day'], ['604800', '7 days'], ['2592000', '30 days']];

/** The "Portal link" panel of an application's page, or null when the server has no links. */
export function portalLinkPanel(ctx, app) {
  if (ctx.portal || !ctx.features.has(ROUTE)) return null;
  const group = h('fieldset', { class: 'field' }, h('legend', {}, 'The customer may'));
  group.dataset.field = 'capabilities';
  group.append(h('ul', { class: 'type-list' }, ALL_CAPABILITIES.map((capability) => {
    const id = uid('cap');
    return h('li', {}, h('input', { type: 'checkbox', id, value: capability, checked: true }), h('label', { for: id }, DESCRIPTIONS[capability], ' ', h('code', { class: 'muted' }, capability)));
  })), h('p', { class: 'field-error', hidden: true }));
  const expiry = field('Link valid for', 'expiry', { options: EXPIRIES, value: '604800' });
  const result = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'stack', novalidate: true }, group, expiry, formError(), h('button', { type: 'submit', class: 'button primary' }, 'Make a portal link'), result);
  onSubmit(form, async () => {
    const capabilities = [...group.querySelectorAll('input:checked')].map((box) => box.value);
    const access = await api('POST', `/auth/app-portal-access/${seg(app.id)}`, { body: { capabilities, expiry: Number(expiry.control.value) } });
    const copy = h('button', { type: 'button', class: 'button' }, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(access.url);
        toast('Copied.', 'good');
      } catch {
        toast('Copying is not allowed here: select the link and copy it.', 'error');
      }
    });
    result.replaceChildren(h('div', { class: 'callout callout-good' },
      h('p', {}, h('strong', {}, 'Portal link ready. '), 'It is shown only now; anyone holding it acts for this customer until it expires.'),
      h('p', { class: 'secret' }, h('code', { class: 'secret-value portal-url' }, access.url), ' ', copy),
      h('p', { class: 'muted' }, 'Opening the link in this browser would sign it in as the customer; to look at the portal yourself, use ', h('a', { href: `/portal?app=${encodeURIComponent(app.id)}` }, 'the preview'), '.')));
  });
  const expireAll = ctx.features.has('/api/v1/auth/app/{}/expire-all')
    ? h('p', {}, h('button', {
      type: 'button',
      class: 'button danger',
      onclick: async (event) => {
        if (!window.confirm('End every portal link and session of this application now?')) return;
        event.target.disabled = true;
        try {
          await api('POST', `/auth/app/${seg(app.id)}/expire-all`, { body: {} });
          toast('Every portal link of this application has been revoked.', 'good');
        } catch (error) {
          toast(`Revoke: ${error.message}`, 'error');
        } finally {
          event.target.disabled = false;
        }
      },
    }, 'Revoke all portal links'))
    : null;
  return h('details', { class: 'card create portal-link' }, h('summary', {}, 'Portal link for this customer'), form, expireAll);
}

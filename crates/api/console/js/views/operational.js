// Operational-webhook endpoints: where webhookd tells the operator about endpoints being
// created, changed or disabled and about deliveries failing or recovering.

import { api, seg } from '../api.js';
import { h, heading, empty, badge, toast, actionButton, replace, uid } from '../dom.js';
import { field, formError, onSubmit } from '../forms.js';

const BASE = '/operational-webhook/endpoint';
const EVENTS = [
  'endpoint.created', 'endpoint.updated', 'endpoint.deleted', 'endpoint.disabled', 'endpoint.enabled',
  'message.attempt.failing', 'message.attempt.exhausted', 'message.attempt.recovered', 'background_task.finished',
];

export async function operational(ctx) {
  const page = h('section', {}, heading(1, 'Operational webhooks'));
  if (!ctx.features.has(`/api/v1${BASE}`)) {
    page.append(empty('This server does not send operational webhooks.'));
    return page;
  }
  page.append(h('p', {}, 'webhookd posts these events about your endpoints and deliveries to the URLs below, signed like any webhook.'));
  const list = await api('GET', BASE, { query: { limit: 250 } });
  const items = list.data || [];
  if (!items.length) page.append(empty('No operational-webhook endpoint yet.'));
  const canReveal = ctx.features.has(`/api/v1${BASE}/{}/secret`);
  page.append(h('div', { class: 'cards' }, items.map((endpoint) => {
    const secret = h('p', { class: 'secret', hidden: true });
    return h('article', { class: 'card endpoint' },
      h('header', { class: 'endpoint-head' }, h('h2', { class: 'url' }, endpoint.url), endpoint.disabled ? badge('Disabled', 'bad') : badge('Enabled', 'good')),
      endpoint.description ? h('p', {}, endpoint.description) : null,
      h('p', { class: 'muted' }, 'Events: ', endpoint.eventTypes && endpoint.eventTypes.length ? endpoint.eventTypes.join(', ') : 'all'),
      secret,
      h('div', { class: 'actions wrap' },
        canReveal ? actionButton('Reveal secret', async () => {
          const read = await api('GET', `${BASE}/${seg(endpoint.id)}/secret`);
          replace(secret, h('span', { class: 'muted' }, 'Signing secret: '), h('code', { class: 'secret-value' }, read.key));
          secret.hidden = false;
        }) : null,
        actionButton('Delete', async () => {
          await api('DELETE', `${BASE}/${seg(endpoint.id)}`);
          toast('Operational-webhook endpoint deleted.', 'good');
          ctx.reload();
        }, { tone: 'danger', confirmText: `Stop sending operational webhooks to ${endpoint.url}?` })));
  })));
  page.append(createForm(ctx));
  return page;
}

function createForm(ctx) {
  const url = field('URL', 'url', { type: 'url', required: true, placeholder: 'https://ops.example.com/webhookd' });
  const description = field('Description', 'description');
  const group = h('fieldset', { class: 'field' }, h('legend', {}, 'Events (none chosen: all)'));
  group.dataset.field = 'eventTypes';
  group.append(h('ul', { class: 'type-list' }, EVENTS.map((name) => {
    const id = uid('op');
    return h('li', {}, h('input', { type: 'checkbox', id, value: name }), h('label', { for: id }, h('code', {}, name)));
  })), h('p', { class: 'field-error', hidden: true }));
  const form = h('form', { class: 'card stack', novalidate: true }, h('h2', {}, 'Add an endpoint'), url, description, group, formError(), h('button', { type: 'submit', class: 'button primary' }, 'Add endpoint'));
  onSubmit(form, async () => {
    const chosen = [...group.querySelectorAll('input:checked')].map((box) => box.value);
    const body = { url: url.control.value.trim(), description: description.control.value };
    if (chosen.length) body.eventTypes = chosen;
    await api('POST', BASE, { body });
    toast('Operational-webhook endpoint added.', 'good');
    ctx.reload();
  });
  return form;
}


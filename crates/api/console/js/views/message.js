// One message: its payload as text, and for each endpoint it went to, the delivery status and
// every attempt with status, duration and response body; resend to an endpoint.

import { api, seg } from '../api.js';
import { h, heading, badge, facts, empty, toast, actionButton, responsive } from '../dom.js';
import { timeElement, statusName, statusTone, prettyJson, number } from '../format.js';
import { appHeader } from './endpoints.js';

const TRIGGERS = { 0: 'Scheduled', 1: 'Manual' };

export async function message(ctx, params) {
  const { app, node } = await appHeader(ctx, params.app, 'messages');
  const base = `/app/${seg(app.id)}`;
  const msg = await api('GET', `${base}/msg/${seg(params.msg)}`);
  const page = h('section', {}, node, heading(1, `Message ${msg.eventId || msg.id}`));
  page.append(h('div', { class: 'card' }, facts([
    ['id', h('code', {}, msg.id)],
    ['eventId', msg.eventId ? h('code', {}, msg.eventId) : '—'],
    ['Event type', h('code', {}, msg.eventType)],
    ['Time', timeElement(msg.timestamp)],
    msg.channels && msg.channels.length ? ['Channels', msg.channels.join(', ')] : null,
    msg.tags && msg.tags.length ? ['Tags', msg.tags.join(', ')] : null,
  ])));
  page.append(h('section', { class: 'card', 'aria-labelledby': 'payload-title' },
    h('h2', { id: 'payload-title' }, 'Payload'),
    h('pre', { class: 'payload', tabindex: '0', 'aria-label': 'Payload' }, prettyJson(msg.payload))));

  const destinations = await api('GET', `${base}/msg/${seg(msg.id)}/endpoint`, { query: { limit: 250 } });
  const deliveries = h('section', { 'aria-labelledby': 'deliveries-title' }, h('h2', { id: 'deliveries-title' }, 'Deliveries'));
  page.append(deliveries);
  if (!destinations.data.length) {
    deliveries.append(empty('This message matched no endpoint.'));
    return page;
  }
  const attempts = await api('GET', `${base}/attempt/msg/${seg(msg.id)}`, { query: { limit: 250 } });
  for (const endpoint of destinations.data) {
    const mine = attempts.data.filter((attempt) => attempt.endpointId === endpoint.id);
    deliveries.append(delivery(ctx, base, msg, endpoint, mine));
  }
  return page;
}

function delivery(ctx, base, msg, endpoint, attempts) {
  const resend = ctx.can('CreateAttempts') ? actionButton('Resend', async () => {
    await api('POST', `${base}/msg/${seg(msg.id)}/endpoint/${seg(endpoint.id)}/resend`, { body: {} });
    toast('Resent: a new attempt is on its way.', 'good');
    setTimeout(() => ctx.reload(), 1000);
  }) : null;
  return h('article', { class: 'card delivery', 'aria-label': `Delivery to ${endpoint.url}` },
    h('header', { class: 'endpoint-head' },
      h('h3', { class: 'url' }, endpoint.url),
      badge(statusName(endpoint.status), statusTone(endpoint.status)),
      resend ? h('div', { class: 'actions' }, resend) : null),
    endpoint.nextAttempt ? h('p', { class: 'muted' }, 'Next attempt ', timeElement(endpoint.nextAttempt)) : null,
    attempts.length ? attemptTable(attempts) : empty('No attempt yet.'));
}

function attemptTable(attempts) {
  return h('div', { class: 'table-wrap' }, responsive(h('table', { class: 'attempts' },
    h('caption', { class: 'visually-hidden' }, 'Attempts, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Time'),
      h('th', { scope: 'col' }, 'Result'),
      h('th', { scope: 'col' }, 'HTTP'),
      h('th', { scope: 'col' }, 'Duration'),
      h('th', { scope: 'col' }, 'Trigger'),
      h('th', { scope: 'col' }, 'Response'))),
    h('tbody', {}, attempts.map((attempt) => h('tr', {},
      h('td', {}, timeElement(attempt.timestamp)),
      h('td', {}, badge(statusName(attempt.status), statusTone(attempt.status))),
      h('td', {}, attempt.responseStatusCode ? String(attempt.responseStatusCode) : '—'),
      h('td', {}, attempt.responseDurationMs !== undefined && attempt.responseDurationMs !== null ? `${number(attempt.responseDurationMs)} ms` : '—'),
      h('td', {}, TRIGGERS[attempt.triggerType] || '—'),
      h('td', { class: 'response' }, attempt.response
        ? h('details', {}, h('summary', {}, `${attempt.response.length > 60 ? `${attempt.response.slice(0, 60)}…` : attempt.response}`), h('pre', {}, prettyJson(attempt.response)))
        : h('span', { class: 'muted' }, 'empty'))))))));
}

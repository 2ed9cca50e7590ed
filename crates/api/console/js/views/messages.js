// An application's message log: filters (event type, channel, tag, time; delivery status
// for one endpoint), lookup by message id or eventId, keyset paging with the API's iterator.

import { api, ApiError, seg } from '../api.js';
import { h, heading, empty, badge, uid, errorBox, responsive } from '../dom.js';
import { timeElement, statusName, statusTone, localInputToIso, isoToLocalInput } from '../format.js';
import { withQuery } from '../router.js';
import { appHeader } from './endpoints.js';
import { pager } from './applications.js';

const PAGE = 50;
const STATUS_OPTIONS = [['', 'Any status'], ['0', 'Succeeded'], ['1', 'Pending'], ['3', 'Sending'], ['2', 'Failed']];

export async function messages(ctx, params, query) {
  const { app, node } = await appHeader(ctx, params.app, 'messages');
  const base = `/app/${seg(app.id)}`;
  const [catalog, endpointList] = await Promise.all([
    api('GET', '/event-type', { query: { limit: 250 } }).then((list) => list.data).catch(() => []),
    api('GET', `${base}/endpoint`, { query: { limit: 250 } }).then((list) => list.data),
  ]);
  const page = h('section', {}, node, heading(1, ctx.portal ? 'Messages' : `${app.name || app.id}: messages`));
  page.append(findForm(ctx, app), filterForm(ctx, app, query, catalog, endpointList));

  const endpoint = query.get('endpoint');
  const filters = {
    limit: PAGE,
    iterator: query.get('iterator'),
    event_types: query.getAll('eventType'),
    channel: query.get('channel'),
    tag: query.get('tag'),
    after: query.get('after'),
    before: query.get('before'),
  };
  let list;
  try {
    list = endpoint
      ? await api('GET', `${base}/endpoint/${seg(endpoint)}/msg`, { query: { ...filters, status: query.get('status') } })
      : await api('GET', `${base}/msg`, { query: filters });
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      page.append(errorBox(error));
      return page;
    }
    throw error;
  }
  page.append(table(ctx, app, list.data, Boolean(endpoint)), pager(list, query));
  return page;
}

function findForm(ctx, app) {
  const id = uid('find');
  const input = h('input', { id, type: 'search', name: 'find', placeholder: 'msg_… or your eventId', autocomplete: 'off' });
  const status = h('p', { class: 'field-error', hidden: true, role: 'alert' });
  const form = h('form', { class: 'toolbar', role: 'search' },
    h('div', { class: 'field' }, h('label', { for: id }, 'Find a message by id or eventId'), input, status),
    h('button', { type: 'submit', class: 'button' }, 'Open'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    try {
      const found = await api('GET', `/app/${seg(app.id)}/msg/${seg(key)}`);
      ctx.go(ctx.appLink(app.id, `/msg/${seg(found.id)}`).slice(1));
    } catch (error) {
      status.hidden = false;
      status.textContent = error instanceof ApiError && error.status === 404 ? `No message with the id or eventId “${key}”.` : error.message;
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', status.id = uid('find-error'));
    }
  });
  return form;
}

function filterForm(ctx, app, query, catalog, endpointList) {
  const control = (label, element) => {
    const id = uid('filter');
    element.id = id;
    return h('div', { class: 'field' }, h('label', { for: id }, label), element);
  };
  const eventType = h('select', { name: 'eventType' }, h('option', { value: '' }, 'Any event type'), catalog.map((type) => h('option', { value: type.name }, type.name)));
  eventType.value = query.get('eventType') || '';
  const channel = h('input', { name: 'channel', value: query.get('channel') || '', autocomplete: 'off' });
  const tag = h('input', { name: 'tag', value: query.get('tag') || '', autocomplete: 'off' });
  const endpoint = h('select', { name: 'endpoint' }, h('option', { value: '' }, 'Any endpoint'), endpointList.map((item) => h('option', { value: item.id }, item.description || item.url)));
  endpoint.value = query.get('endpoint') || '';
  const status = h('select', { name: 'status' }, STATUS_OPTIONS.map(([value, text]) => h('option', { value }, text)));
  status.value = query.get('status') || '';
  const after = h('input', { type: 'datetime-local', name: 'after', value: isoToLocalInput(query.get('after')) });
  const before = h('input', { type: 'datetime-local', name: 'before', value: isoToLocalInput(query.get('before')) });
  const syncStatus = () => {
    status.disabled = !endpoint.value;
    if (!endpoint.value) status.value = '';
  };
  endpoint.addEventListener('change', syncStatus);
  syncStatus();
  const form = h('form', { class: 'filters', 'aria-label': 'Filter messages' },
    control('Event type', eventType),
    control('Channel', channel),
    control('Tag', tag),
    control('Endpoint', endpoint),
    control('Delivery status (for one endpoint)', status),
    control('After', after),
    control('Before', before),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary' }, 'Apply'), h('a', { class: 'button subtle', href: ctx.appLink(app.id, '/msgs') }, 'Reset')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const path = ctx.appLink(app.id, '/msgs').slice(1);
    ctx.go(withQuery(path, {
      eventType: eventType.value,
      channel: channel.value.trim(),
      tag: tag.value.trim(),
      endpoint: endpoint.value,
      status: endpoint.value ? status.value : '',
      after: localInputToIso(after.value),
      before: localInputToIso(before.value),
    }));
  });
  return h('details', { class: 'card', open: [...query.keys()].some((key) => key !== 'iterator') }, h('summary', {}, 'Filters'), form);
}

function table(ctx, app, items, withStatus) {
  if (!items.length) return empty('No messages match.');
  return h('div', { class: 'table-wrap' }, responsive(h('table', { class: 'messages' },
    h('caption', { class: 'visually-hidden' }, 'Messages, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Event type'),
      h('th', { scope: 'col' }, 'Message'),
      withStatus ? h('th', { scope: 'col' }, 'Status') : null,
      h('th', { scope: 'col' }, 'Channels and tags'),
      h('th', { scope: 'col' }, 'Time'))),
    h('tbody', {}, items.map((item) => h('tr', {},
      h('td', {}, h('code', {}, item.eventType)),
      h('td', {}, h('div', {}, h('a', { href: ctx.appLink(app.id, `/msg/${seg(item.id)}`) }, item.eventId || item.id), item.eventId ? h('div', { class: 'muted small' }, item.id) : null)),
      withStatus ? h('td', {}, badge(statusName(item.status), statusTone(item.status))) : null,
      h('td', {}, h('span', {}, [...(item.channels || []).map((channel) => badge(channel, 'neutral')), ...(item.tags || []).map((tag) => badge(`#${tag}`, 'neutral'))])),
      h('td', {}, timeElement(item.timestamp))))))));
}

// Creating and editing an endpoint. Event types are picked from the catalog, each with its
// description and examples; the API's 422 errors are shown under the fields they concern.

import { api, seg } from '../api.js';
import { describeError, h, heading, toast, uid } from '../dom.js';
import { field, formError, onSubmit, list } from '../forms.js';
import { prettyJson } from '../format.js';
import { appHeader } from './endpoints.js';

export async function endpointForm(ctx, params) {
  const { app, node } = await appHeader(ctx, params.app, 'endpoints');
  const editing = Boolean(params.ep);
  const endpoint = editing ? await api('GET', `/app/${seg(app.id)}/endpoint/${seg(params.ep)}`) : null;
  // Without the catalog (a session that may not read it), the endpoint gets every event type.
  const catalog = await api('GET', '/event-type', { query: { limit: 250 } }).then((list) => list.data).catch(() => []);

  const url = field('URL', 'url', { type: 'url', required: true, value: endpoint?.url || '', placeholder: 'https://example.com/webhooks', hint: 'Where each event is POSTed, signed with the endpoint\'s secret.' });
  const description = field('Description', 'description', { value: endpoint?.description || '' });
  const uidField = field('uid (optional)', 'uid', { value: endpoint?.uid || '', hint: 'Your own id for this endpoint.' });
  const channels = field('Channels (optional)', 'channels', { value: (endpoint?.channels || []).join(', '), hint: 'Comma-separated. When set, only messages on one of these channels are sent here.' });
  const rateLimit = field('Rate limit (optional)', 'rateLimit', { type: 'number', value: endpoint?.rateLimit ?? '', hint: 'Most deliveries per second to this endpoint.' });
  const ordered = field('Ordered delivery', 'ordered', { type: 'checkbox', value: endpoint?.ordered, hint: 'Deliver one message at a time, in the order they were sent: each waits until every earlier one was delivered or finally failed. A retry holds the line.' });
  const disabled = editing ? field('Disabled', 'disabled', { type: 'checkbox', value: endpoint.disabled }) : null;
  const types = eventTypePicker(catalog, endpoint?.filterTypes || []);
  const filter = field('Payload filter (optional)', 'payloadFilter', { multiline: true, rows: 3, value: endpoint?.payloadFilter || '', placeholder: 'payload.amount > 100 && payload.currency == "EUR"', hint: 'A CEL expression over payload, eventType and channels. Only messages for which it is true are sent here; an error (say, a missing field) counts as false.' });
  const filterTest = filterTester(app, filter.control, catalog);
  const schedule = field('Retry schedule (optional)', 'retrySchedule', { value: (endpoint?.retrySchedule || []).join(', '), placeholder: '5s, 5m, 30m', hint: endpoint?.retrySchedule && !endpoint.retrySchedule.length ? 'Never retried. Delays after the first attempt, comma-separated; empty uses the server\'s schedule.' : 'Delays after the first attempt, comma-separated (100ms to 24h); empty uses the server\'s schedule.' });
  const timeout = field('Request timeout (optional)', 'requestTimeout', { value: endpoint?.requestTimeout || '', placeholder: '10s', hint: 'How long one attempt may take; empty uses the server\'s timeout.' });

  const form = h('form', { class: 'card stack endpoint-form', novalidate: true },
    url, description, types, channels, filter, filterTest, rateLimit, schedule, timeout, ordered, uidField, disabled, formError(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'button primary' }, editing ? 'Save changes' : 'Create endpoint'),
      h('a', { class: 'button subtle', href: ctx.appLink(app.id) }, 'Cancel')));

  onSubmit(form, async () => {
    const chosen = [...types.querySelectorAll('input[type="checkbox"]:checked')].map((box) => box.value);
    const rate = rateLimit.control.value.trim();
    const body = {
      url: url.control.value.trim(),
      description: description.control.value,
      filterTypes: chosen.length ? chosen : null,
      channels: list(channels.control.value).length ? list(channels.control.value) : null,
      rateLimit: rate === '' ? null : Number(rate),
      uid: uidField.control.value.trim() || null,
      ordered: ordered.control.checked,
      payloadFilter: filter.control.value.trim() || null,
      retrySchedule: list(schedule.control.value).length ? list(schedule.control.value) : null,
      requestTimeout: timeout.control.value.trim() || null,
    };
    if (editing) {
      body.disabled = disabled.control.checked;
      await api('PATCH', `/app/${seg(app.id)}/endpoint/${seg(endpoint.id)}`, { body });
      toast('Endpoint saved.', 'good');
    } else {
      for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
      if (!body.ordered) delete body.ordered;
      await api('POST', `/app/${seg(app.id)}/endpoint`, { body });
      toast('Endpoint created.', 'good');
    }
    ctx.go(ctx.appLink(app.id).slice(1));
  }, { eventTypes: 'filterTypes', throttleRate: 'rateLimit' });

  return h('section', {}, node, heading(1, editing ? 'Edit endpoint' : 'Add an endpoint'), form);
}

/**
 * Tries the payload filter being written against a sample payload (the first example of the
 * catalog when there is one), through the API's test route; nothing is saved.
 */
function filterTester(app, filterControl, catalog) {
  const firstExample = catalog.flatMap(examplesOf)[0];
  const sample = field('Sample payload', 'payload', { multiline: true, rows: 4, value: firstExample ? prettyJson(firstExample) : '{\n  "amount": 150,\n  "currency": "EUR"\n}', hint: 'JSON to try the filter on. Nothing is saved.' });
  const eventType = field('Sample event type (optional)', 'eventType', { value: catalog[0]?.name || '' });
  const verdict = h('p', { class: 'filter-verdict', role: 'status' });
  const run = async () => {
    verdict.textContent = '';
    verdict.className = 'filter-verdict';
    let payload;
    try {
      payload = JSON.parse(sample.control.value);
    } catch (error) {
      verdict.textContent = `The sample payload is not JSON: ${error.message}`;
      verdict.classList.add('bad');
      return;
    }
    const body = { payloadFilter: filterControl.value.trim(), payload };
    if (eventType.control.value.trim()) body.eventType = eventType.control.value.trim();
    try {
      const out = await api('POST', `/app/${seg(app.id)}/endpoint/payload-filter/test`, { body });
      verdict.textContent = out.matches ? 'Matches: such a message is sent to this endpoint.' : `Does not match: such a message is not sent here.${out.error ? ` (${out.error})` : ''}`;
      verdict.classList.add(out.matches ? 'good' : 'neutral');
    } catch (error) {
      verdict.textContent = describeError(error);
      verdict.classList.add('bad');
    }
  };
  const button = h('button', { type: 'button', class: 'button subtle', onclick: run }, 'Test the filter');
  return h('details', { class: 'filter-test' },
    h('summary', {}, 'Test the filter against a sample payload'),
    h('div', { class: 'stack' }, sample, eventType, h('div', { class: 'actions' }, button), verdict));
}

/** Checkboxes for the catalog's event types, with descriptions and examples. */
function eventTypePicker(catalog, selected) {
  const legendId = uid('types');
  const box = h('fieldset', { class: 'field event-types', 'aria-describedby': `${legendId}-hint` },
    h('legend', {}, 'Event types'),
    h('p', { class: 'hint', id: `${legendId}-hint` }, catalog.length ? 'Choose none to receive every event type.' : 'The catalog has no event types yet: this endpoint receives every event.'));
  box.dataset.field = 'filterTypes';
  const options = h('ul', { class: 'type-list' });
  for (const type of catalog) {
    const id = uid('type');
    const examples = examplesOf(type);
    options.append(h('li', {},
      h('input', { type: 'checkbox', id, value: type.name, checked: selected.includes(type.name) }),
      h('label', { for: id }, h('code', {}, type.name), type.description ? h('span', { class: 'muted' }, ` — ${type.description}`) : null),
      examples.length ? h('details', { class: 'example' }, h('summary', {}, examples.length > 1 ? `${examples.length} examples` : 'Example'), examples.map((example) => h('pre', {}, prettyJson(example)))) : null));
  }
  // Types chosen earlier but no longer in the catalog stay chosen, so saving keeps them.
  for (const name of selected.filter((name) => !catalog.some((type) => type.name === name))) {
    const id = uid('type');
    options.append(h('li', {}, h('input', { type: 'checkbox', id, value: name, checked: true }), h('label', { for: id }, h('code', {}, name), h('span', { class: 'muted' }, ' — not in the catalog'))));
  }
  box.append(options, h('p', { class: 'field-error', hidden: true }));
  return box;
}

/** The examples in an event type's schemas (JSON Schema's `examples`). */
export function examplesOf(type) {
  const schemas = type.schemas || {};
  return Object.values(schemas).flatMap((schema) => (schema && Array.isArray(schema.examples) ? schema.examples : []));
}

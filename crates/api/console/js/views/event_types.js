// The event-type catalog: each type's description, JSON Schema and examples; create, edit,
// archive.

import { api, ApiError, seg } from '../api.js';
import { h, heading, empty, badge, toast, actionButton } from '../dom.js';
import { field, formError, onSubmit } from '../forms.js';
import { prettyJson } from '../format.js';
import { examplesOf } from './endpoint_form.js';
import { pager } from './applications.js';

export async function eventTypes(ctx, _params, query) {
  const archived = query.get('archived') === '1';
  const list = await api('GET', '/event-type', { query: { limit: 100, iterator: query.get('iterator'), include_archived: archived || undefined, with_content: true } });
  const page = h('section', {}, heading(1, 'Event types', h('a', { class: 'button primary', href: '#/event-types/new' }, 'New event type')));
  page.append(h('p', {}, archived ? h('a', { href: '#/event-types' }, 'Hide archived types') : h('a', { href: '#/event-types?archived=1' }, 'Show archived types')));
  if (!list.data.length) {
    page.append(empty('The catalog is empty. Event types describe what you send; endpoints pick the ones they want.'));
    return page;
  }
  page.append(h('div', { class: 'cards' }, list.data.map((type) => {
    const examples = examplesOf(type);
    const schemaCount = Object.keys(type.schemas || {}).length;
    return h('article', { class: 'card event-type' },
      h('header', { class: 'endpoint-head' },
        h('h2', {}, h('a', { href: `#/event-type/${seg(type.name)}` }, h('code', {}, type.name))),
        type.archived ? badge('Archived', 'neutral') : null,
        type.deprecated ? badge('Deprecated', 'warn') : null),
      h('p', {}, type.description || h('span', { class: 'muted' }, 'No description.')),
      schemaCount ? h('details', {}, h('summary', {}, 'JSON Schema'), h('pre', {}, prettyJson(type.schemas))) : h('p', { class: 'muted' }, 'No schema.'),
      examples.length ? h('details', {}, h('summary', {}, examples.length > 1 ? `${examples.length} examples` : 'Example'), examples.map((example) => h('pre', {}, prettyJson(example)))) : null);
  })), pager(list, query));
  return page;
}

export async function eventTypeForm(ctx, params) {
  const editing = Boolean(params.name);
  let type = null;
  if (editing) type = await api('GET', `/event-type/${seg(params.name)}`);
  const name = field('Name', 'name', { required: true, value: type?.name || '', readOnly: editing, placeholder: 'invoice.paid', hint: editing ? 'The name cannot change.' : 'Letters, digits, dots, dashes and underscores.' });
  const description = field('Description', 'description', { value: type?.description || '', multiline: true, rows: 3 });
  const schemas = field('JSON Schema (optional)', 'schemas', {
    multiline: true,
    rows: 12,
    value: type && Object.keys(type.schemas || {}).length ? prettyJson(type.schemas) : '',
    placeholder: '{\n  "1": {\n    "type": "object",\n    "examples": [{"id": "inv_1"}]\n  }\n}',
    hint: 'By version: {"1": {…schema…}}. Examples go in the schema\'s "examples" array; endpoints show them.',
  });
  const deprecated = field('Deprecated', 'deprecated', { type: 'checkbox', value: type?.deprecated });
  const archived = editing ? field('Archived', 'archived', { type: 'checkbox', value: type?.archived }) : null;
  const form = h('form', { class: 'card stack', novalidate: true }, name, description, schemas, deprecated, archived, formError(),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary' }, editing ? 'Save changes' : 'Create event type'), h('a', { class: 'button subtle', href: '#/event-types' }, 'Cancel')));
  onSubmit(form, async () => {
    const text = schemas.control.value.trim();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new ApiError(422, { detail: [{ loc: ['body', 'schemas'], msg: `is not JSON: ${error.message}`, type: 'value_error' }] });
      }
    }
    const body = { description: description.control.value, schemas: parsed, deprecated: deprecated.control.checked };
    if (editing) {
      body.archived = archived.control.checked;
      await api('PATCH', `/event-type/${seg(type.name)}`, { body });
      toast('Event type saved.', 'good');
    } else {
      await api('POST', '/event-type', { body: { name: name.control.value.trim(), ...body } });
      toast('Event type created.', 'good');
    }
    ctx.go('/event-types');
  });
  const page = h('section', {}, h('p', { class: 'crumbs' }, h('a', { href: '#/event-types' }, 'Event types'), ' / ', editing ? type.name : 'new'), heading(1, editing ? `Event type ${type.name}` : 'New event type'), form);
  if (editing && !type.archived) {
    page.append(h('div', { class: 'actions' }, actionButton('Archive', async () => {
      await api('DELETE', `/event-type/${seg(type.name)}`);
      toast('Event type archived.', 'good');
      ctx.go('/event-types');
    }, { tone: 'danger', confirmText: `Archive ${type.name}? Endpoints that chose it keep it; it leaves the catalog.` })));
  }
  return page;
}

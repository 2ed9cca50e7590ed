// One application's endpoints with their health (delivery counts, last attempt, disabled)
// and the actions the viewer may take on each: edit, enable or disable, reveal and rotate the
// secret, recover failed messages since a moment, send an example event, delete. Polling
// endpoints are shown as such, without what only concerns endpoints that are sent to.

import { api, ApiError, seg } from '../api.js';
import { h, append, heading, empty, badge, facts, toast, actionButton, uid, replace, describeError } from '../dom.js';
import { portalLinkPanel } from './portal_link.js';
import { applicationSettings } from './application_settings.js';
import { timeElement, percent, number, statusName, statusTone, localInputToIso, isoToLocalInput } from '../format.js';

/** The application's name and the tabs between its endpoints and its messages. */
export async function appHeader(ctx, appKey, current) {
  let app;
  try {
    app = await api('GET', `/app/${seg(appKey)}`);
  } catch (error) {
    // A portal session may see the application's endpoints and messages without its record.
    if (!(ctx.portal && error instanceof ApiError && error.status === 403)) throw error;
    app = { id: appKey, name: '' };
  }
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Application' },
    h('a', { href: ctx.appLink(app.id), 'aria-current': current === 'endpoints' ? 'page' : null }, 'Endpoints'),
    h('a', { href: ctx.appLink(app.id, '/msgs'), 'aria-current': current === 'messages' ? 'page' : null }, 'Messages'),
  );
  const crumbs = ctx.portal ? null : h('p', { class: 'crumbs' }, h('a', { href: '#/apps' }, 'Applications'), ' / ', h('span', {}, app.name || app.id));
  const ids = ctx.portal ? null : h('p', { class: 'muted ids' }, h('code', {}, app.id), app.uid ? [' · uid ', h('code', {}, app.uid)] : null);
  return { app, node: h('div', { class: 'app-header' }, crumbs, ids, tabs) };
}

export async function endpoints(ctx, params) {
  const { app, node } = await appHeader(ctx, params.app, 'endpoints');
  const add = ctx.can('ManageEndpoint') ? h('a', { class: 'button primary', href: ctx.appLink(app.id, '/endpoint/new') }, 'Add endpoint') : null;
  const page = h('section', {}, node, heading(1, ctx.portal ? 'Endpoints' : `${app.name || app.id}: endpoints`, add), portalLinkPanel(ctx, app));
  const list = await api('GET', `/app/${seg(app.id)}/endpoint`, { query: { limit: 250 } });
  if (!list.data.length) {
    append(page, [empty(ctx.can('ManageEndpoint') ? 'No endpoints yet. Add one to start receiving webhooks.' : 'No endpoints yet.'), applicationSettings(ctx, app)]);
    return page;
  }
  const catalog = ctx.features.has('/api/v1/app/{}/endpoint/{}/send-example') && ctx.can('CreateAttempts')
    ? (await api('GET', '/event-type', { query: { limit: 250 } }).catch(() => ({ data: [] }))).data
    : [];
  const cards = h('div', { class: 'cards' });
  page.append(cards);
  for (const endpoint of list.data) cards.append(endpointCard(ctx, app, endpoint, catalog));
  append(page, [applicationSettings(ctx, app)]);
  return page;
}

function endpointCard(ctx, app, endpoint, catalog) {
  const base = `/app/${seg(app.id)}/endpoint/${seg(endpoint.id)}`;
  // A polling endpoint (URL `poll:`) is read by its consumer and never sent to: it has no
  // URL to show, no attempts, and nothing to recover or send.
  const polling = endpoint.url === 'poll:';
  const health = polling
    ? h('p', { class: 'muted' }, 'Its consumer reads its messages through the poller API (or ', h('code', {}, 'webhookd listen'), '); nothing is sent to it.')
    : h('div', { class: 'health' }, h('span', { class: 'muted' }, 'Reading health…'));
  const card = h('article', { class: 'card endpoint', 'aria-labelledby': `ep-${endpoint.id}` },
    h('header', { class: 'endpoint-head' },
      h('h2', { id: `ep-${endpoint.id}`, class: 'url' }, polling ? 'Polling endpoint' : endpoint.url),
      polling ? badge('Polling') : null,
      endpoint.disabled ? badge('Disabled', 'bad') : badge('Enabled', 'good'),
    ),
    endpoint.description ? h('p', {}, endpoint.description) : null,
    facts([
      ['id', h('code', {}, endpoint.id)],
      endpoint.uid ? ['uid', h('code', {}, endpoint.uid)] : null,
      ['Event types', endpoint.filterTypes && endpoint.filterTypes.length ? endpoint.filterTypes.join(', ') : 'All'],
      endpoint.channels && endpoint.channels.length ? ['Channels', endpoint.channels.join(', ')] : null,
      endpoint.rateLimit ? ['Rate limit', `${endpoint.rateLimit}/s`] : null,
      endpoint.ordered ? ['Ordered delivery', 'On: one message at a time, in send order'] : null,
      endpoint.payloadFilter ? ['Payload filter', h('code', { class: 'filter' }, endpoint.payloadFilter)] : null,
      endpoint.retrySchedule ? ['Retry schedule', endpoint.retrySchedule.length ? endpoint.retrySchedule.join(', ') : 'Never retried'] : null,
      endpoint.requestTimeout ? ['Request timeout', endpoint.requestTimeout] : null,
    ]),
    health,
  );
  if (!polling) loadHealth(app, base, endpoint, health);

  const actions = h('div', { class: 'actions wrap' });
  const panel = h('div', { class: 'panel', id: uid('panel'), hidden: true });
  if (ctx.can('ManageEndpoint')) {
    actions.append(
      h('a', { class: 'button', href: ctx.appLink(app.id, `/endpoint/${seg(endpoint.id)}/edit`) }, 'Edit'),
      actionButton(endpoint.disabled ? 'Enable' : 'Disable', async () => {
        await api('PATCH', base, { body: { disabled: !endpoint.disabled } });
        toast(endpoint.disabled ? 'Endpoint enabled.' : 'Endpoint disabled.', 'good');
        ctx.reload();
      }),
    );
  }
  if (ctx.can('ViewEndpointSecret')) {
    const secretBox = h('p', { class: 'secret', hidden: true });
    const reveal = h('button', { type: 'button', class: 'button', 'aria-expanded': 'false' }, 'Reveal secret');
    reveal.addEventListener('click', async () => {
      if (!secretBox.hidden) {
        secretBox.hidden = true;
        replace(secretBox);
        reveal.textContent = 'Reveal secret';
        reveal.setAttribute('aria-expanded', 'false');
        return;
      }
      try {
        const secret = await api('GET', `${base}/secret`);
        replace(secretBox, h('span', { class: 'muted' }, 'Signing secret: '), h('code', { class: 'secret-value' }, secret.key));
        secretBox.hidden = false;
        reveal.textContent = 'Hide secret';
        reveal.setAttribute('aria-expanded', 'true');
      } catch (error) {
        toast(`Reveal secret: ${describeError(error)}`, 'error');
      }
    });
    actions.append(reveal);
    card.append(secretBox);
  }
  if (ctx.can('ManageEndpointSecret')) {
    actions.append(actionButton('Rotate secret', async () => {
      await api('POST', `${base}/secret/rotate`, { body: {} });
      toast('Secret rotated. The previous one keeps signing for a grace period.', 'good');
    }, { confirmText: 'Rotate this endpoint\'s signing secret? The receiver must switch to the new one.' }));
  }
  if (ctx.can('CreateAttempts') && !polling) {
    actions.append(toggle('Recover…', panel, () => recoverForm(base, panel)));
    if (catalog.length) actions.append(toggle('Send example…', panel, () => exampleForm(base, endpoint, catalog, panel)));
  }
  if (ctx.can('ManageEndpoint')) {
    actions.append(actionButton('Delete', async () => {
      await api('DELETE', base);
      toast('Endpoint deleted.', 'good');
      ctx.reload();
    }, { tone: 'danger', confirmText: `Delete the endpoint ${endpoint.url}? Its delivery history goes with it.` }));
  }
  if (!polling) actions.append(h('a', { class: 'button subtle', href: `${ctx.appLink(app.id, '/msgs')}?endpoint=${encodeURIComponent(endpoint.id)}` }, 'Messages'));
  card.append(actions, panel);
  return card;
}

function toggle(label, panel, build) {
  const button = h('button', { type: 'button', class: 'button', 'aria-expanded': 'false', 'aria-controls': panel.id }, label);
  button.addEventListener('click', () => {
    const open = button.getAttribute('aria-expanded') === 'true';
    for (const other of button.parentElement.querySelectorAll(`[aria-controls="${panel.id}"]`)) other.setAttribute('aria-expanded', 'false');
    if (open) {
      panel.hidden = true;
      replace(panel);
      return;
    }
    replace(panel, build());
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    const first = panel.querySelector('input, select, textarea');
    if (first) first.focus();
  });
  return button;
}

async function loadHealth(app, base, endpoint, box) {
  try {
    // The health route reads the endpoint's newest attempts only, so it stays fast however
    // long the endpoint's history is.
    const health = await api('GET', `${base}/health`);
    const recent = health.recent;
    const last = health.lastAttempt;
    const items = [
      ['Success, latest attempts', recent.attempts ? `${percent(recent.successRate)} of the last ${number(recent.attempts)}` : 'No attempts yet'],
      ['Last attempt', last ? h('span', {}, badge(statusName(last.status), statusTone(last.status)), ' ', last.responseStatusCode ? `HTTP ${last.responseStatusCode}` : 'no response', ' · ', timeElement(last.timestamp)) : 'None yet'],
    ];
    if (health.failingSince) {
      items.push(['Failing since', timeElement(health.failingSince)]);
    }
    if (endpoint.disabled) {
      items.push(['Why disabled', last && last.status === 2
        ? 'Its last attempt failed; endpoints that keep failing are disabled automatically, and operators may disable one by hand.'
        : 'Disabled by hand.']);
    }
    replace(box, facts(items));
  } catch (error) {
    replace(box, h('p', { class: 'muted' }, `Health unavailable: ${describeError(error)}`));
  }
}

function recoverForm(base, panel) {
  const id = uid('since');
  const input = h('input', { id, type: 'datetime-local', required: true, value: isoToLocalInput(new Date(Date.now() - 3600 * 1000).toISOString()) });
  const form = h('form', { class: 'inline-form' },
    h('label', { for: id }, 'Resend every failed message since'),
    input,
    h('button', { type: 'submit', class: 'button primary' }, 'Recover'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const since = localInputToIso(input.value);
      await api('POST', `${base}/recover`, { body: { since } });
      toast('Recovery started: failed messages since then are being sent again.', 'good');
      panel.hidden = true;
    } catch (error) {
      toast(`Recover: ${describeError(error)}`, 'error');
    }
  });
  return form;
}

function exampleForm(base, endpoint, catalog, panel) {
  const allowed = endpoint.filterTypes && endpoint.filterTypes.length ? catalog.filter((type) => endpoint.filterTypes.includes(type.name)) : catalog;
  const id = uid('example');
  const select = h('select', { id }, allowed.map((type) => h('option', { value: type.name }, type.name)));
  const form = h('form', { class: 'inline-form' },
    h('label', { for: id }, 'Event type'),
    select,
    h('button', { type: 'submit', class: 'button primary' }, 'Send example'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('POST', `${base}/send-example`, { body: { eventType: select.value } });
      toast(`An example ${select.value} was sent.`, 'good');
      panel.hidden = true;
    } catch (error) {
      toast(`Send example: ${describeError(error)}`, 'error');
    }
  });
  if (!allowed.length) return h('p', { class: 'muted' }, 'No event type of the catalog matches this endpoint.');
  return form;
}

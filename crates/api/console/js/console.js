// The operator's console: checks the session (none is needed in local mode), shows the login
// form when the server asks for a token, and routes between the pages.

import { api, ApiError, onUnauthorized, features, ALL_CAPABILITIES } from './api.js';
import { h, replace, errorBox, toast } from './dom.js';
import { field, formError, onSubmit } from './forms.js';
import { startRouter } from './router.js';
import { overview } from './views/overview.js';
import { applications } from './views/applications.js';
import { endpoints } from './views/endpoints.js';
import { endpointForm } from './views/endpoint_form.js';
import { messages } from './views/messages.js';
import { message } from './views/message.js';
import { eventTypes, eventTypeForm } from './views/event_types.js';
import { tokens } from './views/tokens.js';
import { operational } from './views/operational.js';

const main = document.getElementById('main');

async function session() {
  try {
    return await api('GET', '/auth/session', { quiet401: true });
  } catch (error) {
    // A server without console sessions: only local mode works, where every route is open.
    if (error instanceof ApiError && error.status === 404) return { kind: 'local', capabilities: ALL_CAPABILITIES };
    throw error;
  }
}

function showLogin(reason) {
  document.getElementById('nav').hidden = true;
  replace(document.getElementById('who'));
  const token = field('API token', 'token', { type: 'password', required: true, autocomplete: 'current-password', hint: 'An operator token from WEBHOOKD_API_TOKENS or `webhookd token create`. It is exchanged for a session cookie and not kept by the page.' });
  const form = h('form', { class: 'card login', novalidate: true }, h('h1', { tabindex: '-1' }, 'Sign in to webhookd'), reason ? h('p', { class: 'callout' }, reason) : null, token, formError(), h('button', { type: 'submit', class: 'button primary' }, 'Sign in'));
  onSubmit(form, async () => {
    const created = await api('POST', '/auth/session', { body: { token: token.control.value.trim() }, quiet401: true });
    if (created && created.kind === 'app') {
      window.location.assign('/portal');
      return;
    }
    window.location.reload();
  }, { token: 'token' });
  replace(main, form);
  document.title = 'Sign in · webhookd';
  token.control.focus();
}

function buildNav(ctx, who) {
  const links = [
    ['/', 'Overview'],
    ['/apps', 'Applications'],
    ['/event-types', 'Event types'],
  ];
  if (ctx.features.has('/api/v1/operational-webhook/endpoint')) links.push(['/operational', 'Operational webhooks']);
  if (ctx.features.has('/api/v1/auth/token')) links.push(['/tokens', 'API tokens']);
  const nav = document.getElementById('nav');
  replace(nav, h('ul', {}, links.map(([path, text]) => h('li', {}, h('a', { href: `#${path}`, dataset: { section: path } }, text)))));
  nav.hidden = false;
  const whoBox = document.getElementById('who');
  if (who.kind === 'local') {
    replace(whoBox, h('span', { class: 'badge badge-warn', title: 'Listening on loopback without tokens: no sign-in needed' }, 'Local mode'));
  } else {
    replace(whoBox, h('button', { type: 'button', class: 'button subtle', onclick: logout }, 'Sign out'));
  }
}

async function logout() {
  try {
    await api('POST', '/auth/logout', { body: {}, quiet401: true });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      toast(`Sign out failed: ${error.message}`, 'error');
      return;
    }
  }
  showLogin('You are signed out.');
}

async function start() {
  let who;
  try {
    who = await session();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showLogin(null);
      return;
    }
    replace(main, errorBox(error));
    return;
  }
  if (who.kind === 'app') {
    window.location.assign('/portal');
    return;
  }
  onUnauthorized(() => showLogin('Your session has ended. Sign in again.'));
  const ctx = {
    portal: false,
    siteTitle: 'webhookd',
    caps: new Set(ALL_CAPABILITIES),
    features: await features(),
    who,
  };
  ctx.can = (capability) => ctx.caps.has(capability);
  buildNav(ctx, who);
  ctx.signedIn = (session) => {
    ctx.who = session;
    buildNav(ctx, session);
  };
  startRouter(ctx, [
    ['/', overview],
    ['/apps', applications],
    ['/app/:app', endpoints],
    ['/app/:app/endpoint/new', endpointForm],
    ['/app/:app/endpoint/:ep/edit', endpointForm],
    ['/app/:app/msgs', messages],
    ['/app/:app/msg/:msg', message],
    ['/event-types', eventTypes],
    ['/event-types/new', eventTypeForm],
    ['/event-type/:name', eventTypeForm],
    ['/tokens', tokens],
    ['/operational', operational],
  ], main);
}

start();

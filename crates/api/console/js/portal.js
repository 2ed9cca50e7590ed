// The consumer portal: one application's endpoints and messages, for the operator's customer.
//
// A portal link is `…/portal#key=appsk_…`. The key sits in the fragment, so it never reaches
// a server log; this script trades it for a session cookie and removes it from the address
// bar at once. Every control is shown only when the session's capabilities allow it, and the
// API enforces the same capabilities on every call.
//
// Branding: `?title=Acme%20webhooks&accent=%23ff5a00` on the link sets the page title and the
// accent colour (a 6-digit hex colour; anything else is ignored).

import { api, ApiError, onUnauthorized, useBearer, features, ALL_CAPABILITIES } from './api.js';
import { h, replace, errorBox } from './dom.js';
import { startRouter } from './router.js';
import { endpoints } from './views/endpoints.js';
import { endpointForm } from './views/endpoint_form.js';
import { messages } from './views/messages.js';
import { message } from './views/message.js';

const main = document.getElementById('main');
const settings = new URLSearchParams(window.location.search);

function brand() {
  const title = (settings.get('title') || '').trim().slice(0, 80) || 'Webhooks';
  document.getElementById('site-title').textContent = title;
  const accent = settings.get('accent') || '';
  if (/^#?[0-9a-fA-F]{6}$/.test(accent)) {
    const hex = accent.replace('#', '');
    const [r, g, b] = [0, 2, 4].map((at) => parseInt(hex.slice(at, at + 2), 16) / 255);
    const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    document.documentElement.style.setProperty('--accent', `#${hex}`);
    document.documentElement.style.setProperty('--accent-text', luminance > 0.55 ? '#111111' : '#ffffff');
  }
  return title;
}

function refuse(heading, text) {
  replace(document.getElementById('who'));
  replace(main, h('section', { class: 'card refusal' }, h('h1', { tabindex: '-1' }, heading), h('p', {}, text)));
  document.title = heading;
}

// A new link opened in the same tab changes only the fragment: start over with its key.
window.addEventListener('hashchange', () => {
  if (new URLSearchParams(window.location.hash.slice(1)).has('key')) window.location.reload();
});

async function start() {
  const siteTitle = brand();
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const key = fragment.get('key');
  let created = null;
  if (key) {
    window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}#/`);
    try {
      created = await api('POST', '/auth/session', { body: { token: key }, quiet401: true });
    } catch (error) {
      if (error instanceof ApiError && [400, 401, 403, 422].includes(error.status)) {
        refuse('This link no longer works', 'It has expired or was revoked. Ask the service that sent it for a new link.');
      } else {
        replace(main, errorBox(error));
      }
      return;
    }
  }
  let who;
  try {
    who = await api('GET', '/auth/session', { quiet401: true });
  } catch (error) {
    if (created && error instanceof ApiError && error.status === 401) {
      // The browser did not keep the session cookie: a page of another site frames this one
      // and third-party cookies are blocked. The link's token then goes with each call, from
      // memory only; reopening the link is needed after a reload.
      useBearer(key);
      who = created;
    } else if (error instanceof ApiError && error.status === 404) {
      who = { kind: 'local', capabilities: ALL_CAPABILITIES };
    } else if (error instanceof ApiError && error.status === 401) {
      refuse('Open your portal link', 'This page needs the link you were given. If it stopped working, ask for a new one.');
      return;
    } else {
      replace(main, errorBox(error));
      return;
    }
  }
  const appId = who.kind === 'app' ? who.appId : settings.get('app');
  if (!appId) {
    refuse('No application chosen', 'Open this page with a portal link, or as an operator add ?app=<application id> to preview an application\'s portal.');
    return;
  }
  const ctx = {
    portal: true,
    siteTitle,
    appId,
    caps: new Set(who.kind === 'app' ? who.capabilities || [] : ALL_CAPABILITIES),
    features: await features(),
  };
  ctx.can = (capability) => ctx.caps.has(capability);
  onUnauthorized(() => refuse('Your session has ended', 'Open your portal link again to continue.'));
  if (who.kind === 'app') {
    const signOut = h('button', { type: 'button', class: 'button subtle' }, 'Sign out');
    signOut.addEventListener('click', async () => {
      await api('POST', '/auth/logout', { body: {}, quiet401: true }).catch(() => null);
      refuse('Signed out', 'Open your portal link again to come back.');
    });
    replace(document.getElementById('who'), signOut);
  } else {
    replace(document.getElementById('who'), h('span', { class: 'badge badge-warn' }, 'Operator preview'));
  }
  const fixed = (view) => (context, params, query) => view(context, { ...params, app: appId }, query);
  startRouter(ctx, [
    ['/', fixed(endpoints)],
    ['/endpoint/new', fixed(endpointForm)],
    ['/endpoint/:ep/edit', fixed(endpointForm)],
    ['/msgs', fixed(messages)],
    ['/msg/:msg', fixed(message)],
  ], main);
}

start();

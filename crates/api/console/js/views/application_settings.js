// An application's own record in the console: rename it, change its uid, or delete it with
// everything it holds.

import { api, seg } from '../api.js';
import { h, toast, actionButton } from '../dom.js';
import { field, formError, onSubmit } from '../forms.js';

/** The "Application settings" panel of an application's page (console only). */
export function applicationSettings(ctx, app) {
  if (ctx.portal) return null;
  const name = field('Name', 'name', { required: true, value: app.name || '' });
  const uid = field('uid (optional)', 'uid', { value: app.uid || '' });
  const form = h('form', { class: 'stack', novalidate: true }, name, uid, formError(), h('button', { type: 'submit', class: 'button primary' }, 'Save application'));
  onSubmit(form, async () => {
    await api('PATCH', `/app/${seg(app.id)}`, { body: { name: name.control.value.trim(), uid: uid.control.value.trim() || null } });
    toast('Application saved.', 'good');
    ctx.reload();
  });
  const remove = actionButton('Delete application', async () => {
    await api('DELETE', `/app/${seg(app.id)}`);
    toast(`Application ${app.name || app.id} deleted.`, 'good');
    ctx.go('/apps');
  }, { tone: 'danger', confirmText: `Delete ${app.name || app.id} with all its endpoints and messages? This cannot be undone.` });
  return h('details', { class: 'card create app-settings' }, h('summary', {}, 'Application settings'), form, h('p', {}, remove));
}

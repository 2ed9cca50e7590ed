// Building the page with DOM APIs only. Every value that comes from a user or from the API
// becomes a text node or a property, never markup: nothing here parses HTML.

const SAFE_URL = /^(#|\/(?!\/)|https?:\/\/)/;

/** `h('a', {href: '#/apps', class: 'x', onclick: fn}, 'text', child…)` */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  setProps(element, props);
  append(element, children);
  return element;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element, for charts. */
export function svg(tag, attributes, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function setProps(element, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') {
      element.className = value;
    } else if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (['value', 'checked', 'selected', 'disabled', 'hidden', 'required', 'readOnly', 'multiple'].includes(name)) {
      element[name] = value;
    } else if (name === 'href' || name === 'src') {
      if (!SAFE_URL.test(String(value))) throw new Error(`refusing the URL ${value}`);
      element.setAttribute(name, String(value));
    } else if (name === 'style') {
      throw new Error('inline styles are not allowed by the page policy');
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

/** Appends children: nodes as they are, anything else as text. */
export function append(element, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replaces an element's content. */
export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

let uniqueCounter = 0;
/** A fresh id for label/aria wiring. */
export function uid(prefix = 'f') {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

/** A polite announcement for screen readers and a visible toast. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toast');
  if (!box) return;
  const item = h('p', { class: `toast toast-${kind}` }, message);
  box.append(item);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

/** A section heading with optional actions on its right. */
export function heading(level, text, ...actions) {
  return h('div', { class: 'heading' }, h(`h${level}`, {}, text), actions.length ? h('div', { class: 'actions' }, actions) : null);
}

/** A small labelled status badge. */
export function badge(text, tone = 'neutral') {
  return h('span', { class: `badge badge-${tone}` }, text);
}

/** A definition list from [term, value] pairs (values may be nodes). */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([term, value]) => [h('dt', {}, term), h('dd', {}, value ?? '—')]));
}

/** Text for a page that is loading. */
export function loading(what = 'Loading…') {
  return h('p', { class: 'muted', role: 'status' }, what);
}

/** A message box for an error. */
export function errorBox(error) {
  return h('div', { class: 'callout callout-error', role: 'alert' }, h('strong', {}, 'Something went wrong. '), describeError(error));
}

export function describeError(error) {
  if (error && error.fields && error.fields.length) {
    return error.fields.map((field) => `${field.loc.slice(1).join('.') || 'request'}: ${field.msg}`).join('; ');
  }
  return (error && error.message) || String(error);
}

/** An empty-state paragraph. */
export function empty(text) {
  return h('p', { class: 'empty' }, text);
}

/** A button that runs an async action, disabled while it runs, reporting failures. */
export function actionButton(label, action, { tone = '', confirmText = null, title = null } = {}) {
  const button = h('button', { type: 'button', class: `button ${tone}`.trim(), title });
  button.textContent = label;
  button.addEventListener('click', async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    button.disabled = true;
    try {
      await action(button);
    } catch (error) {
      toast(`${label}: ${describeError(error)}`, 'error');
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
  return button;
}

/**
 * Makes a table readable on a narrow screen: each cell is labelled with its column's
 * heading, and the style sheet shows one card per row below 640 px.
 */
export function responsive(table) {
  const headings = [...table.querySelectorAll('thead th')].map((cell) => cell.textContent);
  for (const row of table.querySelectorAll('tbody tr')) {
    [...row.children].forEach((cell, index) => {
      if (headings[index]) cell.dataset.label = headings[index];
    });
  }
  table.classList.add('responsive');
  return table;
}

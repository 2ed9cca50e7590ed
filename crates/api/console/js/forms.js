// Labelled form fields and the display of the API's validation errors next to them.

import { h, uid, describeError } from './dom.js';

/**
 * A labelled input. `name` is the API's field name, so a 422 about `["body", name]` lands
 * under it. Returns the wrapper; the control is `wrapper.control`.
 */
export function field(label, name, { type = 'text', value = '', hint = null, required = false, placeholder = null, multiline = false, rows = 6, options = null, autocomplete = 'off', readOnly = false } = {}) {
  const id = uid(name);
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  let control;
  if (options) {
    control = h('select', { id, name }, options.map(([optionValue, text]) => h('option', { value: optionValue }, text)));
    control.value = value;
  } else if (multiline) {
    control = h('textarea', { id, name, rows, spellcheck: 'false', placeholder, required, readOnly });
    control.value = value;
  } else if (type === 'checkbox') {
    control = h('input', { id, name, type, checked: Boolean(value) });
  } else {
    control = h('input', { id, name, type, value, placeholder, required, autocomplete, readOnly });
  }
  control.setAttribute('aria-describedby', [hintId, errorId].filter(Boolean).join(' '));
  const error = h('p', { class: 'field-error', id: errorId, hidden: true });
  const wrapper = type === 'checkbox'
    ? h('div', { class: 'field field-check' }, control, h('label', { for: id }, label), hint ? h('p', { class: 'hint', id: hintId }, hint) : null, error)
    : h('div', { class: 'field' }, h('label', { for: id }, label), hint ? h('p', { class: 'hint', id: hintId }, hint) : null, control, error);
  wrapper.control = control;
  wrapper.error = error;
  wrapper.dataset.field = name;
  return wrapper;
}

/** Clears the errors shown in a form. */
export function clearErrors(form) {
  for (const error of form.querySelectorAll('.field-error')) {
    error.hidden = true;
    error.textContent = '';
  }
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
  const summary = form.querySelector('.form-error');
  if (summary) {
    summary.hidden = true;
    summary.textContent = '';
  }
}

/**
 * Shows an API error in a form: each 422 field under its control (by `data-field`, or the
 * `aliases` map from API names to form names), the rest in the form's summary. Focuses the
 * first field in error.
 */
export function showErrors(form, error, aliases = {}) {
  clearErrors(form);
  const leftover = [];
  let first = null;
  for (const fieldError of error.fields || []) {
    const apiName = fieldError.loc[1];
    const name = aliases[apiName] || apiName;
    const wrapper = name ? form.querySelector(`[data-field="${CSS.escape(name)}"]`) : null;
    if (wrapper) {
      const box = wrapper.querySelector('.field-error');
      box.hidden = false;
      box.textContent = box.textContent ? `${box.textContent} ${fieldError.msg}` : fieldError.msg;
      const control = wrapper.control || wrapper.querySelector('input, select, textarea');
      if (control) control.setAttribute('aria-invalid', 'true');
      first = first || control;
    } else {
      leftover.push(`${fieldError.loc.slice(1).join('.') || 'request'}: ${fieldError.msg}`);
    }
  }
  const summary = form.querySelector('.form-error');
  if (summary && (leftover.length || !(error.fields || []).length)) {
    summary.hidden = false;
    summary.textContent = leftover.length ? leftover.join(' ') : describeError(error);
  }
  if (first) first.focus();
  else if (summary) summary.focus();
}

/** The box a form shows its general error in. */
export function formError() {
  return h('p', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
}

/** Comma- or newline-separated text → trimmed non-empty items. */
export function list(text) {
  return String(text || '').split(/[,\n]/).map((item) => item.trim()).filter(Boolean);
}

/** A submit handler that disables the submit button while `action` runs and shows errors. */
export function onSubmit(form, action, aliases) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll('button[type="submit"]');
    buttons.forEach((button) => { button.disabled = true; });
    clearErrors(form);
    try {
      await action();
    } catch (error) {
      showErrors(form, error, aliases);
    } finally {
      buttons.forEach((button) => { button.disabled = false; });
    }
  });
}

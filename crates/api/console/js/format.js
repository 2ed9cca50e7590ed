// Formatting of times, durations and statuses for display.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const shortTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export function when(text) {
  if (!text) return '—';
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? String(text) : dateTime.format(date);
}

export function clock(date) {
  return shortTime.format(date);
}

/** A `<time>` element showing a timestamp. */
export function timeElement(text) {
  const element = document.createElement('time');
  if (text) element.dateTime = String(text);
  element.textContent = when(text);
  return element;
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function percent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return '—';
  return `${(ratio * 100).toLocaleString(undefined, { maximumFractionDigits: 1 })} %`;
}

/** Message and attempt statuses as the API numbers them. */
const STATUSES = { 0: ['Succeeded', 'good'], 1: ['Pending', 'warn'], 2: ['Failed', 'bad'], 3: ['Sending', 'warn'], 4: ['Canceled', 'neutral'] };

export function statusName(status) {
  return (STATUSES[status] || [`Status ${status}`])[0];
}

export function statusTone(status) {
  return (STATUSES[status] || [null, 'neutral'])[1];
}

/** `datetime-local` input value → RFC 3339, or undefined when empty. */
export function localInputToIso(value) {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** RFC 3339 → `datetime-local` input value. */
export function isoToLocalInput(text) {
  if (!text) return '';
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A payload as readable text: JSON pretty-printed, anything else as it is. */
export function prettyJson(value) {
  if (value === undefined) return '';
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

// The overview: deliveries, success rate, latency and queue depth over the last hour or day,
// from the store's rollup (`GET /api/v1/stats/overview`), and this node's current figures
// from `/metrics` when it is readable.

import { api, ApiError } from '../api.js';
import { h, heading, errorBox } from '../dom.js';
import { lineChart, stat } from '../charts.js';
import { number, percent } from '../format.js';

const PERIODS = [['1h', 'Last hour', 60], ['1d', 'Last day', 15 * 60]];

export async function overview(ctx, _params, query) {
  const period = PERIODS.find(([name]) => name === query.get('period')) || PERIODS[0];
  const switcher = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Period' }, PERIODS.map(([name, label]) => h('a', {
    href: `#/?period=${name}`,
    class: 'segment',
    'aria-current': name === period[0] ? 'true' : null,
  }, label)));
  const page = h('section', {}, heading(1, 'Overview', switcher));
  page.append(await charts(ctx, period));
  const current = await nodeFigures();
  if (current) page.append(current);
  return page;
}

async function charts(ctx, [name, label, bucketSeconds]) {
  if (!ctx.features.has('/api/v1/stats/overview')) {
    return noData('This server keeps no delivery statistics yet, so there is nothing to chart.');
  }
  let stats;
  try {
    stats = await api('GET', '/stats/overview', { query: { period: name } });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return noData('This server keeps no delivery statistics yet, so there is nothing to chart.');
    return errorBox(error);
  }
  const buckets = stats.buckets || [];
  const section = h('section', { 'aria-labelledby': 'charts-title' }, h('h2', { id: 'charts-title', class: 'visually-hidden' }, `Deliveries, ${label.toLowerCase()}`));
  const tiles = h('div', { class: 'stats' },
    stat('Due now', number(stats.queue?.due)),
    stat('Scheduled', number(stats.queue?.scheduled)),
    stat('In flight', number(stats.queue?.leased)),
    stat('Failing endpoints', number(stats.endpoints?.failing), stats.endpoints?.failing ? 'bad' : 'neutral'),
    stat('Disabled endpoints', number(stats.endpoints?.disabled), stats.endpoints?.disabled ? 'warn' : 'neutral'),
  );
  section.append(tiles);
  if (!buckets.some((bucket) => bucket.attempts || bucket.delivered || bucket.failed)) {
    section.append(noData(`No deliveries in the ${label.toLowerCase()} yet.`));
    return section;
  }
  const times = buckets.map((bucket) => new Date(bucket.start));
  const rate = (count) => count / bucketSeconds;
  section.append(h('div', { class: 'charts' },
    lineChart({
      title: 'Deliveries per second',
      times,
      series: [
        { name: 'Delivered', values: buckets.map((bucket) => rate(bucket.delivered || 0)) },
        { name: 'Failed', values: buckets.map((bucket) => rate(bucket.failed || 0)) },
      ],
      format: (value) => number(value, 2),
    }),
    lineChart({
      title: 'Success rate',
      times,
      series: [{
        name: 'Succeeded',
        values: buckets.map((bucket) => {
          const total = (bucket.delivered || 0) + (bucket.failed || 0);
          return total ? (bucket.delivered || 0) / total : null;
        }),
      }],
      format: percent,
      maxValue: 1,
    }),
    lineChart({
      title: 'Latency, send to delivery (ms)',
      times,
      series: [
        { name: 'p50', values: buckets.map((bucket) => bucket.p50Ms ?? null) },
        { name: 'p99', values: buckets.map((bucket) => bucket.p99Ms ?? null) },
      ],
      format: (value) => `${number(value, 0)} ms`,
    }),
  ));
  return section;
}

function noData(text) {
  return h('div', { class: 'callout no-data' }, h('strong', {}, 'No data yet. '), text);
}

/** This node's gauges and counters from `/metrics` (Prometheus text), when it answers. */
async function nodeFigures() {
  let text;
  try {
    const response = await fetch('/metrics', { credentials: 'same-origin' });
    if (!response.ok) return null;
    text = await response.text();
  } catch {
    return null;
  }
  const samples = parseMetrics(text);
  const value = (name, labels = {}) => samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, wanted]) => sample.labels[key] === wanted))
    .reduce((sum, sample) => sum + sample.value, 0);
  const latency = (quantile) => {
    const bound = histogramQuantile(samples, 'webhookd_delivery_latency_seconds', quantile);
    if (bound === null) return '—';
    if (bound === Infinity) return '> 60 s';
    return bound >= 1 ? `≤ ${number(bound, 1)} s` : `≤ ${number(bound * 1000, bound < 0.01 ? 1 : 0)} ms`;
  };
  return h('section', { class: 'node', 'aria-labelledby': 'node-title' },
    h('h2', { id: 'node-title' }, 'This node, since it started'),
    h('div', { class: 'stats' },
      stat('Messages received', number(value('webhookd_messages_ingested_total'))),
      stat('Attempts made', number(value('webhookd_attempts_total'))),
      stat('Latency p50, send to delivery', latency(0.5)),
      stat('Latency p99', latency(0.99)),
      stat('Due now', number(value('webhookd_queue_depth', { state: 'due' }))),
      stat('Scheduled', number(value('webhookd_queue_depth', { state: 'scheduled' }))),
      stat('In flight', number(value('webhookd_queue_depth', { state: 'leased' }))),
      stat('Failing endpoints', number(value('webhookd_endpoints', { health: 'failing' })), value('webhookd_endpoints', { health: 'failing' }) ? 'bad' : 'neutral'),
      stat('Disabled endpoints', number(value('webhookd_endpoints', { health: 'disabled' })), value('webhookd_endpoints', { health: 'disabled' }) ? 'warn' : 'neutral'),
    ));
}

/**
 * The upper bound of the histogram bucket holding the `quantile` (0–1) of all observations,
 * summed over label sets; null without observations.
 */
function histogramQuantile(samples, name, quantile) {
  const counts = new Map();
  for (const sample of samples) {
    if (sample.name !== `${name}_bucket`) continue;
    const bound = sample.labels.le === '+Inf' ? Infinity : Number(sample.labels.le);
    if (!Number.isNaN(bound)) counts.set(bound, (counts.get(bound) || 0) + sample.value);
  }
  const buckets = [...counts.entries()].sort((a, b) => a[0] - b[0]);
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (!total) return null;
  const found = buckets.find(([, count]) => count >= quantile * total);
  return found ? found[0] : null;
}

function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    const value = Number(match[3]);
    if (Number.isFinite(value)) samples.push({ name: match[1], labels, value });
  }
  return samples;
}

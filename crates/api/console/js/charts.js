// Line charts drawn as inline SVG with DOM APIs: no library, no inline style (colours come
// from the style sheet's classes, so light and dark themes apply).

import { h, svg } from './dom.js';
import { clock, number } from './format.js';

const WIDTH = 640;
const HEIGHT = 220;
const PAD = { top: 12, right: 12, bottom: 28, left: 52 };

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const steps = [1, 2, 2.5, 5, 10];
  const step = steps.find((candidate) => candidate * power >= value) || 10;
  return step * power;
}

/**
 * A chart of series over time: `series` = [{name, values: [number|null]}], `times` = [Date].
 * `format` turns a y value into text. Returns a `<figure>` with a caption and, for screen
 * readers, a summary of the latest values.
 */
export function lineChart({ title, times, series, format = (value) => number(value, 1), maxValue = null }) {
  const all = series.flatMap((line) => line.values).filter((value) => value !== null && Number.isFinite(value));
  const top = maxValue ?? niceMax(Math.max(0, ...all));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const x = (index) => PAD.left + (times.length > 1 ? (index / (times.length - 1)) * plotWidth : plotWidth / 2);
  const y = (value) => PAD.top + plotHeight - (Math.min(value, top) / top) * plotHeight;

  const latest = series.map((line) => {
    const last = [...line.values].reverse().find((value) => value !== null && Number.isFinite(value));
    return `${line.name}: ${last === undefined ? 'no data' : format(last)}`;
  }).join(', ');
  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'chart', role: 'img', 'aria-label': `${title}. Latest ${latest}.` });

  for (let tick = 0; tick <= 4; tick += 1) {
    const value = (top / 4) * tick;
    const lineY = y(value);
    chart.append(
      svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: lineY, y2: lineY, class: 'grid' }),
      svg('text', { x: PAD.left - 6, y: lineY + 4, class: 'tick', 'text-anchor': 'end' }, format(value)),
    );
  }
  const labelEvery = Math.max(1, Math.ceil(times.length / 6));
  times.forEach((time, index) => {
    if (index % labelEvery === 0 || index === times.length - 1) {
      const anchor = index === 0 ? 'start' : index === times.length - 1 ? 'end' : 'middle';
      chart.append(svg('text', { x: x(index), y: HEIGHT - 8, class: 'tick', 'text-anchor': anchor }, clock(time)));
    }
  });

  series.forEach((line, seriesIndex) => {
    let path = '';
    let pen = false;
    line.values.forEach((value, index) => {
      if (value === null || !Number.isFinite(value)) {
        pen = false;
        return;
      }
      path += `${pen ? 'L' : 'M'}${x(index).toFixed(1)},${y(value).toFixed(1)}`;
      pen = true;
    });
    if (path) chart.append(svg('path', { d: path, class: `series series-${seriesIndex}` }));
  });

  const legend = h('ul', { class: 'legend' }, series.map((line, index) => h('li', { class: `legend-${index}` }, line.name)));
  return h('figure', { class: 'chart-card' }, h('figcaption', {}, title), chart, legend, h('p', { class: 'visually-hidden' }, `Latest ${latest}.`));
}

/** A single figure with a label, for counts. */
export function stat(label, value, tone = 'neutral') {
  return h('div', { class: `stat stat-${tone}` }, h('span', { class: 'stat-value' }, value), h('span', { class: 'stat-label' }, label));
}

// Small SVG charts for the operator page, drawn by hand (no library, no
// CDN). A chart is a fixed-size <svg> with a y axis from 0 to a rounded
// maximum, one polyline per series over the last N samples, and a legend;
// a bar is one stacked horizontal bar with its parts labelled.
//
// Invariant: drawing never throws on missing data; a series with no
// points draws nothing, and a chart with none says "no data yet".

const NS = 'http://www.w3.org/2000/svg';
const COLORS = ['#4da3ff', '#ffb347', '#7bd389', '#ff6b6b', '#c792ea', '#f7d154', '#5ad1d1', '#e68ad1'];

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

/// A "nice" upper bound ≥ v: 1, 2 or 5 times a power of ten.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 1 : 0);
}

export class LineChart {
  /// `series`: [{ name, color? }]; `unit` is shown after the axis maximum.
  constructor(container, { title, unit = '', series = [], width = 420, height = 160 }) {
    this.title = title;
    this.unit = unit;
    this.width = width;
    this.height = height;
    this.series = series;
    this.figure = document.createElement('figure');
    this.figure.className = 'chart';
    this.figure.dataset.title = title;
    const caption = document.createElement('figcaption');
    caption.textContent = unit ? `${title} (${unit})` : title;
    this.svg = node('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': caption.textContent });
    this.legend = document.createElement('p');
    this.legend.className = 'legend';
    this.figure.append(caption, this.svg, this.legend);
    container.append(this.figure);
  }

  /// `points[i]` is the array of values of series i (oldest first; null
  /// for a gap). `capacity` is how many samples the x axis spans.
  draw(points, capacity) {
    const { width: w, height: h } = this;
    const left = 34, bottom = 8, top = 10, right = 6;
    this.svg.replaceChildren();
    const all = points.flat().filter((v) => v !== null && Number.isFinite(v));
    const max = niceMax(all.length ? Math.max(...all) : 0);
    const plotW = w - left - right, plotH = h - top - bottom;
    for (const f of [0, 0.5, 1]) {
      const y = top + plotH * (1 - f);
      this.svg.append(node('line', { x1: left, x2: w - right, y1: y, y2: y, class: 'grid' }));
      this.svg.append(node('text', { x: left - 4, y: y + 4, 'text-anchor': 'end', class: 'axis' }, fmt(max * f)));
    }
    if (!all.length) {
      this.svg.append(node('text', { x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle', class: 'axis' }, 'no data yet'));
    }
    const step = plotW / Math.max(1, capacity - 1);
    this.legend.replaceChildren();
    points.forEach((values, i) => {
      const color = this.series[i]?.color || COLORS[i % COLORS.length];
      const offset = capacity - values.length;
      let d = '';
      let pen = false;
      values.forEach((v, j) => {
        if (v === null || !Number.isFinite(v)) { pen = false; return; }
        const x = left + (offset + j) * step;
        const y = top + plotH * (1 - v / max);
        d += `${pen ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
        pen = true;
      });
      if (d) this.svg.append(node('path', { d, stroke: color, class: 'line', 'data-series': this.series[i]?.name || '' }));
      // A dot where a point has no neighbour to draw a line to (a lone
      // sample, e.g. the only interval with a join).
      values.forEach((v, j) => {
        const ok = (x) => x !== null && x !== undefined && Number.isFinite(x);
        if (!ok(v) || ok(values[j - 1]) || ok(values[j + 1])) return;
        this.svg.append(node('circle', { cx: (left + (offset + j) * step).toFixed(1), cy: (top + plotH * (1 - v / max)).toFixed(1), r: 2.5, fill: color }));
      });
      const last = [...values].reverse().find((v) => v !== null && Number.isFinite(v));
      const item = document.createElement('span');
      item.innerHTML = '<i></i>';
      item.firstChild.style.background = color;
      item.append(` ${this.series[i]?.name || ''}: ${last === undefined ? '–' : `${fmt(last)}${this.unit ? ` ${this.unit}` : ''}`}`);
      this.legend.append(item);
    });
  }
}

/// One stacked bar: `parts` is [{ name, value }].
export class StackedBar {
  constructor(container, { title, width = 420, height = 34 }) {
    this.width = width;
    this.height = height;
    this.figure = document.createElement('figure');
    this.figure.className = 'chart';
    this.figure.dataset.title = title;
    const caption = document.createElement('figcaption');
    caption.textContent = title;
    this.svg = node('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
    this.legend = document.createElement('p');
    this.legend.className = 'legend';
    this.figure.append(caption, this.svg, this.legend);
    container.append(this.figure);
  }

  draw(parts) {
    this.svg.replaceChildren();
    this.legend.replaceChildren();
    const total = parts.reduce((s, p) => s + p.value, 0);
    if (!total) {
      this.svg.append(node('text', { x: this.width / 2, y: this.height / 2 + 4, 'text-anchor': 'middle', class: 'axis' }, 'no viewers'));
      return;
    }
    let x = 0;
    parts.forEach((p, i) => {
      const wPart = (p.value / total) * this.width;
      const color = COLORS[i % COLORS.length];
      this.svg.append(node('rect', { x, y: 4, width: Math.max(0, wPart), height: this.height - 8, fill: color, 'data-part': p.name }));
      x += wPart;
      const item = document.createElement('span');
      item.innerHTML = '<i></i>';
      item.firstChild.style.background = color;
      item.append(` ${p.name}: ${p.value} (${Math.round((100 * p.value) / total)}%)`);
      this.legend.append(item);
    });
  }
}

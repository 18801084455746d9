// Line charts in SVG: one class for the loss/accuracy/reward curves and the alpha small multiples.

import { html, legendItem, svg } from './svg.js';

/** Lower and upper bound of every y in `series`, padded so that a flat line sits mid-chart. */
export function yExtent(series) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const [, y] of s.points) {
      if (Number.isFinite(y)) {
        lo = Math.min(lo, y);
        hi = Math.max(hi, y);
      }
    }
  }
  if (lo === Infinity) return [0, 1];
  const pad = hi > lo ? (hi - lo) * 0.08 : Math.max(Math.abs(hi) * 0.05, 1e-3);
  return [lo - pad, hi + pad];
}

function xExtent(series) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const [x] of s.points) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
  }
  if (lo === Infinity) return [0, 1];
  return hi > lo ? [lo, hi] : [lo - 0.5, hi + 0.5];
}

/** Axis labels for `values`, `step` apart: as many decimals as tell neighbouring ticks apart. */
function tickLabels(values, step) {
  const decimals = Math.min(8, Math.max(0, Math.ceil(-Math.log10(step))));
  return values.map((v) => v.toFixed(decimals));
}

/**
 * A line chart in a <figure>: the caption holds the title (a string or nodes) and, unless
 * `compact`, a legend of the series; `update` redraws the plot. Compact charts (the alpha small
 * multiples) label only their y range, and only with `yLabels` (the first chart of a row).
 */
export class LineChart {
  constructor(parent, { width = 360, height = 190, title = '', xLabel = 'step', compact = false, yLabels = true } = {}) {
    this.width = width;
    this.height = height;
    this.compact = compact;
    this.xLabel = xLabel;
    this.yLabels = yLabels;
    const left = yLabels ? (compact ? 30 : 44) : 4;
    this.margin = compact ? { left, right: 4, top: 4, bottom: 4 } : { left, right: 10, top: 8, bottom: 30 };
    this.figure = html('figure', { class: `chart${compact ? ' compact' : ''}${yLabels ? ' y-labels' : ''}` });
    const heading = html('span', { class: 'chart-title' });
    heading.append(...(typeof title === 'string' ? [title] : title));
    this.legend = html('span', { class: 'chart-legend' });
    this.root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height });
    this.figure.append(html('figcaption', {}, [heading, this.legend]), this.root);
    parent.append(this.figure);
    this.update([]);
  }

  /** `series`: [{name, color, points: [[x, y], ...], dash?}]; `yDomain` fixes the y range. */
  update(series, yDomain = null) {
    const { left, right, top, bottom } = this.margin;
    const w = this.width - left - right;
    const h = this.height - top - bottom;
    const [x0, x1] = xExtent(series);
    const [y0, y1] = yDomain ?? yExtent(series);
    const px = (x) => left + ((x - x0) / (x1 - x0)) * w;
    const py = (y) => top + h - ((y - y0) / (y1 - y0)) * h;

    const parts = [svg('rect', { class: 'plot-area', x: left, y: top, width: w, height: h })];
    const yTicks = this.compact ? [y0, y1] : [y0, (y0 + y1) / 2, y1];
    const labels = tickLabels(yTicks, yTicks[1] - yTicks[0]);
    yTicks.forEach((y, i) => {
      parts.push(svg('line', { class: 'grid', x1: left, x2: left + w, y1: py(y), y2: py(y) }));
      if (this.yLabels) parts.push(svg('text', { class: 'tick', x: left - 3, y: py(y) + 3, 'text-anchor': 'end', text: labels[i] }));
    });
    if (!this.compact) {
      for (const [x, anchor] of [[x0, 'start'], [x1, 'end']]) {
        const label = Number.isInteger(x) ? String(x) : '';
        parts.push(svg('text', { class: 'tick', x: px(x), y: top + h + 12, 'text-anchor': anchor, text: label }));
      }
      parts.push(svg('text', { class: 'axis-label', x: left + w / 2, y: top + h + 25, 'text-anchor': 'middle', text: this.xLabel }));
      this.legend.replaceChildren(...series.map((s) => legendItem(s.name, s.color)));
    }
    for (const s of series) {
      const points = s.points.filter(([, y]) => Number.isFinite(y));
      if (points.length === 1) {
        parts.push(svg('circle', { class: 'dot', cx: px(points[0][0]), cy: py(points[0][1]), r: 2.5, fill: s.color }));
      } else if (points.length > 1) {
        const coords = points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
        parts.push(svg('polyline', { class: 'line', stroke: s.color, 'stroke-dasharray': s.dash, points: coords }));
      }
    }
    this.root.replaceChildren(...parts);
  }
}

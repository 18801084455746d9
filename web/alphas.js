// The alpha evolution of one cell: a small chart per edge, arranged in rows by the node the edge
// enters (node i has i+2 incoming edges), each with a line per operation.

import { LineChart, yExtent } from './charts.js';
import { html } from './svg.js';
import { opColor } from './ops.js';
import { stateLabel } from './cell.js';

export class AlphaGrid {
  /** `steps`: intermediate nodes of the cell; `ops`: the operation of each alpha column. */
  constructor(container, steps, ops) {
    this.ops = ops;
    this.charts = [];
    this.firstEdge = [];
    for (let i = 0; i < steps; i++) {
      const row = html('div', { class: 'alpha-row' });
      row.append(html('span', { class: 'row-label', text: `node ${i}` }));
      this.firstEdge.push(this.charts.length);
      for (let j = 0; j < i + 2; j++) {
        const title = [...stateLabel(j), ' → ', ...stateLabel(i + 2)];
        const yLabels = j === 0;
        this.charts.push(new LineChart(row, { width: yLabels ? 104 : 78, height: 58, title, compact: true, yLabels }));
      }
      container.append(row);
    }
  }

  /**
   * `history`: [{step, probs: [[p per op] per edge]}]; `entries`: the derived cell's
   * [[op, input], ...], whose edges are outlined in the colour of their operation.
   */
  update(history, entries) {
    const series = this.charts.map((_, e) =>
      this.ops.map((op, k) => ({ name: op, color: opColor(op), points: history.map((h) => [h.step, h.probs[e][k]]) })),
    );
    // One y range for the whole cell, so that panels compare at a glance.
    const yDomain = yExtent(series.flat());
    const chosen = new Map();
    entries.forEach(([op, input], k) => chosen.set(this.firstEdge[Math.floor(k / 2)] + input, op));
    this.charts.forEach((chart, e) => {
      chart.update(series[e], yDomain);
      const op = chosen.get(e);
      chart.figure.classList.toggle('chosen', op !== undefined);
      chart.figure.style.borderColor = op === undefined ? '' : opColor(op);
      chart.figure.title = op === undefined ? 'not kept in the derived cell' : `kept in the derived cell as ${op}`;
    });
  }
}

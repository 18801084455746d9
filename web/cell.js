// A cell of a genotype as an SVG diagram, laid out left to right as in the DARTS paper's figures:
// the inputs c_{k-2} and c_{k-1}, the intermediate nodes 0..n-1, the output c_{k} fed by the
// concatenated nodes; every edge coloured and labelled with its operation.

import { html, svg } from './svg.js';
import { opColor } from './ops.js';

/** The name of cell state `j`: 0 and 1 are the cell inputs, j >= 2 is intermediate node j-2. */
export function stateName(j) {
  return j === 0 ? 'c_{k-2}' : j === 1 ? 'c_{k-1}' : String(j - 2);
}

/** The same name as HTML nodes, with the subscript set as <sub>. */
export function stateLabel(j) {
  return j < 2 ? ['c', html('sub', { text: j === 0 ? 'k-2' : 'k-1' })] : [String(j - 2)];
}

const NODE_H = 26;
const COLUMN = 96;

/** Node text in SVG: "c" with a lowered subscript for the cell's states. */
function nodeText(x, y, name) {
  const text = svg('text', { x, y: y + 4, 'text-anchor': 'middle' });
  const sub = name.match(/^c_\{(.+)\}$/);
  if (sub) text.append('c', svg('tspan', { dy: 4, 'font-size': '0.75em', text: sub[1] }));
  else text.append(name);
  return text;
}

/**
 * Positions of the states: inputs at the left (c_{k-2} above, c_{k-1} below), node i in column
 * i+1 alternately near the top and the bottom (so that long edges pass between them through
 * the free middle band), the output at the right.
 */
function layout(nodes, height) {
  const mid = height / 2;
  const swing = height * 0.3;
  const pos = [
    { x: 40, y: mid - height * 0.36, w: 58 },
    { x: 40, y: mid + height * 0.36, w: 58 },
  ];
  // The inputs' edges fan out to every node: they get a wider first column.
  const x = (column) => 60 + COLUMN * column;
  for (let i = 0; i < nodes; i++) pos.push({ x: x(i + 1), y: mid + (i % 2 ? swing : -swing), w: 30 });
  pos.push({ x: x(nodes + 1) - 30, y: mid, w: 44 });
  return pos;
}

/**
 * Cubic curve from the right side of `a` to the left side of `b` (`dy` below its middle),
 * leaving and arriving level.
 */
function curve(a, b, dy = 0) {
  const [sx, sy, tx, ty] = [a.x + a.w / 2, a.y, b.x - b.w / 2, b.y + dy];
  const bend = Math.max((tx - sx) * 0.5, 20);
  const c = [sx + bend, sy, tx - bend, ty];
  const at = (t) => {
    const u = 1 - t;
    return [
      u * u * u * sx + 3 * u * u * t * c[0] + 3 * u * t * t * c[2] + t * t * t * tx,
      u * u * u * sy + 3 * u * u * t * c[1] + 3 * u * t * t * c[3] + t * t * t * ty,
    ];
  };
  return { d: `M${sx},${sy} C${c.join(',')} ${tx},${ty}`, end: [tx, ty], at };
}

/** Width of a character of an edge label (12px sans-serif), for keeping labels apart. */
const LABEL_CHAR = 6.8;
const LABEL_H = 13;

function box(x, y, w, h) {
  return { x0: x - w / 2, x1: x + w / 2, y0: y - h / 2, y1: y + h / 2 };
}

function overlap(a, b) {
  return Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0)) * Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));
}

/**
 * Where to put a label `width` wide for curve `c`: the first spot that overlaps no node and no
 * earlier label in `placed` (else the one that overlaps least), trying points on the curve from
 * the target's end (fewer edges crowd there than at the inputs), then just above and below it.
 * The label's box is added to `placed`.
 */
function labelPosition(c, width, placed) {
  let best = null;
  for (const dy of [0, -LABEL_H, LABEL_H]) {
    for (const t of [0.7, 0.6, 0.8, 0.5, 0.4, 0.3]) {
      const [x, y] = c.at(t);
      const b = box(x, y + dy, width, LABEL_H);
      const cost = placed.reduce((sum, p) => sum + overlap(b, p), 0);
      if (!best || cost < best.cost) best = { cost, x, y: y + dy, b };
      if (cost === 0) {
        placed.push(b);
        return [x, y + dy];
      }
    }
  }
  placed.push(best.b);
  return [best.x, best.y];
}

function arrowHead([x, y], color) {
  return svg('path', { d: `M${x},${y} l-7,-3.5 v7 z`, fill: color });
}

/** The cell in words, for screen readers: "node 0 = sep_conv_3x3(c_{k-1}) + …; output = concat(0, 1)". */
function describe(entries, concat) {
  const nodes = [];
  for (let k = 0; k < entries.length; k += 2) {
    const inputs = entries.slice(k, k + 2).map(([op, input]) => `${op}(${stateName(input)})`);
    nodes.push(`node ${k / 2} = ${inputs.join(' + ')}`);
  }
  return `${nodes.join('; ')}; output = concat(${concat.map(stateName).join(', ')})`;
}

/**
 * The diagram of one cell. `entries`: [[op, input state], ...], two per intermediate node;
 * `concat`: the states the output concatenates. `labels: false` leaves the operation names off
 * (the small diagrams of ENAS's sampled cells, where colour alone tells the operation); `width`
 * fixes the drawn width, which otherwise follows the container.
 */
export function cellDiagram(entries, concat, { labels = true, width = null } = {}) {
  const nodes = entries.length / 2;
  const height = labels ? 300 : 170;
  const pos = layout(nodes, height);
  const out = nodes + 2;
  const viewWidth = pos[out].x + pos[out].w / 2 + 4;
  const root = svg('svg', {
    class: 'cell-diagram',
    viewBox: `0 0 ${viewWidth} ${height}`,
    role: 'img',
    'aria-label': describe(entries, concat),
  });
  // Drawn no larger than its natural size: labels stay at their font size on wide screens.
  if (width) root.setAttribute('width', width);
  else root.style.maxWidth = `${viewWidth}px`;

  const edges = svg('g', { class: 'edges' });
  const edgeLabels = svg('g', { class: 'edge-labels' });
  for (const j of concat) {
    const c = curve(pos[j], pos[out]);
    edges.append(
      svg('g', { class: 'edge concat', 'data-from': stateName(j), 'data-to': 'c_{k}' }, [
        svg('path', { d: c.d, stroke: '#8a8f98', 'stroke-dasharray': '4 3' }),
        arrowHead(c.end, '#8a8f98'),
      ]),
    );
  }
  const placed = pos.map((p) => box(p.x, p.y, p.w + 4, NODE_H + 4));
  entries.forEach(([op, input], k) => {
    const target = Math.floor(k / 2) + 2;
    const color = opColor(op);
    // A node's two inputs arrive apart, the first above the second.
    const c = curve(pos[input], pos[target], k % 2 ? 5 : -5);
    const edge = svg('g', { class: 'edge', 'data-op': op, 'data-from': stateName(input), 'data-to': stateName(target) }, [
      svg('path', { d: c.d, stroke: color }),
      arrowHead(c.end, color),
    ]);
    edges.append(edge);
    if (labels) {
      const [lx, ly] = labelPosition(c, op.length * LABEL_CHAR + 4, placed);
      edgeLabels.append(svg('text', { class: 'edge-label', x: lx, y: ly + 4, fill: color, 'text-anchor': 'middle', text: op }));
    }
  });

  const nodeGroup = svg('g', { class: 'nodes' });
  pos.forEach((p, j) => {
    const kind = j < 2 ? 'input' : j === out ? 'output' : 'intermediate';
    const name = j === out ? 'c_{k}' : stateName(j);
    nodeGroup.append(
      svg('g', { class: `node ${kind}`, 'data-node': name }, [
        svg('rect', { x: p.x - p.w / 2, y: p.y - NODE_H / 2, width: p.w, height: NODE_H, rx: 7 }),
        nodeText(p.x, p.y, name),
      ]),
    );
  });
  root.append(edges, nodeGroup, edgeLabels);
  return root;
}

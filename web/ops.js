// One colour per operation, shared by the alpha charts, the legend and the cell diagrams.

import { legendItem } from './svg.js';

const OP_COLORS = {
  none: '#9aa0a6',
  max_pool_3x3: '#e15759',
  avg_pool_3x3: '#f28e2b',
  skip_connect: '#17becf',
  identity: '#17becf', // ENAS's name for skip_connect
  sep_conv_3x3: '#4e79a7',
  sep_conv_5x5: '#59a14f',
  dil_conv_3x3: '#b07aa1',
  dil_conv_5x5: '#9c755f',
};
const SPARE_COLORS = ['#ff9da7', '#bab0ac', '#edc948', '#2f4b7c', '#a05195'];

/** The colour of an operation; names outside the DARTS and ENAS sets get a stable spare colour. */
export function opColor(name) {
  if (OP_COLORS[name]) return OP_COLORS[name];
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return SPARE_COLORS[hash % SPARE_COLORS.length];
}

/** Fills `container` with one swatch and name per operation. */
export function renderLegend(container, ops) {
  container.replaceChildren(...ops.map((op) => legendItem(op, opColor(op))));
}

// Tiny DOM helpers for building SVG and HTML without a framework.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Sets `attrs` on `node` (`text` sets its text content; null and undefined are left off) and appends `children`. */
function fill(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** An SVG element with attributes and children. */
export function svg(tag, attrs = {}, children = []) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** An HTML element with attributes and children. */
export function html(tag, attrs = {}, children = []) {
  return fill(document.createElement(tag), attrs, children);
}

/** A legend entry: a swatch of `color` and `name`. */
export function legendItem(name, color) {
  return html('span', { class: 'legend-item' }, [html('i', { style: `background:${color}` }), name]);
}

/**
 * Building DOM from data: every value goes in as text (textContent or an attribute), never
 * as HTML, so a run named `<img src=x onerror=...>` shows as those characters.
 */

type Child = Node | string | number | null | undefined | false;

/** Attributes and handlers of an element made by `h`. */
export interface IAttrs {
  className?: string;
  title?: string;
  [attribute: string]: string | number | boolean | undefined | EventListener;
}

/** An element with attributes, listeners (`on…`) and children (text or nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: IAttrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) {
      continue;
    }
    if (name === 'className') {
      element.className = String(value);
    } else if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2).toLowerCase(), value as EventListener);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, ...children);
  return element;
}

/** Append children to a node, strings as text nodes. */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Remove every child of a node. */
export function clear(node: Node): void {
  while (node.firstChild) {
    node.removeChild(node.firstChild);
  }
}

/** A value shown as short text: JSON for objects, as-is for text and numbers. */
export function show(value: unknown): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }
  return JSON.stringify(value);
}

/** A time in seconds since the epoch as local date and time. */
export function when(seconds: number | null | undefined): string {
  if (!seconds) {
    return '—';
  }
  const date = new Date(seconds * 1000);
  return date.toLocaleString(undefined, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit'
  });
}

/** A duration in seconds, short. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '—';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 120) {
    return `${seconds.toFixed(1)} s`;
  }
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** A size in bytes as short text: 512 B, 3.4 KB, 12 MB. */
export function bytes(size: number): string {
  if (!Number.isFinite(size)) {
    return '—';
  }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A status badge. */
export function statusBadge(status: string): HTMLElement {
  return h(
    'span',
    { className: `jp-mlops-badge jp-mlops-status-${status.replace(/[^a-z]/g, '')}`, title: `status: ${status}` },
    status
  );
}

/** A two-column table of key and value. */
export function keyValueTable(rows: Array<[string, unknown]>, className = ''): HTMLElement {
  return h(
    'table',
    { className: `jp-mlops-table ${className}` },
    h('tbody', {}, ...rows.map(([key, value]) => h('tr', {}, h('th', { scope: 'row' }, key), h('td', {}, show(value)))))
  );
}

/**
 * Building DOM from data: every value goes in as text (textContent or an attribute), never
 * as HTML, so a run named `<img src=x onerror=...>` shows as those characters.
 */

/** What `h` and `append` take as a child: a node, or a value shown as text; empties skipped. */
export type Child = Node | string | number | null | undefined | false;

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

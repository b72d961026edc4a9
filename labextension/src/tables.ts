/**
 * Tables built one way everywhere: a header row of column names, then rows of cells, every
 * value as text (or an element made from data as text).
 */
import { Child, h } from './dom';
import { show } from './format';

/** A row: its cells (a `td`/`th` element as given, anything else put in a `td`). */
export type Row = Child[] | HTMLTableRowElement;

function cell(content: Child): HTMLTableCellElement {
  return content instanceof HTMLTableCellElement ? content : h('td', {}, content);
}

function row(content: Row): HTMLTableRowElement {
  return content instanceof HTMLTableRowElement ? content : h('tr', {}, ...content.map(cell));
}

/** A table with a header row of column names. */
export function dataTable(columns: Child[], rows: Row[], className = ''): HTMLTableElement {
  return h(
    'table',
    { className: `jp-mlops-table ${className}`.trim() },
    h('thead', {}, h('tr', {}, ...columns.map(name => h('th', { scope: 'col' }, name)))),
    h('tbody', {}, ...rows.map(row))
  );
}

/** A row's heading cell. */
export function rowHeading(...children: Child[]): HTMLTableCellElement {
  return h('th', { scope: 'row' }, ...children);
}

/** A two-column table of key and value. */
export function keyValueTable(rows: Array<[string, unknown]>, className = ''): HTMLTableElement {
  return h(
    'table',
    { className: `jp-mlops-table ${className}`.trim() },
    h(
      'tbody',
      {},
      ...rows.map(([key, value]) => h('tr', {}, rowHeading(key), h('td', {}, show(value))))
    )
  );
}

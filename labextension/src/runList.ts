/**
 * The sidebar's list of runs: one run's row (name, time, metrics, badges, a checkbox to
 * select it for comparison) and the texts around the list.
 */
import type { IRun } from './api';
import { kindBadge, linearBadge, replaysBadge, statusBadge } from './badges';
import { h } from './dom';
import { show, when } from './format';

/** Which runs the list shows. */
export type Scope = 'notebook' | 'all';

/** How many metrics a row shows after the run's time. */
const ROW_METRICS = 3;

/** What a row does when a person acts on it. */
export interface IRowActions {
  open(run: IRun): void;
  select(run: IRun, selected: boolean): void;
}

/** The name's pieces split after `,` `[` `/` (sweep points' names), to break lines there. */
export function nameBreaks(name: string): string[] {
  return name.split(/(?<=[,[/])/);
}

/** The line under a run's name: when it started, its notebook (listing all), a few metrics. */
export function runMeta(run: IRun, scope: Scope): string {
  const metrics = Object.entries(run.metrics)
    .slice(0, ROW_METRICS)
    .map(([key, value]) => `${key} ${show(value)}`);
  return [when(run.start_time), scope === 'all' && run.notebook ? run.notebook : null, ...metrics]
    .filter(Boolean)
    .join(' · ');
}

/** The note above the list saying whose runs it shows. */
export function scopeNote(scope: Scope, notebook: string | null): string {
  if (scope !== 'notebook') {
    return '';
  }
  return notebook ? `Runs of ${notebook}` : 'No notebook in focus: showing all runs';
}

/** What an empty list says: how to start, or that the filter matched nothing. */
export function emptyText(store: string | null): string {
  return store === null
    ? 'No runs yet: start one in a notebook with %load_ext jupyter_mlops and %track start.'
    : 'No runs match.';
}

/** What the selection line says. */
export function selectionNote(count: number): string {
  return count === 0 ? 'Select two or more runs to compare' : `${count} selected`;
}

function breakable(name: string): Node[] {
  const parts: Node[] = [];
  for (const piece of nameBreaks(name)) {
    if (parts.length) {
      parts.push(document.createElement('wbr'));
    }
    parts.push(document.createTextNode(piece));
  }
  return parts;
}

/** A run's row in the list. */
export function runRow(
  run: IRun,
  scope: Scope,
  selected: boolean,
  actions: IRowActions
): HTMLElement {
  const checkbox = h('input', {
    type: 'checkbox',
    className: 'jp-mlops-select',
    'aria-label': `Select run ${run.name} for comparison`,
    onchange: () => actions.select(run, checkbox.checked)
  });
  checkbox.checked = selected;
  const open = h(
    'button',
    {
      className: 'jp-mlops-run-open',
      title: `Show run ${run.name}`,
      onclick: () => actions.open(run)
    },
    h('span', { className: 'jp-mlops-run-name' }, ...breakable(run.name)),
    h('span', { className: 'jp-mlops-run-meta' }, runMeta(run, scope))
  );
  return h(
    'li',
    {
      className: 'jp-mlops-run',
      'data-run-id': run.id,
      'data-status': run.status,
      'data-kind': run.kind
    },
    checkbox,
    open,
    h(
      'span',
      { className: 'jp-mlops-run-badges' },
      statusBadge(run.status),
      kindBadge(run.kind),
      run.linear === false ? linearBadge(run) : null,
      replaysBadge(run)
    )
  );
}

/**
 * What differs between compared runs, as text. Pure functions, no DOM.
 */
import type { IDiff, IRun } from './api';
import { plural } from './format';

/** How many of the packages that differ a difference line names. */
const NAMED_PACKAGES = 8;

/** The metric keys of the runs, sorted: those with series, else those with a latest value. */
export function metricKeys(runs: IRun[]): string[] {
  return [...new Set(runs.flatMap(run => run.metric_keys ?? Object.keys(run.metrics)))].sort();
}

/** What differs between two runs besides params and metrics, as one line. */
export function differenceText(diff: IDiff): string {
  if (diff.same) {
    return 'the same';
  }
  const parts: string[] = [];
  const datasets = Object.keys(diff.datasets ?? {});
  const packages = Object.keys(diff.packages ?? {});
  const cells = diff.cells?.differences?.length ?? 0;
  if (datasets.length) {
    parts.push(`data differs: ${datasets.join(', ')}`);
  }
  if (packages.length) {
    const more = packages.length > NAMED_PACKAGES ? '…' : '';
    parts.push(`packages differ: ${packages.slice(0, NAMED_PACKAGES).join(', ')}${more}`);
  }
  if (cells) {
    parts.push(plural(cells, 'cell difference'));
  }
  return parts.join('; ') || 'params or metrics differ (above)';
}

/**
 * Runs side by side in the main area: the params that differ, latest metrics, and each
 * metric's curves overlaid.
 */
import { Widget } from '@lumino/widgets';

import { ApiError, ICompare, IRun, api } from './api';
import { ISeries, metricChart, purgeCharts } from './charts';
import { append, clear, h, show, statusBadge } from './dom';

/** The comparison of two or more runs. */
export class CompareView extends Widget {
  constructor(
    readonly runIds: string[],
    private _openRun: (id: string) => void
  ) {
    super();
    this.addClass('jp-mlops-compare');
    this.id = `jupyter-mlops-compare-${runIds.map(id => id.slice(0, 8)).join('-')}`;
    this.title.label = `Compare ${runIds.length} runs`;
    this.title.closable = true;
    this.node.tabIndex = -1;
    append(this.node, h('p', { className: 'jp-mlops-loading' }, 'Loading…'));
    void this._load();
  }

  dispose(): void {
    purgeCharts(this.node);
    super.dispose();
  }

  private async _load(): Promise<void> {
    let data: ICompare;
    try {
      data = await api.compare(this.runIds);
    } catch (error) {
      clear(this.node);
      append(this.node, h('p', { className: 'jp-mlops-error', role: 'alert' }, error instanceof ApiError ? error.message : String(error)));
      return;
    }
    clear(this.node);
    const runs = data.runs;
    this.title.caption = `Compare ${runs.map(run => run.name).join(', ')}`;
    append(
      this.node,
      h('h2', {}, `Comparing ${runs.length} runs`),
      this._runsTable(runs),
      h('section', { className: 'jp-mlops-section' }, h('h3', {}, 'Params'), this._valuesTable(runs, run => run.params, 'params')),
      h('section', { className: 'jp-mlops-section' }, h('h3', {}, 'Metrics (latest)'), this._valuesTable(runs, run => run.metrics, 'metrics')),
      this._otherDifferences(data)
    );
    const keys = [...new Set(runs.flatMap(run => run.metric_keys ?? Object.keys(run.metrics)))].sort();
    const charts = h('div', { className: 'jp-mlops-charts' });
    this.node.appendChild(h('section', { className: 'jp-mlops-section' }, h('h3', {}, 'Metric curves'), charts));
    for (const key of keys) {
      const series: ISeries[] = [];
      for (const run of runs) {
        if (!(key in run.metrics)) {
          continue;
        }
        try {
          const answer = await api.metric(run.id, key);
          series.push({ name: `${run.name} (${run.id.slice(0, 6)})`, points: answer.points });
        } catch {
          // a run deleted meanwhile: its curve is simply missing
        }
      }
      if (this.isDisposed) {
        return;
      }
      // A metric logged once per run is in the table above; curves need steps.
      if (series.some(line => line.points.length > 1)) {
        charts.appendChild(metricChart(key, series));
      }
    }
  }

  private _runsTable(runs: IRun[]): HTMLElement {
    return h(
      'table',
      { className: 'jp-mlops-table jp-mlops-compare-runs' },
      h('thead', {}, h('tr', {}, ...['run', 'status', 'id', 'notebook'].map(name => h('th', { scope: 'col' }, name)))),
      h(
        'tbody',
        {},
        ...runs.map(run =>
          h(
            'tr',
            {},
            h('td', {}, h('button', { className: 'jp-mlops-link', onclick: () => this._openRun(run.id) }, run.name)),
            h('td', {}, statusBadge(run.status)),
            h('td', { className: 'jp-mlops-hash' }, run.id.slice(0, 12)),
            h('td', {}, run.notebook ?? '—')
          )
        )
      )
    );
  }

  private _valuesTable(runs: IRun[], pick: (run: IRun) => Record<string, unknown>, what: string): HTMLElement {
    const keys = [...new Set(runs.flatMap(run => Object.keys(pick(run))))].sort();
    if (!keys.length) {
      return h('p', { className: 'jp-mlops-none' }, `No ${what}.`);
    }
    const rows = keys.map(key => {
      const values = runs.map(run => (key in pick(run) ? JSON.stringify(pick(run)[key]) : undefined));
      const differs = new Set(values).size > 1;
      return h(
        'tr',
        { className: differs ? 'jp-mlops-differs' : '' },
        h('th', { scope: 'row' }, key, differs ? h('span', { className: 'jp-mlops-differs-mark', title: 'differs' }, ' ≠') : ''),
        ...runs.map(run => h('td', {}, key in pick(run) ? show(pick(run)[key]) : '—'))
      );
    });
    const onlyDifferent = h('input', {
      type: 'checkbox',
      onchange: () => table.classList.toggle('jp-mlops-only-differences', onlyDifferent.checked)
    });
    const table = h(
      'table',
      { className: 'jp-mlops-table jp-mlops-values' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'key'), ...runs.map(run => h('th', { scope: 'col' }, run.name)))),
      h('tbody', {}, ...rows)
    );
    return h('div', {}, h('label', { className: 'jp-mlops-only-label' }, onlyDifferent, ' only differences'), table);
  }

  private _otherDifferences(data: ICompare): HTMLElement {
    const items: HTMLElement[] = [];
    for (const diff of data.diffs) {
      const parts: string[] = [];
      const datasets = Object.keys(diff.datasets ?? {});
      const packages = Object.keys(diff.packages ?? {});
      const cells = diff.cells?.differences?.length ?? 0;
      if (datasets.length) {
        parts.push(`data differs: ${datasets.join(', ')}`);
      }
      if (packages.length) {
        parts.push(`packages differ: ${packages.slice(0, 8).join(', ')}${packages.length > 8 ? '…' : ''}`);
      }
      if (cells) {
        parts.push(`${cells} cell difference${cells === 1 ? '' : 's'}`);
      }
      items.push(h('li', {}, `${diff.a.name} → ${diff.b.name}: `, diff.same ? 'the same' : parts.join('; ') || 'params or metrics differ (above)'));
    }
    return h('section', { className: 'jp-mlops-section' }, h('h3', {}, 'Other differences'), h('ul', { className: 'jp-mlops-diffs' }, ...items));
  }
}

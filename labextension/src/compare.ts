/**
 * Runs side by side in the main area: the params that differ, latest metrics, and each
 * metric's curves overlaid.
 */
import { Widget } from '@lumino/widgets';

import { ApiError, ICompare, IRun, api } from './api';
import { statusBadge } from './badges';
import { ISeries, metricChart, purgeCharts } from './charts';
import { differenceText, metricKeys } from './differences';
import { append, clear, h } from './dom';
import { show } from './format';
import { none, section } from './sections';
import { dataTable, rowHeading } from './tables';

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
      append(
        this.node,
        h(
          'p',
          { className: 'jp-mlops-error', role: 'alert' },
          error instanceof ApiError ? error.message : String(error)
        )
      );
      return;
    }
    clear(this.node);
    const runs = data.runs;
    this.title.caption = `Compare ${runs.map(run => run.name).join(', ')}`;
    append(
      this.node,
      h('h2', {}, `Comparing ${runs.length} runs`),
      this._runsTable(runs),
      section(
        'Params',
        this._valuesTable(runs, run => run.params, 'params')
      ),
      section(
        'Metrics (latest)',
        this._valuesTable(runs, run => run.metrics, 'metrics')
      ),
      this._otherDifferences(data)
    );
    const charts = h('div', { className: 'jp-mlops-charts' });
    this.node.appendChild(section('Metric curves', charts));
    // Every series is asked for at once; the charts still appear in the order of their keys.
    const pending = metricKeys(runs).map(key => ({ key, series: this._series(runs, key) }));
    for (const { key, series } of pending) {
      const lines = (await series).filter((line): line is ISeries => line !== null);
      if (this.isDisposed) {
        return;
      }
      // A metric logged once per run is in the table above; curves need steps.
      if (lines.some(line => line.points.length > 1)) {
        charts.appendChild(metricChart(key, lines));
      }
    }
  }

  /** A metric's series in each run that has it (null where it could not be fetched). */
  private _series(runs: IRun[], key: string): Promise<Array<ISeries | null>> {
    return Promise.all(
      runs
        .filter(run => key in run.metrics)
        .map(run =>
          api.metric(run.id, key).then(
            answer => ({ name: `${run.name} (${run.id.slice(0, 6)})`, points: answer.points }),
            // a run deleted meanwhile: its curve is simply missing
            () => null
          )
        )
    );
  }

  private _runsTable(runs: IRun[]): HTMLElement {
    return dataTable(
      ['run', 'status', 'id', 'notebook'],
      runs.map(run => [
        h('button', { className: 'jp-mlops-link', onclick: () => this._openRun(run.id) }, run.name),
        statusBadge(run.status),
        h('td', { className: 'jp-mlops-hash' }, run.id.slice(0, 12)),
        run.notebook ?? '—'
      ]),
      'jp-mlops-compare-runs'
    );
  }

  private _valuesTable(
    runs: IRun[],
    pick: (run: IRun) => Record<string, unknown>,
    what: string
  ): HTMLElement {
    const keys = [...new Set(runs.flatMap(run => Object.keys(pick(run))))].sort();
    if (!keys.length) {
      return none(`No ${what}.`);
    }
    const rows = keys.map(key => {
      const values = runs.map(run =>
        key in pick(run) ? JSON.stringify(pick(run)[key]) : undefined
      );
      const differs = new Set(values).size > 1;
      return h(
        'tr',
        { className: differs ? 'jp-mlops-differs' : '' },
        rowHeading(
          key,
          differs ? h('span', { className: 'jp-mlops-differs-mark', title: 'differs' }, ' ≠') : ''
        ),
        ...runs.map(run => h('td', {}, key in pick(run) ? show(pick(run)[key]) : '—'))
      );
    });
    const onlyDifferent = h('input', {
      type: 'checkbox',
      onchange: () => table.classList.toggle('jp-mlops-only-differences', onlyDifferent.checked)
    });
    const table = dataTable(['key', ...runs.map(run => run.name)], rows, 'jp-mlops-values');
    return h(
      'div',
      {},
      h('label', { className: 'jp-mlops-only-label' }, onlyDifferent, ' only differences'),
      table
    );
  }

  private _otherDifferences(data: ICompare): HTMLElement {
    const items = data.diffs.map(diff =>
      h('li', {}, `${diff.a.name} → ${diff.b.name}: `, differenceText(diff))
    );
    return section('Other differences', h('ul', { className: 'jp-mlops-diffs' }, ...items));
  }
}

/**
 * A run's detail in the main area: params, metric charts, the executed cells in run order
 * (out-of-order cells marked), the linear badge with its reasons, datasets, environment, and
 * its replays. From here a run is replayed, renamed, tagged, annotated or deleted, and its
 * notebook opened.
 */
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { ApiError, ICell, IReplay, IRunDetail, api } from './api';
import { metricChart, purgeCharts } from './charts';
import { append, bytes, clear, duration, h, keyValueTable, show, statusBadge, when } from './dom';

const POLL_MS = 2000;
const REPLAY_POLL_MS = 1000;

/** What the detail view asks of the app around it. */
export interface IDetailActions {
  openRun(id: string): void;
  openNotebook(path: string): void;
  changed(): void;
}

/** A verdict badge. */
export function verdictBadge(verdict: string | null, state: string): HTMLElement {
  const text = verdict ?? (state === 'running' ? 'running' : state);
  const kind =
    verdict === 'reproduced'
      ? 'good'
      : verdict === 'reproduced within tolerance'
        ? 'fair'
        : verdict === 'diverged' || verdict === 'failed' || state === 'error'
          ? 'bad'
          : 'neutral';
  return h('span', { className: `jp-mlops-badge jp-mlops-verdict jp-mlops-verdict-${kind}` }, text);
}

/** The detail of one run. */
export class RunDetailView extends Widget {
  constructor(
    readonly runId: string,
    private _actions: IDetailActions
  ) {
    super();
    this.addClass('jp-mlops-detail');
    this.id = `jupyter-mlops-run-${runId}`;
    this.title.label = `Run ${runId.slice(0, 8)}`;
    this.title.closable = true;
    this.node.tabIndex = -1;
    this._body = h('div', { className: 'jp-mlops-detail-body' });
    this._replayBox = h('div', { className: 'jp-mlops-replay-progress', 'aria-live': 'polite' });
    this.node.appendChild(this._body);
    append(this._body, h('p', { className: 'jp-mlops-loading' }, 'Loading…'));
    void this.load();
  }

  /** The run as last loaded. */
  get run(): IRunDetail | null {
    return this._run;
  }

  /** Load the run again and redraw. */
  async load(): Promise<void> {
    try {
      this._run = await api.run(this.runId);
    } catch (error) {
      clear(this._body);
      append(
        this._body,
        h('p', { className: 'jp-mlops-error', role: 'alert' }, error instanceof ApiError ? error.message : String(error))
      );
      this._stopPolling();
      return;
    }
    this._render(this._run);
    const replaying = this._run.replays.some(replay => replay.state === 'running');
    if (this._run.status === 'running' || replaying) {
      this._startPolling();
    } else {
      this._stopPolling();
    }
  }

  /** Start a replay of this run and follow it to its verdict. */
  async replay(): Promise<void> {
    if (this._following) {
      return;
    }
    clear(this._replayBox);
    append(this._replayBox, 'Starting the replay…');
    let replay: IReplay;
    try {
      replay = await api.startReplay(this.runId, { mode: this._replayMode });
    } catch (error) {
      clear(this._replayBox);
      append(this._replayBox, h('span', { className: 'jp-mlops-error', role: 'alert' }, error instanceof Error ? error.message : String(error)));
      return;
    }
    this._following = true;
    this._actions.changed();
    try {
      while (replay.state === 'running' && !this.isDisposed) {
        this._showReplay(replay);
        await new Promise(resolve => window.setTimeout(resolve, REPLAY_POLL_MS));
        replay = await api.replay(replay.id);
      }
    } catch (error) {
      clear(this._replayBox);
      append(this._replayBox, h('span', { className: 'jp-mlops-error', role: 'alert' }, String(error)));
      this._following = false;
      return;
    }
    this._following = false;
    this._showReplay(replay);
    this._actions.changed();
    void this.load();
  }

  dispose(): void {
    this._stopPolling();
    purgeCharts(this.node);
    super.dispose();
  }

  private _showReplay(replay: IReplay): void {
    clear(this._replayBox);
    if (replay.state === 'running') {
      const done = replay.cells_done ?? 0;
      const total = replay.cells_total ?? 0;
      const progress = h('progress', {
        className: 'jp-mlops-progress',
        max: total || 1,
        value: done,
        'aria-label': 'Replay progress'
      });
      append(this._replayBox, 'Replaying… ', progress, total ? ` ${done} of ${total} cells` : '');
      return;
    }
    append(
      this._replayBox,
      h('span', { className: 'jp-mlops-replay-result' }, 'Replay verdict: ', verdictBadge(replay.verdict, replay.state)),
      replay.summary ? h('span', { className: 'jp-mlops-replay-summary' }, ` ${replay.summary}`) : null,
      replay.replay_run_id
        ? h(
            'button',
            {
              className: 'jp-mlops-link jp-mlops-open-replay-run',
              onclick: () => this._actions.openRun(replay.replay_run_id as string)
            },
            'Open the replay run'
          )
        : null
    );
  }

  private _startPolling(): void {
    if (this._timer === null) {
      this._timer = window.setInterval(() => {
        if (this.isVisible && !this._following) {
          void this.load();
        }
      }, POLL_MS);
    }
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _render(run: IRunDetail): void {
    const signature = JSON.stringify([run.status, run.name, run.tags, run.note, run.end_time, run.metrics,
      run.cells.length, run.replays.map(r => [r.id, r.state, r.cells_done])]);
    if (signature === this._signature) {
      return;
    }
    this._signature = signature;
    this.title.label = run.name;
    this.title.caption = `Run ${run.name} (${run.id})`;
    purgeCharts(this._body);
    clear(this._body);
    append(
      this._body,
      this._header(run),
      this._replayBox,
      this._summary(run),
      this._section('Params', Object.keys(run.params).length ? keyValueTable(Object.entries(run.params).sort()) : this._none('No params.')),
      this._section('Metrics', this._metrics(run)),
      this._section(`Cells (${run.cells.length}, in the order they ran)`, this._cells(run.cells)),
      this._section('Datasets', this._datasets(run)),
      this._section('Data checks', this._dataChecks(run)),
      this._section(`Artifacts (${run.artifacts.length})`, this._artifacts(run)),
      run.registered && run.registered.length ? this._section('Registered models', this._registered(run)) : null,
      this._section('Environment', this._environment(run)),
      this._section('Replays', this._replays(run))
    );
  }

  private _header(run: IRunDetail): HTMLElement {
    const linear =
      run.linear === null || run.linear === undefined
        ? null
        : h(
            'span',
            {
              className: `jp-mlops-badge jp-mlops-linear-${run.linear ? 'yes' : 'no'}`,
              title: run.linear ? 'Cells ran once each, top to bottom, matching the saved notebook' : (run.linear_reasons ?? []).join('; ')
            },
            run.linear ? 'linear' : 'non-linear'
          );
    const button = (label: string, className: string, onclick: () => void, extra: Record<string, string | boolean> = {}) =>
      h('button', { className: `jp-mlops-button ${className}`, onclick, ...extra }, label);
    return h(
      'div',
      { className: 'jp-mlops-detail-header' },
      h('h2', { className: 'jp-mlops-run-title' }, run.name),
      h('div', { className: 'jp-mlops-badges' }, statusBadge(run.status), linear, h('span', { className: 'jp-mlops-kind' }, run.kind)),
      !run.linear && run.linear_reasons && run.linear_reasons.length
        ? h('ul', { className: 'jp-mlops-linear-reasons' }, ...run.linear_reasons.map(reason => h('li', {}, reason)))
        : null,
      h(
        'div',
        { className: 'jp-mlops-actions', role: 'toolbar', 'aria-label': 'Run actions' },
        h(
          'select',
          {
            className: 'jp-mlops-replay-mode',
            'aria-label': 'Replay mode',
            title: 'recorded: the cells the run executed, in the order they ran; file: the saved notebook top to bottom',
            onchange: (event: Event) => {
              this._replayMode = (event.target as HTMLSelectElement).value;
            }
          },
          ...['recorded', 'file'].map(mode => h('option', { value: mode, selected: mode === this._replayMode }, mode))
        ),
        button('Replay', 'jp-mod-accept jp-mlops-replay', () => void this.replay(), {
          disabled: run.status === 'running',
          title: 'Run the run again in a fresh kernel (in the chosen mode) and compare'
        }),
        button('Open notebook', 'jp-mlops-open-notebook', () => run.lab_path && this._actions.openNotebook(run.lab_path), {
          disabled: !run.lab_path,
          title: run.lab_path ? `Open ${run.lab_path}` : 'The notebook is not under the server\'s root'
        }),
        button('Rename', 'jp-mlops-rename', () => void this._rename(run)),
        button('Tag', 'jp-mlops-tag', () => void this._tag(run)),
        button('Note', 'jp-mlops-note', () => void this._note(run)),
        button('Delete', 'jp-mod-warn jp-mlops-delete', () => void this._delete(run), {
          disabled: run.status === 'running',
          title: run.status === 'running' ? 'End the run before deleting it' : 'Delete this run'
        }),
        button('Refresh', 'jp-mlops-refresh', () => {
          this._signature = '';
          void this.load();
        })
      )
    );
  }

  private _summary(run: IRunDetail): HTMLElement {
    const tags = h(
      'span',
      { className: 'jp-mlops-tags' },
      ...Object.entries(run.tags).map(([key, value]) =>
        h(
          'span',
          { className: 'jp-mlops-tag' },
          `${key}=${value}`,
          h(
            'button',
            {
              className: 'jp-mlops-tag-remove',
              title: `Remove tag ${key}`,
              'aria-label': `Remove tag ${key}`,
              onclick: () => void this._update({ remove_tags: [key] })
            },
            '×'
          )
        )
      )
    );
    const table = keyValueTable([
      ['id', run.id],
      ['notebook', run.notebook],
      ['started', when(run.start_time)],
      ['duration', run.end_time ? duration(run.end_time - run.start_time) : run.status],
      ['parent', run.parent_id],
      ['error', run.error],
      ['note', run.note]
    ]);
    const tagRow = h('tr', {}, h('th', { scope: 'row' }, 'tags'), h('td', {}, Object.keys(run.tags).length ? tags : '—'));
    table.querySelector('tbody')?.appendChild(tagRow);
    if (run.replay_of) {
      const original = run.replay_of.original_id;
      table.querySelector('tbody')?.appendChild(
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, 'replay of'),
          h('td', {}, h('button', { className: 'jp-mlops-link', onclick: () => this._actions.openRun(original) }, original.slice(0, 12)), ' ', verdictBadge(run.replay_of.verdict, run.replay_of.state))
        )
      );
    }
    return h('section', { className: 'jp-mlops-section' }, table);
  }

  private _metrics(run: IRunDetail): HTMLElement {
    const keys = Object.keys(run.metrics).sort();
    if (!keys.length) {
      return this._none('No metrics.');
    }
    const charts = keys
      .filter(key => (run.metric_series_length[key] ?? 0) > 1)
      .map(key => {
        const length = run.metric_series_length[key];
        const points = run.metric_series[key] ?? [];
        const title = points.length < length ? `${key} (${points.length} of ${length} points)` : key;
        return metricChart(title, [{ name: run.name, points }]);
      });
    return h('div', {}, keyValueTable(keys.map(key => [key, run.metrics[key]])), h('div', { className: 'jp-mlops-charts' }, ...charts));
  }

  private _cells(cells: ICell[]): HTMLElement {
    if (!cells.length) {
      return this._none('No cells were recorded.');
    }
    const items = cells.map(cell => {
      // The server works the marks out (the same ones the notebook views show).
      const marks = cell.marks ?? [];
      const outOfOrder = marks.length > 0;
      return h(
        'li',
        { className: `jp-mlops-cell${outOfOrder ? ' jp-mlops-cell-out-of-order' : ''}${cell.error ? ' jp-mlops-cell-error' : ''}` },
        h(
          'div',
          { className: 'jp-mlops-cell-head' },
          h('span', { className: 'jp-mlops-cell-count' }, `[${cell.execution_count ?? ' '}]`),
          h('span', { className: 'jp-mlops-cell-duration' }, duration(cell.duration)),
          ...marks.map(mark => h('span', { className: 'jp-mlops-badge jp-mlops-mark' }, mark)),
          cell.error ? h('span', { className: 'jp-mlops-badge jp-mlops-status-failed' }, cell.error) : null
        ),
        h('pre', { className: 'jp-mlops-source' }, cell.source ?? ''),
        cell.writes && cell.writes.length
          ? h('div', { className: 'jp-mlops-cell-io' }, `wrote: ${cell.writes.join(', ')}`)
          : null
      );
    });
    return h('ol', { className: 'jp-mlops-cells' }, ...items);
  }

  private _datasets(run: IRunDetail): HTMLElement {
    if (!run.datasets.length) {
      return this._none('No datasets.');
    }
    return h(
      'table',
      { className: 'jp-mlops-table' },
      h('thead', {}, h('tr', {}, ...['name', 'kind', 'shape', 'hash', 'path'].map(name => h('th', { scope: 'col' }, name)))),
      h(
        'tbody',
        {},
        ...run.datasets.map(dataset =>
          h(
            'tr',
            {},
            h('td', {}, show(dataset.name)),
            h('td', {}, show(dataset.kind)),
            h('td', {}, show(dataset.shape)),
            h('td', { className: 'jp-mlops-hash' }, show(dataset.hash).slice(0, 16)),
            h('td', {}, show(dataset.path))
          )
        )
      )
    );
  }

  private _dataChecks(run: IRunDetail): HTMLElement {
    const checks = run.data_checks ?? [];
    if (!checks.length) {
      return this._none('No data checks.');
    }
    return h(
      'table',
      { className: 'jp-mlops-table jp-mlops-data-checks' },
      h('thead', {}, h('tr', {}, ...['checked', 'data', 'against', 'result', 'problems'].map(name => h('th', { scope: 'col' }, name)))),
      h(
        'tbody',
        {},
        ...checks.map(check => {
          const problems = check.report?.problems ?? [];
          const listed = problems
            .slice(0, 5)
            .map(p => `${p.severity} ${p.kind} ${p.column}: ${p.detail}`)
            .join('\n');
          return h(
            'tr',
            {},
            h('td', {}, when(check.time)),
            h('td', {}, show(check.subject)),
            h('td', {}, `${show(check.baseline_run).slice(0, 12)}:${show(check.baseline_dataset)}`),
            h('td', {}, check.passed ? 'passed' : 'failed'),
            h('td', { className: 'jp-mlops-data-problems' }, listed || '-')
          );
        })
      )
    );
  }

  private _artifacts(run: IRunDetail): HTMLElement {
    if (!run.artifacts.length) {
      return this._none('No artifacts.');
    }
    return h(
      'table',
      { className: 'jp-mlops-table jp-mlops-artifacts' },
      h('thead', {}, h('tr', {}, ...['name', 'kind', 'size', 'hash', ''].map(name => h('th', { scope: 'col' }, name)))),
      h(
        'tbody',
        {},
        ...run.artifacts.map(artifact => {
          const name = show(artifact.name);
          return h(
            'tr',
            {},
            h('td', { className: 'jp-mlops-artifact-name', title: name }, name),
            h('td', {}, show(artifact.kind)),
            h('td', {}, bytes(Number(artifact.size_bytes))),
            h('td', { className: 'jp-mlops-hash' }, show(artifact.hash).slice(0, 12)),
            h(
              'td',
              {},
              h(
                'button',
                {
                  className: 'jp-mlops-button jp-mlops-download',
                  title: `Download ${name}`,
                  'aria-label': `Download ${name}`,
                  onclick: () => void this._download(run, name)
                },
                'Download'
              )
            )
          );
        })
      )
    );
  }

  private _registered(run: IRunDetail): HTMLElement {
    return h(
      'table',
      { className: 'jp-mlops-table jp-mlops-registered' },
      h('thead', {}, h('tr', {}, ...['model', 'aliases', 'artifact', 'verdict'].map(name => h('th', { scope: 'col' }, name)))),
      h(
        'tbody',
        {},
        ...(run.registered ?? []).map(version =>
          h(
            'tr',
            {},
            h('td', { className: 'jp-mlops-model-version' }, `${version.name}/${version.version}`),
            h('td', {}, version.aliases.join(', ') || '—'),
            h('td', {}, version.artifact),
            h('td', {}, version.verdict ?? 'never replayed')
          )
        )
      )
    );
  }

  private async _download(run: IRunDetail, name: string): Promise<void> {
    try {
      const blob = await api.artifact(run.id, name);
      const link = h('a', { href: URL.createObjectURL(blob), download: name.split('/').pop() || 'artifact' });
      link.style.display = 'none';
      document.body.appendChild(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    } catch (error) {
      await showDialog({
        title: `Cannot download ${name}`,
        body: error instanceof ApiError ? error.message : String(error),
        buttons: [Dialog.okButton()]
      });
    }
  }

  private _environment(run: IRunDetail): HTMLElement {
    const env = run.environment;
    if (!env) {
      return this._none('No environment was recorded.');
    }
    const git = env.git as Record<string, unknown> | null | undefined;
    const packages = (env.packages ?? {}) as Record<string, string>;
    const names = Object.keys(packages).sort();
    return h(
      'div',
      {},
      keyValueTable([
        ['python', env.python],
        ['platform', env.platform],
        ['git commit', git ? git.commit : null],
        ['git dirty', git ? git.dirty : null]
      ]),
      h(
        'details',
        { className: 'jp-mlops-packages' },
        h('summary', {}, `${names.length} packages`),
        keyValueTable(names.map(name => [name, packages[name]]))
      )
    );
  }

  private _replays(run: IRunDetail): HTMLElement {
    if (!run.replays.length) {
      return this._none('Not replayed yet.');
    }
    return h(
      'table',
      { className: 'jp-mlops-table jp-mlops-replays' },
      h('thead', {}, h('tr', {}, ...['started', 'mode', 'verdict', 'summary', 'replay run'].map(name => h('th', { scope: 'col' }, name)))),
      h(
        'tbody',
        {},
        ...run.replays.map(replay =>
          h(
            'tr',
            {},
            h('td', {}, when(replay.start_time)),
            h('td', {}, replay.mode),
            h('td', {}, verdictBadge(replay.verdict, replay.state), replay.state === 'running' && replay.cells_total ? ` ${replay.cells_done ?? 0}/${replay.cells_total}` : ''),
            h('td', {}, replay.summary ?? ''),
            h(
              'td',
              {},
              replay.replay_run_id
                ? h('button', { className: 'jp-mlops-link', onclick: () => this._actions.openRun(replay.replay_run_id as string) }, replay.replay_run_id.slice(0, 12))
                : '—'
            )
          )
        )
      )
    );
  }

  private _section(title: string, content: HTMLElement): HTMLElement {
    return h('section', { className: 'jp-mlops-section' }, h('h3', {}, title), content);
  }

  private _none(text: string): HTMLElement {
    return h('p', { className: 'jp-mlops-none' }, text);
  }

  private async _update(body: Parameters<typeof api.update>[1]): Promise<void> {
    try {
      await api.update(this.runId, body);
    } catch (error) {
      await showDialog({ title: 'Could not change the run', body: textBody(String(error instanceof Error ? error.message : error)), buttons: [Dialog.okButton()] });
      return;
    }
    this._signature = '';
    this._actions.changed();
    await this.load();
  }

  private async _rename(run: IRunDetail): Promise<void> {
    const result = await InputDialog.getText({ title: 'Rename run', text: run.name, label: 'New name' });
    if (result.button.accept && result.value !== null && result.value.trim() && result.value !== run.name) {
      await this._update({ name: result.value.trim() });
    }
  }

  private async _tag(run: IRunDetail): Promise<void> {
    const result = await InputDialog.getText({ title: 'Tag run', label: 'Tag as key=value', placeholder: 'team=vision' });
    if (!result.button.accept || !result.value) {
      return;
    }
    const text = result.value.trim();
    const at = text.indexOf('=');
    if (at <= 0) {
      await showDialog({ title: 'Not a tag', body: textBody('Write a tag as key=value.'), buttons: [Dialog.okButton()] });
      return;
    }
    await this._update({ tags: { [text.slice(0, at).trim()]: text.slice(at + 1).trim() } });
  }

  private async _note(run: IRunDetail): Promise<void> {
    const result = await InputDialog.getText({ title: 'Note on the run', text: run.note ?? '', label: 'Note (empty to clear)' });
    if (result.button.accept && result.value !== null) {
      await this._update({ note: result.value });
    }
  }

  private async _delete(run: IRunDetail): Promise<void> {
    const result = await showDialog({
      title: 'Delete run?',
      body: textBody(`Delete the run "${run.name}" (${run.id.slice(0, 12)}) with its params, metrics, cells and replays? This cannot be undone.`),
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await api.remove(run.id);
    } catch (error) {
      await showDialog({ title: 'Could not delete the run', body: textBody(String(error instanceof Error ? error.message : error)), buttons: [Dialog.okButton()] });
      return;
    }
    this._actions.changed();
    this.dispose();
  }

  private _run: IRunDetail | null = null;
  private _body: HTMLElement;
  private _replayBox: HTMLElement;
  private _timer: number | null = null;
  private _following = false;
  private _replayMode = 'recorded';
  private _signature = '';
}

/** A dialog body holding text as text. */
export function textBody(text: string): Widget {
  const widget = new Widget({ node: h('p', { className: 'jp-mlops-dialog-text' }, text) });
  return widget;
}

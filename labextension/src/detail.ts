/**
 * A run's detail in the main area: its header (badges, linear reasons, actions), a summary,
 * and the sections below (see sections.ts). From here a run is replayed, renamed, tagged,
 * annotated or deleted, and its notebook opened. While the run or a replay of it is running,
 * the view asks for the run again every few seconds.
 */
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { ApiError, IRunChange, IRunDetail, api } from './api';
import { linearBadge, statusBadge, verdictBadge } from './badges';
import { purgeCharts } from './charts';
import { append, clear, h } from './dom';
import { duration, when } from './format';
import { ReplayProgress } from './replay';
import { askName, askNote, askTag, changeRun, deleteRun, downloadArtifact } from './runActions';
import * as sections from './sections';
import { keyValueTable, rowHeading } from './tables';
import { tagText } from './tags';

const POLL_MS = 2000;
const REPLAY_MODES = ['recorded', 'file'];

/** What the detail view asks of the app around it. */
export interface IDetailActions {
  openRun(id: string): void;
  openNotebook(path: string): void;
  changed(): void;
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
    this._progress = new ReplayProgress(id => this._actions.openRun(id));
    this.node.appendChild(this._body);
    append(this._body, h('p', { className: 'jp-mlops-loading' }, 'Loading…'));
    this._poll = new Poll({
      name: `jupyter-mlops:run-${runId}`,
      frequency: { interval: POLL_MS, backoff: false },
      factory: () => this.load(),
      // Asked again only while something runs, in view, and no replay is followed (that
      // follower asks for itself).
      standby: () => !this._live || !this.isVisible || this._progress.following
    });
    void this.load();
  }

  /** Load the run again and redraw. */
  async load(): Promise<void> {
    let run: IRunDetail;
    try {
      run = await api.run(this.runId);
    } catch (error) {
      clear(this._body);
      const text = error instanceof ApiError ? error.message : String(error);
      append(this._body, h('p', { className: 'jp-mlops-error', role: 'alert' }, text));
      this._live = false;
      return;
    }
    this._render(run);
    this._live = run.status === 'running' || run.replays.some(r => r.state === 'running');
  }

  /** Start a replay of this run and follow it to its verdict. */
  async replay(): Promise<void> {
    if (this._progress.following) {
      return;
    }
    const changed = () => this._actions.changed();
    const ended = await this._progress.run(this.runId, this._replayMode, changed);
    if (ended) {
      changed();
      void this.load();
    }
  }

  dispose(): void {
    this._poll.dispose();
    this._progress.dispose();
    purgeCharts(this.node);
    super.dispose();
  }

  private _render(run: IRunDetail): void {
    const signature = JSON.stringify([
      run.status,
      run.name,
      run.tags,
      run.note,
      run.end_time,
      run.metrics,
      run.cells.length,
      run.replays.map(r => [r.id, r.state, r.cells_done])
    ]);
    if (signature === this._signature) {
      return;
    }
    this._signature = signature;
    this.title.label = run.name;
    this.title.caption = `Run ${run.name} (${run.id})`;
    purgeCharts(this._body);
    clear(this._body);
    const openRun = (id: string) => this._actions.openRun(id);
    const download = (name: string) => void downloadArtifact(run.id, name);
    append(
      this._body,
      this._header(run),
      this._progress.node,
      this._summary(run),
      sections.section('Params', sections.params(run)),
      sections.section('Metrics', sections.metrics(run)),
      sections.section(`Cells (${run.cells.length}, in the order they ran)`, sections.cells(run)),
      sections.section('Datasets', sections.datasets(run)),
      sections.section('Data checks', sections.dataChecks(run)),
      sections.section(`Artifacts (${run.artifacts.length})`, sections.artifacts(run, download)),
      run.registered && run.registered.length
        ? sections.section('Registered models', sections.registered(run))
        : null,
      sections.section('Environment', sections.environment(run)),
      sections.section('Replays', sections.replays(run, openRun))
    );
  }

  private _header(run: IRunDetail): HTMLElement {
    const reasons = run.linear_reasons ?? [];
    return h(
      'div',
      { className: 'jp-mlops-detail-header' },
      h('h2', { className: 'jp-mlops-run-title' }, run.name),
      h(
        'div',
        { className: 'jp-mlops-badges' },
        statusBadge(run.status),
        linearBadge(run),
        h('span', { className: 'jp-mlops-kind' }, run.kind)
      ),
      !run.linear && reasons.length
        ? h(
            'ul',
            { className: 'jp-mlops-linear-reasons' },
            ...reasons.map(reason => h('li', {}, reason))
          )
        : null,
      this._toolbar(run)
    );
  }

  private _toolbar(run: IRunDetail): HTMLElement {
    const button = (
      label: string,
      className: string,
      onclick: () => void,
      extra: Record<string, string | boolean> = {}
    ) => h('button', { className: `jp-mlops-button ${className}`, onclick, ...extra }, label);
    const running = run.status === 'running';
    const notebook = run.lab_path;
    return h(
      'div',
      { className: 'jp-mlops-actions', role: 'toolbar', 'aria-label': 'Run actions' },
      h(
        'select',
        {
          className: 'jp-mlops-replay-mode',
          'aria-label': 'Replay mode',
          title:
            'recorded: the cells the run executed, in the order they ran; ' +
            'file: the saved notebook top to bottom',
          onchange: (event: Event) => {
            this._replayMode = (event.target as HTMLSelectElement).value;
          }
        },
        ...REPLAY_MODES.map(mode =>
          h('option', { value: mode, selected: mode === this._replayMode }, mode)
        )
      ),
      button('Replay', 'jp-mod-accept jp-mlops-replay', () => void this.replay(), {
        disabled: running,
        title: 'Run the run again in a fresh kernel (in the chosen mode) and compare'
      }),
      button(
        'Open notebook',
        'jp-mlops-open-notebook',
        () => notebook && this._actions.openNotebook(notebook),
        {
          disabled: !notebook,
          title: notebook ? `Open ${notebook}` : "The notebook is not under the server's root"
        }
      ),
      button('Rename', 'jp-mlops-rename', () => void this._edit(askName(run))),
      button('Tag', 'jp-mlops-tag', () => void this._edit(askTag())),
      button('Note', 'jp-mlops-note', () => void this._edit(askNote(run))),
      button('Delete', 'jp-mod-warn jp-mlops-delete', () => void this._delete(run), {
        disabled: running,
        title: running ? 'End the run before deleting it' : 'Delete this run'
      }),
      button('Refresh', 'jp-mlops-refresh', () => {
        this._signature = '';
        void this.load();
      })
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
          tagText(key, value),
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
    const body = table.tBodies[0];
    body.appendChild(
      h('tr', {}, rowHeading('tags'), h('td', {}, Object.keys(run.tags).length ? tags : '—'))
    );
    const replayOf = run.replay_of;
    if (replayOf) {
      const original = replayOf.original_id;
      const link = h(
        'button',
        { className: 'jp-mlops-link', onclick: () => this._actions.openRun(original) },
        original.slice(0, 12)
      );
      body.appendChild(
        h(
          'tr',
          {},
          rowHeading('replay of'),
          h('td', {}, link, ' ', verdictBadge(replayOf.verdict, replayOf.state))
        )
      );
    }
    return h('section', { className: 'jp-mlops-section' }, table);
  }

  /** Make the change a dialog asked for, if any. */
  private async _edit(asked: Promise<IRunChange | null>): Promise<void> {
    const change = await asked;
    if (change) {
      await this._update(change);
    }
  }

  private async _update(change: IRunChange): Promise<void> {
    if (!(await changeRun(this.runId, change))) {
      return;
    }
    this._signature = '';
    this._actions.changed();
    await this.load();
  }

  private async _delete(run: IRunDetail): Promise<void> {
    if (await deleteRun(run)) {
      this._actions.changed();
      this.dispose();
    }
  }

  private _body: HTMLElement;
  private _progress: ReplayProgress;
  private _poll: Poll;
  private _live = false;
  private _replayMode = REPLAY_MODES[0];
  private _signature = '';
}

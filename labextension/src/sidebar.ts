/**
 * The left sidebar: runs of the notebook in focus (or all runs), newest first, with status
 * badges, a filter box using the `where` language, and a selection for comparing runs.
 * It polls while it is visible, so new runs and status changes show up by themselves.
 */
import { Debouncer, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ApiError, IRun, IRunsPage, api } from './api';
import { append, clear, h } from './dom';
import { pageCount } from './format';
import { Scope, emptyText, runRow, scopeNote, selectionNote } from './runList';

const PAGE = 50;
const MAX_LIMIT = 500;
const POLL_MS = 2000;
const FILTER_DELAY_MS = 350;

/** The runs sidebar. */
export class RunsSidebar extends Widget {
  constructor() {
    super();
    this.id = 'jupyter-mlops-sidebar';
    this.addClass('jp-mlops-sidebar');
    this.title.caption = 'Experiment runs';

    this._scopeSelect = h(
      'select',
      {
        className: 'jp-mlops-scope',
        'aria-label': 'Which runs to show',
        onchange: () => this._reload()
      },
      h('option', { value: 'notebook' }, 'This notebook'),
      h('option', { value: 'all' }, 'All runs')
    );
    this._statusSelect = h(
      'select',
      {
        className: 'jp-mlops-status-filter',
        'aria-label': 'Status',
        onchange: () => this._reload()
      },
      h('option', { value: '' }, 'Any status'),
      ...['running', 'finished', 'failed', 'crashed', 'killed'].map(status =>
        h('option', { value: status }, status)
      )
    );
    this._replaysToggle = h('input', {
      type: 'checkbox',
      className: 'jp-mlops-show-replays',
      onchange: () => this._reload()
    });
    this._search = h('input', {
      type: 'search',
      className: 'jp-mlops-search jp-mod-styled',
      placeholder: 'Filter: metrics.acc > 0.9 and status = finished',
      'aria-label': 'Filter runs with an expression',
      spellcheck: 'false',
      oninput: () => void this._filterDebouncer.invoke(),
      onkeydown: (event: Event) => {
        const key = (event as KeyboardEvent).key;
        if (key === 'Enter') {
          this._reload();
        } else if (key === 'Escape' && this._search.value) {
          this._search.value = '';
          this._reload();
        } else if (key === 'ArrowDown') {
          event.preventDefault();
          (this._list.querySelector('.jp-mlops-run-open') as HTMLElement | null)?.focus();
        }
      }
    });
    this._error = h('div', { className: 'jp-mlops-error', role: 'alert' });
    this._scopeNote = h('div', { className: 'jp-mlops-scope-note', 'aria-live': 'polite' });
    this._compareButton = h(
      'button',
      {
        className: 'jp-mlops-button jp-mod-accept',
        disabled: true,
        onclick: () => this._requestCompare()
      },
      'Compare'
    );
    this._selectionNote = h('span', { className: 'jp-mlops-selection-note' }, selectionNote(0));
    this._list = h('ul', {
      className: 'jp-mlops-runlist',
      'aria-label': 'Runs, newest first',
      onkeydown: (event: Event) => this._onListKey(event as KeyboardEvent)
    });
    this._more = h(
      'button',
      { className: 'jp-mlops-button jp-mlops-more', onclick: () => this._loadMore() },
      'Show more'
    );
    this._count = h('span', { className: 'jp-mlops-count' });
    this._poll = new Poll({
      name: 'jupyter-mlops:runs',
      auto: false,
      factory: () => this.refresh(),
      frequency: { interval: POLL_MS, backoff: false },
      // Nothing is asked while the sidebar or the browser tab is out of sight.
      standby: () => !this.isVisible || document.visibilityState !== 'visible'
    });
    this._filterDebouncer = new Debouncer(() => this._reload(), FILTER_DELAY_MS);

    append(
      this.node,
      h(
        'div',
        { className: 'jp-mlops-sidebar-header' },
        h(
          'div',
          { className: 'jp-mlops-title-row' },
          h('h2', { className: 'jp-mlops-title' }, 'Runs'),
          h(
            'button',
            {
              className: 'jp-mlops-button jp-mlops-refresh',
              title: 'Refresh the runs',
              'aria-label': 'Refresh the runs',
              onclick: () => this.refresh()
            },
            '⟳'
          )
        ),
        h(
          'div',
          { className: 'jp-mlops-filters' },
          this._scopeSelect,
          this._statusSelect,
          h(
            'label',
            {
              className: 'jp-mlops-replays-label',
              title: 'List replays as runs of their own (else counted under their run)'
            },
            this._replaysToggle,
            'Show replays'
          )
        ),
        this._search,
        this._error,
        this._scopeNote,
        h('div', { className: 'jp-mlops-selection' }, this._selectionNote, this._compareButton)
      ),
      this._list,
      h('div', { className: 'jp-mlops-sidebar-footer' }, this._count, this._more)
    );
  }

  /** A run's row was activated: show its detail. */
  get runOpened(): ISignal<this, IRun> {
    return this._runOpened;
  }

  /** Compare was asked for the selected runs. */
  get compareRequested(): ISignal<this, string[]> {
    return this._compareRequested;
  }

  /** The ids of the selected runs, in the order they were selected. */
  get selected(): string[] {
    return [...this._selected];
  }

  /** Which runs the list shows. */
  get scope(): Scope {
    return this._scopeSelect.value as Scope;
  }

  set scope(value: Scope) {
    this._scopeSelect.value = value;
    this._reload();
  }

  /** The notebook in focus (a path under the server's root), or null. */
  setNotebook(path: string | null): void {
    if (path === this._notebook) {
      return;
    }
    this._notebook = path;
    if (this.scope === 'notebook') {
      this._reload();
    }
  }

  /** Put the keyboard focus in the filter box. */
  focusSearch(): void {
    this._search.focus();
  }

  /** Fetch the shown page again now. */
  async refresh(): Promise<void> {
    const request = ++this._request;
    const started = performance.now();
    const notebook = this.scope === 'notebook' ? this._notebook : null;
    let page: IRunsPage;
    try {
      page = await api.runs({
        notebook: notebook ?? undefined,
        where: this._search.value.trim() || undefined,
        status: this._statusSelect.value || undefined,
        replays: this._replaysToggle.checked,
        limit: this._limit
      });
    } catch (error) {
      if (request === this._request) {
        this._showError(error);
      }
      return;
    }
    if (request !== this._request) {
      return; // a newer request is on its way
    }
    this._paceByCost(performance.now() - started);
    this._showError(null);
    this._render(page, notebook);
  }

  protected onAfterShow(): void {
    void this._poll.refresh();
  }

  protected onAfterAttach(): void {
    if (this.isVisible) {
      void this._poll.refresh();
    }
  }

  protected onBeforeHide(): void {
    void this._poll.stop();
  }

  protected onBeforeDetach(): void {
    void this._poll.stop();
  }

  dispose(): void {
    this._poll.dispose();
    this._filterDebouncer.dispose();
    super.dispose();
  }

  /** A costly filter over a large store is asked again less often than a cheap list. */
  private _paceByCost(costMs: number): void {
    const interval = Math.max(POLL_MS, 5 * costMs);
    this._poll.frequency = { interval, backoff: false, max: interval };
  }

  private _reload(): void {
    this._limit = PAGE;
    this._signature = '';
    void this.refresh();
  }

  private _loadMore(): void {
    this._limit = Math.min(this._limit + PAGE, MAX_LIMIT);
    void this.refresh();
  }

  /** Up and down arrows move between runs; space on a run selects it for comparison. */
  private _onListKey(event: KeyboardEvent): void {
    const target = event.target as HTMLElement;
    const row = target.closest('.jp-mlops-run') as HTMLElement | null;
    if (!row) {
      return;
    }
    let next: Element | null = null;
    if (event.key === 'ArrowDown') {
      next = row.nextElementSibling;
    } else if (event.key === 'ArrowUp') {
      next = row.previousElementSibling;
      if (!next) {
        event.preventDefault();
        this._search.focus();
        return;
      }
    } else if (event.key === ' ' && target.classList.contains('jp-mlops-run-open')) {
      event.preventDefault();
      (row.querySelector('.jp-mlops-select') as HTMLInputElement | null)?.click();
      return;
    } else {
      return;
    }
    event.preventDefault();
    (next?.querySelector('.jp-mlops-run-open') as HTMLElement | null)?.focus();
  }

  private _requestCompare(): void {
    if (this._selected.size >= 2) {
      this._compareRequested.emit(this.selected);
    }
  }

  private _showError(error: unknown): void {
    clear(this._error);
    if (error) {
      const message = error instanceof ApiError ? error.message : String(error);
      append(this._error, message);
    }
    this._search.classList.toggle(
      'jp-mlops-invalid',
      error instanceof ApiError && error.code === 'bad_expression'
    );
  }

  private _render(page: IRunsPage, notebook: string | null): void {
    const signature = JSON.stringify([
      notebook,
      page.total,
      page.runs.map(run => [
        run.id,
        run.name,
        run.status,
        run.end_time,
        run.linear,
        run.metrics,
        run.tags,
        run.replay_summary
      ])
    ]);
    this._updateScopeNote(notebook);
    if (signature === this._signature) {
      return; // nothing changed: keep the DOM (and the keyboard focus) as it is
    }
    this._signature = signature;
    const focusedId = (document.activeElement?.closest('.jp-mlops-run') as HTMLElement | null)
      ?.dataset.runId;
    const rows = page.runs.map(run =>
      runRow(run, this.scope, this._selected.has(run.id), {
        open: opened => this._runOpened.emit(opened),
        select: (selected, on) => this._select(selected.id, on)
      })
    );
    this._list.replaceChildren(...rows);
    if (page.runs.length === 0) {
      this._list.appendChild(h('li', { className: 'jp-mlops-empty' }, emptyText(page.store)));
    }
    if (focusedId) {
      (
        this._list.querySelector(
          `[data-run-id="${CSS.escape(focusedId)}"] .jp-mlops-run-open`
        ) as HTMLElement | null
      )?.focus();
    }
    const visible = new Set(page.runs.map(run => run.id));
    for (const id of [...this._selected]) {
      if (!visible.has(id)) {
        this._selected.delete(id);
      }
    }
    this._updateSelection();
    this._count.textContent = pageCount(page.runs.length, page.total, page.total_capped);
    this._more.hidden =
      (page.runs.length >= page.total && !page.total_capped) || this._limit >= MAX_LIMIT;
    this._list.dataset.loaded = 'true';
    if (!this._firstRendered) {
      this._firstRendered = true;
      performance.mark('jupyter-mlops:first-render');
    }
  }

  private _updateScopeNote(notebook: string | null): void {
    const text = scopeNote(this.scope, notebook);
    if (this._scopeNote.textContent !== text) {
      this._scopeNote.textContent = text;
    }
  }

  private _select(id: string, selected: boolean): void {
    if (selected) {
      this._selected.add(id);
    } else {
      this._selected.delete(id);
    }
    this._updateSelection();
  }

  private _updateSelection(): void {
    const count = this._selected.size;
    this._compareButton.disabled = count < 2;
    this._compareButton.textContent = count >= 2 ? `Compare ${count}` : 'Compare';
    this._selectionNote.textContent = selectionNote(count);
  }

  private _scopeSelect: HTMLSelectElement;
  private _statusSelect: HTMLSelectElement;
  private _replaysToggle: HTMLInputElement;
  private _search: HTMLInputElement;
  private _error: HTMLElement;
  private _scopeNote: HTMLElement;
  private _compareButton: HTMLButtonElement;
  private _selectionNote: HTMLElement;
  private _list: HTMLUListElement;
  private _more: HTMLButtonElement;
  private _count: HTMLElement;
  private _notebook: string | null = null;
  private _limit = PAGE;
  private _request = 0;
  private _signature = '';
  private _poll: Poll;
  private _filterDebouncer: Debouncer;
  private _firstRendered = false;
  private _selected = new Set<string>();
  private _runOpened = new Signal<this, IRun>(this);
  private _compareRequested = new Signal<this, string[]>(this);
}

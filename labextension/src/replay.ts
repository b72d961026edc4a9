/**
 * A replay started from a run's detail, followed to its verdict: a progress bar while it
 * runs, then the verdict, its summary and a way to open the replay run.
 */
import { Poll } from '@lumino/polling';

import { IReplay, api } from './api';
import { verdictBadge } from './badges';
import { Child, append, clear, h } from './dom';

const REPLAY_POLL_MS = 1000;

/** The progress and verdict of the replays started from one run's detail. */
export class ReplayProgress {
  /** The element showing the progress, then the verdict. */
  readonly node: HTMLElement = h('div', {
    className: 'jp-mlops-replay-progress',
    'aria-live': 'polite'
  });

  constructor(private _openRun: (id: string) => void) {}

  /** Whether a replay is being followed. */
  get following(): boolean {
    return this._following;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Start a replay of a run and follow it; the replay as it ended, or null when it could not
   * be started or followed (the reason is shown). `started` is told once it runs.
   */
  async run(runId: string, mode: string, started: () => void): Promise<IReplay | null> {
    this._show('Starting the replay…');
    let replay: IReplay;
    try {
      replay = await api.startReplay(runId, { mode });
    } catch (error) {
      this._showError(error instanceof Error ? error.message : String(error));
      return null;
    }
    this._following = true;
    started();
    try {
      replay = await this._follow(replay);
    } catch (error) {
      this._showError(String(error));
      return null;
    } finally {
      this._following = false;
    }
    this._showReplay(replay);
    return replay;
  }

  dispose(): void {
    this._isDisposed = true;
    this._poll?.dispose();
  }

  /** Ask for the replay until it ends (or the view closes); the replay as last seen. */
  private _follow(replay: IReplay): Promise<IReplay> {
    if (replay.state !== 'running' || this._isDisposed) {
      return Promise.resolve(replay);
    }
    this._showReplay(replay);
    return new Promise<IReplay>((resolve, reject) => {
      let latest = replay;
      const poll = new Poll({
        name: 'jupyter-mlops:replay',
        frequency: { interval: REPLAY_POLL_MS, backoff: false },
        standby: 'never',
        factory: async () => {
          try {
            latest = await api.replay(replay.id);
          } catch (error) {
            reject(error);
            poll.dispose();
            return;
          }
          if (latest.state === 'running') {
            this._showReplay(latest);
          } else {
            poll.dispose();
          }
        }
      });
      poll.disposed.connect(() => resolve(latest));
      this._poll = poll;
    });
  }

  private _show(...children: Child[]): void {
    clear(this.node);
    append(this.node, ...children);
  }

  private _showError(message: string): void {
    this._show(h('span', { className: 'jp-mlops-error', role: 'alert' }, message));
  }

  private _showReplay(replay: IReplay): void {
    if (replay.state === 'running') {
      const done = replay.cells_done ?? 0;
      const total = replay.cells_total ?? 0;
      const progress = h('progress', {
        className: 'jp-mlops-progress',
        max: total || 1,
        value: done,
        'aria-label': 'Replay progress'
      });
      this._show('Replaying… ', progress, total ? ` ${done} of ${total} cells` : '');
      return;
    }
    const replayRun = replay.replay_run_id;
    this._show(
      h(
        'span',
        { className: 'jp-mlops-replay-result' },
        'Replay verdict: ',
        verdictBadge(replay.verdict, replay.state)
      ),
      replay.summary
        ? h('span', { className: 'jp-mlops-replay-summary' }, ` ${replay.summary}`)
        : null,
      replayRun
        ? h(
            'button',
            {
              className: 'jp-mlops-link jp-mlops-open-replay-run',
              onclick: () => this._openRun(replayRun)
            },
            'Open the replay run'
          )
        : null
    );
  }

  private _following = false;
  private _isDisposed = false;
  private _poll: Poll | null = null;
}

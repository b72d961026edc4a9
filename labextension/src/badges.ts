/**
 * Badges: short labelled marks for a run's status, a replay's verdict, linearity, kind and
 * the marks on cells. What a badge says and how it looks is chosen by pure functions (tested
 * without a browser); the elements hold it as text.
 */
import type { IRun } from './api';
import { h } from './dom';
import { plural } from './format';

/** How a verdict looks: good, fair, bad or neutral. */
export type VerdictTone = 'good' | 'fair' | 'bad' | 'neutral';

/** A badge element: text as text, a class for its look, an optional tooltip. */
export function badge(text: string, className: string, title?: string): HTMLElement {
  return h('span', { className: `jp-mlops-badge ${className}`, title }, text);
}

/** The class suffix of a status ("crashed" → "crashed"; anything but letters dropped). */
export function statusClass(status: string): string {
  return status.replace(/[^a-z]/g, '');
}

/** A status badge. */
export function statusBadge(status: string): HTMLElement {
  return badge(status, `jp-mlops-status-${statusClass(status)}`, `status: ${status}`);
}

/** What a replay's badge says: its verdict, else its state. */
export function verdictText(verdict: string | null, state: string): string {
  return verdict ?? state;
}

/** How a replay's badge looks. */
export function verdictTone(verdict: string | null, state: string): VerdictTone {
  if (verdict === 'reproduced') {
    return 'good';
  }
  if (verdict === 'reproduced within tolerance') {
    return 'fair';
  }
  if (verdict === 'diverged' || verdict === 'failed' || state === 'error') {
    return 'bad';
  }
  return 'neutral';
}

/** A verdict badge. */
export function verdictBadge(verdict: string | null, state: string): HTMLElement {
  const tone = verdictTone(verdict, state);
  return badge(verdictText(verdict, state), `jp-mlops-verdict jp-mlops-verdict-${tone}`);
}

/** The text and tooltip of a run's replays in a list: "↻2 reproduced". */
export function replaysText(summary: {
  count: number;
  verdict: string | null;
  state: string | null;
}): { text: string; title: string } {
  return {
    text: `↻${summary.count} ${verdictText(summary.verdict, summary.state ?? '')}`,
    title: `Replayed ${plural(summary.count, 'time')}; the latest: ${summary.verdict ?? summary.state}`
  };
}

/** The badge of a run's replays in a list, or null for a run never replayed. */
export function replaysBadge(run: IRun): HTMLElement | null {
  const summary = run.replay_summary;
  if (!summary || !summary.count) {
    return null;
  }
  const element = verdictBadge(summary.verdict, summary.state ?? '');
  const { text, title } = replaysText(summary);
  element.classList.add('jp-mlops-replays');
  element.textContent = text;
  element.title = title;
  return element;
}

/** Why a run is (or is not) linear, as a tooltip. */
export function linearTitle(linear: boolean, reasons: string[] | null): string {
  if (linear) {
    return 'Cells ran once each, top to bottom, matching the saved notebook';
  }
  return (reasons ?? []).join('; ') || 'Cells did not run top to bottom once each';
}

/** The linear badge, or null when linearity is not known. */
export function linearBadge(run: IRun): HTMLElement | null {
  if (run.linear === null || run.linear === undefined) {
    return null;
  }
  return badge(
    run.linear ? 'linear' : 'non-linear',
    `jp-mlops-linear-${run.linear ? 'yes' : 'no'}`,
    linearTitle(run.linear, run.linear_reasons)
  );
}

/** The kind badge of a run that is not interactive (a replay, a sweep point …), else null. */
export function kindBadge(kind: string): HTMLElement | null {
  return kind === 'interactive' ? null : badge(kind, 'jp-mlops-kind-badge', `A ${kind} run`);
}

/** A mark on a cell ("ran again", "out of order: …"). */
export function markBadge(mark: string): HTMLElement {
  return badge(mark, 'jp-mlops-mark');
}

/** The error a cell raised. */
export function errorBadge(error: string): HTMLElement {
  return badge(error, 'jp-mlops-status-failed');
}

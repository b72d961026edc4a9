/**
 * The sections of a run's detail below its header: params, metrics with their charts, the
 * executed cells in run order, datasets, data checks, artifacts, registered models, the
 * environment and the replays. Each is built from the run as the API sends it.
 */
import type { ICell, IDataProblem, IRunDetail } from './api';
import { errorBadge, markBadge, verdictBadge } from './badges';
import { metricChart } from './charts';
import { Child, h } from './dom';
import { bytes, duration, show, when } from './format';
import { dataTable, keyValueTable } from './tables';

/** How many of a data check's problems its row lists. */
const LISTED_PROBLEMS = 5;

/** A titled section. */
export function section(title: string, content: HTMLElement): HTMLElement {
  return h('section', { className: 'jp-mlops-section' }, h('h3', {}, title), content);
}

/** What a section says when it has nothing to show. */
export function none(text: string): HTMLElement {
  return h('p', { className: 'jp-mlops-none' }, text);
}

/** A metric chart's title: the key, and how many of its points are drawn when not all. */
export function chartTitle(key: string, drawn: number, length: number): string {
  return drawn < length ? `${key} (${drawn} of ${length} points)` : key;
}

/** A data check's problems, one a line, the first few. */
export function problemLines(problems: IDataProblem[]): string {
  return problems
    .slice(0, LISTED_PROBLEMS)
    .map(p => `${p.severity} ${p.kind} ${p.column}: ${p.detail}`)
    .join('\n');
}

/** The params, sorted by name. */
export function params(run: IRunDetail): HTMLElement {
  const entries = Object.entries(run.params).sort();
  return entries.length ? keyValueTable(entries) : none('No params.');
}

/** The latest metrics, and a chart of each metric logged at more than one step. */
export function metrics(run: IRunDetail): HTMLElement {
  const keys = Object.keys(run.metrics).sort();
  if (!keys.length) {
    return none('No metrics.');
  }
  const charts = keys
    .filter(key => (run.metric_series_length[key] ?? 0) > 1)
    .map(key => {
      const points = run.metric_series[key] ?? [];
      const title = chartTitle(key, points.length, run.metric_series_length[key]);
      return metricChart(title, [{ name: run.name, points }]);
    });
  return h(
    'div',
    {},
    keyValueTable(keys.map(key => [key, run.metrics[key]])),
    h('div', { className: 'jp-mlops-charts' }, ...charts)
  );
}

function cellItem(cell: ICell): HTMLElement {
  // The server works the marks out (the same ones the notebook views show).
  const marks = cell.marks ?? [];
  const classes = ['jp-mlops-cell'];
  if (marks.length > 0) {
    classes.push('jp-mlops-cell-out-of-order');
  }
  if (cell.error) {
    classes.push('jp-mlops-cell-error');
  }
  return h(
    'li',
    { className: classes.join(' ') },
    h(
      'div',
      { className: 'jp-mlops-cell-head' },
      h('span', { className: 'jp-mlops-cell-count' }, `[${cell.execution_count ?? ' '}]`),
      h('span', { className: 'jp-mlops-cell-duration' }, duration(cell.duration)),
      ...marks.map(markBadge),
      cell.error ? errorBadge(cell.error) : null
    ),
    h('pre', { className: 'jp-mlops-source' }, cell.source ?? ''),
    cell.writes && cell.writes.length
      ? h('div', { className: 'jp-mlops-cell-io' }, `wrote: ${cell.writes.join(', ')}`)
      : null
  );
}

/** The executed cells, in the order they ran. */
export function cells(run: IRunDetail): HTMLElement {
  if (!run.cells.length) {
    return none('No cells were recorded.');
  }
  return h('ol', { className: 'jp-mlops-cells' }, ...run.cells.map(cellItem));
}

/** The datasets the run read or wrote. */
export function datasets(run: IRunDetail): HTMLElement {
  if (!run.datasets.length) {
    return none('No datasets.');
  }
  return dataTable(
    ['name', 'kind', 'shape', 'hash', 'path'],
    run.datasets.map(dataset => [
      show(dataset.name),
      show(dataset.kind),
      show(dataset.shape),
      h('td', { className: 'jp-mlops-hash' }, show(dataset.hash).slice(0, 16)),
      show(dataset.path)
    ])
  );
}

/** The checks of new data made in the run or against its data. */
export function dataChecks(run: IRunDetail): HTMLElement {
  const checks = run.data_checks ?? [];
  if (!checks.length) {
    return none('No data checks.');
  }
  return dataTable(
    ['checked', 'data', 'against', 'result', 'problems'],
    checks.map(check => [
      when(check.time),
      show(check.subject),
      `${show(check.baseline_run).slice(0, 12)}:${show(check.baseline_dataset)}`,
      check.passed ? 'passed' : 'failed',
      h(
        'td',
        { className: 'jp-mlops-data-problems' },
        problemLines(check.report?.problems ?? []) || '-'
      )
    ]),
    'jp-mlops-data-checks'
  );
}

/** The run's artifacts, each with a button that downloads it. */
export function artifacts(run: IRunDetail, download: (name: string) => void): HTMLElement {
  if (!run.artifacts.length) {
    return none('No artifacts.');
  }
  return dataTable(
    ['name', 'kind', 'size', 'hash', ''],
    run.artifacts.map(artifact => {
      const name = show(artifact.name);
      return [
        h('td', { className: 'jp-mlops-artifact-name', title: name }, name),
        show(artifact.kind),
        bytes(Number(artifact.size_bytes)),
        h('td', { className: 'jp-mlops-hash' }, show(artifact.hash).slice(0, 12)),
        h(
          'button',
          {
            className: 'jp-mlops-button jp-mlops-download',
            title: `Download ${name}`,
            'aria-label': `Download ${name}`,
            onclick: () => download(name)
          },
          'Download'
        )
      ];
    }),
    'jp-mlops-artifacts'
  );
}

/** The model versions registered from the run. */
export function registered(run: IRunDetail): HTMLElement {
  return dataTable(
    ['model', 'aliases', 'artifact', 'verdict'],
    (run.registered ?? []).map(version => [
      h('td', { className: 'jp-mlops-model-version' }, `${version.name}/${version.version}`),
      version.aliases.join(', ') || '—',
      version.artifact,
      version.verdict ?? 'never replayed'
    ]),
    'jp-mlops-registered'
  );
}

/** Python, platform, git state and the installed packages. */
export function environment(run: IRunDetail): HTMLElement {
  const env = run.environment;
  if (!env) {
    return none('No environment was recorded.');
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

/** The run's replays: when, how, the verdict, and a link to each replay run. */
export function replays(run: IRunDetail, openRun: (id: string) => void): HTMLElement {
  if (!run.replays.length) {
    return none('Not replayed yet.');
  }
  return dataTable(
    ['started', 'mode', 'verdict', 'summary', 'replay run'],
    run.replays.map(replay => {
      const replayRun = replay.replay_run_id;
      const progress: Child =
        replay.state === 'running' && replay.cells_total
          ? ` ${replay.cells_done ?? 0}/${replay.cells_total}`
          : '';
      return [
        when(replay.start_time),
        replay.mode,
        h('td', {}, verdictBadge(replay.verdict, replay.state), progress),
        replay.summary ?? '',
        replayRun
          ? h(
              'button',
              { className: 'jp-mlops-link', onclick: () => openRun(replayRun) },
              replayRun.slice(0, 12)
            )
          : '—'
      ];
    }),
    'jp-mlops-replays'
  );
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { IRun } from '../src/api';
import { plotlyText, segmented } from '../src/charts';
import { differenceText, metricKeys } from '../src/differences';
import { emptyText, nameBreaks, runMeta, scopeNote, selectionNote } from '../src/runList';
import { chartTitle, problemLines } from '../src/sections';
import { parseTag, tagText } from '../src/tags';

function run(fields: Partial<IRun>): IRun {
  return {
    id: 'r1',
    name: 'run',
    status: 'finished',
    kind: 'interactive',
    notebook: null,
    lab_path: null,
    start_time: 0,
    end_time: null,
    linear: null,
    linear_reasons: null,
    parent_id: null,
    note: null,
    error: null,
    params: {},
    metrics: {},
    tags: {},
    ...fields
  };
}

describe('tags', () => {
  it('read key=value with spaces trimmed', () => {
    assert.deepEqual(parseTag(' team = vision '), ['team', 'vision']);
    assert.deepEqual(parseTag('a=b=c'), ['a', 'b=c']);
    assert.deepEqual(parseTag('empty='), ['empty', '']);
  });

  it('refuse text with no key', () => {
    assert.equal(parseTag('=x'), null);
    assert.equal(parseTag('novalue'), null);
  });

  it('show as key=value', () => {
    assert.equal(tagText('stage', 'prod'), 'stage=prod');
  });
});

describe('the list of runs', () => {
  it('breaks sweep names after commas, brackets and slashes', () => {
    assert.deepEqual(nameBreaks('sweep[lr=0.1,depth=3]/a'), [
      'sweep[',
      'lr=0.1,',
      'depth=3]/',
      'a'
    ]);
  });

  it('shows three metrics, and the notebook only when listing all runs', () => {
    const listed = run({ notebook: 'nb.ipynb', metrics: { a: 1, b: 0.5, c: 'nan', d: 4 } });
    assert.equal(runMeta(listed, 'notebook'), '— · a 1 · b 0.5 · c nan');
    assert.equal(runMeta(listed, 'all'), '— · nb.ipynb · a 1 · b 0.5 · c nan');
  });

  it('says whose runs it shows and what an empty list means', () => {
    assert.equal(scopeNote('notebook', 'a.ipynb'), 'Runs of a.ipynb');
    assert.equal(scopeNote('notebook', null), 'No notebook in focus: showing all runs');
    assert.equal(scopeNote('all', 'a.ipynb'), '');
    assert.match(emptyText(null), /%track start/);
    assert.equal(emptyText('/store'), 'No runs match.');
    assert.equal(selectionNote(0), 'Select two or more runs to compare');
    assert.equal(selectionNote(2), '2 selected');
  });
});

describe('charts', () => {
  it('break the line where the step goes back (a cell run again)', () => {
    const points = [0, 1, 0, 1].map((step, i) => ({ step, value: i, time: 0, cell: null }));
    assert.deepEqual(segmented(points), [
      [0, 1, null, 0, 1],
      [0, 1, null, 2, 3]
    ]);
  });

  it('draw NaN as a gap and infinities as such', () => {
    const points = ['nan', 'inf', '-inf'].map((value, step) => ({
      step,
      value,
      time: 0,
      cell: null
    }));
    assert.deepEqual(segmented(points)[1], [null, Infinity, -Infinity]);
  });

  it('escape the tags plotly reads in labels', () => {
    assert.equal(plotlyText('<b>a&b</b>'), '&lt;b&gt;a&amp;b&lt;/b&gt;');
  });

  it('say how many points of a long series are drawn', () => {
    assert.equal(chartTitle('loss', 10, 10), 'loss');
    assert.equal(chartTitle('loss', 1000, 5000), 'loss (1000 of 5000 points)');
  });
});

describe('data checks', () => {
  it('list the first five problems, one a line', () => {
    const problems = Array.from({ length: 7 }, (_, i) => ({
      column: `c${i}`,
      kind: 'drift',
      detail: 'mean moved',
      severity: 'warning'
    }));
    const lines = problemLines(problems).split('\n');
    assert.equal(lines.length, 5);
    assert.equal(lines[0], 'warning drift c0: mean moved');
  });
});

describe('comparison', () => {
  it('takes the metric keys of all runs, sorted', () => {
    const runs = [
      run({ metrics: { b: 1 }, metric_keys: ['loss', 'b'] }),
      run({ metrics: { a: 2 } })
    ];
    assert.deepEqual(metricKeys(runs), ['a', 'b', 'loss']);
  });

  it('says what else differs between two runs', () => {
    const diff = {
      a: { id: 'a', name: 'a' },
      b: { id: 'b', name: 'b' },
      same: false,
      params: {},
      metrics: {},
      datasets: { train: [null, 'x'] as [null, string] },
      packages: Object.fromEntries(
        Array.from({ length: 9 }, (_, i) => [`p${i}`, ['1', '2'] as [string, string]])
      ),
      cells: { count: [3, 3] as [number, number], differences: [{}] }
    };
    assert.equal(
      differenceText(diff),
      'data differs: train; packages differ: p0, p1, p2, p3, p4, p5, p6, p7…; 1 cell difference'
    );
    assert.equal(differenceText({ ...diff, same: true }), 'the same');
    assert.equal(
      differenceText({
        ...diff,
        datasets: {},
        packages: {},
        cells: { count: [1, 1], differences: [] }
      }),
      'params or metrics differ (above)'
    );
  });
});

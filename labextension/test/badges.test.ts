import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { linearTitle, replaysText, statusClass, verdictText, verdictTone } from '../src/badges';

describe('verdict badges', () => {
  it('say the verdict once there is one, else the state', () => {
    assert.equal(verdictText('reproduced', 'finished'), 'reproduced');
    assert.equal(verdictText(null, 'running'), 'running');
    assert.equal(verdictText(null, 'error'), 'error');
  });

  it('look good, fair, bad or neutral by verdict', () => {
    assert.equal(verdictTone('reproduced', 'finished'), 'good');
    assert.equal(verdictTone('reproduced within tolerance', 'finished'), 'fair');
    assert.equal(verdictTone('diverged', 'finished'), 'bad');
    assert.equal(verdictTone('failed', 'finished'), 'bad');
    assert.equal(verdictTone(null, 'error'), 'bad');
    assert.equal(verdictTone(null, 'running'), 'neutral');
    assert.equal(verdictTone('partial', 'finished'), 'neutral');
  });
});

describe('status badges', () => {
  it('take a class from the status letters alone', () => {
    assert.equal(statusClass('finished'), 'finished');
    assert.equal(statusClass('bad" onclick="x'), 'badonclickx');
  });
});

describe('replays in the list', () => {
  it('count the replays and name the latest verdict', () => {
    const { text, title } = replaysText({ count: 2, verdict: 'diverged', state: 'finished' });
    assert.equal(text, '↻2 diverged');
    assert.equal(title, 'Replayed 2 times; the latest: diverged');
  });

  it('name the state of a replay still running', () => {
    const { text, title } = replaysText({ count: 1, verdict: null, state: 'running' });
    assert.equal(text, '↻1 running');
    assert.equal(title, 'Replayed 1 time; the latest: running');
  });
});

describe('linear badges', () => {
  it('explain a non-linear run by its reasons', () => {
    assert.equal(linearTitle(false, ['ran again', 'out of order']), 'ran again; out of order');
    assert.equal(linearTitle(false, null), 'Cells did not run top to bottom once each');
    assert.match(linearTitle(true, null), /top to bottom/);
  });
});

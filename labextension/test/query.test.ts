import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { queryString, runsQuery } from '../src/query';

describe('queryString', () => {
  it('leaves out values that are missing or empty', () => {
    assert.equal(queryString({ a: '1', b: undefined, c: '' }), 'a=1');
    assert.equal(queryString({}), '');
  });

  it('encodes what it sends', () => {
    assert.equal(
      queryString({ where: 'metrics.acc > 0.9 and name ~ a&b' }),
      'where=metrics.acc+%3E+0.9+and+name+%7E+a%26b'
    );
  });
});

describe('runsQuery', () => {
  it('spells the page of runs as the API does', () => {
    assert.equal(
      queryString(runsQuery({ notebook: 'a/b.ipynb', replays: false, limit: 50 })),
      'notebook=a%2Fb.ipynb&replays=0&limit=50'
    );
    assert.equal(queryString(runsQuery({ replays: true, offset: 0 })), 'replays=1&offset=0');
  });

  it('asks for everything by default', () => {
    assert.equal(queryString(runsQuery({})), '');
  });
});

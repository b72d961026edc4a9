import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { bytes, duration, pageCount, plural, show, when } from '../src/format';

describe('show', () => {
  it('shows nothing as a dash', () => {
    assert.equal(show(null), '—');
    assert.equal(show(undefined), '—');
  });

  it('shows text as it is', () => {
    assert.equal(show('<b>x</b>'), '<b>x</b>');
    assert.equal(show('nan'), 'nan');
  });

  it('shows integers whole and other numbers to six significant digits', () => {
    assert.equal(show(3), '3');
    assert.equal(show(0.1 + 0.2), '0.3');
    assert.equal(show(1234567.891), '1234570');
    assert.equal(show(0.000123456789), '0.000123457');
  });

  it('shows objects and lists as JSON', () => {
    assert.equal(show({ a: [1, 2] }), '{"a":[1,2]}');
    assert.equal(show(true), 'true');
  });
});

describe('when', () => {
  it('shows a missing time as a dash', () => {
    assert.equal(when(null), '—');
    assert.equal(when(undefined), '—');
    assert.equal(when(0), '—');
  });

  it('shows a time with its year', () => {
    assert.match(when(1_700_000_000), /2023/);
  });
});

describe('duration', () => {
  it('shows under a second in milliseconds', () => {
    assert.equal(duration(0.0123), '12 ms');
  });

  it('shows under two minutes in seconds', () => {
    assert.equal(duration(1), '1.0 s');
    assert.equal(duration(119.94), '119.9 s');
  });

  it('shows longer in minutes and seconds', () => {
    assert.equal(duration(125), '2 min 5 s');
  });

  it('shows a missing duration as a dash', () => {
    assert.equal(duration(null), '—');
    assert.equal(duration(undefined), '—');
  });
});

describe('bytes', () => {
  it('shows sizes in the largest unit under 1024', () => {
    assert.equal(bytes(512), '512 B');
    assert.equal(bytes(3.4 * 1024), '3.4 KB');
    assert.equal(bytes(12 * 1024 * 1024), '12 MB');
    assert.equal(bytes(2 ** 50 * 3), '3072 TB');
  });

  it('shows a size that is not a number as a dash', () => {
    assert.equal(bytes(Number('x')), '—');
    assert.equal(bytes(Infinity), '—');
  });
});

describe('counts', () => {
  it('says one thing or many things', () => {
    assert.equal(plural(1, 'time'), '1 time');
    assert.equal(plural(0, 'time'), '0 times');
    assert.equal(plural(3, 'cell difference'), '3 cell differences');
  });

  it('says how many of how many runs a page shows', () => {
    assert.equal(pageCount(50, 50, false), '50 of 50');
    assert.match(pageCount(50, 1000, true), /^50 of 1.?000\+$/);
  });
});

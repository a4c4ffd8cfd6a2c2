import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpenLoopSchedule } from '../../bench/schedule.js';

test('request i is due at start + i / rate, whatever happened before', () => {
  const s = new OpenLoopSchedule(1000, 10, 100);
  assert.equal(s.intended(0), 100);
  assert.equal(s.intended(5), 105);
  assert.equal(s.end(), 109);
  const fast = new OpenLoopSchedule(5000, 5000, 0);
  assert.equal(fast.intended(4999), 999.8);
});

test('dueBy counts the requests whose time has come, capped at the total', () => {
  const s = new OpenLoopSchedule(1000, 10, 100);
  assert.equal(s.dueBy(99.9), 0);
  assert.equal(s.dueBy(100), 1);
  assert.equal(s.dueBy(100.999), 1);
  assert.equal(s.dueBy(103), 4);
  // A stall: everything that should have left meanwhile is due at once (open loop).
  assert.equal(s.dueBy(107.5), 8);
  assert.equal(s.dueBy(10_000), 10);
});

test('requests go round robin over the connections', () => {
  const seen = Array.from({ length: 32 }, (_, i) => OpenLoopSchedule.connectionOf(i, 16));
  assert.deepEqual(seen.slice(0, 17), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0]);
});

test('bad rates and totals are refused', () => {
  assert.throws(() => new OpenLoopSchedule(0, 1, 0), RangeError);
  assert.throws(() => new OpenLoopSchedule(Infinity, 1, 0), RangeError);
  assert.throws(() => new OpenLoopSchedule(10, 1.5, 0), RangeError);
  assert.equal(new OpenLoopSchedule(10, 0, 7).end(), 7);
});

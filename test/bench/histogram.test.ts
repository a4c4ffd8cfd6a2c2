import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addedOver, newLatencyHistogram, ratio, summarize } from '../../bench/histogram.js';

test('percentiles of 1..1000 µs come out in ms within HdrHistogram precision', () => {
  const h = newLatencyHistogram();
  for (let us = 1; us <= 1000; us++) h.recordValue(us);
  const s = summarize(h);
  assert.equal(s.count, 1000);
  // 3 significant digits: each value within 0.1%.
  for (const [got, want] of [[s.p50, 0.5], [s.p90, 0.9], [s.p99, 0.99], [s.p999, 0.999], [s.max, 1]] as const) {
    assert.ok(Math.abs(got - want) <= want * 0.001 + 0.001, `${got} vs ${want}`);
  }
});

test('a stall shows in the tail, not the median', () => {
  const h = newLatencyHistogram();
  for (let i = 0; i < 990; i++) h.recordValue(200);
  for (let i = 0; i < 10; i++) h.recordValue(50_000);
  const s = summarize(h);
  assert.equal(s.p50, 0.2);
  assert.equal(s.p90, 0.2);
  assert.ok(s.p999 >= 49.9 && s.p999 <= 50.1, String(s.p999));
});

test('added over direct is the per-percentile difference, negative when noise says so', () => {
  const base = { count: 1, p50: 0.2, p90: 0.3, p99: 1, p999: 2, max: 3, mean: 0.25 };
  const sys = { count: 1, p50: 0.35, p90: 0.5, p99: 0.9, p999: 4, max: 5, mean: 0.4 };
  assert.deepEqual(addedOver(base, sys), { p50: 0.15, p90: 0.2, p99: -0.1, p999: 2 });
});

test('ratio is undefined without both values or with a zero divisor', () => {
  assert.equal(ratio(3, 2), 1.5);
  assert.equal(ratio(undefined, 2), undefined);
  assert.equal(ratio(1, 0), undefined);
  assert.equal(ratio(1, 3), 0.333);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionsWithin, cpuSeconds, cpuTimes, parseNofileHardLimit, parseProcStat, parseVmRssKiB } from '../../bench/proc-stats.js';

// A real /proc/<pid>/stat line, with a command name holding spaces and ')'.
const STAT = '4242 (node (weft) x) S 1 4242 4242 0 -1 4194560 10245 0 0 0 1234 567 0 0 20 0 11 0 98765 1189617664 20480 18446744073709551615 1 1 0 0 0 0 0 16781312 134235650 0 0 0 17 1 0 0 0 0 0';

test('utime and stime are fields 14 and 15, counted after the last ")"', () => {
  assert.deepEqual(parseProcStat(STAT), { utime: 1234, stime: 567 });
  assert.throws(() => parseProcStat('garbage'));
});

test('cpuSeconds sums utime+stime of every pid in clock ticks / USER_HZ', () => {
  const files: Record<string, string> = { '/proc/1/stat': STAT, '/proc/2/stat': STAT.replace('1234 567', '100 0') };
  const s = cpuSeconds([1, 2], (p) => files[p]!);
  // 1234 + 567 + 100 ticks at USER_HZ (100 on Linux).
  assert.equal(s, 19.01);
  // The same ticks by mode: 1334 in user mode, 567 in the kernel.
  assert.deepEqual(cpuTimes([1, 2], (p) => files[p]!), { user: 13.34, system: 5.67 });
});

test('VmRSS comes from /proc/<pid>/status in KiB', () => {
  assert.equal(parseVmRssKiB('Name:\tnode\nVmPeak:\t  900 kB\nVmRSS:\t   81234 kB\nThreads: 11\n'), 81234);
  assert.equal(parseVmRssKiB('Name:\tkthreadd\n'), undefined);
});

test('the hard open-files limit is read from /proc/<pid>/limits; connections fit two sockets each', () => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\n';
  assert.equal(parseNofileHardLimit(limits), 20000);
  assert.equal(parseNofileHardLimit('Max open files            unlimited            unlimited            files'), Number.MAX_SAFE_INTEGER);
  assert.equal(connectionsWithin(20000), 9900);
  assert.equal(connectionsWithin(100), 0);
});

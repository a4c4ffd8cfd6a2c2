/**
 * `npm run demo -- --l7` end to end (root): a waypoint for reviews comes up in the bookinfo lab,
 * the HTTPRoute sends every request of jason to v2 and splits the others 90/10 between v1 and
 * v3, and Prometheus has the waypoint's request metrics for them. The split over 60 requests is
 * checked with a bound a fair 90/10 split breaks with probability below 1e-4 (binomial, p = 0.1:
 * v3 at most 18 of 60), and v2 never answers them.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { labDown } from '../../agent/lab/index.js';
import { REPO_DIR } from '../../agent/lab/paths.js';

const LAB = 'labdl7';
/** A bound on the run (the demo bounds each of its waits), not a measurement. */
const LIMIT_MS = 240_000;

after(async () => {
  await labDown({ name: LAB });
});

test('demo --l7: jason sees v2 only, the others v1 and v3 about 90/10, and Prometheus has the waypoint\'s requests', async () => {
  await labDown({ name: LAB });
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_DIR, 'dist', 'examples', 'demo.js'), '--name', LAB, '--count', '30', '--l7'], { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  assert.equal(r.code, 0, `exit ${r.code}:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^\[L7 1\/3\] Waypoint default\/waypoint up in .*: pod waypoint-[a-z0-9]{10}-[a-z0-9]{5} on node-\d/m);
  assert.match(r.stdout, /^ {2}jason\s+30\s+0\s+v2 30 \(100 %\)$/m);
  const others = /^ {2}\(none\)\s+60\s+0\s+(.*)$/m.exec(r.stdout);
  assert.ok(others, r.stdout);
  const versions = Object.fromEntries([...others[1]!.matchAll(/(v\d) (\d+) /g)].map((m) => [m[1]!, Number(m[2])]));
  assert.equal(versions['v2'], undefined, 'the others never reach v2');
  assert.equal((versions['v1'] ?? 0) + (versions['v3'] ?? 0), 60);
  assert.ok((versions['v3'] ?? 0) <= 18, `v3 answered ${versions['v3']} of 60`);
  for (const v of ['v1', 'v2', 'v3']) {
    assert.match(r.stdout, new RegExp(`^ {2}productpage-v1\\s+reviews-${v}\\s+reviews-${v}\\s+${v}\\s+200\\s+\\d+$`, 'm'), `the waypoint's requests to reviews-${v} in Prometheus`);
  }
});

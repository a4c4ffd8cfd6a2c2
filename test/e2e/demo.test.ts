/**
 * `npm run demo` end to end (what scripts/demo.sh runs after setup): the bookinfo lab comes up,
 * traffic flows, the output names the captured pods and the connections the agents and
 * Prometheus saw, and the lab is gone afterwards. Needs root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { labDown } from '../../agent/lab/index.js';
import { listNetns } from '../../agent/lab/network.js';
import { labPrefix, REPO_DIR } from '../../agent/lab/paths.js';
import { testLabName } from '../helpers/bookinfo.js';

const LAB = testLabName('demotest');
/** The demo's promise: done in under two minutes (a bound on the run, not a measurement). */
const DEMO_LIMIT_MS = 120_000;

after(async () => {
  await labDown({ name: LAB });
});

function runDemo(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_DIR, 'dist', 'examples', 'demo.js'), ...args], { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), DEMO_LIMIT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The first captured number of the first line matching `row` (thousands separators removed). */
function count(text: string, row: RegExp): number {
  const m = row.exec(text);
  assert.ok(m, `no line matching ${row} in:\n${text}`);
  return Number(m[1]!.replace(/,/g, ''));
}

test('npm run demo brings the lab up, shows captured pods and productpage -> details connections from the agents and Prometheus, and tears down', async () => {
  await labDown({ name: LAB });
  const r = await runDemo(['--name', LAB, '--count', '20']);
  assert.equal(r.signal, null, `the demo was still running after ${DEMO_LIMIT_MS} ms:\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.code, 0, `exit ${r.code}:\n${r.stdout}\n${r.stderr}`);
  // No log lines of the lab on the demo's output: only its own text and tables.
  assert.doesNotMatch(r.stdout, /^\{"level"/m);
  assert.equal(r.stderr, '');

  for (const [node, pod] of [
    ['node-1', 'default/productpage-v1'],
    ['node-1', 'default/reviews-v1'],
    ['node-1', 'default/reviews-v2'],
    ['node-1', 'default/reviews-v3'],
    ['node-2', 'default/details-v1'],
    ['node-2', 'default/ratings-v1'],
  ] as const) {
    // Versions are Deployments: the pod names carry the template hash and a suffix.
    assert.match(r.stdout, new RegExp(`^  ${node}\\s+${pod}-[a-z0-9]{10}-[a-z0-9]{5}\\s+198\\.18\\.\\S+\\s+spiffe://cluster\\.local/ns/default/sa/`, 'm'), `captured ${pod} on ${node}`);
  }
  assert.match(r.stdout, /Not captured \(namespace without weft\.dev\/mesh=enabled\): outside\/client/);
  assert.match(r.stdout, /^ {2}20 ok, 0 failed/m);

  const outbound = count(r.stdout, /^ {2}node-1\s+outbound\s+default\/productpage-v1-\S+\s+default\/details-v1-\S+\s+([\d,]+)\s+[\d,]+\s+[\d,]+\s+yes$/m);
  const inbound = count(r.stdout, /^ {2}node-2\s+inbound\s+default\/productpage-v1-\S+\s+default\/details-v1-\S+\s+([\d,]+)\s+[\d,]+\s+[\d,]+\s+yes$/m);
  assert.ok(outbound > 0, 'productpage -> details outbound connections');
  assert.equal(inbound, outbound, 'both agents saw every productpage -> details connection');
  // Istio's workload names: the Deployments' (productpage-v1), not the pods'.
  const prometheus = count(r.stdout, /^ {2}productpage-v1 -> details-v1\s+([\d,]+)\s+[\d,]+\s+[\d,]+\s+mutual_tls$/m);
  assert.equal(prometheus, inbound, 'Prometheus reports the connections the destination agent saw');

  assert.match(r.stdout, new RegExp(`Lab ${LAB} torn down`));
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(labPrefix(LAB))), []);
});

/**
 * `weft lab port-forward` on a real lab: a meshed pod's service and the pod itself reached from
 * this machine's 127.0.0.1, the CLI's output and clear refusals of unknown targets. Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { labDown, labStatus, labUp } from '../../agent/lab/index.js';
import { labPortForward, parsePortSpec, parseTargetRef, resolveForwardTarget, type PortForward } from '../../agent/lab/port-forward.js';
import { REPO_DIR, WEFT_MAIN } from '../../agent/lab/paths.js';
import { WeftError } from '../../agent/errors.js';
import { waitFor } from '../helpers/wait.js';

const LAB = 'dashpf';
const DIR = join(REPO_DIR, 'test', 'dashboard', 'fixtures', 'port-forward');
const forwards: PortForward[] = [];

before(async () => {
  await labDown({ name: LAB });
  await labUp({ name: LAB, dir: DIR, prometheus: false });
});

after(async () => {
  for (const f of forwards) await f.close();
  await labDown({ name: LAB });
});

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 5_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
  });
}

test('a lab without Prometheus runs no dashboard (it would have nothing to show)', async () => {
  assert.equal((await labStatus(LAB)).dashboard, undefined);
});

test('ports and targets are read as kubectl reads them', () => {
  assert.deepEqual(parsePortSpec('8080:80'), { local: 8080, remote: 80 });
  assert.deepEqual(parsePortSpec(':80'), { local: 0, remote: 80 });
  assert.deepEqual(parsePortSpec('9080'), { local: 9080, remote: 9080 });
  for (const bad of ['0', '80:0', '70000', 'a:b', '1:2:3', '']) assert.throws(() => parsePortSpec(bad), /expected LOCAL:REMOTE/);
  assert.deepEqual(parseTargetRef('svc/echo'), { kind: 'service', name: 'echo' });
  assert.deepEqual(parseTargetRef('service/echo'), { kind: 'service', name: 'echo' });
  assert.deepEqual(parseTargetRef('pod/echo-1'), { kind: 'pod', name: 'echo-1' });
  assert.deepEqual(parseTargetRef('echo-1'), { kind: 'pod', name: 'echo-1' });
  assert.throws(() => parseTargetRef('deploy/echo'), /expected pod\/NAME or svc\/NAME/);
});

test('svc/NAME: a connection to 127.0.0.1:LOCAL reaches the service\'s pod on its target port (service port 80 -> 8080)', async () => {
  const f = await labPortForward({ name: LAB, namespace: 'pf', target: 'svc/echo', ports: { local: 0, remote: 80 } });
  forwards.push(f);
  assert.equal(f.target.pod.name, 'echo-1');
  assert.equal(f.target.port, 8080);
  assert.equal(f.local.address, '127.0.0.1');
  const r = await get(f.local.port);
  assert.equal(r.status, 200);
  // As with kubectl, the app sees a client on its own loopback.
  assert.equal(r.body, 'echo from echo-1 for 127.0.0.1');
  // Each connection is forwarded on its own: several in a row all arrive.
  for (let i = 0; i < 3; i++) assert.equal((await get(f.local.port)).status, 200);
});

test('pod/NAME with the pod\'s own port', async () => {
  const f = await labPortForward({ name: LAB, namespace: 'pf', target: 'pod/echo-1', ports: { local: 0, remote: 8080 } });
  forwards.push(f);
  assert.match((await get(f.local.port)).body, /^echo from echo-1/);
});

test('unknown targets, namespaces and ports are refused with what exists', async () => {
  const status = await labStatus(LAB);
  const refused = (ns: string, ref: string, port: number, why: RegExp): void => {
    assert.throws(() => resolveForwardTarget(status, ns, ref, port), (err: unknown) => err instanceof WeftError && err.code === 'WEFT_ERR_PORT_FORWARD' && why.test(err.message));
  };
  refused('pf', 'svc/nope', 80, /no service pf\/nope \(services in pf: echo\)/);
  refused('pf', 'pod/nope', 80, /no pod pf\/nope \(pods in pf: echo-1\)/);
  refused('pf', 'svc/echo', 8080, /service pf\/echo does not expose port 8080 \(ports: 80\)/);
  refused('kube-system', 'svc/echo', 80, /no namespace kube-system \(namespaces: pf\)/);
  await assert.rejects(labPortForward({ name: 'dashnolab', namespace: 'pf', target: 'svc/echo', ports: { local: 0, remote: 80 } }), /lab dashnolab is not up/);
});

test('the CLI prints where it listens, forwards until interrupted, and exits 0 on SIGINT', async () => {
  const child = spawn(process.execPath, [WEFT_MAIN, 'lab', 'port-forward', '-n', 'pf', 'svc/echo', ':80', '--name', LAB], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const line = await waitFor(() => /^Forwarding from 127\.0\.0\.1:(\d+) -> 8080 \(svc\/echo in pf: pod echo-1, lab dashpf\)$/m.exec(out), 'the CLI prints its listen address', 20_000);
    assert.match((await get(Number(line[1]))).body, /^echo from echo-1/);
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

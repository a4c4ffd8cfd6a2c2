// Fail closed and upgrades without a gap (issue 10, points 1 and 3-6), on a small lab (root):
// a server pod `web` on node-a, a meshed client on node-b and a client outside the mesh.
// - a steady stream of new connections across `restart-agent` of both nodes: 0 failures;
// - long-lived connections held across a restart live on while the old agent drains, and end
//   when it exits at its deadline;
// - agent stopped (SIGTERM, no successor) or killed (SIGKILL): the pods are refused, the app sees
//   no connection from inside or outside the mesh, until a new agent takes over; then served;
// - an agent started while the CA is down captures at once and refuses until the CA is back;
// - kubelet-style probes from the node's own namespace pass under STRICT and ALLOW-only.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labApply, labDown, labExec, labStatus, labUp, labRestartAgent, labStartCa, labStopCa, type LabStatus } from '../../agent/lab/index.js';
import { manifestDir, pidAlive } from './helpers.js';
import { waitFor } from '../helpers/wait.js';
import { hasCaptureRules } from '../../agent/capture/rules.js';

const LAB = 'failrs';

const APP = `import http from 'node:http';
import net from 'node:net';
// Counts every TCP connection that reaches the app, on either port.
let connections = 0;
const server = http.createServer((req, res) => {
  res.setHeader('connection', 'close');
  res.end(JSON.stringify({ pod: process.env.POD_NAME, connections }));
});
server.on('connection', () => connections++);
server.listen(8080);
net.createServer((s) => {
  connections++;
  s.on('error', () => {});
  s.pipe(s);
}).listen(9000);
`;

// node rate.mjs URL RATE MAX STOPFILE: one new connection per request, RATE per second, until
// MAX are sent or STOPFILE exists; prints {sent, ok, failed, errors}.
const RATE = `import http from 'node:http';
import { existsSync } from 'node:fs';
const [url, rate, max, stopFile] = process.argv.slice(2);
const summary = { sent: 0, ok: 0, failed: 0, errors: {} };
const fail = (why) => { summary.failed++; summary.errors[why] = (summary.errors[why] ?? 0) + 1; };
const one = () => new Promise((resolve) => {
  const req = http.get(url, { agent: false, timeout: 10000 }, (res) => {
    res.resume();
    res.on('end', () => { if (res.statusCode === 200) summary.ok++; else fail('status ' + res.statusCode); resolve(); });
    res.on('error', (e) => { fail(e.code ?? e.message); resolve(); });
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => { fail(e.code ?? e.message); resolve(); });
});
const pending = [];
const start = Date.now();
while (summary.sent < Number(max) && !existsSync(stopFile)) {
  pending.push(one());
  summary.sent++;
  const wait = start + (summary.sent * 1000) / Number(rate) - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await Promise.all(pending);
process.stdout.write(JSON.stringify(summary) + '\\n');
`;

// node long.mjs HOST PORT N STATUSFILE STOPFILE: N connections to an echo server, a line on each
// every 50 ms; STATUSFILE says, per connection, how many lines came back and whether it closed.
const LONG = `import net from 'node:net';
import { existsSync, writeFileSync, renameSync } from 'node:fs';
const [host, port, n, statusFile, stopFile] = process.argv.slice(2);
const conns = [];
for (let i = 0; i < Number(n); i++) {
  const c = { echoed: 0, closed: false, error: undefined };
  const s = net.connect(Number(port), host);
  s.setEncoding('utf8');
  s.on('data', (d) => { c.echoed += d.split('\\n').length - 1; });
  s.on('error', (e) => { c.error = e.code ?? e.message; });
  s.on('close', () => { c.closed = true; });
  conns.push({ c, s });
}
const deadline = Date.now() + 60000;
const timer = setInterval(() => {
  for (const { c, s } of conns) if (!c.closed) s.write('ping\\n');
  writeFileSync(statusFile + '.tmp', JSON.stringify(conns.map(({ c }) => c)));
  renameSync(statusFile + '.tmp', statusFile);
  if (existsSync(stopFile) || Date.now() > deadline || conns.every(({ c }) => c.closed)) {
    clearInterval(timer);
    for (const { s } of conns) s.destroy();
  }
}, 50);
`;

const pod = (name: string, namespace: string, node: string, script: string, labels: Record<string, string> = {}, ports = false) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${namespace}
  labels: {app: ${name}${Object.entries(labels).map(([k, v]) => `, ${k}: ${v}`).join('')}}
spec:
  nodeName: ${node}
  serviceAccountName: ${name}
  containers:
    - name: main
      command: [node, ${script}]
${ports ? '      ports:\n        - {name: http, containerPort: 8080}\n        - {name: echo, containerPort: 9000}\n' : ''}`;

const files = manifestDir({
  'app.mjs': APP,
  'rate.mjs': RATE,
  'long.mjs': LONG,
  'idle.mjs': 'setInterval(() => {}, 1 << 30);\n',
  'cluster.yaml': [
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mesh\n  labels: {weft.dev/mesh: enabled}\n',
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: outside\n',
    pod('web', 'mesh', 'node-a', 'app.mjs', {}, true),
    pod('client', 'mesh', 'node-b', 'idle.mjs'),
    pod('stranger', 'outside', 'node-b', 'idle.mjs'),
    'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: mesh\nspec:\n  selector: {app: web}\n  ports:\n    - {name: http, port: 80, targetPort: 8080}\n    - {name: echo, port: 9000, targetPort: 9000}\n',
  ].join('---\n'),
});
const STOP = join(files.dir, 'stop');
const STATUS = join(files.dir, 'long-status.json');

let status: LabStatus;
const webIp = (): string => status.pods.find((p) => p.name === 'web')!.ip;
const nodeNetns = (node: string): string => status.nodes.find((n) => n.name === node)!.netns;
const agentPid = async (node: string): Promise<number | undefined> => (await labStatus(LAB)).nodes.find((n) => n.name === node)?.agentPid;

/** One GET from a pod; the app's answer, or the error code. */
async function get(from: 'client' | 'stranger', url: string): Promise<{ connections: number } | string> {
  const script = `require('http').get(${JSON.stringify(url)}, { agent: false, timeout: 8000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(r.statusCode === 200 ? b : JSON.stringify({ status: r.statusCode }))); }).on('error', (e) => console.log(JSON.stringify({ error: e.code ?? e.message }))).on('timeout', function () { this.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })); });`;
  const r = await labExec({ name: LAB, pod: from, namespace: from === 'client' ? 'mesh' : 'outside', command: ['node', '-e', script], timeoutMs: 20_000 });
  const out = JSON.parse(r.stdout.trim()) as { connections?: number; error?: string; status?: number };
  if (typeof out.connections === 'number') return { connections: out.connections };
  return out.error ?? `status ${out.status}`;
}

let probes = 0;
/** How many connections the app has seen but these probes (asked from the node's namespace, as the kubelet's probes). */
function appConnections(): number {
  probes++;
  const out = execFileSync('nsenter', [`--net=/run/netns/${nodeNetns('node-a')}`, '--', process.execPath, '-e', `require('http').get('http://${webIp()}:8080/', { agent: false }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(b)); });`], { encoding: 'utf8', timeout: 10_000 });
  // Every probe so far, this one included, was a connection too.
  return (JSON.parse(out) as { connections: number }).connections - probes;
}

/** Starts the stream; `done` settles with its summary (an object, so awaiting the start does not wait for the end). */
function rateRun(rate: number, max: number): { done: Promise<{ sent: number; ok: number; failed: number; errors: Record<string, number> }> } {
  rmSync(STOP, { force: true });
  const run = labExec({ name: LAB, pod: 'client', namespace: 'mesh', command: ['node', 'rate.mjs', 'http://web.mesh/', String(rate), String(max), STOP], timeoutMs: 120_000 });
  return {
    done: run.then((r) => {
      assert.equal(r.stderr, '', r.stderr);
      return JSON.parse(r.stdout) as { sent: number; ok: number; failed: number; errors: Record<string, number> };
    }),
  };
}

describe('agent restarts and outages fail closed and keep serving', () => {
  before(async () => {
    await labDown({ name: LAB });
    status = await labUp({ name: LAB, dir: files.dir, prometheus: false });
  });

  after(async () => {
    await labDown({ name: LAB });
    files.remove();
  });

  it('a steady stream of new connections across restart-agent of both nodes counts 0 failures', async () => {
    const before = appConnections();
    const run = rateRun(100, 2000);
    await waitFor(() => appConnections() > before + 20, 'the stream reaches the app');
    const a = await labRestartAgent({ name: LAB, node: 'node-a' });
    const b = await labRestartAgent({ name: LAB, node: 'node-b' });
    assert.notEqual(a.oldPid, undefined);
    assert.notEqual(b.oldPid, undefined);
    // Both old agents drained and exited while the stream went on.
    await waitFor(() => !pidAlive(a.oldPid!) && !pidAlive(b.oldPid!), 'the old agents exit', 20_000);
    const after = appConnections();
    await waitFor(() => appConnections() > after + 20, 'the stream goes on through the new agents');
    writeFileSync(STOP, '');
    const summary = await run.done;
    assert.ok(summary.sent >= 100, JSON.stringify(summary));
    assert.equal(summary.failed, 0, JSON.stringify(summary));
    assert.equal(summary.ok, summary.sent);
  });

  it('long-lived connections live on while the old agent drains and end when it exits', async () => {
    rmSync(STOP, { force: true });
    rmSync(STATUS, { force: true });
    const run = labExec({ name: LAB, pod: 'client', namespace: 'mesh', command: ['node', 'long.mjs', 'web.mesh', '9000', '5', STATUS, STOP], timeoutMs: 90_000 });
    type Conn = { echoed: number; closed: boolean; error?: string };
    const read = (): Conn[] => (existsSync(STATUS) ? (JSON.parse(readFileSync(STATUS, 'utf8')) as Conn[]) : []);
    await waitFor(() => read().length === 5 && read().every((c) => c.echoed > 0 && !c.closed), 'five connections echo');
    const r = await labRestartAgent({ name: LAB, node: 'node-a' });
    const atHandover = read();
    // While the old agent drains (it still runs), every connection still echoes.
    await waitFor(() => read().every((c, i) => c.echoed > atHandover[i]!.echoed + 5), 'the connections echo after the handover');
    assert.ok(pidAlive(r.oldPid!), 'the old agent was still draining');
    assert.ok(read().every((c) => !c.closed), 'no connection closed during the drain');
    await waitFor(() => !pidAlive(r.oldPid!), 'the old agent exits at its drain deadline', 20_000);
    await waitFor(() => read().every((c) => c.closed), 'the connections it carried end with it');
    writeFileSync(STOP, '');
    await run;
    // New connections go through the new agent.
    assert.equal(typeof (await get('client', 'http://web.mesh/')), 'object');
  });

  it('with no agent the pods are refused, never served in plaintext; a new agent serves them again', async () => {
    const baseline = appConnections();
    const outside = await get('stranger', `http://${webIp()}:8080/`);
    assert.equal(typeof outside, 'object', `outside the mesh reaches the app while an agent serves (PERMISSIVE): ${String(outside)}`);
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const pid = (await agentPid('node-a'))!;
      const seen = appConnections();
      process.kill(pid, signal);
      await waitFor(() => !pidAlive(pid), `the agent exits on ${signal}`, 20_000);
      assert.equal(await get('stranger', `http://${webIp()}:8080/`), 'ECONNREFUSED', `outside the mesh after ${signal}: refused`);
      assert.equal(await get('client', 'http://web.mesh/'), 'ECONNRESET', `meshed client after ${signal}: refused`);
      assert.equal(appConnections(), seen, `after ${signal} no connection reached the app`);
      const r = await labRestartAgent({ name: LAB, node: 'node-a' });
      assert.equal(r.oldPid, undefined);
      assert.equal(typeof (await get('client', 'http://web.mesh/')), 'object', `served again after ${signal}`);
    }
    assert.ok(appConnections() > baseline);
  });

  it('an agent started while the CA is down captures at once and refuses until the CA is back', async () => {
    await labStopCa({ name: LAB });
    try {
      for (const node of ['node-a', 'node-b']) {
        const pid = (await agentPid(node))!;
        assert.ok(pidAlive(pid), `an agent serves ${node}`);
        process.kill(pid, 'SIGKILL'); // its cached certificates go with it
        await waitFor(() => !pidAlive(pid), 'the agent is gone');
        const r = await labRestartAgent({ name: LAB, node });
        assert.equal(r.oldPid, undefined);
      }
      // Both captured (restart-agent waits for that) without certificates: the client's
      // outbound connection waits for its certificate (bounded), then is reset; web's 15008
      // refuses; nothing is sent in plaintext.
      const seen = appConnections();
      assert.equal(await get('client', 'http://web.mesh/'), 'ECONNRESET');
      assert.equal(await get('client', `http://${webIp()}:8080/`), 'ECONNRESET');
      assert.equal(appConnections(), seen, 'nothing reached the app without mutual TLS');
      // The rules and listeners are in place: the app cannot be reached around them.
      const listening = execFileSync('nsenter', [`--net=/run/netns/${status.pods.find((p) => p.name === 'web')!.netns}`, '--', 'ss', '-ltnH'], { encoding: 'utf8' });
      assert.match(listening, /:15001\b/);
      assert.match(listening, /:15006\b/);
    } finally {
      await labStartCa({ name: LAB });
    }
    await waitFor(async () => typeof (await get('client', 'http://web.mesh/')) === 'object', 'served once the CA is back', 30_000);
  });

  it('lab apply leaves a stopped CA stopped', async () => {
    await labStopCa({ name: LAB });
    try {
      const extra = manifestDir({ 'svc.yaml': 'apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n  namespace: mesh\nspec:\n  selector: {app: web}\n  ports:\n    - {port: 81, targetPort: 8080}\n' });
      try {
        await labApply({ name: LAB, file: extra.dir });
      } finally {
        extra.remove();
      }
      const state = JSON.parse(readFileSync(`/run/weft/lab/${LAB}/state.json`, 'utf8')) as { ca?: { pid: number }; caStopped?: boolean };
      assert.equal(state.caStopped, true);
      assert.equal(state.ca === undefined || !pidAlive(state.ca.pid), true, 'the CA was not restarted');
    } finally {
      await labStartCa({ name: LAB });
    }
  });

  it('probes from the node pass under STRICT and ALLOW-only policies; a stranger and another node are refused', async () => {
    const policies = manifestDir({
      'policies.yaml':
        'apiVersion: weft.dev/v1alpha1\nkind: PeerAuthentication\nmetadata:\n  name: strict\n  namespace: mesh\nspec:\n  mtls:\n    mode: STRICT\n' +
        '---\napiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  name: web-from-client\n  namespace: mesh\nspec:\n  selector:\n    matchLabels: {app: web}\n  action: ALLOW\n  rules:\n    - from:\n        - source:\n            principals: ["cluster.local/ns/mesh/sa/client"]\n',
    });
    try {
      await labApply({ name: LAB, file: policies.dir });
    } finally {
      policies.remove();
    }
    await waitFor(async () => (await get('stranger', `http://${webIp()}:8080/`)) === 'ECONNRESET', 'STRICT refuses plaintext from outside the mesh');
    // The kubelet's probe comes from the node's own address, in the node's own namespace (unchanged).
    assert.ok(appConnections() >= 0, 'the probe from the node reached the app');
    assert.equal(typeof (await get('client', 'http://web.mesh/')), 'object', 'the allowed meshed client is served');
    // Only the pod's own node is exempt: another node's namespace is refused like any stranger.
    const fromOtherNode = execFileSync('nsenter', [`--net=/run/netns/${nodeNetns('node-b')}`, '--', process.execPath, '-e', `require('http').get('http://${webIp()}:8080/', { agent: false }, (r) => console.log(r.statusCode)).on('error', (e) => console.log(e.code));`], { encoding: 'utf8', timeout: 10_000 }).trim();
    assert.equal(fromOtherNode, 'ECONNRESET');
  });

  it('pods that left the mesh while no agent ran lose their rules when an agent comes back', async () => {
    const webNetns = status.pods.find((p) => p.name === 'web')!.netns;
    const pid = (await agentPid('node-a'))!;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !pidAlive(pid), 'the agent is gone');
    const out = manifestDir({ 'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mesh\n' });
    try {
      await labApply({ name: LAB, file: out.dir });
    } finally {
      out.remove();
    }
    // Nobody removed them: still refused.
    assert.equal(await hasCaptureRules(`/run/netns/${webNetns}`), true);
    assert.equal(await get('stranger', `http://${webIp()}:8080/`), 'ECONNREFUSED');
    await labRestartAgent({ name: LAB, node: 'node-a' });
    await waitFor(async () => !(await hasCaptureRules(`/run/netns/${webNetns}`)), 'the new agent removes the stale rules');
    assert.equal(typeof (await get('stranger', `http://${webIp()}:8080/`)), 'object', 'out of the mesh: reached directly');
  });
});

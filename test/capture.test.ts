/**
 * In-pod capture and the L4 proxy path, in-process: two pod namespaces on a veth pair, the agent
 * running in this test process (it only ever makes sockets inside the pods, through setns).
 * Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTcpSocket, openNetns, closeNetns } from '../native/index.js';
import { Agent } from '../agent/agent.js';
import { hasCaptureRules } from '../agent/capture/rules.js';
import { silentLogger } from '../agent/log.js';
import { createTestNetns, inNs, run, removeNetns } from './helpers/netns.js';
import { waitFor } from './helpers/wait.js';

const A = `weft-test-cap-a-${process.pid}`;
const B = `weft-test-cap-b-${process.pid}`;
const IP_A = '198.18.250.2';
const IP_B = '198.18.250.3';
const VIP = '198.18.250.100';
const dir = mkdtempSync(join(tmpdir(), 'weft-capture-'));
let fdA = -1;
let fdB = -1;
let agent: Agent;
let app: net.Server;

function writeManifests(meshLabel: string | undefined): void {
  const labels = meshLabel ? `\n  labels:\n    weft.dev/mesh: ${meshLabel}` : '';
  writeFileSync(join(dir, 'ns.yaml'), `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop${labels}\n`);
}

function writePods(): void {
  const pod = (name: string, ip: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: shop\n  labels:\n    app: ${name}\nspec:\n  nodeName: node-1\n  serviceAccountName: ${name}\n  containers:\n  - name: main\n    command: [sleep, infinity]\nstatus:\n  phase: Running\n  podIP: ${ip}\n`;
  writeFileSync(join(dir, 'pods.yaml'), `${pod('client', IP_A)}---\n${pod('server', IP_B)}`);
  writeFileSync(
    join(dir, 'svc.yaml'),
    `apiVersion: v1\nkind: Service\nmetadata:\n  name: server\n  namespace: shop\nspec:\n  clusterIP: ${VIP}\n  selector:\n    app: server\n  ports:\n  - port: 80\n    targetPort: 9080\n`,
  );
}

/** Connects from inside pod A as an app would (no mark: the rules capture it). */
async function request(host: string, port: number, payload: string): Promise<string> {
  const fd = createTcpSocket({ netnsFd: fdA });
  const socket = new net.Socket({ fd, readable: true, writable: true });
  socket.connect(port, host);
  socket.end(payload);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

before(async () => {
  removeNetns(A);
  removeNetns(B);
  createTestNetns(A);
  createTestNetns(B);
  run('ip', ['link', 'add', 'eth0', 'netns', A, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', B]);
  inNs(A, 'ip', ['addr', 'add', `${IP_A}/24`, 'dev', 'eth0']);
  inNs(B, 'ip', ['addr', 'add', `${IP_B}/24`, 'dev', 'eth0']);
  inNs(A, 'ip', ['link', 'set', 'eth0', 'up']);
  inNs(B, 'ip', ['link', 'set', 'eth0', 'up']);
  // Unmatched destinations (the VIP) leave through eth0 like a default route would send them.
  inNs(A, 'ip', ['route', 'add', 'default', 'dev', 'eth0']);
  fdA = openNetns(`/var/run/netns/${A}`);
  fdB = openNetns(`/var/run/netns/${B}`);
  // The app in pod B: answers with the client address it sees and what it received.
  const appFd = createTcpSocket({ netnsFd: fdB, reuseAddress: true, bind: { address: '0.0.0.0', port: 9080 } });
  app = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(`${s.remoteAddress}|${Buffer.concat(chunks).toString()}`));
  });
  app.listen({ fd: appFd });
  await once(app, 'listening');
  writeManifests('enabled');
  writePods();
  agent = new Agent({ nodeName: 'node-1', manifestsDir: dir, logger: silentLogger, adminAddress: '' });
  await agent.start();
});

after(async () => {
  await agent?.stop().catch(() => undefined);
  app?.close();
  if (fdA >= 0) closeNetns(fdA);
  if (fdB >= 0) closeNetns(fdB);
  removeNetns(A);
  removeNetns(B);
  rmSync(dir, { recursive: true, force: true });
});

test('meshed pods get rules and the 15001/15006/15008 listeners inside their namespace', async () => {
  assert.equal(agent.captured.size, 2);
  for (const ns of [A, B]) {
    assert.equal(await hasCaptureRules(`/var/run/netns/${ns}`), true, `rules in ${ns}`);
    const listening = inNs(ns, 'ss', ['-ltnH']);
    for (const port of [15001, 15006, 15008]) assert.match(listening, new RegExp(`:${port}\\b`), `${ns} listens on ${port}`);
  }
});

test('pod to pod passes through outbound and inbound capture; the app sees the real client IP', async () => {
  const before = agent.inputs.connections.totals().length;
  const reply = await request(IP_B, 9080, 'hello');
  assert.equal(reply, `${IP_A}|hello`);
  const totals = await waitFor(() => {
    const t = agent.inputs.connections.totals();
    return t.length >= before + 2 ? t : undefined;
  }, 'both connection records');
  const outbound = totals.find((t) => t.direction === 'outbound' && t.source === 'shop/client');
  const inbound = totals.find((t) => t.direction === 'inbound' && t.destination === 'shop/server');
  assert.ok(outbound, 'outbound record');
  assert.equal(outbound.destination, 'shop/server');
  assert.ok(inbound, 'inbound record');
  assert.equal(inbound.source, 'shop/client');
  assert.equal(outbound.bytesFromClient, 5);
  assert.equal(outbound.bytesToClient, IP_A.length + 6);
});

test('a service VIP is resolved to an endpoint with the service target port', async () => {
  const reply = await request(VIP, 80, 'via-vip');
  assert.equal(reply, `${IP_A}|via-vip`);
});

test('removing the namespace label releases the pods; traffic goes direct; adding it back captures again', async () => {
  writeManifests(undefined);
  await waitFor(() => agent.captured.size === 0, 'pods released');
  for (const ns of [A, B]) {
    assert.equal(await hasCaptureRules(`/var/run/netns/${ns}`), false, `no rules left in ${ns}`);
    assert.doesNotMatch(inNs(ns, 'ss', ['-ltnH']), /:1500[168]\b/, `no listeners left in ${ns}`);
  }
  const count = agent.inputs.connections.totals().reduce((n, t) => n + t.connections, 0);
  assert.equal(await request(IP_B, 9080, 'direct'), `${IP_A}|direct`);
  assert.equal(agent.inputs.connections.totals().reduce((n, t) => n + t.connections, 0), count, 'no connection went through the agent');
  writeManifests('enabled');
  await waitFor(() => agent.captured.size === 2, 'pods captured again');
  assert.equal(await request(IP_B, 9080, 'again'), `${IP_A}|again`);
});

test('a refused upstream connection reaches the client as a reset, and nothing leaks', async () => {
  await assert.rejects(request(IP_B, 9099, 'nobody'), (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET' || err.code === 'ECONNREFUSED');
  await waitFor(() => agent.inputs.connections.openConnections().length === 0, 'no open connection records');
});

test('half-close travels end to end: the client can read after it has sent FIN', async () => {
  // request() ends its side first, then reads the whole reply: that is a half-close round trip.
  const payload = 'x'.repeat(256 * 1024);
  const reply = await request(IP_B, 9080, payload);
  assert.equal(reply.length, IP_A.length + 1 + payload.length);
});

test('stopping the agent leaves no rule and no listener in any pod', async () => {
  await agent.stop();
  for (const ns of [A, B]) {
    assert.equal(await hasCaptureRules(`/var/run/netns/${ns}`), false, `no rules left in ${ns}`);
    assert.doesNotMatch(inNs(ns, 'ss', ['-ltnH']), /:1500[168]\b/, `no listeners left in ${ns}`);
  }
});

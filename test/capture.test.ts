/**
 * In-pod capture and the L4 proxy path, in-process: two pod namespaces on a veth pair, the agent
 * running in this test process (it only ever makes sockets inside the pods, through setns).
 * Needs root.
 */
import { test, before, after } from 'node:test';
import net from 'node:net';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { createTcpSocket } from '../native/index.js';
import assert from 'node:assert/strict';
import { hasCaptureRules } from '../agent/capture/rules.js';
import { inNs } from './helpers/netns.js';
import { waitFor } from './helpers/wait.js';
import { setupTwoPods, type TwoPods } from './helpers/two-pods.js';
import { silentLogger } from '../agent/log.js';

let t: TwoPods;
let A: string, B: string, IP_A: string, IP_B: string, VIP: string;
let agent: TwoPods['agent'];
const request = (host: string, port: number, payload: string) => t.request(host, port, payload);
const writeManifests = (mesh: string | undefined) => t.writeNamespace(mesh ? { 'weft.dev/mesh': mesh } : {});

before(async () => {
  t = await setupTwoPods('cap', 250);
  ({ A, B, IP_A, IP_B, VIP, agent } = t);
});

after(() => t?.cleanup());

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

test('no socket or file descriptor leaks when either side vanishes', async () => {
  const fds = () => readdirSync('/proc/self/fd').length;
  // An app that resets every connection as soon as data arrives: the server side vanishing.
  const resetterFd = createTcpSocket({ netnsFd: t.fdB, reuseAddress: true, bind: { address: '0.0.0.0', port: 9081 } });
  const resetter = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
  resetter.listen({ fd: resetterFd });
  await once(resetter, 'listening');
  await request(IP_B, 9080, 'warm-up');
  await waitFor(() => agent.inputs.connections.openConnections().length === 0, 'warm-up closed');
  const baseline = fds();
  const clients: net.Socket[] = [];
  for (let i = 0; i < 40; i++) {
    const socket = t.open(IP_B, i < 30 ? 9080 : 9081);
    socket.on('error', () => undefined);
    clients.push(socket);
  }
  await Promise.all(clients.map((s) => once(s, 'connect')));
  await waitFor(() => agent.inputs.connections.openConnections().length === 80, '40 connections open through both sides');
  clients.forEach((s, i) => {
    if (i < 15) s.resetAndDestroy(); // client aborts
    else if (i < 30) s.destroy(); // client closes without a word
    else s.write('x'); // the server resets
  });
  await waitFor(() => agent.inputs.connections.openConnections().length === 0, 'every connection record closed');
  await waitFor(() => fds() <= baseline, `file descriptors back to ${baseline}`);
  resetter.close();
});

test('Istio TCP metrics count the connections with workload labels and the security policy', async () => {
  const text = await agent.metrics.registry.metrics();
  const opened = text.split('\n').find((l) => l.startsWith('istio_tcp_connections_opened_total{') && l.includes('reporter="source"') && l.includes('source_workload="client"') && l.includes('destination_workload="server"'));
  assert.ok(opened, 'outbound connections counted');
  assert.match(opened, /connection_security_policy="mutual_tls"/);
  assert.match(opened, /destination_principal="spiffe:\/\/cluster.local\/ns\/shop\/sa\/server"/);
  assert.ok(Number(opened.split(' ').pop()) > 0);
  assert.match(text, /weft_certificate_expiry_timestamp_seconds\{identity="spiffe:\/\/cluster.local\/ns\/shop\/sa\/client"\} \d+/);
  assert.match(text, /weft_captured_pods 2/);
});

test('garbage on the HBONE port is refused and logged; the pod keeps being served', async () => {
  // A socket with the mesh mark skips capture and reaches B's 15008 directly, like a stray client.
  const socket = new net.Socket({ fd: createTcpSocket({ netnsFd: t.fdA, mark: 0x539 }), readable: true, writable: true });
  socket.connect(15008, IP_B);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const before = t.logs.length;
  socket.write(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n\u0000\u0001garbage'));
  await once(socket, 'close');
  await waitFor(() => t.logs.slice(before).find((l) => l['msg'] === 'HBONE handshake failed'), 'handshake failure logged');
  assert.equal(await request(IP_B, 9080, 'after-garbage'), `${IP_A}|after-garbage`);
});

test('stopping the agent closes its listeners and leaves the rules: the pods are refused, not sent in plaintext', async () => {
  await agent.stop();
  for (const ns of [A, B]) {
    assert.equal(await hasCaptureRules(`/var/run/netns/${ns}`), true, `rules stay in ${ns}`);
    assert.doesNotMatch(inNs(ns, 'ss', ['-ltnH']), /:1500[168]\b/, `no listeners left in ${ns}`);
  }
  const socket = t.open(IP_B, 9080);
  const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED', 'the redirect points at a port nobody listens on');
});

test('uninstall removes the rules from every pod namespace', async () => {
  const { uninstallCapture } = await import('../agent/capture/uninstall.js');
  const { removed } = await uninstallCapture({ podNetnsPrefix: A.slice(0, A.lastIndexOf('-') + 1), logger: silentLogger });
  assert.ok(removed.length >= 2, `removed from ${removed.join(', ')}`);
  for (const ns of [A, B]) assert.equal(await hasCaptureRules(`/var/run/netns/${ns}`), false, `no rules left in ${ns}`);
});

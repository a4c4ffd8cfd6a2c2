/**
 * In-pod capture and the L4 proxy path, in-process: two pod namespaces on a veth pair, the agent
 * running in this test process (it only ever makes sockets inside the pods, through setns).
 * Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { hasCaptureRules } from '../agent/capture/rules.js';
import { inNs } from './helpers/netns.js';
import { waitFor } from './helpers/wait.js';
import { setupTwoPods, type TwoPods } from './helpers/two-pods.js';

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

test('stopping the agent leaves no rule and no listener in any pod', async () => {
  await agent.stop();
  for (const ns of [A, B]) {
    assert.equal(await hasCaptureRules(`/var/run/netns/${ns}`), false, `no rules left in ${ns}`);
    assert.doesNotMatch(inNs(ns, 'ss', ['-ltnH']), /:1500[168]\b/, `no listeners left in ${ns}`);
  }
});

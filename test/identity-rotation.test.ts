/**
 * Workload certificates rotate under live traffic, and a dead CA stops nothing that cached
 * certificates can still do (issue 3). In-process on two pod namespaces with the agent's CA
 * issuing one-minute certificates that the agent renews after a few seconds. Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import { setupTwoPods, type TwoPods } from './helpers/two-pods.js';
import { waitFor } from './helpers/wait.js';

let t: TwoPods;
const CLIENT = 'spiffe://cluster.local/ns/shop/sa/client';
const SERVER = 'spiffe://cluster.local/ns/shop/sa/server';

before(async () => {
  // 60 s certificates (the CA's minimum), renewed after ~5% of their life: every ~3 s.
  t = await setupTwoPods('rot', 252, { identityOptions: { renewAt: 0.05, jitter: 0.01, retryInitialMs: 200, retryMaxMs: 1000 } }, true, 60_000);
});
after(() => t?.cleanup());

/** A connection from A to B that keeps sending until stopped; resolves with what the app echoed. */
function streaming(): { socket: net.Socket; sent(): number; finish(): Promise<string> } {
  const socket = t.open(t.IP_B, 9080);
  let sent = 0;
  const chunk = Buffer.alloc(1024, 'r');
  const timer = setInterval(() => {
    socket.write(chunk);
    sent += chunk.length;
  }, 5);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(socket, 'end');
  return {
    socket,
    sent: () => sent,
    async finish() {
      clearInterval(timer);
      socket.end();
      await ended;
      return Buffer.concat(chunks).toString();
    },
  };
}

test('certificates rotate while a long-lived connection keeps streaming, without an error', async () => {
  const identity = t.agent.inputs.identity!;
  const first = { client: (await identity.get(CLIENT)).serial, server: (await identity.get(SERVER)).serial };
  const stream = streaming();
  let errors = 0;
  stream.socket.on('error', () => errors++);
  await waitFor(() => {
    const client = identity.current(CLIENT);
    const server = identity.current(SERVER);
    return client && server && client.serial !== first.client && server.serial !== first.server;
  }, 'both certificates renewed', 20_000);
  // New connections (new streams, and handshakes with the new certificates) work meanwhile.
  assert.equal(await t.request(t.IP_B, 9080, 'during'), `${t.IP_A}|during`);
  const reply = await stream.finish();
  assert.equal(errors, 0);
  assert.equal(reply.length, `${t.IP_A}|`.length + stream.sent(), 'every byte streamed across the rotation arrived');
  assert.ok(identity.stats().renewed >= 2);
});

test('with the CA stopped, existing and new connections keep working on cached certificates; renewals resume when it returns', async () => {
  const identity = t.agent.inputs.identity!;
  const stream = streaming();
  t.setCaDown(true);
  await once(identity, 'renewalFailed');
  assert.equal(await t.request(t.IP_B, 9080, 'ca-down'), `${t.IP_A}|ca-down`);
  const failuresWhileDown = identity.stats().failures;
  assert.ok(failuresWhileDown >= 1);
  t.setCaDown(false);
  await once(identity, 'rotated');
  assert.equal(await t.request(t.IP_B, 9080, 'ca-back'), `${t.IP_A}|ca-back`);
  const reply = await stream.finish();
  assert.equal(reply.length, `${t.IP_A}|`.length + stream.sent());
  assert.ok(t.logs.some((l) => l['msg'] === 'certificate renewed' || String(l['msg']).includes('renew')), 'renewal logged');
});

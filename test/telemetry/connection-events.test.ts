/**
 * The connection event feed's bound: a reader that stops reading is dropped once it is
 * `maxBufferedBytes` behind, and what the agent holds for it never grows past that; a reader
 * that keeps up gets every event meanwhile. Real HTTP on loopback, no root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ConnectionEventHub, type ConnectionEvent } from '../../agent/telemetry/connection-events.js';
import { waitFor } from '../helpers/wait.js';

const MAX = 64 * 1024;

function event(id: number): ConnectionEvent {
  return {
    event: 'close', id, time: new Date().toISOString(), direction: 'inbound', src: '198.18.128.2:40000', srcWorkload: 'shop/client',
    srcPrincipal: 'spiffe://cluster.local/ns/shop/sa/client', dst: '198.18.128.3:9080', dstService: undefined, upstream: '198.18.128.3:9080',
    dstWorkload: 'shop/server', dstPrincipal: 'spiffe://cluster.local/ns/shop/sa/server', mtls: true, decision: 'allow', bytesFromClient: 5, bytesToClient: 20, durationMs: 1, responseFlags: '-',
  };
}

test('a stalled reader is dropped at the bound; a reader that keeps up gets every event', async (t) => {
  const hub = new ConnectionEventHub();
  const responses: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    responses.push(res);
    hub.serve(req, res, MAX);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;

  const connect = async () => {
    const req = http.get({ host: '127.0.0.1', port, path: '/connections/stream' });
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    return { req, res };
  };
  // The stalled reader: never reads a byte after the headers.
  const stalled = await connect();
  stalled.res.pause();
  // The fast reader counts the events it gets.
  const fast = await connect();
  let received = 0;
  let pending = '';
  fast.res.setEncoding('utf8').on('data', (c: string) => {
    pending += c;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    received += lines.filter((l) => l.includes('"event":"close"')).length;
  });
  await waitFor(() => hub.subscribers === 2, 'both readers subscribed');

  // Publish in batches, yielding between them so that the fast reader and the sockets move,
  // until the stalled one is dropped (bounded: at most 200000 events, about 80 MB of lines).
  const stalledResponse = responses[0]!;
  let published = 0;
  let maxHeld = 0;
  while (hub.dropped === 0 && published < 200_000) {
    for (let i = 0; i < 20; i++) hub.publish(event(++published));
    if (!stalledResponse.destroyed) maxHeld = Math.max(maxHeld, stalledResponse.writableLength);
    await new Promise((resolve) => setImmediate(resolve));
  }

  assert.equal(hub.dropped, 1, `the stalled reader was dropped (after ${published} events)`);
  assert.equal(hub.subscribers, 1, 'the fast reader stays subscribed');
  const line = JSON.stringify(event(published)).length + 1;
  assert.ok(maxHeld <= MAX + line, `the agent never held more than the bound for the stalled reader (held ${maxHeld} B, bound ${MAX} B)`);
  // The stalled reader, reading again, finds its stream cut short: it did not get every event.
  let stalledGot = 0;
  stalled.res.setEncoding('utf8').on('data', (c: string) => (stalledGot += c.split('"event":"close"').length - 1));
  stalled.res.on('error', () => undefined);
  stalled.req.on('error', () => undefined);
  stalled.res.resume();
  await new Promise((resolve) => stalled.res.on('close', resolve));
  assert.ok(stalledGot < published, `the stalled reader's stream ended early (${stalledGot} of ${published} events)`);
  await waitFor(() => received === published, `the fast reader got all ${published} events`);
  fast.req.destroy();
  await waitFor(() => hub.subscribers === 0, 'the fast reader unsubscribed when it left');
});

test('no reader: publish() builds nothing (the proxy asks hasSubscribers first)', () => {
  const hub = new ConnectionEventHub();
  assert.equal(hub.hasSubscribers, false);
  const stop = hub.subscribe(() => undefined);
  assert.equal(hub.hasSubscribers, true);
  stop();
  assert.equal(hub.hasSubscribers, false);
});

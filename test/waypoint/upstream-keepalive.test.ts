/**
 * An app closes an idle keep-alive connection (Node's server after keepAliveTimeout, as every
 * Bookinfo app does after 5 s): the waypoint's pooled upstream connection, a CONNECT stream,
 * sees the end and must leave the pool. It stayed (a stream is half-open by default, unlike a
 * net.Socket), so the next request was written into a connection nobody read and hung until the
 * client gave up (the Bookinfo tasks' first request after a pause timed out at productpage).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { startHarness, type Harness } from './harness.js';

const VIP = '198.18.121.40';
/** Short, so that the test waits little for the app to close its idle connection. */
const APP_KEEPALIVE_MS = 150;

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path} within 5 s`)));
    req.on('error', reject);
  });
}

describe('waypoint: upstream keep-alive connections the app closed', () => {
  let h: Harness;
  let port: number;

  before(async () => {
    h = await startHarness({ pods: [{ name: 'idle-1', ip: '198.18.120.41', labels: { app: 'idle' } }], services: [{ name: 'idle', vip: VIP, selector: { app: 'idle' } }] });
    for (const pod of h.pods.values()) pod.http.keepAliveTimeout = APP_KEEPALIVE_MS;
    port = await h.tunnelPort(VIP, 80);
  });
  after(async () => {
    await h.close();
  });

  it('a request after the app closed the idle upstream connection is answered on a new one', async () => {
    const app = h.pods.get('idle-1')!.http;
    const connections = (): Promise<number> => new Promise((resolve, reject) => app.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    assert.equal((await get(port, '/first')).status, 200);
    // The app closes the waypoint's idle connection after its keep-alive timeout.
    await waitFor(async () => (await connections()) === 0, 'the app closed the idle keep-alive connection', 5000);
    const second = await get(port, '/second');
    assert.equal(second.status, 200);
    assert.match(second.body, /"url":"\/second"/);
    assert.equal(h.connects.filter((c) => c.pod === 'idle-1').length, 2, 'a new upstream CONNECT for the second request');
  });
});

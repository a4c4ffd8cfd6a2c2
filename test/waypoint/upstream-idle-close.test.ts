/**
 * Regression (found by test/e2e/waypoint-lab: 1 in ~400 requests hung until the client gave up,
 * then the next ones to the other backend too): a pod that closes an idle kept-alive connection
 * (its keep-alive timeout, a FIN, not a reset) ends the CONNECT stream the waypoint pooled. A
 * net.Socket closes itself on the peer's FIN (allowHalfOpen false) and leaves node:http's pool;
 * an HTTP/2 stream stays half-open, so the pool handed it to the next request, which waited for
 * an answer that could never come. The next request must get its answer on a new connection.
 * And (found with it): every reuse of a pooled connection left node:http's free-socket error
 * listener on the stream (TunnelAgent's reuseSocket did not call node's), one more per request.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { startHarness, type Harness } from './harness.js';

const WEB = '198.18.145.10';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path} within 5 s`)));
    req.on('error', reject);
  });
}

describe('waypoint upstream keep-alive', () => {
  let h: Harness;
  let web: number;
  let appClosed = 0;

  before(async () => {
    h = await startHarness({
      pods: [{ name: 'web-1', ip: '198.18.144.10', labels: { app: 'web' } }],
      services: [{ name: 'web', vip: WEB, selector: { app: 'web' } }],
      app: (_pod, req, res) => {
        if (req.url !== '/then-close') return false;
        // Answered as kept alive, then closed gracefully, as a server's idle timeout does.
        res.on('finish', () => {
          req.socket.once('close', () => appClosed++);
          req.socket.end();
        });
        res.end('bye');
        return true;
      },
    });
    web = await h.tunnelPort(WEB, 80);
  });
  after(() => h.close());

  it('keeps no listener per request on a pooled connection (no MaxListenersExceededWarning after 30 reuses)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 30; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: web, path: `/reuse-${i}`, agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          }).on('error', reject);
        });
        assert.equal(status, 200);
      }
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings, []);
    } finally {
      agent.destroy();
      process.off('warning', onWarning);
    }
  });

  it('does not reuse a connection the pod closed while it was idle in the pool', async () => {
    assert.equal((await get(web, '/then-close')).status, 200);
    await waitFor(() => appClosed === 1, 'the app closed its side of the kept-alive connection');
    // The FIN travels to the waypoint through the destination agent; whatever it finds then, the next request is answered.
    for (let i = 0; i < 3; i++) assert.equal((await get(web, `/after-${i}`)).status, 200);
  });
});

/**
 * The waypoint with HTTP/1.1 clients (Node's fetch, node:http with keep-alive, curl, a WebSocket):
 * requests are proxied to the bound service's pods over HBONE, keep-alive and chunked bodies
 * work, trace headers pass untouched, the destination agent sees the client in `forwarded`,
 * and an Upgrade is relayed raw after the 101.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';
import { CLIENT_ID, CLIENT_IP, NS, WAYPOINT_ID, startHarness, type Harness } from './harness.js';

const run = promisify(execFile);
const VIP = '198.18.121.10';

describe('waypoint: HTTP/1.1', () => {
  let h: Harness;
  let port: number;
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(binary ? m : `echo:${String(m)}`)));

  before(async () => {
    h = await startHarness({
      pods: [
        { name: 'web-1', ip: '198.18.120.11', labels: { app: 'web' } },
        { name: 'web-2', ip: '198.18.120.12', labels: { app: 'web' } },
      ],
      services: [{ name: 'web', vip: VIP, selector: { app: 'web' } }],
      app: (_pod, req, res) => {
        if (req.url === '/chunked') {
          // Chunked both ways: the request body streams in and the answer streams out with a trailer.
          res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-sum' });
          let n = 0;
          req.on('data', (c: Buffer) => {
            n += c.length;
            res.write(`got ${c.length}\n`);
          });
          req.on('end', () => {
            res.addTrailers({ 'x-sum': String(n) });
            res.end('done\n');
          });
          return true;
        }
        if (req.headers.upgrade === 'websocket') return false;
        return false;
      },
    });
    // The pods' HTTP servers take WebSocket upgrades.
    for (const pod of h.pods.values()) pod.http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
    port = await h.tunnelPort(VIP, 80);
  });
  after(async () => {
    wss.close();
    await h.close();
  });

  it('proxies a fetch to a pod of the service over HBONE, with the client in forwarded on the CONNECT', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/hello?x=1`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { pod: string; url: string; headers: Record<string, string> };
    assert.match(body.pod, /^web-[12]$/);
    assert.equal(body.url, '/hello?x=1');
    assert.equal(body.headers.host, `127.0.0.1:${port}`, 'the Host the client sent');
    const seen = h.connects.at(-1)!;
    assert.equal(seen.peer, WAYPOINT_ID, 'the destination agent sees the waypoint identity');
    assert.equal(seen.forwarded, `for="${CLIENT_IP}"`);
    assert.match(seen.authority, /^198\.18\.120\.1[12]:8080$/, 'CONNECT authority is podIP:targetPort');
  });

  it('keeps the downstream connection alive across requests and reuses upstream connections', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    for (let i = 0; i < 6; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: `/k${i}`, agent }, (res) => {
          sockets.add(req.socket);
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
      });
      assert.equal(status, 200);
    }
    agent.destroy();
    assert.equal(sockets.size, 1, 'one client connection carried every request');
    const upstreamConnects = h.connects.filter((c) => c.authority.endsWith(':8080')).length;
    assert.ok(upstreamConnects <= 3, `upstream CONNECTs are pooled (${upstreamConnects} for 7 requests)`);
  });

  it('balances requests, not connections: one client connection reaches both pods', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const pods = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const pod = await new Promise<string>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: `/spread${i}`, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(String(res.headers['x-pod'])));
        }).on('error', reject);
      });
      pods.set(pod, (pods.get(pod) ?? 0) + 1);
    }
    agent.destroy();
    // With nothing outstanding P2C picks either pod at random: all 20 on one has odds of 2^-19.
    assert.deepEqual([...pods.keys()].sort(), ['web-1', 'web-2'], JSON.stringify([...pods]));
  });

  it('streams a chunked request body and a chunked answer with its trailer', async () => {
    const result = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/chunked', method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ body, trailers: res.trailers }));
      });
      req.on('error', reject);
      req.write('a'.repeat(10));
      setImmediate(() => {
        req.write('b'.repeat(20));
        req.end();
      });
    });
    assert.match(result.body, /done\n$/);
    assert.equal(result.trailers['x-sum'], '30');
  });

  it('passes traceparent, tracestate and b3 headers untouched', async () => {
    const trace = {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'congo=t61rcWkgMzE',
      b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90',
      'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
      'x-b3-spanid': 'e457b5a2e4d86bd1',
      'x-b3-sampled': '1',
    };
    const res = await fetch(`http://127.0.0.1:${port}/trace`, { headers: trace });
    const body = (await res.json()) as { headers: Record<string, string> };
    for (const [k, v] of Object.entries(trace)) assert.equal(body.headers[k], v, k);
  });

  it('works with curl', async () => {
    const { stdout } = await run('curl', ['-sS', '-i', '-H', 'x-test: curl', `http://127.0.0.1:${port}/curl`]);
    assert.match(stdout, /^HTTP\/1\.1 200/);
    assert.match(stdout, /x-pod: web-[12]/);
    assert.match(stdout, /"x-test":"curl"/);
  });

  it('relays a WebSocket upgrade raw after the 101', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const got = new Promise<string>((resolve) => ws.once('message', (m) => resolve(String(m))));
    ws.send('ping');
    assert.equal(await got, 'echo:ping');
    ws.close();
    await new Promise((resolve) => ws.once('close', resolve));
  });

  it('writes one access-log line per request with the route, flags and source principal', async () => {
    await fetch(`http://127.0.0.1:${port}/logged`).then((r) => r.arrayBuffer());
    const line = h.logs.find((l) => l.msg === 'request' && l.path === '/logged');
    assert.ok(line, 'access-log line');
    assert.equal(line.method, 'GET');
    assert.equal(line.status, 200);
    assert.equal(line.flags, '-');
    assert.equal(line.sourcePrincipal, CLIENT_ID);
    assert.equal(line.sourceWorkload, `${NS}/client`);
    assert.equal(line.service, `${NS}/web`);
    assert.match(String(line.upstream), /^198\.18\.120\.1[12]:8080$/);
    assert.equal(typeof line.durationMs, 'number');
    assert.equal(h.logs.filter((l) => l.msg === 'request' && l.path === '/logged').length, 1);
  });
});

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runConnect, runIdle, runSoak } from '../../bench/loadgen.js';
import { runHttp } from '../../bench/http-load.js';
import http from 'node:http';
import http2 from 'node:http2';
import { RequestParser } from '../../bench/protocol.js';
import { soakGrowth, type SoakSample } from '../../bench/scenarios/soak.js';
import { waitFor } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-loadgen-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The bench server's protocol on loopback; `held` gets every socket that got its answer. */
async function server(held: Socket[] = []): Promise<{ port: number; close(): void }> {
  const srv = createServer((s) => {
    s.on('error', () => undefined);
    const parser = new RequestParser((bytes) => {
      s.write(Buffer.alloc(bytes, 0x62));
      held.push(s);
    });
    s.on('data', (c: Buffer) => parser.push(c));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as AddressInfo).port, close: () => srv.close() };
}

describe('load generator', () => {
  it('idle: held connections reset by the other side are counted as resets, the generator lives (it died on an unhandled error)', async () => {
    const held: Socket[] = [];
    const srv = await server(held);
    const readyFile = join(dir, 'ready');
    const releaseFile = join(dir, 'release');
    try {
      const run = runIdle({ mode: 'idle', target: { host: '127.0.0.1', port: srv.port }, connections: 20, concurrency: 4, readyFile, releaseFile, maxHoldMs: 20_000 });
      await waitFor(() => existsSync(readyFile), 'all idle connections open', 10_000);
      for (const s of held) s.resetAndDestroy();
      writeFileSync(releaseFile, '');
      const r = await run;
      assert.equal(r.opened, 20);
      assert.equal(r.resets, 20);
      assert.equal(r.closedWhileHeld, 20);
      assert.equal(r.errorsByCode['ECONNRESET'], 20);
    } finally {
      srv.close();
    }
  });

  it('idle: connections reset before their first exchange are counted as resets (ECONNRESET), not lost in a generic error count', async () => {
    const srv = createServer((s) => {
      s.on('error', () => undefined);
      setTimeout(() => s.resetAndDestroy(), 20);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const r = await runIdle({ mode: 'idle', target: { host: '127.0.0.1', port: (srv.address() as AddressInfo).port }, connections: 20, concurrency: 1, readyFile: join(dir, 'ready3'), releaseFile: join(dir, 'release3'), maxHoldMs: 0 });
      assert.equal(r.opened, 0);
      assert.equal(r.resets, 20);
    } finally {
      srv.close();
    }
  });

  it('idle: nothing reset, nothing counted', async () => {
    const srv = await server();
    const readyFile = join(dir, 'ready2');
    const releaseFile = join(dir, 'release2');
    try {
      const run = runIdle({ mode: 'idle', target: { host: '127.0.0.1', port: srv.port }, connections: 10, concurrency: 4, readyFile, releaseFile, maxHoldMs: 20_000 });
      await waitFor(() => existsSync(readyFile), 'all idle connections open', 10_000);
      writeFileSync(releaseFile, '');
      const r = await run;
      assert.deepEqual([r.opened, r.resets, r.closedWhileHeld, r.errors], [10, 0, 0, 0]);
    } finally {
      srv.close();
    }
  });

  it('soak: persistent and new connections, every request answered', async () => {
    const srv = await server();
    try {
      const r = await runSoak({ mode: 'soak', target: { host: '127.0.0.1', port: srv.port }, durationMs: 500, persistentConnections: 2, persistentRate: 100, newConnectionRate: 20, requestBytes: 64, responseBytes: 64 });
      assert.equal(r.persistentAnswered, r.persistentSent);
      assert.ok(r.persistentSent >= 40, `${r.persistentSent} sent`);
      assert.equal(r.connectionsCompleted, r.connectionsStarted);
      assert.ok(r.connectionsStarted >= 8, `${r.connectionsStarted} started`);
      assert.equal(r.errors, 0);
    } finally {
      srv.close();
    }
  });

  it('soak growth: the floor of the last third of the window against the floor of its first third, per process', () => {
    // A saw (GC) on process 0 with a floor rising by 50; process 1 flat but for one high sample.
    const rss0 = [900, 1000, 1400, 1010, 1500, 1050, 1600, 1060, 1700];
    const samples: SoakSample[] = rss0.map((r, i) => ({ at: i * 10_000, rssKiB: [r, i === 8 ? 900 : 500], fds: [10, 10 + (i >= 7 ? 3 : 0)] }));
    // warm-up 10 s: window is i = 1..8 (8 samples), thirds of 2: first i = 1,2, last i = 7,8
    assert.deepEqual(soakGrowth(samples, 10_000, (s) => s.rssKiB), [60, 0]);
    assert.deepEqual(soakGrowth(samples, 10_000, (s) => s.fds), [0, 3]);
    assert.equal(soakGrowth(samples.slice(0, 6), 10_000, (s) => s.fds), undefined);
  });
});

describe('load generator, HTTP mode', () => {
  it('HTTP/1.1 keep-alive open loop, a new connection per request, and gRPC-like h2c: every request answered; a non-200 counted by status', async () => {
    let connections = 0;
    const h1 = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(req.url === '/echo' ? 200 : 404);
        res.end(Buffer.alloc(1024));
      });
    });
    h1.on('connection', () => connections++);
    const h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      stream.resume();
      stream.on('end', () => {
        const ok = headers['content-type'] === 'application/grpc' && headers[':path'] === '/weft.bench.Echo/Call';
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': ok ? '0' : '12' }));
        stream.end(Buffer.alloc(1029));
      });
    });
    await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    try {
      const base = { mode: 'http', connections: 4, durationMs: 300, warmupMs: 100, maxRequests: 1000 } as const;
      const a = await runHttp({ ...base, target: { host: '127.0.0.1', port: (h1.address() as AddressInfo).port }, protocol: 'h1', rate: 200 });
      assert.equal(a.sent, 80);
      assert.equal(a.answered, 80);
      assert.equal(a.failed + a.errors + a.unanswered, 0);
      assert.ok(connections <= 4, `keep-alive: ${connections} connections for 80 requests`);
      connections = 0;
      const b = await runHttp({ ...base, target: { host: '127.0.0.1', port: (h1.address() as AddressInfo).port }, protocol: 'h1', newConnectionPerRequest: true });
      assert.ok(b.answered > 0 && b.failed === 0 && b.errors === 0);
      assert.equal(connections, b.sent, 'one connection per request');
      const c = await runHttp({ ...base, target: { host: '127.0.0.1', port: (h2.address() as AddressInfo).port }, protocol: 'h2', rate: 200 });
      assert.equal(c.answered, 80);
      assert.equal(c.failed + c.errors, 0);
      const bounded = await runHttp({ ...base, target: { host: '127.0.0.1', port: (h1.address() as AddressInfo).port }, protocol: 'h1', rate: 1000, maxRequests: 25 });
      assert.equal(bounded.sent, 25, 'maxRequests bounds the open loop');
    } finally {
      h1.close();
      h2.close();
    }
  });

  it('connect mode: one connection per request through oneShot, errors counted (a refused port)', async () => {
    const srv = await server();
    try {
      const ok = await runConnect({ mode: 'connect', target: { host: '127.0.0.1', port: srv.port }, concurrency: 2, durationMs: 200, maxConnections: 20, requestBytes: 64, responseBytes: 64 });
      assert.equal(ok.completed, 20);
      assert.equal(ok.errors, 0);
    } finally {
      srv.close();
    }
    const refused = await runConnect({ mode: 'connect', target: { host: '127.0.0.1', port: 1 }, concurrency: 1, durationMs: 200, maxConnections: 5, requestBytes: 64, responseBytes: 64 });
    assert.equal(refused.completed, 0);
    assert.equal(refused.errors, 5);
  });
});

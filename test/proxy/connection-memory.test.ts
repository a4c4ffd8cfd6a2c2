/**
 * Per-connection memory budget (ztunnel asserts its per-connection memory in tests; so does
 * Weft). Idle proxied connections are built in-process from the data path's own pieces — the
 * ConnectionTracker and its records (metrics on), the relay, the HBONE pool and server over
 * mutual TLS on loopback — the way the agent's outbound (15001) and inbound HBONE (15008)
 * handlers put them together, each after one exchange. What each costs is counted in heap
 * snapshots (reachable objects only, after a full GC): objects and bytes, not timing, so the
 * figures are the same on every run of the same Node version.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { getHeapSnapshot } from 'node:v8';
import { pino } from 'pino';
import { ConnectionTracker } from '../../agent/proxy/connection.js';
import { AgentMetrics } from '../../agent/telemetry/metrics.js';
import { HbonePool } from '../../agent/tunnel/pool.js';
import { createHboneServer, type HboneServer } from '../../agent/tunnel/server.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import type { Workload } from '../../agent/discovery/types.js';
import { id, issue, testCa, waitFor } from '../tunnel/fixtures.js';

const SERVER_ID = id('shop', 'cart');
const CLIENT_ID = id('web', 'frontend');
const CONNECTIONS = 100;

/**
 * Budget of JS heap per idle proxied connection, both agents' ends together (accepted socket,
 * CONNECT stream and record on the outbound side; stream, app socket and record on the inbound
 * side) plus the test's own two sockets (the client's, and the app's end: ~2.5 KB of the
 * figure). Measured 2026-11-25 on Node 20.20: 16.5 KB (the test's log line says it); the
 * budget leaves ~5 % for Node patch releases. Native memory (nghttp2's stream, libuv handles)
 * is not in a heap snapshot: the bench's idle scenario measures RSS. A closure per connection
 * from Weft's code is a regression (STYLE.md), whatever its size.
 */
const BUDGET_BYTES = 17_500;

function workload(ns: string, name: string, ip: string): Workload {
  return {
    key: `${ns}/${name}`, name, namespace: ns, node: 'n1', ip, serviceAccount: name, identity: id(ns, name),
    labels: { app: name }, inMesh: true, workloadName: name, version: 'v1', containerPorts: new Map(),
  };
}

// The test's own app and client sockets use shared listeners too, so that a closure counted per
// connection can only be the data path's.
function echoBack(this: Socket, chunk: Buffer): void {
  this.write(chunk);
}
function destroyOnError(this: Socket): void {
  this.destroy();
}
function ignore(): void {}

interface HeapCounts {
  bytes: number;
  /** Closures (not bound functions) by name. */
  closures: Map<string, number>;
}

/** Sums a heap snapshot of this process (taken after a full GC by V8). */
async function heapCounts(): Promise<HeapCounts> {
  const chunks: string[] = [];
  for await (const c of getHeapSnapshot()) chunks.push(String(c));
  const snap = JSON.parse(chunks.join('')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const n = fields.length;
  const ti = fields.indexOf('type');
  const ni = fields.indexOf('name');
  const si = fields.indexOf('self_size');
  let bytes = 0;
  const closures = new Map<string, number>();
  for (let i = 0; i < snap.nodes.length; i += n) {
    const type = types[snap.nodes[i + ti]!]!;
    // Synthetic roots and the snapshot's own strings are not the program's memory.
    if (type === 'synthetic') continue;
    bytes += snap.nodes[i + si]!;
    if (type === 'closure') {
      const name = snap.strings[snap.nodes[i + ni]!]!;
      if (name !== 'native_bind') closures.set(name, (closures.get(name) ?? 0) + 1);
    }
  }
  return { bytes, closures };
}

describe('per-connection memory', () => {
  const ca = testCa();
  const log = pino({ level: 'silent' });
  let serverCreds: WorkloadCertificate;
  let clientCreds: WorkloadCertificate;
  let app: Server;
  let appPort: number;
  let hbone: HboneServer;
  let hbonePort: number;
  let capture: Server;
  let capturePort: number;
  let pool: HbonePool;
  const clients: Socket[] = [];
  const appSockets: Socket[] = [];
  const source = workload('web', 'frontend', '127.0.0.1');
  const destination = workload('shop', 'cart', '127.0.0.1');
  const outbound = new ConnectionTracker(log, new AgentMetrics(undefined, { defaultMetrics: false }));
  const inbound = new ConnectionTracker(log, new AgentMetrics(undefined, { defaultMetrics: false }));

  before(async () => {
    serverCreds = await issue(ca, SERVER_ID);
    clientCreds = await issue(ca, CLIENT_ID);
    // The app: answers each chunk with the same bytes, and stays open.
    app = createServer((s) => {
      appSockets.push(s);
      s.on('data', echoBack);
      s.on('error', destroyOnError);
    });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    appPort = (app.address() as AddressInfo).port;
    // Inbound: what handleInboundHbone does once policy allowed (app socket, 200, relay).
    hbone = createHboneServer({
      credentials: () => serverCreds,
      logger: log,
      onStream(stream, info) {
        const record = inbound.open({
          direction: 'inbound', sourceIp: '127.0.0.1', sourcePort: info.remotePort ?? 0, sourceWorkload: source,
          originalDestination: info.authority, upstream: info.authority, destinationWorkload: destination,
          destinationService: undefined, sourcePrincipal: info.peerIdentity, mutualTls: true,
        });
        const up = netConnect({ host: info.host, port: info.port, allowHalfOpen: true });
        up.setNoDelay(true);
        up.once('connect', () => {
          stream.respond({ ':status': 200 });
          record.startRelay(stream, up);
        });
      },
    });
    hbonePort = (await hbone.listen(0, '127.0.0.1')).port;
    pool = new HbonePool({ credentials: async () => clientCreds, logger: log });
    // Outbound: what handleOutbound does for a meshed destination (record, CONNECT, relay).
    capture = createServer({ allowHalfOpen: true }, (down) => {
      down.setNoDelay(true);
      const record = outbound.open({
        direction: 'outbound', sourceIp: '127.0.0.1', sourcePort: down.remotePort ?? 0, sourceWorkload: source,
        originalDestination: `127.0.0.1:${appPort}`, upstream: `127.0.0.1:${appPort}`, destinationWorkload: destination,
        destinationService: 'shop/cart', mutualTls: true,
      });
      void pool
        .connect({ sourceIdentity: CLIENT_ID, destination: { host: '127.0.0.1', port: hbonePort }, expectedIdentity: SERVER_ID, authority: `127.0.0.1:${appPort}`, headers: { baggage: 'k8s.deployment.name=frontend' } })
        .then((stream) => record.startRelay(down, stream), (err: Error) => {
          record.finish({ error: err });
          down.destroy();
        });
    });
    capture.listen(0, '127.0.0.1');
    await once(capture, 'listening');
    capturePort = (capture.address() as AddressInfo).port;
  });

  after(async () => {
    // Everything closed before the process exits: an HTTP/2 session torn down during Node's
    // exit cleanup can keep it spinning there.
    for (const c of clients) c.destroy();
    await waitFor(() => outbound.openConnections().length === 0 && inbound.openConnections().length === 0, 'every relay finished');
    pool.close();
    await hbone.close({ timeoutMs: 1000 });
    pool.destroy();
    for (const s of appSockets) s.destroy();
    await Promise.all([new Promise((r) => app.close(r)), new Promise((r) => capture.close(r))]);
  });

  /** Opens `n` proxied connections, each after one 64-byte exchange, and leaves them idle. */
  async function openIdle(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const c = netConnect({ host: '127.0.0.1', port: capturePort });
      c.on('error', ignore);
      clients.push(c);
      c.write(Buffer.alloc(64, i));
      const [echo] = (await once(c, 'data')) as [Buffer];
      assert.equal(echo.length, 64);
    }
  }

  it(`an idle proxied connection stays within ${BUDGET_BYTES} bytes of heap and holds no closure of Weft's`, async () => {
    // Warm-up: code compiled, the pool's TLS connection and the label series made.
    await openIdle(5);
    const before = await heapCounts();
    await openIdle(CONNECTIONS);
    await waitFor(() => appSockets.length === 5 + CONNECTIONS, 'every app socket accepted');
    const afterOpen = await heapCounts();
    const perConnection = (afterOpen.bytes - before.bytes) / CONNECTIONS;
    const grown: string[] = [];
    for (const [name, count] of afterOpen.closures) {
      const delta = count - (before.closures.get(name) ?? 0);
      if (delta >= CONNECTIONS / 2) grown.push(`${name || '(anonymous)'} +${delta}`);
    }
    console.log(`per idle proxied connection: ${Math.round(perConnection)} bytes of heap (both ends); closures grown by >= 1 per 2 connections: ${grown.join(', ') || 'none'}`);
    assert.ok(perConnection <= BUDGET_BYTES, `${Math.round(perConnection)} bytes per connection, budget ${BUDGET_BYTES}`);
    assert.deepEqual(grown, []);
    assert.equal(pool.stats().connectionsOpen, 2, '105 streams on 2 pooled TLS connections (100 per connection)');
  });
});

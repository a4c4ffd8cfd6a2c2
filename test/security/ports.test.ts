/**
 * Point 7 of issue 10, ports and descriptors. The inbound path binds its app socket to the
 * client's IP with port 0; without IP_BIND_ADDRESS_NO_PORT each bind held a local port of that IP
 * whatever the destination, so a burst from one client (the agent's side then in TIME_WAIT) ran
 * the range out: 1962 EADDRNOTAVAIL in the bench, logged as "another process". Here the range
 * of a test namespace is two ports wide. Needs root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { createTcpSocket, openNetns, closeNetns, closeFd, raiseOpenFileLimit, openFileLimit } from '../../native/index.js';
import { isWeftError } from '../../agent/errors.js';
import { createTestNetns } from '../helpers/netns.js';

const ns = createTestNetns(`weft-test-secports-${process.pid}`, [['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=40000 40001']]);
const nsFd = openNetns(ns.path);
const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  closeNetns(nsFd);
  ns.remove();
});

async function listen(port: number): Promise<void> {
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
  });
  server.listen({ fd: createTcpSocket({ netnsFd: nsFd, reuseAddress: true, bind: { address: '127.0.0.1', port }, listenBacklog: 16 }) });
  await once(server, 'listening');
  servers.push(server);
}

/** Connects a socket bound to 127.0.0.1:0 (as the inbound path binds to the client's IP). */
async function connectBound(port: number, noPort: boolean): Promise<void> {
  const fd = createTcpSocket({ netnsFd: nsFd, bindAddressNoPort: noPort, bind: { address: '127.0.0.1', port: 0 } });
  const s = new net.Socket({ fd, readable: true, writable: true });
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
    s.connect(port, '127.0.0.1');
  });
}

test('with IP_BIND_ADDRESS_NO_PORT, bound sockets share the local ports across destinations', async () => {
  for (const port of [9001, 9002, 9003, 9004]) await listen(port);
  // Two ports in the range, four destinations, two connections to each: eight connections.
  for (const port of [9001, 9002, 9003, 9004]) {
    await connectBound(port, true);
    await connectBound(port, true);
  }
});

test('a range used up for one destination is WEFT_ERR_PORTS_EXHAUSTED or EADDRNOTAVAIL, never "another process"', async () => {
  // A third connection to 9001 finds no free 4-tuple.
  await assert.rejects(connectBound(9001, true), (err: NodeJS.ErrnoException) => err.code === 'EADDRNOTAVAIL');
  // Without the option, the bind itself runs out, and says so.
  const held: number[] = [];
  try {
    assert.throws(
      () => {
        for (let i = 0; i < 4; i++) held.push(createTcpSocket({ netnsFd: nsFd, bind: { address: '127.0.0.1', port: 0 } }));
      },
      (err) => isWeftError(err, 'WEFT_ERR_PORTS_EXHAUSTED') && !/another process/.test(err.message),
    );
  } finally {
    for (const fd of held) closeFd(fd);
  }
});

test('raiseOpenFileLimit sets the soft descriptor limit to the hard one', () => {
  const limit = raiseOpenFileLimit();
  assert.equal(limit.soft, limit.hard);
  assert.deepEqual(openFileLimit(), { soft: limit.hard, hard: limit.hard });
  assert.ok(limit.previous <= limit.soft);
});

test('per-pair connection totals are bounded (the oldest pair goes)', async () => {
  const { ConnectionTracker } = await import('../../agent/proxy/connection.js');
  const { silentLogger } = await import('../../agent/log.js');
  const tracker = new ConnectionTracker(silentLogger, undefined, 'Kubernetes', 3);
  for (let i = 0; i < 10; i++) {
    const r = tracker.open({ direction: 'inbound', sourceIp: `198.18.233.${i}`, sourcePort: 1, sourceWorkload: undefined, originalDestination: '198.18.233.100:80', upstream: '198.18.233.100:80', destinationWorkload: undefined, destinationService: undefined });
    r.finish({});
  }
  const totals = tracker.totals();
  assert.equal(totals.length, 3);
  assert.deepEqual(totals.map((t) => t.source), ['198.18.233.7', '198.18.233.8', '198.18.233.9']);
});

/**
 * Point 7 of issue 10: every upstream connect has a deadline. A destination that drops SYNs (a
 * deleted pod whose address nothing answers) held the client for the kernel's SYN retries,
 * about two minutes. Here a DROP rule swallows the SYNs. Needs root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createTcpSocket, openNetns, closeNetns } from '../../native/index.js';
import { armConnectTimeout } from '../../agent/proxy/connect-timeout.js';
import { isWeftError } from '../../agent/errors.js';
import { createTestNetns } from '../helpers/netns.js';

const ns = createTestNetns(`weft-test-secconn-${process.pid}`, [
  ['ip', 'addr', 'add', '198.18.234.1/24', 'dev', 'lo'],
  ['iptables', '-A', 'OUTPUT', '-d', '198.18.234.9/32', '-p', 'tcp', '-j', 'DROP'],
]);
const nsFd = openNetns(ns.path);
after(() => {
  closeNetns(nsFd);
  ns.remove();
});

test('a connect nobody answers fails with WEFT_ERR_CONNECT_TIMEOUT at its deadline', async () => {
  const s = new net.Socket({ fd: createTcpSocket({ netnsFd: nsFd }), readable: true, writable: true });
  armConnectTimeout(s, 300);
  const err = await new Promise<Error>((resolve) => {
    s.once('error', resolve);
    s.once('connect', () => resolve(new Error('connected?')));
    s.connect(9080, '198.18.234.9');
  });
  assert.ok(isWeftError(err, 'WEFT_ERR_CONNECT_TIMEOUT'), String(err));
  assert.equal(s.destroyed, true);
});

test('a socket that connects in time keeps no timer (an idle relayed connection is not cut)', async () => {
  const server = net.createServer((c) => c.on('error', () => undefined));
  server.listen({ fd: createTcpSocket({ netnsFd: nsFd, reuseAddress: true, bind: { address: '127.0.0.1', port: 9081 }, listenBacklog: 4 }) });
  await new Promise((resolve) => server.once('listening', resolve));
  const s = new net.Socket({ fd: createTcpSocket({ netnsFd: nsFd }), readable: true, writable: true });
  armConnectTimeout(s, 100);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
    s.connect(9081, '127.0.0.1');
  });
  assert.equal(s.timeout ?? 0, 0, 'the idle timer is off once connected');
  assert.equal(s.listenerCount('timeout'), 0);
  s.destroy();
  server.close();
});

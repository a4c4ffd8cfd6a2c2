import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import {
  createTcpSocket,
  openNetns,
  closeNetns,
  originalDestination,
  getMark,
  socketFd,
  inNetns,
  SyscallError,
} from '../native/index.js';
import { createTestNetns, inNs } from './helpers/netns.js';

const ns = createTestNetns(`weft-test-native-${process.pid}`, [
  ['ip', 'addr', 'add', '198.18.200.2/32', 'dev', 'lo'],
  ['ip', 'route', 'add', 'default', 'dev', 'lo'],
  ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '198.18.200.9', '-j', 'REDIRECT', '--to-ports', '15001'],
]);
const nsFd = openNetns(ns.path);
after(() => {
  closeNetns(nsFd);
  ns.remove();
});

async function listenOnFd(fd: number, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer(onConnection);
  server.listen({ fd });
  await once(server, 'listening');
  return server;
}

test('a listening socket made by fd is served by net.Server', async () => {
  const fd = createTcpSocket({ reuseAddress: true, bind: { address: '127.0.0.1', port: 0 } });
  const server = await listenOnFd(fd, (s) => s.end('hello'));
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  for await (const chunk of client) chunks.push(chunk as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'hello');
  server.close();
});

test('bind to a used address fails with an error naming bind and EADDRINUSE', async () => {
  const holder = net.createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  const { port } = holder.address() as net.AddressInfo;
  assert.throws(
    () => createTcpSocket({ bind: { address: '127.0.0.1', port } }),
    (err: unknown) =>
      err instanceof SyscallError &&
      err.code === 'WEFT_ERR_SYSCALL' &&
      err.errnoName === 'EADDRINUSE' &&
      err.message.includes(`bind(127.0.0.1:${port})`),
  );
  holder.close();
});

test('setns on a handle that is not a namespace fails with an error naming setns', () => {
  assert.throws(
    () => inNetns(0, () => 1),
    (err: unknown) => err instanceof SyscallError && err.syscall === 'setns' && /EINVAL|EBADF/.test(err.errnoName),
  );
});

test('a socket made inside a namespace listens there and not in the agent namespace', async () => {
  const fd = createTcpSocket({ netnsFd: nsFd, reuseAddress: true, bind: { address: '0.0.0.0', port: 15001 }, listenBacklog: 128 });
  const server = await listenOnFd(fd, (s) => s.end());
  try {
    assert.match(inNs(ns.name, 'ss', ['-ltnH', 'sport = :15001']), /15001/);
    // The agent's own namespace has nothing on that port.
    const probe = net.createServer().listen(15001, '127.0.0.1');
    await once(probe, 'listening');
    probe.close();
  } finally {
    server.close();
  }
});

test('SO_ORIGINAL_DST recovers a redirected destination; SO_MARK is set on sockets made in the namespace', async () => {
  const listenFd = createTcpSocket({ netnsFd: nsFd, reuseAddress: true, bind: { address: '0.0.0.0', port: 15001 } });
  let seen: { address: string; port: number } | undefined;
  const server = await listenOnFd(listenFd, (s) => {
    seen = originalDestination(socketFd(s));
    s.end('ok');
  });
  try {
    const clientFd = createTcpSocket({ netnsFd: nsFd, mark: 0x1234 });
    const client = new net.Socket({ fd: clientFd, readable: true, writable: true });
    assert.equal(getMark(clientFd), 0x1234);
    client.connect({ host: '198.18.200.9', port: 8080 });
    const chunks: Buffer[] = [];
    for await (const chunk of client) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'ok');
    assert.deepEqual(seen, { address: '198.18.200.9', port: 8080 });
  } finally {
    server.close();
  }
});

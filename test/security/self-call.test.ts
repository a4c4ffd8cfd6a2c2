/**
 * F1 (issue 10): the agent must never proxy to its own ports. Each trigger below used to make the
 * agent connect to 15001/15006 again and again (about 10,000 self-connections per trigger); now
 * each is refused once, with WEFT_ERR_SELF_CALL, and the mesh keeps serving. Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createTcpSocket } from '../../native/index.js';
import { MESH_MARK } from '../../agent/config.js';
import { HbonePool } from '../../agent/tunnel/pool.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import { requestCertificate } from '../../agent/identity/manager.js';
import { isWeftError } from '../../agent/errors.js';
import { waitFor } from '../helpers/wait.js';
import { setupTwoPods, type TwoPods } from '../helpers/two-pods.js';

let t: TwoPods;

before(async () => {
  t = await setupTwoPods('secself', 230);
});
after(() => t?.cleanup());

/** Connects from pod A; with `mark` the socket skips A's own capture (as the agent's do). */
function connectFromA(host: string, port: number, mark?: number): net.Socket {
  const fd = createTcpSocket({ netnsFd: t.fdA, ...(mark === undefined ? {} : { mark }) });
  const s = new net.Socket({ fd, readable: true, writable: true });
  s.on('error', () => undefined);
  return s.connect(port, host);
}

/** Resolves when the socket is closed (reset or FIN) by the other side. */
function closedByPeer(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve();
    s.once('close', () => resolve());
    s.resume();
  });
}

const selfCallRecords = (): number => t.logs.filter((l) => l.msg === 'connection closed' && l.error_code === 'WEFT_ERR_SELF_CALL').length;
const recordsTo = (port: number): number => t.logs.filter((l) => l.msg === 'connection closed' && typeof l.dst === 'string' && l.dst.endsWith(`:${port}`)).length;

async function assertRefusedOnce(trigger: () => net.Socket, port: number): Promise<void> {
  const before = selfCallRecords();
  const beforeTo = recordsTo(port);
  const s = trigger();
  s.write('x');
  await closedByPeer(s);
  await waitFor(() => selfCallRecords() > before, 'a WEFT_ERR_SELF_CALL refusal', 5000);
  await waitFor(() => t.agent.inputs.connections.openConnections().length === 0, 'no open connection records', 5000);
  // One refusal (two when the refusal is noticed at both ends of a tunnel), never a loop.
  assert.ok(recordsTo(port) - beforeTo <= 2, `records to :${port}: ${recordsTo(port) - beforeTo}`);
  assert.equal(await t.request(t.IP_B, 9080, 'still'), `${t.IP_A}|still`, 'the mesh still serves');
}

test('an app calling its own outbound listener (127.0.0.1:15001, not redirected) is refused', async () => {
  await assertRefusedOnce(() => connectFromA('127.0.0.1', 15001), 15001);
});

test("an app calling its own pod IP's 15001 (not redirected: local traffic) is refused", async () => {
  await assertRefusedOnce(() => connectFromA(t.IP_A, 15001), 15001);
});

test("a meshed app calling another pod's 15006 is refused (outbound, and inbound if it got there)", async () => {
  await assertRefusedOnce(() => connectFromA(t.IP_B, 15006), 15006);
});

test("a plaintext client from outside the mesh calling a pod's 15001 (redirected to 15006) is refused", async () => {
  // The mesh mark keeps A's capture out of the way: B sees a plaintext client, as from outside.
  await assertRefusedOnce(() => connectFromA(t.IP_B, 15001, MESH_MARK), 15001);
});

test("an HBONE CONNECT to the pod's own 15001 or 15006 is refused with 400", async () => {
  const creds = await requestCertificate(new InProcessCaClient(t.ca!, 'node-1'), 'spiffe://cluster.local/ns/shop/sa/client');
  const pool = new HbonePool({
    credentials: async () => creds,
    createSocket: (host, port) => new net.Socket({ fd: createTcpSocket({ netnsFd: t.fdA, mark: MESH_MARK }), readable: true, writable: true }).connect(port, host),
  });
  try {
    for (const port of [15001, 15006, 15008]) {
      const before = selfCallRecords();
      await assert.rejects(
        pool.connect({ sourceIdentity: creds.identity, destination: { host: t.IP_B, port: 15008 }, expectedIdentity: 'spiffe://cluster.local/ns/shop/sa/server', authority: `${t.IP_B}:${port}` }),
        (err) => isWeftError(err, 'WEFT_ERR_HBONE_REFUSED') && /400/.test(err.message),
      );
      await waitFor(() => selfCallRecords() > before, `a WEFT_ERR_SELF_CALL refusal for :${port}`, 5000);
    }
    await waitFor(() => t.agent.inputs.connections.openConnections().length === 0, 'no open connection records', 5000);
  } finally {
    pool.destroy();
  }
});

test('the agent raised its descriptor limit to the hard limit at start and logged it (point 7)', async () => {
  const line = t.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('descriptor limit (RLIMIT_NOFILE)'));
  assert.ok(line, 'the start log line');
  assert.equal(line.soft, line.hard);
});

test('a process in pod A that sets the mesh mark skips A\'s capture, and B\'s STRICT still refuses it (docs: what a process inside a pod can do)', async () => {
  const peer = (mode: string) => `apiVersion: weft.dev/v1alpha1\nkind: PeerAuthentication\nmetadata:\n  name: default\n  namespace: shop\nspec:\n  mtls:\n    mode: ${mode}\n`;
  const request = (s: net.Socket, payload: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.once('end', () => resolve(Buffer.concat(chunks).toString()));
      s.once('error', reject);
      s.end(payload);
    });
  // PERMISSIVE: the marked connection arrives at B in plaintext, captured by B (15006), no principal.
  const before = t.logs.length;
  assert.equal(await request(connectFromA(t.IP_B, 9080, MESH_MARK), 'marked'), `${t.IP_A}|marked`);
  const line = await waitFor(() => t.logs.slice(before).find((l) => l.msg === 'connection closed' && l.direction === 'inbound' && l.bytes_from_client === 6), 'the inbound record');
  assert.equal(line.mtls, false);
  assert.equal(line.src_principal, undefined);
  // STRICT: refused at B, whatever A's process did to its own capture.
  const gen = t.agent.inputs.policy.generation;
  t.writeFile('peer.yaml', peer('STRICT'));
  try {
    await waitFor(() => t.agent.inputs.policy.generation > gen, 'STRICT in force');
    await assert.rejects(request(connectFromA(t.IP_B, 9080, MESH_MARK), 'marked'), (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET');
    assert.equal(await t.request(t.IP_B, 9080, 'meshed'), `${t.IP_A}|meshed`, 'the captured app still gets through over HBONE');
  } finally {
    t.removeFile('peer.yaml');
  }
});

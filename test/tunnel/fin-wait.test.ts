/**
 * Point 7 of issue 10: a session the server closes leaves no FIN_WAIT1 socket behind when the
 * peer never acknowledges (a deleted pod). In the churn test 19 such sockets each kept a deleted
 * pod's network namespace alive for about 15 minutes. Here the client's side stops answering (a
 * DROP rule in the test namespace), the server closes the idle session, and after the grace
 * time its socket is reset, not left in FIN_WAIT1. Needs root.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import { createTcpSocket, openNetns, closeNetns } from '../../native/index.js';
import { openHboneSession } from '../../agent/tunnel/client.js';
import { createHboneServer, type HboneServer } from '../../agent/tunnel/server.js';
import { createTestNetns, inNs } from '../helpers/netns.js';
import { id, issue, TD, testCa, waitFor } from './fixtures.js';

const SERVER_ID = id('shop', 'cart');
const ns = createTestNetns(`weft-test-secfin-${process.pid}`);
const nsFd = openNetns(ns.path);
let server: HboneServer;
let clientCreds: WorkloadCertificate;

before(async () => {
  const ca = testCa({ material: CertificateAuthority.generateRoot(TD) });
  const serverCreds = await issue(ca, SERVER_ID);
  clientCreds = await issue(ca, id('web', 'frontend'));
  server = createHboneServer({ credentials: () => serverCreds, onStream: (s) => s.respond({ ':status': 200 }), sessionIdleTimeoutMs: 300 });
  await server.listen({ fd: createTcpSocket({ netnsFd: nsFd, reuseAddress: true, bind: { address: '127.0.0.1', port: 15008 }, listenBacklog: 16 }) });
});
after(async () => {
  await server?.close({ timeoutMs: 100 });
  closeNetns(nsFd);
  ns.remove();
});

const finWait = (): string => inNs(ns.name, 'ss', ['-tanH', 'state', 'fin-wait-1', 'sport', '= :15008']).trim();

test('an idle session whose peer went silent is reset after the grace time, not left in FIN_WAIT1', async () => {
  const raw = new net.Socket({ fd: createTcpSocket({ netnsFd: nsFd }), readable: true, writable: true });
  raw.on('error', () => undefined);
  raw.connect(15008, '127.0.0.1');
  const session = await openHboneSession({ socket: raw, credentials: clientCreds, expectedIdentity: SERVER_ID, host: '127.0.0.1', port: 15008 });
  session.on('error', () => undefined);
  await waitFor(() => server.stats().sessionsOpen === 1, 'the session accepted');
  // From now on nothing reaches the client: our FIN is never acknowledged.
  inNs(ns.name, 'iptables', ['-A', 'OUTPUT', '-p', 'tcp', '--dport', String(raw.localPort), '-j', 'DROP']);
  try {
    await waitFor(() => server.stats().sessionsOpen === 0, 'the server closed the idle session', 5000);
    await waitFor(() => finWait() === '', 'no FIN_WAIT1 socket left on :15008', 5000);
    assert.equal(finWait(), '');
  } finally {
    session.destroy();
  }
});

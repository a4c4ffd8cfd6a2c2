/**
 * F2 (issue 10): an HBONE client that closes its TCP connection with a FIN while CONNECT streams
 * are open must not leave the app-side sockets open. Before the fix relay.ts only aborted the
 * other side when a stream closed with a non-zero reset code; a stream closed by its session's
 * end has code 0, so each app socket stayed open (paused) for ever: 173 clients x 100 streams took
 * an agent to its descriptor limit.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import { relay, type RelayResult } from '../../agent/proxy/relay.js';
import { openConnectStream, openHboneSession } from '../../agent/tunnel/client.js';
import { createHboneServer, type HboneServer } from '../../agent/tunnel/server.js';
import { id, issue, TD, testCa, waitFor } from './fixtures.js';

const SERVER_ID = id('shop', 'cart');
const STREAMS = 20;

let server: HboneServer;
let hbonePort: number;
let app: Server;
let appPort: number;
const appSockets = new Set<Socket>();
const results: RelayResult[] = [];
let clientCreds: WorkloadCertificate;

before(async () => {
  const ca = testCa({ material: CertificateAuthority.generateRoot(TD) });
  const serverCreds = await issue(ca, SERVER_ID);
  clientCreds = await issue(ca, id('web', 'frontend'));
  // The app: holds every connection open until its client goes (as an idle keep-alive would).
  app = createServer({ allowHalfOpen: true }, (s) => {
    appSockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => appSockets.delete(s));
    s.resume();
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  appPort = (app.address() as AddressInfo).port;
  server = createHboneServer({
    credentials: () => serverCreds,
    onStream(stream) {
      const up = netConnect({ host: '127.0.0.1', port: appPort, allowHalfOpen: true });
      up.once('connect', () => {
        stream.respond({ ':status': 200 });
        relay(stream, up, (r) => results.push(r));
      });
    },
  });
  hbonePort = (await server.listen(0, '127.0.0.1')).port;
});

after(async () => {
  await server?.close({ timeoutMs: 100 });
  for (const s of appSockets) s.destroy();
  app?.close();
});

test('a FIN from the HBONE client with streams open closes every app-side socket', async () => {
  const raw = netConnect({ host: '127.0.0.1', port: hbonePort });
  raw.on('error', () => undefined);
  const session = await openHboneSession({ socket: raw, credentials: clientCreds, expectedIdentity: SERVER_ID, host: '127.0.0.1', port: hbonePort });
  session.on('error', () => undefined);
  const streams = await Promise.all(Array.from({ length: STREAMS }, () => openConnectStream(session, `127.0.0.1:${appPort}`)));
  for (const s of streams) s.on('error', () => undefined);
  await waitFor(() => appSockets.size === STREAMS, 'every stream connected to the app');
  // A FIN on the TCP connection, the streams still open (no END_STREAM, no RST_STREAM).
  raw.end();
  await waitFor(() => appSockets.size === 0, 'the app sockets closed after the client left');
  await waitFor(() => results.length === STREAMS, 'every relay finished');
  assert.equal(server.stats().sessionsOpen, 0, 'the server session is gone');
  session.destroy();
});

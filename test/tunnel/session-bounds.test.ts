/**
 * F3 and point 7 of issue 10, server side: an HBONE session is always destroyed once it is done.
 * A protocol error from an authenticated client used to leave its socket open (GOAWAY sent,
 * socket never destroyed), and a session without streams stayed open for ever (no idle timeout).
 */
import assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import { createHboneServer, type HboneServer } from '../../agent/tunnel/server.js';
import { openConnectStream, openHboneSession } from '../../agent/tunnel/client.js';
import { connect as netConnect } from 'node:net';
import { isWeftError } from '../../agent/errors.js';
import { id, issue, TD, testCa, waitFor } from './fixtures.js';

const SERVER_ID = id('shop', 'cart');
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** An empty SETTINGS frame (type 4, stream 0). */
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
/**
 * Connection errors (RFC 9113 5.4.1) after which nghttp2 sends GOAWAY and Node, telling nobody,
 * leaves the socket open: DATA on stream 0, a PING of 3 bytes, a CONTINUATION without HEADERS.
 */
const PROTOCOL_ERRORS: Record<string, Buffer> = {
  'DATA on stream 0': Buffer.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41]),
  'PING of 3 bytes': Buffer.from([0, 0, 3, 6, 0, 0, 0, 0, 0, 1, 2, 3]),
  'CONTINUATION alone': Buffer.from([0, 0, 1, 9, 4, 0, 0, 0, 1, 0x82]),
};

let server: HboneServer;
let port: number;
let clientCreds: WorkloadCertificate;

before(async () => {
  const ca = testCa({ material: CertificateAuthority.generateRoot(TD) });
  const serverCreds = await issue(ca, SERVER_ID);
  clientCreds = await issue(ca, id('web', 'frontend'));
  // Port 9 streams are never answered (a server that hangs); the rest get their 200.
  server = createHboneServer({ credentials: () => serverCreds, onStream: (s, info) => (info.port === 9 ? undefined : s.respond({ ':status': 200 })), sessionIdleTimeoutMs: 300 });
  port = (await server.listen(0, '127.0.0.1')).port;
});
after(() => server?.close({ timeoutMs: 100 }));

/** A mutual-TLS h2 connection that speaks raw frames (so it can break the protocol). */
async function rawClient(): Promise<TLSSocket> {
  const s = tlsConnect({
    host: '127.0.0.1',
    port,
    key: clientCreds.keyPem,
    cert: clientCreds.certPem + clientCreds.chainPem.join(''),
    ca: clientCreds.trustBundle,
    ALPNProtocols: ['h2'],
    checkServerIdentity: () => undefined,
    minVersion: 'TLSv1.3',
  });
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    s.once('secureConnect', () => resolve());
    s.once('error', reject);
  });
  s.write(Buffer.concat([PREFACE, SETTINGS]));
  s.resume();
  return s;
}

const closed = (s: TLSSocket): boolean => s.destroyed || s.readableEnded;

for (const [name, frame] of Object.entries(PROTOCOL_ERRORS)) {
  test(`a protocol error from an authenticated client (${name}) closes its connection, not only a GOAWAY`, async () => {
    const s = await rawClient();
    await waitFor(() => server.stats().sessionsOpen === 1, 'the session accepted');
    s.write(frame);
    // The client never closes and keeps sending: only the server can end this.
    const pinger = setInterval(() => s.write(Buffer.from([0, 0, 8, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), 50);
    try {
      await waitFor(() => closed(s), 'the server closed the connection', 3000);
    } finally {
      clearInterval(pinger);
    }
    await waitFor(() => server.stats().sessionsOpen === 0, 'no session left');
    s.destroy();
  });
}

test('a session without streams is closed after the idle timeout', async () => {
  const s = await rawClient();
  await waitFor(() => server.stats().sessionsOpen === 1, 'the session accepted');
  await waitFor(() => closed(s), 'the idle session closed by the server', 3000);
  await waitFor(() => server.stats().sessionsOpen === 0, 'no session left');
  assert.ok(true);
  s.destroy();
});

test('a CONNECT that is never answered fails with WEFT_ERR_CONNECT_TIMEOUT (point 7)', async () => {
  const raw = netConnect({ host: '127.0.0.1', port });
  const session = await openHboneSession({ socket: raw, credentials: clientCreds, expectedIdentity: SERVER_ID, host: '127.0.0.1', port });
  session.on('error', () => undefined);
  try {
    await assert.rejects(openConnectStream(session, '127.0.0.1:9', undefined, 200), (err) => isWeftError(err, 'WEFT_ERR_CONNECT_TIMEOUT'));
  } finally {
    session.destroy();
  }
});

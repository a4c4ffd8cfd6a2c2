/**
 * F5 (issue 10): a client certificate that expired keeps no session alive through TLS session
 * resumption. A resumed handshake does not verify the chain again (OpenSSL keeps the first
 * verification result in the ticket, valid 300 s), so the server checks the peer certificate's
 * validity itself, on every session and on every stream.
 */
import assert from 'node:assert/strict';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import { createHboneServer, type HboneServer } from '../../agent/tunnel/server.js';
import { captureLogger, id, issue, TD, testCa, waitFor } from './fixtures.js';

const LIFETIME_MS = 60_000;
const log = captureLogger();
let server: HboneServer;
let port: number;
let shortLived: WorkloadCertificate;

before(async () => {
  const material = CertificateAuthority.generateRoot(TD);
  const ca = testCa({ material });
  // A CA whose clock runs 57 s behind the end of a 60 s lifetime: the certificate expires ~3 s from now.
  const late = testCa({ material, lifetimeMs: LIFETIME_MS, now: () => Date.now() - LIFETIME_MS + 3000 });
  shortLived = await issue(late, id('web', 'frontend'));
  const serverCreds = await issue(ca, id('shop', 'cart'));
  server = createHboneServer({ credentials: () => serverCreds, onStream: (s) => s.respond({ ':status': 200 }, { endStream: true }), logger: log.logger });
  port = (await server.listen(0, '127.0.0.1')).port;
});
after(() => server?.close({ timeoutMs: 100 }));

/** A TLS connection with the client certificate, resuming `session` when given. */
async function tlsClient(session?: Buffer): Promise<{ socket: TLSSocket; ticket: Promise<Buffer> }> {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    key: shortLived.keyPem,
    cert: shortLived.certPem + shortLived.chainPem.join(''),
    ca: shortLived.trustBundle,
    ALPNProtocols: ['h2'],
    checkServerIdentity: () => undefined,
    minVersion: 'TLSv1.3',
    ...(session ? { session } : {}),
  });
  socket.on('error', () => undefined);
  const ticket = new Promise<Buffer>((resolve) => socket.once('session', resolve));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, ticket };
}

/** The status of one CONNECT over a session on `socket`, or 0 when the session was refused. */
async function connectStatus(socket: TLSSocket): Promise<{ status: number; session: ClientHttp2Session }> {
  const session = h2connect(`https://127.0.0.1:${port}`, { createConnection: () => socket });
  session.on('error', () => undefined);
  const req = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:80' });
  req.on('error', () => undefined);
  const status = await new Promise<number>((resolve) => {
    req.once('response', (h) => resolve(Number(h[':status'])));
    req.once('close', () => resolve(0));
  });
  return { status, session };
}

test('a session resumed after the client certificate expired is refused', async () => {
  const first = await tlsClient();
  const ticket = await first.ticket;
  const ok = await connectStatus(first.socket);
  assert.equal(ok.status, 200, 'served while the certificate is valid');
  ok.session.destroy();
  const notAfter = Date.parse(new X509Certificate(shortLived.certPem).validTo);
  await waitFor(() => Date.now() > notAfter + 1000, 'the client certificate expired', 10_000);
  const second = await tlsClient(ticket);
  assert.equal(second.socket.isSessionReused(), true, 'the handshake was a resumption');
  const refused = await connectStatus(second.socket);
  assert.equal(refused.status, 0, 'no CONNECT served on a resumed session with an expired certificate');
  refused.session.destroy();
  assert.ok(log.lines.some((l) => l.code === 'WEFT_ERR_TLS_PEER_UNTRUSTED' && /expired/.test(String(l.reason))), 'the refusal says why');
});

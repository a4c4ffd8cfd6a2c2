/**
 * F6 (issue 10): an HBONE server accepts only peers of its own trust domain. Before the fix a
 * certificate for spiffe://evil.example/... that chained to the trust bundle (a root shared with
 * another mesh) was accepted, and its namespace then matched this mesh's policies.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import { PlacementAuthorizer } from '../../agent/identity/ca-auth.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import { openConnectStream, openHboneSession } from '../../agent/tunnel/client.js';
import { createHboneServer, type HboneServer } from '../../agent/tunnel/server.js';
import { captureLogger, id, issue, TD, testCa, waitFor } from './fixtures.js';

const SERVER_ID = id('shop', 'cart');
const log = captureLogger();
let server: HboneServer;
let port: number;
let ours: WorkloadCertificate;
let foreign: WorkloadCertificate;

before(async () => {
  const material = CertificateAuthority.generateRoot(TD);
  const ca = testCa({ material });
  // The same root, signing for another trust domain.
  const other = new CertificateAuthority(material, { authorizer: new PlacementAuthorizer(() => true), trustDomain: 'evil.example' });
  ours = await issue(ca, id('web', 'frontend'));
  foreign = await issue(other, 'spiffe://evil.example/ns/web/sa/frontend');
  const serverCreds = await issue(ca, SERVER_ID);
  server = createHboneServer({ credentials: () => serverCreds, onStream: (s) => s.respond({ ':status': 200 }), logger: log.logger });
  port = (await server.listen(0, '127.0.0.1')).port;
});
after(() => server?.close({ timeoutMs: 100 }));

async function tryConnect(creds: WorkloadCertificate): Promise<number> {
  const raw = netConnect({ host: '127.0.0.1', port });
  raw.on('error', () => undefined);
  const session = await openHboneSession({ socket: raw, credentials: creds, expectedIdentity: SERVER_ID, host: '127.0.0.1', port });
  session.on('error', () => undefined);
  try {
    await openConnectStream(session, '127.0.0.1:80', undefined, 2000);
    return 200;
  } catch {
    return 0;
  } finally {
    session.destroy();
  }
}

test('a peer of this trust domain is served, one of another trust domain is refused', async () => {
  assert.equal(await tryConnect(ours), 200);
  const refused = server.stats().sessionsRefused;
  assert.equal(await tryConnect(foreign), 0);
  await waitFor(() => server.stats().sessionsRefused === refused + 1, 'the foreign session refused');
  assert.ok(log.lines.some((l) => l.code === 'WEFT_ERR_TLS_PEER_IDENTITY' && String(l.reason).includes('evil.example')));
});

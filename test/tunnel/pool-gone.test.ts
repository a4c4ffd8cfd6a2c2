/**
 * Point 7 of issue 10: pooled HBONE connections to a destination that left the model are closed
 * at once (reset), not left to hang until a PING goes unanswered (58 s in the churn test) nor
 * closed gracefully into FIN_WAIT1.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../../agent/identity/ca.js';
import type { WorkloadCertificate } from '../../agent/identity/manager.js';
import { HbonePool } from '../../agent/tunnel/pool.js';
import { createHboneServer, type HboneServer } from '../../agent/tunnel/server.js';
import { relay } from '../../agent/proxy/relay.js';
import { connect as netConnect } from 'node:net';
import { id, issue, TD, testCa, waitFor } from './fixtures.js';

const SERVER_ID = id('shop', 'cart');
let server: HboneServer;
let port: number;
let app: Server;
let appPort: number;
let clientCreds: WorkloadCertificate;

before(async () => {
  const ca = testCa({ material: CertificateAuthority.generateRoot(TD) });
  const serverCreds = await issue(ca, SERVER_ID);
  clientCreds = await issue(ca, id('web', 'frontend'));
  app = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
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
        relay(stream, up, () => undefined);
      });
    },
  });
  port = (await server.listen(0, '127.0.0.1')).port;
});
after(async () => {
  await server?.close({ timeoutMs: 100 });
  app?.close();
});

test('closeGone resets the connections to destinations no longer in the model, keeps the others', async () => {
  const pool = new HbonePool({ credentials: async () => clientCreds });
  try {
    const stream = await pool.connect({ sourceIdentity: clientCreds.identity, destination: { host: '127.0.0.1', port }, expectedIdentity: SERVER_ID, authority: `127.0.0.1:${appPort}` });
    stream.on('error', () => undefined);
    assert.equal(pool.closeGone((host, identity) => host === '127.0.0.1' && identity === SERVER_ID), 0, 'still in the model: kept');
    assert.equal(pool.stats().connectionsOpen, 1);
    assert.equal(pool.closeGone(() => false), 1);
    await waitFor(() => pool.stats().connectionsOpen === 0, 'the pooled connection closed');
    await waitFor(() => stream.destroyed, 'its open stream ended with it');
    await waitFor(() => server.stats().sessionsOpen === 0, 'the server saw the connection go');
  } finally {
    pool.destroy();
  }
});

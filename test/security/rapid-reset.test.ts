/**
 * F4 (issue 10): a CONNECT reset right after its HEADERS (rapid reset) must not leave its
 * connection record open. Before the fix inbound-hbone.ts' onAppConnect saw the stream already
 * destroyed, closed the app socket and never finished the record: 31,148 phantom open
 * connections in weft_open_connections after one run. Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { constants as h2 } from 'node:http2';
import { createTcpSocket } from '../../native/index.js';
import { MESH_MARK } from '../../agent/config.js';
import { openHboneSession } from '../../agent/tunnel/client.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import { requestCertificate } from '../../agent/identity/manager.js';
import { waitFor } from '../helpers/wait.js';
import { setupTwoPods, type TwoPods } from '../helpers/two-pods.js';

const RESETS = 200;
let t: TwoPods;

before(async () => {
  t = await setupTwoPods('secrst', 231);
});
after(() => t?.cleanup());

test('CONNECT streams reset right after their HEADERS leave no open connection record', async () => {
  const creds = await requestCertificate(new InProcessCaClient(t.ca!, 'node-1'), 'spiffe://cluster.local/ns/shop/sa/client');
  const socket = new net.Socket({ fd: createTcpSocket({ netnsFd: t.fdA, mark: MESH_MARK }), readable: true, writable: true }).connect(15008, t.IP_B);
  const session = await openHboneSession({ socket, credentials: creds, expectedIdentity: 'spiffe://cluster.local/ns/shop/sa/server', host: t.IP_B, port: 15008 });
  session.on('error', () => undefined);
  const closed = t.logs.filter((l) => l.msg === 'connection closed' && l.direction === 'inbound').length;
  try {
    // HEADERS in one write, the RST_STREAMs in the next: the server hands each stream to the
    // agent, which starts its app connect, and the reset comes before that connect completes.
    for (let batch = 0; batch < RESETS / 50; batch++) {
      const streams = Array.from({ length: 50 }, () => session.request({ ':method': 'CONNECT', ':authority': `${t.IP_B}:9080` }, { endStream: false }));
      for (const s of streams) s.on('error', () => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      for (const s of streams) s.close(h2.NGHTTP2_CANCEL);
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Every stream the server saw is finished, whichever way its race with the app connect went.
    await waitFor(() => t.agent.inputs.connections.openConnections().length === 0, 'no open connection record after the resets', 10_000);
    const records = t.logs.filter((l) => l.msg === 'connection closed' && l.direction === 'inbound').length - closed;
    assert.ok(records > 0 && records <= RESETS, `records finished: ${records}`);
    // And the tunnel still serves a normal request.
    assert.equal(await t.request(t.IP_B, 9080, 'after'), `${t.IP_A}|after`);
  } finally {
    session.destroy();
  }
});

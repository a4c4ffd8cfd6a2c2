/**
 * A pod calling its own Service (issue 10, point 7: reported as 200 ms per connect after the
 * first): the connection goes out through the pod's own capture, over HBONE to its own 15008,
 * and back in to its app with its own IP as the client. Not reproduced on this code (in-process
 * and in a lab, self calls cost what other calls cost); this pins the path and its records, so a
 * change that breaks the hairpin fails here. Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { createTcpSocket } from '../../native/index.js';
import { waitFor } from '../helpers/wait.js';
import { setupTwoPods, type TwoPods } from '../helpers/two-pods.js';

const SELF_VIP = '198.18.232.101';
let t: TwoPods;
let app: net.Server;

before(async () => {
  t = await setupTwoPods('sechair', 232);
  // An app in pod A too, behind a Service of its own.
  app = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.resume();
    s.on('end', () => s.end(`${s.remoteAddress}|self`));
  });
  app.listen({ fd: createTcpSocket({ netnsFd: t.fdA, reuseAddress: true, bind: { address: '0.0.0.0', port: 9080 } }) });
  await once(app, 'listening');
  t.writeFile('svc-self.yaml', `apiVersion: v1\nkind: Service\nmetadata:\n  name: client\n  namespace: shop\nspec:\n  clusterIP: ${SELF_VIP}\n  selector:\n    app: client\n  ports:\n  - port: 80\n    targetPort: 9080\n`);
  await waitFor(() => t.agent.model.serviceByVip(SELF_VIP), 'the Service of pod A');
});
after(async () => {
  app?.close();
  await t?.cleanup();
});

test('repeated calls from a pod to its own Service go through its capture over HBONE and succeed', async () => {
  const since = t.logs.length;
  for (let i = 0; i < 5; i++) assert.equal(await t.request(SELF_VIP, 80, `x${i}`), `${t.IP_A}|self`);
  const records = await waitFor(() => {
    const closed = t.logs.slice(since).filter((l) => l.msg === 'connection closed');
    return closed.length >= 10 ? closed : undefined;
  }, 'an outbound and an inbound record per call');
  const inbound = records.filter((l) => l.direction === 'inbound');
  assert.equal(inbound.length, 5);
  for (const r of inbound) {
    assert.equal(r.mtls, true, 'over HBONE');
    assert.equal(r.src_principal, 'spiffe://cluster.local/ns/shop/sa/client');
    assert.equal(r.error_code, undefined);
  }
  // One pooled HBONE connection from the pod to itself carried every call.
  const pool = [...t.agent.captured.values()].find((p) => p.workload.ip === t.IP_A)!.pool!;
  assert.equal(pool.stats().connectionsOpened, 1);
});

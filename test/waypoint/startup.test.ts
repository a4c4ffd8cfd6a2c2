/**
 * A waypoint whose CA refuses at first (the lab's CA sees the waypoint pod only once the pod's
 * ports listen): the HBONE port is taken at once and resets connections, readiness says why
 * not, and once the CA answers the waypoint serves, without a restart. Regression: start()
 * used to reject on the first refusal and the process stayed up, never ready.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, it } from 'node:test';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import type { CaClient } from '../../agent/identity/ca-types.js';
import { WeftError } from '../../agent/errors.js';
import { Waypoint } from '../../agent/waypoint/waypoint.js';
import { captureLogger } from '../helpers/logs.js';
import { waitFor } from '../helpers/wait.js';
import { testCa } from '../tunnel/fixtures.js';
import { FixedSource, NS, WAYPOINT_NAME, modelOf } from './harness.js';

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

describe('waypoint start-up without a certificate yet', () => {
  it('holds the HBONE port refusing, then serves once the CA answers', async () => {
    const ca = new InProcessCaClient(testCa(), 'node-a');
    let refusing = true;
    const caClient: CaClient = {
      sign: (csr, identity) => (refusing ? Promise.reject(new WeftError('WEFT_ERR_CA_UNAUTHORIZED', 'CA refused (403): no pod of service account shop/wp runs on node node-a')) : ca.sign(csr, identity)),
      bundle: () => ca.bundle(),
    };
    const port = await freePort();
    const { logger } = captureLogger('info');
    const wp = new Waypoint({ name: WAYPOINT_NAME, namespace: NS, source: new FixedSource(modelOf([], [])), caClient, logger, hboneAddress: `127.0.0.1:${port}`, identityOptions: { retryInitialMs: 20, retryMaxMs: 50 } });
    const started = wp.start();
    try {
      await waitFor(async () => {
        const what = await new Promise<string>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port });
          s.on('error', (e: Error & { code?: string }) => resolve(e.code ?? 'error'));
          s.on('close', () => resolve('closed'));
        });
        // ECONNREFUSED: not listening yet; a reset (or a close without bytes): held and refused.
        return what === 'ECONNRESET' || what === 'closed';
      }, 'the HBONE port is held and resets connections');
      assert.equal(wp.readiness(), 'waiting for a certificate');
      refusing = false;
      await started;
      assert.equal(wp.readiness(), true);
      assert.equal(wp.address()?.port, port);
    } finally {
      refusing = false;
      await started.catch(() => undefined);
      await wp.stop();
    }
  });
});

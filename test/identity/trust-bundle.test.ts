/**
 * The trust bundle as agents get it on Kubernetes: the weft-ca-root ConfigMap, projected by the
 * kubelet as a file that is swapped atomically. The agent follows the file, keeps the last good
 * bundle when it turns bad, and a changed bundle applies to HBONE verification at once, without
 * a restart or new certificates: the step of a root rotation where both roots are trusted.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isWeftError } from '../../agent/errors.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import { IdentityManager, requestCertificate } from '../../agent/identity/manager.js';
import { parseTrustBundle, TrustBundleFile } from '../../agent/identity/trust-bundle.js';
import { openHboneSession } from '../../agent/tunnel/client.js';
import { createHboneServer } from '../../agent/tunnel/server.js';
import { id, testCa, waitFor } from '../tunnel/fixtures.js';

const SERVER_ID = id('shop', 'cart');
const CLIENT_ID = id('web', 'frontend');

/** Writes `text` to `path` as the kubelet updates a ConfigMap volume: a new file renamed over the old one. */
async function atomicWrite(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

describe('trust bundle file', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  async function tempDir(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'weft-deploy-bundle-'));
    dirs.push(d);
    return d;
  }

  it('refuses text that is not a bundle of CA certificates', async () => {
    assert.throws(() => parseTrustBundle('', 'f'), (e) => isWeftError(e, 'WEFT_ERR_TRUST_BUNDLE'));
    assert.throws(() => parseTrustBundle('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'f'), (e) => isWeftError(e, 'WEFT_ERR_TRUST_BUNDLE'));
    const leaf = await requestCertificate(new InProcessCaClient(testCa(), 'n'), SERVER_ID);
    assert.throws(() => parseTrustBundle(leaf.certPem, 'f'), (e) => isWeftError(e, 'WEFT_ERR_TRUST_BUNDLE') && /not a CA/.test(e.message));
  });

  it('follows a replaced file, and keeps the last good bundle when the file turns bad or disappears', async () => {
    const dir = await tempDir();
    const path = join(dir, 'root-cert.pem');
    const [a, b] = [testCa().trustBundle()[0]!, testCa().trustBundle()[0]!];
    await writeFile(path, a);
    const file = new TrustBundleFile({ path, pollMs: 60_000 }).start();
    try {
      const seen: number[] = [];
      file.on('changed', (roots) => seen.push(roots.length));
      await atomicWrite(path, a + b);
      // The directory watch notices the swap (no explicit check()).
      await waitFor(() => seen.length === 1, 'the watch to see the new bundle');
      assert.deepEqual(file.current(), [a, b]);
      await atomicWrite(path, 'not pem');
      await file.check();
      await rm(path);
      await file.check();
      assert.deepEqual(file.current(), [a, b]);
      assert.deepEqual(seen, [2]);
    } finally {
      file.stop();
    }
  });

  it('a bundle change reaches HBONE verification of new connections without a restart (rotation overlap)', async () => {
    const dir = await tempDir();
    const path = join(dir, 'root-cert.pem');
    const oldCa = testCa();
    const newCa = testCa();
    const oldRoot = oldCa.trustBundle()[0]!;
    const newRoot = newCa.trustBundle()[0]!;
    await writeFile(path, oldRoot);
    const bundle = new TrustBundleFile({ path, pollMs: 60_000 });
    // The server side: an agent whose workload certificate came from the old root.
    const identity = new IdentityManager({ caClient: new InProcessCaClient(oldCa, 'n'), trustBundle: bundle });
    await identity.get(SERVER_ID);
    const server = createHboneServer({
      credentials: () => identity.current(SERVER_ID),
      onStream: (stream) => {
        stream.respond({ ':status': 200 });
        stream.end();
      },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    // The client: a workload already signed by the new root (it trusts both).
    const client = await requestCertificate(new InProcessCaClient(newCa, 'n'), CLIENT_ID, [oldRoot]);
    const dial = async (): Promise<void> => {
      const session = await openHboneSession({ socket: netConnect(port, '127.0.0.1'), credentials: client, expectedIdentity: SERVER_ID, host: '127.0.0.1', port });
      session.on('error', () => {});
      session.close();
    };
    try {
      await dial().catch(() => {});
      await waitFor(() => server.stats().sessionsRefused === 1, 'the server to refuse a peer of the root it does not trust yet');
      assert.equal(server.stats().sessionsAccepted, 0);

      await atomicWrite(path, oldRoot + newRoot);
      await bundle.check();
      assert.equal(identity.current(SERVER_ID)?.trustBundle.length, 2);
      await dial();
      await waitFor(() => server.stats().sessionsAccepted === 1, 'the server to accept the new root\'s peer');
      assert.equal(server.stats().sessionsRefused, 1);
      assert.equal(identity.stats().issued, 1, 'no new certificate was needed');
    } finally {
      await server.close();
      identity.close();
      bundle.stop();
    }
  });
});

/**
 * Finding 3 of issue 9: the CA's serving certificate named only localhost, weft-ca and
 * 127.0.0.1, and agents calling https://weft-ca.weft-system.svc:15012 failed with
 * ERR_TLS_CERT_ALTNAME_INVALID. Each name a client in the cluster may use is checked here the
 * way the agent's HTTPS client checks it: Node's own TLS verification of the server name.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { after, describe, it } from 'node:test';
import { StaticTokenAuthenticator } from '../../agent/identity/ca-auth.js';
import { CaServer } from '../../agent/identity/ca-server.js';
import { testCa } from '../tunnel/fixtures.js';

/** Resolves with the verification error code (undefined when the name verified). */
function verifyName(port: number, servername: string, roots: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca: roots, rejectUnauthorized: true }, () => {
      s.end();
      resolve(undefined);
    });
    s.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
  });
}

describe('CA serving certificate names (issue 9, finding 3)', () => {
  const servers: CaServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  async function serve(opts: { namespace?: string; clusterDomain?: string; host?: string } = {}): Promise<{ port: number; roots: string[] }> {
    const ca = testCa();
    const server = new CaServer({ ca, authenticator: new StaticTokenAuthenticator({}), ...opts });
    servers.push(server);
    const { port } = await server.listen(0, opts.host ?? '127.0.0.1');
    return { port, roots: ca.trustBundle() };
  }

  it('names the Service in every form a pod may use (default namespace weft-system, domain cluster.local)', async () => {
    const { port, roots } = await serve();
    for (const name of ['weft-ca', 'weft-ca.weft-system', 'weft-ca.weft-system.svc', 'weft-ca.weft-system.svc.cluster.local', 'localhost']) {
      assert.equal(await verifyName(port, name, roots), undefined, name);
    }
    // The check is real: a name the certificate does not carry fails.
    assert.equal(await verifyName(port, 'weft-ca.other.svc', roots), 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('follows the pod\'s namespace and the configured cluster domain', async () => {
    const { port, roots } = await serve({ namespace: 'mesh-ops', clusterDomain: 'corp.internal' });
    assert.equal(await verifyName(port, 'weft-ca.mesh-ops.svc', roots), undefined);
    assert.equal(await verifyName(port, 'weft-ca.mesh-ops.svc.corp.internal', roots), undefined);
    assert.equal(await verifyName(port, 'weft-ca.weft-system.svc', roots), 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('names the address it listens on (the lab reaches its CA by IP)', async () => {
    const { port, roots } = await serve({ host: '127.0.0.1' });
    // An IP is checked against the IP SANs when the client connects by address (no SNI).
    const code = await new Promise<string | undefined>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, ca: roots, rejectUnauthorized: true }, () => {
        s.end();
        resolve(undefined);
      });
      s.on('error', (err: Error & { code?: string }) => resolve(err.code));
    });
    assert.equal(code, undefined);
  });
});

/**
 * The CA on Kubernetes, end to end against the lab's API server (a test double with RBAC):
 * `kubectl apply -k daemonset/`, then two `weft ca` replicas started at once with the CA's
 * service account, as the Deployment runs them. On the code before issue 9 `weft ca` required
 * --dir and read a Secret nobody created (finding 2). Here: the replicas create weft-ca-keys
 * once between them, publish weft-ca-root, serve under the Service's names (finding 3), and
 * sign for an agent that authenticates with a pod-bound token — all within the shipped RBAC.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { isWeftError } from '../../agent/errors.js';
import { HttpCaClient } from '../../agent/identity/ca-client.js';
import { requestCertificate } from '../../agent/identity/manager.js';
import { CA_TOKEN_AUDIENCE } from '../../agent/identity/token-review.js';
import { installWeft, startCa, type KubeInstall } from '../helpers/kube-install.js';
import { id } from '../tunnel/fixtures.js';
import { waitFor } from '../helpers/wait.js';

interface Json {
  metadata: { labels?: Record<string, string> };
  data?: Record<string, string>;
}

describe('weft ca on Kubernetes (issue 9, findings 2 and 3)', () => {
  let k: KubeInstall;
  let ports: number[] = [];
  before(async () => {
    k = await installWeft();
  });
  after(async () => {
    await k?.close();
  });

  it('two replicas bootstrap one key into weft-ca-keys and publish its root as weft-ca-root', async () => {
    const kubeconfig = await k.kubeconfigFor('weft-ca');
    const replicas = await Promise.all([startCa(k, kubeconfig), startCa(k, kubeconfig)]);
    ports = replicas.map((r) => r.port);
    const secret = JSON.parse(await k.kubectl(['-n', 'weft-system', 'get', 'secret', 'weft-ca-keys', '-o', 'json'])) as Json;
    assert.equal(secret.metadata.labels?.['app.kubernetes.io/managed-by'], 'weft-ca');
    const root = Buffer.from(secret.data!['root-cert.pem']!, 'base64').toString('utf8');
    const cm = JSON.parse(await k.kubectl(['-n', 'weft-system', 'get', 'configmap', 'weft-ca-root', '-o', 'json'])) as Json;
    assert.equal(cm.data?.['root-cert.pem'], root);
    // Both sign with that key: each serves it as its bundle, and exactly one of them created it.
    for (const port of ports) {
      const client = new HttpCaClient({ url: `https://127.0.0.1:${port}`, token: 'unused', caCertificates: [root] });
      assert.deepEqual((await client.bundle()).map((p) => p.trim()), [root.trim()]);
    }
    const created = replicas.filter((r) => /"msg":"no CA Secret: generated a self-signed root/.test(r.output())).length;
    assert.equal(created, 1, replicas.map((r) => r.output()).join('\n---\n'));
  });

  it('serves as weft-ca.weft-system.svc, verified against the published bundle', async () => {
    const cm = JSON.parse(await k.kubectl(['-n', 'weft-system', 'get', 'configmap', 'weft-ca-root', '-o', 'json'])) as Json;
    const roots = [cm.data!['root-cert.pem']!];
    for (const servername of ['weft-ca.weft-system.svc', 'weft-ca.weft-system.svc.cluster.local']) {
      await new Promise<void>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: ports[0]!, servername, ca: roots, rejectUnauthorized: true }, () => {
          s.end();
          resolve();
        });
        s.on('error', reject);
      });
    }
  });

  it('signs for an agent whose pod-bound token passes TokenReview, only for pods on its node', async () => {
    await k.kubectl(['apply', '-f', '-'], [
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}',
      'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: cart, namespace: shop}',
      'apiVersion: v1\nkind: Pod\nmetadata: {name: cart-1, namespace: shop}\nspec: {nodeName: node-a, serviceAccountName: cart, containers: [{name: app, image: cart}]}',
      'apiVersion: v1\nkind: Pod\nmetadata: {name: weft-agent-a, namespace: weft-system}\nspec: {nodeName: node-a, serviceAccountName: weft-agent, containers: [{name: agent, image: weft}]}',
    ].join('\n---\n'));
    const token = k.api.issueToken('weft-system', 'weft-agent', { audiences: [CA_TOKEN_AUDIENCE], pod: 'weft-agent-a' });
    const cm = JSON.parse(await k.kubectl(['-n', 'weft-system', 'get', 'configmap', 'weft-ca-root', '-o', 'json'])) as Json;
    const client = new HttpCaClient({ url: `https://127.0.0.1:${ports[1]}`, token, caCertificates: [cm.data!['root-cert.pem']!] });
    // The CA's pod informer may not have seen cart-1 yet: the agent retries, as here.
    const cert = await waitFor(
      () => requestCertificate(client, id('shop', 'cart')).catch((err: unknown) => {
        if (isWeftError(err, 'WEFT_ERR_CA_UNAUTHORIZED')) return undefined;
        throw err;
      }),
      'the CA to sign for shop/cart on node-a',
      10_000,
    );
    assert.ok(cert, 'a certificate for shop/cart on node-a');
    await assert.rejects(requestCertificate(client, id('shop', 'other')), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHORIZED'));
    const stranger = new HttpCaClient({ url: `https://127.0.0.1:${ports[1]}`, token: k.api.issueToken('weft-system', 'weft-ca', { audiences: [CA_TOKEN_AUDIENCE] }), caCertificates: [cm.data!['root-cert.pem']!] });
    await assert.rejects(requestCertificate(stranger, id('shop', 'cart')), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHENTICATED'));
  });

  // Issue 11 leftovers: on the code before, the CA accepted only the agents' account, so a
  // waypoint with its own projected token got 401 and stayed not ready; and weft-ca-root existed
  // only in weft-system, so the waypoint pod's ConfigMap volume could never mount.
  it("a waypoint's own pod-bound token gets its own identity, and only that one; the bundle is in its namespace", async () => {
    await k.kubectl(['apply', '-f', '-'], [
      'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: waypoint, namespace: shop}',
      'apiVersion: v1\nkind: Pod\nmetadata: {name: waypoint-1, namespace: shop, labels: {gateway.networking.k8s.io/gateway-name: waypoint}}\nspec: {nodeName: node-b, serviceAccountName: waypoint, containers: [{name: waypoint, image: weft}]}',
    ].join('\n---\n'));
    const cm = JSON.parse(await k.kubectl(['-n', 'weft-system', 'get', 'configmap', 'weft-ca-root', '-o', 'json'])) as Json;
    const root = cm.data!['root-cert.pem']!;
    const inShop = await waitFor(async () => {
      const out = await k.kubectl(['-n', 'shop', 'get', 'configmap', 'weft-ca-root', '-o', 'json', '--ignore-not-found']);
      return out.trim() === '' ? undefined : (JSON.parse(out) as Json);
    }, 'weft-ca-root published in namespace shop', 10_000);
    assert.equal(inShop.data?.['root-cert.pem'], root);
    assert.equal(inShop.metadata.labels?.['app.kubernetes.io/managed-by'], 'weft-ca');
    await k.kubectl(['apply', '-f', '-'], 'apiVersion: v1\nkind: Namespace\nmetadata: {name: later}');
    await waitFor(async () => (await k.kubectl(['-n', 'later', 'get', 'configmap', 'weft-ca-root', '-o', 'name', '--ignore-not-found'])).trim() !== '' || undefined, 'published in a namespace made later', 10_000);

    const token = k.api.issueToken('shop', 'waypoint', { audiences: [CA_TOKEN_AUDIENCE], pod: 'waypoint-1' });
    const client = new HttpCaClient({ url: `https://127.0.0.1:${ports[0]}`, token, caCertificates: [inShop.data!['root-cert.pem']!] });
    const cert = await waitFor(
      () => requestCertificate(client, id('shop', 'waypoint')).catch((err: unknown) => {
        if (isWeftError(err, 'WEFT_ERR_CA_UNAUTHORIZED')) return undefined;
        throw err;
      }),
      'the CA to sign the waypoint its own identity',
      10_000,
    );
    assert.ok(cert);
    // Another identity, even one with a pod on the same node, is refused: the token proves one account.
    await k.kubectl(['apply', '-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata: {name: cart-2, namespace: shop}\nspec: {nodeName: node-b, serviceAccountName: cart, containers: [{name: app, image: cart}]}');
    await assert.rejects(requestCertificate(client, id('shop', 'cart')), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHORIZED') && /may only request its own identity/.test((e as Error).message));
    // A token of the account not bound to a pod proves no running workload.
    const unbound = new HttpCaClient({ url: `https://127.0.0.1:${ports[0]}`, token: k.api.issueToken('shop', 'waypoint', { audiences: [CA_TOKEN_AUDIENCE] }), caCertificates: [root] });
    await assert.rejects(requestCertificate(unbound, id('shop', 'waypoint')), (e) => isWeftError(e, 'WEFT_ERR_CA_UNAUTHENTICATED'));
  });
});

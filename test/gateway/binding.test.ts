/** The pure parts of the ingress gateway: hostname intersection and matching, listener conflicts, Secrets from files. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { intersectHostnames } from '../../agent/gateway/binding.js';
import { hostnameMatches, loadTlsSecret, mostSpecific, readGateway } from '../../agent/gateway/config.js';
import { readSecrets } from '../../agent/gateway/secret-files.js';

describe('gateway hostnames', () => {
  it('a wildcard matches one or more labels, never the bare suffix', () => {
    assert.ok(hostnameMatches('*.example.com', 'a.example.com'));
    assert.ok(hostnameMatches('*.example.com', 'a.b.example.com'));
    assert.ok(!hostnameMatches('*.example.com', 'example.com'));
    assert.ok(!hostnameMatches('foo.example.com', 'bar.example.com'));
    assert.ok(hostnameMatches(undefined, 'anything'));
  });

  it('intersects route and listener hostnames as the Gateway API says', () => {
    assert.deepEqual(intersectHostnames(undefined, []), [undefined]);
    assert.deepEqual(intersectHostnames('foo.example.com', []), ['foo.example.com']);
    assert.deepEqual(intersectHostnames('*.example.com', ['a.example.com', 'other.org']), ['a.example.com']);
    assert.deepEqual(intersectHostnames('foo.example.com', ['*.example.com']), ['foo.example.com']);
    assert.deepEqual(intersectHostnames('*.example.com', ['*.a.example.com']), ['*.a.example.com']);
    assert.deepEqual(intersectHostnames('foo.example.com', ['bar.example.com']), []);
  });

  it('prefers an exact name, then the longer wildcard, then every hostname', () => {
    const c = [{ hostname: undefined }, { hostname: '*.example.com' }, { hostname: '*.a.example.com' }, { hostname: 'x.a.example.com' }];
    assert.equal(mostSpecific(c, 'x.a.example.com')?.hostname, 'x.a.example.com');
    assert.equal(mostSpecific(c, 'y.a.example.com')?.hostname, '*.a.example.com');
    assert.equal(mostSpecific(c, 'y.example.com')?.hostname, '*.example.com');
    assert.equal(mostSpecific(c, 'other.org')?.hostname, undefined);
    assert.equal(mostSpecific(c.slice(1), 'other.org'), undefined);
  });
});

describe('gateway listeners', () => {
  it('refuses a second listener of the same port and hostname, and HTTP next to HTTPS on one port', () => {
    const g = readGateway(
      {
        kind: 'Gateway',
        metadata: { name: 'g', namespace: 'n' },
        spec: {
          listeners: [
            { name: 'a', port: 80, protocol: 'HTTP' },
            { name: 'b', port: 80, protocol: 'HTTP' },
            { name: 'c', port: 80, protocol: 'HTTPS', hostname: 'x.org', tls: { certificateRefs: [{ name: 's' }] } },
            { name: 'd', port: 81, protocol: 'TCP' },
          ],
        },
      },
      () => undefined,
    );
    assert.deepEqual(
      g.listeners.map((l) => [l.name, l.ready]),
      [
        ['a', true],
        ['b', false],
        ['c', false],
        ['d', false],
      ],
    );
    assert.equal(g.listeners[1]!.conditions.find((c) => c.type === 'Conflicted')?.reason, 'HostnameConflict');
    assert.equal(g.listeners[2]!.conditions.find((c) => c.type === 'ResolvedRefs')?.reason, 'InvalidCertificateRef');
    assert.equal(g.listeners[3]!.conditions.find((c) => c.type === 'Accepted')?.reason, 'UnsupportedProtocol');
  });

  it('says why a Secret cannot be used', () => {
    assert.match(loadTlsSecret('n/s', undefined) as string, /not found/);
    assert.match(loadTlsSecret('n/s', { type: 'kubernetes.io/tls', data: { 'tls.crt': 'eA==' } }) as string, /lacks tls\.key/);
    assert.match(loadTlsSecret('n/s', { type: 'kubernetes.io/tls', stringData: { 'tls.crt': 'x', 'tls.key': 'y' } }) as string, /do not load/);
  });

  it('reads the Secrets of a directory of YAML', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ingr-secrets-'));
    try {
      writeFileSync(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n');
      const m = readSecrets(dir);
      assert.deepEqual([...m.keys()], ['n/s']);
      assert.equal(m.get('n/s')?.data?.['tls.crt'], 'eA==');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gatewayObjects', () => {
  it('deploys `weft gateway` for a Gateway of class weft: its own service account, uncaptured pods, a LoadBalancer Service of the listener ports', async () => {
    const { gatewayObjects, isIngressGatewayObject } = await import('../../agent/gateway/objects.js');
    const g = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway' as const,
      metadata: { name: 'public', namespace: 'edge' },
      spec: { gatewayClassName: 'weft', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }, { name: 'a', port: 443, protocol: 'HTTPS' }, { name: 'b', port: 443, protocol: 'HTTPS' }] },
    };
    assert.ok(isIngressGatewayObject(g));
    assert.ok(!isIngressGatewayObject({ ...g, spec: { ...g.spec, gatewayClassName: 'weft-waypoint' } } as typeof g));
    const [sa, deploy, svc] = gatewayObjects(g, { cli: ['weft'], args: ['--manifests=/m'] }) as unknown as [
      { kind: string; metadata: { name: string } },
      { spec: { template: { metadata: { labels: Record<string, string> }; spec: { serviceAccountName: string; containers: { args: string[] }[] } } } },
      { spec: { type: string; ports: { port: number }[]; selector: Record<string, string> } },
    ];
    assert.equal(sa.kind, 'ServiceAccount');
    assert.equal(sa.metadata.name, 'public');
    assert.equal(deploy.spec.template.spec.serviceAccountName, 'public');
    assert.equal(deploy.spec.template.metadata.labels['weft.dev/mesh'], 'disabled');
    assert.deepEqual(deploy.spec.template.spec.containers[0]!.args, ['gateway', '--name=public', '--namespace=edge', '--manifests=/m']);
    assert.equal(svc.spec.type, 'LoadBalancer');
    assert.deepEqual(svc.spec.ports.map((p) => p.port), [80, 443]);
    assert.deepEqual(svc.spec.selector, { 'gateway.networking.k8s.io/gateway-name': 'public' });
  });
});

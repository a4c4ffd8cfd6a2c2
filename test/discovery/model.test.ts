import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildModel, modelFingerprint } from '../../agent/discovery/model.js';
import type { ManifestObject, NamespaceObject, PodObject, ServiceObject } from '../../agent/discovery/types.js';

function ns(name: string, labels: Record<string, string> = {}): NamespaceObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

function pod(
  namespace: string,
  name: string,
  opts: {
    ip?: string;
    node?: string;
    labels?: Record<string, string>;
    sa?: string;
    phase?: string;
    ports?: { containerPort: number; name?: string }[];
    hostNetwork?: boolean;
  } = {},
): PodObject {
  const p: PodObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: opts.labels ?? {} },
    spec: { nodeName: opts.node ?? 'n1', containers: [{ name: 'app', ports: opts.ports }] },
  };
  if (opts.sa !== undefined) p.spec.serviceAccountName = opts.sa;
  if (opts.hostNetwork !== undefined) p.spec.hostNetwork = opts.hostNetwork;
  if (opts.ip !== undefined || opts.phase !== undefined) p.status = { podIP: opts.ip, phase: opts.phase };
  return p;
}

function svc(
  namespace: string,
  name: string,
  selector: Record<string, string> | undefined,
  ports: ServiceObject['spec']['ports'],
  clusterIP?: string,
): ServiceObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { selector, ports, clusterIP } };
}

describe('buildModel: workloads', () => {
  const objects: ManifestObject[] = [
    ns('mesh', { 'weft.dev/mesh': 'enabled' }),
    ns('plain'),
    pod('mesh', 'in', { ip: '198.18.1.2', labels: { app: 'reviews', version: 'v2' }, sa: 'bookinfo-reviews' }),
    pod('mesh', 'out', { ip: '198.18.1.3', labels: { 'weft.dev/mesh': 'disabled', 'app.kubernetes.io/name': 'ratings' } }),
    pod('plain', 'p', { ip: '198.18.2.2', node: 'n2', labels: { 'weft.dev/mesh': 'enabled' } }),
    pod('implicit', 'i', { ip: '198.18.2.3', node: 'n2' }),
    pod('mesh', 'pending-no-ip', { phase: 'Pending' }),
    pod('mesh', 'done', { ip: '198.18.1.9', phase: 'Succeeded' }),
    pod('mesh', 'host', { ip: '198.19.0.1', hostNetwork: true }),
  ];
  const model = buildModel(objects, { generation: 7 });

  it('keeps generation and the default trust domain, and lists implicit namespaces', () => {
    assert.equal(model.generation, 7);
    assert.equal(model.trustDomain, 'cluster.local');
    assert.deepEqual([...model.namespaces.keys()].sort(), ['implicit', 'mesh', 'plain']);
    assert.deepEqual(model.namespaces.get('implicit')!.labels, {});
  });

  it('makes workloads of pods with an IP that are not finished', () => {
    assert.deepEqual([...model.workloads.keys()].sort(), ['implicit/i', 'mesh/host', 'mesh/in', 'mesh/out', 'plain/p']);
  });

  const table: [string, Partial<Record<'inMesh' | 'workloadName' | 'version' | 'serviceAccount' | 'identity' | 'node', unknown>>][] = [
    ['mesh/in', { inMesh: true, workloadName: 'reviews', version: 'v2', serviceAccount: 'bookinfo-reviews', identity: 'spiffe://cluster.local/ns/mesh/sa/bookinfo-reviews', node: 'n1' }],
    ['mesh/out', { inMesh: false, workloadName: 'ratings', version: 'unknown', serviceAccount: 'default', identity: 'spiffe://cluster.local/ns/mesh/sa/default' }],
    ['plain/p', { inMesh: false, workloadName: 'p', node: 'n2' }],
    ['implicit/i', { inMesh: false }],
    ['mesh/host', { inMesh: false }],
  ];
  for (const [key, want] of table) {
    it(`workload ${key}`, () => {
      const w = model.workloads.get(key)!;
      for (const [field, value] of Object.entries(want)) assert.equal(w[field as keyof typeof w], value, `${key}.${field}`);
    });
  }

  it('finds workloads by IP (never a host-network pod) and by node', () => {
    assert.equal(model.workloadByIp('198.18.1.2')?.key, 'mesh/in');
    assert.equal(model.workloadByIp('198.18.1.9'), undefined);
    assert.equal(model.workloadByIp('198.19.0.1'), undefined);
    assert.deepEqual(model.workloadsOnNode('n2').map((w) => w.key), ['implicit/i', 'plain/p']);
    assert.deepEqual(model.workloadsOnNode('nope'), []);
  });

  it('uses the trust domain it is given', () => {
    const m = buildModel(objects, { trustDomain: 'example.org' });
    assert.equal(m.workloads.get('mesh/in')!.identity, 'spiffe://example.org/ns/mesh/sa/bookinfo-reviews');
  });
});

describe('buildModel: services', () => {
  const objects: ManifestObject[] = [
    pod('bi', 'reviews-v1', { ip: '198.18.1.2', labels: { app: 'reviews', version: 'v1' }, ports: [{ containerPort: 9080, name: 'http' }] }),
    pod('bi', 'reviews-v2', { ip: '198.18.1.3', labels: { app: 'reviews', version: 'v2' }, ports: [{ containerPort: 9081, name: 'http' }] }),
    pod('bi', 'reviews-v3', { ip: '198.18.1.4', labels: { app: 'reviews', version: 'v3' }, ports: [{ containerPort: 9090 }] }),
    pod('bi', 'reviews-pending', { ip: '198.18.1.5', phase: 'Pending', labels: { app: 'reviews' } }),
    pod('bi', 'reviews-noip', { labels: { app: 'reviews' } }),
    pod('other', 'reviews-elsewhere', { ip: '198.18.2.2', labels: { app: 'reviews' } }),
    svc('bi', 'reviews', { app: 'reviews' }, [
      { name: 'http', port: 80, targetPort: 'http' },
      { name: 'direct', port: 9000, targetPort: 7000 },
      { name: 'same', port: 9090 },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ], '198.19.128.10'),
    svc('bi', 'reviews-v2', { app: 'reviews', version: 'v2' }, [{ port: 80, targetPort: 'http' }], '198.19.128.11'),
    svc('bi', 'external', undefined, [{ port: 443 }], '198.19.128.12'),
    svc('bi', 'headless', { app: 'reviews' }, [{ port: 80 }], 'None'),
  ];
  const model = buildModel(objects);
  const endpoints = (key: string, port: number): [string, number][] =>
    model.services.get(key)!.ports.get(port)!.map((e) => [e.workload?.key ?? '', e.port]);

  it('resolves a named targetPort per pod and leaves out pods without that name', () => {
    assert.deepEqual(endpoints('bi/reviews', 80), [
      ['bi/reviews-v1', 9080],
      ['bi/reviews-v2', 9081],
    ]);
  });

  it('uses a numeric targetPort, and the port itself when targetPort is unset', () => {
    assert.deepEqual(endpoints('bi/reviews', 9000).map((e) => e[1]), [7000, 7000, 7000]);
    assert.deepEqual(endpoints('bi/reviews', 9090), [
      ['bi/reviews-v1', 9090],
      ['bi/reviews-v2', 9090],
      ['bi/reviews-v3', 9090],
    ]);
  });

  it('selects with every selector label, in the same namespace, over ready pods only', () => {
    assert.deepEqual(endpoints('bi/reviews-v2', 80), [['bi/reviews-v2', 9081]]);
    // pending and IP-less pods, and the pod of another namespace, never appear
    for (const [, list] of model.services.get('bi/reviews')!.ports) {
      for (const e of list) assert.ok(['bi/reviews-v1', 'bi/reviews-v2', 'bi/reviews-v3'].includes(e.workload?.key ?? ''));
    }
  });

  it('has no endpoints without a selector, and carries only TCP ports', () => {
    assert.deepEqual(endpoints('bi/external', 443), []);
    assert.deepEqual([...model.services.get('bi/reviews')!.ports.keys()], [80, 9000, 9090]);
  });

  it('finds services by ClusterIP; a headless service has none', () => {
    assert.equal(model.serviceByVip('198.19.128.11')?.key, 'bi/reviews-v2');
    assert.equal(model.services.get('bi/headless')!.clusterIP, undefined);
    assert.equal(model.serviceByVip('None'), undefined);
    assert.equal(model.services.get('bi/reviews')!.hostname, 'reviews.bi.svc.cluster.local');
  });
});

describe('modelFingerprint', () => {
  const base: ManifestObject[] = [
    ns('a', { 'weft.dev/mesh': 'enabled' }),
    pod('a', 'p', { ip: '198.18.1.2', labels: { app: 'x', version: 'v1' } }),
    { apiVersion: 'security.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'x', namespace: 'a' }, spec: { action: 'DENY', rules: [] } } as ManifestObject,
  ];
  it('ignores object order and key order, and sees a label change', () => {
    const reordered: ManifestObject[] = [
      { apiVersion: 'security.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { namespace: 'a', name: 'x' }, spec: { rules: [], action: 'DENY' } } as ManifestObject,
      pod('a', 'p', { ip: '198.18.1.2', labels: { version: 'v1', app: 'x' } }),
      ns('a', { 'weft.dev/mesh': 'enabled' }),
    ];
    assert.equal(modelFingerprint(buildModel(base)), modelFingerprint(buildModel(reordered, { generation: 5 })));
    const relabelled = [ns('a'), ...base.slice(1)];
    assert.notEqual(modelFingerprint(buildModel(base)), modelFingerprint(buildModel(relabelled)));
  });
});

describe('buildModel at size', () => {
  it('builds 5,000 pods and 1,000 services with correct endpoints and lookups', () => {
    const objects: ManifestObject[] = [];
    const namespaces = 10;
    for (let n = 0; n < namespaces; n++) objects.push(ns(`ns${n}`, n % 2 === 0 ? { 'weft.dev/mesh': 'enabled' } : {}));
    // 1,000 services (100 per namespace), each selecting 5 pods: app=svc<i>, plus shared labels
    // on every pod so the selector index cannot get away with one label.
    for (let s = 0; s < 1000; s++) {
      const namespace = `ns${s % namespaces}`;
      for (let r = 0; r < 5; r++) {
        const id = s * 5 + r;
        objects.push(
          pod(namespace, `svc${s}-${r}`, {
            ip: `198.18.${Math.floor(id / 250) + 1}.${(id % 250) + 2}`,
            node: `n${id % 20}`,
            labels: { app: `svc${s}`, tier: 'backend', version: `v${r % 2}` },
            ports: [{ containerPort: 8000 + r, name: 'http' }],
          }),
        );
      }
      objects.push(svc(namespace, `svc${s}`, { app: `svc${s}`, tier: 'backend' }, [{ port: 80, targetPort: 'http' }], `198.19.${128 + Math.floor(s / 250)}.${(s % 250) + 1}`));
    }
    const model = buildModel(objects);
    assert.equal(model.workloads.size, 5000);
    assert.equal(model.services.size, 1000);
    for (let s = 0; s < 1000; s++) {
      const service = model.services.get(`ns${s % namespaces}/svc${s}`)!;
      const eps = service.ports.get(80)!;
      assert.deepEqual(
        eps.map((e) => [e.workload?.name, e.port]),
        [0, 1, 2, 3, 4].map((r) => [`svc${s}-${r}`, 8000 + r]),
      );
      assert.equal(model.serviceByVip(service.clusterIP!), service);
    }
    assert.equal(model.workloadByIp('198.18.1.2')!.name, 'svc0-0');
    assert.equal(model.workloadByIp('198.18.20.251')!.name, 'svc999-4');
    assert.equal(model.workloadsOnNode('n3').length, 250);
    assert.equal([...model.workloads.values()].filter((w) => w.inMesh).length, 2500);
  });
});

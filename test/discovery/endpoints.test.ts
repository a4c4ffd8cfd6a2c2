/**
 * Endpoints as kube-proxy computes them (issue 9, findings 4, 5, 6 and 9): from EndpointSlices,
 * selectorless Services included; only ready endpoints; every Service type and odd objects
 * without a throw; and each change applied incrementally.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { podFacts, serviceFacts, sliceFacts } from '../../agent/discovery/facts.js';
import { buildModel } from '../../agent/discovery/model.js';
import { MeshStore } from '../../agent/discovery/store.js';
import type { ManifestObject, MeshModel } from '../../agent/discovery/types.js';

const meshNs: ManifestObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'weft.dev/mesh': 'enabled' } } };

function pod(name: string, ip: string, extra: { labels?: Record<string, string>; ready?: boolean; deleting?: boolean; phase?: string } = {}): ManifestObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', labels: extra.labels ?? { app: 'cart' }, ...(extra.deleting ? { deletionTimestamp: '2026-12-01T00:00:00Z' } : {}) },
    spec: { nodeName: 'n1', serviceAccountName: name, containers: [{ name: 'app' }] },
    status: {
      podIP: ip,
      phase: extra.phase ?? 'Running',
      ...(extra.ready !== undefined ? { conditions: [{ type: 'Ready', status: extra.ready ? 'True' : 'False' }] } : {}),
    },
  } as ManifestObject;
}

function slice(name: string, service: string, port: number, endpoints: unknown[], portName = ''): ManifestObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ name: portName, port, protocol: 'TCP' }],
    endpoints,
  } as unknown as ManifestObject;
}

function service(name: string, spec: Record<string, unknown>): ManifestObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec } as unknown as ManifestObject;
}

const eps = (model: MeshModel, key: string, port: number) =>
  (model.services.get(key)?.ports.get(port) ?? []).map((e) => `${e.ip}:${e.port}${e.workload ? ` ${e.workload.key}${e.workload.inMesh ? ' meshed' : ''}` : ' direct'}`);

describe('endpoints from EndpointSlices (finding 4)', () => {
  it('gives a selectorless Service (kubernetes.default) the endpoints of its slice; an address that is no pod is reached directly', () => {
    const model = buildModel([
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443, targetPort: 6443 }] } } as ManifestObject,
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 'kubernetes', namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
        addressType: 'IPv4',
        ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
        endpoints: [{ addresses: ['198.19.0.1'], conditions: { ready: true } }],
      } as unknown as ManifestObject,
    ]);
    assert.deepEqual(eps(model, 'default/kubernetes', 443), ['198.19.0.1:6443 direct']);
    assert.equal(model.serviceByVip('10.96.0.1')?.key, 'default/kubernetes');
  });

  it('matches slice addresses to known pods: a meshed pod gets HBONE, an unknown pod named by the slice gets nothing (fail closed)', () => {
    const model = buildModel([
      meshNs,
      pod('cart-1', '198.18.1.2'),
      service('cart', { clusterIP: '198.19.128.5', selector: { app: 'cart' }, ports: [{ port: 80, targetPort: 8080 }] }),
      slice('cart-x', 'cart', 8080, [
        { addresses: ['198.18.1.2'], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace: 'shop', name: 'cart-1' } },
        { addresses: ['198.18.1.3'], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace: 'shop', name: 'not-seen-yet' } },
        { addresses: ['198.18.1.2'], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace: 'shop', name: 'cart-1' } },
      ]),
    ]);
    assert.deepEqual(eps(model, 'shop/cart', 80), ['198.18.1.2:8080 shop/cart-1 meshed']);
  });

  it('resolves ports by the Service port name, as kube-proxy does, and reads several slices of one service', () => {
    const model = buildModel([
      service('multi', { clusterIP: '198.19.128.6', ports: [{ name: 'http', port: 80 }, { name: 'grpc', port: 90 }] }),
      slice('multi-a', 'multi', 8080, [{ addresses: ['10.0.0.1'] }], 'http'),
      slice('multi-b', 'multi', 8080, [{ addresses: ['10.0.0.2'] }], 'http'),
      slice('multi-c', 'multi', 9090, [{ addresses: ['10.0.0.3'] }], 'grpc'),
    ]);
    assert.deepEqual(eps(model, 'shop/multi', 80), ['10.0.0.1:8080 direct', '10.0.0.2:8080 direct']);
    assert.deepEqual(eps(model, 'shop/multi', 90), ['10.0.0.3:9090 direct']);
  });

  it('in the local source, a selector still gives endpoints when no slice names the service', () => {
    const model = buildModel([meshNs, pod('cart-1', '198.18.1.2'), service('cart', { clusterIP: '198.19.128.5', selector: { app: 'cart' }, ports: [{ port: 80, targetPort: 8080 }] })]);
    assert.deepEqual(eps(model, 'shop/cart', 80), ['198.18.1.2:8080 shop/cart-1 meshed']);
  });
});

describe('readiness (finding 6): only ready endpoints get new connections', () => {
  it('leaves out pods that are not Ready or are terminating (selectors)', () => {
    const model = buildModel([
      meshNs,
      pod('ready', '198.18.1.2', { ready: true }),
      pod('starting', '198.18.1.3', { ready: false }),
      pod('going', '198.18.1.4', { ready: true, deleting: true }),
      pod('pending', '198.18.1.5', { phase: 'Pending' }),
      service('cart', { clusterIP: '198.19.128.5', selector: { app: 'cart' }, ports: [{ port: 80 }] }),
    ]);
    assert.deepEqual(eps(model, 'shop/cart', 80), ['198.18.1.2:80 shop/ready meshed']);
    // The terminating pod is still a workload: it is still captured and finishes what it has.
    assert.equal(model.workloads.get('shop/going')?.inMesh, true);
  });

  it('leaves out slice endpoints that are not ready, and serving-but-terminating ones', () => {
    const model = buildModel([
      service('cart', { clusterIP: '198.19.128.5', ports: [{ port: 80 }] }),
      slice('cart-x', 'cart', 80, [
        { addresses: ['10.0.0.1'], conditions: { ready: true, serving: true, terminating: false } },
        { addresses: ['10.0.0.2'], conditions: { ready: false, serving: false, terminating: false } },
        { addresses: ['10.0.0.3'], conditions: { ready: false, serving: true, terminating: true } },
        { addresses: ['10.0.0.4'], conditions: {} },
        { addresses: ['10.0.0.5'] },
      ]),
    ]);
    assert.deepEqual(eps(model, 'shop/cart', 80), ['10.0.0.1:80 direct', '10.0.0.4:80 direct', '10.0.0.5:80 direct']);
  });
});

describe('objects with missing optional fields never throw (finding 5)', () => {
  const services: [string, Record<string, unknown>, { vip: string | undefined; ports: number[] }][] = [
    ['ClusterIP', { type: 'ClusterIP', clusterIP: '10.96.1.1', selector: { app: 'x' }, ports: [{ port: 80 }] }, { vip: '10.96.1.1', ports: [80] }],
    ['ClusterIP without type', { clusterIP: '10.96.1.2', ports: [{ port: 81, targetPort: 'http' }] }, { vip: '10.96.1.2', ports: [81] }],
    ['headless without ports', { clusterIP: 'None', selector: { app: 'x' } }, { vip: undefined, ports: [] }],
    ['headless with ports', { clusterIP: 'None', ports: [{ port: 82 }] }, { vip: undefined, ports: [82] }],
    ['NodePort', { type: 'NodePort', clusterIP: '10.96.1.3', ports: [{ port: 83, nodePort: 30083 }] }, { vip: '10.96.1.3', ports: [83] }],
    ['LoadBalancer', { type: 'LoadBalancer', clusterIP: '10.96.1.4', ports: [{ port: 84, nodePort: 30084 }] }, { vip: '10.96.1.4', ports: [84] }],
    ['ExternalName', { type: 'ExternalName', externalName: 'db.example.com' }, { vip: undefined, ports: [] }],
    ['ExternalName with ports', { type: 'ExternalName', externalName: 'db.example.com', ports: [{ port: 5432 }] }, { vip: undefined, ports: [] }],
    ['no spec fields at all', {}, { vip: undefined, ports: [] }],
    ['ports not a list', { clusterIP: '10.96.1.5', ports: 'oops' }, { vip: '10.96.1.5', ports: [] }],
    ['UDP only', { clusterIP: '10.96.1.6', ports: [{ port: 53, protocol: 'UDP' }] }, { vip: '10.96.1.6', ports: [] }],
  ];
  for (const [name, spec, want] of services) {
    it(`Service: ${name}`, () => {
      const model = buildModel([service('s', spec), pod('p', '198.18.1.2', { labels: { app: 'x' } })]);
      const s = model.services.get('shop/s')!;
      assert.equal(s.clusterIP, want.vip);
      assert.deepEqual([...s.ports.keys()], want.ports);
    });
  }
  it('Service without spec (as an API server could send it)', () => {
    assert.equal(serviceFacts({ metadata: { name: 's' } })?.ports.length, 0);
  });

  const pods: [string, unknown, boolean][] = [
    ['no status', { metadata: { name: 'a' }, spec: { containers: [{ name: 'c' }] } }, false],
    ['no containers', { metadata: { name: 'b' }, spec: {}, status: { podIP: '198.18.1.9' } }, true],
    ['containers without ports', { metadata: { name: 'c' }, spec: { containers: [{ name: 'c' }, {}] }, status: { podIP: '198.18.1.10' } }, true],
    ['no spec', { metadata: { name: 'd' }, status: { podIP: '198.18.1.11', conditions: 'bad' } }, true],
    ['labels with non-string values', { metadata: { name: 'e', labels: { app: 1 } }, status: { podIP: '198.18.1.12' } }, true],
  ];
  for (const [name, raw, isWorkload] of pods) {
    it(`Pod: ${name}`, () => {
      const f = podFacts(raw)!;
      const store = new MeshStore({ selectorEndpoints: true });
      store.upsertPod(f);
      store.commit();
      assert.equal(store.workloads.has(f.key), isWorkload);
    });
  }
  it('objects without a name are ignored, not thrown at', () => {
    for (const raw of [undefined, null, 'x', {}, { metadata: {} }, { metadata: { name: 7 } }]) {
      assert.equal(podFacts(raw), undefined);
      assert.equal(serviceFacts(raw), undefined);
      assert.equal(sliceFacts(raw), undefined);
    }
  });
  it('EndpointSlices without ports, endpoints or conditions, or of addressType FQDN', () => {
    const model = buildModel([
      service('s', { clusterIP: '10.96.2.1', ports: [{ port: 80 }] }),
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 's' } } } as unknown as ManifestObject,
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's-2', namespace: 'shop', labels: { 'kubernetes.io/service-name': 's' } }, addressType: 'FQDN', ports: null, endpoints: [{ addresses: ['db.example.com'] }] } as unknown as ManifestObject,
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'orphan', namespace: 'shop' }, endpoints: [{}] } as unknown as ManifestObject,
    ]);
    assert.deepEqual(eps(model, 'shop/s', 80), []);
  });
});

describe('incremental changes (finding 9)', () => {
  function store(): MeshStore {
    const s = new MeshStore({ selectorEndpoints: true });
    s.upsertObject(meshNs);
    s.upsertObject(service('cart', { clusterIP: '198.19.128.5', selector: { app: 'cart' }, ports: [{ port: 80 }] }));
    s.upsertObject(service('other', { clusterIP: '198.19.128.6', selector: { app: 'other' }, ports: [{ port: 80 }] }));
    s.upsertObject({ apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'p', namespace: 'shop' }, spec: {} } as ManifestObject);
    s.upsertObject(pod('cart-1', '198.18.1.2'));
    s.commit();
    return s;
  }

  it('a pod event recomputes only the services that select it, and leaves policies and other nodes alone', () => {
    const s = store();
    const model = s.snapshot();
    const others = model.others;
    const other = model.services.get('shop/other');
    const n2 = model.nodeVersion('n2');
    const n1 = model.nodeVersion('n1');
    s.upsertObject(pod('cart-2', '198.18.1.3'));
    assert.equal(s.commit(), true);
    const next = s.snapshot();
    assert.equal(next.generation, model.generation + 1);
    assert.deepEqual(eps(next, 'shop/cart', 80), ['198.18.1.2:80 shop/cart-1 meshed', '198.18.1.3:80 shop/cart-2 meshed']);
    assert.equal(next.services.get('shop/other'), other, 'a service the pod is not part of is not recomputed');
    assert.equal(next.others, others, 'the policy list is the same array: the agent does not recompile policies');
    assert.equal(next.nodeVersion('n2'), n2);
    assert.notEqual(next.nodeVersion('n1'), n1);
  });

  it('the same object again is no change: no new generation', () => {
    const s = store();
    const generation = s.generation;
    s.upsertObject(pod('cart-1', '198.18.1.2'));
    s.upsertObject({ apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { namespace: 'shop', name: 'p' }, spec: {} } as ManifestObject);
    assert.equal(s.commit(), false);
    assert.equal(s.generation, generation);
  });

  it('a namespace label flip, a pod going not-ready, and a delete all reach the endpoints', () => {
    const s = store();
    s.upsertObject({ ...meshNs, metadata: { name: 'shop' } } as ManifestObject);
    s.commit();
    assert.deepEqual(eps(s.snapshot(), 'shop/cart', 80), ['198.18.1.2:80 shop/cart-1']);
    s.upsertObject(pod('cart-1', '198.18.1.2', { ready: false }));
    s.commit();
    assert.deepEqual(eps(s.snapshot(), 'shop/cart', 80), []);
    s.upsertObject(pod('cart-1', '198.18.1.2', { ready: true }));
    s.commit();
    assert.equal(eps(s.snapshot(), 'shop/cart', 80).length, 1);
    s.deleteObject(pod('cart-1', '198.18.1.2'));
    s.commit();
    assert.deepEqual(eps(s.snapshot(), 'shop/cart', 80), []);
    assert.equal(s.snapshot().workloadByIp('198.18.1.2'), undefined);
  });

  it('an IP held by a terminating pod and its successor belongs to the successor, whatever the order', () => {
    for (const order of [0, 1]) {
      const s = new MeshStore({ selectorEndpoints: true });
      const objects = [pod('a-old', '198.18.1.7', { deleting: true }), pod('z-new', '198.18.1.7')];
      for (const o of order === 0 ? objects : objects.reverse()) s.upsertObject(o);
      s.commit();
      assert.equal(s.snapshot().workloadByIp('198.18.1.7')?.key, 'shop/z-new');
      s.deleteObject(pod('z-new', '198.18.1.7'));
      s.commit();
      assert.equal(s.snapshot().workloadByIp('198.18.1.7')?.key, 'shop/a-old');
    }
  });

  it('kinds the agent does not read are not kept (a ConfigMap never reaches the model)', () => {
    const s = store();
    assert.equal(s.upsertObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big', namespace: 'shop' } } as ManifestObject), false);
    assert.equal(s.commit(), false);
    assert.ok(!s.snapshot().others.some((o) => o.kind === 'ConfigMap'));
  });
});

/**
 * Waypoint binding in the model (issue 11, point 2), through the incremental store as both
 * sources feed it: Gateways of class weft-waypoint become waypoints with their ready pods and
 * identity; services bind by their own label or their namespace's; `none` opts out; relabelling
 * a namespace rebinds at once; other classes are ignored; invalid waypoint Gateways and pods of
 * two service accounts are refused with reasons.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshStore } from '../../agent/discovery/store.js';
import { podFacts, REMOTE_POD_LABELS } from '../../agent/discovery/facts.js';
import { GATEWAY_NAME_LABEL, USE_WAYPOINT_LABEL, type ManifestObject } from '../../agent/discovery/types.js';

function ns(name: string, labels: Record<string, string> = {}): ManifestObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

function pod(name: string, ip: string, opts: { labels?: Record<string, string>; sa?: string; ready?: boolean; namespace?: string } = {}): ManifestObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.namespace ?? 'shop', labels: opts.labels ?? { app: name } },
    spec: { nodeName: 'n1', serviceAccountName: opts.sa ?? name, containers: [{ name: 'main' }] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
  } as ManifestObject;
}

function waypointPod(name: string, ip: string, gateway = 'waypoint', opts: { sa?: string; ready?: boolean } = {}): ManifestObject {
  return pod(name, ip, { labels: { [GATEWAY_NAME_LABEL]: gateway, 'weft.dev/mesh': 'disabled' }, sa: opts.sa ?? gateway, ...(opts.ready !== undefined ? { ready: opts.ready } : {}) });
}

function svc(name: string, vip: string, labels: Record<string, string> = {}, selector: Record<string, string> = { app: name }): ManifestObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', labels }, spec: { clusterIP: vip, selector, ports: [{ port: 80, targetPort: 9080 }] } } as ManifestObject;
}

function gateway(name: string, spec: Record<string, unknown> = {}, apiVersion = 'gateway.networking.k8s.io/v1'): ManifestObject {
  return { apiVersion, kind: 'Gateway', metadata: { name, namespace: 'shop' }, spec: { gatewayClassName: 'weft-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }], ...spec } } as ManifestObject;
}

function store(...objects: ManifestObject[]): MeshStore {
  const s = new MeshStore({ selectorEndpoints: true });
  apply(s, ...objects);
  return s;
}

function apply(s: MeshStore, ...objects: ManifestObject[]): void {
  for (const o of objects) s.upsertObject(o);
  s.commit();
}

const base = [ns('shop', { 'weft.dev/mesh': 'enabled' }), pod('reviews', '198.18.124.10'), svc('reviews', '198.18.124.200'), svc('ratings', '198.18.124.201')];

describe('waypoints from Gateways and their pods', () => {
  it('a weft-waypoint Gateway with an HBONE 15008 listener and a ready pod is a waypoint: the pod on 15008, its service account the identity', () => {
    const s = store(...base, gateway('waypoint'), waypointPod('waypoint-1', '198.18.124.50'));
    const w = s.snapshot().waypoints.get('shop/waypoint');
    assert.ok(w);
    assert.equal(w.name, 'waypoint');
    assert.equal(w.namespace, 'shop');
    assert.equal(w.identity, 'spiffe://cluster.local/ns/shop/sa/waypoint');
    assert.deepEqual(w.endpoints.map((e) => `${e.ip}:${e.port}`), ['198.18.124.50:15008']);
    assert.equal(w.endpoints[0]!.workload?.key, 'shop/waypoint-1');
    assert.deepEqual(s.refusals(), []);
  });

  it('a waypoint without pods has no endpoint (it is down) and the identity of its own service account', () => {
    const s = store(...base, gateway('waypoint'));
    const w = s.snapshot().waypoints.get('shop/waypoint');
    assert.deepEqual(w?.endpoints, []);
    assert.equal(w?.identity, 'spiffe://cluster.local/ns/shop/sa/waypoint');
  });

  it('only ready, non-terminating pods are endpoints; a pod turning ready joins at the next commit', () => {
    const s = store(...base, gateway('waypoint'), waypointPod('waypoint-1', '198.18.124.50', 'waypoint', { ready: false }));
    assert.deepEqual(s.snapshot().waypoints.get('shop/waypoint')?.endpoints, []);
    const gen = s.generation;
    apply(s, waypointPod('waypoint-1', '198.18.124.50'));
    assert.ok(s.generation > gen);
    assert.equal(s.snapshot().waypoints.get('shop/waypoint')?.endpoints.length, 1);
    s.deletePod('shop/waypoint-1');
    s.commit();
    assert.deepEqual(s.snapshot().waypoints.get('shop/waypoint')?.endpoints, []);
  });

  it('pods of two service accounts: none is used, and the Gateway is refused with the accounts named', () => {
    const s = store(...base, gateway('waypoint'), waypointPod('waypoint-1', '198.18.124.50'), waypointPod('waypoint-2', '198.18.124.51', 'waypoint', { sa: 'intruder' }));
    assert.deepEqual(s.snapshot().waypoints.get('shop/waypoint')?.endpoints, []);
    const refusals = s.refusals();
    assert.equal(refusals.length, 1);
    assert.equal(refusals[0]!.object, 'Gateway shop/waypoint');
    assert.equal(refusals[0]!.code, 'WEFT_ERR_WAYPOINT_INVALID');
    assert.match(refusals[0]!.reason, /intruder, waypoint/);
    s.deletePod('shop/waypoint-2');
    s.commit();
    assert.equal(s.snapshot().waypoints.get('shop/waypoint')?.endpoints.length, 1);
    assert.deepEqual(s.refusals(), []);
  });

  it('a Gateway of another class is ignored: no waypoint, no refusal (it belongs to another implementation)', () => {
    const s = store(...base, gateway('ingress', { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] }));
    assert.equal(s.snapshot().waypoints.size, 0);
    assert.deepEqual(s.refusals(), []);
    // Still kept for the route table (parentRefs may name it).
    assert.ok(s.snapshot().others.some((o) => o.kind === 'Gateway' && o.metadata.name === 'ingress'));
  });

  it('a weft-waypoint Gateway without an HBONE listener on 15008 is refused by field; an invalid update keeps the last good waypoint', () => {
    const s = store(...base, gateway('broken', { listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] }), gateway('wrongport', { listeners: [{ name: 'mesh', port: 15009, protocol: 'HBONE' }] }), gateway('old', {}, 'gateway.networking.k8s.io/v1beta1'));
    assert.equal(s.snapshot().waypoints.size, 0);
    const reasons = new Map(s.refusals().map((r) => [r.object, r.reason]));
    assert.match(reasons.get('Gateway shop/broken')!, /^spec\.listeners: no listener \{protocol: HBONE, port: 15008\}/);
    assert.match(reasons.get('Gateway shop/wrongport')!, /spec\.listeners\[0\]\.port: an HBONE listener must be on port 15008, not 15009/);
    assert.match(reasons.get('Gateway shop/old')!, /^apiVersion: /);
    for (const r of s.refusals()) assert.equal(r.code, 'WEFT_ERR_WAYPOINT_INVALID');

    apply(s, gateway('waypoint'), waypointPod('waypoint-1', '198.18.124.50'));
    apply(s, gateway('waypoint', { listeners: [] }));
    assert.equal(s.snapshot().waypoints.get('shop/waypoint')?.endpoints.length, 1, 'the last good version stays');
    assert.match(new Map(s.refusals().map((r) => [r.object, r.reason])).get('Gateway shop/waypoint')!, /the last good version stays/);
    apply(s, gateway('waypoint'));
    assert.equal(s.refusals().filter((r) => r.object === 'Gateway shop/waypoint').length, 0);
  });

  it('deleting the Gateway removes the waypoint; its class changed away removes it too', () => {
    const s = store(...base, gateway('waypoint'), gateway('other'));
    s.deleteObject(gateway('waypoint'));
    apply(s, gateway('other', { gatewayClassName: 'istio' }));
    assert.equal(s.snapshot().waypoints.size, 0);
  });

  it('pods of other nodes keep the gateway-name label (Kubernetes mode strips the rest)', () => {
    assert.ok(REMOTE_POD_LABELS.includes(GATEWAY_NAME_LABEL));
    const f = podFacts(waypointPod('w', '198.18.124.50'), { stripLabels: true });
    assert.equal(f?.labels[GATEWAY_NAME_LABEL], 'waypoint');
  });
});

describe('services bound to waypoints', () => {
  const waypointOf = (s: MeshStore, name: string) => s.snapshot().services.get(`shop/${name}`)?.waypoint;

  it('the label on the Service binds it; others in the namespace stay L4', () => {
    const s = store(...base, gateway('waypoint'), svc('reviews', '198.18.124.200', { [USE_WAYPOINT_LABEL]: 'waypoint' }));
    assert.equal(waypointOf(s, 'reviews'), 'shop/waypoint');
    assert.equal(waypointOf(s, 'ratings'), undefined);
  });

  it('the label on the namespace binds every service in it; `none` on a Service opts it out; a Service label wins over the namespace', () => {
    const s = store(...base, ns('shop', { 'weft.dev/mesh': 'enabled', [USE_WAYPOINT_LABEL]: 'waypoint' }), svc('ratings', '198.18.124.201', { [USE_WAYPOINT_LABEL]: 'none' }), svc('details', '198.18.124.202', { [USE_WAYPOINT_LABEL]: 'other' }));
    assert.equal(waypointOf(s, 'reviews'), 'shop/waypoint');
    assert.equal(waypointOf(s, 'ratings'), undefined);
    assert.equal(waypointOf(s, 'details'), 'shop/other');
  });

  it('relabelling the namespace rebinds its services in the same commit, without any Service event', () => {
    const s = store(...base, gateway('waypoint'));
    assert.equal(waypointOf(s, 'reviews'), undefined);
    const before = s.snapshot().services.get('shop/reviews');
    apply(s, ns('shop', { 'weft.dev/mesh': 'enabled', [USE_WAYPOINT_LABEL]: 'waypoint' }));
    assert.equal(waypointOf(s, 'reviews'), 'shop/waypoint');
    assert.equal(waypointOf(s, 'ratings'), 'shop/waypoint');
    assert.notEqual(s.snapshot().services.get('shop/reviews'), before, 'a new Service object: holders see the change');
    apply(s, ns('shop', { 'weft.dev/mesh': 'enabled' }));
    assert.equal(waypointOf(s, 'reviews'), undefined, 'removing the label returns the service to L4 at once');
    apply(s, ns('shop', { 'weft.dev/mesh': 'enabled', [USE_WAYPOINT_LABEL]: 'waypoint' }));
    s.deleteNamespace('shop');
    s.commit();
    assert.equal(waypointOf(s, 'reviews'), undefined, 'a deleted namespace has no labels');
  });

  it('removing the label from the Service returns it to L4 (or to its namespace waypoint)', () => {
    const s = store(...base, svc('reviews', '198.18.124.200', { [USE_WAYPOINT_LABEL]: 'waypoint' }));
    apply(s, svc('reviews', '198.18.124.200'));
    assert.equal(waypointOf(s, 'reviews'), undefined);
  });

  it("the waypoint's own Service (selecting its pods by the gateway-name label) never binds to a waypoint", () => {
    const s = store(...base, ns('shop', { 'weft.dev/mesh': 'enabled', [USE_WAYPOINT_LABEL]: 'waypoint' }), svc('waypoint', '198.18.124.210', {}, { [GATEWAY_NAME_LABEL]: 'waypoint' }));
    assert.equal(waypointOf(s, 'waypoint'), undefined);
    assert.equal(waypointOf(s, 'reviews'), 'shop/waypoint');
  });
});

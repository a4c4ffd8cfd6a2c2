/**
 * Issue 12 point 2: Istio's names accepted as Weft's (agent/discovery/types.ts
 * ACCEPTED_USE_WAYPOINT_LABELS, ACCEPTED_WAYPOINT_GATEWAY_CLASSES): a Gateway of class
 * istio-waypoint is a waypoint, `istio.io/use-waypoint` binds a Service or a namespace, Weft's own
 * label wins when both are set; VirtualServices and DestinationRules are kept in MeshModel.others.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshStore, modelKind } from '../../agent/discovery/store.js';
import { ACCEPTED_USE_WAYPOINT_LABELS, ACCEPTED_WAYPOINT_GATEWAY_CLASSES, type ManifestObject } from '../../agent/discovery/types.js';

const o = (x: unknown) => x as ManifestObject;
const nsObj = (labels: Record<string, string>) => o({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'weft.dev/mesh': 'enabled', ...labels } } });
const svc = (name: string, vip: string, labels: Record<string, string> = {}) => o({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', labels }, spec: { clusterIP: vip, selector: { app: name }, ports: [{ port: 80 }] } });
const gw = (name: string, cls: string) => o({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name, namespace: 'shop' }, spec: { gatewayClassName: cls, listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } });

function model(...objects: ManifestObject[]) {
  const s = new MeshStore({ selectorEndpoints: true });
  for (const x of objects) s.upsertObject(x);
  s.commit();
  return s.snapshot();
}

describe("Istio's waypoint names", () => {
  it('lists exactly the accepted labels and classes', () => {
    assert.deepEqual(ACCEPTED_USE_WAYPOINT_LABELS, ['weft.dev/use-waypoint', 'istio.io/use-waypoint']);
    assert.deepEqual(ACCEPTED_WAYPOINT_GATEWAY_CLASSES, ['weft-waypoint', 'istio-waypoint']);
  });

  it('a Gateway of class istio-waypoint is a waypoint; another class is not', () => {
    const m = model(nsObj({}), gw('waypoint', 'istio-waypoint'), gw('other', 'istio'));
    assert.ok(m.waypoints.has('shop/waypoint'));
    assert.ok(!m.waypoints.has('shop/other'));
  });

  it('istio.io/use-waypoint binds a Service and a namespace; weft.dev/use-waypoint wins when both are set', () => {
    const m = model(
      nsObj({ 'istio.io/use-waypoint': 'ns-wp' }),
      gw('ns-wp', 'istio-waypoint'),
      gw('svc-wp', 'weft-waypoint'),
      gw('weft-wp', 'weft-waypoint'),
      svc('a', '198.18.156.10', { 'istio.io/use-waypoint': 'svc-wp' }),
      svc('b', '198.18.156.11'),
      svc('c', '198.18.156.12', { 'istio.io/use-waypoint': 'svc-wp', 'weft.dev/use-waypoint': 'weft-wp' }),
    );
    assert.equal(m.services.get('shop/a')?.waypoint, 'shop/svc-wp');
    assert.equal(m.services.get('shop/b')?.waypoint, 'shop/ns-wp');
    assert.equal(m.services.get('shop/c')?.waypoint, 'shop/weft-wp');
  });

  it('relabelling the namespace with istio.io/use-waypoint rebinds its services', () => {
    const s = new MeshStore({ selectorEndpoints: true });
    for (const x of [nsObj({}), gw('wp', 'istio-waypoint'), svc('a', '198.18.156.10')]) s.upsertObject(x);
    s.commit();
    assert.equal(s.snapshot().services.get('shop/a')?.waypoint, undefined);
    s.upsertObject(nsObj({ 'istio.io/use-waypoint': 'wp' }));
    s.commit();
    assert.equal(s.snapshot().services.get('shop/a')?.waypoint, 'shop/wp');
  });

  it('VirtualServices and DestinationRules are kept in the model for the waypoint routes', () => {
    assert.equal(modelKind({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService' }), 'other');
    assert.equal(modelKind({ apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule' }), 'other');
    const m = model(nsObj({}), o({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'r', namespace: 'shop' }, spec: { hosts: ['a'] } }));
    assert.ok(m.others.some((x) => (x as { kind?: string }).kind === 'VirtualService'));
  });
});

/**
 * `forwarded` on inbound HBONE (issue 11, point 1's trust, destination side): believed only from
 * a waypoint's pod running as that waypoint's identity; a forged one (any other identity, a
 * waypoint identity from another address, a pod that only carries the label) is ignored. Pure:
 * the model is built from manifests in memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel } from '../../agent/discovery/model.js';
import type { ManifestObject } from '../../agent/discovery/types.js';
import { parseForwardedFor, trustedForwardedClient } from '../../agent/proxy/inbound-hbone.js';

const pod = (name: string, ip: string, sa: string, labels: Record<string, string>): ManifestObject =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', labels }, spec: { nodeName: 'n1', serviceAccountName: sa, containers: [{ name: 'main' }] }, status: { podIP: ip, phase: 'Running' } }) as ManifestObject;
const gw = { 'gateway.networking.k8s.io/gateway-name': 'waypoint', 'weft.dev/mesh': 'disabled' };

const model = buildModel([
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'weft.dev/mesh': 'enabled' } } },
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'waypoint', namespace: 'shop' }, spec: { gatewayClassName: 'weft-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } } as ManifestObject,
  pod('waypoint-1', '198.18.126.10', 'waypoint', gw),
  // Carries the label, but runs as another account: not the waypoint's identity.
  pod('impostor', '198.18.126.11', 'impostor', { 'gateway.networking.k8s.io/gateway-name': 'waypoint' }),
  // Names a waypoint that does not exist.
  pod('orphan', '198.18.126.12', 'orphan', { 'gateway.networking.k8s.io/gateway-name': 'orphan' }),
  pod('client', '198.18.126.2', 'client', { app: 'client' }),
]);
const WAYPOINT = 'spiffe://cluster.local/ns/shop/sa/waypoint';
const header = 'for="198.18.126.2:40000"';

test('forwarded from the waypoint pod with the waypoint identity: the original client is believed', () => {
  assert.deepEqual(trustedForwardedClient(model, WAYPOINT, '198.18.126.10', header), { ip: '198.18.126.2', port: 40000 });
});

const forged: [string, string, string][] = [
  ['an ordinary meshed client forging the header', 'spiffe://cluster.local/ns/shop/sa/client', '198.18.126.2'],
  ['the waypoint identity from an address that is no waypoint pod', WAYPOINT, '198.18.126.2'],
  ['the waypoint identity from an unknown address', WAYPOINT, '203.0.113.9'],
  ['a pod labelled as the waypoint but running as another account', 'spiffe://cluster.local/ns/shop/sa/impostor', '198.18.126.11'],
  ['a pod labelled for a waypoint that does not exist', 'spiffe://cluster.local/ns/shop/sa/orphan', '198.18.126.12'],
  ['a waypoint pod presenting another identity', 'spiffe://cluster.local/ns/shop/sa/client', '198.18.126.10'],
];
for (const [name, identity, ip] of forged) {
  test(`forwarded ignored: ${name}`, () => {
    assert.equal(trustedForwardedClient(model, identity, ip, header), undefined);
  });
}

test('no header, or one without a usable for=, gives nothing even from the waypoint', () => {
  assert.equal(trustedForwardedClient(model, WAYPOINT, '198.18.126.10', undefined), undefined);
  for (const bad of ['for=unknown', 'for=_hidden', 'proto=http', 'for="1.2.3.4:99999"', 'for=', '']) assert.equal(trustedForwardedClient(model, WAYPOINT, '198.18.126.10', bad), undefined, bad);
});

test('RFC 7239 forms: bare and quoted, with and without port, IPv6 in brackets; the last element (the waypoint\'s own) counts', () => {
  assert.deepEqual(parseForwardedFor('for=198.18.126.2'), { ip: '198.18.126.2', port: 0 });
  assert.deepEqual(parseForwardedFor('For="198.18.126.2:5"'), { ip: '198.18.126.2', port: 5 });
  assert.deepEqual(parseForwardedFor('for="[2001:db8::1]:4711"'), { ip: '2001:db8::1', port: 4711 });
  assert.deepEqual(parseForwardedFor('for="::ffff:198.18.126.2"'), { ip: '198.18.126.2', port: 0 });
  assert.deepEqual(parseForwardedFor('for=203.0.113.1, for="198.18.126.2:9";proto=http'), { ip: '198.18.126.2', port: 9 });
});

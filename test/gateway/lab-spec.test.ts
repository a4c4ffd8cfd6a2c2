/**
 * The lab's hook for ingress Gateways (agent/lab/spec.ts with labSpecOptions): a Gateway of
 * class `weft` deploys a pod running `weft gateway` with the lab's discovery and CA flags, and a
 * LoadBalancer Service of its listener ports. Pure: no root, no lab started.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifestText } from '../../agent/discovery/manifest.js';
import { GATEWAY_NAME_LABEL } from '../../agent/discovery/types.js';
import { clusterSpec } from '../../agent/lab/spec.js';
import { labSpecOptions } from '../../agent/lab/waypoints.js';

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: public
  namespace: default
spec:
  gatewayClassName: weft
  listeners:
    - {name: http, port: 80, protocol: HTTP}
    - {name: https, port: 443, protocol: HTTPS, hostname: shop.example.com, tls: {certificateRefs: [{name: shop-cert}]}}
`;

test('a Gateway of class weft deploys one pod running weft gateway and a LoadBalancer Service of its ports', () => {
  const parsed = parseManifestText(GATEWAY, 'test.yaml');
  assert.deepEqual(parsed.errors, []);
  const built = clusterSpec(parsed.objects, () => 'test.yaml', labSpecOptions('ingrx'));
  assert.deepEqual(built.errors, []);
  const s = built.spec!;
  const d = s.deployments.get('default/public')!;
  assert.equal(d.pods.length, 1);
  const pod = s.pods.get(d.pods[0]!)!;
  assert.equal(pod.serviceAccount, 'public');
  assert.equal(pod.labels['weft.dev/mesh'], 'disabled');
  const c = pod.containers[0]!;
  assert.deepEqual(c.argv.slice(0, 4), ['weft', 'gateway', '--name=public', '--namespace=default']);
  assert.ok(c.argv.includes('--manifests=/run/weft/lab/ingrx/manifests'), c.argv.join(' '));
  assert.deepEqual([...c.tcpPorts].sort((a, b) => a - b), [80, 443, 15020, 15021]);
  const svc = s.services.get('default/public')!;
  assert.deepEqual(svc.selector, { [GATEWAY_NAME_LABEL]: 'public' });
  assert.deepEqual(svc.ports.map((p) => p.port), [80, 443]);
  // Without the lab's options (a plan) it is only an object.
  assert.equal(clusterSpec(parsed.objects, () => 'test.yaml').spec!.derived.size, 0);
});

/**
 * Deployments and waypoint Gateways as the lab expands them (agent/lab/spec.ts, deployments.ts,
 * agent/waypoint/objects.ts): pod names `<deployment>-<hash>-<suffix>` stable per template,
 * placement, scaling, validation, and what a waypoint Gateway deploys. Pure: no root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifestText } from '../../agent/discovery/manifest.js';
import { GATEWAY_NAME_LABEL } from '../../agent/discovery/types.js';
import { clusterSpec, type ClusterSpec } from '../../agent/lab/spec.js';
import { labSpecOptions } from '../../agent/lab/waypoints.js';
import { DEFAULT_LAB_DIR } from '../../agent/lab/paths.js';

function spec(yaml: string, lab?: string): ClusterSpec {
  const parsed = parseManifestText(yaml, 'test.yaml');
  assert.deepEqual(parsed.errors, []);
  const built = clusterSpec(parsed.objects, () => 'test.yaml', lab === undefined ? {} : labSpecOptions(lab));
  assert.deepEqual(built.errors, []);
  return built.spec!;
}

function errorsOf(yaml: string): string[] {
  const parsed = parseManifestText(yaml, 'test.yaml');
  assert.deepEqual(parsed.errors, []);
  return clusterSpec(parsed.objects, () => 'test.yaml').errors.map((e) => e.reason);
}

function deployment(o: { name: string; replicas?: number; node?: string; version?: string; selector?: string; script?: string }): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${o.name}
spec:
${o.replicas === undefined ? '' : `  replicas: ${o.replicas}\n`}  selector:
    matchLabels:
      app: ${o.selector ?? o.name}
  template:
    metadata:
      labels:
        app: ${o.name}
        version: ${o.version ?? 'v1'}
    spec:
${o.node === undefined ? '' : `      nodeName: ${o.node}\n`}      containers:
        - name: app
          command: [node, ${o.script ?? 'app/details.mjs'}]
          ports:
            - containerPort: 9080
`;
}

const POD_NAME = /^web-([bcdfghjklmnpqrstvwxz2456789]{10})-([bcdfghjklmnpqrstvwxz2456789]{5})$/;

test('a Deployment becomes replicas pods named <deployment>-<template hash>-<suffix>, labelled with the hash', () => {
  const s = spec(deployment({ name: 'web', replicas: 3, node: 'node-1' }));
  const d = s.deployments.get('default/web')!;
  assert.equal(d.replicas, 3);
  assert.equal(d.pods.length, 3);
  assert.equal(new Set(d.pods).size, 3);
  for (const key of d.pods) {
    const pod = s.pods.get(key)!;
    const m = POD_NAME.exec(pod.name);
    assert.ok(m, pod.name);
    assert.equal(m[1], d.hash);
    assert.deepEqual(pod.labels, { app: 'web', version: 'v1', 'pod-template-hash': d.hash });
    assert.equal(pod.node, 'node-1');
    assert.equal(pod.owner, 'default/web');
  }
  // The pods are published to the agents as Pod objects; the Deployment is an object of its own.
  const published = [...s.derived.values()].filter((o) => o.kind === 'Pod').map((o) => o.metadata.name).sort();
  assert.deepEqual(published, d.pods.map((k) => k.split('/')[1]).sort());
  assert.ok([...s.objects.values()].some((o) => o.kind === 'Deployment'));
  assert.ok(![...s.objects.values()].some((o) => o.kind === 'Pod'));
});

test('names are stable for one template; a changed template (labels too) gives new ones; scaling keeps the first ones', () => {
  const a = spec(deployment({ name: 'web', replicas: 2, node: 'node-1' })).deployments.get('default/web')!;
  const again = spec(deployment({ name: 'web', replicas: 2, node: 'node-1' })).deployments.get('default/web')!;
  assert.deepEqual(again.pods, a.pods);
  const changed = spec(deployment({ name: 'web', replicas: 2, node: 'node-1', script: 'app/ratings.mjs' })).deployments.get('default/web')!;
  assert.notEqual(changed.hash, a.hash);
  assert.equal(changed.pods.filter((p) => a.pods.includes(p)).length, 0);
  const relabelled = spec(deployment({ name: 'web', replicas: 2, node: 'node-1', version: 'v2', selector: 'web' })).deployments.get('default/web')!;
  assert.notEqual(relabelled.hash, a.hash);
  const up = spec(deployment({ name: 'web', replicas: 4, node: 'node-1' })).deployments.get('default/web')!;
  assert.equal(up.hash, a.hash, 'replicas are not part of the template');
  assert.deepEqual(up.pods.slice(0, 2), a.pods);
  const down = spec(deployment({ name: 'web', replicas: 1, node: 'node-1' })).deployments.get('default/web')!;
  assert.deepEqual(down.pods, a.pods.slice(0, 1));
  const none = spec(deployment({ name: 'web', replicas: 0, node: 'node-1' }));
  assert.deepEqual(none.deployments.get('default/web')!.pods, []);
  assert.equal(none.pods.size, 0);
});

test('without nodeName the replicas spread over the nodes the manifests name (node-1 when none)', () => {
  const pods = `apiVersion: v1
kind: Pod
metadata:
  name: a
spec:
  nodeName: node-1
  containers: [{name: a, command: [node, app/idle.mjs]}]
---
apiVersion: v1
kind: Pod
metadata:
  name: b
spec:
  nodeName: node-2
  containers: [{name: b, command: [node, app/idle.mjs]}]
---
`;
  const s = spec(pods + deployment({ name: 'web', replicas: 4 }));
  const nodes = s.deployments.get('default/web')!.pods.map((k) => s.pods.get(k)!.node);
  assert.deepEqual([...new Set(nodes)].sort(), ['node-1', 'node-2']);
  assert.equal(nodes.filter((n) => n === 'node-1').length, 2);
  const alone = spec(deployment({ name: 'web', replicas: 2 }));
  assert.deepEqual(alone.nodes, ['node-1']);
});

test('a Deployment the lab cannot run is refused by field, with the file', () => {
  assert.match(errorsOf(deployment({ name: 'web', selector: 'other' })).join('\n'), /Deployment default\/web: spec\.template\.metadata\.labels: must match spec\.selector \(app=other is missing\)/);
  assert.match(errorsOf(deployment({ name: 'web', replicas: -1 })).join('\n'), /spec\.replicas: must be a whole number >= 0/);
  assert.match(
    errorsOf('apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers: [{name: web, image: nginx}]\n').join('\n'),
    /spec\.containers\[0\]\.command: required in the lab/,
  );
  assert.match(
    errorsOf('apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchExpressions: [{key: app, operator: In, values: [web]}]\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers: [{name: web, command: [node]}]\n').join('\n'),
    /matchExpressions: not supported by the lab/,
  );
});

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: reviews-wp
  namespace: default
spec:
  gatewayClassName: weft-waypoint
  listeners:
    - {name: mesh, port: 15008, protocol: HBONE}
`;

test('a waypoint Gateway deploys its ServiceAccount, Deployment (1 pod running weft waypoint) and Service', () => {
  const s = spec(GATEWAY, 'labdx');
  const kinds = [...s.derived.values()].map((o) => `${o.kind}/${o.metadata.name}`).sort();
  assert.equal(kinds.filter((k) => !k.startsWith('Pod/')).join(','), 'Deployment/reviews-wp,Service/reviews-wp,ServiceAccount/reviews-wp');
  const d = s.deployments.get('default/reviews-wp')!;
  assert.equal(d.gateway, 'default/reviews-wp');
  assert.equal(d.pods.length, 1);
  const pod = s.pods.get(d.pods[0]!)!;
  assert.equal(pod.serviceAccount, 'reviews-wp');
  assert.equal(pod.labels[GATEWAY_NAME_LABEL], 'reviews-wp');
  assert.equal(pod.labels['weft.dev/mesh'], 'disabled');
  const c = pod.containers[0]!;
  assert.deepEqual(c.argv.slice(0, 4), ['weft', 'waypoint', '--name=reviews-wp', '--namespace=default']);
  assert.ok(c.argv.includes('--manifests=/run/weft/lab/labdx/manifests'), c.argv.join(' '));
  assert.ok(c.argv.some((a) => a.startsWith('--ca-token-file=') && a.endsWith('token-$(NODE_NAME)')), c.argv.join(' '));
  assert.deepEqual(c.fieldEnv, { NODE_NAME: 'spec.nodeName' });
  assert.deepEqual([...c.tcpPorts].sort(), [15008, 15020, 15021]);
  const svc = s.services.get('default/reviews-wp')!;
  assert.deepEqual(svc.selector, { [GATEWAY_NAME_LABEL]: 'reviews-wp' });
  assert.deepEqual(svc.ports.map((p) => [p.name, p.port]), [['mesh', 15008]]);
  // Without the lab's options (a plan), a Gateway is only an object.
  assert.equal(spec(GATEWAY).derived.size, 0);
  // Istio's waypoint class (what `istioctl waypoint apply` writes) deploys the same; another class nothing.
  assert.equal(spec(GATEWAY.replace('weft-waypoint', 'istio-waypoint'), 'labdx').deployments.get('default/reviews-wp')?.pods.length, 1);
  assert.equal(spec(GATEWAY.replace('weft-waypoint', 'istio'), 'labdx').derived.size, 0);
});

test('bookinfo: versions are Deployments pinned to their nodes, with a Service per reviews version', () => {
  const text = readdirSync(DEFAULT_LAB_DIR).filter((f) => f.endsWith('.yaml')).map((f) => readFileSync(join(DEFAULT_LAB_DIR, f), 'utf8')).join('\n---\n');
  const s = spec(text);
  const byDeployment = [...s.deployments.values()].map((d) => [d.name, s.pods.get(d.pods[0]!)!.node]).sort();
  assert.deepEqual(byDeployment, [['details-v1', 'node-2'], ['productpage-v1', 'node-1'], ['ratings-v1', 'node-2'], ['reviews-v1', 'node-1'], ['reviews-v2', 'node-1'], ['reviews-v3', 'node-1']]);
  for (const v of ['v1', 'v2', 'v3']) assert.deepEqual(s.services.get(`default/reviews-${v}`)!.selector, { app: 'reviews', version: v });
  assert.equal(s.pods.get('outside/client')!.node, 'node-1');
});

test("a Deployment's pod on another node keeps pod-template-hash, so Istio's workload name is the Deployment's", async () => {
  const { podFacts } = await import('../../agent/discovery/facts.js');
  const { istioWorkloadName } = await import('../../agent/telemetry/labels.js');
  const s = spec(deployment({ name: 'web', node: 'node-1' }));
  const pod = [...s.derived.values()].find((o) => o.kind === 'Pod')!;
  // Kubernetes mode strips a remote pod's labels to what other nodes need (facts.ts).
  const f = podFacts({ ...pod, status: { podIP: '198.18.144.9', phase: 'Running' } }, { stripLabels: true })!;
  assert.equal(istioWorkloadName({ name: f.name, labels: f.labels }), 'web');
});

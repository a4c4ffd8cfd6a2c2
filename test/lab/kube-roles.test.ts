// The Kubernetes-mode lab's control-plane roles, the parts that are pure or need no root: the
// EndpointSlice controller's slices, kube-proxy's view of them, the kubelet's $(VAR) expansion
// and probe thresholds, its pod-bound projected tokens, and the CNI chain as a runtime calls it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type V1EndpointSlice, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { desiredSlices } from '../../agent/lab/endpointslice-controller.js';
import { serviceViewsFromApi } from '../../agent/lab/kube-proxy.js';
import { expand, requestBoundToken, tokenRefreshDelayMs } from '../../agent/lab/kubelet.js';
import { TokenReviewAuthenticator } from '../../agent/identity/token-review.js';
import { startTestApi } from './kube-api-helpers.js';
import { applyObjects } from '../../agent/lab/kube-mode.js';
import type { ManifestObject } from '../../agent/discovery/types.js';
import { ProbeTracker } from '../../agent/lab/kubelet-probes.js';
import { runCniChain } from '../../agent/lab/cni-chain.js';

function pod(name: string, o: { ip?: string; ready?: boolean; terminating?: boolean; port?: number; ns?: string; labels?: Record<string, string> } = {}): V1Pod {
  return {
    metadata: { name, namespace: o.ns ?? 'default', uid: `uid-${name}`, labels: o.labels ?? { app: 'web' }, ...(o.terminating ? { deletionTimestamp: new Date() } : {}) },
    spec: { nodeName: 'node-1', containers: [{ name: 'main', ports: [{ name: 'http', containerPort: o.port ?? 8080 }] }] },
    status: { phase: 'Running', ...(o.ip ? { podIP: o.ip } : {}), conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

const web: V1Service = {
  metadata: { name: 'web', namespace: 'default', uid: 'svc-uid' },
  spec: { selector: { app: 'web' }, clusterIP: '198.19.128.20', ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
};

test('slices: ready, not-ready and terminating pods with their conditions; named ports resolved per pod; others left out', () => {
  const slices = desiredSlices(web, [
    pod('a', { ip: '198.18.1.2' }),
    pod('b', { ip: '198.18.1.3', ready: false }),
    pod('c', { ip: '198.18.1.4', terminating: true }),
    pod('d', { ip: '198.18.1.5', port: 9090 }),
    pod('no-ip'),
    pod('other-ns', { ip: '198.18.1.6', ns: 'other' }),
    pod('other-app', { ip: '198.18.1.7', labels: { app: 'db' } }),
  ]);
  const all = [...slices.values()];
  assert.equal(all.length, 2, 'port 9090 and port 8080 endpoints go into different slices');
  const on8080 = all.find((s) => s.ports?.[0]?.port === 8080)!;
  assert.deepEqual(on8080.metadata?.labels, { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' });
  assert.equal(on8080.metadata?.ownerReferences?.[0]?.uid, 'svc-uid');
  assert.deepEqual(on8080.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  assert.deepEqual(
    on8080.endpoints.map((e) => [e.targetRef?.name, e.addresses[0], e.nodeName, e.conditions]),
    [
      ['a', '198.18.1.2', 'node-1', { ready: true, serving: true, terminating: false }],
      ['b', '198.18.1.3', 'node-1', { ready: false, serving: false, terminating: false }],
      ['c', '198.18.1.4', 'node-1', { ready: false, serving: true, terminating: true }],
    ],
  );
  assert.equal(all.find((s) => s.ports?.[0]?.port === 9090)?.endpoints[0]?.targetRef?.name, 'd');
  assert.equal(desiredSlices({ ...web, spec: { ...web.spec, selector: undefined } }, [pod('a', { ip: '198.18.1.2' })]).size, 0, 'selectorless: left to its owner');
});

test('kube-proxy view: only ready endpoints get traffic, ports matched by name; headless services have no VIP', () => {
  const slice: V1EndpointSlice = {
    metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: [
      { addresses: ['198.18.1.2'], conditions: { ready: true }, targetRef: { name: 'a' } },
      { addresses: ['198.18.1.3'], conditions: { ready: false }, targetRef: { name: 'b' } },
      { addresses: ['198.18.1.4'], conditions: { ready: false, serving: true, terminating: true }, targetRef: { name: 'c' } },
      { addresses: ['198.18.1.5'], targetRef: { name: 'unset-means-ready' } },
    ],
  };
  const headless: V1Service = { metadata: { name: 'db', namespace: 'default' }, spec: { clusterIP: 'None', ports: [{ port: 5432 }] } };
  const views = serviceViewsFromApi([web, headless], [slice]);
  const w = views.find((v) => v.name === 'web')!;
  assert.equal(w.clusterIP, '198.19.128.20');
  assert.deepEqual(w.ports[0]!.endpoints, [
    { pod: 'a', ip: '198.18.1.2', targetPort: 8080 },
    { pod: 'unset-means-ready', ip: '198.18.1.5', targetPort: 8080 },
  ]);
  assert.equal(views.find((v) => v.name === 'db')!.clusterIP, undefined);
});

test('$(VAR) expansion as Kubernetes does it for command, args and env', () => {
  const env = { NODE_NAME: 'node-1', HOST_IP: '198.19.0.1' };
  assert.equal(expand('--node=$(NODE_NAME)', env), '--node=node-1');
  assert.equal(expand('$(HOST_IP):$(MISSING)', env), '198.19.0.1:$(MISSING)');
  assert.equal(expand('$$(NODE_NAME)', env), '$(NODE_NAME)');
});

test('probe thresholds: readiness needs successThreshold successes, liveness fails after failureThreshold failures', () => {
  const ready = new ProbeTracker({ successThreshold: 2, failureThreshold: 2 }, false);
  assert.equal(ready.record({ ok: true }), false);
  assert.equal(ready.record({ ok: true }), true);
  assert.equal(ready.state, true);
  const live = new ProbeTracker({ failureThreshold: 3 }, true);
  live.record({ ok: false, reason: 'refused' });
  live.record({ ok: false, reason: 'refused' });
  assert.equal(live.state, true, 'two failures of three');
  live.record({ ok: true });
  live.record({ ok: false, reason: 'refused' });
  live.record({ ok: false, reason: 'refused' });
  assert.equal(live.state, true, 'a success resets the count');
  assert.equal(live.record({ ok: false, reason: 'refused' }), true);
  assert.equal(live.state, false);
});

test('the CNI chain: plugins in order for ADD with the previous result, in reverse for DEL, with the runtime\'s environment; a failing plugin fails the ADD with its message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cni-chain-'));
  try {
    const conf = join(dir, 'net.d');
    const bin = join(dir, 'bin');
    mkdirSync(conf);
    mkdirSync(bin);
    const record = join(dir, 'calls');
    // Each plugin logs its name, command and environment, and passes its input's prevResult on with its own mark.
    for (const name of ['first', 'second']) {
      writeFileSync(
        join(bin, name),
        `#!/bin/sh\ninput=$(cat)\necho "${name} $CNI_COMMAND $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME $CNI_ARGS" >> ${record}\necho "$input" > ${dir}/${name}-$CNI_COMMAND.json\nnode -e 'const i = JSON.parse(process.argv[1]); const r = i.prevResult; r.seen = [...(r.seen ?? []), "${name}"]; process.stdout.write(JSON.stringify(r))' "$input"\n`,
      );
      chmodSync(join(bin, name), 0o755);
    }
    writeFileSync(join(conf, '10-test.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', plugins: [{ type: 'first', x: 1 }, { type: 'second' }] }));
    const p = { namespace: 'default', name: 'web', uid: 'u1', containerId: 'c1', netnsPath: '/run/netns/x', ip: '198.18.1.9' };
    const result = await runCniChain({ confDir: conf, binDir: bin }, 'ADD', p);
    assert.deepEqual(result?.['seen'], ['first', 'second']);
    const firstIn = JSON.parse(readFileSync(join(dir, 'first-ADD.json'), 'utf8')) as { name: string; x: number; prevResult: { ips: { address: string }[] } };
    assert.equal(firstIn.name, 'k8s-pod-network');
    assert.equal(firstIn.x, 1);
    assert.equal(firstIn.prevResult.ips[0]!.address, '198.18.1.9/32', 'the lab\'s wiring is the first prevResult');
    await runCniChain({ confDir: conf, binDir: bin }, 'DEL', p, result);
    const calls = readFileSync(record, 'utf8').trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' '));
    assert.deepEqual(calls, ['first ADD', 'second ADD', 'second DEL', 'first DEL']);
    assert.match(readFileSync(record, 'utf8'), /first ADD c1 \/run\/netns\/x eth0 IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;/);

    writeFileSync(join(bin, 'second'), '#!/bin/sh\ncat > /dev/null\necho \'{"cniVersion":"1.0.0","code":101,"msg":"no agent answered"}\'\nexit 1\n');
    await assert.rejects(runCniChain({ confDir: conf, binDir: bin }, 'ADD', p), /second \(ADD\) for pod default\/web failed \(exit 1\): no agent answered/);
    assert.equal(await runCniChain({ confDir: join(dir, 'none'), binDir: bin }, 'ADD', p), undefined, 'no conflist: no chain');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the kubelet\'s projected token: TokenRequest bound to the pod with the volume\'s audience, that the CA\'s TokenReview places on the pod\'s node; renewed at 80 % of its life', async () => {
  const api = await startTestApi();
  try {
    const core = api.kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'weft-system' } } });
    await core.createNamespacedServiceAccount({ namespace: 'weft-system', body: { metadata: { name: 'weft-agent' } } });
    const created = await core.createNamespacedPod({ namespace: 'weft-system', body: { metadata: { name: 'weft-agent-node-2' }, spec: { nodeName: 'node-2', serviceAccountName: 'weft-agent', containers: [{ name: 'agent', image: 'x' }] } } });
    const before = Date.now();
    const { token, expiresAtMs } = await requestBoundToken(core, { namespace: 'weft-system', serviceAccount: 'weft-agent', pod: { name: 'weft-agent-node-2', uid: created.metadata!.uid! }, audience: 'weft-ca', expirationSeconds: 3600 });
    assert.ok(Math.abs(expiresAtMs - (before + 3600_000)) < 5_000, 'expires in an hour');
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { aud: string[]; 'kubernetes.io': { pod: { name: string } } };
    assert.deepEqual(claims.aud, ['weft-ca']);
    assert.equal(claims['kubernetes.io'].pod.name, 'weft-agent-node-2');
    const authenticator = new TokenReviewAuthenticator({ kubeConfig: api.kc, agentServiceAccount: 'system:serviceaccount:weft-system:weft-agent' });
    assert.equal(await authenticator.authenticate(token), 'node-2', 'the CA places the agent on its pod\'s node');
    assert.equal(tokenRefreshDelayMs(before + 3600_000, before), 2880_000);
    assert.equal(tokenRefreshDelayMs(before - 1, before), 1_000, 'an expired token is renewed at once (after a second)');
  } finally {
    await api.close();
  }
});

test('weft lab apply in Kubernetes mode: create, unchanged, configured; labels dropped from the manifest go, labels set by others and the API server stay', async () => {
  const api = await startTestApi();
  try {
    const core = api.kc.makeApiClient(CoreV1Api);
    const ns = (labels: Record<string, string>): ManifestObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels } });
    const svc: ManifestObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } } as ManifestObject;
    assert.deepEqual(await applyObjects(api.kc, [svc, ns({ 'weft.dev/mesh': 'enabled' })]), { created: ['namespace/shop', 'service/shop/web'], configured: [], unchanged: [], deleted: [] }, 'the namespace first');
    assert.deepEqual((await applyObjects(api.kc, [ns({ 'weft.dev/mesh': 'enabled' }), svc])).unchanged, ['namespace/shop', 'service/shop/web'], 'server defaults (ClusterIP, its labels) are no change');
    const current = await core.readNamespace({ name: 'shop' });
    current.metadata!.labels = { ...current.metadata!.labels, team: 'a' };
    await core.replaceNamespace({ name: 'shop', body: current });
    assert.deepEqual((await applyObjects(api.kc, [ns({})])).configured, ['namespace/shop']);
    const labels = (await core.readNamespace({ name: 'shop' })).metadata?.labels ?? {};
    assert.equal(labels['weft.dev/mesh'], undefined, 'dropped from the manifest: removed');
    assert.equal(labels['team'], 'a', 'set by someone else: kept');
  } finally {
    await api.close();
  }
});

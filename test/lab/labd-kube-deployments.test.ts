// Deployments and waypoint Gateways in the Kubernetes-mode lab (root): the lab's controllers run
// a Deployment's replicas (pods <deployment>-<hash>-<suffix>, owned by it), scale them, replace
// them new-first on a template change, and the API server's garbage collector removes them with
// the Deployment; a Gateway of class weft-waypoint gets its ServiceAccount, Deployment and Service
// (owned by the Gateway) and a running pod (a stand-in for `weft waypoint` that records its argv).
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labApply, labDelete, labDown, labStatus, labUp } from '../../agent/lab/index.js';
import { kubePaths } from '../../agent/lab/kube-paths.js';
import { waitFor } from '../helpers/wait.js';
import { APP, manifestDir, podYaml } from './helpers.js';

const LAB = 'labdk1';

function deployment(o: { replicas: number; version?: string }): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: ${o.replicas}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          command: [node, ${join(APP, 'details.mjs')}]
          env:
            - {name: SERVICE_VERSION, value: "${o.version ?? 'v1'}"}
          ports:
            - {name: http, containerPort: 9080}
          readinessProbe:
            httpGet: {path: /health, port: 9080}
            periodSeconds: 1
`;
}

const STAND_IN = `import http from 'node:http';
process.stdout.write('ARGV ' + JSON.stringify(process.argv.slice(2)) + '\\n');
for (const port of [15008, 15020, 15021]) http.createServer((q, s) => s.end('ok')).listen(port, '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
`;

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: wp
  namespace: default
spec:
  gatewayClassName: weft-waypoint
  listeners:
    - {name: mesh, port: 15008, protocol: HBONE}
`;

interface Pod {
  metadata: { name: string; uid: string; ownerReferences?: { kind: string; name: string }[]; deletionTimestamp?: string };
  spec: { nodeName: string };
  status: { phase?: string };
}

describe('lab Deployments, Kubernetes mode', () => {
  const files = manifestDir({
    'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n',
    // Two nodes (the pods name them); the Deployment's replicas spread over them.
    'client.yaml': podYaml({ name: 'client', node: 'node-2', script: 'idle.mjs' }) + '---\n' + podYaml({ name: 'idle', node: 'node-1', script: 'idle.mjs' }),
    'web.yaml': deployment({ replicas: 2 }),
  });
  const changes = manifestDir({ 'stand-in.mjs': STAND_IN });
  const write = (name: string, text: string): string => {
    const path = join(changes.dir, name);
    writeFileSync(path, text);
    return path;
  };
  const kubectl = (...args: string[]): string => execFileSync('kubectl', ['--kubeconfig', kubePaths(LAB).adminKubeconfig, ...args], { encoding: 'utf8', timeout: 30_000 });
  const pods = (selector: string): Pod[] => (JSON.parse(kubectl('get', 'pods', '-n', 'default', '-l', selector, '-o', 'json')) as { items: Pod[] }).items;

  before(async () => {
    await labDown({ name: LAB });
    process.env['WEFT_LAB_WAYPOINT_CLI'] = `node ${join(changes.dir, 'stand-in.mjs')}`;
    await labUp({ name: LAB, dir: files.dir, kubernetes: true, startAgents: false, prometheus: false });
  });

  after(async () => {
    delete process.env['WEFT_LAB_WAYPOINT_CLI'];
    await labDown({ name: LAB });
    files.remove();
    changes.remove();
  });

  it('up waits for the rollout: the replicas run, named and owned as Kubernetes does, spread over the nodes', async () => {
    const web = pods('app=web');
    assert.equal(web.length, 2);
    for (const p of web) {
      assert.match(p.metadata.name, /^web-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
      assert.equal(p.status.phase, 'Running');
      assert.deepEqual(p.metadata.ownerReferences?.map((r) => [r.kind, r.name]), [['Deployment', 'web']]);
    }
    assert.deepEqual(web.map((p) => p.spec.nodeName).sort(), ['node-1', 'node-2'], 'one replica per node');
    const d = JSON.parse(kubectl('get', 'deployment', 'web', '-n', 'default', '-o', 'json')) as { status: { replicas: number; readyReplicas: number; updatedReplicas: number } };
    assert.deepEqual([d.status.replicas, d.status.readyReplicas, d.status.updatedReplicas], [2, 2, 2]);
    const status = await labStatus(LAB);
    assert.deepEqual(status.deployments.map((x) => [x.name, x.ready, x.replicas, x.pods.length]), [['web', 2, 2, 2]]);
  });

  it('scales up keeping the pods there are, and a changed template replaces them new first', async () => {
    const two = pods('app=web');
    await labApply({ name: LAB, file: write('web.yaml', deployment({ replicas: 3 })) });
    const three = pods('app=web').filter((p) => p.metadata.deletionTimestamp === undefined);
    assert.equal(three.length, 3);
    for (const p of two) assert.ok(three.some((x) => x.metadata.uid === p.metadata.uid), `${p.metadata.name} kept`);
    await labApply({ name: LAB, file: write('web.yaml', deployment({ replicas: 3, version: 'v2' })) });
    const now = pods('app=web');
    assert.equal(now.length, 3, 'lab apply waited until the old pods were gone');
    assert.equal(now.filter((p) => three.some((x) => x.metadata.name === p.metadata.name)).length, 0);
    // The controller's log: every new pod created before the first old one was deleted.
    const log = readFileSync(kubePaths(LAB).controllersLog, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; pod?: string });
    const order = log.filter((l) => l.msg === 'pod created' || l.msg === 'pod deleted').map((l) => `${l.msg === 'pod created' ? '+' : '-'}${l.pod}`);
    const lastCreate = Math.max(...now.map((p) => order.indexOf(`+${p.metadata.name}`)));
    const firstDelete = Math.min(...three.map((p) => order.indexOf(`-${p.metadata.name}`)));
    assert.ok(lastCreate >= 0 && firstDelete >= 0 && lastCreate < firstDelete, order.join(' '));
  });

  it('a waypoint Gateway gets its ServiceAccount, Deployment, Service and a running pod; deleting the Gateway removes them', async () => {
    // The lab's API server serves the Gateway API's standard CRDs from the start.
    assert.match(kubectl('api-resources', '--api-group=gateway.networking.k8s.io'), /gateways/);
    const gw = write('gateway.yaml', GATEWAY);
    await labApply({ name: LAB, file: gw });
    // apply waits for the waypoint as for a Deployment it was given.
    assert.ok(pods('gateway.networking.k8s.io/gateway-name=wp').some((p) => p.status.phase === 'Running'), 'the waypoint pod runs once apply returns');
    for (const kind of ['serviceaccount', 'deployment', 'service']) {
      const o = JSON.parse(kubectl('get', kind, 'wp', '-n', 'default', '-o', 'json')) as { metadata: { ownerReferences?: { kind: string; name: string }[] } };
      assert.deepEqual(o.metadata.ownerReferences?.map((r) => [r.kind, r.name]), [['Gateway', 'wp']], kind);
    }
    const pod = pods('gateway.networking.k8s.io/gateway-name=wp')[0]!;
    const log = readFileSync(join('/run/weft/lab', LAB, 'logs', `pod-default-${pod.metadata.name}.log`), 'utf8');
    const argv = JSON.parse(log.split('\n').find((l) => l.startsWith('ARGV '))!.slice(5)) as string[];
    assert.deepEqual(argv.slice(0, 3), ['waypoint', '--name=wp', '--namespace=default']);
    // The waypoint reads the API as the lab's weft-waypoint account (the shipped ClusterRole), not as the agents.
    assert.ok(argv.includes(`--kubeconfig=${kubePaths(LAB).waypointKubeconfig}`), argv.join(' '));
    assert.ok(argv.some((a) => a === `--ca-token-file=${join(kubePaths(LAB).podsDir, `weft-system_weft-agent-${pod.spec.nodeName}`, 'ca-token', 'token')}`), `its node's agent token: ${argv.join(' ')}`);
    const status = await labStatus(LAB);
    assert.equal(status.deployments.find((d) => d.name === 'wp')?.gateway, 'default/wp');

    await labDelete({ name: LAB, file: gw });
    await waitFor(() => pods('gateway.networking.k8s.io/gateway-name=wp').length === 0, 'the waypoint pod is gone', 30_000);
    for (const kind of ['serviceaccount', 'deployment', 'service']) assert.equal(kubectl('get', kind, '-n', 'default', '--field-selector=metadata.name=wp', '-o', 'name').trim(), '', kind);
  });

  it('deleting the Deployment deletes its pods', async () => {
    await labDelete({ name: LAB, file: write('web.yaml', deployment({ replicas: 3, version: 'v2' })) });
    await waitFor(() => pods('app=web').length === 0, 'the pods of web are gone', 30_000);
  });
});

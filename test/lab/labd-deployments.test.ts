// Deployments in the local lab (root): replicas as pods named <deployment>-<hash>-<suffix>,
// scaling up and down keeps the pods that stay, a changed template starts the new pods before it
// removes the old ones, deleting the Deployment deletes its pods; and a waypoint Gateway gets its
// ServiceAccount, Deployment and Service, with a pod started by the lab (a stand-in for
// `weft waypoint` that records its argv), removed with the Gateway.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { labApply, labDelete, labDown, labExec, labPaths, labStatus, labUp } from '../../agent/lab/index.js';
import { labCaPaths } from '../../agent/lab/ca.js';
import { APP, labNetns, manifestDir, podYaml } from './helpers.js';

const LAB = 'labd1';

function deployment(o: { replicas: number; greeting?: string }): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
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
            - {name: SERVICE_VERSION, value: "${o.greeting ?? 'v1'}"}
          ports:
            - {name: http, containerPort: 9080}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 9080}
`;
}

/** Listens where a waypoint does and prints its argv, so the test sees what the lab ran. */
const STAND_IN = `import net from 'node:net';
import { readFileSync } from 'node:fs';
process.stdout.write('ARGV ' + JSON.stringify(process.argv.slice(2)) + '\\n');
// What the CA would see of this pod when it asks for its certificate, before it listens.
const dir = process.argv.find((a) => a.startsWith('--manifests=')).slice(12);
let own = '';
try { own = readFileSync(dir + '/pod.' + process.env.POD_NAMESPACE + '.' + process.env.POD_NAME + '.yaml', 'utf8'); } catch {}
process.stdout.write('PUBLISHED ' + (/phase: (\\w+)/.exec(own)?.[1] ?? 'no') + ' ' + (/podIP: (\\S+)/.exec(own)?.[1] ?? 'no') + '\\n');
for (const port of [15008, 15020, 15021]) net.createServer((s) => s.end()).listen(port, '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
`;

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: wp
spec:
  gatewayClassName: weft-waypoint
  listeners:
    - {name: mesh, port: 15008, protocol: HBONE}
`;

describe('lab Deployments', () => {
  const files = manifestDir({
    'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n',
    'client.yaml': podYaml({ name: 'client', node: 'node-1', script: 'idle.mjs' }),
    'web.yaml': deployment({ replicas: 2 }),
  });
  const changes = manifestDir({ 'stand-in.mjs': STAND_IN });
  const write = (name: string, text: string): string => {
    const path = join(changes.dir, name);
    writeFileSync(path, text);
    return path;
  };
  const events: { msg: string; pod?: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void events.push(JSON.parse(line) as { msg: string; pod?: string }) });
  const webPods = async (): Promise<{ name: string; pid: number | undefined; running: boolean }[]> =>
    (await labStatus(LAB)).pods.filter((p) => p.name.startsWith('web-')).map((p) => ({ name: p.name, pid: p.pid, running: p.running }));
  const get = async (): Promise<{ pod: string; version: string }> => {
    const r = await labExec({ name: LAB, pod: 'client', command: ['node', '-e', "require('http').get('http://web:9080/details/1', (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => process.stdout.write(b)); })"], timeoutMs: 10_000 });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { pod: string; version: string };
  };

  before(async () => {
    await labDown({ name: LAB });
    process.env['WEFT_LAB_WAYPOINT_CLI'] = `node ${join(changes.dir, 'stand-in.mjs')}`;
    await labUp({ name: LAB, dir: files.dir, startAgents: false });
  });

  after(async () => {
    delete process.env['WEFT_LAB_WAYPOINT_CLI'];
    await labDown({ name: LAB });
    files.remove();
    changes.remove();
  });

  it('runs the replicas, named as Kubernetes names them, and shows the Deployment in status', async () => {
    const pods = await webPods();
    assert.equal(pods.length, 2);
    for (const p of pods) assert.match(p.name, /^web-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    assert.ok(pods.every((p) => p.running));
    const status = await labStatus(LAB);
    const d = status.deployments.find((x) => x.name === 'web')!;
    assert.deepEqual({ replicas: d.replicas, ready: d.ready, pods: [...d.pods].sort() }, { replicas: 2, ready: 2, pods: pods.map((p) => p.name).sort() });
    assert.ok(pods.some((p) => p.name.includes(d.templateHash)));
    assert.deepEqual(status.services.find((s) => s.name === 'web')!.endpoints.map((e) => e.pod).sort(), pods.map((p) => p.name).sort());
    // The agents see the pods as Pod objects with their owner and hash label.
    const file = join(labPaths(LAB).manifestsDir, `pod.default.${pods[0]!.name}.yaml`);
    assert.match(readFileSync(file, 'utf8'), /pod-template-hash: [a-z0-9]{10}/);
    assert.match(readFileSync(file, 'utf8'), /kind: Deployment/);
  });

  it('scales up and down, keeping the pods that stay', async () => {
    const before2 = await webPods();
    await labApply({ name: LAB, file: write('web.yaml', deployment({ replicas: 3 })), logger });
    const three = await webPods();
    assert.equal(three.length, 3);
    for (const p of before2) assert.equal(three.find((x) => x.name === p.name)?.pid, p.pid, `${p.name} kept running`);
    await labApply({ name: LAB, file: write('web.yaml', deployment({ replicas: 1 })), logger });
    const one = await webPods();
    assert.equal(one.length, 1);
    assert.equal(one[0]!.pid, three.find((x) => x.name === one[0]!.name)?.pid);
    assert.equal(labNetns(LAB).filter((n) => n.includes('-web-')).length, 1, 'the removed replicas are gone with their namespaces');
  });

  it('a changed template starts the new pods first, then removes the old ones', async () => {
    await labApply({ name: LAB, file: write('web.yaml', deployment({ replicas: 2 })), logger });
    const old = (await webPods()).map((p) => p.name);
    events.length = 0;
    const summary = await labApply({ name: LAB, file: write('web.yaml', deployment({ replicas: 2, greeting: 'v2' })), logger });
    assert.deepEqual(summary.configured, ['deployment/default/web']);
    const now = (await webPods()).map((p) => p.name);
    assert.equal(now.length, 2);
    assert.equal(now.filter((n) => old.includes(n)).length, 0, 'all pods are new');
    const order = events.filter((e) => e.msg === 'pod running' || e.msg === 'pod removed').map((e) => `${e.msg === 'pod running' ? '+' : '-'}${e.pod}`);
    const lastStart = Math.max(...now.map((n) => order.indexOf(`+default/${n}`)));
    const firstStop = Math.min(...old.map((n) => order.indexOf(`-default/${n}`)));
    assert.ok(lastStart >= 0 && firstStop >= 0 && lastStart < firstStop, order.join(' '));
    assert.equal((await get()).version, 'v2');
  });

  it('a waypoint Gateway gets its pod, Service and ServiceAccount; removing the Gateway removes them', async () => {
    const file = write('gateway.yaml', GATEWAY);
    await labApply({ name: LAB, file });
    const status = await labStatus(LAB);
    const d = status.deployments.find((x) => x.name === 'wp')!;
    assert.equal(d.gateway, 'default/wp');
    assert.deepEqual([d.ready, d.replicas], [1, 1]);
    const pod = status.pods.find((p) => p.name === d.pods[0])!;
    assert.equal(pod.inMesh, false, 'a waypoint pod is never captured');
    const svc = status.services.find((s) => s.name === 'wp')!;
    assert.deepEqual(svc.endpoints.map((e) => [e.pod, e.targetPort]), [[pod.name, 15008]]);
    const manifests = labPaths(LAB).manifestsDir;
    for (const f of ['serviceaccount.default.wp.yaml', 'deployment.default.wp.yaml', 'service.default.wp.yaml', 'gateway.default.wp.yaml']) assert.ok(existsSync(join(manifests, f)), f);
    const argvLine = readFileSync(pod.log, 'utf8').split('\n').find((l) => l.startsWith('ARGV '))!;
    const argv = JSON.parse(argvLine.slice(5)) as string[];
    assert.deepEqual(argv.slice(0, 3), ['waypoint', '--name=wp', '--namespace=default']);
    assert.ok(argv.includes(`--manifests=${manifests}`), argv.join(' '));
    assert.ok(argv.includes(`--ca-token-file=${labCaPaths(LAB).tokenFile(pod.node)}`), `the token of its node: ${argv.join(' ')}`);
    // Its pod was in the manifests (Pending, with its IP) before it ran: the CA signs only for pods it sees.
    assert.ok(readFileSync(pod.log, 'utf8').includes(`PUBLISHED Pending ${pod.ip}`), readFileSync(pod.log, 'utf8'));

    await labDelete({ name: LAB, file });
    const after1 = await labStatus(LAB);
    assert.equal(after1.deployments.find((x) => x.name === 'wp'), undefined);
    assert.equal(after1.pods.find((p) => p.name === pod.name), undefined);
    assert.equal(after1.services.find((s) => s.name === 'wp'), undefined);
    for (const f of ['serviceaccount.default.wp.yaml', 'deployment.default.wp.yaml', 'service.default.wp.yaml']) assert.equal(existsSync(join(manifests, f)), false, f);
  });

  it('deleting the Deployment deletes its pods', async () => {
    const file = write('web.yaml', deployment({ replicas: 2 }));
    const result = await labDelete({ name: LAB, file });
    assert.ok(result.deleted.includes('deployment/default/web'));
    assert.deepEqual(await webPods(), []);
    assert.equal(labNetns(LAB).filter((n) => n.includes('-web-')).length, 0);
    assert.equal((await labStatus(LAB)).deployments.length, 0);
  });
});

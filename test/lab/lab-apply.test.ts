// `weft lab apply` / `delete` on a running lab (root): pods come and go with their namespaces,
// label changes reach the manifests without restarting anything, services change DNAT rules and
// the hosts files running pods read, and invalid input changes nothing.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labApply, labDelete, labDown, labExec, labPaths, labStatus, labUp } from '../../agent/lab/index.js';
import { isWeftError } from '../../agent/errors.js';
import { APP, inNetns, labNetns, manifestDir, pidAlive, podYaml } from './helpers.js';

const LAB = 'tapply';
const LOAD = join(APP, 'load.mjs');

const BASE = {
  'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n',
  'details.yaml':
    podYaml({ name: 'details-a', node: 'node-a', labels: { app: 'details' }, script: 'details.mjs', port: 9080 }) +
    '---\napiVersion: v1\nkind: Service\nmetadata:\n  name: details\nspec:\n  selector:\n    app: details\n  ports:\n    - port: 9080\n',
  'client.yaml': podYaml({ name: 'client', node: 'node-b', script: 'idle.mjs' }),
};

/** Everything `apply` may touch, to compare before and after a refused apply. */
function snapshot(): unknown {
  const dir = labPaths(LAB).manifestsDir;
  return {
    state: readFileSync(labPaths(LAB).stateFile, 'utf8'),
    manifests: readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]),
    netns: labNetns(LAB),
  };
}

describe('lab apply and delete', () => {
  const files = manifestDir(BASE);
  const changes = manifestDir({});
  const write = (name: string, text: string): string => {
    const path = join(changes.dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(async () => {
    await labDown({ name: LAB });
    // No agents: this file tests the lab's own wiring, the mesh is tested elsewhere.
    await labUp({ name: LAB, dir: files.dir, startAgents: false });
  });

  after(async () => {
    await labDown({ name: LAB });
    files.remove();
    changes.remove();
  });

  it('starts an applied pod: namespace, veth, process, manifest, endpoint, DNAT rule', async () => {
    const file = write('details-b.yaml', podYaml({ name: 'details-b', node: 'node-b', labels: { app: 'details' }, script: 'details.mjs', port: 9080 }));
    const result = await labApply({ name: LAB, file });
    assert.deepEqual(result.created, ['pod/default/details-b']);
    const status = await labStatus(LAB);
    const pod = status.pods.find((p) => p.name === 'details-b')!;
    assert.equal(pod.running, true);
    assert.equal(pod.node, 'node-b');
    assert.ok(labNetns(LAB).includes(pod.netns));
    assert.ok(existsSync(join(labPaths(LAB).manifestsDir, 'pod.default.details-b.yaml')));
    const svc = status.services.find((s) => s.name === 'details')!;
    assert.deepEqual(svc.endpoints.map((e) => e.pod).sort(), ['details-a', 'details-b']);
    for (const n of status.nodes) assert.match(inNetns(n.netns, ['iptables-save', '-t', 'nat']), new RegExp(`DNAT --to-destination ${pod.ip}:9080`));
    const load = await labExec({ name: LAB, pod: 'client', command: ['node', LOAD, `http://${pod.ip}:9080/details/1`, '--count', '2'], timeoutMs: 30_000 });
    assert.equal(load.code, 0, load.stdout + load.stderr);
    assert.deepEqual((JSON.parse(load.stdout) as { pods: unknown }).pods, { 'details-b': 2 });
  });

  it('rewrites labels of pods and namespaces into the manifests without restarting the pod', async () => {
    const before = await labStatus(LAB);
    const pid = before.pods.find((p) => p.name === 'details-a')!.pid;
    const file = write(
      'labels.yaml',
      podYaml({ name: 'details-a', node: 'node-a', labels: { app: 'details', tier: 'gold' }, script: 'details.mjs', port: 9080 }) +
        '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels:\n    weft.dev/mesh: enabled\n',
    );
    const result = await labApply({ name: LAB, file });
    assert.deepEqual(result.configured.sort(), ['namespace/default', 'pod/default/details-a']);
    const dir = labPaths(LAB).manifestsDir;
    assert.match(readFileSync(join(dir, 'pod.default.details-a.yaml'), 'utf8'), /tier: gold/);
    assert.match(readFileSync(join(dir, 'namespace.default.yaml'), 'utf8'), /weft\.dev\/mesh: enabled/);
    const after = await labStatus(LAB);
    const pod = after.pods.find((p) => p.name === 'details-a')!;
    assert.equal(pod.pid, pid);
    assert.equal(pod.running, true);
    assert.equal(pod.inMesh, true);
  });

  it('changes DNAT rules and the hosts file running pods read when services change', async () => {
    const client = (await labStatus(LAB)).pods.find((p) => p.name === 'client')!;
    const file = write(
      'svc.yaml',
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\nspec:\n  clusterIP: 198.19.200.7\n  selector:\n    app: details\n  ports:\n    - port: 80\n      targetPort: 9080\n',
    );
    await labApply({ name: LAB, file });
    // The running client process sees its /etc/hosts through its own mount namespace.
    const hosts = readFileSync(`/proc/${client.pid}/root/etc/hosts`, 'utf8');
    assert.match(hosts, /^198\.19\.200\.7\textra extra\.default extra\.default\.svc\.cluster\.local$/m);
    const load = await labExec({ name: LAB, pod: 'client', command: ['node', LOAD, 'http://extra:80/details/1', '--count', '3'], timeoutMs: 30_000 });
    assert.equal(load.code, 0, load.stdout + load.stderr);
    assert.equal((JSON.parse(load.stdout) as { ok: number }).ok, 3, 'port 80 of the ClusterIP is DNATed to 9080 of a details pod');
    const node = (await labStatus(LAB)).nodes.find((n) => n.name === 'node-b')!;
    assert.match(inNetns(node.netns, ['iptables-save', '-t', 'nat']), /-d 198\.19\.200\.7\/32 -p tcp -m tcp --dport 80/);

    await labDelete({ name: LAB, file });
    assert.doesNotMatch(readFileSync(`/proc/${client.pid}/root/etc/hosts`, 'utf8'), /extra/);
    assert.doesNotMatch(inNetns(node.netns, ['iptables-save', '-t', 'nat']), /198\.19\.200\.7/);
  });

  it('replaces a stray namespace of the same name (left by an operation that failed half-way)', async () => {
    const netns = `weft-${LAB}-pod-default-stray`;
    execFileSync('ip', ['netns', 'add', netns]);
    const squatter = spawn('ip', ['netns', 'exec', netns, process.execPath, join(APP, 'idle.mjs')], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    await new Promise<void>((resolve) => squatter.stdout.once('data', () => resolve()));
    squatter.unref();
    const file = write('stray.yaml', podYaml({ name: 'stray', node: 'node-a', script: 'idle.mjs' }));
    await labApply({ name: LAB, file });
    assert.equal(pidAlive(squatter.pid!), false, 'the process in the stray namespace was stopped');
    const pod = (await labStatus(LAB)).pods.find((p) => p.name === 'stray')!;
    assert.equal(pod.running, true);
    assert.match(inNetns(netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), new RegExp(`${pod.ip.replace(/\./g, '\\.')}/32`));
    await labDelete({ name: LAB, file });
  });

  it('refuses a malformed or unrunnable file with file and reason, and changes nothing', async () => {
    const cases: [string, string, RegExp][] = [
      ['broken.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {name: x\n', /broken\.yaml.*invalid YAML/],
      ['nocontainers.yaml', 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  nodeName: node-a\n', /nocontainers\.yaml.*spec\.containers: required/],
      ['nonode.yaml', podYaml({ name: 'x', node: 'node-a', script: 'idle.mjs' }).replace('  nodeName: node-a\n', ''), /nonode\.yaml.*spec\.nodeName: required/],
      [
        'badip.yaml',
        'apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  clusterIP: 10.0.0.1\n  ports:\n    - port: 80\n',
        /badip\.yaml.*outside the lab's service range/,
      ],
    ];
    for (const [name, text, why] of cases) {
      const before = snapshot();
      const file = write(name, text);
      await assert.rejects(labApply({ name: LAB, file }), (err: unknown) => {
        assert.ok(isWeftError(err, 'WEFT_ERR_MANIFEST_INVALID'), String(err));
        assert.match(err.message, why);
        return true;
      });
      assert.deepEqual(snapshot(), before, `${name} changed nothing`);
    }
  });

  it('deletes a pod: process stopped, namespace, veth, /etc/netns entry and manifest gone', async () => {
    const before = await labStatus(LAB);
    const pod = before.pods.find((p) => p.name === 'details-b')!;
    const node = before.nodes.find((n) => n.name === pod.node)!;
    const state = JSON.parse(readFileSync(labPaths(LAB).stateFile, 'utf8')) as { pods: { name: string; hostVeth: string }[] };
    const veth = state.pods.find((p) => p.name === 'details-b')!.hostVeth;
    assert.match(inNetns(node.netns, ['ip', '-o', 'link']), new RegExp(`\\b${veth}@`));
    const result = await labDelete({ name: LAB, file: join(changes.dir, 'details-b.yaml') });
    assert.deepEqual(result.deleted, ['pod/default/details-b']);
    assert.deepEqual(result.notFound, []);
    assert.equal(pidAlive(pod.pid!), false);
    assert.equal(labNetns(LAB).includes(pod.netns), false);
    assert.equal(existsSync(`/etc/netns/${pod.netns}`), false);
    assert.equal(existsSync(join(labPaths(LAB).manifestsDir, 'pod.default.details-b.yaml')), false);
    assert.doesNotMatch(inNetns(node.netns, ['ip', '-o', 'link']), new RegExp(`\\b${veth}@`), 'its veth is gone from the node');
    assert.doesNotMatch(inNetns(node.netns, ['ip', 'route']), new RegExp(`^${pod.ip.replace(/\./g, '\\.')} `, 'm'));
    const after = await labStatus(LAB);
    assert.deepEqual(after.services.find((s) => s.name === 'details')!.endpoints.map((e) => e.pod), ['details-a']);
    const again = await labDelete({ name: LAB, file: join(changes.dir, 'details-b.yaml') });
    assert.deepEqual(again.notFound, ['pod/default/details-b']);
  });
});

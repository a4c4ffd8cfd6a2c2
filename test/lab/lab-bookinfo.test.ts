// `weft lab up` of examples/bookinfo, end to end (root): placement and addresses, names inside
// pods, ClusterIP DNAT for a pod outside the mesh, the demo's load command through the CLI,
// idempotent `up`, and `down` leaving nothing.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { labDown, labExec, labPaths, labStatus, labUp, type LabUpResult } from '../../agent/lab/index.js';
import { REPO_DIR } from '../../agent/lab/paths.js';
import { assertLabGone, inNetns } from './helpers.js';
import { bookinfoPod, bookinfoPodName, testLabName } from '../helpers/bookinfo.js';

const LAB = testLabName('tbookinfo');
const run = promisify(execFile);
const CLI = join(REPO_DIR, 'dist', 'agent', 'cli', 'main.js');

describe('lab up: bookinfo', () => {
  let up: LabUpResult;
  const everyPid: number[] = [];

  before(async () => {
    await labDown({ name: LAB });
    up = await labUp({ name: LAB });
    for (const p of up.pods) everyPid.push(...p.containers.map((c) => c.pid));
    for (const n of up.nodes) if (n.agentPid !== undefined) everyPid.push(n.agentPid);
  });

  after(async () => {
    await labDown({ name: LAB });
  });

  it('places the pods on their nodes with addresses from their node CIDR, configured in their namespaces', () => {
    assert.equal(up.mode, 'fresh');
    const nodes = new Map(up.nodes.map((n) => [n.name, n]));
    assert.deepEqual([...nodes.keys()].sort(), ['node-1', 'node-2']);
    for (const n of up.nodes) {
      assert.equal(n.fabricIP, `198.19.0.${n.index}`);
      assert.equal(n.podCIDR, `198.18.${n.index}.0/24`);
      assert.equal(n.netns, `weft-${LAB}-node-${n.name}`);
      assert.match(inNetns(n.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), new RegExp(`${n.fabricIP.replace(/\./g, '\\.')}/24`));
    }
    // Versions are Deployments: pods are found by their labels (their names carry the template hash).
    const placement = Object.fromEntries(up.pods.map((p) => [`${p.namespace}/${p.labels['app']}-${p.labels['version'] ?? ''}`, p.node]));
    assert.deepEqual(placement, {
      'default/productpage-v1': 'node-1',
      'default/reviews-v1': 'node-1',
      'default/reviews-v2': 'node-1',
      'default/reviews-v3': 'node-1',
      'default/details-v1': 'node-2',
      'default/ratings-v1': 'node-2',
      'outside/client-': 'node-1',
    });
    for (const p of up.pods.filter((x) => x.namespace === 'default')) assert.match(p.name, new RegExp(`^${p.labels['app']}-${p.labels['version']}-[a-z0-9]{10}-[a-z0-9]{5}$`));
    assert.deepEqual(up.deployments.map((d) => [d.name, d.ready, d.replicas]).sort(), [['details-v1', 1, 1], ['productpage-v1', 1, 1], ['ratings-v1', 1, 1], ['reviews-v1', 1, 1], ['reviews-v2', 1, 1], ['reviews-v3', 1, 1]]);
    const ips = new Set<string>();
    for (const p of up.pods) {
      const node = nodes.get(p.node)!;
      assert.ok(p.ip.startsWith(`198.18.${node.index}.`), `${p.name} ${p.ip} in ${node.podCIDR}`);
      assert.ok(Number(p.ip.split('.')[3]) >= 2);
      ips.add(p.ip);
      assert.equal(p.netns, `weft-${LAB}-pod-${p.namespace}-${p.name}`);
      assert.equal(p.running, true);
      assert.match(inNetns(p.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), new RegExp(`${p.ip.replace(/\./g, '\\.')}/32`));
      assert.match(inNetns(p.netns, ['ip', 'route', 'show', 'default']), /default via 169\.254\.1\.1 dev eth0/);
      assert.equal(p.inMesh, p.namespace === 'default');
    }
    assert.equal(ips.size, up.pods.length, 'pod IPs are unique');
  });

  it('writes the manifests the agents read, with pod IPs and ClusterIPs', async () => {
    const files = readdirSync(labPaths(LAB).manifestsDir);
    const details = bookinfoPod(up, 'details');
    assert.ok(files.includes(`pod.default.${details.name}.yaml`));
    assert.ok(files.includes('deployment.default.details-v1.yaml'));
    assert.ok(files.includes('namespace.outside.yaml'));
    const { parseManifestText } = await import('../../agent/discovery/manifest.js');
    const { readFileSync } = await import('node:fs');
    const pod = parseManifestText(readFileSync(join(labPaths(LAB).manifestsDir, `pod.default.${details.name}.yaml`), 'utf8'), 'x').objects[0] as {
      status?: { podIP?: string; phase?: string };
    };
    assert.deepEqual(pod.status, { podIP: details.ip, phase: 'Running' });
  });

  it('resolves service names inside pods, short names only in the own namespace', async () => {
    const inDefault = await labExec({ name: LAB, pod: bookinfoPodName(up, 'productpage'), command: ['getent', 'hosts', 'details', 'reviews.default', 'ratings.default.svc.cluster.local'] });
    assert.equal(inDefault.code, 0, inDefault.stderr);
    assert.match(inDefault.stdout, /^198\.19\.128\.11\s+details\b/m);
    assert.match(inDefault.stdout, /^198\.19\.128\.12\s+.*reviews\.default\b/m);
    assert.match(inDefault.stdout, /^198\.19\.128\.13\s+.*ratings\.default\.svc\.cluster\.local\b/m);

    const shortOutside = await labExec({ name: LAB, pod: 'client', namespace: 'outside', command: ['getent', 'hosts', 'details'] });
    assert.notEqual(shortOutside.code, 0, 'a short name of another namespace does not resolve');
    const longOutside = await labExec({ name: LAB, pod: 'client', namespace: 'outside', command: ['getent', 'hosts', 'details.default'] });
    assert.equal(longOutside.code, 0);
    assert.match(longOutside.stdout, /^198\.19\.128\.11\s/m);
  });

  it('lets a pod outside the mesh reach a ClusterIP through the node DNAT rules, answered by a details pod that sees the client IP', async () => {
    const client = up.pods.find((p) => p.name === 'client')!;
    const details = bookinfoPod(up, 'details');
    const node = up.nodes.find((n) => n.name === client.node)!;
    const dnatPackets = (): number => {
      const saved = inNetns(node.netns, ['iptables-save', '-c', '-t', 'nat']);
      const line = saved.split('\n').find((l) => l.includes(`DNAT --to-destination ${details.ip}:9080`));
      assert.ok(line, `a DNAT rule to ${details.ip}:9080 in ${node.netns}`);
      return Number(/^\[(\d+):/.exec(line)![1]);
    };
    const before = dnatPackets();
    const r = await labExec({
      name: LAB,
      pod: 'client',
      namespace: 'outside',
      command: ['node', 'app/load.mjs', 'http://details.default:9080/details/0', '--count', '5', '--deadline-ms', '20000'],
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const summary = JSON.parse(r.stdout) as { ok: number; pods: Record<string, number>; clientAddresses: Record<string, string[]> };
    assert.equal(summary.ok, 5);
    assert.deepEqual(Object.keys(summary.pods), [details.name]);
    assert.deepEqual(summary.clientAddresses[details.name], [client.ip]);
    // One new connection per request: the DNAT rule matched each one's first packet.
    assert.ok(dnatPackets() - before >= 5, 'connections went through the DNAT rule');
  });

  it('runs the demo command: the load tool in the client pod through the CLI, productpage across both nodes', async () => {
    const { stdout } = await run(
      process.execPath,
      [CLI, 'lab', 'exec', 'client', '-n', 'outside', '--name', LAB, '--', 'node', 'app/load.mjs', 'http://productpage.default:9080/', '--count', '20', '--deadline-ms', '30000'],
      { timeout: 60_000 },
    );
    const summary = JSON.parse(stdout) as { ok: number; failed: number; pods: Record<string, number> };
    assert.equal(summary.ok, 20);
    assert.equal(summary.pods[bookinfoPodName(up, 'productpage')], 20);
    assert.equal(summary.pods[bookinfoPodName(up, 'details')], 20, 'productpage (node-1) reached details (node-2)');
    const reviews = ['v1', 'v2', 'v3'].reduce((n, v) => n + (summary.pods[bookinfoPodName(up, 'reviews', v)] ?? 0), 0);
    assert.equal(reviews, 20);
  });

  it('passes the exit code of the command through, in the API and in the CLI', async () => {
    const r = await labExec({ name: LAB, pod: 'client', namespace: 'outside', command: ['sh', '-c', 'echo "$POD_NAME $POD_NAMESPACE $POD_IP $NODE_NAME"; exit 7'] });
    const client = up.pods.find((p) => p.name === 'client')!;
    assert.equal(r.code, 7);
    assert.equal(r.stdout.trim(), `client outside ${client.ip} node-1`);
    const cli = await run(process.execPath, [CLI, 'lab', 'exec', 'client', '-n', 'outside', '--name', LAB, '--', 'sh', '-c', 'exit 3']).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    assert.equal(cli, 3);
  });

  it('leaves a healthy lab as it is on a second up', async () => {
    const manifests = labPaths(LAB).manifestsDir;
    const mtimes = Object.fromEntries(readdirSync(manifests).map((f) => [f, statSync(join(manifests, f)).mtimeMs]));
    const again = await labUp({ name: LAB });
    assert.equal(again.mode, 'reconciled');
    assert.deepEqual(again.changes.created, []);
    assert.deepEqual(again.changes.deleted, []);
    assert.deepEqual(again.changes.configured, []);
    const pods = (s: { pods: { name: string; ip: string; pid: number | undefined }[] }) => s.pods.map((p) => [p.name, p.ip, p.pid]);
    assert.deepEqual(pods(again), pods(up));
    assert.deepEqual(Object.fromEntries(readdirSync(manifests).map((f) => [f, statSync(join(manifests, f)).mtimeMs])), mtimes, 'no manifest rewritten');
    const status = await labStatus(LAB);
    assert.deepEqual(pods(status), pods(up));
    for (const n of status.nodes) if (n.agentPid !== undefined && !everyPid.includes(n.agentPid)) everyPid.push(n.agentPid);
  });

  it('prints status as a table and as JSON', async () => {
    const table = await run(process.execPath, [CLI, 'lab', 'status', '--name', LAB]);
    assert.match(table.stdout, /productpage-v1-[a-z0-9]{10}-[a-z0-9]{5}\s+node-1\s+198\.18\.1\.\d+\s+yes/);
    assert.match(table.stdout, /default\s+reviews-v2\s+1\/1\s+[a-z0-9]{10}\s+reviews-v2-/);
    assert.match(table.stdout, /details\s+198\.19\.128\.11\s+-\s+9080\/TCP\s+198\.18\.2\.\d+:9080/);
    const json = JSON.parse((await run(process.execPath, [CLI, 'lab', 'status', '--name', LAB, '--json'])).stdout) as { services: { name: string; endpoints: unknown[] }[] };
    assert.equal(json.services.find((s) => s.name === 'reviews')!.endpoints.length, 3);
    for (const v of ['v1', 'v2', 'v3']) assert.deepEqual(json.services.find((s) => s.name === `reviews-${v}`)!.endpoints.map((e) => (e as { pod: string }).pod), [bookinfoPodName(up, 'reviews', v)]);
  });

  it('down leaves nothing: namespaces, processes, /etc/netns entries, state', async () => {
    const { removed } = await labDown({ name: LAB });
    assert.deepEqual(removed, [LAB]);
    assertLabGone(LAB, everyPid);
    assert.deepEqual((await labDown({ name: LAB })).removed, [], 'a second down finds nothing and succeeds');
    await assert.rejects(labStatus(LAB), { code: 'WEFT_ERR_LAB_NOT_FOUND' });
  });
});

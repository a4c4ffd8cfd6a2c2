/**
 * The mesh end to end on the bookinfo lab (two nodes, real agents, the lab CA), in both of the
 * lab's modes: capture through both agents, opt-in and opt-out, runtime label changes, mutual
 * TLS on the wire, identities, pooling, the CA's node authorization, metrics, bad manifests,
 * status, L4 policy, pod add/remove. bookinfo.test.ts runs it against the local source,
 * bookinfo-kubernetes.test.ts against the Kubernetes-mode lab (its API server, kubelets,
 * EndpointSlices; agents and CA with --kubeconfig), where label changes and pod add/remove go
 * through the real kubectl. Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, rmSync, mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labUp, labDown, labApply, labDelete, labStatus, podNetns, nodeNetns } from '../../agent/lab/index.js';
import { hasCaptureRules } from '../../agent/capture/rules.js';
import { waitFor } from '../helpers/wait.js';
import { load, podNode, totals, agentAdmin, waitCaptured, podIp, accessLog, captureFabric, agentMetrics } from './helpers.js';
import { REPO_DIR } from '../../agent/lab/paths.js';
import { kubePaths } from '../../agent/lab/kube-paths.js';
import { bookinfoPodName } from '../helpers/bookinfo.js';

export interface SuiteMode {
  /** The lab's name (each mode its own, so the two files never share a lab). */
  lab: string;
  kubernetes: boolean;
  /**
   * The HBONE implementation the lab's agents must run (local mode: set WEFT_HBONE_IMPL before the
   * lab comes up; the agents inherit it). The suite then checks each agent logged it.
   */
  hboneImpl?: 'node' | 'lean';
}

export function bookinfoSuite(mode: SuiteMode): void {
const LAB = mode.lab;
const tmp = mkdtempSync(join(tmpdir(), `weft-${LAB}-`));
let status: Awaited<ReturnType<typeof labStatus>>;
/** The bookinfo pods' names (Deployments' pods: found by their app and version labels once the lab is up). */
const N = { productpage: '', details: '', ratings: '', reviewsV1: '', reviewsV2: '', reviewsV3: '' };
let NODE1_MESHED: string[] = [];
let NODE2_MESHED: string[] = [];

function yamlFile(name: string, text: string): string {
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
}

const meshNamespace = (labelled: boolean) =>
  yamlFile(`ns-${labelled}.yaml`, `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n${labelled ? '  labels:\n    weft.dev/mesh: enabled\n' : ''}`);

function pod(name: string, namespace: string, node: string, labels: Record<string, string>, script = 'details.mjs'): string {
  const l = Object.entries(labels).map(([k, v]) => `\n    ${k}: "${v}"`).join('');
  return yamlFile(`${name}.yaml`, `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n  labels:\n    app: ${name}${l}\nspec:\n  nodeName: ${node}\n  containers:\n  - name: main\n    command: [node, app/${script}]\n    ports:\n    - containerPort: 9080\n`);
}

/** The real kubectl against the lab's API server (Kubernetes mode only). */
function kubectl(...args: string[]): string {
  return execFileSync('kubectl', ['--kubeconfig', kubePaths(LAB).adminKubeconfig, ...args], { encoding: 'utf8', timeout: 90_000 });
}

/** A pod added as the mode's users would: `weft lab apply` locally, `kubectl apply` (then its pod Ready) on Kubernetes. */
async function addPod(file: string, namespace: string, name: string): Promise<void> {
  if (!mode.kubernetes) {
    await labApply({ name: LAB, file });
  } else {
    kubectl('apply', '-f', file);
    kubectl('wait', '--for=condition=Ready', `pod/${name}`, '-n', namespace, '--timeout=30s');
  }
  status = await labStatus(LAB);
}

async function removePod(file: string): Promise<void> {
  if (!mode.kubernetes) await labDelete({ name: LAB, file });
  else kubectl('delete', '-f', file, '--timeout=60s');
}

/** The namespace label changed as a user would: a manifest locally, `kubectl label` on Kubernetes. */
async function labelDefault(labelled: boolean): Promise<void> {
  if (!mode.kubernetes) await labApply({ name: LAB, file: meshNamespace(labelled) });
  else kubectl('label', 'namespace', 'default', ...(labelled ? ['weft.dev/mesh=enabled', '--overwrite'] : ['weft.dev/mesh-']));
}

/** The bearer token the agent of `node` shows the CA: a node token locally, its projected service-account token on Kubernetes. */
function agentCaToken(node: string): string {
  return mode.kubernetes ? join(kubePaths(LAB).podsDir, `weft-system_weft-agent-${node}`, 'ca-token', 'token') : `/run/weft/lab/${LAB}/ca/token-${node}`;
}

before(async () => {
  await labDown({ name: LAB });
  status = await labUp({ name: LAB, kubernetes: mode.kubernetes });
  Object.assign(N, {
    productpage: bookinfoPodName(status, 'productpage'),
    details: bookinfoPodName(status, 'details'),
    ratings: bookinfoPodName(status, 'ratings'),
    reviewsV1: bookinfoPodName(status, 'reviews', 'v1'),
    reviewsV2: bookinfoPodName(status, 'reviews', 'v2'),
    reviewsV3: bookinfoPodName(status, 'reviews', 'v3'),
  });
  NODE1_MESHED = [N.productpage, N.reviewsV1, N.reviewsV2, N.reviewsV3].map((n) => `default/${n}`);
  NODE2_MESHED = [N.details, N.ratings].map((n) => `default/${n}`);
  await waitCaptured(LAB, 'node-1', NODE1_MESHED);
  await waitCaptured(LAB, 'node-2', NODE2_MESHED);
});

after(async () => {
  await labDown({ name: LAB });
  rmSync(tmp, { recursive: true, force: true });
});

if (mode.hboneImpl !== undefined) {
  const want = mode.hboneImpl;
  test(`both agents carry HBONE with the ${want} implementation`, () => {
    for (const node of ['node-1', 'node-2']) {
      const said = accessLog(LAB, node).filter((l) => l['msg'] === 'HBONE implementation').map((l) => l['hboneImpl']);
      assert.ok(said.length > 0, `the agent of ${node} logged its HBONE implementation`);
      assert.deepEqual([...new Set(said)], [want], `the agent of ${node} runs ${want}`);
    }
  });
}

test('productpage -> details crosses nodes through both agents, with the original destination and the client IP preserved', async () => {
  const summary = await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', 5);
  assert.equal(summary.ok, 5, JSON.stringify(summary.firstFailure));
  const productpageIp = podIp(status, 'default', N.productpage);
  const detailsIp = podIp(status, 'default', N.details);
  // The details app saw productpage's own pod IP, not an agent's.
  assert.deepEqual(summary.clientAddresses[N.details], [productpageIp]);
  const out = await totals(LAB, 'node-1');
  const inn = await totals(LAB, 'node-2');
  assert.ok(out.some((t) => t.direction === 'outbound' && t.source === `default/${N.productpage}` && t.destination === `default/${N.details}`), 'source agent outbound');
  assert.ok(inn.some((t) => t.direction === 'inbound' && t.source === `default/${N.productpage}` && t.destination === `default/${N.details}`), 'destination agent inbound');
  const svc = status.services.find((s) => s.name === 'details')!;
  const outLine = accessLog(LAB, 'node-1').find((l) => l['direction'] === 'outbound' && l['src_workload'] === `default/${N.productpage}` && l['dst_workload'] === `default/${N.details}`);
  assert.equal(outLine?.['dst'], `${svc.clusterIP}:9080`, 'outbound saw the ClusterIP it was going to');
  assert.equal(outLine?.['upstream'], `${detailsIp}:9080`);
  const inLine = accessLog(LAB, 'node-2').find((l) => l['direction'] === 'inbound' && l['src_workload'] === `default/${N.productpage}`);
  assert.equal(inLine?.['dst'], `${detailsIp}:9080`, 'inbound kept the original destination');
});

test('reviews -> ratings through the short service name passes through both agents', async () => {
  // reviews v2 and v3 call http://ratings:9080; ask until both answered at least once.
  const summary = await load(LAB, 'client', 'outside', 'http://reviews.default:9080/reviews/0', 12);
  assert.equal(summary.ok, 12, JSON.stringify(summary.firstFailure));
  const out = await totals(LAB, 'node-1');
  const inn = await totals(LAB, 'node-2');
  assert.ok(out.some((t) => t.direction === 'outbound' && [`default/${N.reviewsV2}`, `default/${N.reviewsV3}`].includes(t.source) && t.destination === `default/${N.ratings}`));
  assert.ok(inn.some((t) => t.direction === 'inbound' && [`default/${N.reviewsV2}`, `default/${N.reviewsV3}`].includes(t.source) && t.destination === `default/${N.ratings}`));
});

test('the destination records the source SPIFFE ID exactly, over mutual TLS', async () => {
  await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', 1);
  const line = accessLog(LAB, 'node-2').find((l) => l['direction'] === 'inbound' && l['src_workload'] === `default/${N.productpage}`);
  assert.equal(line?.['src_principal'], 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage');
  assert.equal(line?.['mtls'], true);
});

test('a pod in a namespace without the label, and a pod with the opt-out label, are not touched', async () => {
  assert.equal(await hasCaptureRules(`/run/netns/${podNetns(LAB, 'outside', 'client')}`), false);
  await addPod(pod('legacy', 'default', 'node-2', { 'weft.dev/mesh': 'disabled' }), 'default', 'legacy');
  assert.equal(await hasCaptureRules(`/run/netns/${podNetns(LAB, 'default', 'legacy')}`), false);
  await waitCaptured(LAB, 'node-2', NODE2_MESHED);
  // Its traffic goes direct: details sees it, and no agent recorded a connection from it.
  const summary = await load(LAB, 'legacy', 'default', 'http://details.default:9080/details/0', 3);
  assert.equal(summary.ok, 3);
  assert.deepEqual(summary.clientAddresses[N.details], [podIp(status, 'default', 'legacy')]);
  assert.ok(!(await totals(LAB, 'node-2')).some((t) => t.direction === 'outbound' && t.source === 'default/legacy'));
  await removePod(join(tmp, 'legacy.yaml'));
  assert.equal(existsSync(`/run/netns/${podNetns(LAB, 'default', 'legacy')}`), false, 'the removed pod\'s network namespace is gone');
});

test('removing the namespace label at runtime releases the pods, traffic keeps working; adding it back captures again', async () => {
  await labelDefault(false);
  await waitCaptured(LAB, 'node-1', []);
  await waitCaptured(LAB, 'node-2', []);
  for (const [ns, name] of [['default', N.productpage], ['default', N.details]] as const) {
    assert.equal(await hasCaptureRules(`/run/netns/${podNetns(LAB, ns, name)}`), false, `${name} has no rules`);
    assert.doesNotMatch(execFileSync('ip', ['netns', 'exec', podNetns(LAB, ns, name), 'ss', '-ltnH'], { encoding: 'utf8' }), /:1500[168]\b/);
  }
  const direct = await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', 3);
  assert.equal(direct.ok, 3);
  await labelDefault(true);
  await waitCaptured(LAB, 'node-1', NODE1_MESHED);
  await waitCaptured(LAB, 'node-2', NODE2_MESHED);
  assert.equal(await hasCaptureRules(`/run/netns/${podNetns(LAB, 'default', N.details)}`), true);
  const again = await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', 3);
  assert.equal(again.ok, 3);
});

test('meshed payload never crosses the fabric in clear text; traffic to a pod outside the mesh does', async () => {
  await addPod(pod('plain', 'outside', 'node-2', {}), 'outside', 'plain');
  const plainIp = podIp(status, 'outside', 'plain');
  const marker = `WEFT-MARKER-${process.pid}-${Date.now()}`;
  const get = (url: string) =>
    podNode(LAB, N.productpage, 'default', `require('http').get(${JSON.stringify(url)}, (r) => { r.resume(); r.on('end', () => process.exit(r.statusCode === 200 ? 0 : 3)); }).on('error', (e) => { console.error(e.message); process.exit(2); })`);
  const capture = await captureFabric(LAB, join(tmp, 'meshed.pcap'));
  const meshed = await get(`http://details.default:9080/details/0?${marker}`);
  const meshedCapture = await capture.stop();
  assert.equal(meshed.code, 0, meshed.stderr);
  const productpageIp = podIp(status, 'default', N.productpage);
  const detailsIp = podIp(status, 'default', N.details);
  assert.ok(meshedCapture.summary.includes(`${productpageIp}.`) && meshedCapture.summary.includes(`${detailsIp}.15008`), `the capture saw the tunnel traffic:\n${meshedCapture.summary}`);
  assert.equal(meshedCapture.bytes.includes(marker), false, 'marker visible on the fabric for meshed traffic');

  const capture2 = await captureFabric(LAB, join(tmp, 'plain.pcap'));
  const plain = await get(`http://${plainIp}:9080/details/0?${marker}`);
  const plainCapture = await capture2.stop();
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plainCapture.bytes.includes(marker), true, 'marker not found for traffic to a pod outside the mesh');
  await removePod(join(tmp, 'plain.yaml'));
});

test('200 sequential connections from one pod to one destination share one TLS connection; 200 concurrent ones work', async () => {
  const poolOf = async () => {
    const dump = await agentAdmin(LAB, 'node-1', '/config_dump');
    return (dump['pools'] as { pod: string; connectionsOpened: number; streamsOpened: number }[]).find((p) => p.pod === `default/${N.productpage}`)!;
  };
  const before = await poolOf();
  const sequential = await load(LAB, N.productpage, 'default', 'http://details.default:9080/details/0', 200);
  assert.equal(sequential.ok, 200, JSON.stringify(sequential.firstFailure));
  const mid = await poolOf();
  assert.ok(mid.streamsOpened - before.streamsOpened >= 200, 'one stream per connection');
  assert.ok(mid.connectionsOpened - before.connectionsOpened <= 1, `TLS connections opened: ${mid.connectionsOpened - before.connectionsOpened}`);
  const concurrent = await load(LAB, N.productpage, 'default', 'http://details.default:9080/details/0', 200, ['--concurrency', '200']);
  assert.equal(concurrent.ok, 200, JSON.stringify(concurrent.firstFailure));
});

test('the CA refuses an agent asking for an identity that has no pod on its node', () => {
  // Run as node-1's agent would: from its namespace, with its token, for details (on node-2).
  const script = `
    import { readFileSync } from 'node:fs';
    import { HttpCaClient } from ${JSON.stringify(join(REPO_DIR, 'dist/agent/identity/ca-client.js'))};
    import { requestCertificate } from ${JSON.stringify(join(REPO_DIR, 'dist/agent/identity/manager.js'))};
    import { splitPemCertificates } from ${JSON.stringify(join(REPO_DIR, 'dist/agent/identity/der.js'))};
    const dir = '/run/weft/lab/${LAB}/ca';
    const ca = new HttpCaClient({ url: 'https://198.19.0.254:15012', token: readFileSync(${JSON.stringify(agentCaToken('node-1'))}, 'utf8').trim(), caCertificates: splitPemCertificates(readFileSync(dir + '/root-cert.pem', 'utf8')) });
    const ask = (id) => requestCertificate(ca, id).then(() => 'signed', (e) => e.code);
    console.log(JSON.stringify({ own: await ask('spiffe://cluster.local/ns/default/sa/bookinfo-productpage'), other: await ask('spiffe://cluster.local/ns/default/sa/bookinfo-details') }));
  `;
  const out = execFileSync('ip', ['netns', 'exec', nodeNetns(LAB, 'node-1'), process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), { own: 'signed', other: 'WEFT_ERR_CA_UNAUTHORIZED' });
});

test('an L4 ALLOW policy on ratings admits only the reviews service account; refusals are logged with the policy and counted', async () => {
  const policy = yamlFile('ratings-policy.yaml', `apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: ratings-from-reviews
  namespace: default
spec:
  selector:
    matchLabels:
      app: ratings
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/bookinfo-reviews"]
`);
  await labApply({ name: LAB, file: policy });
  await waitFor(async () => ((await agentAdmin(LAB, 'node-2', '/config_dump'))['policies'] as { name: string }[]).some((p) => p.name === 'ratings-from-reviews'), 'policy applied on node-2');
  const fromReviews = await load(LAB, N.reviewsV2, 'default', 'http://ratings.default:9080/ratings/0', 3);
  assert.equal(fromReviews.ok, 3, 'reviews is allowed');
  const fromProductpage = await load(LAB, N.productpage, 'default', 'http://ratings.default:9080/ratings/0', 2);
  assert.equal(fromProductpage.ok, 0, 'productpage is refused');
  const fromClient = await load(LAB, 'client', 'outside', 'http://ratings.default:9080/ratings/0', 2);
  assert.equal(fromClient.ok, 0, 'the client outside the mesh is refused');
  const denials = accessLog(LAB, 'node-2').filter((l) => String(l['msg']).startsWith('connection denied') && l['dst_workload'] === `default/${N.ratings}`);
  assert.ok(denials.some((l) => l['src_principal'] === 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage'));
  assert.ok(denials.some((l) => l['src'] === podIp(status, 'outside', 'client')));
  assert.ok(denials.every((l) => l['reason'] === 'no-allow-match'));
  await labDelete({ name: LAB, file: policy });
});

test('weft status shows the workloads with their identities and certificate expiry; lab status the agents\' addresses', async () => {
  const lab = await labStatus(LAB);
  assert.deepEqual(lab.nodes.map((n) => n.agentAddresses.metrics), ['198.19.0.1:15020', '198.19.0.2:15020']);
  const out = execFileSync(process.execPath, [join(REPO_DIR, 'dist/agent/cli/main.js'), 'status', 'workloads', '--lab', LAB], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.includes(N.productpage) && l.includes(' true  ') && /\d{4}-\d\d-\d\dT/.test(l));
  assert.ok(line, `no captured productpage line with an expiry in:\n${out}`);
  assert.match(line, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage/);
});

test('a malformed manifest in the agents\' source is reported with its file and reason, and the running state is kept', { skip: mode.kubernetes && 'local source only (on Kubernetes the API server validates what it stores)' }, async () => {
  const bad = `/run/weft/lab/${LAB}/manifests/zz-broken.yaml`;
  writeFileSync(bad, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: [oops\n');
  try {
    await waitFor(() => accessLog(LAB, 'node-2').find((l) => JSON.stringify(l).includes('zz-broken.yaml') && (l['level'] as number) >= 40), 'the agent reported the file');
    await waitCaptured(LAB, 'node-2', NODE2_MESHED);
    const summary = await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', 2);
    assert.equal(summary.ok, 2);
  } finally {
    rmSync(bad, { force: true });
  }
});

test('weft lab cert issues credentials with which an independent HTTP/2 client opens a CONNECT stream to a pod', async () => {
  const out = join(tmp, 'certs');
  execFileSync(process.execPath, [join(REPO_DIR, 'dist/agent/cli/main.js'), 'lab', 'cert', '--name', LAB, '--identity', 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage', '--out', out], { encoding: 'utf8' });
  const detailsIp = podIp(status, 'default', N.details);
  // Plain node:http2 from the client pod (outside the mesh, so nothing captures it).
  const script = `
    const http2 = require('node:http2'); const fs = require('node:fs');
    const s = http2.connect('https://${detailsIp}:15008', { key: fs.readFileSync('${out}/key.pem'), cert: fs.readFileSync('${out}/cert.pem'), ca: fs.readFileSync('${out}/bundle.pem'), checkServerIdentity: () => undefined, ALPNProtocols: ['h2'] });
    const req = s.request({ ':method': 'CONNECT', ':authority': '${detailsIp}:9080' });
    req.on('response', (h) => { if (h[':status'] !== 200) { console.log('status', h[':status']); process.exit(3); } req.end('GET /details/0 HTTP/1.1\\r\\nhost: details\\r\\nconnection: close\\r\\n\\r\\n'); });
    let body = ''; req.on('data', (d) => (body += d)); req.on('end', () => { console.log(body.split('\\r\\n\\r\\n')[1]); s.close(); });
    req.on('error', (e) => { console.error(e.message); process.exit(2); });`;
  const r = await podNode(LAB, 'client', 'outside', script);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const body = JSON.parse(r.stdout) as { pod: string };
  assert.equal(body.pod, N.details);
});

test('a stopped agent leaves its pods captured and refused (rules stay, no listener: never plaintext); the next up starts it again and it serves again', { skip: mode.kubernetes && 'local lab only (on Kubernetes the kubelet restarts the agent: tested below)' }, async () => {
  const node2 = status.nodes.find((n) => n.name === 'node-2')!;
  const pid = (await labStatus(LAB)).nodes.find((n) => n.name === 'node-2')!.agentPid!;
  process.kill(pid, 'SIGTERM');
  await waitFor(() => !(() => { try { process.kill(pid, 0); return true; } catch { return false; } })(), 'agent exited');
  for (const name of [N.details, N.ratings]) {
    const ns = podNetns(LAB, 'default', name);
    // Fail closed (issue 10): the rules outlive the agent, so nothing reaches the app around the mesh.
    assert.equal(await hasCaptureRules(`/run/netns/${ns}`), true, `${name} keeps its rules`);
    assert.doesNotMatch(execFileSync('ip', ['netns', 'exec', ns, 'ss', '-ltnH'], { encoding: 'utf8' }), /:1500[168]\b/, `${name} has no listeners`);
  }
  assert.ok(node2);
  await labUp({ name: LAB, kubernetes: mode.kubernetes });
  await waitCaptured(LAB, 'node-2', NODE2_MESHED);
  const summary = await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', 3);
  assert.equal(summary.ok, 3);
});

test('the destination agent exports Istio-named TCP metrics for productpage -> details', async () => {
  await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', 2);
  const series = agentMetrics(LAB, 'node-2')
    .split('\n')
    .filter((l) => l.startsWith('istio_tcp_connections_opened_total{') && l.includes('reporter="destination"') && l.includes('source_app="productpage"') && l.includes('destination_app="details"'));
  assert.ok(series.length > 0, 'a destination-reported series productpage -> details');
  assert.ok(series.some((l) => Number(l.split(' ').at(-1)) >= 1));
  assert.ok(series.every((l) => l.includes('connection_security_policy="mutual_tls"')), series.join('\n'));
});

if (mode.kubernetes) kubernetesOnly();

function kubernetesOnly(): void {
  test('kubectl get pods -A and describe show the lab\'s pods with their node and IP; the agents run as pods of weft-system', () => {
    const table = kubectl('get', 'pods', '-A', '-o', 'wide');
    for (const name of [N.productpage, N.details, N.ratings, 'client', 'weft-agent-node-1', 'weft-agent-node-2']) {
      assert.match(table, new RegExp(`\\s${name}\\s+1/1\\s+Running\\s+0\\s`), `${name} Running and ready in:\n${table}`);
    }
    const pods = JSON.parse(kubectl('get', 'pods', '-n', 'default', '-o', 'json')) as { items: { metadata: { name: string }; spec: { nodeName: string }; status: { podIP: string; hostIP: string; phase: string } }[] };
    const details = pods.items.find((p) => p.metadata.name === N.details)!;
    assert.equal(details.status.podIP, podIp(status, 'default', N.details));
    assert.equal(details.status.hostIP, '198.19.0.2');
    assert.match(details.status.podIP, /^198\.18\.2\.\d+$/, 'from node-2\'s podCIDR');
    const described = kubectl('describe', 'pod', N.details, '-n', 'default');
    assert.match(described, /Node:\s+node-2\/198\.19\.0\.2/);
    assert.match(described, /Status:\s+Running/);
  });

  test('EndpointSlices carry the ready pods with node, target and resolved port; the kubernetes Service points at the API server', () => {
    const slices = JSON.parse(kubectl('get', 'endpointslices', '-n', 'default', '-l', 'kubernetes.io/service-name=productpage', '-o', 'json')) as { items: { metadata: { labels: Record<string, string> }; ports: { name: string; port: number }[]; endpoints: { addresses: string[]; nodeName: string; targetRef: { name: string }; conditions: { ready: boolean; serving: boolean; terminating: boolean } }[] }[] };
    assert.equal(slices.items.length, 1);
    const slice = slices.items[0]!;
    assert.equal(slice.metadata.labels['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');
    assert.deepEqual(slice.ports, [{ name: 'http', port: 9080, protocol: 'TCP' }], 'targetPort "http" resolved to the container port');
    assert.deepEqual(slice.endpoints.map((e) => [e.addresses[0], e.nodeName, e.targetRef.name, e.conditions]), [[podIp(status, 'default', N.productpage), 'node-1', N.productpage, { ready: true, serving: true, terminating: false }]]);
    const api = JSON.parse(kubectl('get', 'endpointslices', '-n', 'default', 'kubernetes', '-o', 'json')) as { endpoints: { addresses: string[] }[]; ports: { port: number }[] };
    assert.deepEqual([api.endpoints[0]?.addresses[0], api.ports[0]?.port], ['198.19.0.254', 6443]);
  });

  test('pods reach the API server through the kubernetes Service (its selectorless EndpointSlice), from inside the mesh and outside it', async () => {
    // /version answers without credentials: any HTTP answer from the API server proves the path.
    const script = "require('https').get({ host: 'kubernetes.default.svc.cluster.local', path: '/version', rejectUnauthorized: false, timeout: 5000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => { console.log(JSON.stringify({ status: r.statusCode, kind: JSON.parse(b).kind ?? 'version' })); }); }).on('error', (e) => { console.error(e.message); process.exit(2); })";
    for (const [pod, ns] of [[N.productpage, 'default'], ['client', 'outside']] as const) {
      const r = await podNode(LAB, pod, ns, script);
      assert.equal(r.code, 0, `${ns}/${pod}: ${r.stderr}`);
      assert.match(r.stdout, /"status":(200|401|403)/, `${ns}/${pod} got an answer of the API server: ${r.stdout}`);
    }
  });

  test('kubectl get -w sees a pod added and removed with kubectl, and the removed pod leaves nothing behind', async () => {
    const { spawn } = await import('node:child_process');
    const watch = spawn('kubectl', ['--kubeconfig', kubePaths(LAB).adminKubeconfig, 'get', 'pods', '-n', 'outside', '--watch', '--output-watch-events', '-o', 'custom-columns=EVENT:.type,NAME:.object.metadata.name,PHASE:.object.status.phase', '--no-headers'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    watch.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    watch.stderr.on('data', (d: Buffer) => (seen += d.toString()));
    try {
      await waitFor(() => /ADDED\s+client/.test(seen), 'the watch lists the existing pods first');
      await addPod(pod('watched', 'outside', 'node-1', {}), 'outside', 'watched');
      await waitFor(() => /MODIFIED\s+watched\s+Running/.test(seen), `the watch saw watched running:\n${seen}`);
      await removePod(join(tmp, 'watched.yaml'));
      await waitFor(() => /DELETED\s+watched/.test(seen), `the watch saw watched deleted:\n${seen}`);
    } finally {
      watch.kill();
    }
    assert.equal(existsSync(`/run/netns/${podNetns(LAB, 'outside', 'watched')}`), false);
    assert.doesNotMatch(kubectl('get', 'pods', '-n', 'outside', '-o', 'name'), /watched/);
  });

  test('an agent that dies is restarted by the kubelet (restartCount 1) and captures its pods again', async () => {
    const before = (await labStatus(LAB)).nodes.find((n) => n.name === 'node-2')!;
    assert.ok(before.agentPid !== undefined && before.agentRunning);
    process.kill(before.agentPid, 'SIGKILL');
    await waitFor(async () => {
      const p = JSON.parse(kubectl('get', 'pod', '-n', 'weft-system', 'weft-agent-node-2', '-o', 'json')) as { status: { containerStatuses: { restartCount: number; ready: boolean }[] } };
      return p.status.containerStatuses[0]!.restartCount === 1 && p.status.containerStatuses[0]!.ready;
    }, 'the agent pod restarted once and is ready again', 30_000);
    await waitCaptured(LAB, 'node-2', NODE2_MESHED);
    const summary = await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', 3);
    assert.equal(summary.ok, 3, JSON.stringify(summary.firstFailure));
  });

  const probeNamespace = (strict: boolean) =>
    yamlFile(`probes-${strict}.yaml`, `apiVersion: v1
kind: Namespace
metadata:
  name: probes
  labels:
    weft.dev/mesh: enabled
---
apiVersion: v1
kind: Pod
metadata:
  name: prober
  namespace: probes
spec:
  nodeName: node-1
  containers:
  - name: main
    command: [node, ${join(REPO_DIR, 'test/e2e/fixtures/probe-app.mjs')}]
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      httpGet: {path: /live, port: 8080}
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 1
${strict ? `---
apiVersion: weft.dev/v1alpha1
kind: PeerAuthentication
metadata:
  name: default
  namespace: probes
spec:
  mtls:
    mode: STRICT
` : ''}`);

  /** Probe requests the prober's app has seen (its log), by path, with the addresses they came from. */
  const probesSeen = (): { path: string; from: string }[] => {
    const log = join(`/run/weft/lab/${LAB}/logs`, 'pod-probes-prober.log');
    if (!existsSync(log)) return [];
    const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{'));
    // The log also has the app's {signal} lines (and an earlier pod's of the same name).
    return lines.map((l) => JSON.parse(l) as { path?: string; from?: string }).filter((x): x is { path: string; from: string } => x.path !== undefined);
  };

  async function probesKeepPodReady(strict: boolean): Promise<void> {
    const file = probeNamespace(strict);
    await labApply({ name: LAB, file });
    try {
      await waitCaptured(LAB, 'node-1', [...NODE1_MESHED, 'probes/prober']);
      const start = probesSeen().length;
      // Five of each after capture: with failureThreshold 1 a single refused probe would show.
      await waitFor(() => {
        const seen = probesSeen().slice(start);
        return seen.filter((p) => p.path === '/live').length >= 5 && seen.filter((p) => p.path === '/ready').length >= 5;
      }, 'five liveness and five readiness probes reached the app after capture', 30_000);
      const p = JSON.parse(kubectl('get', 'pod', '-n', 'probes', 'prober', '-o', 'json')) as { status: { conditions: { type: string; status: string }[]; containerStatuses: { restartCount: number; ready: boolean }[] } };
      assert.equal(p.status.containerStatuses[0]!.restartCount, 0, 'never restarted');
      assert.equal(p.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
      // From the node: its own address, or the link-local address the mesh SNATs probes to.
      assert.ok(probesSeen().every((x) => x.from === '198.19.0.1' || x.from === '169.254.7.127'), JSON.stringify([...new Set(probesSeen().map((x) => x.from))]));
    } finally {
      await labDelete({ name: LAB, file });
    }
  }

  test('graceful deletion: SIGTERM first, the endpoint turns terminating (serving, not ready) and leaves the service, then the pod and its namespace go', async () => {
    const file = yamlFile('slowstop.yaml', `apiVersion: v1
kind: Service
metadata:
  name: slowstop
  namespace: outside
spec:
  selector: {app: slowstop}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata:
  name: slowstop
  namespace: outside
  labels: {app: slowstop}
spec:
  nodeName: node-2
  terminationGracePeriodSeconds: 20
  containers:
  - name: main
    command: [node, ${join(REPO_DIR, 'test/e2e/fixtures/probe-app.mjs')}]
    env:
    - {name: STOP_DELAY_MS, value: "1500"}
    ports:
    - {name: http, containerPort: 8080}
`);
    await labApply({ name: LAB, file });
    type Slice = { items: { endpoints: { conditions: { ready: boolean; serving: boolean; terminating: boolean } }[] }[] };
    const conditions = () => (JSON.parse(kubectl('get', 'endpointslices', '-n', 'outside', '-l', 'kubernetes.io/service-name=slowstop', '-o', 'json')) as Slice).items.flatMap((s) => s.endpoints.map((e) => e.conditions));
    try {
      await waitFor(() => conditions()[0]?.ready === true, 'the endpoint is ready');
      kubectl('delete', 'pod', 'slowstop', '-n', 'outside', '--wait=false');
      await waitFor(() => JSON.stringify(conditions()) === JSON.stringify([{ ready: false, serving: true, terminating: true }]), 'the endpoint is terminating, still serving, not ready');
      assert.match(kubectl('get', 'pod', 'slowstop', '-n', 'outside', '-o', 'jsonpath={.metadata.deletionTimestamp}'), /^\d{4}-/, 'the pod is still there, terminating');
      await waitFor(async () => (await labStatus(LAB)).services.find((v) => v.name === 'slowstop')?.endpoints.length === 0, 'kube-proxy gives the terminating endpoint no new connections');
      await waitFor(() => !kubectl('get', 'pods', '-n', 'outside', '-o', 'name').includes('pod/slowstop'), 'the kubelet deleted the pod once its process exited', 30_000);
      assert.equal(existsSync(`/run/netns/${podNetns(LAB, 'outside', 'slowstop')}`), false, 'its network namespace is gone');
      assert.match(readFileSync(join(`/run/weft/lab/${LAB}/logs`, 'pod-outside-slowstop.log'), 'utf8'), /"signal":"SIGTERM"/, 'the app was asked to stop, not killed');
    } finally {
      await labDelete({ name: LAB, file }).catch(() => undefined);
    }
  });

  test('a meshed pod with readiness and liveness probes stays Ready and is never restarted (PERMISSIVE)', () => probesKeepPodReady(false));

  test('a meshed pod with readiness and liveness probes stays Ready and is never restarted under STRICT mTLS', () => probesKeepPodReady(true));
}
}

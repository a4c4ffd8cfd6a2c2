/**
 * `weft waypoint generate NAME -n NS`: the objects for a real cluster, from the same
 * waypointObjects the lab deploys. Each Kubernetes object valid against its schema
 * (kubernetes-models, offline, as test/daemonset.test.ts checks the install), the Gateway as
 * L7PLAN.md specifies it, the pod as the plan's contract says (labels, ports, flags, image,
 * credentials), RBAC bound to the waypoint's account.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_DIR } from '../../agent/lab/paths.js';

const MAIN = join(REPO_DIR, 'dist/agent/cli/main.js');
const VERSION = (JSON.parse(readFileSync(join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }).version;
/** The flags L7PLAN.md gives `weft waypoint` (wp's process). */
const WAYPOINT_FLAGS = ['--name', '--namespace', '--manifests', '--kubeconfig', '--in-cluster', '--ca', '--ca-token-file', '--ca-root', '--trust-domain', '--hbone', '--metrics', '--readiness', '--admin', '--cluster'];

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
}

const objects = parseAllDocuments(execFileSync(process.execPath, [MAIN, 'waypoint', 'generate', 'reviews-wp', '-n', 'bookinfo'], { encoding: 'utf8' })).map((d) => {
  assert.equal(d.errors.length, 0);
  return d.toJS() as Obj;
});
const find = (kind: string): Obj => {
  const o = objects.find((x) => x.kind === kind);
  assert.ok(o, `${kind} generated`);
  return o;
};

async function validate(o: Obj): Promise<void> {
  const mod = (await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  new mod[o.kind]!(o).validate();
}

test('prints the Gateway, ServiceAccount, RBAC, Deployment and Service, in apply order', () => {
  assert.deepEqual(objects.map((o) => o.kind), ['Gateway', 'ServiceAccount', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment', 'Service']);
  for (const o of objects.filter((x) => !x.kind.startsWith('Cluster'))) assert.equal(o.metadata.namespace, 'bookinfo', `${o.kind} in the namespace`);
});

test('every Kubernetes object is valid against the schema of its kind', async () => {
  for (const o of objects.filter((x) => x.kind !== 'Gateway')) await validate(o).catch((err: Error) => assert.fail(`${o.kind} ${o.metadata.name}: ${err.message}`));
  // The check can fail: a Deployment without its selector is refused.
  const d = structuredClone(find('Deployment'));
  delete (d.spec as { selector?: unknown }).selector;
  await assert.rejects(validate(d), /selector/);
});

test('the Gateway is a waypoint: class weft-waypoint, one HBONE listener on 15008', () => {
  const g = find('Gateway');
  assert.equal(g.apiVersion, 'gateway.networking.k8s.io/v1');
  assert.deepEqual(g.spec, { gatewayClassName: 'weft-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] });
});

test('the Deployment runs weft waypoint --in-cluster from the release image, unmeshed, with its own CA token', () => {
  const d = find('Deployment');
  const spec = d.spec as { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: { serviceAccountName: string; containers: { image: string; command: string[]; args: string[]; ports: { name: string; containerPort: number }[]; readinessProbe: { httpGet: { port: number } } }[]; volumes: { name: string; projected?: { sources: { serviceAccountToken: { audience: string } }[] } }[] } } };
  assert.equal(spec.replicas, 1);
  assert.deepEqual(spec.template.metadata.labels, { 'gateway.networking.k8s.io/gateway-name': 'reviews-wp', 'weft.dev/mesh': 'disabled' });
  assert.deepEqual(spec.selector.matchLabels, { 'gateway.networking.k8s.io/gateway-name': 'reviews-wp' });
  assert.equal(spec.template.spec.serviceAccountName, 'reviews-wp');
  const c = spec.template.spec.containers[0]!;
  assert.equal(c.image, `ghcr.io/weft-mesh/weft:${VERSION}`);
  assert.deepEqual(c.command, ['node', '/opt/weft/dist/agent/cli/main.js']);
  assert.deepEqual(c.args.slice(0, 4), ['waypoint', '--name=reviews-wp', '--namespace=bookinfo', '--in-cluster']);
  for (const a of c.args.slice(1)) assert.ok(WAYPOINT_FLAGS.includes(a.split('=')[0]!), `${a} is a flag of weft waypoint`);
  assert.deepEqual(c.ports.map((p) => [p.name, p.containerPort]), [['hbone', 15008], ['metrics', 15020], ['readiness', 15021]]);
  assert.equal(c.readinessProbe.httpGet.port, 15021);
  const token = spec.template.spec.volumes.find((v) => v.name === 'ca-token')!;
  assert.equal(token.projected!.sources[0]!.serviceAccountToken.audience, 'weft-ca');
  // The same image daemonset/ installs (one version for agent and waypoint).
  assert.match(readFileSync(join(REPO_DIR, 'daemonset', 'agent.yaml'), 'utf8'), new RegExp(`image: ghcr.io/weft-mesh/weft:${VERSION.replace(/\./g, '\\.')}`));
});

test('the Service selects the waypoint pods on 15008 (mesh); the RBAC binds the waypoint account to the ClusterRole daemonset/ installs', () => {
  const s = find('Service');
  assert.deepEqual(s.spec, { type: 'ClusterIP', selector: { 'gateway.networking.k8s.io/gateway-name': 'reviews-wp' }, ports: [{ name: 'mesh', port: 15008, targetPort: 15008, protocol: 'TCP' }] });
  for (const kind of ['ClusterRoleBinding', 'RoleBinding']) assert.deepEqual(find(kind).subjects, [{ kind: 'ServiceAccount', name: 'reviews-wp', namespace: 'bookinfo' }], kind);
  assert.deepEqual(find('ClusterRoleBinding').roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'weft-waypoint' });
  // One definition of the waypoints' cluster-wide access: the install's, never a copy here.
  assert.equal(objects.filter((o) => o.kind === 'ClusterRole').length, 0);
  const shipped = parseAllDocuments(readFileSync(join(REPO_DIR, 'daemonset', 'rbac.yaml'), 'utf8')).map((d) => d.toJS() as Obj);
  const role = shipped.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'weft-waypoint');
  if (role !== undefined) {
    const read = role.rules!.flatMap((r) => r.resources);
    for (const r of ['pods', 'services', 'endpointslices', 'gateways', 'httproutes', 'grpcroutes', 'authorizationpolicies']) assert.ok(read.includes(r), `the shipped weft-waypoint role reads ${r}`);
  }
  assert.deepEqual(find('Role').rules, [{ apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways/status'], resourceNames: ['reviews-wp'], verbs: ['get', 'patch', 'update'] }]);
});

test('refuses names that are not DNS labels', () => {
  assert.throws(() => execFileSync(process.execPath, [MAIN, 'waypoint', 'generate', 'Bad_Name'], { encoding: 'utf8', stdio: 'pipe' }), /must be a DNS label/);
});

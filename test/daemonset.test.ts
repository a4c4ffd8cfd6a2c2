/**
 * The Kubernetes install (`kubectl apply -k daemonset/`), as kubectl renders it: every object
 * valid against the Kubernetes schemas, the container arguments options the CLI knows, and the
 * install blockers of issue 9 (findings 1 and 2) and the production points (build point 6).
 * Schemas: kubernetes-models (JSON schemas of the Kubernetes OpenAPI, compiled validators),
 * offline. Unknown fields are not caught by those schemas (they do not close objects).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const root = new URL('../../', import.meta.url).pathname;
const dir = join(root, 'daemonset');
const main = join(root, 'dist/agent/cli/main.js');
const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';
const VERSION = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const IMAGE = 'ghcr.io/weft-mesh/weft';

interface Container {
  name: string;
  image?: string;
  imagePullPolicy?: string;
  args?: string[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: { name: string }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  priorityClassName?: string;
  tolerations?: { operator?: string; key?: string; effect?: string }[];
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { replicas?: number; minAvailable?: number | string; selector?: { matchLabels?: Record<string, string> }; template?: { metadata?: { labels?: Record<string, string> }; spec: PodSpec } };
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

function parseYaml(text: string, where: string): K8sObject[] {
  return parseAllDocuments(text).map((d) => {
    assert.equal(d.errors.length, 0, `${where}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as K8sObject;
  }).filter((o) => o !== null);
}

function render(path = dir): K8sObject[] {
  return parseYaml(execFileSync(KUBECTL, ['kustomize', path], { encoding: 'utf8' }), `kubectl kustomize ${path}`);
}

const rendered = render();
const find = (kind: string, name: string): K8sObject => {
  const o = rendered.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} is rendered`);
  return o;
};
const podSpec = (o: K8sObject): PodSpec => o.spec!.template!.spec;
const allContainers = (s: PodSpec): Container[] => [...(s.initContainers ?? []), ...s.containers];
const workloads = rendered.filter((o) => o.spec?.template?.spec !== undefined);

/** Validates against the schema of its apiVersion/kind; throws with the schema's complaint. */
async function validate(o: K8sObject): Promise<void> {
  let mod: Record<string, new (data: unknown) => { validate(): void }>;
  try {
    mod = (await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as typeof mod;
  } catch (err) {
    throw new Error(`no schema for ${o.apiVersion} ${o.kind}: ${(err as Error).message}`);
  }
  const Model = mod[o.kind];
  assert.ok(Model, `kubernetes-models/${o.apiVersion}/${o.kind} exports ${o.kind}`);
  new Model(o).validate();
}

test('kustomization resources exist', () => {
  const [k] = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'), 'kustomization.yaml') as unknown as { resources: string[] }[];
  for (const r of k!.resources) assert.ok(existsSync(join(dir, r)), r);
});

test('every rendered object is valid against the Kubernetes schema of its kind', async () => {
  const kinds = new Set(rendered.map((o) => `${o.apiVersion} ${o.kind}`));
  for (const k of ['apps/v1 DaemonSet', 'apps/v1 Deployment', 'policy/v1 PodDisruptionBudget', 'v1 Namespace', 'apiextensions.k8s.io/v1 CustomResourceDefinition', 'rbac.authorization.k8s.io/v1 Role']) {
    assert.ok(kinds.has(k), `${k} is rendered`);
  }
  for (const o of rendered) await validate(o).catch((err: Error) => assert.fail(`${o.kind} ${o.metadata.name}: ${err.message}`));
  // The check can fail: a wrong enum and a wrong type are refused.
  const ca = structuredClone(find('Deployment', 'weft-ca'));
  podSpec(ca).containers[0]!.imagePullPolicy = 'Sometimes';
  await assert.rejects(validate(ca), /imagePullPolicy/);
  const pdb = structuredClone(find('PodDisruptionBudget', 'weft-ca'));
  (pdb.spec as { selector: unknown }).selector = 'app=weft-ca';
  await assert.rejects(validate(pdb), /selector/);
});

test('every container argument is an option of the weft command it runs', () => {
  const helps = new Map<string, string>();
  let checked = 0;
  for (const o of workloads) {
    for (const c of allContainers(podSpec(o))) {
      const [command, ...args] = c.args ?? [];
      assert.ok(command === 'agent' || command === 'ca' || command === 'cni-install', `${o.metadata.name}: unknown command ${command}`);
      if (!helps.has(command!)) helps.set(command!, execFileSync(process.execPath, [main, command!, '--help'], { encoding: 'utf8' }));
      for (const a of args.filter((x) => x.startsWith('--'))) {
        assert.match(helps.get(command!)!, new RegExp(`${a.split('=')[0]}\\b`), `${o.metadata.name}: weft ${command} has no option ${a}`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 6);
});

// Finding 1: `image: weft:latest` had no registry, and :latest makes the pull policy Always, so
// an image loaded into the node was pulled again and failed.
test('images are versioned references to a registry, pulled IfNotPresent (issue 9, finding 1)', () => {
  for (const o of workloads) {
    for (const c of allContainers(podSpec(o))) {
      assert.equal(c.image, `${IMAGE}:${VERSION}`, `${o.metadata.name}/${c.name}: the package version, from a registry`);
      assert.equal(c.imagePullPolicy, 'IfNotPresent', `${o.metadata.name}/${c.name}`);
    }
  }
});

test('the documented kustomize images: override retargets every Weft container', () => {
  const overlay = mkdtempSync(join(tmpdir(), 'weft-deploy-overlay-'));
  try {
    // The override of README "On Kubernetes", in an overlay (kustomize wants a relative base).
    writeFileSync(join(overlay, 'kustomization.yaml'), `resources:\n  - ${join('..', ...Array(overlay.split('/').length - 2).fill('..'), dir)}\nimages:\n  - name: ${IMAGE}\n    newName: registry.example.com/mesh/weft\n    newTag: ${VERSION}-rc1\n`);
    const images = render(overlay).filter((o) => o.spec?.template?.spec !== undefined).flatMap((o) => podSpec(o).containers.map((c) => c.image));
    assert.ok(images.length >= 2);
    for (const image of images) assert.equal(image, `registry.example.com/mesh/weft:${VERSION}-rc1`);
  } finally {
    rmSync(overlay, { recursive: true, force: true });
  }
});

// Finding 2: nothing created weft-ca-keys or weft-ca-root, and the CA pod mounted the Secret,
// so the CA and every agent stayed in ContainerCreating.
test('no pod waits for a Secret nobody creates; agents mount the ConfigMap the CA publishes (issue 9, finding 2)', () => {
  for (const o of workloads) {
    for (const v of podSpec(o).volumes ?? []) assert.equal(v.secret, undefined, `${o.metadata.name} mounts Secret ${v.secret?.secretName}`);
  }
  const ca = podSpec(find('Deployment', 'weft-ca')).containers[0]!;
  assert.ok(!(ca.args ?? []).includes('--dir'), 'the CA reads its key through the API, not a mounted directory');
  const caHelp = execFileSync(process.execPath, [main, 'ca', '--help'], { encoding: 'utf8' });
  // The names the CA bootstraps by default are the ones the manifests refer to.
  assert.match(caHelp, /--keys-secret <name>[\s\S]*default:\s+"weft-ca-keys"/);
  assert.match(caHelp, /--root-configmap <name>[\s\S]*default:\s+"weft-ca-root"/);
  const agent = podSpec(find('DaemonSet', 'weft-agent'));
  assert.ok(agent.volumes?.some((v) => v.configMap?.name === 'weft-ca-root'));
});

test('fit for production: 2 CA replicas with a PDB, CA not root, agent node-critical everywhere, resources (build point 6)', () => {
  const ns = find('Namespace', 'weft-system');
  assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'privileged');

  const ca = find('Deployment', 'weft-ca');
  assert.equal(ca.spec?.replicas, 2);
  const pdb = find('PodDisruptionBudget', 'weft-ca');
  assert.deepEqual(pdb.spec?.selector?.matchLabels, ca.spec?.template?.metadata?.labels);
  assert.ok(typeof pdb.spec?.minAvailable === 'number' && pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < 2);
  const caPod = podSpec(ca);
  assert.equal(caPod.securityContext?.runAsNonRoot, true);
  assert.notEqual(caPod.securityContext?.runAsUser, 0);
  for (const c of caPod.containers) {
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
  }

  const agent = podSpec(find('DaemonSet', 'weft-agent'));
  assert.equal(agent.priorityClassName, 'system-node-critical');
  assert.ok(agent.tolerations?.some((t) => t.operator === 'Exists' && t.key === undefined && t.effect === undefined), 'tolerates every taint');
  // The image runs as uid 1000: what writes to the node or enters namespaces says root itself.
  for (const c of allContainers(agent)) assert.equal(c.securityContext?.runAsUser, 0, `weft-agent/${c.name} runs as root`);
  for (const o of workloads) {
    for (const c of allContainers(podSpec(o))) {
      assert.ok(c.resources?.requests?.['cpu'] && c.resources.requests['memory'], `${o.metadata.name}/${c.name} requests`);
      assert.ok(c.resources?.limits?.['memory'], `${o.metadata.name}/${c.name} memory limit`);
    }
  }
});

test('RBAC: the agent only reads; the CA writes only its own Secret (its namespace) and the weft-ca-root ConfigMaps', () => {
  const agent = find('ClusterRole', 'weft-agent');
  for (const r of agent.rules ?? []) {
    assert.deepEqual([...r.verbs].sort(), ['list', 'watch'], `agent: ${r.resources.join(',')}`);
    assert.ok(!r.resources.includes('secrets') && !r.resources.includes('configmaps'));
  }
  const caCluster = find('ClusterRole', 'weft-ca');
  const clusterResources = (caCluster.rules ?? []).flatMap((r) => r.resources);
  assert.deepEqual([...new Set(clusterResources)].sort(), ['configmaps', 'namespaces', 'pods', 'tokenreviews']);
  // ConfigMaps: weft-ca-root only (create cannot be limited by name); namespaces only read.
  for (const r of caCluster.rules ?? []) {
    if (r.resources.includes('configmaps')) assert.ok(r.resourceNames?.every((n) => n === 'weft-ca-root') || (r.verbs.length === 1 && r.verbs[0] === 'create'), JSON.stringify(r));
    if (r.resources.includes('namespaces')) assert.deepEqual([...r.verbs].sort(), ['list', 'watch']);
    assert.ok(!r.verbs.includes('delete'));
  }
  const caRole = find('Role', 'weft-ca');
  assert.equal(caRole.metadata.namespace, 'weft-system');
  for (const r of caRole.rules ?? []) {
    const named = r.resourceNames !== undefined;
    // create cannot be limited by name in RBAC; every other verb is.
    assert.ok(named || (r.verbs.length === 1 && r.verbs[0] === 'create'), JSON.stringify(r));
    if (named) assert.ok(r.resourceNames!.every((n) => n === 'weft-ca-keys' || n === 'weft-ca-root'));
    assert.ok(!r.verbs.includes('list') && !r.verbs.includes('watch') && !r.verbs.includes('delete'));
  }
  const binding = find('RoleBinding', 'weft-ca');
  assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'weft-ca' });
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'weft-ca', namespace: 'weft-system' }]);
});

test('Dockerfile: multi-stage on Node 24 LTS, runtime dependencies only, iptables, non-root by default', () => {
  const text = readFileSync(join(dir, 'Dockerfile'), 'utf8');
  const froms = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
  assert.ok(froms.length >= 2, 'multi-stage');
  assert.match(text, /^ARG NODE_IMAGE=node:24-/m);
  const final = text.slice(text.lastIndexOf('\nFROM '));
  assert.match(final, /npm ci --omit=dev/);
  assert.match(final, /apt-get install[^\n]*\biptables\b/);
  assert.match(final, /^USER (?!0\b|root\b)\S+/m);
  assert.doesNotMatch(final, /\bnpx tsc\b/, 'the compiler is not in the final stage');
});

/**
 * What the Istio task suites (istio-tasks-*-suite.ts) share: Istio's task manifests
 * (test/fixtures/istio/) applied to and deleted from a lab with `weft lab apply/delete` (local
 * source) or the real `kubectl apply/delete -f` (Kubernetes mode, after Istio's CRDs),
 * the waypoint of Istio's ambient setup (`istioctl waypoint apply -n default` and the namespace
 * enrolled with `istio.io/use-waypoint`), and the waypoint's request metrics.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEWAY_NAME_LABEL } from '../../agent/discovery/types.js';
import { labApply, labDelete, labStatus } from '../../agent/lab/index.js';
import { kubePaths } from '../../agent/lab/kube-paths.js';
import { REPO_DIR } from '../../agent/lab/paths.js';
import { waitFor } from '../helpers/wait.js';
import { podNode } from './helpers.js';

export const FIXTURES = join(REPO_DIR, 'test', 'fixtures', 'istio');
export const WAYPOINT = 'waypoint';
/** Istio's CRDs for the kinds Weft accepts, as a cluster without Istio gets them (examples/istio-crds). */
export const ISTIO_CRDS = join(REPO_DIR, 'examples', 'istio-crds', 'istio-crds.yaml');
const ISTIO_CRD_NAMES = ['virtualservices.networking.istio.io', 'destinationrules.networking.istio.io', 'authorizationpolicies.security.istio.io', 'peerauthentications.security.istio.io'];

/**
 * The lab a task suite runs on, and how its users change it: `weft lab apply/delete` on the
 * local source, the real kubectl against the lab's API server in Kubernetes mode.
 */
export interface TaskLab {
  name: string;
  kubernetes: boolean;
}

/** The real kubectl against a Kubernetes-mode lab's API server (`input`: its stdin, as `-f -`). */
export function kubectl(lab: TaskLab, args: string[], input?: string): string {
  return execFileSync('kubectl', ['--kubeconfig', kubePaths(lab.name).adminKubeconfig, ...args], { encoding: 'utf8', timeout: 90_000, ...(input !== undefined ? { input } : {}) });
}

/** `kubectl apply -f` of Istio's task manifests, in order. */
export async function applyFixtures(lab: TaskLab, ...names: string[]): Promise<void> {
  for (const n of names) {
    if (lab.kubernetes) kubectl(lab, ['apply', '-f', join(FIXTURES, n)]);
    else await labApply({ name: lab.name, file: join(FIXTURES, n) });
  }
}

/** `kubectl delete -f` of Istio's task manifests (objects not there are skipped, as --ignore-not-found). */
export async function deleteFixtures(lab: TaskLab, ...names: string[]): Promise<void> {
  for (const n of names) await deleteFile(lab, join(FIXTURES, n));
}

/** `kubectl apply -f FILE` (a file or a directory of manifests). */
export async function applyFile(lab: TaskLab, file: string): Promise<void> {
  if (lab.kubernetes) kubectl(lab, ['apply', '-f', file]);
  else await labApply({ name: lab.name, file });
}

/** `kubectl delete -f FILE --ignore-not-found`. */
export async function deleteFile(lab: TaskLab, file: string): Promise<void> {
  if (lab.kubernetes) kubectl(lab, ['delete', '-f', file, '--ignore-not-found', '--timeout=60s']);
  else await labDelete({ name: lab.name, file });
}

/** Applies YAML text (what a task page applies with `kubectl apply -f - <<EOF`). */
export async function applyText(lab: TaskLab, yaml: string): Promise<void> {
  if (lab.kubernetes) {
    kubectl(lab, ['apply', '-f', '-'], yaml);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), `weft-${lab.name}-`));
  try {
    const file = join(dir, 'manifest.yaml');
    writeFileSync(file, yaml);
    await labApply({ name: lab.name, file });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Istio's CRDs installed as on a cluster without Istio (`kubectl apply -f` of
 * examples/istio-crds, then `kubectl wait --for condition=established`); Kubernetes mode only
 * (the local source reads every kind from its files).
 */
export function installIstioCrds(lab: TaskLab): void {
  if (!lab.kubernetes) return;
  const present = kubectl(lab, ['get', 'crd', '-o', 'name']);
  if (/\.(networking|security)\.istio\.io$/m.test(present)) throw new Error(`the lab should ship no Istio CRDs (the suite installs them as a user does), has: ${present}`);
  kubectl(lab, ['apply', '-f', ISTIO_CRDS]);
  kubectl(lab, ['wait', '--for', 'condition=established', '--timeout=30s', ...ISTIO_CRD_NAMES.map((n) => `crd/${n}`)]);
}

/**
 * Istio's ambient setup for L7: the waypoint Gateway `waypoint` (class istio-waypoint) and the
 * namespace enrolled to it (`kubectl label namespace default istio.io/use-waypoint=waypoint`;
 * the namespace stays in the mesh). Resolves with the waypoint's pod once it is ready.
 */
export async function enrollWaypoint(lab: TaskLab): Promise<string> {
  await applyFixtures(lab, 'waypoint.yaml');
  if (lab.kubernetes) {
    kubectl(lab, ['label', 'namespace', 'default', 'weft.dev/mesh=enabled', `istio.io/use-waypoint=${WAYPOINT}`, '--overwrite']);
  } else {
    await applyText(lab, `apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    weft.dev/mesh: enabled
    istio.io/use-waypoint: ${WAYPOINT}
`);
  }
  let pod = '';
  await waitFor(async () => {
    const s = await labStatus(lab.name);
    pod = s.pods.find((p) => p.namespace === 'default' && p.labels[GATEWAY_NAME_LABEL] === WAYPOINT && p.running)?.name ?? '';
    return pod !== '';
  }, 'the waypoint pod runs', 60_000);
  await waitFor(async () => (await podNode(lab.name, pod, 'default', `fetch('http://127.0.0.1:15021/healthz/ready').then((r) => process.stdout.write(String(r.status)))`)).stdout === '200', 'the waypoint is ready', 60_000);
  return pod;
}

/** The waypoint's Prometheus text (its :15020/metrics, read inside its pod). */
export async function waypointMetrics(lab: TaskLab, pod: string): Promise<string> {
  const r = await podNode(lab.name, pod, 'default', `fetch('http://127.0.0.1:15020/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`);
  return r.stdout;
}

/** The waypoint's route status rows (its admin /config_dump), for messages when an outcome is not the one expected. */
export async function waypointRoutes(lab: TaskLab, pod: string): Promise<string> {
  const r = await podNode(lab.name, pod, 'default', `fetch('http://127.0.0.1:15000/config_dump').then((r) => r.json()).then((d) => process.stdout.write(JSON.stringify(d.routes ?? [])))`);
  return r.stdout || r.stderr;
}

/** One series of a metric: its labels and value. */
export interface Series {
  labels: Record<string, string>;
  value: number;
}

/** Every series of `metric` in a Prometheus text exposition. */
export function seriesOf(text: string, metric: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const m of line.slice(metric.length + 1, close).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    out.push({ labels, value: Number(line.slice(close + 1).trim().split(' ')[0]) });
  }
  return out;
}

/** The sum of istio_requests_total over the series that have every label of `want`. */
export function requestsTotal(text: string, want: Record<string, string>): number {
  return seriesOf(text, 'istio_requests_total')
    .filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

/** The istio_requests_total lines, for assertion messages. */
export function requestLines(text: string): string {
  return text.split('\n').filter((l) => l.startsWith('istio_requests_total{')).join('\n');
}

/** Waits for Deployments applied with kubectl to be rolled out (`weft lab apply` waits on its own). */
export function rolledOut(lab: TaskLab, deployments: string[]): void {
  if (!lab.kubernetes) return;
  for (const d of deployments) kubectl(lab, ['rollout', 'status', `deployment/${d}`, '--timeout=60s']);
}

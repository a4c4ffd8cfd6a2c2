/**
 * What the Istio task suites (istio-tasks-*.test.ts) share: Istio's task manifests
 * (test/fixtures/istio/) applied to and deleted from a lab as `kubectl apply/delete -f` would,
 * the waypoint of Istio's ambient setup (`istioctl waypoint apply -n default` and the namespace
 * enrolled with `istio.io/use-waypoint`), and the waypoint's request metrics.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEWAY_NAME_LABEL } from '../../agent/discovery/types.js';
import { labApply, labDelete, labStatus } from '../../agent/lab/index.js';
import { REPO_DIR } from '../../agent/lab/paths.js';
import { waitFor } from '../helpers/wait.js';
import { podNode } from './helpers.js';

export const FIXTURES = join(REPO_DIR, 'test', 'fixtures', 'istio');
export const WAYPOINT = 'waypoint';

/** `kubectl apply -f` of Istio's task manifests, in order. */
export async function applyFixtures(lab: string, ...names: string[]): Promise<void> {
  for (const n of names) await labApply({ name: lab, file: join(FIXTURES, n) });
}

/** `kubectl delete -f` of Istio's task manifests (objects not there are skipped, as --ignore-not-found). */
export async function deleteFixtures(lab: string, ...names: string[]): Promise<void> {
  for (const n of names) await labDelete({ name: lab, file: join(FIXTURES, n) });
}

/** Applies YAML text (what a task page applies with `kubectl apply -f - <<EOF`). */
export async function applyText(lab: string, yaml: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `weft-${lab}-`));
  try {
    const file = join(dir, 'manifest.yaml');
    writeFileSync(file, yaml);
    await labApply({ name: lab, file });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Istio's ambient setup for L7: the waypoint Gateway `waypoint` (class istio-waypoint) and the
 * namespace enrolled to it (`kubectl label namespace default istio.io/use-waypoint=waypoint`;
 * the namespace stays in the mesh). Resolves with the waypoint's pod once it is ready.
 */
export async function enrollWaypoint(lab: string): Promise<string> {
  await applyFixtures(lab, 'waypoint.yaml');
  await applyText(lab, `apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    weft.dev/mesh: enabled
    istio.io/use-waypoint: ${WAYPOINT}
`);
  let pod = '';
  await waitFor(async () => {
    const s = await labStatus(lab);
    pod = s.pods.find((p) => p.namespace === 'default' && p.labels[GATEWAY_NAME_LABEL] === WAYPOINT && p.running)?.name ?? '';
    return pod !== '';
  }, 'the waypoint pod runs', 60_000);
  await waitFor(async () => (await podNode(lab, pod, 'default', `fetch('http://127.0.0.1:15021/healthz/ready').then((r) => process.stdout.write(String(r.status)))`)).stdout === '200', 'the waypoint is ready', 60_000);
  return pod;
}

/** The waypoint's Prometheus text (its :15020/metrics, read inside its pod). */
export async function waypointMetrics(lab: string, pod: string): Promise<string> {
  const r = await podNode(lab, pod, 'default', `fetch('http://127.0.0.1:15020/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`);
  return r.stdout;
}

/** The waypoint's route status rows (its admin /config_dump), for messages when an outcome is not the one expected. */
export async function waypointRoutes(lab: string, pod: string): Promise<string> {
  const r = await podNode(lab, pod, 'default', `fetch('http://127.0.0.1:15000/config_dump').then((r) => r.json()).then((d) => process.stdout.write(JSON.stringify(d.routes ?? [])))`);
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

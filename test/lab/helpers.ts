// Shared by the lab's end-to-end tests (root): what "nothing is left" means, and small probes.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LAB_DIR, labPaths, labPrefix } from '../../agent/lab/index.js';

export function labNetns(lab: string): string[] {
  const all = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
  return all.filter((n) => n.startsWith(labPrefix(lab)));
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** `down` left nothing: namespaces, /etc/netns entries, state dir, lock, the given processes. */
export function assertLabGone(lab: string, pids: readonly number[]): void {
  assert.deepEqual(labNetns(lab), [], 'no network namespace of the lab');
  const etc = existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((n) => n.startsWith(labPrefix(lab))) : [];
  assert.deepEqual(etc, [], 'no /etc/netns entry of the lab');
  assert.equal(existsSync(labPaths(lab).stateDir), false, 'no state dir');
  assert.equal(existsSync(labPaths(lab).lockFile), false, 'no lock file');
  assert.deepEqual(pids.filter(pidAlive), [], 'no process of the lab');
}

/** Runs a tool inside a namespace's network stack and returns stdout. */
export function inNetns(netns: string, argv: string[]): string {
  return execFileSync('nsenter', [`--net=/run/netns/${netns}`, '--', ...argv], { encoding: 'utf8' });
}

/** The bookinfo app scripts, for manifests written by tests into temp dirs. */
export const APP = join(DEFAULT_LAB_DIR, 'app');

/** A temp dir holding the given manifest files; removed by the returned function. */
export function manifestDir(files: Record<string, string>): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-lab-test-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function podYaml(o: { name: string; namespace?: string; node: string; labels?: Record<string, string>; script: string; port?: number }): string {
  const labels = Object.entries(o.labels ?? {})
    .map(([k, v]) => `    ${k}: "${v}"`)
    .join('\n');
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${o.name}
  namespace: ${o.namespace ?? 'default'}
${labels === '' ? '' : `  labels:\n${labels}\n`}spec:
  nodeName: ${o.node}
  containers:
    - name: main
      command: [node, ${join(APP, o.script)}]
${o.port === undefined ? '' : `      ports:\n        - name: http\n          containerPort: ${o.port}\n`}`;
}

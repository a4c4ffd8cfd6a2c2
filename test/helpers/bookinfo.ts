/**
 * Bookinfo's pods by their labels: the versions are Deployments, so a pod's name carries its
 * template hash (`details-v1-<hash>-<suffix>`) and tests find it by `app` and `version`.
 */
import assert from 'node:assert/strict';

export interface LabelledPod {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

/** The one pod of `app` at `version` (default v1) in `namespace` (default `default`). */
export function bookinfoPod<P extends LabelledPod>(status: { pods: readonly P[] }, app: string, version = 'v1', namespace = 'default'): P {
  const found = status.pods.filter((p) => p.namespace === namespace && p.labels['app'] === app && p.labels['version'] === version);
  assert.equal(found.length, 1, `one ${namespace} pod with app=${app} version=${version}, found ${found.map((p) => p.name).join(', ') || 'none'}`);
  return found[0]!;
}

/** `bookinfoPod(...).name`. */
export function bookinfoPodName(status: { pods: readonly LabelledPod[] }, app: string, version = 'v1', namespace = 'default'): string {
  return bookinfoPod(status, app, version, namespace).name;
}

/** A lab name for a test file: its own, or WEFT_TEST_LAB's (to run it beside the suite's own lab). */
export function testLabName(own: string): string {
  return process.env['WEFT_TEST_LAB'] ?? own;
}

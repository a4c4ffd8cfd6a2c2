/**
 * Validated objects -> the MeshModel every other module reads, in one go (tests, tools, an
 * empty model to start from). The sources keep their model with a MeshStore (store.ts), which
 * applies each change incrementally; this builds one the same way from a list.
 */
import { objectKey } from './manifest.js';
import { canonicalJson, MeshStore } from './store.js';
import type { ManifestObject, MeshModel } from './types.js';

export { DEFAULT_SERVICE_ACCOUNT, UNKNOWN_VERSION, serviceHostname, spiffeId } from './store.js';

export interface BuildModelOptions {
  trustDomain?: string;
  generation?: number;
}

/**
 * Builds the model. Duplicate objects (same kind, namespace, name) keep the first one. Pods
 * become workloads once they have an IP and are not finished (Succeeded/Failed pods have given
 * their IP back, and another pod may hold it). Only TCP service ports are in the model: the mesh
 * carries TCP only. Endpoints come from EndpointSlices naming the service when there are any,
 * else from the service's selector over ready pods.
 */
export function buildModel(objects: readonly ManifestObject[], options: BuildModelOptions = {}): MeshModel {
  const store = new MeshStore({ selectorEndpoints: true, ...(options.trustDomain !== undefined ? { trustDomain: options.trustDomain } : {}) });
  const seen = new Set<string>();
  for (const o of objects) {
    const key = objectKey(o);
    if (seen.has(key)) continue;
    seen.add(key);
    store.upsertObject(o);
  }
  store.commit(options.generation ?? 0);
  return store.snapshot();
}

/**
 * A string that is equal for two models exactly when they hold the same content (generation
 * aside). For tests and debugging only: the sources never serialise the model to compare it.
 */
export function modelFingerprint(model: MeshModel): string {
  const parts: unknown[] = [model.trustDomain];
  parts.push([...model.namespaces.values()].map((n) => [n.name, sortedEntries(n.labels)]).sort(compareFirst));
  parts.push(
    [...model.workloads.values()]
      .map((w) => [w.key, w.node, w.ip, w.serviceAccount, w.identity, sortedEntries(w.labels), w.inMesh, w.workloadName, w.version, [...w.containerPorts].sort(compareFirst)])
      .sort(compareFirst),
  );
  // Pods without an IP yet: the CNI plugin's requests wait for them to be known.
  parts.push((model.pendingWorkloads?.() ?? []).map((w) => [w.key, w.node, w.identity, w.inMesh]).sort(compareFirst));
  // Pods without an IP yet: the CNI plugin's requests wait for them to be known.
  parts.push((model.pendingWorkloads?.() ?? []).map((w) => [w.key, w.node, w.identity, w.inMesh]).sort(compareFirst));
  parts.push(
    [...model.services.values()]
      .map((s) => [
        s.key,
        s.clusterIP ?? null,
        s.hostname,
        sortedEntries(s.labels),
        [...s.ports].map(([port, eps]) => [port, eps.map((e) => [e.workload?.key ?? null, e.ip, e.port])]).sort((a, b) => (a[0] as number) - (b[0] as number)),
      ])
      .sort(compareFirst),
  );
  parts.push(model.others.map((o) => [objectKey(o), canonicalJson(o)]).sort(compareFirst));
  return JSON.stringify(parts);
}

function compareFirst(a: unknown[], b: unknown[]): number {
  const x = String(a[0]);
  const y = String(b[0]);
  return x < y ? -1 : x > y ? 1 : 0;
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(compareFirst);
}

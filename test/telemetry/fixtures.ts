/** Model workloads for the telemetry tests (only the fields telemetry reads matter). */
import type { Workload } from '../../agent/discovery/types.js';

export function workload(o: { name: string; namespace: string; serviceAccount?: string; labels?: Record<string, string>; inMesh?: boolean; ip?: string }): Workload {
  const serviceAccount = o.serviceAccount ?? 'default';
  const labels = o.labels ?? {};
  return {
    key: `${o.namespace}/${o.name}`,
    name: o.name,
    namespace: o.namespace,
    node: 'node-1',
    ip: o.ip ?? '198.18.128.10',
    serviceAccount,
    identity: `spiffe://cluster.local/ns/${o.namespace}/sa/${serviceAccount}`,
    labels,
    inMesh: o.inMesh ?? true,
    workloadName: labels['app'] ?? o.name,
    version: labels['version'] ?? 'unknown',
    containerPorts: new Map(),
  };
}

/**
 * Validated objects -> the MeshModel every other module reads. Pure and synchronous; built in
 * one pass per kind with indexes made once, so lookups on the connection path are Map gets and a
 * cluster of thousands of pods builds in milliseconds.
 *
 * The model shares label objects with the manifest objects it was built from: both are treated
 * as immutable once parsed.
 */
import { isNamespace, isPod, isService, isServiceAccount, objectKey } from './manifest.js';
import {
  MESH_DISABLED,
  MESH_ENABLED,
  MESH_LABEL,
  type Endpoint,
  type ManifestObject,
  type MeshModel,
  type OtherObject,
  type PodObject,
  type Service,
  type ServiceObject,
  type Workload,
} from './types.js';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_SERVICE_ACCOUNT = 'default';
export const UNKNOWN_VERSION = 'unknown';

export interface BuildModelOptions {
  trustDomain?: string;
  generation?: number;
}

type NamespaceEntry = { name: string; labels: Record<string, string> };

const NO_LABELS: Record<string, string> = Object.freeze({}) as Record<string, string>;

class Model implements MeshModel {
  readonly generation: number;
  readonly trustDomain: string;
  readonly namespaces: ReadonlyMap<string, NamespaceEntry>;
  readonly workloads: ReadonlyMap<string, Workload>;
  readonly services: ReadonlyMap<string, Service>;
  readonly others: readonly OtherObject[];
  readonly #byIp: ReadonlyMap<string, Workload>;
  readonly #byVip: ReadonlyMap<string, Service>;
  readonly #byNode: ReadonlyMap<string, Workload[]>;
  readonly #pending: ReadonlyMap<string, Workload>;

  constructor(parts: {
    generation: number;
    trustDomain: string;
    namespaces: Map<string, NamespaceEntry>;
    workloads: Map<string, Workload>;
    pending?: Map<string, Workload>;
    services: Map<string, Service>;
    others: OtherObject[];
    byIp: Map<string, Workload>;
    byVip: Map<string, Service>;
    byNode: Map<string, Workload[]>;
  }) {
    this.generation = parts.generation;
    this.trustDomain = parts.trustDomain;
    this.namespaces = parts.namespaces;
    this.workloads = parts.workloads;
    this.services = parts.services;
    this.others = parts.others;
    this.#byIp = parts.byIp;
    this.#byVip = parts.byVip;
    this.#byNode = parts.byNode;
    this.#pending = parts.pending ?? new Map();
  }

  pendingWorkload(key: string): Workload | undefined {
    return this.#pending.get(key);
  }

  pendingWorkloads(): Workload[] {
    return [...this.#pending.values()];
  }

  workloadByIp(ip: string): Workload | undefined {
    return this.#byIp.get(ip);
  }

  serviceByVip(ip: string): Service | undefined {
    return this.#byVip.get(ip);
  }

  workloadsOnNode(node: string): Workload[] {
    const list = this.#byNode.get(node);
    return list === undefined ? [] : list.slice();
  }
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export function serviceHostname(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.cluster.local`;
}

/**
 * Builds the model. Duplicate objects (same kind, namespace, name) keep the first one. Pods
 * become workloads once they have an IP and are not finished (Succeeded/Failed pods have given
 * their IP back, and another pod may hold it). Only TCP service ports are in the model: the mesh
 * carries TCP only.
 */
export function buildModel(objects: readonly ManifestObject[], options: BuildModelOptions = {}): MeshModel {
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const namespaces = new Map<string, NamespaceEntry>();
  const pods: PodObject[] = [];
  const serviceObjects: ServiceObject[] = [];
  const others: OtherObject[] = [];
  const seen = new Set<string>();

  for (const o of objects) {
    const key = objectKey(o);
    if (seen.has(key)) continue;
    seen.add(key);
    if (isNamespace(o)) {
      namespaces.set(o.metadata.name, { name: o.metadata.name, labels: o.metadata.labels ?? NO_LABELS });
      continue;
    }
    if (isPod(o)) pods.push(o);
    else if (isService(o)) serviceObjects.push(o);
    else if (!isServiceAccount(o)) others.push(o);
  }
  // Namespaces that objects live in but that no manifest declares exist without labels.
  for (const o of objects) {
    const ns = o.metadata.namespace;
    if (ns !== undefined && !namespaces.has(ns)) namespaces.set(ns, { name: ns, labels: NO_LABELS });
  }

  pods.sort(byNamespaceAndName);
  serviceObjects.sort(byNamespaceAndName);

  const workloads = new Map<string, Workload>();
  const pending = new Map<string, Workload>();
  const byIp = new Map<string, Workload>();
  const byNode = new Map<string, Workload[]>();
  // Ready workloads by `ns \0 label \0 value`, so a selector only looks at pods that carry at
  // least one of its labels instead of every pod of the namespace.
  const readyByLabel = new Map<string, Workload[]>();

  for (const pod of pods) {
    const ip = pod.status?.podIP;
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    const namespace = pod.metadata.namespace ?? 'default';
    const labels = pod.metadata.labels ?? NO_LABELS;
    const hostNetwork = pod.spec.hostNetwork === true;
    const nsLabels = namespaces.get(namespace)?.labels ?? NO_LABELS;
    const serviceAccount = pod.spec.serviceAccountName ?? DEFAULT_SERVICE_ACCOUNT;
    const containerPorts = new Map<string, number>();
    for (const c of pod.spec.containers) {
      if (c.ports === undefined) continue;
      for (const p of c.ports) if (p.name !== undefined) containerPorts.set(p.name, p.containerPort);
    }
    const workload: Workload = {
      key: `${namespace}/${pod.metadata.name}`,
      name: pod.metadata.name,
      namespace,
      node: pod.spec.nodeName ?? '',
      ip: ip ?? '',
      serviceAccount,
      identity: spiffeId(trustDomain, namespace, serviceAccount),
      labels,
      inMesh: !hostNetwork && nsLabels[MESH_LABEL] === MESH_ENABLED && labels[MESH_LABEL] !== MESH_DISABLED,
      workloadName: labels['app'] ?? labels['app.kubernetes.io/name'] ?? pod.metadata.name,
      version: labels['version'] ?? UNKNOWN_VERSION,
      containerPorts,
    };
    if (ip === undefined) {
      // Scheduled, no IP yet (its sandbox is being made): the CNI plugin asks about it by name.
      pending.set(workload.key, workload);
      continue;
    }
    workloads.set(workload.key, workload);
    // A host-network pod has the node's IP: an address says nothing about which pod it is.
    if (!hostNetwork && !byIp.has(ip)) byIp.set(ip, workload);
    const onNode = byNode.get(workload.node);
    if (onNode === undefined) byNode.set(workload.node, [workload]);
    else onNode.push(workload);

    if (phase === undefined || phase === 'Running') {
      for (const label in labels) {
        const k = `${namespace}\0${label}\0${labels[label]}`;
        const list = readyByLabel.get(k);
        if (list === undefined) readyByLabel.set(k, [workload]);
        else list.push(workload);
      }
    }
  }

  const services = new Map<string, Service>();
  const byVip = new Map<string, Service>();
  for (const so of serviceObjects) {
    const namespace = so.metadata.namespace ?? 'default';
    const name = so.metadata.name;
    const clusterIP = so.spec.clusterIP === undefined || so.spec.clusterIP === '' || so.spec.clusterIP === 'None' ? undefined : so.spec.clusterIP;
    const selected = selectWorkloads(readyByLabel, namespace, so.spec.selector);
    const ports = new Map<number, Endpoint[]>();
    for (const sp of so.spec.ports) {
      if (sp.protocol !== undefined && sp.protocol !== 'TCP') continue;
      const target = sp.targetPort ?? sp.port;
      const endpoints: Endpoint[] = [];
      for (const workload of selected) {
        const port = typeof target === 'number' ? target : workload.containerPorts.get(target);
        // A pod without the named port is not an endpoint of this service port (as in Kubernetes).
        if (port !== undefined) endpoints.push({ workload, port });
      }
      ports.set(sp.port, endpoints);
    }
    const service: Service = {
      key: `${namespace}/${name}`,
      name,
      namespace,
      clusterIP,
      ports,
      labels: so.metadata.labels ?? NO_LABELS,
      hostname: serviceHostname(name, namespace),
    };
    services.set(service.key, service);
    if (clusterIP !== undefined && !byVip.has(clusterIP)) byVip.set(clusterIP, service);
  }

  return new Model({
    generation: options.generation ?? 0,
    trustDomain,
    namespaces,
    workloads,
    pending,
    services,
    others,
    byIp,
    byVip,
    byNode,
  });
}

/** Ready workloads of `namespace` whose labels hold every selector entry, in key order. */
function selectWorkloads(
  readyByLabel: ReadonlyMap<string, Workload[]>,
  namespace: string,
  selector: Record<string, string> | undefined,
): Workload[] {
  if (selector === undefined) return [];
  // A service without a selector has endpoints managed elsewhere; Weft has none for it.
  let smallest: Workload[] | undefined;
  for (const label in selector) {
    const list = readyByLabel.get(`${namespace}\0${label}\0${selector[label]}`);
    if (list === undefined) return [];
    if (smallest === undefined || list.length < smallest.length) smallest = list;
  }
  if (smallest === undefined) return [];
  const out: Workload[] = [];
  outer: for (const w of smallest) {
    for (const label in selector) if (w.labels[label] !== selector[label]) continue outer;
    out.push(w);
  }
  return out;
}

function byNamespaceAndName(a: ManifestObject, b: ManifestObject): number {
  const na = a.metadata.namespace ?? '';
  const nb = b.metadata.namespace ?? '';
  if (na !== nb) return na < nb ? -1 : 1;
  const ma = a.metadata.name;
  const mb = b.metadata.name;
  return ma < mb ? -1 : ma > mb ? 1 : 0;
}

/**
 * A string that is equal for two models exactly when they hold the same content (generation
 * aside): what a watcher compares to decide whether anything changed.
 */
export function modelFingerprint(model: MeshModel): string {
  const parts: unknown[] = [model.trustDomain];
  parts.push([...model.namespaces.values()].map((n) => [n.name, sortedEntries(n.labels)]).sort(compareFirst));
  parts.push(
    [...model.workloads.values()]
      .map((w) => [
        w.key,
        w.node,
        w.ip,
        w.serviceAccount,
        w.identity,
        sortedEntries(w.labels),
        w.inMesh,
        w.workloadName,
        w.version,
        [...w.containerPorts].sort(compareFirst),
      ])
      .sort(compareFirst),
  );
  // Pods without an IP yet: the CNI plugin's requests wait for them to be known.
  parts.push((model.pendingWorkloads?.() ?? []).map((w) => [w.key, w.node, w.identity, w.inMesh]).sort(compareFirst));
  parts.push(
    [...model.services.values()]
      .map((s) => [
        s.key,
        s.clusterIP ?? null,
        s.hostname,
        sortedEntries(s.labels),
        [...s.ports]
          .map(([port, eps]) => [port, eps.map((e) => [e.workload.key, e.port])])
          .sort((a, b) => (a[0] as number) - (b[0] as number)),
      ])
      .sort(compareFirst),
  );
  parts.push(model.others.map((o) => [objectKey(o), canonical(o)]).sort(compareFirst));
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

/** JSON with object keys sorted, so key order in a YAML file does not count as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/**
 * The mesh model, kept up to date one object at a time. Both sources (Kubernetes watches, the
 * local manifest directory) feed it facts (facts.ts) as they arrive; each change costs work in
 * proportion to what it touches (one pod: its workload, its indexes, the few services whose
 * endpoints it is part of), never a rebuild of the whole model, and nothing is serialised to
 * tell whether something changed: facts are compared field by field.
 *
 * Lookups on the connection path stay Map gets. Changes are applied in batches: sources call
 * `commit()` after the objects of one event (or one scan), which recomputes the services the
 * batch touched and moves the generation when anything changed. Everything runs synchronously,
 * so a reader never sees half a batch.
 *
 * The models handed out (`snapshot()`) are live views: their maps are the store's own and show
 * later changes; only `generation` is fixed to the commit they were taken at.
 */
import { DEFAULT_CLUSTER_DOMAIN, DEFAULT_TRUST_DOMAIN, HBONE_PORT } from '../config.js';
import { objectKey } from './manifest.js';
import {
  DEFAULT_NAMESPACE,
  namespaceFacts,
  podFacts,
  serviceFacts,
  sliceFacts,
  type NamespaceFacts,
  type PodFacts,
  type ServiceFacts,
  type SliceFacts,
} from './facts.js';
import { GATEWAY_API_GROUP, gatewayFacts, isWaypointFrontend, serviceWaypoint, type GatewayFacts } from './waypoints.js';
import {
  ENDPOINT_SLICE_API_VERSION,
  GATEWAY_NAME_LABEL,
  MESH_DISABLED,
  MESH_ENABLED,
  MESH_LABEL,
  ACCEPTED_USE_WAYPOINT_LABELS,
  type Endpoint,
  type ManifestObject,
  type MeshModel,
  type OtherObject,
  type Refusal,
  type Service,
  type Waypoint,
  type Workload,
} from './types.js';

export const DEFAULT_SERVICE_ACCOUNT = 'default';
export const UNKNOWN_VERSION = 'unknown';

/**
 * Kinds besides the core ones that some module of the agent reads (policy/, the waypoint's
 * Gateway API kinds). Any other kind is dropped on arrival: a 50 MB ConfigMap costs its parse,
 * and nothing after it.
 */
export const KEPT_OTHER_KINDS: ReadonlySet<string> = new Set([
  'AuthorizationPolicy',
  'PeerAuthentication',
  'Gateway',
  'GatewayClass',
  'HTTPRoute',
  'GRPCRoute',
  'ReferenceGrant',
  // Istio's networking kinds (agent/l7/istio, issue 12)
  'VirtualService',
  'DestinationRule',
  // Weft's traffic kinds for Gateway API routes (agent/l7/weft, issue 12)
  'HTTPFault',
  'LocalRateLimitPolicy',
  'Ingress', 'IngressClass', // the ingress gateway's Kubernetes Ingress (agent/gateway/ingress.ts, issue 13)
]);

export interface StoreOptions {
  trustDomain?: string;
  /**
   * Compute a Service's endpoints from its selector over ready pods when no EndpointSlice names
   * it (the local source, which has no endpoint-slice controller). Off (Kubernetes): only
   * EndpointSlices give endpoints, as for kube-proxy.
   */
  selectorEndpoints: boolean;
}

type NamespaceEntry = { name: string; labels: Record<string, string> };

const NO_LABELS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

export function serviceHostname(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.${DEFAULT_CLUSTER_DOMAIN}`;
}

export class MeshStore {
  readonly trustDomain: string;
  readonly #selectorEndpoints: boolean;
  #generation = 0;
  #dirty = false;

  readonly namespaces = new Map<string, NamespaceEntry>();
  readonly #declaredNamespaces = new Set<string>();
  readonly #pods = new Map<string, PodFacts>();
  readonly #podsByNamespace = new Map<string, Set<string>>();
  readonly workloads = new Map<string, Workload>();
  /** Scheduled pods without an IP yet (ip ''): the CNI plugin asks about them by name. */
  readonly #pending = new Map<string, Workload>();
  readonly #ipOwners = new Map<string, Workload[]>();
  readonly #byIp = new Map<string, Workload>();
  readonly #byNode = new Map<string, Map<string, Workload>>();
  readonly #nodeVersions = new Map<string, number>();

  readonly #serviceFacts = new Map<string, ServiceFacts>();
  readonly services = new Map<string, Service>();
  readonly #byVip = new Map<string, Service>();
  readonly #selectorServicesByNamespace = new Map<string, Set<string>>();
  readonly #slices = new Map<string, SliceFacts>();
  readonly #slicesByService = new Map<string, Set<string>>();
  /** endpoint address -> services (with a count of slice endpoints) that list it. */
  readonly #servicesByEndpointIp = new Map<string, Map<string, number>>();
  readonly #dirtyServices = new Set<string>();

  /** Label keys some selector uses -> how many selectors use them (selector mode only). */
  readonly #selectorKeys = new Map<string, number>();
  /** `ns \0 key \0 value` -> pods with that label, for the keys of #selectorKeys only. */
  readonly #podsByLabel = new Map<string, Set<string>>();

  /** Services by namespace (all of them): a namespace's use-waypoint label rebinds them. */
  readonly #servicesByNamespace = new Map<string, Set<string>>();

  /** Waypoint Gateways served, by `ns/name` (an invalid update keeps the last good one here). */
  readonly #waypointGateways = new Map<string, { name: string; namespace: string }>();
  /** Waypoint Gateways refused (`ns/name` -> reason): fields that do not validate. */
  readonly #gatewayRefusals = new Map<string, { code: string; reason: string }>();
  /** Waypoints whose ready pods run as more than one service account (`ns/name` -> reason). */
  readonly #identityRefusals = new Map<string, string>();
  /** Waypoint `ns/name` -> pods labelled `gateway.networking.k8s.io/gateway-name: name` in ns. */
  readonly #waypointPods = new Map<string, Set<string>>();
  readonly waypoints = new Map<string, Waypoint>();
  readonly #dirtyWaypoints = new Set<string>();

  readonly #others = new Map<string, { object: OtherObject; canonical: string }>();
  #othersList: readonly OtherObject[] = [];
  #othersStale = false;

  #view: ModelView;

  constructor(options: StoreOptions) {
    this.trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.#selectorEndpoints = options.selectorEndpoints;
    this.#view = new ModelView(this, 0);
  }

  get generation(): number {
    return this.#generation;
  }

  /** The model as of the last commit. The same object until the next commit that changed something. */
  snapshot(): MeshModel {
    return this.#view;
  }

  /**
   * Ends a batch: recomputes the services it touched and, when anything changed, moves the
   * generation (to `generation` when given). Returns whether anything changed.
   */
  commit(generation?: number): boolean {
    for (const key of this.#dirtyServices) this.#recomputeService(key);
    this.#dirtyServices.clear();
    for (const key of this.#dirtyWaypoints) this.#recomputeWaypoint(key);
    this.#dirtyWaypoints.clear();
    if (!this.#dirty && generation === undefined) return false;
    const changed = this.#dirty;
    this.#dirty = false;
    this.#generation = generation ?? this.#generation + 1;
    this.#view = new ModelView(this, this.#generation);
    return changed || generation !== undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Objects in, by kind. Each returns whether the object is one the model keeps.

  /** Adds or replaces any object the model reads; other kinds are ignored (false). */
  upsertObject(o: ManifestObject): boolean {
    switch (modelKind(o)) {
      case 'Namespace': {
        const f = namespaceFacts(o);
        if (f !== undefined) this.upsertNamespace(f);
        return true;
      }
      case 'Pod': {
        const f = podFacts(o);
        if (f !== undefined) this.upsertPod(f);
        return true;
      }
      case 'Service': {
        const f = serviceFacts(o);
        if (f !== undefined) this.upsertService(f);
        return true;
      }
      case 'EndpointSlice': {
        const f = sliceFacts(o);
        if (f !== undefined) this.upsertSlice(f);
        return true;
      }
      case 'other':
        this.upsertOther(o as OtherObject);
        return true;
      default:
        return false;
    }
  }

  deleteObject(o: ManifestObject): void {
    const ns = o.metadata.namespace ?? DEFAULT_NAMESPACE;
    switch (modelKind(o)) {
      case 'Namespace':
        return this.deleteNamespace(o.metadata.name);
      case 'Pod':
        return this.deletePod(`${ns}/${o.metadata.name}`);
      case 'Service':
        return this.deleteService(`${ns}/${o.metadata.name}`);
      case 'EndpointSlice':
        return this.deleteSlice(`${ns}/${o.metadata.name}`);
      case 'other':
        return this.deleteOther(objectKey(o));
      default:
    }
  }

  upsertNamespace(f: NamespaceFacts): void {
    this.#declaredNamespaces.add(f.name);
    const old = this.namespaces.get(f.name);
    if (old !== undefined && sameRecord(old.labels, f.labels)) return;
    this.namespaces.set(f.name, { name: f.name, labels: f.labels });
    this.#dirty = true;
    this.#refreshNamespacePods(f.name);
    this.#rebindNamespaceServices(f.name, old?.labels, f.labels);
  }

  deleteNamespace(name: string): void {
    if (!this.#declaredNamespaces.delete(name)) return;
    this.#dirty = true;
    // Objects that still name it keep it as an implicit namespace, without labels.
    const hasObjects = (this.#podsByNamespace.get(name)?.size ?? 0) > 0 || [...this.#serviceFacts.values()].some((s) => s.namespace === name);
    const oldLabels = this.namespaces.get(name)?.labels;
    if (hasObjects) this.namespaces.set(name, { name, labels: NO_LABELS });
    else this.namespaces.delete(name);
    this.#refreshNamespacePods(name);
    this.#rebindNamespaceServices(name, oldLabels, NO_LABELS);
  }

  upsertPod(f: PodFacts): void {
    const old = this.#pods.get(f.key);
    if (old !== undefined && samePod(old, f)) return;
    this.#dirty = true;
    this.#pods.set(f.key, f);
    if (old === undefined) {
      let set = this.#podsByNamespace.get(f.namespace);
      if (set === undefined) this.#podsByNamespace.set(f.namespace, (set = new Set()));
      set.add(f.key);
      this.#implicitNamespace(f.namespace);
    }
    this.#indexLabels(old, f);
    this.#indexWaypointPod(old, f);
    this.#setWorkload(f.key, this.#workloadOf(f));
    this.#touchServicesOf(old, f);
  }

  deletePod(key: string): void {
    const old = this.#pods.get(key);
    if (old === undefined) return;
    this.#dirty = true;
    this.#pods.delete(key);
    this.#podsByNamespace.get(old.namespace)?.delete(key);
    this.#indexLabels(old, undefined);
    this.#indexWaypointPod(old, undefined);
    this.#setWorkload(key, undefined);
    this.#touchServicesOf(old, undefined);
  }

  upsertService(f: ServiceFacts): void {
    const old = this.#serviceFacts.get(f.key);
    if (old !== undefined && sameService(old, f)) return;
    this.#dirty = true;
    if (old?.selector !== undefined) this.#unindexSelector(old);
    this.#serviceFacts.set(f.key, f);
    if (f.selector !== undefined) this.#indexSelector(f);
    if (old === undefined) addTo(this.#servicesByNamespace, f.namespace, f.key);
    this.#implicitNamespace(f.namespace);
    this.#dirtyServices.add(f.key);
  }

  deleteService(key: string): void {
    const old = this.#serviceFacts.get(key);
    if (old === undefined) return;
    this.#dirty = true;
    if (old.selector !== undefined) this.#unindexSelector(old);
    this.#serviceFacts.delete(key);
    removeFrom(this.#servicesByNamespace, old.namespace, key);
    this.#dirtyServices.add(key);
  }

  upsertSlice(f: SliceFacts): void {
    const old = this.#slices.get(f.key);
    if (old !== undefined && sameSlice(old, f)) return;
    this.#dirty = true;
    if (old !== undefined) this.#unindexSlice(old);
    this.#slices.set(f.key, f);
    this.#indexSlice(f);
  }

  deleteSlice(key: string): void {
    const old = this.#slices.get(key);
    if (old === undefined) return;
    this.#dirty = true;
    this.#slices.delete(key);
    this.#unindexSlice(old);
  }

  upsertOther(o: OtherObject): void {
    const key = objectKey(o);
    const canonical = canonicalJson(o);
    if (this.#others.get(key)?.canonical === canonical) return;
    this.#others.set(key, { object: o, canonical });
    this.#dirty = true;
    this.#othersStale = true;
    if (o.kind === 'Gateway' && groupOf(o.apiVersion) === GATEWAY_API_GROUP) {
      const f = gatewayFacts(o);
      if (f !== undefined) this.#upsertGateway(f);
    }
  }

  deleteOther(key: string): void {
    if (!this.#others.delete(key)) return;
    this.#dirty = true;
    this.#othersStale = true;
    const [group, kind, namespace, name] = key.split('|');
    if (kind === 'Gateway' && group === GATEWAY_API_GROUP) this.#deleteGateway(`${namespace || DEFAULT_NAMESPACE}/${name}`);
  }

  /** What the model refuses (waypoint Gateways), as the admin API's /refusals shows it. */
  refusals(): Refusal[] {
    const out: Refusal[] = [];
    for (const [key, r] of this.#gatewayRefusals) out.push({ object: `Gateway ${key}`, code: r.code, reason: r.reason });
    for (const [key, reason] of this.#identityRefusals) out.push({ object: `Gateway ${key}`, code: 'WEFT_ERR_WAYPOINT_INVALID', reason });
    return out;
  }

  // ---------------------------------------------------------------------------------------
  // Reads (through ModelView)

  get others(): readonly OtherObject[] {
    if (this.#othersStale) {
      // A new array only when a kept object changed: holders compare by identity.
      this.#othersList = [...this.#others.keys()].sort().map((k) => this.#others.get(k)!.object);
      this.#othersStale = false;
    }
    return this.#othersList;
  }

  workloadByIp(ip: string): Workload | undefined {
    return this.#byIp.get(ip);
  }

  serviceByVip(ip: string): Service | undefined {
    return this.#byVip.get(ip);
  }

  workloadsOnNode(node: string): Workload[] {
    const on = this.#byNode.get(node);
    if (on === undefined) return [];
    return [...on.values()].sort(byKey);
  }

  nodeVersion(node: string): number {
    return this.#nodeVersions.get(node) ?? 0;
  }

  pendingWorkload(key: string): Workload | undefined {
    return this.#pending.get(key);
  }

  pendingWorkloads(): Workload[] {
    return [...this.#pending.values()];
  }

  // ---------------------------------------------------------------------------------------
  // Workloads

  #implicitNamespace(name: string): void {
    if (!this.namespaces.has(name)) this.namespaces.set(name, { name, labels: NO_LABELS });
  }

  /** Pods are workloads once they have an IP and are not finished (a finished pod gave its IP back). */
  #workloadOf(f: PodFacts): Workload | undefined {
    if (f.ip === undefined) return undefined;
    return this.#describe(f);
  }

  /** A workload of the pod whatever its IP (ip '' without one); undefined once it finished. */
  #describe(f: PodFacts): Workload | undefined {
    if (f.phase === 'Succeeded' || f.phase === 'Failed') return undefined;
    const nsLabels = this.namespaces.get(f.namespace)?.labels ?? NO_LABELS;
    const serviceAccount = f.serviceAccount ?? DEFAULT_SERVICE_ACCOUNT;
    return {
      key: f.key,
      name: f.name,
      namespace: f.namespace,
      node: f.node,
      ip: f.ip ?? '',
      serviceAccount,
      identity: spiffeId(this.trustDomain, f.namespace, serviceAccount),
      labels: f.labels,
      inMesh: !f.hostNetwork && nsLabels[MESH_LABEL] === MESH_ENABLED && f.labels[MESH_LABEL] !== MESH_DISABLED,
      workloadName: f.labels['app'] ?? f.labels['app.kubernetes.io/name'] ?? f.name,
      version: f.labels['version'] ?? UNKNOWN_VERSION,
      containerPorts: f.containerPorts,
    };
  }

  #setWorkload(key: string, next: Workload | undefined): void {
    const pod = this.#pods.get(key);
    const waypointName = pod?.labels[GATEWAY_NAME_LABEL];
    if (waypointName !== undefined) this.#dirtyWaypoints.add(`${pod!.namespace}/${waypointName}`);
    const pending = pod !== undefined && pod.ip === undefined ? this.#describe(pod) : undefined;
    const oldPending = this.#pending.get(key);
    if (oldPending !== undefined) this.#bumpNode(oldPending.node);
    if (pending === undefined) this.#pending.delete(key);
    else {
      this.#pending.set(key, pending);
      this.#bumpNode(pending.node);
    }
    const old = this.workloads.get(key);
    if (old !== undefined) {
      this.#bumpNode(old.node);
      this.#byNode.get(old.node)?.delete(key);
      this.#removeIpOwner(old);
    }
    if (next === undefined) {
      this.workloads.delete(key);
      return;
    }
    this.workloads.set(key, next);
    this.#bumpNode(next.node);
    let on = this.#byNode.get(next.node);
    if (on === undefined) this.#byNode.set(next.node, (on = new Map()));
    on.set(key, next);
    // A host-network pod has the node's IP: an address says nothing about which pod it is.
    if (!this.#pods.get(key)!.hostNetwork) this.#addIpOwner(next);
  }

  #bumpNode(node: string): void {
    this.#nodeVersions.set(node, (this.#nodeVersions.get(node) ?? 0) + 1);
  }

  #addIpOwner(w: Workload): void {
    const list = this.#ipOwners.get(w.ip);
    if (list === undefined) this.#ipOwners.set(w.ip, [w]);
    else list.push(w);
    this.#pickIpOwner(w.ip);
  }

  #removeIpOwner(w: Workload): void {
    const list = this.#ipOwners.get(w.ip);
    if (list === undefined) return;
    const i = list.findIndex((x) => x.key === w.key);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#ipOwners.delete(w.ip);
    this.#pickIpOwner(w.ip);
  }

  /**
   * Two pods may hold one IP for a moment (a terminating pod and its successor): the one that
   * is not terminating owns it, then the first by key, whatever order they arrived in.
   */
  #pickIpOwner(ip: string): void {
    const list = this.#ipOwners.get(ip);
    if (list === undefined) {
      this.#byIp.delete(ip);
      return;
    }
    let best: Workload | undefined;
    let bestTerminating = true;
    for (const w of list) {
      const terminating = this.#pods.get(w.key)?.terminating === true;
      if (best === undefined || (bestTerminating && !terminating) || (terminating === bestTerminating && w.key < best.key)) {
        best = w;
        bestTerminating = terminating;
      }
    }
    this.#byIp.set(ip, best!);
  }

  /** A namespace's labels moved: its pods' `inMesh` may have. */
  #refreshNamespacePods(namespace: string): void {
    for (const key of this.#podsByNamespace.get(namespace) ?? []) {
      const f = this.#pods.get(key)!;
      const current = this.workloads.get(key) ?? this.#pending.get(key);
      if (this.#describe(f)?.inMesh === current?.inMesh) continue;
      this.#setWorkload(key, this.#workloadOf(f));
      this.#touchServicesOf(f, f);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Waypoints: Gateways of class weft-waypoint, their pods, the services bound to them

  /** A namespace's labels moved: its services rebind when its use-waypoint label did. */
  #rebindNamespaceServices(namespace: string, old: Record<string, string> | undefined, next: Record<string, string>): void {
    if (ACCEPTED_USE_WAYPOINT_LABELS.every((k) => old?.[k] === next[k])) return;
    for (const key of this.#servicesByNamespace.get(namespace) ?? []) this.#dirtyServices.add(key);
  }

  /** Keeps #waypointPods from the gateway-name label; the waypoints a change touches recompute. */
  #indexWaypointPod(old: PodFacts | undefined, next: PodFacts | undefined): void {
    const was = old?.labels[GATEWAY_NAME_LABEL];
    const is = next?.labels[GATEWAY_NAME_LABEL];
    if (was !== undefined) {
      const key = `${old!.namespace}/${was}`;
      if (is !== was) removeFrom(this.#waypointPods, key, old!.key);
      this.#dirtyWaypoints.add(key);
    }
    if (is !== undefined) {
      const key = `${next!.namespace}/${is}`;
      addTo(this.#waypointPods, key, next!.key);
      this.#dirtyWaypoints.add(key);
    }
  }

  #upsertGateway(f: GatewayFacts): void {
    if (f.kind === 'ignored') return this.#deleteGateway(f.key);
    if (f.kind === 'invalid') {
      const kept = this.#waypointGateways.has(f.key);
      // Fail closed and keep serving: an invalid update leaves the last good waypoint in force.
      this.#gatewayRefusals.set(f.key, { code: 'WEFT_ERR_WAYPOINT_INVALID', reason: `${f.reason}${kept ? '; refused, the last good version stays' : '; refused, not a waypoint'}` });
    } else {
      this.#gatewayRefusals.delete(f.key);
      this.#waypointGateways.set(f.key, { name: f.name, namespace: f.namespace });
    }
    this.#dirtyWaypoints.add(f.key);
  }

  #deleteGateway(key: string): void {
    this.#gatewayRefusals.delete(key);
    if (this.#waypointGateways.delete(key)) this.#dirtyWaypoints.add(key);
  }

  /**
   * A waypoint's ready pods and identity. Its pods must all run as one service account (the
   * identity source agents expect): pods of two are refused, none used, the waypoint down.
   */
  #recomputeWaypoint(key: string): void {
    const gateway = this.#waypointGateways.get(key);
    const old = this.waypoints.get(key);
    if (gateway === undefined) {
      this.#identityRefusals.delete(key);
      if (old !== undefined) {
        this.waypoints.delete(key);
        this.#dirty = true;
      }
      return;
    }
    const ready: Workload[] = [];
    const accounts = new Set<string>();
    for (const podKey of this.#waypointPods.get(key) ?? []) {
      const pod = this.#pods.get(podKey)!;
      const w = this.workloads.get(podKey);
      if (w === undefined || pod.hostNetwork || !pod.ready || pod.terminating) continue;
      ready.push(w);
      accounts.add(w.serviceAccount);
    }
    ready.sort(byKey);
    const conflict = accounts.size > 1;
    if (conflict) this.#identityRefusals.set(key, `its ready pods run as different service accounts (${[...accounts].sort().join(', ')}): a waypoint has one identity; none of its pods is used until they agree`);
    else this.#identityRefusals.delete(key);
    // With no (agreeing) pod, the identity its pods will have: the Gateway's own service account.
    const serviceAccount = !conflict && ready.length > 0 ? ready[0]!.serviceAccount : gateway.name;
    const endpoints: Endpoint[] = conflict ? [] : ready.map((w) => ({ ip: w.ip, port: HBONE_PORT, workload: w }));
    const next: Waypoint = { key, name: gateway.name, namespace: gateway.namespace, identity: spiffeId(this.trustDomain, gateway.namespace, serviceAccount), endpoints };
    if (old !== undefined && sameWaypoint(old, next)) return;
    this.waypoints.set(key, next);
    this.#dirty = true;
  }

  // ---------------------------------------------------------------------------------------
  // Services and their endpoints

  /** Marks the services whose endpoints list this pod (before or after the change). */
  #touchServicesOf(old: PodFacts | undefined, next: PodFacts | undefined): void {
    for (const f of [old, next]) {
      if (f === undefined) continue;
      if (f.ip !== undefined) for (const svc of this.#servicesByEndpointIp.get(f.ip)?.keys() ?? []) this.#dirtyServices.add(svc);
      if (!this.#selectorEndpoints) continue;
      for (const svc of this.#selectorServicesByNamespace.get(f.namespace) ?? []) {
        if (matches(this.#serviceFacts.get(svc)!.selector!, f.labels)) this.#dirtyServices.add(svc);
      }
    }
  }

  #indexSlice(f: SliceFacts): void {
    if (f.service === undefined) return;
    let set = this.#slicesByService.get(f.service);
    if (set === undefined) this.#slicesByService.set(f.service, (set = new Set()));
    set.add(f.key);
    for (const e of f.endpoints) {
      let services = this.#servicesByEndpointIp.get(e.ip);
      if (services === undefined) this.#servicesByEndpointIp.set(e.ip, (services = new Map()));
      services.set(f.service, (services.get(f.service) ?? 0) + 1);
    }
    this.#dirtyServices.add(f.service);
  }

  #unindexSlice(f: SliceFacts): void {
    if (f.service === undefined) return;
    const set = this.#slicesByService.get(f.service);
    set?.delete(f.key);
    if (set?.size === 0) this.#slicesByService.delete(f.service);
    for (const e of f.endpoints) {
      const services = this.#servicesByEndpointIp.get(e.ip);
      if (services === undefined) continue;
      const n = (services.get(f.service) ?? 1) - 1;
      if (n <= 0) services.delete(f.service);
      else services.set(f.service, n);
      if (services.size === 0) this.#servicesByEndpointIp.delete(e.ip);
    }
    this.#dirtyServices.add(f.service);
  }

  #indexSelector(f: ServiceFacts): void {
    let set = this.#selectorServicesByNamespace.get(f.namespace);
    if (set === undefined) this.#selectorServicesByNamespace.set(f.namespace, (set = new Set()));
    set.add(f.key);
    if (!this.#selectorEndpoints) return;
    for (const k in f.selector) {
      const n = this.#selectorKeys.get(k) ?? 0;
      this.#selectorKeys.set(k, n + 1);
      if (n === 0) for (const pod of this.#pods.values()) this.#indexLabel(pod, k, true);
    }
  }

  #unindexSelector(f: ServiceFacts): void {
    this.#selectorServicesByNamespace.get(f.namespace)?.delete(f.key);
    if (!this.#selectorEndpoints) return;
    for (const k in f.selector) {
      const n = (this.#selectorKeys.get(k) ?? 1) - 1;
      if (n > 0) {
        this.#selectorKeys.set(k, n);
        continue;
      }
      this.#selectorKeys.delete(k);
      for (const pod of this.#pods.values()) this.#indexLabel(pod, k, false);
    }
  }

  /** Keeps #podsByLabel for the label keys selectors use (a pod's other labels cost nothing). */
  #indexLabels(old: PodFacts | undefined, next: PodFacts | undefined): void {
    if (!this.#selectorEndpoints || this.#selectorKeys.size === 0) return;
    if (old !== undefined && next !== undefined && old.labels === next.labels) return;
    for (const k of this.#selectorKeys.keys()) {
      if (old !== undefined) this.#indexLabel(old, k, false);
      if (next !== undefined) this.#indexLabel(next, k, true);
    }
  }

  #indexLabel(pod: PodFacts, labelKey: string, add: boolean): void {
    const value = pod.labels[labelKey];
    if (value === undefined) return;
    const k = `${pod.namespace}\0${labelKey}\0${value}`;
    let set = this.#podsByLabel.get(k);
    if (add) {
      if (set === undefined) this.#podsByLabel.set(k, (set = new Set()));
      set.add(pod.key);
    } else if (set !== undefined) {
      set.delete(pod.key);
      if (set.size === 0) this.#podsByLabel.delete(k);
    }
  }

  #recomputeService(key: string): void {
    const f = this.#serviceFacts.get(key);
    const old = this.services.get(key);
    if (old?.clusterIP !== undefined && this.#byVip.get(old.clusterIP) === old) this.#byVip.delete(old.clusterIP);
    if (f === undefined) {
      this.services.delete(key);
      return;
    }
    const fromSlices = !this.#selectorEndpoints || (this.#slicesByService.get(key)?.size ?? 0) > 0;
    const ports = fromSlices ? this.#endpointsFromSlices(f) : this.#endpointsFromSelector(f);
    const service: Service = {
      key,
      name: f.name,
      namespace: f.namespace,
      clusterIP: f.clusterIP,
      ports,
      labels: f.labels,
      hostname: serviceHostname(f.name, f.namespace),
      waypoint: isWaypointFrontend(f.selector, f.labels) ? undefined : serviceWaypoint(f.namespace, f.labels, this.namespaces.get(f.namespace)?.labels ?? NO_LABELS),
    };
    this.services.set(key, service);
    // Two services claiming one VIP (a manifest mistake): the first by key keeps it.
    if (f.clusterIP !== undefined) {
      const holder = this.#byVip.get(f.clusterIP);
      if (holder === undefined || holder.key > key) this.#byVip.set(f.clusterIP, service);
    }
  }

  /** Ready pods the selector picks, each port's target resolved per pod (named ports by name). */
  #endpointsFromSelector(f: ServiceFacts): Map<number, Endpoint[]> {
    const ports = new Map<number, Endpoint[]>();
    const selected: Workload[] = [];
    if (f.selector !== undefined) {
      let smallest: Set<string> | undefined;
      for (const k in f.selector) {
        const set = this.#podsByLabel.get(`${f.namespace}\0${k}\0${f.selector[k]}`);
        if (set === undefined) {
          smallest = undefined;
          break;
        }
        if (smallest === undefined || set.size < smallest.size) smallest = set;
      }
      for (const podKey of smallest ?? []) {
        const pod = this.#pods.get(podKey)!;
        if (!pod.ready || pod.terminating || !matches(f.selector, pod.labels)) continue;
        const w = this.workloads.get(podKey);
        if (w !== undefined) selected.push(w);
      }
      selected.sort(byKey);
    }
    for (const sp of f.ports) {
      const endpoints: Endpoint[] = [];
      for (const w of selected) {
        const port = typeof sp.targetPort === 'number' ? sp.targetPort : w.containerPorts.get(sp.targetPort);
        // A pod without the named port is not an endpoint of this service port (as in Kubernetes).
        if (port !== undefined) endpoints.push({ ip: w.ip, port, workload: w });
      }
      ports.set(sp.port, endpoints);
    }
    return ports;
  }

  /**
   * Ready endpoints of the service's EndpointSlices (serving-but-terminating ones get no new
   * connection; open ones are not cut). Each address is matched to the pod discovery knows:
   * - the slice names a Pod: that pod, if known with that IP; if not (yet), the endpoint is left
   *   out: a pod could be meshed, and plaintext to a meshed pod is what fail-closed forbids;
   * - no Pod named (a hand-made slice, the API server of `kubernetes.default`): the pod holding
   *   the address if there is one, else nobody: the endpoint is outside the mesh, reached directly.
   */
  #endpointsFromSlices(f: ServiceFacts): Map<number, Endpoint[]> {
    const ports = new Map<number, Endpoint[]>();
    const slices: SliceFacts[] = [];
    for (const sliceKey of this.#slicesByService.get(f.key) ?? []) slices.push(this.#slices.get(sliceKey)!);
    slices.sort(byKey);
    for (const sp of f.ports) {
      const endpoints: Endpoint[] = [];
      const seen = new Set<string>();
      for (const slice of slices) {
        const sport = slice.ports.find((p) => p.name === sp.name);
        if (sport === undefined) continue;
        for (const e of slice.endpoints) {
          if (!e.ready || e.terminating) continue;
          const id = `${e.ip}:${sport.port}`;
          if (seen.has(id)) continue;
          let workload: Workload | undefined;
          if (e.pod !== undefined) {
            workload = this.workloads.get(e.pod);
            if (workload === undefined || workload.ip !== e.ip) continue;
          } else {
            workload = this.#byIp.get(e.ip);
          }
          seen.add(id);
          endpoints.push({ ip: e.ip, port: sport.port, workload });
        }
      }
      ports.set(sp.port, endpoints);
    }
    return ports;
  }
}

/** What the connection path and everything else reads: the store's maps, at one generation. */
class ModelView implements MeshModel {
  readonly #store: MeshStore;
  readonly generation: number;

  constructor(store: MeshStore, generation: number) {
    this.#store = store;
    this.generation = generation;
  }

  get trustDomain(): string {
    return this.#store.trustDomain;
  }
  get namespaces(): ReadonlyMap<string, NamespaceEntry> {
    return this.#store.namespaces;
  }
  get workloads(): ReadonlyMap<string, Workload> {
    return this.#store.workloads;
  }
  get services(): ReadonlyMap<string, Service> {
    return this.#store.services;
  }
  get waypoints(): ReadonlyMap<string, Waypoint> {
    return this.#store.waypoints;
  }
  get others(): readonly OtherObject[] {
    return this.#store.others;
  }
  workloadByIp(ip: string): Workload | undefined {
    return this.#store.workloadByIp(ip);
  }
  serviceByVip(ip: string): Service | undefined {
    return this.#store.serviceByVip(ip);
  }
  workloadsOnNode(node: string): Workload[] {
    return this.#store.workloadsOnNode(node);
  }
  pendingWorkload(key: string): Workload | undefined {
    return this.#store.pendingWorkload(key);
  }
  pendingWorkloads(): Workload[] {
    return this.#store.pendingWorkloads();
  }
  nodeVersion(node: string): number {
    return this.#store.nodeVersion(node);
  }
}

type ModelKind = 'Namespace' | 'Pod' | 'Service' | 'EndpointSlice' | 'other' | undefined;

/** Which part of the model an object feeds; undefined for kinds the agent does not use. */
export function modelKind(o: { apiVersion: string; kind: string }): ModelKind {
  if (o.apiVersion === 'v1') {
    if (o.kind === 'Namespace' || o.kind === 'Pod' || o.kind === 'Service') return o.kind;
    return undefined;
  }
  if (o.kind === 'EndpointSlice' && o.apiVersion === ENDPOINT_SLICE_API_VERSION) return 'EndpointSlice';
  return KEPT_OTHER_KINDS.has(o.kind) ? 'other' : undefined;
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

function addTo(index: Map<string, Set<string>>, key: string, member: string): void {
  let set = index.get(key);
  if (set === undefined) index.set(key, (set = new Set()));
  set.add(member);
}

function removeFrom(index: Map<string, Set<string>>, key: string, member: string): void {
  const set = index.get(key);
  set?.delete(member);
  if (set?.size === 0) index.delete(key);
}

/** `gateway.networking.k8s.io` of `gateway.networking.k8s.io/v1`; '' for the core group. */
function groupOf(apiVersion: string): string {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function sameWaypoint(a: Waypoint, b: Waypoint): boolean {
  if (a.identity !== b.identity || a.endpoints.length !== b.endpoints.length) return false;
  for (let i = 0; i < a.endpoints.length; i++) if (a.endpoints[i]!.workload !== b.endpoints[i]!.workload) return false;
  return true;
}

function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function sameRecord(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _k in b) n--;
  return n === 0;
}

function samePod(a: PodFacts, b: PodFacts): boolean {
  if (
    a.node !== b.node ||
    a.ip !== b.ip ||
    a.phase !== b.phase ||
    a.hostNetwork !== b.hostNetwork ||
    a.serviceAccount !== b.serviceAccount ||
    a.ready !== b.ready ||
    a.terminating !== b.terminating ||
    a.containerPorts.size !== b.containerPorts.size ||
    !sameRecord(a.labels, b.labels)
  ) {
    return false;
  }
  for (const [k, v] of a.containerPorts) if (b.containerPorts.get(k) !== v) return false;
  return true;
}

function sameService(a: ServiceFacts, b: ServiceFacts): boolean {
  if (a.type !== b.type || a.clusterIP !== b.clusterIP || a.ports.length !== b.ports.length) return false;
  if (!sameRecord(a.selector, b.selector) || !sameRecord(a.labels, b.labels)) return false;
  for (let i = 0; i < a.ports.length; i++) {
    const p = a.ports[i]!;
    const q = b.ports[i]!;
    if (p.name !== q.name || p.port !== q.port || p.targetPort !== q.targetPort) return false;
  }
  return true;
}

function sameSlice(a: SliceFacts, b: SliceFacts): boolean {
  return a.service === b.service && JSON.stringify(a.ports) === JSON.stringify(b.ports) && JSON.stringify(a.endpoints) === JSON.stringify(b.endpoints);
}

/** JSON with object keys sorted, so key order in a YAML file does not count as a change. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

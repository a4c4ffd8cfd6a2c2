/**
 * Discovery from a Kubernetes API server: one list + watch (reflector.ts) per collection, each
 * event applied to the model as it arrives (store.ts), never a rebuild.
 *
 * What an agent watches (and why):
 * - Pods of its own node, in full (`fieldSelector=spec.nodeName=<node>`): what it captures, with
 *   every label (policy selectors match them) and container port;
 * - Pods of the whole cluster, kept as a few facts each (IP, node, service account, phase,
 *   readiness, the telemetry labels): the identity an HBONE destination must present and the
 *   names telemetry reports, for every endpoint this node may dial. Its own node's pods are
 *   left to the first watch;
 * - Services and EndpointSlices (discovery.k8s.io/v1): the routing, as kube-proxy reads it,
 *   selectorless Services included; Namespaces (mesh opt-in); Weft's policies;
 * - the Gateway API's Gateways, HTTPRoutes and GRPCRoutes (waypoints and their routes; a
 *   waypoint's source also ReferenceGrants, `referenceGrants`), only when
 *   the server serves `gateway.networking.k8s.io/v1` (its CRDs are optional on a cluster): asked
 *   once at start (before the first model, so a waypointed service is never routed at L4 for a
 *   moment), then every GATEWAY_API_RECHECK_MS while absent.
 * Nothing else is listed, and no raw object is kept.
 *
 * `start()` resolves once every collection was listed successfully (retrying with backoff
 * meanwhile); while the API server is unreachable the last model stays in force.
 */
import { EventEmitter } from 'node:events';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { Backoff, realClock, type BackoffOptions, type Clock } from './backoff.js';
import { servedResources } from './api-groups.js';
import { GATEWAY_API_GROUP, GATEWAY_API_VERSION } from './waypoints.js';
import { GATEWAY_API_RECHECK_MS } from '../config.js';
import { metaOf, namespaceFacts, podFacts, serviceFacts, sliceFacts, DEFAULT_NAMESPACE, type PodFacts } from './facts.js';
import { Reflector, type Converted, type ReflectorHandler, type SharedTls } from './reflector.js';
import { MeshStore } from './store.js';
import type { ManifestError, MeshModel, OtherObject, Refusal } from './types.js';
import { ENDPOINT_SLICE_API_VERSION } from './types.js';
import { POLICY_GROUP, POLICY_VERSION } from '../../policy/schema.js';

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  trustDomain?: string;
  /**
   * The agent's node: its pods are watched in full. Without one (the CA), every pod is kept as
   * facts with the telemetry labels only.
   */
  nodeName?: string;
  clock?: Clock;
  backoff?: BackoffOptions;
  pageSize?: number;
  maxObjectBytes?: number;
  /** How often a server without the Gateway API is asked again (default GATEWAY_API_RECHECK_MS). */
  gatewayApiRecheckMs?: number;
  /** Also watch ReferenceGrants (a waypoint resolves cross-namespace backendRefs with them; the agent does not). */
  referenceGrants?: boolean;
}

export interface KubernetesSourceStats {
  requests: { list: number; watch: number };
  objects: Record<string, number>;
  /** Watch events applied, and the time each took (the last EVENT_SAMPLES), in ms. */
  events: { count: number; maxMs: number; recentMs: number[] };
}

const EVENT_SAMPLES = 2000;

/** The Gateway API kinds the agent watches: kind, plural (what discovery lists), version. */
const GATEWAY_API_KINDS: readonly GatewayKind[] = [
  ['Gateway', 'gateways', 'v1'],
  ['HTTPRoute', 'httproutes', 'v1'],
  ['GRPCRoute', 'grpcroutes', 'v1'],
];
/** What a waypoint also reads: the grants that allow cross-namespace backendRefs (standard channel: v1beta1). */
const REFERENCE_GRANT: GatewayKind = ['ReferenceGrant', 'referencegrants', 'v1beta1'];
type GatewayKind = readonly [kind: string, plural: string, version: string];

/**
 * Istio's kinds Weft accepts as its own (issue 12): the waypoint's routes (agent/l7/istio) and
 * the policies (policy/). Watched only when the server serves the group version (Istio's CRDs
 * installed), asked once at start; the API server converts older versions' objects to these.
 */
const ISTIO_APIS: readonly (readonly [groupVersion: string, kinds: readonly (readonly [kind: string, plural: string])[]])[] = [
  ['networking.istio.io/v1', [['VirtualService', 'virtualservices'], ['DestinationRule', 'destinationrules']]],
  ['security.istio.io/v1', [['AuthorizationPolicy', 'authorizationpolicies'], ['PeerAuthentication', 'peerauthentications']]],
  // Weft's traffic kinds (agent/l7/weft, issue 12), newer than its policy CRDs: watched where installed.
  ['weft.dev/v1alpha1', [['HTTPFault', 'httpfaults'], ['LocalRateLimitPolicy', 'localratelimitpolicies']]],
];

/** Kubernetes loads a kubeconfig file, or the in-cluster service account when `path` is undefined. */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}

export class KubernetesSource extends EventEmitter {
  readonly #log: Logger;
  readonly #options: KubernetesSourceOptions;
  readonly #store: MeshStore;
  readonly #reflectors: Reflector<unknown>[] = [];
  readonly #abort = new AbortController();
  /** Adds a reflector of one more collection (started by the caller). */
  readonly #addOther: (kind: string, path: string, apiVersion: string) => Reflector<unknown>;
  /** Whether the server serves the Gateway API (undefined until asked). */
  #gatewayApi: boolean | undefined;
  /** The Gateway API kinds this source wants (the agent's, plus ReferenceGrant for a waypoint). */
  readonly #gatewayWanted: readonly GatewayKind[];
  /** The Gateway API kinds watched so far (CRDs are installed one by one: some may come later). */
  readonly #gatewayKinds = new Set<string>();
  readonly #refusals = new Map<string, Refusal>();
  readonly #requests = { list: 0, watch: 0 };
  readonly #events = { count: 0, maxMs: 0, recentMs: [] as number[] };
  #synced = false;
  #stopped = false;
  #pendingUpdate = false;

  constructor(options: KubernetesSourceOptions) {
    super();
    this.#log = options.logger;
    this.#options = options;
    this.#gatewayWanted = options.referenceGrants === true ? [...GATEWAY_API_KINDS, REFERENCE_GRANT] : GATEWAY_API_KINDS;
    this.#store = new MeshStore({ selectorEndpoints: false, ...(options.trustDomain ? { trustDomain: options.trustDomain } : {}) });
    const node = options.nodeName;
    const store = this.#store;
    const sharedTls: SharedTls = {};
    const add = <T>(kind: string, path: string, convert: (raw: unknown) => Converted<T> | undefined, apply: { upsert: (v: T) => void; remove: (v: T, key: string) => void }, fieldSelector?: string): Reflector<unknown> => {
      const handler: ReflectorHandler<T> = {
        upsert: (_key, value) => apply.upsert(value),
        remove: (key, value) => apply.remove(value, key),
        flush: () => this.#flush(),
        refused: (key, reason) => this.#refused(kind, key, reason),
      };
      const reflector = new Reflector<T>({
          kubeConfig: options.kubeConfig,
          kind,
          path,
          convert,
          handler,
          logger: options.logger,
          tls: sharedTls,
          onRequest: (verb) => this.#requests[verb]++,
          onEventApplied: (ms) => this.#eventApplied(ms),
          ...(fieldSelector !== undefined ? { fieldSelector } : {}),
          ...(options.clock ? { clock: options.clock } : {}),
          ...(options.backoff ? { backoff: options.backoff } : {}),
          ...(options.pageSize ? { pageSize: options.pageSize } : {}),
          ...(options.maxObjectBytes ? { maxObjectBytes: options.maxObjectBytes } : {}),
        }) as Reflector<unknown>;
      this.#reflectors.push(reflector);
      return reflector;
    };
    const keyed = <T extends { key: string }>(f: T | undefined): Converted<T> | undefined => (f === undefined ? undefined : { key: f.key, value: f });

    add('Namespace', '/api/v1/namespaces', (raw) => {
      const f = namespaceFacts(raw);
      return f === undefined ? undefined : { key: f.name, value: f };
    }, { upsert: (f) => store.upsertNamespace(f), remove: (f) => store.deleteNamespace(f.name) });

    const podsApply = { upsert: (f: PodFacts) => store.upsertPod(f), remove: (f: PodFacts) => store.deletePod(f.key) };
    if (node !== undefined) {
      add('Pod', '/api/v1/pods', (raw) => keyed(podFacts(raw)), podsApply, `spec.nodeName=${node}`);
      // The rest of the cluster, stripped; this node's pods belong to the watch above.
      const remote = { upsert: (f: PodFacts) => (f.node === node ? undefined : store.upsertPod(f)), remove: (f: PodFacts) => (f.node === node ? undefined : store.deletePod(f.key)) };
      add('Pod', '/api/v1/pods', (raw) => keyed(podFacts(raw, { stripLabels: true })), remote);
    } else {
      add('Pod', '/api/v1/pods', (raw) => keyed(podFacts(raw, { stripLabels: true })), podsApply);
    }
    add('Service', '/api/v1/services', (raw) => keyed(serviceFacts(raw)), { upsert: (f) => store.upsertService(f), remove: (f) => store.deleteService(f.key) });
    add('EndpointSlice', `/apis/${ENDPOINT_SLICE_API_VERSION}/endpointslices`, (raw) => keyed(sliceFacts(raw)), { upsert: (f) => store.upsertSlice(f), remove: (f) => store.deleteSlice(f.key) });
    const other = (kind: string, path: string, apiVersion: string): Reflector<unknown> =>
      add(kind, path, (raw) => {
        const meta = metaOf(raw);
        if (meta === undefined) return undefined;
        // List items come without apiVersion/kind; policy/ and the route table key on both.
        const object = { ...(raw as object), apiVersion, kind } as OtherObject;
        return { key: `${meta.namespace ?? DEFAULT_NAMESPACE}/${meta.name}`, value: object };
      }, { upsert: (o) => store.upsertOther(o), remove: (o) => this.#deleteOther(o) });
    this.#addOther = other;
    const apiVersion = `${POLICY_GROUP}/${POLICY_VERSION}`;
    for (const [kind, plural] of [['AuthorizationPolicy', 'authorizationpolicies'], ['PeerAuthentication', 'peerauthentications']] as const) {
      other(kind, `/apis/${apiVersion}/${plural}`, apiVersion);
    }
  }

  /** Whether the server serves the Gateway API (undefined before start asked). */
  get gatewayApi(): boolean | undefined {
    return this.#gatewayApi;
  }

  /**
   * Asks the server whether it serves the Gateway API, retrying with backoff until it answers;
   * when it does, adds and starts the reflectors of the kinds it has. Returns whether it does.
   */
  async #watchGatewayApi(): Promise<boolean> {
    const clock = this.#options.clock ?? realClock;
    const backoff = new Backoff(this.#options.backoff);
    for (;;) {
      if (this.#stopped) return false;
      try {
        const served = await servedResources(this.#options.kubeConfig, GATEWAY_API_VERSION, this.#abort.signal);
        this.#gatewayApi = served !== undefined;
        if (served === undefined) return false;
        const byVersion = new Map<string, Set<string>>([['v1', served]]);
        for (const [, , version] of this.#gatewayWanted) {
          if (!byVersion.has(version)) byVersion.set(version, (await servedResources(this.#options.kubeConfig, `${GATEWAY_API_GROUP}/${version}`, this.#abort.signal)) ?? new Set());
        }
        const kinds = this.#gatewayWanted.filter(([kind, plural, version]) => byVersion.get(version)!.has(plural) && !this.#gatewayKinds.has(kind));
        for (const [kind, plural, version] of kinds) {
          this.#gatewayKinds.add(kind);
          const apiVersion = `${GATEWAY_API_GROUP}/${version}`;
          this.#addOther(kind, `/apis/${apiVersion}/${plural}`, apiVersion).start();
        }
        if (kinds.length > 0) this.#log.info({ kinds: kinds.map(([k]) => k) }, `${GATEWAY_API_GROUP} served: watching waypoints and routes`);
        return true;
      } catch (err) {
        if (this.#stopped) return false;
        this.#log.warn({ err: (err as Error).message }, `cannot tell whether the API server serves ${GATEWAY_API_GROUP}; asking again`);
        await clock.sleep(backoff.next(), this.#abort.signal);
      }
    }
  }

  /** Like #watchGatewayApi for one of ISTIO_APIS (asked once: absent at start, not watched). */
  async #watchIstioApi(groupVersion: string, wanted: readonly (readonly [kind: string, plural: string])[]): Promise<void> {
    const clock = this.#options.clock ?? realClock;
    const backoff = new Backoff(this.#options.backoff);
    while (!this.#stopped) {
      try {
        const served = await servedResources(this.#options.kubeConfig, groupVersion, this.#abort.signal);
        if (served === undefined) return;
        const kinds = wanted.filter(([, plural]) => served.has(plural));
        for (const [kind, plural] of kinds) this.#addOther(kind, `/apis/${groupVersion}/${plural}`, groupVersion).start();
        this.#log.info({ kinds: kinds.map(([k]) => k) }, `${groupVersion} served: watching Istio's kinds as Weft's`);
        return;
      } catch (err) {
        if (this.#stopped) return;
        this.#log.warn({ err: (err as Error).message }, `cannot tell whether the API server serves ${groupVersion}; asking again`);
        await clock.sleep(backoff.next(), this.#abort.signal);
      }
    }
  }

  /**
   * While the Gateway API, or one of its kinds, is absent: asks again now and then (its CRDs
   * may be installed later, one by one). On the real clock: the injected one simulates the
   * reflectors' backoff, not this period.
   */
  async #recheckGatewayApi(): Promise<void> {
    while (!this.#stopped && this.#gatewayKinds.size < this.#gatewayWanted.length) {
      await realClock.sleep(this.#options.gatewayApiRecheckMs ?? GATEWAY_API_RECHECK_MS, this.#abort.signal);
      if (!this.#stopped) await this.#watchGatewayApi();
    }
  }

  #deleteOther(o: OtherObject): void {
    const ns = o.metadata.namespace ?? DEFAULT_NAMESPACE;
    this.#store.deleteObject({ ...o, metadata: { ...o.metadata, namespace: ns } });
  }

  /** Lists every collection (retrying with backoff until each succeeded once), then keeps watching. */
  async start(): Promise<MeshModel> {
    for (const r of this.#reflectors) r.start();
    // Before the first model: a waypointed service must not be routed at L4 for a moment.
    const served = await this.#watchGatewayApi();
    if (!served && !this.#stopped) this.#log.info(`${GATEWAY_API_VERSION} not served by the API server: no waypoints (asked again every ${(this.#options.gatewayApiRecheckMs ?? GATEWAY_API_RECHECK_MS) / 1000} s)`);
    if (this.#gatewayKinds.size < this.#gatewayWanted.length) void this.#recheckGatewayApi();
    // Also before the first model: an Istio policy or route is in force from the start.
    await Promise.all(ISTIO_APIS.map(([gv, kinds]) => this.#watchIstioApi(gv, kinds)));
    await Promise.all(this.#reflectors.map((r) => r.whenSynced()));
    this.#synced = true;
    this.#store.commit();
    this.#log.info({ generation: this.#store.generation, workloads: this.#store.workloads.size, services: this.#store.services.size }, 'mesh model synced from Kubernetes');
    return this.#store.snapshot();
  }

  /** True once every collection was listed. */
  get synced(): boolean {
    return this.#synced;
  }

  current(): MeshModel {
    return this.#store.snapshot();
  }

  refusals(): Refusal[] {
    return [...this.#refusals.values(), ...this.#store.refusals()];
  }

  /**
   * The newest resourceVersion each kind's watches have seen. Opaque in Kubernetes; the lab's
   * API server numbers them, so `weft lab apply` compares them to know an agent saw its write.
   */
  resourceVersions(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const r of this.#reflectors) {
      const rv = r.resourceVersion;
      if (rv === undefined) continue;
      const have = out[r.kind];
      if (have === undefined || Number(rv) > Number(have)) out[r.kind] = rv;
    }
    return out;
  }

  stats(): KubernetesSourceStats {
    const objects: Record<string, number> = {};
    for (const r of this.#reflectors) objects[r.kind] = (objects[r.kind] ?? 0) + r.size;
    return { requests: { ...this.#requests }, objects, events: { count: this.#events.count, maxMs: this.#events.maxMs, recentMs: [...this.#events.recentMs] } };
  }

  #eventApplied(ms: number): void {
    const e = this.#events;
    e.count++;
    if (ms > e.maxMs) e.maxMs = ms;
    e.recentMs.push(ms);
    if (e.recentMs.length > EVENT_SAMPLES) e.recentMs.splice(0, e.recentMs.length - EVENT_SAMPLES);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await Promise.all(this.#reflectors.map((r) => r.stop()));
  }

  /**
   * One event (or one list) was applied: commit it. Events of one read of the stream come in
   * the same tick; one 'update' per tick is enough for the agent's reconcile.
   */
  #flush(): void {
    if (this.#stopped) return;
    // Committed page by page also before the first sync: the services a page touched are
    // recomputed then, not all at once at the end. Nobody hears of it before start() resolves.
    if (!this.#store.commit() || !this.#synced) return;
    if (this.#pendingUpdate) return;
    this.#pendingUpdate = true;
    setImmediate(() => {
      this.#pendingUpdate = false;
      if (!this.#stopped) this.emit('update', this.#store.snapshot());
    });
  }

  #refused(kind: string, key: string, reason: string | undefined): void {
    const id = `${kind} ${key}`;
    if (reason === undefined) {
      this.#refusals.delete(id);
      return;
    }
    const first = !this.#refusals.has(id);
    this.#refusals.set(id, { object: id, code: 'WEFT_ERR_OBJECT_TOO_LARGE', reason });
    if (first) {
      this.#log.warn({ object: id, code: 'WEFT_ERR_OBJECT_TOO_LARGE' }, `${id} refused: ${reason}`);
      const error: ManifestError = { file: id, reason };
      this.emit('invalid', [error]);
    }
  }
}

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
 * - optional kinds, watched only when served (their CRDs are optional on a cluster): the
 *   Gateway API's Gateways, HTTPRoutes and GRPCRoutes (waypoints and their routes; a waypoint's
 *   source also ReferenceGrants, `referenceGrants`) and Istio's VirtualService, DestinationRule,
 *   AuthorizationPolicy, PeerAuthentication: asked at start (before the first model, so a
 *   waypointed service is never routed at L4 for a moment), then every GATEWAY_API_RECHECK_MS
 *   while absent; one that is not served or forbidden (403) does not hold the first model.
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
import { ApiError, Reflector, type Converted, type ReflectorHandler, type ReflectorOptions, type SharedTls } from './reflector.js';
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

/** A kind the cluster may not have (its CRDs are optional): kind, plural, group version. */
type OptionalKind = readonly [kind: string, plural: string, groupVersion: string];

/** The Gateway API kinds the agent watches (waypoints and their routes). */
const GATEWAY_API_KINDS: readonly OptionalKind[] = [
  ['Gateway', 'gateways', GATEWAY_API_VERSION],
  ['HTTPRoute', 'httproutes', GATEWAY_API_VERSION],
  ['GRPCRoute', 'grpcroutes', GATEWAY_API_VERSION],
];
/** What a waypoint also reads: the grants that allow cross-namespace backendRefs (standard channel: v1beta1). */
const REFERENCE_GRANT: OptionalKind = ['ReferenceGrant', 'referencegrants', `${GATEWAY_API_GROUP}/v1beta1`];

/**
 * Istio's kinds Weft accepts as its own (issue 12): the waypoint's routes (agent/l7/istio) and
 * the policies (policy/). The API server converts older versions' objects to these.
 */
const ISTIO_KINDS: readonly OptionalKind[] = [
  ['VirtualService', 'virtualservices', 'networking.istio.io/v1'],
  ['DestinationRule', 'destinationrules', 'networking.istio.io/v1'],
  ['AuthorizationPolicy', 'authorizationpolicies', 'security.istio.io/v1'],
  ['PeerAuthentication', 'peerauthentications', 'security.istio.io/v1'],
  // Weft's traffic kinds (agent/l7/weft, issue 12), newer than its policy CRDs: watched where installed.
  ['HTTPFault', 'httpfaults', 'weft.dev/v1alpha1'],
  ['LocalRateLimitPolicy', 'localratelimitpolicies', 'weft.dev/v1alpha1'],
];

/** Why an optional kind is not watched now (`weft status`, /refusals, readiness detail). */
export interface OptionalKindState {
  /** `networking.istio.io/v1 VirtualService` */
  readonly kind: string;
  /**
   * watching: listed and watched; not-served: the API server does not serve it (CRD not
   * installed; asked again now and then); forbidden: 403 (RBAC: the account may not list it);
   * failing: asking or listing fails otherwise (retried); pending: not asked yet.
   */
  readonly state: 'watching' | 'not-served' | 'forbidden' | 'failing' | 'pending';
  readonly reason?: string;
}

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
  /** The optional kinds this source wants (Gateway API, ReferenceGrant for a waypoint, Istio's). */
  readonly #optionalWanted: readonly OptionalKind[];
  /** The reflectors of the optional kinds watched so far, by `groupVersion kind` (CRDs come one by one). */
  readonly #optionalReflectors = new Map<string, Reflector<unknown>>();
  /** The last discovery answer per group version: served, or why not. */
  readonly #groupState = new Map<string, { state: 'served' | 'not-served' | 'forbidden' | 'failing'; reason?: string }>();
  /** What was logged per optional kind, so each change is logged once. */
  readonly #loggedState = new Map<string, string>();
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
    this.#optionalWanted = [...GATEWAY_API_KINDS, ...(options.referenceGrants === true ? [REFERENCE_GRANT] : []), ...ISTIO_KINDS];
    this.#store = new MeshStore({ selectorEndpoints: false, ...(options.trustDomain ? { trustDomain: options.trustDomain } : {}) });
    const node = options.nodeName;
    const store = this.#store;
    const sharedTls: SharedTls = {};
    const add = <T>(kind: string, path: string, convert: (raw: unknown) => Converted<T> | undefined, apply: { upsert: (v: T) => void; remove: (v: T, key: string) => void }, fieldSelector?: string, optional?: { onAvailability: ReflectorOptions<T>['onAvailability'] }): Reflector<unknown> => {
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
          ...(optional !== undefined ? { optional: true, onAvailability: optional.onAvailability } : {}),
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
    const other = (kind: string, path: string, apiVersion: string, optional?: { onAvailability: ReflectorOptions<OtherObject>['onAvailability'] }): Reflector<unknown> =>
      add<OtherObject>(kind, path, (raw) => {
        const meta = metaOf(raw);
        if (meta === undefined) return undefined;
        // List items come without apiVersion/kind; policy/ and the route table key on both.
        const object = { ...(raw as object), apiVersion, kind } as OtherObject;
        return { key: `${meta.namespace ?? DEFAULT_NAMESPACE}/${meta.name}`, value: object };
      }, { upsert: (o) => store.upsertOther(o), remove: (o) => this.#deleteOther(o) }, undefined, optional);
    this.#addOther = (kind, path, apiVersion) => other(kind, path, apiVersion, { onAvailability: () => this.#logOptionalKinds() });
    const apiVersion = `${POLICY_GROUP}/${POLICY_VERSION}`;
    for (const [kind, plural] of [['AuthorizationPolicy', 'authorizationpolicies'], ['PeerAuthentication', 'peerauthentications']] as const) {
      other(kind, `/apis/${apiVersion}/${plural}`, apiVersion);
    }
  }

  /** Whether the server serves the Gateway API (undefined before start asked). */
  get gatewayApi(): boolean | undefined {
    return this.#gatewayApi;
  }

  /** The group versions of the optional kinds this source wants, in order. */
  #optionalGroups(): string[] {
    return [...new Set(this.#optionalWanted.map(([, , gv]) => gv))];
  }

  /**
   * Asks the server whether it serves `groupVersion` (its discovery document) and starts the
   * reflectors of the wanted kinds it has. Settles on an answer: served, 404 (not served) or 403
   * (forbidden); other failures are retried with backoff (the API server is away: the required
   * kinds wait for it too).
   */
  async #discoverGroup(groupVersion: string): Promise<void> {
    const clock = this.#options.clock ?? realClock;
    const backoff = new Backoff(this.#options.backoff);
    while (!this.#stopped) {
      try {
        const served = await servedResources(this.#options.kubeConfig, groupVersion, this.#abort.signal);
        if (served === undefined) {
          this.#groupState.set(groupVersion, { state: 'not-served', reason: `${groupVersion} is not served (its CRDs are not installed)` });
        } else {
          this.#groupState.set(groupVersion, { state: 'served' });
          const kinds = this.#optionalWanted.filter(([kind, plural, gv]) => gv === groupVersion && served.has(plural) && !this.#optionalReflectors.has(`${gv} ${kind}`));
          for (const [kind, plural] of kinds) {
            const reflector = this.#addOther(kind, `/apis/${groupVersion}/${plural}`, groupVersion);
            this.#optionalReflectors.set(`${groupVersion} ${kind}`, reflector);
            reflector.start();
          }
          if (kinds.length > 0) this.#log.info({ kinds: kinds.map(([k]) => k) }, `${groupVersion} served: watching ${kinds.map(([k]) => k).join(', ')}`);
        }
        this.#logOptionalKinds();
        return;
      } catch (err) {
        if (this.#stopped) return;
        const message = (err as Error).message;
        if (err instanceof ApiError && err.status === 403) {
          this.#groupState.set(groupVersion, { state: 'forbidden', reason: message });
          this.#logOptionalKinds();
          return;
        }
        this.#groupState.set(groupVersion, { state: 'failing', reason: message });
        this.#log.warn({ err: message }, `cannot tell whether the API server serves ${groupVersion}; asking again`);
        await clock.sleep(backoff.next(), this.#abort.signal);
      }
    }
  }

  /** Whether the Gateway API is served, from the last discovery answer. */
  #updateGatewayApi(): void {
    const s = this.#groupState.get(GATEWAY_API_VERSION)?.state;
    if (s === 'served') this.#gatewayApi = true;
    else if (s === 'not-served' || s === 'forbidden') this.#gatewayApi = false;
  }

  /**
   * While an optional kind is not watched (not served, discovery forbidden): asks again now and
   * then (CRDs may be installed later, one by one). On the real clock: the injected one
   * simulates the reflectors' backoff, not this period. Kinds being listed retry by themselves.
   */
  async #recheckOptionalKinds(): Promise<void> {
    while (!this.#stopped && this.#optionalReflectors.size < this.#optionalWanted.length) {
      await realClock.sleep(this.#options.gatewayApiRecheckMs ?? GATEWAY_API_RECHECK_MS, this.#abort.signal);
      if (this.#stopped) return;
      const missing = this.#optionalGroups().filter((gv) => this.#optionalWanted.some(([kind, , g]) => g === gv && !this.#optionalReflectors.has(`${g} ${kind}`)));
      await Promise.all(missing.map((gv) => this.#discoverGroup(gv)));
      this.#updateGatewayApi();
    }
  }

  /** Every optional kind and whether it is watched, or why not. */
  optionalKinds(): OptionalKindState[] {
    return this.#optionalWanted.map(([kind, , gv]): OptionalKindState => {
      const name = `${gv} ${kind}`;
      const reflector = this.#optionalReflectors.get(name);
      if (reflector !== undefined) {
        const u = reflector.unavailable;
        if (u !== undefined) return { kind: name, state: u.status === 403 ? 'forbidden' : 'not-served', reason: u.message };
        if (reflector.synced) return { kind: name, state: 'watching' };
        return reflector.lastError === undefined ? { kind: name, state: 'pending' } : { kind: name, state: 'failing', reason: reflector.lastError };
      }
      const group = this.#groupState.get(gv);
      if (group === undefined) return { kind: name, state: 'pending' };
      if (group.state === 'served') return { kind: name, state: 'not-served', reason: `${gv} is served without ${kind} (its CRD is not installed)` };
      return { kind: name, state: group.state, ...(group.reason !== undefined ? { reason: group.reason } : {}) };
    });
  }

  /** Logs each optional kind's change of state once: WEFT_ERR_KIND_UNAVAILABLE while it is not watched. */
  #logOptionalKinds(): void {
    for (const k of this.optionalKinds()) {
      if (k.state === 'pending' || k.state === 'failing') continue;
      if (this.#loggedState.get(k.kind) === k.state) continue;
      const before = this.#loggedState.get(k.kind);
      this.#loggedState.set(k.kind, k.state);
      if (k.state === 'watching') {
        if (before !== undefined) this.#log.info({ kind: k.kind }, `${k.kind} available: watching it now`);
      } else if (k.state === 'forbidden') {
        this.#log.warn({ kind: k.kind, code: 'WEFT_ERR_KIND_UNAVAILABLE', reason: k.reason }, `${k.kind} unavailable (403: may this account list and watch it? see daemonset/rbac.yaml); not watched, retrying`);
      } else {
        this.#log.info({ kind: k.kind, code: 'WEFT_ERR_KIND_UNAVAILABLE', reason: k.reason }, `${k.kind} not served (CRD not installed); asked again every ${(this.#options.gatewayApiRecheckMs ?? GATEWAY_API_RECHECK_MS) / 1000} s`);
      }
    }
  }

  #deleteOther(o: OtherObject): void {
    const ns = o.metadata.namespace ?? DEFAULT_NAMESPACE;
    this.#store.deleteObject({ ...o, metadata: { ...o.metadata, namespace: ns } });
  }

  /**
   * Lists every collection (retrying with backoff until each succeeded once), then keeps
   * watching. The optional kinds are asked for before the first model (a waypointed service must
   * not be routed at L4 for a moment, an Istio policy is in force from the start), but one that
   * is not served or is forbidden does not hold it: it is reported (optionalKinds(), refusals())
   * and picked up when it comes.
   */
  async start(): Promise<MeshModel> {
    const required = [...this.#reflectors];
    for (const r of required) r.start();
    await Promise.all(this.#optionalGroups().map((gv) => this.#discoverGroup(gv)));
    this.#updateGatewayApi();
    if (this.#gatewayApi === false && !this.#stopped) this.#log.info(`${GATEWAY_API_VERSION} not served by the API server: no waypoints (asked again every ${(this.#options.gatewayApiRecheckMs ?? GATEWAY_API_RECHECK_MS) / 1000} s)`);
    if (this.#optionalReflectors.size < this.#optionalWanted.length) void this.#recheckOptionalKinds();
    await Promise.all([...required.map((r) => r.whenSynced()), ...[...this.#optionalReflectors.values()].map((r) => r.whenSettled())]);
    this.#synced = true;
    this.#store.commit();
    this.#logOptionalKinds();
    this.#log.info({ generation: this.#store.generation, workloads: this.#store.workloads.size, services: this.#store.services.size, unavailable: this.optionalKinds().filter((k) => k.state !== 'watching').map((k) => k.kind) }, 'mesh model synced from Kubernetes');
    return this.#store.snapshot();
  }

  /** True once every collection was listed. */
  get synced(): boolean {
    return this.#synced;
  }

  current(): MeshModel {
    return this.#store.snapshot();
  }

  /** Refused objects, and the optional kinds this account may not read (403: RBAC to fix). */
  refusals(): Refusal[] {
    const forbidden = this.optionalKinds()
      .filter((k) => k.state === 'forbidden')
      .map((k): Refusal => ({ object: `kind ${k.kind}`, code: 'WEFT_ERR_KIND_UNAVAILABLE', reason: `not watched: ${k.reason ?? '403'}` }));
    return [...this.#refusals.values(), ...this.#store.refusals(), ...forbidden];
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

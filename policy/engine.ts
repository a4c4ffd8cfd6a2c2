/**
 * The policy engine: compile every policy object once into a PolicyStore; ask the store, once per
 * workload, for its WorkloadPolicy (the policies that select it, split by action, plus its mTLS
 * modes; cached); then decide each connection with evaluate(), which looks only at that workload's
 * policies. Pure and synchronous: no I/O, no clock, no logging. Policy changes build a new store.
 *
 * Two enforcement points share the store. Node agents (forWorkload/evaluate) enforce the policies
 * without targetRefs (a selector, or namespace/mesh-wide), at L4, failing closed on HTTP fields.
 * Waypoints (forWaypointTarget/evaluateRequest) enforce only the policies with targetRefs: those
 * naming their Gateway, their GatewayClass, or the Service a request is addressed to, with every
 * HTTP field checked (evaluateWaypointConnection for non-HTTP traffic through a waypoint: L4 rules,
 * HTTP fields failing closed as at a node agent). A policy is enforced at exactly one of the two.
 *
 * Decision order (Istio's): a matching DENY policy denies; otherwise, when any ALLOW policy
 * applies to the workload, one of them must match; otherwise the connection is allowed. AUDIT
 * policies never decide; the ones that match are listed in the decision.
 */
import { WAYPOINT_GATEWAY_CLASS } from '../agent/discovery/types.js';
import {
  ACTION_ALLOW,
  ACTION_AUDIT,
  ACTION_DENY,
  beginMatch,
  beginRequestMatch,
  compileAuthorizationPolicy,
  endMatch,
  l7Warning,
  matchesPolicy,
  type CompiledAuthorizationPolicy,
  type ConnectionInfo,
  type HttpRequestInfo,
  type MatchContext,
} from './authz.js';
import type { PolicyFieldError } from './errors.js';
import {
  compilePeerAuthentication,
  mtlsModeOf,
  olderFirst,
  resolveMtls,
  type CompiledPeerAuthentication,
  type MtlsMode,
  type WorkloadMtls,
} from './peer-auth.js';
import {
  DEFAULT_ROOT_NAMESPACE,
  isPolicyApiVersion,
  TARGET_GATEWAY,
  TARGET_GATEWAY_CLASS,
  TARGET_SERVICE,
  targetGroupKind,
  targetRefsOf,
  type AuthorizationPolicy,
  type PeerAuthentication,
} from './schema.js';
import { validatePolicyObject } from './validate.js';

export type { ConnectionInfo, HttpRequestInfo } from './authz.js';
export type { MtlsMode, WorkloadMtls } from './peer-auth.js';

/** Why a decision came out as it did; stable strings for access logs and metric labels. */
export type DecisionReason =
  /** A DENY policy matched (`policy` names it). */
  | 'denied-by-policy'
  /** An ALLOW policy matched (`policy` names the first, by namespace/name). */
  | 'allowed-by-policy'
  /** ALLOW policies apply to the workload and none matched. */
  | 'no-allow-match'
  /** No DENY policy matched and no ALLOW policy applies: allowed by default. */
  | 'no-allow-policy';

export interface PolicyDecision {
  readonly allowed: boolean;
  readonly action: 'ALLOW' | 'DENY';
  /** `namespace/name` of the deciding policy; absent for the two default outcomes. */
  readonly policy?: string;
  readonly reason: DecisionReason;
  /** `namespace/name` of every AUDIT policy that matched; absent when none did. */
  readonly auditPolicies?: readonly string[];
}

/** The workload a question is about: its namespace and pod labels. */
export interface WorkloadRef {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** The policies one decision looks at, split by action; sorted by namespace/name, so the deciding policy is deterministic. */
export interface DecisionSet {
  readonly deny: readonly CompiledAuthorizationPolicy[];
  readonly allow: readonly CompiledAuthorizationPolicy[];
  readonly audit: readonly CompiledAuthorizationPolicy[];
  /** @internal precomputed decisions */
  readonly denyDecisions: readonly PolicyDecision[];
  /** @internal */
  readonly allowDecisions: readonly PolicyDecision[];
}

/** A workload's precomputed policy view; hold it on the workload and pass it to evaluate(). */
export interface WorkloadPolicy extends DecisionSet {
  readonly namespace: string;
  /** Keys (`namespace/name`) of every AuthorizationPolicy that selects the workload. */
  readonly authorizationPolicies: readonly string[];
  readonly mtls: WorkloadMtls;
  /** Conflicts found while resolving this workload (e.g. two workload PeerAuthentications). */
  readonly warnings: readonly PolicyWarning[];
}

/** Where a waypoint is asked to decide: the waypoint (its Gateway) and the Service a request is for. */
export interface WaypointTarget {
  /** The waypoint's Gateway namespace and name. */
  readonly namespace: string;
  readonly name: string;
  /**
   * `namespace/name` of the Service the request is addressed to (its VIP or name); policies
   * targeting that Service apply. Absent: only the Gateway's and GatewayClass's policies apply.
   */
  readonly service?: string | undefined;
  /** The Gateway's class; default `weft-waypoint`. */
  readonly gatewayClass?: string | undefined;
}

/** The policies a waypoint applies to requests for one Service (or to all its traffic); cached by the store. */
export interface WaypointPolicy {
  /** `namespace/name` of the waypoint's Gateway. */
  readonly waypoint: string;
  readonly service: string | undefined;
  /** Keys (`namespace/name`) of every AuthorizationPolicy that applies, sorted. */
  readonly authorizationPolicies: readonly string[];
  /** @internal compiled with HTTP fields, for evaluateRequest */
  readonly http: DecisionSet;
  /** @internal the same policies compiled for L4, for evaluateWaypointConnection */
  readonly tcp: DecisionSet;
}

export type PolicyWarningCode =
  /** L7 fields in a policy enforced at L4: failed closed (see message). */
  | 'l7-fields-at-l4'
  /** Several PeerAuthentications compete at one level; the oldest wins. */
  | 'peer-authentication-conflict'
  /** A PeerAuthentication with a selector in the root namespace: ignored, as in Istio. */
  | 'peer-authentication-root-selector'
  /** The same kind/namespace/name appeared twice in the input; the later one is used. */
  | 'duplicate-policy';

export interface PolicyWarning {
  readonly code: PolicyWarningCode;
  readonly kind: 'AuthorizationPolicy' | 'PeerAuthentication';
  /** `namespace/name` */
  readonly policy: string;
  readonly message: string;
}

/** An object refused by validation; it takes no part in decisions. */
export interface RejectedPolicy {
  readonly kind: string;
  /** `namespace/name` when the object has a readable name, else `<unnamed>`. */
  readonly policy: string;
  readonly errors: readonly PolicyFieldError[];
}

export interface CompileOptions {
  /** Policies without a selector here apply mesh-wide. Default `weft-system`. */
  readonly rootNamespace?: string;
  /** Namespace for objects without metadata.namespace. Default `default`. */
  readonly defaultNamespace?: string;
  /** Bound on cached WorkloadPolicy entries (distinct namespace+labels). Default 16384. */
  readonly cacheSize?: number;
}

const ALLOW_NO_POLICY: PolicyDecision = Object.freeze({ allowed: true, action: 'ALLOW', reason: 'no-allow-policy' });
const DENY_NO_MATCH: PolicyDecision = Object.freeze({ allowed: false, action: 'DENY', reason: 'no-allow-match' });

function decisionFor(p: CompiledAuthorizationPolicy): PolicyDecision {
  return p.action === ACTION_DENY
    ? Object.freeze({ allowed: false, action: 'DENY', policy: p.key, reason: 'denied-by-policy' })
    : Object.freeze({ allowed: true, action: 'ALLOW', policy: p.key, reason: 'allowed-by-policy' });
}

interface Selected<T> {
  readonly selector: readonly (readonly [string, string])[];
  readonly policy: T;
}

interface NamespaceIndex {
  /** Namespace-wide AuthorizationPolicies (mesh-wide for the root namespace). */
  readonly authzWide: CompiledAuthorizationPolicy[];
  readonly authzSelected: Selected<CompiledAuthorizationPolicy>[];
  /** Namespace-wide PeerAuthentications, oldest first (the first one wins). */
  readonly peerWide: CompiledPeerAuthentication[];
  readonly peerSelected: Selected<CompiledPeerAuthentication>[];
}

function newIndex(): NamespaceIndex {
  return { authzWide: [], authzSelected: [], peerWide: [], peerSelected: [] };
}

/** A policy with targetRefs, compiled for HTTP requests and for TCP through the waypoint. */
interface TargetedPolicy {
  readonly http: CompiledAuthorizationPolicy;
  readonly tcp: CompiledAuthorizationPolicy;
}

/** Targeted policies by what they name: `ns/name` of a Gateway or Service, or a GatewayClass name. */
interface TargetIndex {
  readonly gateways: Map<string, TargetedPolicy[]>;
  readonly services: Map<string, TargetedPolicy[]>;
  readonly classes: Map<string, TargetedPolicy[]>;
}

function pushTo(map: Map<string, TargetedPolicy[]>, key: string, p: TargetedPolicy): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [p]);
  else if (!list.includes(p)) list.push(p);
}

function decisionSet(applicable: readonly CompiledAuthorizationPolicy[]): DecisionSet {
  const deny = applicable.filter((p) => p.action === ACTION_DENY);
  const allow = applicable.filter((p) => p.action === ACTION_ALLOW);
  const audit = applicable.filter((p) => p.action === ACTION_AUDIT);
  return { deny, allow, audit, denyDecisions: deny.map(decisionFor), allowDecisions: allow.map(decisionFor) };
}

function selects(selector: readonly (readonly [string, string])[], labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of selector) if (labels[k] !== v) return false;
  return true;
}

function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function cacheKey(w: WorkloadRef): string {
  const keys = Object.keys(w.labels).sort();
  let s = w.namespace;
  for (const k of keys) s += `\u0000${k}\u0001${w.labels[k]}`;
  return s;
}

/** Every compiled policy, indexed by namespace; immutable once built. Create with compilePolicies(). */
export class PolicyStore {
  readonly rootNamespace: string;
  /** Problems that did not stop compilation: L7 fields at L4, conflicts, duplicates. */
  readonly warnings: readonly PolicyWarning[];
  /** Objects refused by validation. */
  readonly rejected: readonly RejectedPolicy[];
  /** Compiled AuthorizationPolicies enforced at L4 (those with targetRefs belong to a waypoint). */
  readonly authorizationPolicies: readonly CompiledAuthorizationPolicy[];
  /** AuthorizationPolicies with targetRefs, compiled for waypoints (with their HTTP fields). */
  readonly waypointPolicies: readonly CompiledAuthorizationPolicy[];
  readonly peerAuthentications: readonly CompiledPeerAuthentication[];
  readonly #byNamespace: Map<string, NamespaceIndex>;
  readonly #targets: TargetIndex;
  readonly #cache = new Map<string, WorkloadPolicy>();
  readonly #waypointCache = new Map<string, WaypointPolicy>();
  readonly #cacheSize: number;

  /** @internal use compilePolicies() */
  constructor(
    rootNamespace: string,
    byNamespace: Map<string, NamespaceIndex>,
    authz: CompiledAuthorizationPolicy[],
    targets: TargetIndex,
    waypointPolicies: CompiledAuthorizationPolicy[],
    peer: CompiledPeerAuthentication[],
    warnings: PolicyWarning[],
    rejected: RejectedPolicy[],
    cacheSize: number,
  ) {
    this.rootNamespace = rootNamespace;
    this.#byNamespace = byNamespace;
    this.#targets = targets;
    this.authorizationPolicies = authz;
    this.waypointPolicies = waypointPolicies;
    this.peerAuthentications = peer;
    this.warnings = warnings;
    this.rejected = rejected;
    this.#cacheSize = cacheSize;
  }

  /**
   * `namespace/name` of every Service some policy targets, sorted. A Service that no waypoint
   * serves has its targeted policies enforced nowhere (as in Istio): compare with the model's
   * `Service.waypoint` to warn about it.
   */
  targetedServices(): string[] {
    return [...this.#targets.services.keys()].sort();
  }

  /**
   * The policies the waypoint `t.namespace/t.name` applies to requests for `t.service`: those
   * targeting the waypoint's Gateway (same namespace), its GatewayClass (root namespace), and
   * the Service (same namespace as the Service). Computed once per waypoint and service, cached.
   * The caller says which service a request is for; the store does not check the binding.
   */
  forWaypointTarget(t: WaypointTarget): WaypointPolicy {
    const gatewayClass = t.gatewayClass ?? WAYPOINT_GATEWAY_CLASS;
    const key = `${t.namespace}/${t.name}\u0000${t.service ?? ''}\u0000${gatewayClass}`;
    let wp = this.#waypointCache.get(key);
    if (wp === undefined) {
      const waypoint = `${t.namespace}/${t.name}`;
      const found = new Set<TargetedPolicy>();
      for (const list of [this.#targets.classes.get(gatewayClass), this.#targets.gateways.get(waypoint), t.service === undefined ? undefined : this.#targets.services.get(t.service)]) {
        for (const p of list ?? []) found.add(p);
      }
      const applicable = [...found].sort((a, b) => byKey(a.http, b.http));
      wp = {
        waypoint,
        service: t.service,
        authorizationPolicies: applicable.map((p) => p.http.key),
        http: decisionSet(applicable.map((p) => p.http)),
        tcp: decisionSet(applicable.map((p) => p.tcp)),
      };
      if (this.#waypointCache.size >= this.#cacheSize) this.#waypointCache.delete(this.#waypointCache.keys().next().value!);
      this.#waypointCache.set(key, wp);
    }
    return wp;
  }

  /** The workload's policy view, computed on first use and cached per namespace + label set. */
  forWorkload(w: WorkloadRef): WorkloadPolicy {
    const key = cacheKey(w);
    let wp = this.#cache.get(key);
    if (wp === undefined) {
      wp = this.#build(w);
      // Bounded: label sets churn with deployments; the oldest entry goes first.
      if (this.#cache.size >= this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(key, wp);
    }
    return wp;
  }

  /** mTLS mode for inbound connections to `port` of the workload (its listening port). */
  mtlsModeFor(w: WorkloadRef, port: number): MtlsMode {
    return mtlsModeOf(this.forWorkload(w).mtls, port);
  }

  #build(w: WorkloadRef): WorkloadPolicy {
    const root = this.#byNamespace.get(this.rootNamespace);
    const own = w.namespace === this.rootNamespace ? undefined : this.#byNamespace.get(w.namespace);
    const applicable: CompiledAuthorizationPolicy[] = [];
    for (const idx of [root, own]) {
      if (idx === undefined) continue;
      applicable.push(...idx.authzWide);
      // In the root namespace a selector matches workloads of every namespace (Istio).
      for (const s of idx.authzSelected) if (selects(s.selector, w.labels)) applicable.push(s.policy);
    }
    applicable.sort(byKey);

    // PeerAuthentication: root-namespace selectors are ignored (reported at compile time).
    const nsIdx = this.#byNamespace.get(w.namespace);
    const warnings: PolicyWarning[] = [];
    const candidates = w.namespace === this.rootNamespace ? [] : (nsIdx?.peerSelected ?? []).filter((s) => selects(s.selector, w.labels)).map((s) => s.policy);
    candidates.sort(olderFirst);
    if (candidates.length > 1) {
      warnings.push({
        code: 'peer-authentication-conflict',
        kind: 'PeerAuthentication',
        policy: candidates[0]!.key,
        message: `PeerAuthentications ${candidates.map((c) => c.key).join(', ')} all select the workload; the oldest, ${candidates[0]!.key}, is used`,
      });
    }
    const mesh = root?.peerWide[0];
    const nsWide = w.namespace === this.rootNamespace ? undefined : nsIdx?.peerWide[0];
    return {
      namespace: w.namespace,
      ...decisionSet(applicable),
      authorizationPolicies: applicable.map((p) => p.key),
      mtls: resolveMtls(mesh, nsWide, candidates[0]),
      warnings,
    };
  }
}

function withAudit(d: PolicyDecision, audits: string[] | null): PolicyDecision {
  return audits === null ? d : { ...d, auditPolicies: audits };
}

/**
 * Decides one connection to the workload `w` (from PolicyStore.forWorkload). Synchronous, no I/O;
 * the result object is shared between calls unless AUDIT policies matched: do not mutate it.
 */
export function evaluate(w: WorkloadPolicy, conn: ConnectionInfo): PolicyDecision {
  return isEmpty(w) ? ALLOW_NO_POLICY : decideOnce(w, beginMatch(conn));
}

function isEmpty(s: DecisionSet): boolean {
  return s.deny.length === 0 && s.allow.length === 0 && s.audit.length === 0;
}

/** Decides with the context `x` just begun, and hands it back. */
function decideOnce(s: DecisionSet, x: MatchContext): PolicyDecision {
  const d = decide(s, x);
  endMatch(x);
  return d;
}

/** The text a waypoint answers a denied request with (status 403), as Envoy's RBAC filter does. */
export const RBAC_DENIED_BODY = 'RBAC: access denied';

/**
 * Decides one HTTP request at a waypoint, with the policies from PolicyStore.forWaypointTarget.
 * Synchronous, no I/O, never throws on any request; a denial (`allowed: false`) is answered 403
 * with RBAC_DENIED_BODY. The result is shared between calls unless AUDIT policies matched.
 */
export function evaluateRequest(wp: WaypointPolicy, request: HttpRequestInfo): PolicyDecision {
  return isEmpty(wp.http) ? ALLOW_NO_POLICY : decideOnce(wp.http, beginRequestMatch(request));
}

/**
 * Decides a non-HTTP connection through a waypoint (proxied as L4) with the same policies, as a
 * node agent would: ALLOW rules with HTTP fields match nothing, DENY rules ignore them.
 */
export function evaluateWaypointConnection(wp: WaypointPolicy, conn: ConnectionInfo): PolicyDecision {
  return isEmpty(wp.tcp) ? ALLOW_NO_POLICY : decideOnce(wp.tcp, beginMatch(conn));
}

function decide(w: DecisionSet, x: MatchContext): PolicyDecision {
  const deny = w.deny;
  const allow = w.allow;
  const audit = w.audit;
  let audits: string[] | null = null;
  for (let i = 0; i < audit.length; i++) {
    if (matchesPolicy(x, audit[i]!)) (audits ??= []).push(audit[i]!.key);
  }
  for (let i = 0; i < deny.length; i++) {
    if (matchesPolicy(x, deny[i]!)) return withAudit(w.denyDecisions[i]!, audits);
  }
  if (allow.length === 0) return withAudit(ALLOW_NO_POLICY, audits);
  for (let i = 0; i < allow.length; i++) {
    if (matchesPolicy(x, allow[i]!)) return withAudit(w.allowDecisions[i]!, audits);
  }
  return withAudit(DENY_NO_MATCH, audits);
}

/** mTLS mode of a port from a WorkloadPolicy already in hand. */
export function mtlsModeForPort(w: WorkloadPolicy, port: number): MtlsMode {
  return mtlsModeOf(w.mtls, port);
}

function objectName(obj: unknown, defaultNamespace: string): string {
  const md = (obj as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  if (typeof md?.name !== 'string') return '<unnamed>';
  return `${typeof md.namespace === 'string' ? md.namespace : defaultNamespace}/${md.name}`;
}

/**
 * Compiles every AuthorizationPolicy and PeerAuthentication of `weft.dev/v1alpha1` in `objects`
 * (other kinds are ignored, so the discovery model's `others` can be passed as is). Invalid objects
 * are left out and listed in `rejected`; the agent should validate on arrival with
 * validatePolicyObject and keep the previous version of a refused object.
 */
export function compilePolicies(objects: readonly unknown[], options: CompileOptions = {}): PolicyStore {
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const defaultNamespace = options.defaultNamespace ?? 'default';
  const warnings: PolicyWarning[] = [];
  const rejected: RejectedPolicy[] = [];
  // Later duplicates replace earlier ones, as a later `kubectl apply` would.
  const authzByKey = new Map<string, CompiledAuthorizationPolicy>();
  const targetedByKey = new Map<string, { policy: AuthorizationPolicy; compiled: TargetedPolicy }>();
  const peerByKey = new Map<string, CompiledPeerAuthentication>();

  for (const obj of objects) {
    const o = obj as { apiVersion?: unknown; kind?: unknown } | null;
    if (o === null || typeof o !== 'object' || !isPolicyApiVersion(o.apiVersion)) continue;
    if (o.kind !== 'AuthorizationPolicy' && o.kind !== 'PeerAuthentication') continue;
    const v = validatePolicyObject(obj, { rootNamespace, defaultNamespace });
    if (!v.ok) {
      rejected.push({ kind: o.kind, policy: objectName(obj, defaultNamespace), errors: v.errors });
      continue;
    }
    if (v.value.kind === 'AuthorizationPolicy') {
      const ap = v.value as AuthorizationPolicy;
      const c = compileAuthorizationPolicy(ap, defaultNamespace);
      if (authzByKey.has(c.key) || targetedByKey.has(c.key)) warnings.push({ code: 'duplicate-policy', kind: 'AuthorizationPolicy', policy: c.key, message: `AuthorizationPolicy ${c.key} appears twice; the later one is used` });
      authzByKey.delete(c.key);
      targetedByKey.delete(c.key);
      // With targetRefs the policy is the waypoints' alone: node agents never enforce it.
      if (targetRefsOf(ap.spec).length > 0) targetedByKey.set(c.key, { policy: ap, compiled: { http: compileAuthorizationPolicy(ap, defaultNamespace, 'waypoint'), tcp: c } });
      else authzByKey.set(c.key, c);
    } else {
      const c = compilePeerAuthentication(v.value as PeerAuthentication, defaultNamespace);
      if (peerByKey.has(c.key)) warnings.push({ code: 'duplicate-policy', kind: 'PeerAuthentication', policy: c.key, message: `PeerAuthentication ${c.key} appears twice; the later one is used` });
      peerByKey.set(c.key, c);
    }
  }

  const byNamespace = new Map<string, NamespaceIndex>();
  const index = (ns: string): NamespaceIndex => {
    let idx = byNamespace.get(ns);
    if (idx === undefined) byNamespace.set(ns, (idx = newIndex()));
    return idx;
  };
  const authz = [...authzByKey.values()].sort(byKey);
  for (const p of authz) {
    if (p.l7Fields.length > 0) warnings.push({ code: 'l7-fields-at-l4', kind: 'AuthorizationPolicy', policy: p.key, message: l7Warning(p) });
    const idx = index(p.namespace);
    if (p.selector === null) idx.authzWide.push(p);
    else idx.authzSelected.push({ selector: p.selector, policy: p });
  }
  const peer = [...peerByKey.values()].sort(olderFirst);
  for (const p of peer) {
    const idx = index(p.namespace);
    if (p.selector === null) idx.peerWide.push(p);
    else if (p.namespace === rootNamespace) {
      warnings.push({
        code: 'peer-authentication-root-selector',
        kind: 'PeerAuthentication',
        policy: p.key,
        message: `PeerAuthentication ${p.key} has a selector in the root namespace ${rootNamespace}; it is ignored (a mesh-wide policy takes no selector, a workload policy belongs in the workload's namespace)`,
      });
    } else idx.peerSelected.push({ selector: p.selector, policy: p });
  }
  for (const [ns, idx] of byNamespace) {
    if (idx.peerWide.length > 1) {
      const level = ns === rootNamespace ? 'mesh-wide' : `namespace-wide in ${ns}`;
      warnings.push({
        code: 'peer-authentication-conflict',
        kind: 'PeerAuthentication',
        policy: idx.peerWide[0]!.key,
        message: `PeerAuthentications ${idx.peerWide.map((p) => p.key).join(', ')} are all ${level}; the oldest, ${idx.peerWide[0]!.key}, is used`,
      });
    }
  }
  const targets: TargetIndex = { gateways: new Map(), services: new Map(), classes: new Map() };
  const targeted = [...targetedByKey.values()].sort((a, b) => byKey(a.compiled.http, b.compiled.http));
  for (const { policy, compiled } of targeted) {
    const ns = compiled.http.namespace;
    for (const t of targetRefsOf(policy.spec)) {
      const gk = targetGroupKind(t);
      // Validation refused other kinds, cross-namespace references and GatewayClass outside the root namespace.
      if (gk === TARGET_GATEWAY) pushTo(targets.gateways, `${ns}/${t.name}`, compiled);
      else if (gk === TARGET_SERVICE) pushTo(targets.services, `${ns}/${t.name}`, compiled);
      else if (gk === TARGET_GATEWAY_CLASS && ns === rootNamespace) pushTo(targets.classes, t.name, compiled);
    }
  }
  return new PolicyStore(
    rootNamespace,
    byNamespace,
    authz,
    targets,
    targeted.map((t) => t.compiled.http),
    peer,
    warnings,
    rejected,
    options.cacheSize ?? 16384,
  );
}

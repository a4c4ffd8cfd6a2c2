/**
 * The policy engine: compile every policy object once into a PolicyStore; ask the store, once per
 * workload, for its WorkloadPolicy (the policies that select it, split by action, plus its mTLS
 * modes; cached); then decide each connection with evaluate(), which looks only at that workload's
 * policies. Pure and synchronous: no I/O, no clock, no logging. Policy changes build a new store.
 *
 * Decision order (Istio's): a matching DENY policy denies; otherwise, when any ALLOW policy
 * applies to the workload, one of them must match; otherwise the connection is allowed. AUDIT
 * policies never decide; the ones that match are listed in the decision.
 */
import {
  ACTION_ALLOW,
  ACTION_AUDIT,
  ACTION_DENY,
  beginMatch,
  compileAuthorizationPolicy,
  endMatch,
  l7Warning,
  matchesPolicy,
  type CompiledAuthorizationPolicy,
  type ConnectionInfo,
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
import { DEFAULT_ROOT_NAMESPACE, POLICY_API_VERSION, type AuthorizationPolicy, type PeerAuthentication } from './schema.js';
import { validatePolicyObject } from './validate.js';

export type { ConnectionInfo } from './authz.js';
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

/** A workload's precomputed policy view; hold it on the workload and pass it to evaluate(). */
export interface WorkloadPolicy {
  readonly namespace: string;
  /** Sorted by namespace/name, so the deciding policy is deterministic. */
  readonly deny: readonly CompiledAuthorizationPolicy[];
  readonly allow: readonly CompiledAuthorizationPolicy[];
  readonly audit: readonly CompiledAuthorizationPolicy[];
  /** Keys (`namespace/name`) of every AuthorizationPolicy that selects the workload. */
  readonly authorizationPolicies: readonly string[];
  readonly mtls: WorkloadMtls;
  /** Conflicts found while resolving this workload (e.g. two workload PeerAuthentications). */
  readonly warnings: readonly PolicyWarning[];
  /** @internal precomputed decisions */
  readonly denyDecisions: readonly PolicyDecision[];
  /** @internal */
  readonly allowDecisions: readonly PolicyDecision[];
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
  readonly peerAuthentications: readonly CompiledPeerAuthentication[];
  readonly #byNamespace: Map<string, NamespaceIndex>;
  readonly #cache = new Map<string, WorkloadPolicy>();
  readonly #cacheSize: number;

  /** @internal use compilePolicies() */
  constructor(
    rootNamespace: string,
    byNamespace: Map<string, NamespaceIndex>,
    authz: CompiledAuthorizationPolicy[],
    peer: CompiledPeerAuthentication[],
    warnings: PolicyWarning[],
    rejected: RejectedPolicy[],
    cacheSize: number,
  ) {
    this.rootNamespace = rootNamespace;
    this.#byNamespace = byNamespace;
    this.authorizationPolicies = authz;
    this.peerAuthentications = peer;
    this.warnings = warnings;
    this.rejected = rejected;
    this.#cacheSize = cacheSize;
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
    const deny = applicable.filter((p) => p.action === ACTION_DENY);
    const allow = applicable.filter((p) => p.action === ACTION_ALLOW);
    const audit = applicable.filter((p) => p.action === ACTION_AUDIT);

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
      deny,
      allow,
      audit,
      authorizationPolicies: applicable.map((p) => p.key),
      mtls: resolveMtls(mesh, nsWide, candidates[0]),
      warnings,
      denyDecisions: deny.map(decisionFor),
      allowDecisions: allow.map(decisionFor),
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
  const deny = w.deny;
  const allow = w.allow;
  const audit = w.audit;
  if (deny.length === 0 && allow.length === 0 && audit.length === 0) return ALLOW_NO_POLICY;
  const x = beginMatch(conn);
  const d = decide(w, x);
  endMatch(x);
  return d;
}

function decide(w: WorkloadPolicy, x: MatchContext): PolicyDecision {
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
  const peerByKey = new Map<string, CompiledPeerAuthentication>();

  for (const obj of objects) {
    const o = obj as { apiVersion?: unknown; kind?: unknown } | null;
    if (o === null || typeof o !== 'object' || o.apiVersion !== POLICY_API_VERSION) continue;
    if (o.kind !== 'AuthorizationPolicy' && o.kind !== 'PeerAuthentication') continue;
    const v = validatePolicyObject(obj);
    if (!v.ok) {
      rejected.push({ kind: o.kind, policy: objectName(obj, defaultNamespace), errors: v.errors });
      continue;
    }
    if (v.value.kind === 'AuthorizationPolicy') {
      const ap = v.value as AuthorizationPolicy;
      if (ap.spec?.targetRefs !== undefined && ap.spec.targetRefs.length > 0) continue; // the waypoint's
      const c = compileAuthorizationPolicy(ap, defaultNamespace);
      if (authzByKey.has(c.key)) warnings.push({ code: 'duplicate-policy', kind: 'AuthorizationPolicy', policy: c.key, message: `AuthorizationPolicy ${c.key} appears twice; the later one is used` });
      authzByKey.set(c.key, c);
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
  return new PolicyStore(rootNamespace, byNamespace, authz, peer, warnings, rejected, options.cacheSize ?? 16384);
}

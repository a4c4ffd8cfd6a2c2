/**
 * The agent's view of policy: the AuthorizationPolicies and PeerAuthentications of the current
 * model, compiled by policy/. A policy that fails validation is refused with a message naming
 * its fields, and its previous good version stays in force (or, if it never had one, it takes
 * no part). Decisions for one connection are made once, at the inbound edge.
 */
import { DEFAULT_TRUST_DOMAIN } from '../config.js';
import type { Logger } from '../log.js';
import type { OtherObject, Workload } from '../discovery/types.js';
import { compilePolicies, evaluate, mtlsModeForPort, type PolicyStore, type PolicyDecision, type MtlsMode } from '../../policy/engine.js';
import { validatePolicyObject } from '../../policy/validate.js';
import { formatFieldErrors } from '../../policy/errors.js';
import { isPolicyApiVersion } from '../../policy/schema.js';

const POLICY_KINDS = new Set(['AuthorizationPolicy', 'PeerAuthentication']);

export interface InboundQuestion {
  workload: Workload;
  sourceIp: string;
  /** Verified SPIFFE ID of the peer (HBONE); undefined for plaintext. */
  sourcePrincipal: string | undefined;
  destinationIp: string;
  destinationPort: number;
  mutualTls: boolean;
}

export interface InboundVerdict {
  allowed: boolean;
  /** `namespace/name` of the deciding policy, or a fixed reason for default outcomes. */
  policy: string | undefined;
  reason: string;
  action: 'ALLOW' | 'DENY';
}

const STRICT_REFUSAL: Omit<InboundVerdict, 'policy'> = { allowed: false, reason: 'mtls-required', action: 'DENY' };

export class PolicyState {
  readonly #logger: Logger;
  readonly #lastGood = new Map<string, OtherObject>();
  readonly #refusedContent = new Map<string, string>();
  /** Why each refused policy is refused, for the admin API (`weft lab apply` prints them). */
  readonly #refusedReason = new Map<string, string>();
  #store: PolicyStore = compilePolicies([]);
  #generation = 0;

  /** The mesh's trust domain: a principal of another one has no namespace here (F6). */
  readonly #trustDomain: string;

  constructor(logger: Logger, trustDomain: string = DEFAULT_TRUST_DOMAIN) {
    this.#logger = logger;
    this.#trustDomain = trustDomain;
  }

  get store(): PolicyStore {
    return this.#store;
  }

  /** Increments whenever the compiled policy set changed. */
  get generation(): number {
    return this.#generation;
  }

  /** Applies the policy objects of a new model; returns true when the effective set changed. */
  update(objects: readonly OtherObject[]): boolean {
    const seen = new Set<string>();
    let changed = false;
    for (const obj of objects) {
      if (!isPolicyApiVersion(obj.apiVersion) || !POLICY_KINDS.has(obj.kind)) continue;
      const key = `${obj.kind}/${obj.metadata.namespace ?? 'default'}/${obj.metadata.name}`;
      seen.add(key);
      const result = validatePolicyObject(obj);
      if (!result.ok) {
        const content = JSON.stringify(obj);
        if (this.#refusedContent.get(key) !== content) {
          this.#refusedContent.set(key, content);
          this.#refusedReason.set(key, formatFieldErrors(result.errors));
          this.#logger.error(
            { policy: key, errors: result.errors, keeping: this.#lastGood.has(key) ? 'previous version' : 'nothing (never valid)' },
            `policy ${key} refused: ${formatFieldErrors(result.errors)}`,
          );
        }
        continue;
      }
      this.#refusedContent.delete(key);
      this.#refusedReason.delete(key);
      const previous = this.#lastGood.get(key);
      if (!previous || JSON.stringify(previous) !== JSON.stringify(obj)) {
        this.#lastGood.set(key, obj);
        changed = true;
      }
    }
    for (const key of [...this.#lastGood.keys()]) {
      if (!seen.has(key)) {
        this.#lastGood.delete(key);
        changed = true;
      }
    }
    for (const key of [...this.#refusedContent.keys()]) {
      if (seen.has(key)) continue;
      this.#refusedContent.delete(key);
      this.#refusedReason.delete(key);
    }
    if (!changed) return false;
    this.#store = compilePolicies([...this.#lastGood.values()]);
    this.#generation++;
    for (const w of this.#store.warnings) this.#logger.warn({ policy: w.policy, code: w.code }, w.message);
    return true;
  }

  /** Policies refused right now: `AuthorizationPolicy/ns/name` and why (WEFT_ERR_POLICY_INVALID). */
  refusals(): { object: string; code: string; reason: string }[] {
    return [...this.#refusedReason].map(([key, reason]) => ({
      object: key,
      code: 'WEFT_ERR_POLICY_INVALID',
      reason: `${reason}; ${this.#lastGood.has(key) ? 'the previous version stays in force' : 'nothing in force (never valid)'}`,
    }));
  }

  /** The last good policy objects in force (for the admin API). */
  objects(): OtherObject[] {
    return [...this.#lastGood.values()];
  }

  decide(q: InboundQuestion): InboundVerdict {
    const wp = this.#store.forWorkload({ namespace: q.workload.namespace, labels: q.workload.labels });
    const mode: MtlsMode = mtlsModeForPort(wp, q.destinationPort);
    if (mode === 'STRICT' && !q.mutualTls) return { ...STRICT_REFUSAL, policy: undefined };
    const decision: PolicyDecision = evaluate(wp, {
      sourceIp: q.sourceIp,
      sourcePrincipal: q.sourcePrincipal,
      trustDomain: this.#trustDomain,
      destinationIp: q.destinationIp,
      destinationPort: q.destinationPort,
    });
    return { allowed: decision.allowed, policy: decision.policy, reason: decision.reason, action: decision.action };
  }
}

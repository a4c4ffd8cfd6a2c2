/**
 * The L7 authorization hook of the waypoint: asked once per request, after the request head
 * arrived and before routing. policy/'s pure L7 evaluator (AuthorizationPolicy with targetRefs,
 * to.operation, when) plugs in here; a denial is answered 403 `RBAC: access denied`.
 */
import type { Service, Workload } from '../discovery/types.js';
import type { RequestView } from '../l7/types.js';
import type { PolicyState } from '../proxy/authorization.js';
import { evaluateRequest, evaluateWaypointConnection, type WaypointPolicy } from '../../policy/index.js';

export interface L7AuthorizationInput {
  readonly request: RequestView;
  /** SPIFFE ID the client proved on the HBONE connection. */
  readonly sourcePrincipal: string;
  readonly sourceWorkload: Workload | undefined;
  readonly sourceIp: string;
  /** The service the request was addressed to (the CONNECT's VIP) and its port. */
  readonly service: Service;
  readonly port: number;
  /** `<namespace>/<name>` of this waypoint's Gateway. */
  readonly waypoint: string;
}

export type L7Verdict =
  | { readonly allow: true; readonly policy?: string | undefined }
  | { readonly allow: false; readonly policy: string | undefined; readonly reason: string };

export interface RequestAuthorizer {
  authorize(input: L7AuthorizationInput): L7Verdict;
  /** A stream relayed as L4 (not HTTP); absent: allowed. */
  authorizeConnection?(input: Omit<L7AuthorizationInput, 'request'>): L7Verdict;
}

/**
 * The model's AuthorizationPolicies with targetRefs (this waypoint's Gateway, its class, the
 * addressed Service), evaluated per request by policy/'s pure evaluator. The PolicyState is the
 * agent's: it validates on arrival and keeps the last good version of a refused policy.
 */
export class PolicyAuthorizer implements RequestAuthorizer {
  readonly #state: PolicyState;
  readonly #name: string;
  readonly #namespace: string;
  readonly #trustDomain: string;

  constructor(state: PolicyState, waypoint: { name: string; namespace: string }, trustDomain: string) {
    this.#state = state;
    this.#name = waypoint.name;
    this.#namespace = waypoint.namespace;
    this.#trustDomain = trustDomain;
  }

  #view(service: Service): WaypointPolicy {
    return this.#state.store.forWaypointTarget({ namespace: this.#namespace, name: this.#name, service: service.key });
  }

  authorize(input: L7AuthorizationInput): L7Verdict {
    const r = input.request;
    const d = evaluateRequest(this.#view(input.service), {
      sourceIp: input.sourceIp,
      sourcePrincipal: input.sourcePrincipal,
      trustDomain: this.#trustDomain,
      destinationIp: input.service.clusterIP ?? '0.0.0.0',
      destinationPort: input.port,
      method: r.method,
      path: r.path,
      authority: r.authority,
      headers: r.headers,
    });
    return d.allowed ? { allow: true, policy: d.policy } : { allow: false, policy: d.policy, reason: d.reason };
  }

  /** Non-HTTP traffic through the waypoint: the same policies' L4 rules (HTTP fields fail closed). */
  authorizeConnection(input: Omit<L7AuthorizationInput, 'request'>): L7Verdict {
    const d = evaluateWaypointConnection(this.#view(input.service), {
      sourceIp: input.sourceIp,
      sourcePrincipal: input.sourcePrincipal,
      trustDomain: this.#trustDomain,
      destinationIp: input.service.clusterIP ?? '0.0.0.0',
      destinationPort: input.port,
    });
    return d.allowed ? { allow: true, policy: d.policy } : { allow: false, policy: d.policy, reason: d.reason };
  }
}

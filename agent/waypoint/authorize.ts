/**
 * The L7 authorization hook of the waypoint: asked once per request, after the request head
 * arrived and before routing. policy/'s pure L7 evaluator (AuthorizationPolicy with targetRefs,
 * to.operation, when) plugs in here; a denial is answered 403 `RBAC: access denied`.
 */
import type { Service, Workload } from '../discovery/types.js';
import type { RequestView } from '../l7/types.js';

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
}

/** Until L7 policies exist for a waypoint: everything L4 let through is allowed. */
export const allowAll: RequestAuthorizer = { authorize: () => ({ allow: true }) };

/**
 * Decide, for one request: L7 authorization, then the route table's plan, then the endpoint.
 * The result is either an answer the waypoint gives itself (denied, redirected, no route, no
 * endpoint) or a forward to one chosen endpoint; the protocol handlers (http1.ts, http2.ts) act
 * on it. Nothing here touches a socket.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Endpoint, Service } from '../discovery/types.js';
import type { RequestPlan, RequestView } from '../l7/types.js';
import { formatAuthority } from '../tunnel/authority.js';
import { normalizeRequestPath } from '../../policy/index.js';
import type { RequestRecord, TunnelContext, WaypointInputs } from './context.js';

export type ForwardPlan = Extract<RequestPlan, { kind: 'forward' }>;

export type Decision =
  | { readonly kind: 'local'; readonly status: number; readonly headers: OutgoingHttpHeaders; readonly body: string }
  | { readonly kind: 'forward'; readonly plan: ForwardPlan; readonly endpoint: Endpoint; readonly service: Service };

/** Envoy's answer bodies, so clients and tests that know Istio read the same. */
export const DENIED_BODY = 'RBAC: access denied';
export const NO_HEALTHY_UPSTREAM_BODY = 'no healthy upstream';

const TEXT = { 'content-type': 'text/plain' } as const;

export function decide(inputs: WaypointInputs, tunnel: TunnelContext, view: RequestView, record: RequestRecord): Decision {
  const verdict = inputs.authorizer.authorize({
    request: view,
    sourcePrincipal: tunnel.sourcePrincipal,
    sourceWorkload: tunnel.sourceWorkload,
    sourceIp: tunnel.clientIp,
    service: tunnel.service,
    port: tunnel.port,
    waypoint: inputs.key,
  });
  record.policy = verdict.policy;
  if (!verdict.allow) {
    record.reason = verdict.reason;
    inputs.logger.info({ code: 'WEFT_ERR_POLICY_DENIED', policy: verdict.policy, reason: verdict.reason, sourcePrincipal: tunnel.sourcePrincipal, service: tunnel.service.key, method: view.method, path: view.path }, 'request denied by policy');
    return { kind: 'local', status: 403, headers: TEXT, body: DENIED_BODY };
  }
  const plan = inputs.table().plan(tunnel.service.key, tunnel.port, view, inputs.random());
  record.rule = plan.rule?.name;
  if (plan.kind === 'redirect') return { kind: 'local', status: plan.statusCode, headers: { location: plan.location }, body: '' };
  if (plan.kind === 'reply') {
    record.flag(plan.responseFlag);
    record.reason = plan.reason;
    return { kind: 'local', status: plan.statusCode, headers: TEXT, body: plan.reason };
  }
  record.backendService = plan.backend.service;
  const service = inputs.model().services.get(plan.backend.service);
  const endpoint = service === undefined ? undefined : inputs.picker.pick(service, plan.backend);
  if (service === undefined || endpoint === undefined) {
    record.flag('UH');
    record.reason = `WEFT_ERR_WAYPOINT_NO_ENDPOINT: ${service === undefined ? `service ${plan.backend.service} is not known` : `service ${plan.backend.service} has no ready endpoint for port ${plan.backend.port}`}`;
    return { kind: 'local', status: 503, headers: TEXT, body: NO_HEALTHY_UPSTREAM_BODY };
  }
  record.endpoint = endpoint;
  record.upstream = formatAuthority(endpoint.ip, endpoint.port);
  return { kind: 'forward', plan, endpoint, service };
}

/** The endpoint for one mirror copy (undefined: the mirror is skipped, as Envoy does when it has no host). */
export function mirrorEndpoint(inputs: WaypointInputs, mirror: ForwardPlan['mirrors'][number]): Endpoint | undefined {
  if (inputs.random() * 100 >= mirror.percent) return undefined;
  const service = inputs.model().services.get(mirror.backend.service);
  return service === undefined ? undefined : inputs.picker.pick(service, mirror.backend);
}

/** The time a forwarded request may take: the tighter of the rule's two timeouts. */
export function timeoutOf(plan: ForwardPlan): number | undefined {
  const { requestMs, backendRequestMs } = plan.timeouts;
  if (requestMs === undefined) return backendRequestMs;
  if (backendRequestMs === undefined) return requestMs;
  return Math.min(requestMs, backendRequestMs);
}

/** The RequestView of a request head (path and query split at the first `?`). */
/**
 * The RequestView of a request head: the path normalized as Istio's default (BASE: dot segments
 * removed, unreserved escapes decoded, `\\` as `/`), so that routes and policies match, and the
 * backend is sent, exactly the path that was authorized; the query as received, without a fragment.
 */
export function requestView(method: string, target: string, authority: string, headers: RequestView['headers']): RequestView {
  const q = target.indexOf('?');
  const h = target.indexOf('#');
  const query = q < 0 ? '' : target.slice(q + 1, h > q ? h : undefined);
  return { method: method.toUpperCase(), path: normalizeRequestPath(target), query, authority, headers };
}

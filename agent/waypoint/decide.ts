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
import { drawFault, grpcStatusOfHttp } from './resilience/fault.js';
import { pickEndpoint } from './resilience/exchange.js';

export type ForwardPlan = Extract<RequestPlan, { kind: 'forward' }>;

export type Decision =
  | {
      readonly kind: 'local';
      readonly status: number;
      readonly headers: OutgoingHttpHeaders;
      readonly body: string;
      /** A gRPC request gets this grpc-status in a trailers-only answer (HTTP 200) instead, as Envoy answers gRPC locally. */
      readonly grpcStatus?: number | undefined;
      /** An injected delay (flag DI) before the answer. */
      readonly delayMs?: number | undefined;
    }
  | {
      readonly kind: 'forward';
      readonly plan: ForwardPlan;
      readonly endpoint: Endpoint;
      readonly service: Service;
      /** An injected delay (flag DI) before the request is sent; 0: none. */
      readonly delayMs: number;
      /** The rule's rate-limit headers (x-ratelimit-*), added to the answer; undefined: no limit. */
      readonly rateHeaders: Readonly<Record<string, string>> | undefined;
    };

/** Envoy's answer bodies, so clients and tests that know Istio read the same. */
export const DENIED_BODY = 'RBAC: access denied';
export const NO_HEALTHY_UPSTREAM_BODY = 'no healthy upstream';
/** Envoy's local_ratelimit and fault filter bodies. */
export const RATE_LIMITED_BODY = 'local_rate_limited';
export const FAULT_ABORT_BODY = 'fault filter abort';

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
    return { kind: 'local', status: 403, headers: TEXT, body: DENIED_BODY, grpcStatus: grpcStatusOfHttp(403) };
  }
  const plan = inputs.table().plan(tunnel.service.key, tunnel.port, view, inputs.random());
  record.rule = plan.rule?.name;
  if (plan.kind === 'redirect') return { kind: 'local', status: plan.statusCode, headers: { location: plan.location }, body: '' };
  if (plan.kind === 'reply') {
    record.flag(plan.responseFlag);
    record.reason = plan.reason;
    return { kind: 'local', status: plan.statusCode, headers: TEXT, body: plan.reason, grpcStatus: plan.grpcStatus };
  }
  record.backendService = plan.backend.service;
  let delayMs = 0;
  let rateHeaders: Readonly<Record<string, string>> | undefined;
  const rule = plan.rule;
  if (rule !== undefined && (rule.rateLimit !== undefined || rule.fault !== undefined)) {
    // Envoy's filter order: the local rate limit, then the fault filter (delay, then abort), then the router.
    const limit = rule.rateLimit;
    if (limit !== undefined) {
      const verdict = inputs.resilience.rateLimits.take(limit.bucket ?? rule.name, limit, inputs.resilience.now());
      rateHeaders = verdict.headers;
      if (!verdict.allowed) {
        record.flag('RL');
        record.reason = `WEFT_ERR_WAYPOINT_RATE_LIMITED: ${limit.policy} (${limit.maxTokens} tokens, ${limit.tokensPerFill} per ${limit.fillIntervalMs} ms) on ${rule.name}`;
        return { kind: 'local', status: 429, headers: { ...TEXT, ...verdict.headers }, body: RATE_LIMITED_BODY, grpcStatus: grpcStatusOfHttp(429) };
      }
    }
    const fault = rule.fault === undefined ? undefined : drawFault(rule.fault, inputs.random);
    if (fault !== undefined) {
      if (fault.delayMs > 0) {
        record.flag('DI');
        delayMs = fault.delayMs;
      }
      const abort = fault.abort;
      if (abort !== undefined) {
        record.flag('FI');
        record.reason = `WEFT_ERR_WAYPOINT_FAULT_INJECTED: ${rule.fault!.source === undefined ? '' : `${rule.fault!.source} on `}${rule.name} aborts with ${abort.grpcStatus !== undefined && record.grpc ? `grpc-status ${abort.grpcStatus}` : abort.statusCode}`;
        return { kind: 'local', status: abort.statusCode, headers: TEXT, body: FAULT_ABORT_BODY, grpcStatus: abort.grpcStatus ?? grpcStatusOfHttp(abort.statusCode), delayMs };
      }
    }
  }
  const service = inputs.model().services.get(plan.backend.service);
  const endpoint = service === undefined ? undefined : pickEndpoint(inputs, service, plan, undefined);
  if (service === undefined || endpoint === undefined) {
    record.flag('UH');
    record.reason = `WEFT_ERR_WAYPOINT_NO_ENDPOINT: ${service === undefined ? `service ${plan.backend.service} is not known` : `service ${plan.backend.service} has no ready endpoint for port ${plan.backend.port}`}`;
    return { kind: 'local', status: 503, headers: TEXT, body: NO_HEALTHY_UPSTREAM_BODY, grpcStatus: 14, delayMs };
  }
  record.endpoint = endpoint;
  record.upstream = formatAuthority(endpoint.ip, endpoint.port);
  return { kind: 'forward', plan, endpoint, service, delayMs, rateHeaders };
}

/** The endpoint for one mirror copy (undefined: the mirror is skipped, as Envoy does when it has no host). */
export function mirrorEndpoint(inputs: WaypointInputs, mirror: ForwardPlan['mirrors'][number]): Endpoint | undefined {
  if (inputs.random() * 100 >= mirror.percent) return undefined;
  const service = inputs.model().services.get(mirror.backend.service);
  return service === undefined ? undefined : inputs.picker.pick(service, mirror.backend);
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

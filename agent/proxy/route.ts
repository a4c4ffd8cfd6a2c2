/**
 * The outbound route decision: where a connection a captured pod opened goes, computed from the
 * discovery model alone, before any socket is made (issue 11, "decides first and acts second").
 * outbound.ts executes the decision; this module does no I/O, reads no clock and holds no state,
 * so every case is unit-tested without root (test/proxy/route.test.ts).
 *
 * Steps, in order:
 * 1. the original destination: a service VIP (-> one ready endpoint, picked by the caller's load
 *    balancer) or an address (-> the pod that holds it, if any);
 * 2. [waypoint: the extension point below, not built yet];
 * 3. self-call refusals (the agent's own ports, a connection that bypassed the redirect: F1);
 * 4. a VIP without a ready endpoint is refused (kube-proxy rejects it too);
 * 5. a meshed destination pod, from a pod that has HBONE: a CONNECT to its 15008 that must
 *    present the identity discovery holds; anything else: a direct (plaintext) connection.
 */
import { HBONE_PORT } from '../config.js';
import { WeftError } from '../errors.js';
import type { Endpoint, MeshModel, Service, Workload } from '../discovery/types.js';
import { agentPortRefusal, notRedirectedRefusal } from './self-call.js';

/** What the bytes are, as far as the route knows: L4 only until the waypoint reads protocols. */
export type ProtocolHint = 'tcp';

/** Why a route came out as it did; stable strings (access log, tests). */
export type RouteReason =
  /** A service endpoint that is a meshed pod: over HBONE. */
  | 'meshed-endpoint'
  /** A meshed pod addressed by its IP: over HBONE. */
  | 'meshed-pod'
  /** A service endpoint that is a pod outside the mesh: direct. */
  | 'endpoint-not-meshed'
  /** A service endpoint that is no known pod (a selectorless Service's address): direct. */
  | 'endpoint-not-a-pod'
  /** A pod outside the mesh addressed by its IP: direct. */
  | 'pod-not-meshed'
  /** An address discovery does not know (outside the cluster): direct. */
  | 'passthrough'
  /** A meshed destination, but the agent runs without mTLS (`--no-mtls`): direct. */
  | 'no-mtls'
  /** Refused: one of the agent's own ports, or the redirect was bypassed (WEFT_ERR_SELF_CALL). */
  | 'self-call'
  /** Refused: a service VIP with no ready endpoint for the port (WEFT_ERR_NO_ENDPOINT). */
  | 'no-ready-endpoint';

interface RouteCommon {
  /** The destination the app dialled (SO_ORIGINAL_DST). */
  readonly original: { readonly address: string; readonly port: number };
  /** The service whose VIP was dialled; undefined for a plain address. */
  readonly service: Service | undefined;
  /** The service endpoint chosen; undefined for a plain address (or a VIP without one). */
  readonly endpoint: Endpoint | undefined;
  /** The destination pod, when discovery knows it. */
  readonly workload: Workload | undefined;
  /** The application address the bytes are for (the endpoint's, or the original destination). */
  readonly upstreamIp: string;
  readonly upstreamPort: number;
  readonly protocol: ProtocolHint;
  readonly reason: RouteReason;
}

/** A CONNECT stream over the source pod's HBONE pool. */
export interface HboneRoute extends RouteCommon {
  readonly kind: 'hbone';
  /** Where the tunnel goes: the destination pod's 15008 (later: a waypoint's). */
  readonly tunnelHost: string;
  readonly tunnelPort: number;
  /** The CONNECT's `:authority`: the destination pod's IP and the application port. */
  readonly authority: string;
  /** The SPIFFE ID the tunnel's server must present. */
  readonly expectedIdentity: string;
}

/** A plain TCP connection from the source pod's namespace to upstreamIp:upstreamPort. */
export interface DirectRoute extends RouteCommon {
  readonly kind: 'direct';
}

/** Refused before any socket is made. */
export interface RefuseRoute extends RouteCommon {
  readonly kind: 'refuse';
  readonly error: WeftError;
}

export type RouteDecision = HboneRoute | DirectRoute | RefuseRoute;

/** The captured pod a connection comes from: its workload, and its HBONE pool when it has mTLS. */
export interface RouteSource {
  readonly workload: Workload;
  /** Present when the pod can tunnel (the agent has a CA); only whether it is set matters here. */
  readonly pool: object | undefined;
}

/** The accepted socket's own address: the outbound listener's (to spot a bypassed redirect). */
export interface ListenerAddress {
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/** Chooses one of a service's ready endpoints (the agent's LoadBalancer; tests pass a fixed one). */
export interface EndpointPicker {
  pick(endpoints: readonly Endpoint[]): Endpoint | undefined;
}

/** Decides the route of an outbound connection to `original` from `source`. */
export function decideRoute(model: MeshModel, source: RouteSource, original: { readonly address: string; readonly port: number }, listener: ListenerAddress, picker: EndpointPicker): RouteDecision {
  const service = model.serviceByVip(original.address);
  // Extension point (issue 11, waypoints): a service, or its namespace, labelled
  // `weft.dev/use-waypoint: NAME` (USE_WAYPOINT_LABEL) will route here to that waypoint: an
  // HboneRoute whose tunnel is the waypoint's 15008, `:authority` the service VIP:port, the
  // expected identity the waypoint's, before an endpoint is picked (the waypoint picks per
  // request). Nothing is built yet: such a service is routed at L4 like any other.
  if (service !== undefined) return routeToEndpoint(source, original, listener, service, picker.pick(service.ports.get(original.port) ?? []));
  return routeToEndpoint(source, original, listener, undefined, undefined, model.workloadByIp(original.address));
}

/**
 * The route for a second attempt after `failed` could not connect before any byte moved: another
 * ready endpoint of the same service, or undefined when there is none (or no service at all).
 */
export function retryRoute(failed: RouteDecision, source: RouteSource, listener: ListenerAddress, picker: EndpointPicker): RouteDecision | undefined {
  const { service, endpoint, original } = failed;
  if (service === undefined || endpoint === undefined) return undefined;
  const candidates = (service.ports.get(original.port) ?? []).filter((e) => e.ip !== endpoint.ip || e.port !== endpoint.port);
  const other = picker.pick(candidates);
  return other === undefined ? undefined : routeToEndpoint(source, original, listener, service, other);
}

function routeToEndpoint(
  source: RouteSource,
  original: { readonly address: string; readonly port: number },
  listener: ListenerAddress,
  service: Service | undefined,
  endpoint: Endpoint | undefined,
  addressed?: Workload,
): RouteDecision {
  const upstreamIp = endpoint ? endpoint.ip : original.address;
  const upstreamPort = endpoint ? endpoint.port : original.port;
  const workload = endpoint ? endpoint.workload : addressed;
  const meshed = workload?.inMesh === true;
  // Not redirected (loopback, the pod's own IP), or a meshed pod's agent port: a loop (F1).
  const selfCall =
    notRedirectedRefusal(original, listener.localAddress, listener.localPort) ??
    (meshed || upstreamIp === source.workload.ip ? agentPortRefusal(upstreamIp, upstreamPort) : undefined);
  // One object per decision (the per-connection path): each kind spelled out, no spread.
  if (selfCall) return { kind: 'refuse', reason: 'self-call', error: selfCall, original, service, endpoint, workload, upstreamIp, upstreamPort, protocol: 'tcp' };
  if (service && !endpoint) {
    const error = new WeftError('WEFT_ERR_NO_ENDPOINT', `service ${service.key} has no ready endpoint for port ${original.port}`);
    return { kind: 'refuse', reason: 'no-ready-endpoint', error, original, service, endpoint, workload, upstreamIp, upstreamPort, protocol: 'tcp' };
  }
  if (meshed && source.pool !== undefined) {
    return {
      kind: 'hbone',
      reason: endpoint ? 'meshed-endpoint' : 'meshed-pod',
      tunnelHost: workload.ip,
      tunnelPort: HBONE_PORT,
      authority: `${workload.ip}:${upstreamPort}`,
      expectedIdentity: workload.identity,
      original, service, endpoint, workload, upstreamIp, upstreamPort, protocol: 'tcp',
    };
  }
  const reason: RouteReason = meshed ? 'no-mtls' : endpoint ? (workload ? 'endpoint-not-meshed' : 'endpoint-not-a-pod') : workload ? 'pod-not-meshed' : 'passthrough';
  return { kind: 'direct', reason, original, service, endpoint, workload, upstreamIp, upstreamPort, protocol: 'tcp' };
}

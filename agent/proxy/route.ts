/**
 * The outbound route decision: where a connection a captured pod opened goes, computed from the
 * discovery model alone, before any socket is made (issue 11, "decides first and acts second").
 * outbound.ts executes the decision; this module does no I/O, reads no clock and holds no state,
 * so every case is unit-tested without root (test/proxy/route.test.ts).
 *
 * Steps, in order:
 * 1. the original destination: a service VIP (-> one ready endpoint, picked by the caller's load
 *    balancer) or an address (-> the pod that holds it, if any);
 * 2. a service bound to a waypoint (`Service.waypoint`): an HBONE CONNECT to one of the
 *    waypoint's ready pods (its 15008), `:authority` the service VIP:port, the waypoint's
 *    identity expected; the waypoint picks the endpoint per request. A waypoint that does not
 *    exist or has no ready pod refuses the connection (WEFT_ERR_WAYPOINT_UNAVAILABLE): never a
 *    bypass to the endpoints, which would skip the waypoint's policies. Only the VIP: a pod
 *    addressed by its IP is not routed to the waypoint (routes bind to the Service frontend);
 * 3. self-call refusals (the agent's own ports, a connection that bypassed the redirect: F1);
 * 4. a VIP without a ready endpoint is refused (kube-proxy rejects it too);
 * 5. a meshed destination pod, from a pod that has HBONE: a CONNECT to its 15008 that must
 *    present the identity discovery holds; anything else: a direct (plaintext) connection.
 */
import { HBONE_PORT } from '../config.js';
import { WeftError } from '../errors.js';
import { GATEWAY_NAME_LABEL, type Endpoint, type MeshModel, type Service, type Waypoint, type Workload } from '../discovery/types.js';
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
  | 'no-ready-endpoint'
  /** A service bound to a waypoint: over HBONE to one of the waypoint's pods. */
  | 'waypoint'
  /** Refused: the service's waypoint does not exist or has no ready pod (WEFT_ERR_WAYPOINT_UNAVAILABLE). */
  | 'waypoint-unavailable';

interface RouteCommon {
  /** The destination the app dialled (SO_ORIGINAL_DST). */
  readonly original: { readonly address: string; readonly port: number };
  /** The service whose VIP was dialled; undefined for a plain address. */
  readonly service: Service | undefined;
  /** The service endpoint chosen (the waypoint's pod, via a waypoint); undefined for a plain address (or a VIP without one). */
  readonly endpoint: Endpoint | undefined;
  /** The destination pod, when discovery knows it (via a waypoint: the waypoint's pod, as Istio reports it). */
  readonly workload: Workload | undefined;
  /** The waypoint the service is bound to (set on the routes of a waypointed service only). */
  readonly waypoint?: Waypoint | undefined;
  /** The application address the bytes are for (the endpoint's, or the original destination). */
  readonly upstreamIp: string;
  readonly upstreamPort: number;
  readonly protocol: ProtocolHint;
  readonly reason: RouteReason;
}

/** A CONNECT stream over the source pod's HBONE pool. */
export interface HboneRoute extends RouteCommon {
  readonly kind: 'hbone';
  /** Where the tunnel goes: the destination pod's 15008, or a waypoint pod's. */
  readonly tunnelHost: string;
  readonly tunnelPort: number;
  /** The CONNECT's `:authority`: the destination pod's IP and the application port (via a waypoint: the service VIP and port). */
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
  // A waypoint's own pods are not captured (mesh: disabled); should one be, its traffic to the
  // service it serves must not enter it again (ztunnel's from_waypoint check): L4 from there.
  if (service?.waypoint !== undefined && !isPodOf(source.workload, service.waypoint)) return routeToWaypoint(model, source, original, listener, service, service.waypoint, picker);
  if (service !== undefined) return routeToEndpoint(source, original, listener, service, picker.pick(service.ports.get(original.port) ?? []));
  return routeToEndpoint(source, original, listener, undefined, undefined, model.workloadByIp(original.address));
}

/**
 * The route for a second attempt after `failed` could not connect before any byte moved: another
 * ready endpoint of the same service, or undefined when there is none (or no service at all).
 */
export function retryRoute(failed: RouteDecision, source: RouteSource, listener: ListenerAddress, picker: EndpointPicker): RouteDecision | undefined {
  const { service, endpoint, original, waypoint } = failed;
  if (service === undefined || endpoint === undefined) return undefined;
  if (waypoint !== undefined) {
    // Another pod of the same waypoint (the one the first attempt saw), never the endpoints.
    const other = picker.pick(waypoint.endpoints.filter((e) => e.ip !== endpoint.ip || e.port !== endpoint.port));
    return other === undefined ? undefined : viaWaypoint(original, service, waypoint, other);
  }
  const candidates = (service.ports.get(original.port) ?? []).filter((e) => e.ip !== endpoint.ip || e.port !== endpoint.port);
  const other = picker.pick(candidates);
  return other === undefined ? undefined : routeToEndpoint(source, original, listener, service, other);
}

/** Whether `w` is one of the pods of waypoint `key` (`<namespace>/<gateway name>`). */
function isPodOf(w: Workload, key: string): boolean {
  const name = w.labels[GATEWAY_NAME_LABEL];
  return name !== undefined && `${w.namespace}/${name}` === key;
}

/**
 * A connection to the VIP of a service bound to a waypoint. Refused rather than sent anywhere
 * else when the waypoint cannot take it: its L7 policies are the service's policies.
 */
function routeToWaypoint(
  model: MeshModel,
  source: RouteSource,
  original: { readonly address: string; readonly port: number },
  listener: ListenerAddress,
  service: Service,
  waypointKey: string,
  picker: EndpointPicker,
): RouteDecision {
  const upstreamIp = original.address;
  const upstreamPort = original.port;
  const selfCall = notRedirectedRefusal(original, listener.localAddress, listener.localPort);
  if (selfCall) return { kind: 'refuse', reason: 'self-call', error: selfCall, original, service, endpoint: undefined, workload: undefined, upstreamIp, upstreamPort, protocol: 'tcp' };
  if (!service.ports.has(original.port)) {
    // Not a port of the service: nothing the waypoint could route either (as without one).
    const error = new WeftError('WEFT_ERR_NO_ENDPOINT', `service ${service.key} has no port ${original.port}`);
    return { kind: 'refuse', reason: 'no-ready-endpoint', error, original, service, endpoint: undefined, workload: undefined, upstreamIp, upstreamPort, protocol: 'tcp' };
  }
  const waypoint = model.waypoints.get(waypointKey);
  const endpoint = waypoint !== undefined && source.pool !== undefined ? picker.pick(waypoint.endpoints) : undefined;
  if (waypoint !== undefined && endpoint !== undefined) return viaWaypoint(original, service, waypoint, endpoint);
  const why =
    waypoint === undefined
      ? `it does not exist (no Gateway ${waypointKey} of class weft-waypoint with an HBONE listener on 15008)`
      : source.pool === undefined
        ? 'this agent runs without mTLS and cannot reach it'
        : 'it has no ready pod';
  const error = new WeftError('WEFT_ERR_WAYPOINT_UNAVAILABLE', `service ${service.key} uses waypoint ${waypointKey}, but ${why}; connection refused (never sent around the waypoint)`);
  return { kind: 'refuse', reason: 'waypoint-unavailable', error, original, service, endpoint: undefined, workload: undefined, waypoint, upstreamIp, upstreamPort, protocol: 'tcp' };
}

function viaWaypoint(original: { readonly address: string; readonly port: number }, service: Service, waypoint: Waypoint, endpoint: Endpoint): HboneRoute {
  return {
    kind: 'hbone',
    reason: 'waypoint',
    tunnelHost: endpoint.ip,
    tunnelPort: endpoint.port,
    // The service frontend, not a pod: the waypoint routes it (and a pod IP never reaches here).
    authority: `${original.address}:${original.port}`,
    expectedIdentity: waypoint.identity,
    original, service, endpoint, workload: endpoint.workload, waypoint,
    upstreamIp: original.address, upstreamPort: original.port, protocol: 'tcp',
  };
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

/**
 * Outbound (15001): a connection an app in a captured pod opened, redirected to the agent.
 * Decides first, acts second: the original destination -> the route decision (route.ts: hbone,
 * direct or refuse, from the model alone; a waypointed service's VIP is an hbone route to the
 * waypoint) -> executed here: a CONNECT stream over the pod's HBONE
 * pool (mutual TLS to the tunnel address, the server must present the expected identity), or a
 * plain socket -> relay. Every socket is made inside the source pod's namespace with the mesh
 * mark, so the rules let it through and the wire carries pod IPs.
 */
import net from 'node:net';
import { createTcpSocket, originalDestination, socketFd } from '../../native/index.js';
import { MESH_MARK } from '../config.js';
import { WeftError } from '../errors.js';
import type { CapturedPod, ProxyInputs } from './inputs.js';
import { armConnectTimeout } from './connect-timeout.js';
import { relaySocket } from './relay.js';
import type { Duplex } from 'node:stream';
import { decideRoute, retryRoute, type RouteDecision } from './route.js';

export function handleOutbound(inputs: ProxyInputs, pod: CapturedPod, downstream: net.Socket): void {
  let original: { address: string; port: number };
  try {
    original = originalDestination(socketFd(downstream));
  } catch (err) {
    // Can only happen if the socket died between accept and here; nothing to record.
    inputs.logger.warn({ err, pod: pod.workload.key }, 'outbound: cannot read the original destination; connection reset');
    downstream.resetAndDestroy();
    return;
  }
  dial(inputs, pod, downstream as WaitingSocket, decideRoute(inputs.model(), pod, original, downstream, inputs.loadBalancer), true);
}

/**
 * One attempt to reach the destination: a record per attempt (its labels name the endpoint
 * tried). With `mayRetry`, a connect that fails before any byte moved (refused, unreachable,
 * timed out, TLS, or the peer answered the CONNECT with an error) is tried once more on another
 * ready endpoint of the service; the client's bytes wait in its socket meanwhile.
 */
function dial(inputs: ProxyInputs, pod: CapturedPod, downstream: WaitingSocket, route: RouteDecision, mayRetry: boolean): void {
  const { original, service, endpoint, upstreamIp, upstreamPort } = route;
  const destinationWorkload = route.workload;
  const viaHbone = route.kind === 'hbone';
  const record = inputs.connections.open({
    direction: 'outbound',
    sourceIp: downstream.remoteAddress ?? pod.workload.ip,
    sourcePort: downstream.remotePort ?? 0,
    sourceWorkload: pod.workload,
    originalDestination: `${original.address}:${original.port}`,
    upstream: `${upstreamIp}:${upstreamPort}`,
    destinationWorkload,
    destinationService: service?.key,
    mutualTls: viaHbone,
  });
  if (route.kind === 'refuse') {
    // A self call is logged at once (a loop attempt), and so is a waypoint that cannot take its
    // service's traffic (the operator must learn why); a VIP without a ready endpoint is only
    // recorded, as kube-proxy's reject.
    if (route.reason === 'self-call' || route.reason === 'waypoint-unavailable') {
      inputs.logger.warn({ pod: pod.workload.key, dst: `${original.address}:${original.port}`, service: service?.key, waypoint: service?.waypoint, code: route.error.code }, `outbound refused: ${route.error.message}`);
    }
    record.finish({ error: route.error });
    downstream.resetAndDestroy();
    return;
  }
  if (endpoint) record.holdEndpoint(inputs.loadBalancer, endpoint);
  // The client may leave while the upstream is being set up; its bytes wait in the socket meanwhile.
  downstream.on('error', onEarlyClose);
  downstream.on('close', onEarlyClose);
  const failed = (err: Error): void => {
    downstream.off('error', onEarlyClose);
    downstream.off('close', onEarlyClose);
    const other = mayRetry && downstream[kGone] !== true && failedBeforeAnyByte(err) ? retryRoute(route, pod, downstream, inputs.loadBalancer) : undefined;
    if (other) {
      inputs.logger.info({ pod: pod.workload.key, service: service!.key, failed: `${upstreamIp}:${upstreamPort}`, retry: `${other.upstreamIp}:${other.upstreamPort}`, reason: err.message }, 'outbound: connect failed before any byte; trying another endpoint');
      record.finish({ error: err });
      dial(inputs, pod, downstream, other, false);
      return;
    }
    if (viaHbone) inputs.logger.warn({ err: { code: (err as WeftError).code, message: err.message }, pod: pod.workload.key, destination: destinationWorkload!.key, waypoint: route.waypoint?.key }, 'outbound: HBONE tunnel failed; connection reset');
    record.finish({ error: err });
    if (!downstream.destroyed) downstream.resetAndDestroy();
  };
  const connected = (upstream: Duplex): void => {
    downstream.off('error', onEarlyClose);
    downstream.off('close', onEarlyClose);
    if (downstream[kGone] === true) {
      upstream.destroy();
      record.finish({});
      return;
    }
    record.startRelay(downstream, upstream);
  };
  if (route.kind === 'hbone') {
    pod.pool!.connect({
      sourceIdentity: pod.workload.identity,
      destination: { host: route.tunnelHost, port: route.tunnelPort },
      expectedIdentity: route.expectedIdentity,
      authority: route.authority,
      headers: { baggage: pod.baggage },
    }).then(connected, failed);
    return;
  }
  let fd: number;
  try {
    fd = createTcpSocket({ netnsFd: pod.netnsFd, mark: MESH_MARK });
  } catch (err) {
    inputs.logger.error({ err, pod: pod.workload.key }, 'outbound: cannot open the upstream socket in the pod namespace');
    failed(err as Error);
    return;
  }
  const upstream = relaySocket(fd, downstream);
  upstream.setNoDelay(true);
  armConnectTimeout(upstream);
  const onError = (err: Error): void => {
    upstream.off('connect', onConnect);
    upstream.destroy();
    failed(err);
  };
  const onConnect = (): void => {
    upstream.off('error', onError);
    connected(upstream);
  };
  upstream.on('error', onError);
  upstream.on('connect', onConnect);
  upstream.connect(upstreamPort, upstreamIp);
}

/** Socket errors of a connect that never reached the other end's application. */
const CONNECT_ERRNOS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL']);

/**
 * Whether `err` ended an attempt before any byte reached an application: another endpoint may be
 * tried. A policy refusal (403) or a bad request is an answer, not a failed connect.
 */
function failedBeforeAnyByte(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === undefined) return false;
  if (CONNECT_ERRNOS.has(code)) return true;
  if (code === 'WEFT_ERR_HBONE_REFUSED') return / 503$/.test(err.message);
  return code === 'WEFT_ERR_HBONE_CONNECT' || code === 'WEFT_ERR_CONNECT_TIMEOUT' || code === 'WEFT_ERR_TLS_HANDSHAKE' || code === 'WEFT_ERR_TLS_PEER_UNTRUSTED' || code === 'WEFT_ERR_TLS_PEER_IDENTITY' || code === 'WEFT_ERR_HBONE_SESSION';
}

/** Marks a client that left while its tunnel was being set up (shared: no closure per connection). */
const kGone = Symbol('weft.goneEarly');
type WaitingSocket = net.Socket & { [kGone]?: boolean };
function onEarlyClose(this: WaitingSocket): void {
  this[kGone] = true;
}

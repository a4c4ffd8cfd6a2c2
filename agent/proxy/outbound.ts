/**
 * Outbound (15001): a connection an app in a captured pod opened, redirected to the agent.
 * Steps: original destination -> service VIP resolved to one endpoint (power of two choices) ->
 * to a meshed destination: a CONNECT stream over the pod's HBONE pool (mutual TLS to
 * <pod ip>:15008, the server must present the identity discovery holds); otherwise a plain
 * socket -> relay. Every socket is made inside the source pod's namespace with the mesh mark,
 * so the rules let it through and the wire carries pod IPs.
 */
import net from 'node:net';
import { createTcpSocket, originalDestination, socketFd, type SocketAddress } from '../../native/index.js';
import { HBONE_PORT, MESH_MARK } from '../config.js';
import { WeftError } from '../errors.js';
import type { CapturedPod, ProxyInputs } from './inputs.js';
import { armConnectTimeout } from './connect-timeout.js';
import type { Endpoint, Service, Workload } from '../discovery/types.js';
import type { Duplex } from 'node:stream';
import { agentPortRefusal, notRedirectedRefusal } from './self-call.js';

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
  const model = inputs.model();
  const service = model.serviceByVip(original.address);
  const endpoint = service ? inputs.loadBalancer.pick(service.ports.get(original.port) ?? []) : undefined;
  dial(inputs, pod, downstream as WaitingSocket, original, service, endpoint, true);
}

/**
 * One attempt to reach the destination: a record per attempt (its labels name the endpoint
 * tried). With `mayRetry`, a connect that fails before any byte moved (refused, unreachable,
 * timed out, TLS, or the peer answered the CONNECT with an error) is tried once more on another
 * ready endpoint of the service; the client's bytes wait in its socket meanwhile.
 */
function dial(inputs: ProxyInputs, pod: CapturedPod, downstream: WaitingSocket, original: SocketAddress, service: Service | undefined, endpoint: Endpoint | undefined, mayRetry: boolean): void {
  const upstreamIp = endpoint ? endpoint.ip : original.address;
  const upstreamPort = endpoint ? endpoint.port : original.port;
  const destinationWorkload: Workload | undefined = endpoint ? endpoint.workload : service ? undefined : inputs.model().workloadByIp(original.address);
  const viaHbone = pod.pool !== undefined && destinationWorkload?.inMesh === true;
  // Not redirected (loopback, the pod's own IP), or a meshed pod's agent port: a loop (F1).
  const selfCall =
    notRedirectedRefusal(original, downstream.localAddress, downstream.localPort) ??
    (destinationWorkload?.inMesh === true || upstreamIp === pod.workload.ip ? agentPortRefusal(upstreamIp, upstreamPort) : undefined);
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
  if (selfCall) {
    inputs.logger.warn({ pod: pod.workload.key, dst: `${original.address}:${original.port}`, code: selfCall.code }, `outbound refused: ${selfCall.message}`);
    record.finish({ error: selfCall });
    downstream.resetAndDestroy();
    return;
  }
  if (service && !endpoint) {
    // A VIP without a ready endpoint: kube-proxy would reject; so do we.
    record.finish({ error: new WeftError('WEFT_ERR_NO_ENDPOINT', `service ${service.key} has no ready endpoint for port ${original.port}`) });
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
    const other = mayRetry && service && endpoint && downstream[kGone] !== true && failedBeforeAnyByte(err) ? otherEndpoint(inputs, service, original.port, endpoint) : undefined;
    if (other) {
      inputs.logger.info({ pod: pod.workload.key, service: service!.key, failed: `${upstreamIp}:${upstreamPort}`, retry: `${other.ip}:${other.port}`, reason: err.message }, 'outbound: connect failed before any byte; trying another endpoint');
      record.finish({ error: err });
      dial(inputs, pod, downstream, original, service, other, false);
      return;
    }
    if (viaHbone) inputs.logger.warn({ err: { code: (err as WeftError).code, message: err.message }, pod: pod.workload.key, destination: destinationWorkload!.key }, 'outbound: HBONE tunnel failed; connection reset');
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
  if (viaHbone) {
    pod.pool!.connect({
      sourceIdentity: pod.workload.identity,
      destination: { host: destinationWorkload!.ip, port: HBONE_PORT },
      expectedIdentity: destinationWorkload!.identity,
      authority: `${destinationWorkload!.ip}:${upstreamPort}`,
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
  const upstream = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
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

/** Another ready endpoint of the service for `port` than `failed`, if there is one. */
function otherEndpoint(inputs: ProxyInputs, service: Service, port: number, failed: Endpoint): Endpoint | undefined {
  const candidates = (service.ports.get(port) ?? []).filter((e) => e.ip !== failed.ip || e.port !== failed.port);
  return inputs.loadBalancer.pick(candidates);
}

/** Marks a client that left while its tunnel was being set up (shared: no closure per connection). */
const kGone = Symbol('weft.goneEarly');
type WaitingSocket = net.Socket & { [kGone]?: boolean };
function onEarlyClose(this: WaitingSocket): void {
  this[kGone] = true;
}

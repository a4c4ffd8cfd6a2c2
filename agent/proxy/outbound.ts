/**
 * Outbound (15001): a connection an app in a captured pod opened, redirected to the agent.
 * Steps: original destination -> service VIP resolved to one endpoint (power of two choices) ->
 * to a meshed destination: a CONNECT stream over the pod's HBONE pool (mutual TLS to
 * <pod ip>:15008, the server must present the identity discovery holds); otherwise a plain
 * socket -> relay. Every socket is made inside the source pod's namespace with the mesh mark,
 * so the rules let it through and the wire carries pod IPs.
 */
import net from 'node:net';
import { createTcpSocket, originalDestination, socketFd } from '../../native/index.js';
import { MESH_MARK } from '../capture/rules.js';
import { WeftError } from '../errors.js';
import type { CapturedPod, ProxyInputs } from './inputs.js';
import { armConnectTimeout } from './connect-timeout.js';
import type { Endpoint, Workload } from '../discovery/types.js';
import type { ConnectionRecord } from './connection.js';
import { HBONE_PORT } from '../capture/rules.js';
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
  let upstreamIp = original.address;
  let upstreamPort = original.port;
  let endpoint: Endpoint | undefined;
  let destinationWorkload: Workload | undefined;
  let destinationService: string | undefined;
  const service = model.serviceByVip(original.address);
  if (service) {
    destinationService = service.key;
    endpoint = inputs.loadBalancer.pick(service.ports.get(original.port) ?? []);
    if (endpoint) {
      upstreamIp = endpoint.ip;
      upstreamPort = endpoint.port;
      destinationWorkload = endpoint.workload;
    }
  } else {
    destinationWorkload = model.workloadByIp(original.address);
  }
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
    destinationService,
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
  if (viaHbone) {
    openHbone(inputs, pod, downstream, record, destinationWorkload!, upstreamPort, endpoint);
    return;
  }
  let fd: number;
  try {
    fd = createTcpSocket({ netnsFd: pod.netnsFd, mark: MESH_MARK });
  } catch (err) {
    inputs.logger.error({ err, pod: pod.workload.key }, 'outbound: cannot open the upstream socket in the pod namespace');
    record.finish({ error: err as Error });
    downstream.resetAndDestroy();
    return;
  }
  const upstream = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
  upstream.setNoDelay(true);
  armConnectTimeout(upstream);
  upstream.connect(upstreamPort, upstreamIp);
  if (endpoint) record.holdEndpoint(inputs.loadBalancer, endpoint);
  record.startRelay(downstream, upstream);
}

/** Marks a client that left while its tunnel was being set up (shared: no closure per connection). */
const kGone = Symbol('weft.goneEarly');
type WaitingSocket = net.Socket & { [kGone]?: boolean };
function onEarlyClose(this: WaitingSocket): void {
  this[kGone] = true;
}

function openHbone(inputs: ProxyInputs, pod: CapturedPod, downstream: WaitingSocket, record: ConnectionRecord, destination: Workload, port: number, endpoint: Endpoint | undefined): void {
  // The client may leave while the tunnel is being set up; its bytes wait in the socket meanwhile.
  downstream.on('error', onEarlyClose);
  downstream.on('close', onEarlyClose);
  if (endpoint) record.holdEndpoint(inputs.loadBalancer, endpoint);
  pod.pool!.connect({
    sourceIdentity: pod.workload.identity,
    destination: { host: destination.ip, port: HBONE_PORT },
    expectedIdentity: destination.identity,
    authority: `${destination.ip}:${port}`,
    headers: { baggage: pod.baggage },
  }).then(
    (stream) => {
      downstream.off('error', onEarlyClose);
      downstream.off('close', onEarlyClose);
      if (downstream[kGone] === true) {
        stream.close();
        record.finish({});
        return;
      }
      record.startRelay(downstream, stream);
    },
    (err: Error) => {
      inputs.logger.warn({ err: { code: (err as WeftError).code, message: err.message }, pod: pod.workload.key, destination: destination.key }, 'outbound: HBONE tunnel failed; connection reset');
      record.finish({ error: err });
      if (!downstream.destroyed) downstream.resetAndDestroy();
    },
  );
}

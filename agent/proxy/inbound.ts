/**
 * Inbound plaintext (15006): a connection to a captured pod, redirected to the agent inside that
 * pod. Steps: original destination (the pod's own ip:port) -> upstream socket in the pod's
 * namespace, bound to the client's IP with IP_TRANSPARENT (the app sees the real client, and the
 * connmark rules route its replies back to this socket) -> relay.
 */
import net from 'node:net';
import { createTcpSocket, originalDestination, socketFd } from '../../native/index.js';
import { MESH_MARK } from '../capture/rules.js';
import { relay } from './relay.js';
import type { CapturedPod, ProxyInputs } from './inputs.js';

export function handleInboundPlaintext(inputs: ProxyInputs, pod: CapturedPod, downstream: net.Socket): void {
  let original: { address: string; port: number };
  try {
    original = originalDestination(socketFd(downstream));
  } catch (err) {
    inputs.logger.warn({ err, pod: pod.workload.key }, 'inbound: cannot read the original destination; connection reset');
    downstream.resetAndDestroy();
    return;
  }
  const clientIp = downstream.remoteAddress ?? '0.0.0.0';
  const model = inputs.model();
  const record = inputs.connections.open({
    direction: 'inbound',
    sourceIp: clientIp,
    sourcePort: downstream.remotePort ?? 0,
    sourceWorkload: model.workloadByIp(clientIp),
    originalDestination: `${original.address}:${original.port}`,
    upstream: `${original.address}:${original.port}`,
    destinationWorkload: pod.workload,
    destinationService: undefined,
  });
  connectToApp(inputs, pod, clientIp, original, downstream, record);
}

/** Opens the spoofed-source socket to the app and relays; shared by plaintext and HBONE inbound. */
export function connectToApp(
  inputs: ProxyInputs,
  pod: CapturedPod,
  clientIp: string,
  target: { address: string; port: number },
  downstream: net.Socket | import('node:stream').Duplex,
  record: { finish(result: { bytesFromDownstream?: number; bytesFromUpstream?: number; error?: Error | undefined }): void },
): net.Socket | undefined {
  let fd: number;
  try {
    fd = createTcpSocket({ netnsFd: pod.netnsFd, mark: MESH_MARK, transparent: true, bind: { address: clientIp, port: 0 } });
  } catch (err) {
    inputs.logger.error({ err, pod: pod.workload.key, clientIp }, 'inbound: cannot open the upstream socket to the app');
    record.finish({ error: err as Error });
    downstream.destroy();
    return undefined;
  }
  const upstream = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
  upstream.connect(target.port, target.address);
  if (downstream instanceof net.Socket) relay(downstream, upstream, (result) => record.finish(result));
  return upstream;
}

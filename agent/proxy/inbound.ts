/**
 * Inbound plaintext (15006): a connection to a captured pod, redirected to the agent inside that
 * pod. Steps: original destination (the pod's own ip:port) -> upstream socket in the pod's
 * namespace, bound to the client's IP with IP_TRANSPARENT (the app sees the real client, and the
 * connmark rules route its replies back to this socket) -> relay.
 */
import net from 'node:net';
import { createTcpSocket, originalDestination, socketFd } from '../../native/index.js';
import { MESH_MARK } from '../config.js';
import type { CapturedPod, ProxyInputs } from './inputs.js';
import { armConnectTimeout } from './connect-timeout.js';
import type { ConnectionRecord } from './connection.js';
import type { Duplex } from 'node:stream';
import { abort, relaySocket } from './relay.js';
import { agentPortRefusal } from './self-call.js';

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
    mutualTls: false,
  });
  const selfCall = agentPortRefusal(original.address, original.port);
  if (selfCall) {
    inputs.logger.warn({ pod: pod.workload.key, src: clientIp, dst: `${original.address}:${original.port}`, code: selfCall.code }, `inbound refused: ${selfCall.message}`);
    record.finish({ error: selfCall });
    downstream.resetAndDestroy();
    return;
  }
  if (!authorize(inputs, pod, record, clientIp, undefined, original)) {
    downstream.resetAndDestroy();
    return;
  }
  connectToApp(inputs, pod, clientIp, original, downstream, record, true);
}

/**
 * Decides an inbound connection once; a refusal is logged with the deciding policy, counted and
 * recorded. The caller refuses on the wire (reset, or 403 on HBONE).
 */
export function authorize(
  inputs: ProxyInputs,
  pod: CapturedPod,
  record: ConnectionRecord,
  clientIp: string,
  principal: string | undefined,
  target: { address: string; port: number },
): boolean {
  const question = { workload: pod.workload, sourceIp: clientIp, sourcePrincipal: principal, destinationIp: target.address, destinationPort: target.port, mutualTls: principal !== undefined };
  const verdict = inputs.policy.decide(question);
  inputs.metrics.policyDecisions.inc({ result: verdict.allowed ? 'allow' : 'deny', action: verdict.action });
  record.verdict = verdict;
  if (verdict.allowed) {
    record.question = question;
    return true;
  }
  const why = verdict.reason === 'mtls-required' ? 'PeerAuthentication STRICT: plaintext refused' : verdict.reason;
  inputs.logger.info(
    { decision: 'deny', policy: verdict.policy, reason: verdict.reason, src: clientIp, src_principal: principal, dst: `${target.address}:${target.port}`, dst_workload: pod.workload.key },
    `connection denied: ${why}${verdict.policy ? ` by ${verdict.policy}` : ''}`,
  );
  record.closeReason = `denied: ${why}${verdict.policy ? ` (${verdict.policy})` : ''}`;
  record.finish({});
  return false;
}

/**
 * Opens the socket to the app inside the pod, bound to the client's IP (IP_TRANSPARENT), and
 * (when `relayNow`) starts relaying; shared by plaintext and HBONE inbound.
 */
export function connectToApp(
  inputs: ProxyInputs,
  pod: CapturedPod,
  clientIp: string,
  target: { address: string; port: number },
  downstream: Duplex,
  record: ConnectionRecord,
  relayNow: boolean,
): net.Socket | undefined {
  let fd: number;
  try {
    fd = createTcpSocket({ netnsFd: pod.netnsFd, mark: MESH_MARK, transparent: true, bindAddressNoPort: true, bind: { address: clientIp, port: 0 } });
  } catch (err) {
    inputs.logger.error({ err, pod: pod.workload.key, clientIp }, 'inbound: cannot open the upstream socket to the app');
    record.finish({ error: err as Error });
    abort(downstream);
    return undefined;
  }
  const upstream = relaySocket(fd, downstream);
  upstream.setNoDelay(true);
  armConnectTimeout(upstream);
  upstream.connect(target.port, target.address);
  if (relayNow) record.startRelay(downstream, upstream);
  return upstream;
}

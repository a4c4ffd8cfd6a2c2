/**
 * Inbound HBONE (15008): the pod's mutual-TLS HTTP/2 server. Per CONNECT stream: build the
 * context (peer identity, original destination) -> policy -> connect to the app with the
 * client's IP -> 200 -> relay. Refusals answer with a status: 400 (authority is not this pod),
 * 403 (policy), 503 (app unreachable).
 */
import type { ServerHttp2Stream } from 'node:http2';
import { abort } from './relay.js';
import { createHboneServer, type HboneStreamInfo } from '../tunnel/server.js';
import type { InboundTunnel } from '../capture/pod-capture.js';
import type { CapturedPod, ProxyInputs } from './inputs.js';
import { authorize, connectToApp } from './inbound.js';
import { WeftError } from '../errors.js';
import { agentPortRefusal } from './self-call.js';
import type { Socket } from 'node:net';
import type { ConnectionRecord } from './connection.js';

function plainIp(address: string | undefined): string {
  if (!address) return '0.0.0.0';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function refuse(stream: ServerHttp2Stream, status: number): void {
  if (stream.destroyed) return;
  if (stream.headersSent) abort(stream);
  else stream.respond({ ':status': status }, { endStream: true });
}

function ignore(): void {}

const STREAM_GONE = new WeftError('WEFT_ERR_HBONE_STREAM', 'the CONNECT stream was reset before the app connection was up');

/** What the app socket's connect/error listeners need (shared functions, no closures per stream). */
const kPending = Symbol('weft.pendingInbound');
interface PendingInbound {
  stream: ServerHttp2Stream;
  record: ConnectionRecord;
}
type AppSocket = Socket & { [kPending]?: PendingInbound | undefined };

function onAppConnect(this: AppSocket): void {
  const p = this[kPending]!;
  this[kPending] = undefined;
  this.off('error', onAppError);
  if (p.stream.destroyed) {
    // Reset while the app connect ran (rapid reset): the record is finished here or never (F4).
    p.record.finish({ error: STREAM_GONE });
    this.destroy();
    return;
  }
  p.stream.respond({ ':status': 200 });
  p.record.startRelay(p.stream, this);
}

function onAppError(this: AppSocket, err: Error): void {
  const p = this[kPending];
  if (p === undefined) return;
  this[kPending] = undefined;
  this.off('connect', onAppConnect);
  p.record.finish({ error: err });
  refuse(p.stream, 503);
}

export function handleInboundHbone(inputs: ProxyInputs, pod: CapturedPod, stream: ServerHttp2Stream, info: HboneStreamInfo): void {
  stream.on('error', ignore); // relay() takes over error handling once it runs
  const clientIp = plainIp(info.remoteAddress);
  const target = { address: info.host, port: info.port };
  const record = inputs.connections.open({
    direction: 'inbound',
    sourceIp: clientIp,
    sourcePort: info.remotePort ?? 0,
    sourceWorkload: inputs.model().workloadByIp(clientIp),
    originalDestination: info.authority,
    upstream: info.authority,
    destinationWorkload: pod.workload,
    destinationService: undefined,
    sourcePrincipal: info.peerIdentity,
    mutualTls: true,
  });
  if (target.address !== pod.workload.ip) {
    // A CONNECT to anything but this pod would make the agent an open relay.
    inputs.logger.warn({ authority: info.authority, pod: pod.workload.key, peer: info.peerIdentity }, 'HBONE CONNECT refused: authority is not this pod');
    record.finish({ error: new WeftError('WEFT_ERR_HBONE_BAD_REQUEST', `authority ${info.authority} is not pod ${pod.workload.ip}`) });
    refuse(stream, 400);
    return;
  }
  const selfCall = agentPortRefusal(target.address, target.port);
  if (selfCall) {
    inputs.logger.warn({ authority: info.authority, pod: pod.workload.key, peer: info.peerIdentity, code: selfCall.code }, `HBONE CONNECT refused: ${selfCall.message}`);
    record.finish({ error: selfCall });
    refuse(stream, 400);
    return;
  }
  if (!authorize(inputs, pod, record, clientIp, info.peerIdentity, target)) {
    refuse(stream, 403);
    return;
  }
  const upstream = connectToApp(inputs, pod, clientIp, target, stream, record, false);
  if (!upstream) return;
  const app = upstream as AppSocket;
  app[kPending] = { stream, record };
  app.on('connect', onAppConnect);
  app.on('error', onAppError);
}

/** The pod's 15008 server, with the pod identity's certificate (rotated certificates serve new handshakes). */
export function hboneInboundTunnel(inputs: ProxyInputs): InboundTunnel {
  return {
    async serve(pod, listenFd) {
      const identity = inputs.identity;
      if (!identity) throw new WeftError('WEFT_ERR_CONFIG', 'HBONE needs an identity manager (a CA)');
      await identity.get(pod.workload.identity);
      const server = createHboneServer({
        credentials: () => identity.current(pod.workload.identity),
        onStream: (stream, info) => handleInboundHbone(inputs, pod, stream, info),
        logger: inputs.logger,
        trustDomain: inputs.trustDomain,
      });
      await server.listen({ fd: listenFd });
      return { close: () => server.close() };
    },
  };
}

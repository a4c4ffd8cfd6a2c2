/**
 * Inbound HBONE (15008): the pod's mutual-TLS HTTP/2 server. Per CONNECT stream: build the
 * context (peer identity, original destination, the original client a waypoint vouches for)
 * -> policy -> connect to the app with the peer's IP -> 200 -> relay. Refusals answer with a
 * status: 400 (authority is not this pod), 403 (policy), 503 (app unreachable).
 *
 * A waypoint's CONNECT carries `forwarded: for="<client>"`. It is believed only when the peer
 * proved a waypoint's identity from that waypoint's pod address (as ztunnel's check_from_waypoint);
 * then it is the source address of the access log, the metrics and policy (`ipBlocks`), while the
 * principal stays the waypoint's (as in Istio). From anyone else it is ignored: a client could
 * otherwise pick the source address policy sees.
 */
import { isIP } from 'node:net';
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
import { GATEWAY_NAME_LABEL, type MeshModel } from '../discovery/types.js';

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

/**
 * The original client in a `forwarded` header, when `peerIdentity` at `peerIp` is a pod of a
 * waypoint the model knows, running as that waypoint's identity; undefined otherwise (the
 * header is then ignored). The last element counts: it is the one the waypoint itself added.
 */
export function trustedForwardedClient(model: MeshModel, peerIdentity: string, peerIp: string, forwarded: string | undefined): { ip: string; port: number } | undefined {
  if (forwarded === undefined) return undefined;
  const peer = model.workloadByIp(peerIp);
  const gateway = peer?.labels[GATEWAY_NAME_LABEL];
  if (peer === undefined || gateway === undefined || peer.identity !== peerIdentity) return undefined;
  if (model.waypoints.get(`${peer.namespace}/${gateway}`)?.identity !== peerIdentity) return undefined;
  return parseForwardedFor(forwarded);
}

/** `for=` of the last element of an RFC 7239 `Forwarded` value: `1.2.3.4`, `"1.2.3.4:5"`, `"[::1]:5"`. */
export function parseForwardedFor(value: string): { ip: string; port: number } | undefined {
  const elements = value.split(',');
  for (const pair of elements[elements.length - 1]!.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
    let node = pair.slice(eq + 1).trim();
    if (node.startsWith('"') && node.endsWith('"') && node.length >= 2) node = node.slice(1, -1);
    let host = node;
    let port = 0;
    const v6 = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(node);
    if (v6) {
      host = v6[1]!;
      port = v6[2] !== undefined ? Number(v6[2]) : 0;
    } else {
      const colon = node.lastIndexOf(':');
      if (colon >= 0 && node.indexOf(':') === colon) {
        host = node.slice(0, colon);
        port = Number(node.slice(colon + 1));
      }
    }
    if (isIP(host) === 0 || !Number.isInteger(port) || port < 0 || port > 65535) return undefined;
    return { ip: plainIp(host), port };
  }
  return undefined;
}

export function handleInboundHbone(inputs: ProxyInputs, pod: CapturedPod, stream: ServerHttp2Stream, info: HboneStreamInfo): void {
  stream.on('error', ignore); // relay() takes over error handling once it runs
  const peerIp = plainIp(info.remoteAddress);
  const model = inputs.model();
  // Only a waypoint's word is taken for who the client is; anyone else is the client.
  const forwardedFor = trustedForwardedClient(model, info.peerIdentity, peerIp, info.forwarded);
  const clientIp = forwardedFor?.ip ?? peerIp;
  const target = { address: info.host, port: info.port };
  const record = inputs.connections.open({
    direction: 'inbound',
    sourceIp: clientIp,
    sourcePort: forwardedFor !== undefined ? forwardedFor.port : (info.remotePort ?? 0),
    ...(forwardedFor !== undefined ? { peer: `${peerIp}:${info.remotePort ?? 0}` } : {}),
    sourceWorkload: model.workloadByIp(clientIp),
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
  // The app sees the TCP peer (the waypoint, or the source pod): the address its replies can reach.
  const upstream = connectToApp(inputs, pod, peerIp, target, stream, record, false);
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

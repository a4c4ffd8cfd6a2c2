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

function plainIp(address: string | undefined): string {
  if (!address) return '0.0.0.0';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function refuse(stream: ServerHttp2Stream, status: number): void {
  if (stream.destroyed) return;
  if (stream.headersSent) abort(stream);
  else stream.respond({ ':status': status }, { endStream: true });
}

export function handleInboundHbone(inputs: ProxyInputs, pod: CapturedPod, stream: ServerHttp2Stream, info: HboneStreamInfo): void {
  stream.on('error', () => undefined); // relay() takes over error handling once it runs
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
  if (!authorize(inputs, pod, record, clientIp, info.peerIdentity, target)) {
    refuse(stream, 403);
    return;
  }
  const upstream = connectToApp(inputs, pod, clientIp, target, stream, record, false);
  if (!upstream) return;
  upstream.once('connect', () => {
    if (stream.destroyed) {
      upstream.destroy();
      return;
    }
    stream.respond({ ':status': 200 });
    record.startRelay(stream, upstream);
  });
  upstream.once('error', (err: Error) => {
    if (upstream.connecting || !stream.headersSent) {
      record.finish({ error: err });
      refuse(stream, 503);
    }
  });
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
      });
      await server.listen({ fd: listenFd });
      return { close: () => server.close() };
    },
  };
}

/**
 * pods/portforward and pods/proxy, as the kubelet serves them behind a real API server, but
 * dialled by this process inside the pod's network namespace (the lab says which namespace a
 * pod has, through a resolver; for hostNetwork pods it is the node's).
 *
 * Port-forward speaks the WebSocket channel protocol of client-node's PortForward
 * (`v4.channel.k8s.io`, also `channel.k8s.io`): binary messages whose first byte is the channel,
 * channel 2i carries the data of the i-th port and 2i+1 its errors, and each channel starts with
 * the port number (2 bytes, little endian). The connection goes to 127.0.0.1:PORT in the pod's
 * namespace, as the kubelet's does. kubectl 1.32 port-forward (SPDY, or SPDY tunnelled over
 * WebSocket) is not spoken. Proxy dials status.podIP (else 127.0.0.1) inside the namespace.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { closeNetns, createTcpSocket, openNetns } from '../../../native/index.js';
import { StatusError } from './status.js';
import { isJsonObject, type KubeObject } from './types.js';

/** The network namespace path of a pod (undefined when it is not running). */
export type PodNetworkResolver = (pod: KubeObject) => string | undefined;

const CHANNEL_PROTOCOLS = ['v4.channel.k8s.io', 'channel.k8s.io'];

/** A TCP connection to `host:port` made inside the namespace at `netnsPath`. */
export function dialInNetns(netnsPath: string, host: string, port: number): net.Socket {
  const netnsFd = openNetns(netnsPath);
  try {
    const socket = new net.Socket({ fd: createTcpSocket({ netnsFd }), readable: true, writable: true });
    return socket.connect(port, host);
  } finally {
    closeNetns(netnsFd);
  }
}

function netnsOf(resolver: PodNetworkResolver | undefined, pod: KubeObject): string {
  const path = resolver?.(pod);
  if (path === undefined) {
    throw new StatusError(503, 'ServiceUnavailable', `no network namespace is known for pod ${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''} (is it running in the lab?)`);
  }
  return path;
}

export function parsePorts(query: URLSearchParams): number[] {
  const ports = query.getAll('ports').flatMap((p) => p.split(',')).map((p) => Number(p.trim()));
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new StatusError(400, 'BadRequest', 'query parameter "ports" is required: one or more port numbers 1-65535');
  }
  return ports;
}

const wss = new WebSocketServer({
  noServer: true,
  handleProtocols: (offered: Set<string>) => CHANNEL_PROTOCOLS.find((p) => offered.has(p)) ?? false,
});

function frame(channel: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([channel]), data]);
}

/** Serves one port-forward WebSocket (after authentication, authorization and the pod lookup). */
export function portForward(resolver: PodNetworkResolver | undefined, pod: KubeObject, query: URLSearchParams, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  const netnsPath = netnsOf(resolver, pod);
  const ports = parsePorts(query);
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  if (!CHANNEL_PROTOCOLS.some((p) => offered.includes(p))) {
    throw new StatusError(400, 'BadRequest', `port-forward needs the WebSocket subprotocol ${CHANNEL_PROTOCOLS.join(' or ')} (this test double does not speak SPDY)`);
  }
  wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
    const conns = ports.map((port, i) => {
      const c = dialInNetns(netnsPath, '127.0.0.1', port);
      c.on('data', (d: Buffer) => ws.send(frame(2 * i, d)));
      c.on('error', (err) => {
        if (ws.readyState === ws.OPEN) ws.send(frame(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${pod.metadata.name ?? ''}: ${err.message}`)));
        ws.close();
      });
      c.on('end', () => ws.close());
      return c;
    });
    ports.forEach((port, i) => {
      const p = Buffer.from([port & 0xff, port >> 8]);
      ws.send(frame(2 * i, p));
      ws.send(frame(2 * i + 1, p));
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const buf = isBinary ? data : Buffer.from(data);
      const channel = buf[0];
      if (channel === undefined || channel % 2 === 1) return;
      conns[channel / 2]?.write(buf.subarray(1));
    });
    ws.on('close', () => {
      for (const c of conns) c.destroy();
    });
    ws.on('error', () => ws.terminate());
  });
}

/** Proxies one HTTP request to `port` of the pod (path after `/proxy`). */
export function proxyToPod(resolver: PodNetworkResolver | undefined, pod: KubeObject, port: number, path: string, search: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const netnsPath = netnsOf(resolver, pod);
  const status = pod['status'];
  const podIp = isJsonObject(status) && typeof status['podIP'] === 'string' && status['podIP'] !== '' ? status['podIP'] : '127.0.0.1';
  const headers = { ...req.headers };
  delete headers.authorization;
  delete headers.host;
  const upstream = http.request(
    { method: req.method ?? 'GET', path: `/${path}${search}`, headers: { ...headers, host: `${podIp}:${port}` }, createConnection: () => dialInNetns(netnsPath, podIp, port) },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  upstream.on('error', (err) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const e = new StatusError(503, 'ServiceUnavailable', `error trying to reach service: ${err.message}`);
    const body = JSON.stringify(e.toStatus());
    res.writeHead(503, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  req.pipe(upstream);
}

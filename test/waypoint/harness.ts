/**
 * An in-process waypoint on loopback: a test CA, a fixed discovery model (pods on 198.18.120.x,
 * service VIPs on 198.18.121.x; no netns: the socket factory maps a pod's 15008 to the loopback
 * port of a stand-in destination agent), backend pods that are an HBONE server each relaying to
 * their app servers (HTTP/1.1, h2c, raw echo), and a client side that tunnels like a source
 * agent: a loopback listener whose every connection becomes a CONNECT to the waypoint, so curl,
 * fetch and any other client can be pointed at it.
 */
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { buildModel } from '../../agent/discovery/model.js';
import type { DiscoverySource, ManifestObject, MeshModel, Refusal } from '../../agent/discovery/types.js';
import { InProcessCaClient } from '../../agent/identity/ca-client.js';
import type { CertificateAuthority } from '../../agent/identity/ca.js';
import { createHboneServer, type HboneServer, type HboneStreamInfo } from '../../agent/tunnel/server.js';
import { HbonePool } from '../../agent/tunnel/pool.js';
import { relay } from '../../agent/proxy/relay.js';
import { Waypoint, type WaypointOptions } from '../../agent/waypoint/waypoint.js';
import { captureLogger, type LogLine } from '../helpers/logs.js';
import { id, issue, testCa } from '../tunnel/fixtures.js';

export const NS = 'shop';
export const WAYPOINT_NAME = 'wp';
export const WAYPOINT_KEY = `${NS}/${WAYPOINT_NAME}`;
export const WAYPOINT_ID = id(NS, WAYPOINT_NAME);
export const CLIENT_ID = id(NS, 'client');
/** The client pod's address: the source agent's HBONE connection comes from loopback here. */
export const CLIENT_IP = '127.0.0.1';

/** App ports of every backend pod (the Services' targetPorts). */
export const HTTP_PORT = 8080;
export const H2_PORT = 9090;
export const TCP_PORT = 7000;

export interface PodSpec {
  name: string;
  ip: string;
  labels: Record<string, string>;
  serviceAccount?: string;
  /** Outside the mesh: reached over plain TCP. */
  unmeshed?: boolean;
}

export interface ServiceSpec {
  name: string;
  vip: string;
  selector: Record<string, string>;
  /** Bound to this waypoint (default true). */
  waypoint?: string | null;
}

/** What a stand-in destination agent saw per CONNECT. */
export interface SeenConnect {
  pod: string;
  authority: string;
  peer: string;
  forwarded: string | undefined;
}

/** A DiscoverySource over a model the test sets. */
export class FixedSource extends EventEmitter implements DiscoverySource {
  #model: MeshModel;
  constructor(model: MeshModel) {
    super();
    this.#model = model;
  }
  async start(): Promise<MeshModel> {
    return this.#model;
  }
  async stop(): Promise<void> {}
  current(): MeshModel {
    return this.#model;
  }
  set(model: MeshModel): void {
    this.#model = model;
    this.emit('update', model);
  }
  refusals(): Refusal[] {
    return [];
  }
}

export function modelOf(pods: PodSpec[], services: ServiceSpec[], generation = 1, extra: ManifestObject[] = []): MeshModel {
  const objects: ManifestObject[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { 'weft.dev/mesh': 'enabled' } } },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'client', namespace: NS, labels: { app: 'client' } },
      spec: { nodeName: 'node-a', serviceAccountName: 'client', containers: [{ name: 'c' }] },
      status: { podIP: CLIENT_IP, phase: 'Running' },
    },
  ];
  for (const p of pods) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: NS, labels: { ...p.labels, ...(p.unmeshed ? { 'weft.dev/mesh': 'disabled' } : {}) } },
      spec: { nodeName: 'node-a', serviceAccountName: p.serviceAccount ?? p.name, containers: [{ name: 'app', ports: [{ containerPort: HTTP_PORT }, { containerPort: H2_PORT }, { containerPort: TCP_PORT }] }] },
      status: { podIP: p.ip, phase: 'Running' },
    });
  }
  for (const s of services) {
    const waypoint = s.waypoint === undefined ? WAYPOINT_NAME : s.waypoint;
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace: NS, labels: waypoint === null ? {} : { 'weft.dev/use-waypoint': waypoint } },
      spec: { clusterIP: s.vip, selector: s.selector, ports: [{ name: 'http', port: 80, targetPort: HTTP_PORT }, { name: 'grpc', port: 9090, targetPort: H2_PORT }, { name: 'tcp', port: 7000, targetPort: TCP_PORT }] },
    });
  }
  return buildModel([...objects, ...extra], { generation });
}

/** One backend pod: a stand-in destination agent on loopback and the pod's apps. */
export interface BackendPod {
  spec: PodSpec;
  hbone: HboneServer | undefined;
  http: http.Server;
  h2: http2.Http2Server;
  tcp: net.Server;
  ports: { http: number; h2: number; tcp: number; hbone: number };
  /** Requests the apps answered (HTTP/1 and h2). */
  requests: { method: string; url: string; headers: http.IncomingHttpHeaders; protocol: string }[];
  connects: SeenConnect[];
}

export interface Harness {
  ca: CertificateAuthority;
  waypoint: Waypoint;
  source: FixedSource;
  pods: Map<string, BackendPod>;
  logs: LogLine[];
  /** Every CONNECT any backend saw. */
  connects: SeenConnect[];
  /** A loopback port whose connections are tunnelled to `vip:port` through the waypoint (as a source agent does). */
  tunnelPort(vip: string, port: number): Promise<number>;
  /** One CONNECT stream to the waypoint for `authority` (rejects when the waypoint refuses). */
  connect(authority: string): Promise<Duplex>;
  /** Stops a pod's destination agent (its 15008 refuses from then on). */
  stopPodAgent(name: string): Promise<void>;
  close(): Promise<void>;
}

export type AppHandler = (pod: BackendPod, req: http.IncomingMessage, res: http.ServerResponse) => boolean;
export type H2Handler = (pod: BackendPod, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;

export interface HarnessOptions {
  pods: PodSpec[];
  services: ServiceSpec[];
  /** Overrides the default app answer for some requests (return true when handled). */
  app?: AppHandler;
  h2app?: H2Handler;
  waypoint?: Partial<WaypointOptions>;
  /** More objects in the model (policies, routes, a Gateway). */
  extra?: ManifestObject[];
  /** Pods whose 15008 is not served (connect refused). */
  deadAgents?: string[];
}

async function listen(server: net.Server | http.Server | http2.Http2Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** The default app: answers with who it is and what it got (JSON), after reading the whole body. */
function defaultHttp(pod: BackendPod, req: http.IncomingMessage, res: http.ServerResponse): void {
  let body = 0;
  req.on('data', (c: Buffer) => (body += c.length));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('x-pod', pod.spec.name);
    res.end(JSON.stringify({ pod: pod.spec.name, method: req.method, url: req.url, headers: req.headers, bodyBytes: body }));
  });
}

async function startPod(ca: CertificateAuthority, spec: PodSpec, opts: HarnessOptions, connects: SeenConnect[]): Promise<BackendPod> {
  const pod = { spec, requests: [], connects: [] } as unknown as BackendPod;
  pod.http = http.createServer((req, res) => {
    pod.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, protocol: 'HTTP/1.1' });
    if (opts.app?.(pod, req, res) === true) return;
    defaultHttp(pod, req, res);
  });
  pod.h2 = http2.createServer();
  pod.h2.on('stream', (stream, headers) => {
    pod.requests.push({ method: String(headers[':method']), url: String(headers[':path']), headers: headers as http.IncomingHttpHeaders, protocol: 'HTTP/2' });
    stream.on('error', () => undefined);
    if (opts.h2app?.(pod, stream, headers) === true) return;
    let body = 0;
    stream.on('data', (c: Buffer) => (body += c.length));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-pod': spec.name });
      stream.end(JSON.stringify({ pod: spec.name, method: headers[':method'], url: headers[':path'], headers, bodyBytes: body }));
    });
  });
  pod.tcp = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => s.destroy());
    s.write(`${spec.name}:`);
    s.pipe(s);
  });
  const [httpPort, h2Port, tcpPort] = [await listen(pod.http), await listen(pod.h2), await listen(pod.tcp)];
  pod.ports = { http: httpPort, h2: h2Port, tcp: tcpPort, hbone: 0 };
  if (!spec.unmeshed && !(opts.deadAgents ?? []).includes(spec.name)) {
    const cert = await issue(ca, id(NS, spec.serviceAccount ?? spec.name));
    const appPort = (port: number): number | undefined => (port === HTTP_PORT ? httpPort : port === H2_PORT ? h2Port : port === TCP_PORT ? tcpPort : undefined);
    pod.hbone = createHboneServer({
      credentials: () => cert,
      onStream: (stream, info: HboneStreamInfo) => {
        const seen = { pod: spec.name, authority: info.authority, peer: info.peerIdentity, forwarded: info.forwarded };
        pod.connects.push(seen);
        connects.push(seen);
        const port = appPort(info.port);
        if (info.host !== spec.ip || port === undefined) {
          stream.respond({ ':status': 400 }, { endStream: true });
          return;
        }
        const up = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        up.once('connect', () => {
          stream.respond({ ':status': 200 });
          relay(stream, up, () => undefined);
        });
        up.once('error', () => {
          if (!stream.headersSent) stream.respond({ ':status': 503 }, { endStream: true });
        });
      },
    });
    pod.ports.hbone = (await pod.hbone.listen(0, '127.0.0.1')).port;
  }
  return pod;
}

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const ca = testCa();
  const connects: SeenConnect[] = [];
  const pods = new Map<string, BackendPod>();
  const closers: (() => Promise<void> | void)[] = [];
  try {
    for (const spec of opts.pods) pods.set(spec.name, await startPod(ca, spec, opts, connects));
    const byIp = new Map([...pods.values()].map((p) => [p.spec.ip, p]));
    const { logger, lines } = captureLogger('info');
    const source = new FixedSource(modelOf(opts.pods, opts.services, 1, opts.extra));
    const createSocket = (host: string, port: number): net.Socket => {
      const pod = byIp.get(host);
      // A pod's 15008 -> its stand-in agent; a pod's app port (plain TCP, unmeshed) -> the app.
      let to = 1; // port 1 on loopback: refused, as a pod without a listener would be
      if (pod !== undefined && port === 15008) to = pod.ports.hbone || 1;
      else if (pod !== undefined && port === HTTP_PORT) to = pod.ports.http;
      else if (pod !== undefined && port === H2_PORT) to = pod.ports.h2;
      else if (pod !== undefined && port === TCP_PORT) to = pod.ports.tcp;
      return net.connect({ host: '127.0.0.1', port: to });
    };
    const waypoint = new Waypoint({
      name: WAYPOINT_NAME,
      namespace: NS,
      source,
      caClient: new InProcessCaClient(ca, 'node-a'),
      logger,
      hboneAddress: '127.0.0.1:0',
      createSocket,
      ...opts.waypoint,
    });
    await waypoint.start();
    closers.push(() => waypoint.stop());
    const clientCert = await issue(ca, CLIENT_ID);
    const pool = new HbonePool({ credentials: async () => clientCert });
    closers.push(() => pool.destroy());
    const wpPort = waypoint.address()!.port;
    const connect = (authority: string): Promise<Duplex> => pool.connect({ sourceIdentity: CLIENT_ID, destination: { host: '127.0.0.1', port: wpPort }, expectedIdentity: WAYPOINT_ID, authority });
    const tunnels: net.Server[] = [];
    return {
      ca,
      waypoint,
      source,
      pods,
      logs: lines,
      connects,
      connect,
      async tunnelPort(vip: string, port: number): Promise<number> {
        const server = net.createServer({ allowHalfOpen: true }, (sock) => {
          sock.on('error', () => sock.destroy());
          connect(`${vip}:${port}`).then(
            (stream) => relay(sock, stream, () => undefined),
            () => sock.destroy(),
          );
        });
        tunnels.push(server);
        return listen(server);
      },
      async stopPodAgent(name: string): Promise<void> {
        await pods.get(name)?.hbone?.close({ timeoutMs: 100 });
      },
      async close(): Promise<void> {
        for (const t of tunnels) t.close();
        for (const c of closers.reverse()) await c();
        for (const p of pods.values()) {
          await p.hbone?.close({ timeoutMs: 100 });
          for (const s of [p.http, p.tcp]) {
            (s as http.Server).closeAllConnections?.();
            s.close();
          }
          p.h2.close();
        }
      },
    };
  } catch (err) {
    for (const c of closers.reverse()) await c();
    for (const p of pods.values()) {
      await p.hbone?.close({ timeoutMs: 100 });
      p.http.close();
      p.h2.close();
      p.tcp.close();
    }
    throw err;
  }
}

/**
 * Capture of one pod: the rules in its namespace and the agent's listeners inside it (15001
 * outbound, 15006 inbound plaintext, 15008 HBONE), all made from the agent process with setns.
 * `stop()` removes both; nothing of Weft is left in the pod afterwards.
 */
import net from 'node:net';
import { once } from 'node:events';
import { createTcpSocket, openNetns, closeNetns, closeFd } from '../../native/index.js';
import { installCaptureRules, removeCaptureRules, OUTBOUND_PORT, INBOUND_PLAINTEXT_PORT, HBONE_PORT } from './rules.js';
import { handleOutbound } from '../proxy/outbound.js';
import { handleInboundPlaintext } from '../proxy/inbound.js';
import type { CapturedPod, ProxyInputs } from '../proxy/inputs.js';
import type { Workload } from '../discovery/types.js';
import type { NetnsCandidate } from './netns-locator.js';
import { HbonePool } from '../tunnel/pool.js';
import { MESH_MARK } from './rules.js';

/** Serves HBONE (15008) on a listening fd inside the pod; provided by the tunnel module. */
export interface InboundTunnel {
  serve(pod: CapturedPod, listenFd: number): Promise<{ close(): Promise<void> }>;
}

/** W3C baggage with the workload's attributes, as ztunnel sends them (for the waypoint's telemetry). */
function baggageOf(w: Workload): string {
  return `k8s.namespace.name=${w.namespace},k8s.pod.name=${w.name},service.name=${w.workloadName},service.version=${w.version}`;
}

export class PodCapture implements CapturedPod {
  readonly workload: Workload;
  readonly netnsFd: number;
  readonly netnsPath: string;
  /** Identity of the namespace captured (dev:inode), to notice a pod recreated with the same IP. */
  readonly netnsInode: string;
  readonly pool: HbonePool | undefined;
  readonly baggage: string;
  readonly #servers: { close(): Promise<void> }[] = [];
  #stopped = false;

  private constructor(inputs: ProxyInputs, workload: Workload, netnsFd: number, netnsInode: string) {
    this.workload = workload;
    this.netnsFd = netnsFd;
    this.netnsInode = netnsInode;
    // nsenter opens this path in its own process: name our fd through our pid.
    this.netnsPath = `/proc/${process.pid}/fd/${netnsFd}`;
    this.baggage = baggageOf(workload);
    const identity = inputs.identity;
    this.pool = identity
      ? new HbonePool({
          credentials: (id) => identity.get(id),
          createSocket: (host, port) => {
            const socket = new net.Socket({ fd: createTcpSocket({ netnsFd: this.netnsFd, mark: MESH_MARK }), readable: true, writable: true });
            return socket.connect(port, host);
          },
          logger: inputs.logger,
        })
      : undefined;
  }

  static async start(inputs: ProxyInputs, candidate: NetnsCandidate, workload: Workload, tunnel: InboundTunnel): Promise<PodCapture> {
    const capture = new PodCapture(inputs, workload, openNetns(candidate.path), candidate.inode);
    try {
      // Listeners before rules: a redirect must never point at a port nobody listens on yet.
      await capture.#listen(OUTBOUND_PORT, (socket) => handleOutbound(inputs, capture, socket));
      await capture.#listen(INBOUND_PLAINTEXT_PORT, (socket) => handleInboundPlaintext(inputs, capture, socket));
      const hboneFd = createTcpSocket({ netnsFd: capture.netnsFd, reuseAddress: true, bind: { address: '0.0.0.0', port: HBONE_PORT } });
      try {
        capture.#servers.push(await tunnel.serve(capture, hboneFd));
      } catch (err) {
        closeFd(hboneFd);
        throw err;
      }
      await installCaptureRules(capture.netnsPath);
      return capture;
    } catch (err) {
      await capture.stop().catch(() => undefined);
      throw err;
    }
  }

  async #listen(port: number, onConnection: (socket: net.Socket) => void): Promise<void> {
    const fd = createTcpSocket({ netnsFd: this.netnsFd, reuseAddress: true, bind: { address: '0.0.0.0', port } });
    // noDelay: the agent writes what it read at once; Nagle would hold a small response back
    // until the previous segment is acknowledged (a delayed ACK is up to 40 ms).
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
    server.on('error', () => undefined); // listen errors surface through `once` below
    server.listen({ fd });
    try {
      await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    this.#servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  }

  /** Removes the rules, stops accepting and releases the namespace. Connections already open finish on their own. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      // Rules before listeners: new connections go direct from here on, none hits a closed port.
      await removeCaptureRules(this.netnsPath);
    } finally {
      // close() resolves when open connections end; do not wait for that here.
      for (const server of this.#servers.splice(0)) void server.close();
      // GOAWAY: open tunnels finish, nothing new starts from this pod.
      this.pool?.close();
      closeNetns(this.netnsFd);
    }
  }
}

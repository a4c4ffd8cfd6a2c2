/**
 * Capture of one pod: the rules in its namespace and the agent's listeners inside it (15001
 * outbound, 15006 inbound plaintext, 15008 HBONE), all made from the agent process with setns.
 *
 * The rules outlive the agent (docs/architecture.md "Fail closed"): `release()` (agent stop,
 * crash, handover to a new agent) closes the listeners and leaves the rules, so the redirect then
 * points at ports nobody listens on and the pod's connections are refused, never sent in
 * plaintext. Only `remove()` (the pod left the mesh, or an explicit uninstall) deletes them.
 * Listeners carry SO_REUSEPORT so a new agent listens beside the old one during a handover.
 */
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { createTcpSocket, openNetns, closeNetns, closeFd, inNetns } from '../../native/index.js';
import { listenOnFd } from '../util/listen.js';
import { installCaptureRules, removeCaptureRules, type CaptureRuleOptions } from './rules.js';
import { handleOutbound } from '../proxy/outbound.js';
import { handleInboundPlaintext } from '../proxy/inbound.js';
import type { CapturedPod, ProxyInputs } from '../proxy/inputs.js';
import type { Workload } from '../discovery/types.js';
import type { NetnsCandidate } from './netns-locator.js';
import { HbonePool } from '../tunnel/pool.js';
import { CERT_PENDING_LOG_INTERVAL_MS, HBONE_PORT, INBOUND_PLAINTEXT_PORT, MESH_MARK, OUTBOUND_PORT } from '../config.js';
import { isWeftError } from '../errors.js';
import { CERT_WAIT_MS } from '../config.js';

/** Serves HBONE (15008) on a listening fd inside the pod; provided by the tunnel module. */
export interface InboundTunnel {
  serve(pod: CapturedPod, listenFd: number): Promise<{ close(opts?: { timeoutMs?: number }): Promise<void> }>;
}

const LISTEN_BACKLOG = 511;

/** W3C baggage with the workload's attributes, as ztunnel sends them (for the waypoint's telemetry). */
function baggageOf(w: Workload): string {
  return `k8s.namespace.name=${w.namespace},k8s.pod.name=${w.name},service.name=${w.workloadName},service.version=${w.version}`;
}

interface Listener {
  close(opts?: { timeoutMs?: number }): Promise<void>;
}

export class PodCapture implements CapturedPod {
  readonly workload: Workload;
  readonly netnsFd: number;
  readonly netnsPath: string;
  /** Identity of the namespace captured (dev:inode), to notice a pod recreated with the same IP. */
  readonly netnsInode: string;
  readonly pool: HbonePool | undefined;
  readonly baggage: string;
  readonly #inputs: ProxyInputs;
  readonly #listeners: Listener[] = [];
  #hboneFd = -1;
  #released = false;
  /** Settles when 15008 listens (or the pod was released first). */
  hboneListening: Promise<void> = Promise.resolve();

  private constructor(inputs: ProxyInputs, workload: Workload, netnsFd: number, netnsInode: string) {
    this.#inputs = inputs;
    this.workload = workload;
    this.netnsFd = netnsFd;
    this.netnsInode = netnsInode;
    // nsenter opens this path in its own process: name our fd through our pid.
    this.netnsPath = `/proc/${process.pid}/fd/${netnsFd}`;
    this.baggage = baggageOf(workload);
    const identity = inputs.identity;
    this.pool = identity
      ? new HbonePool({
          // Until the pod has its certificate its meshed connections wait (bounded), then are refused.
          credentials: (id) => identity.whenAvailable(id, CERT_WAIT_MS),
          createSocket: (host, port) => {
            const socket = new net.Socket({ fd: createTcpSocket({ netnsFd: this.netnsFd, mark: MESH_MARK }), readable: true, writable: true });
            return socket.connect(port, host);
          },
          logger: inputs.logger,
        })
      : undefined;
  }

  /**
   * Listeners, then rules (idempotent: a restarted agent adopts the rules it finds). Does not
   * wait for a certificate: 15008 stays bound but not listening (connections to it are refused)
   * until the pod's certificate arrives, and outbound meshed connections wait for it.
   */
  static async start(inputs: ProxyInputs, candidate: NetnsCandidate, workload: Workload, tunnel: InboundTunnel, rules: CaptureRuleOptions = {}): Promise<PodCapture> {
    const capture = new PodCapture(inputs, workload, openNetns(candidate.path), candidate.inode);
    try {
      capture.#migrateRequestsOnClose();
      // Listeners before rules: a redirect must never point at a port nobody listens on yet.
      await capture.#listen(OUTBOUND_PORT, (socket) => handleOutbound(inputs, capture, socket));
      await capture.#listen(INBOUND_PLAINTEXT_PORT, (socket) => handleInboundPlaintext(inputs, capture, socket));
      capture.#hboneFd = createTcpSocket({ netnsFd: capture.netnsFd, reuseAddress: true, reusePort: true, bind: { address: '0.0.0.0', port: HBONE_PORT } });
      capture.hboneListening = capture.#serveHbone(tunnel);
      if (!inputs.identity) await capture.hboneListening;
      await installCaptureRules(capture.netnsPath, rules);
      return capture;
    } catch (err) {
      // Fail closed: rules an earlier agent installed stay; the pod is refused until a retry works.
      void capture.release();
      throw err;
    }
  }

  /**
   * net.ipv4.tcp_migrate_req in the pod: when one agent closes its listener during a handover,
   * connections still in its accept queue move to the other agent's listener instead of being
   * reset. Best effort (kernels before 5.14 lack it; then a handover may reset what was queued).
   */
  #migrateRequestsOnClose(): void {
    try {
      inNetns(this.netnsFd, () => writeFileSync('/proc/sys/net/ipv4/tcp_migrate_req', '1'));
    } catch (err) {
      this.#inputs.logger.warn({ err, pod: this.workload.key }, 'cannot set net.ipv4.tcp_migrate_req in the pod; an agent handover may reset queued connections');
    }
  }

  async #serveHbone(tunnel: InboundTunnel): Promise<void> {
    const identity = this.#inputs.identity;
    while (identity && !this.#released) {
      try {
        await identity.whenAvailable(this.workload.identity, CERT_PENDING_LOG_INTERVAL_MS);
        break;
      } catch (err) {
        if (!isWeftError(err, 'WEFT_ERR_IDENTITY_UNAVAILABLE')) throw err;
        this.#inputs.logger.warn({ pod: this.workload.key, identity: this.workload.identity, err: { code: err.code, message: err.message } }, 'no certificate yet: 15008 refuses and outbound meshed connections are refused after a bounded wait');
      }
    }
    if (this.#released) return;
    const fd = this.#hboneFd;
    this.#hboneFd = -1;
    try {
      this.#listeners.push(await tunnel.serve(this, fd));
    } catch (err) {
      closeFd(fd);
      this.#inputs.logger.error({ err, pod: this.workload.key }, 'HBONE listener failed');
      throw err;
    }
    if (this.#released) void this.#listeners.pop()?.close();
  }

  async #listen(port: number, onConnection: (socket: net.Socket) => void): Promise<void> {
    const fd = createTcpSocket({ netnsFd: this.netnsFd, reuseAddress: true, reusePort: true, bind: { address: '0.0.0.0', port }, listenBacklog: LISTEN_BACKLOG });
    // noDelay: the agent writes what it read at once; Nagle would hold a small response back
    // until the previous segment is acknowledged (a delayed ACK is up to 40 ms).
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
    server.on('error', () => undefined); // listen errors surface through listenOnFd
    await listenOnFd(server, fd);
    this.#listeners.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  }

  /**
   * Stops accepting and sends GOAWAY (HBONE server sessions and this pod's pool); open
   * connections go on until they end or `drainMs` passes (HBONE sessions are destroyed then).
   * The rules stay. Resolves when every listener has closed with all its connections.
   */
  release(drainMs?: number): Promise<void> {
    if (this.#released) return Promise.resolve();
    this.#released = true;
    if (this.#hboneFd >= 0) closeFd(this.#hboneFd);
    this.#hboneFd = -1;
    const closed = this.#listeners.splice(0).map((l) => l.close(drainMs === undefined ? undefined : { timeoutMs: drainMs }));
    this.pool?.close();
    // Sockets already made keep the namespace alive; the handle is only for new ones.
    const fd = this.netnsFd;
    if (drainMs !== undefined && drainMs > 0) setTimeout(() => closeNetns(fd), drainMs).unref();
    else closeNetns(fd);
    return Promise.all(closed).then(() => undefined);
  }

  /** The pod left the mesh: rules removed first (new connections go direct), then released. */
  async remove(): Promise<void> {
    if (this.#released) return;
    try {
      await removeCaptureRules(this.netnsPath);
    } finally {
      // Open connections finish on their own; do not wait for them here.
      void this.release();
    }
  }
}

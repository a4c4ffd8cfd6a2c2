/**
 * The waypoint's upstreams: how a request reaches the pod it was given to. A meshed pod is
 * reached over HBONE to its 15008 (the waypoint's own certificate, the pod's identity expected,
 * `:authority` podIP:targetPort, `forwarded: for="<client>"` so the destination agent connects
 * to the app with the original client's address); a pod outside the mesh (or an address that
 * is no pod) over plain TCP, as an agent would.
 *
 * Pooling, per (endpoint, identity, client address), since the client address travels on the
 * CONNECT and is fixed for the stream's life: HTTP/1.1 keep-alive connections (an http.Agent
 * whose connections are CONNECT streams) and one HTTP/2 session (h2c, gRPC) multiplexing every
 * request. The CONNECT streams of all of them share the HBONE pool's TLS connections to the pod.
 */
import http from 'node:http';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../discovery/types.js';
import { WeftError, isWeftError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatAuthority } from '../tunnel/authority.js';
import type { HbonePool } from '../tunnel/pool.js';
import { HBONE_PORT, POOL_IDLE_TIMEOUT_MS, UPSTREAM_CONNECT_TIMEOUT_MS, WAYPOINT_UPSTREAM_MAX_FREE_SOCKETS } from '../config.js';
import { forwardedFor } from './headers.js';
import { StreamSocket } from './stream-socket.js';

export interface UpstreamsOptions {
  pool: HbonePool;
  /** The waypoint's SPIFFE ID (its certificate is the client certificate of every HBONE connection). */
  identity: string;
  /** The destination pods' HBONE port (15008). */
  hbonePort?: number;
  /** Plain TCP to a pod outside the mesh (default net.connect; tests map addresses). */
  createSocket?: (host: string, port: number) => Socket;
  logger: Logger;
  idleTimeoutMs?: number;
}

/** Whether an endpoint is reached over HBONE (a meshed pod) or plain TCP. */
export function overHbone(endpoint: Endpoint): boolean {
  return endpoint.workload !== undefined && endpoint.workload.inMesh;
}

const kUses = Symbol('weft.requestsOnConnection');
type CountedStream = Duplex & { [kUses]?: number; setTimeout(ms: number): void };

/**
 * HTTP/1.1 keep-alive connections to one endpoint, each a tunnelled stream. With
 * `maxRequestsPerConnection` (DestinationRule connectionPool) a connection is closed after that
 * many requests instead of going back to the pool.
 */
class TunnelAgent extends http.Agent {
  readonly #open: () => Promise<Duplex>;
  readonly #idleMs: number;
  readonly #maxRequests: number;

  constructor(open: () => Promise<Duplex>, idleMs: number, maxRequests: number | undefined) {
    super({ keepAlive: true, maxFreeSockets: WAYPOINT_UPSTREAM_MAX_FREE_SOCKETS, scheduling: 'lifo' });
    this.#open = open;
    this.#idleMs = idleMs;
    this.#maxRequests = maxRequests !== undefined && maxRequests > 0 ? maxRequests : Infinity;
  }

  override createConnection(_options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    this.#open().then(
      // Through StreamSocket, whose writes reach the stream as Buffers: node:http corks its header
      // (a latin1 string) with the body, and an HTTP/2 stream's writev of a string chunk hands
      // nghttp2 a copy that is freed before it is sent (the pod got heap pointers as its first 16 bytes).
      (s) => {
        // As a net.Socket without allowHalfOpen: the app's FIN (an idle keep-alive connection it
        // closed) ends ours too, so the stream closes and leaves the pool; a stream is half-open
        // otherwise, and the next request went into a connection nobody read.
        s.once('end', () => s.end());
        const socket = new StreamSocket(s, undefined);
        (socket as CountedStream)[kUses] = 1;
        callback?.(null, socket);
      },
      (err: unknown) => callback?.(err as Error, undefined as unknown as Duplex),
    );
    return undefined;
  }

  /** Kept for the next request (a stream has no setKeepAlive/unref); closed after idling, or after its last allowed request. */
  override keepSocketAlive(socket: Duplex): boolean {
    if (((socket as CountedStream)[kUses] ?? 0) >= this.#maxRequests) return false;
    (socket as CountedStream).setTimeout(this.#idleMs);
    return true;
  }

  override reuseSocket(socket: Duplex, request: http.ClientRequest): void {
    const s = socket as CountedStream & { ref?: () => unknown };
    s.setTimeout(0);
    s[kUses] = (s[kUses] ?? 0) + 1;
    // node:http's own reuseSocket removes the error listener it put on the free socket (without
    // it, one leaked per request on the connection) and refs the socket, which a stream cannot.
    if (typeof s.ref !== 'function') s.ref = () => s;
    super.reuseSocket(socket as Socket, request);
  }
}

export interface UpstreamsStats {
  http1Agents: number;
  http2Sessions: number;
  streamsOpened: number;
  connectFailures: number;
}

export class Upstreams {
  readonly #opts: UpstreamsOptions;
  readonly #hbonePort: number;
  readonly #idleMs: number;
  readonly #agents = new Map<string, { agent: TunnelAgent; endpoint: Endpoint }>();
  readonly #sessions = new Map<string, { session: Promise<ClientHttp2Session>; endpoint: Endpoint; requests: number }>();
  #streamsOpened = 0;
  #connectFailures = 0;

  constructor(opts: UpstreamsOptions) {
    this.#opts = opts;
    this.#hbonePort = opts.hbonePort ?? HBONE_PORT;
    this.#idleMs = opts.idleTimeoutMs ?? POOL_IDLE_TIMEOUT_MS;
  }

  /**
   * A byte stream to `endpoint` on behalf of `clientIp`: a CONNECT stream (meshed pod) or a TCP
   * socket. Rejects with WEFT_ERR_WAYPOINT_UPSTREAM (the cause says why).
   */
  async open(endpoint: Endpoint, clientIp: string): Promise<Duplex> {
    const target = formatAuthority(endpoint.ip, endpoint.port);
    try {
      const s = overHbone(endpoint) ? await this.#openHbone(endpoint, clientIp) : await this.#openTcp(endpoint);
      this.#streamsOpened++;
      return s;
    } catch (err) {
      this.#connectFailures++;
      const code = isWeftError(err) ? err.code : (err as { code?: string }).code;
      throw new WeftError('WEFT_ERR_WAYPOINT_UPSTREAM', `cannot reach ${target}${overHbone(endpoint) ? ` over HBONE (expected ${endpoint.workload!.identity})` : ''}: ${code ? `${code}: ` : ''}${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * The keep-alive pool of HTTP/1.1 connections to `endpoint` for requests of `clientIp`
   * (pools with a `maxRequestsPerConnection` are apart from those without).
   */
  http1(endpoint: Endpoint, clientIp: string, maxRequestsPerConnection?: number): http.Agent {
    const key = maxRequestsPerConnection === undefined ? poolKey(endpoint, clientIp) : `${poolKey(endpoint, clientIp)}\u0000${maxRequestsPerConnection}`;
    let entry = this.#agents.get(key);
    if (entry === undefined) {
      entry = { agent: new TunnelAgent(() => this.open(endpoint, clientIp), this.#idleMs, maxRequestsPerConnection), endpoint };
      this.#agents.set(key, entry);
    }
    return entry.agent;
  }

  /** The HTTP/2 session to `endpoint` for requests of `clientIp` (one, multiplexed; a new one after it closes). */
  http2(endpoint: Endpoint, clientIp: string, maxRequestsPerConnection?: number): Promise<ClientHttp2Session> {
    const key = maxRequestsPerConnection === undefined ? poolKey(endpoint, clientIp) : `${poolKey(endpoint, clientIp)}\u0000${maxRequestsPerConnection}`;
    const have = this.#sessions.get(key);
    if (have !== undefined) {
      if (maxRequestsPerConnection !== undefined && ++have.requests >= maxRequestsPerConnection) this.#retire(key, have.session);
      return have.session;
    }
    const session = this.open(endpoint, clientIp).then((stream) => {
      const s = h2connect(`http://${formatAuthority(endpoint.ip, endpoint.port)}`, { createConnection: () => stream });
      const forget = (): void => {
        if (this.#sessions.get(key)?.session === session) this.#sessions.delete(key);
      };
      s.on('close', forget);
      s.on('goaway', forget);
      s.on('error', (err) => {
        forget();
        this.#opts.logger.debug({ upstream: key, err }, 'upstream HTTP/2 session error');
      });
      // Closed after idling, as the HBONE pool closes its connections (pod IPs get reused).
      s.setTimeout(this.#idleMs, () => {
        forget();
        s.close();
      });
      return s;
    });
    session.catch(() => {
      if (this.#sessions.get(key)?.session === session) this.#sessions.delete(key);
    });
    this.#sessions.set(key, { session, endpoint, requests: 1 });
    if (maxRequestsPerConnection !== undefined && maxRequestsPerConnection <= 1) this.#retire(key, session);
    return session;
  }

  /** The session has carried its last allowed request: later requests get a new one; it closes once its streams are done. */
  #retire(key: string, session: Promise<ClientHttp2Session>): void {
    if (this.#sessions.get(key)?.session === session) this.#sessions.delete(key);
    session.then((s) => setImmediate(() => s.close()), () => undefined);
  }

  /** Drops the pools of endpoints that left the model (or whose pod changed identity). */
  closeGone(stillThere: (endpoint: Endpoint) => boolean): void {
    for (const [key, e] of this.#agents) {
      if (stillThere(e.endpoint)) continue;
      e.agent.destroy();
      this.#agents.delete(key);
    }
    for (const [key, e] of this.#sessions) {
      if (stillThere(e.endpoint)) continue;
      this.#sessions.delete(key);
      e.session.then((s) => s.destroy(), () => undefined);
    }
    this.#opts.pool.closeGone((host, identity) => {
      for (const e of this.#agents.values()) if (e.endpoint.ip === host && e.endpoint.workload?.identity === identity) return true;
      for (const e of this.#sessions.values()) if (e.endpoint.ip === host && e.endpoint.workload?.identity === identity) return true;
      return false;
    });
  }

  stats(): UpstreamsStats {
    return { http1Agents: this.#agents.size, http2Sessions: this.#sessions.size, streamsOpened: this.#streamsOpened, connectFailures: this.#connectFailures };
  }

  close(): void {
    for (const e of this.#agents.values()) e.agent.destroy();
    this.#agents.clear();
    for (const e of this.#sessions.values()) e.session.then((s) => s.destroy(), () => undefined);
    this.#sessions.clear();
    this.#opts.pool.destroy();
  }

  #openHbone(endpoint: Endpoint, clientIp: string): Promise<Duplex> {
    return this.#opts.pool.connect({
      sourceIdentity: this.#opts.identity,
      destination: { host: endpoint.ip, port: this.#hbonePort },
      expectedIdentity: endpoint.workload!.identity,
      authority: formatAuthority(endpoint.ip, endpoint.port),
      headers: { forwarded: forwardedFor(clientIp) },
    });
  }

  #openTcp(endpoint: Endpoint): Promise<Duplex> {
    const socket = this.#opts.createSocket?.(endpoint.ip, endpoint.port) ?? netConnect({ host: endpoint.ip, port: endpoint.port });
    socket.setNoDelay(true);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => socket.destroy(new WeftError('WEFT_ERR_CONNECT_TIMEOUT', `TCP connect took more than ${UPSTREAM_CONNECT_TIMEOUT_MS} ms`)), UPSTREAM_CONNECT_TIMEOUT_MS);
      timer.unref();
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }
}

function poolKey(endpoint: Endpoint, clientIp: string): string {
  return `${formatAuthority(endpoint.ip, endpoint.port)}\u0000${endpoint.workload?.identity ?? ''}\u0000${clientIp}`;
}

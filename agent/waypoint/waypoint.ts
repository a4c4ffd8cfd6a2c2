/**
 * `weft waypoint`: the L7 proxy of the services bound to one waypoint Gateway (issue 11).
 *
 * Phases: certificate of its own identity from the CA (as the agent gets its pods') and the first
 * discovery model -> HBONE server on 15008 (ready) -> per CONNECT stream: the `:authority` must
 * be the VIP:port of a service bound to this waypoint (else refused with a status and a logged
 * WEFT_ERR_WAYPOINT_NOT_BOUND) -> 200 -> sniff the first bytes -> HTTP/1 (http1.ts), HTTP/2
 * prior knowledge (http2.ts) or L4 (l4.ts). Per request: L7 authorization, the route table's
 * plan, an endpoint by least outstanding requests (P2C), upstream over HBONE to that pod.
 */
import http from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { DEFAULT_TRUST_DOMAIN, WAYPOINT_SNIFF_MAX_BYTES, WAYPOINT_SNIFF_TIMEOUT_MS } from '../config.js';
import type { DiscoverySource, MeshModel, Service, Workload } from '../discovery/types.js';
import { WeftError } from '../errors.js';
import type { CaClient } from '../identity/ca-types.js';
import { IdentityManager, type IdentityManagerOptions } from '../identity/manager.js';
import { buildModel, spiffeId } from '../discovery/model.js';
import { RouteStore, routeStatusRows, type RouteTable } from '../l7/index.js';
import { RequestMetrics } from '../telemetry/request-metrics.js';
import type { Logger } from '../log.js';
import { AgentMetrics, type TcpSeries } from '../telemetry/metrics.js';
import { startMetricsServer, startReadinessServer } from '../telemetry/server.js';
import { HbonePool, type SocketFactory } from '../tunnel/pool.js';
import { createHboneServer, type HboneServer, type HboneStreamInfo } from '../tunnel/server.js';
import { parseHostPort } from '../util/host-port.js';
import { PolicyAuthorizer, type RequestAuthorizer } from './authorize.js';
import { PolicyState } from '../proxy/authorization.js';
import type { RequestMetricsLike, TunnelContext, WaypointInputs } from './context.js';
import { createHttp1Server, serveHttp1 } from './http1.js';
import { startAdmin } from './admin.js';
import { Http2Front } from './http2.js';
import { serveL4 } from './l4.js';
import { RequestPicker } from './picker.js';
import type { RouteTableFactory } from './routes.js';
import { sniff } from './sniff.js';
import { StreamSocket } from './stream-socket.js';
import { Upstreams } from './upstream.js';
import { Resilience } from './resilience/index.js';

export interface WaypointOptions {
  /** The Gateway this waypoint serves. */
  name: string;
  namespace: string;
  /** Its pods' service account (default: the Gateway's name, as `weft waypoint generate` makes it). */
  serviceAccount?: string;
  trustDomain?: string;
  /** Istio's `source_cluster` / `destination_cluster` label (default `Kubernetes`, as Istio's). */
  clusterName?: string;
  source: DiscoverySource;
  caClient: CaClient;
  identityOptions?: Partial<Pick<IdentityManagerOptions, 'renewAt' | 'jitter' | 'retryInitialMs' | 'retryMaxMs' | 'trustBundle'>>;
  logger: Logger;
  /** host:port of the HBONE listener (default 0.0.0.0:15008). */
  hboneAddress: string;
  /** host:port for /metrics, /healthz/ready, the admin API; '' disables each. */
  metricsAddress?: string;
  readinessAddress?: string;
  adminAddress?: string;
  /** Makes the TCP sockets to destination pods (their 15008, or the pod for plain TCP); tests map addresses. */
  createSocket?: SocketFactory;
  /** The destination pods' HBONE port (default 15008). */
  upstreamHbonePort?: number;
  /** Instead of the model's HTTPRoutes and GRPCRoutes (agent/l7's RouteStore): a table made per model (tests). */
  routes?: RouteTableFactory;
  authorizer?: RequestAuthorizer;
  random?: () => number;
  /** Milliseconds, monotonic (default performance.now): outlier ejections and rate-limit buckets read it; tests move it. */
  clock?: () => number;
  sniffTimeoutMs?: number;
}

function plainIp(address: string | undefined): string {
  if (!address) return '0.0.0.0';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export class Waypoint {
  readonly key: string;
  readonly identity: string;
  readonly registry = new Registry();
  readonly metrics: AgentMetrics;
  readonly #opts: WaypointOptions;
  readonly #log: Logger;
  readonly #identity: IdentityManager;
  readonly #pool: HbonePool;
  readonly #upstreams: Upstreams;
  readonly #inputs: WaypointInputs;
  readonly #http1: http.Server;
  readonly #http2: Http2Front;
  readonly #servers: http.Server[] = [];
  #model: MeshModel | undefined;
  #table: RouteTable;
  #hbone: HboneServer | undefined;
  #ready = false;
  #stopping = false;
  #refused = 0;
  readonly #routes: RouteStore;
  readonly #policy: PolicyState;
  #saidRefused = '';

  constructor(opts: WaypointOptions) {
    this.#opts = opts;
    this.key = `${opts.namespace}/${opts.name}`;
    const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.identity = spiffeId(trustDomain, opts.namespace, opts.serviceAccount ?? opts.name);
    this.#log = opts.logger.child({ component: 'waypoint', waypoint: this.key });
    this.#routes = new RouteStore({ log: this.#log });
    this.#identity = new IdentityManager({ ...opts.identityOptions, caClient: opts.caClient, logger: opts.logger.child({ component: 'identity' }) });
    this.#identity.setWanted([this.identity]);
    this.metrics = new AgentMetrics(this.registry);
    this.#policy = new PolicyState(opts.logger.child({ component: 'policy' }), trustDomain);
    const requestMetrics: RequestMetricsLike = new RequestMetrics(this.registry);
    this.#pool = new HbonePool({ credentials: (id) => this.#identity.get(id), logger: this.#log, ...(opts.createSocket ? { createSocket: opts.createSocket } : {}) });
    this.#upstreams = new Upstreams({
      pool: this.#pool,
      identity: this.identity,
      logger: this.#log,
      ...(opts.upstreamHbonePort !== undefined ? { hbonePort: opts.upstreamHbonePort } : {}),
      ...(opts.createSocket ? { createSocket: (host: string, port: number) => opts.createSocket!(host, port) } : {}),
    });
    this.#table = this.#tableFor(buildModel([], { trustDomain }));
    const random = opts.random ?? Math.random;
    this.#inputs = {
      key: this.key,
      identity: this.identity,
      clusterName: opts.clusterName ?? 'Kubernetes',
      logger: this.#log,
      accessLog: opts.logger.child({ component: 'access' }),
      model: () => this.#model!,
      table: () => this.#table,
      authorizer: opts.authorizer ?? new PolicyAuthorizer(this.#policy, { name: opts.name, namespace: opts.namespace }, trustDomain),
      picker: new RequestPicker(random),
      upstreams: this.#upstreams,
      requestMetrics,
      resilience: new Resilience(opts.clock),
      random,
    };
    this.#http1 = createHttp1Server(this.#inputs);
    this.#http2 = new Http2Front(this.#inputs);
  }

  /** True, or why not (no certificate yet, no model yet, stopping). */
  readiness(): true | string {
    if (this.#stopping) return 'stopping';
    if (!this.#ready) return this.#identity.current(this.identity) === undefined ? 'waiting for a certificate' : 'starting';
    return true;
  }

  /** The HBONE listener's address (after start). */
  address(): AddressInfo | undefined {
    return this.#hbone?.address();
  }

  async start(): Promise<void> {
    const o = this.#opts;
    if (o.readinessAddress) this.#servers.push(await startReadinessServer(() => this.readiness(), o.readinessAddress));
    if (o.metricsAddress) this.#servers.push(await startMetricsServer(this.registry, o.metricsAddress));
    if (o.adminAddress) this.#servers.push(await startAdmin(o.adminAddress, this));
    // The HBONE port is taken at once and refuses (resets) until the certificate is there: a
    // runtime that waits for the pod's ports before it publishes the pod (the lab) would
    // otherwise never let the CA see the pod that asks for the certificate.
    const { host, port } = parseHostPort(o.hboneAddress);
    const placeholder = net.createServer((s) => s.resetAndDestroy());
    await new Promise<void>((resolve, reject) => {
      placeholder.once('error', reject);
      placeholder.listen(port, host, () => resolve());
    });
    const bound = (placeholder.address() as AddressInfo).port;
    try {
      o.source.on('update', (model: MeshModel) => this.#apply(model));
      const [model] = await Promise.all([o.source.start(), this.#certificate()]);
      this.#apply(model);
      if (model.trustDomain !== (o.trustDomain ?? DEFAULT_TRUST_DOMAIN)) throw new WeftError('WEFT_ERR_CONFIG', `the discovery source's trust domain ${model.trustDomain} is not the waypoint's ${o.trustDomain ?? DEFAULT_TRUST_DOMAIN}`);
      this.#hbone = createHboneServer({
        credentials: () => this.#identity.current(this.identity),
        onStream: (stream, info) => this.#onStream(stream, info),
        logger: this.#log,
        trustDomain: model.trustDomain,
      });
    } finally {
      await new Promise((resolve) => placeholder.close(resolve));
    }
    await this.#hbone.listen(bound, host);
    this.#ready = true;
    this.#log.info({ identity: this.identity, hbone: this.#hbone.address(), services: this.boundServices().map((s) => s.key) }, 'waypoint ready');
  }

  /** Waits for the first certificate as long as it takes (the manager retries with backoff; each failure is logged by it). */
  async #certificate(): Promise<void> {
    for (;;) {
      if (this.#stopping) throw new WeftError('WEFT_ERR_IDENTITY_UNAVAILABLE', 'stopped before a certificate was issued');
      try {
        await this.#identity.whenAvailable(this.identity, 60_000);
        return;
      } catch (err) {
        this.#log.warn({ identity: this.identity, code: 'WEFT_ERR_IDENTITY_UNAVAILABLE', reason: (err as Error).message }, 'still no certificate: not ready, HBONE refused');
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#ready = false;
    for (const s of this.#servers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    await this.#hbone?.close({ timeoutMs: 1000 });
    this.#upstreams.close();
    await this.#opts.source.stop();
    this.#identity.close();
  }

  /** The services whose traffic this waypoint serves now. */
  boundServices(): Service[] {
    const model = this.#model;
    return model === undefined ? [] : [...model.services.values()].filter((s) => s.waypoint === this.key);
  }

  /** For the admin API's /config_dump. */
  configDump(): object {
    const cert = this.#identity.current(this.identity);
    return {
      waypoint: this.key,
      identity: this.identity,
      ready: this.readiness() === true,
      generation: this.#model?.generation,
      certificate: cert === undefined ? undefined : { serial: cert.serial, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() },
      config: { hbone: this.#opts.hboneAddress, metrics: this.#opts.metricsAddress ?? '', readiness: this.#opts.readinessAddress ?? '', admin: this.#opts.adminAddress ?? '', sniffTimeoutMs: this.#opts.sniffTimeoutMs ?? WAYPOINT_SNIFF_TIMEOUT_MS, sniffMaxBytes: WAYPOINT_SNIFF_MAX_BYTES },
      services: this.boundServices().map((s) => ({ key: s.key, clusterIP: s.clusterIP, ports: [...s.ports].map(([port, eps]) => ({ port, endpoints: eps.map((e) => `${e.ip}:${e.port}`) })) })),
      policies: this.#policy.objects().map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`),
      routes: this.#opts.routes === undefined ? routeStatusRows(this.#routes.statuses()) : undefined,
      refusedStreams: this.#refused,
      hbone: this.#hbone?.stats(),
      pool: this.#pool.stats(),
      upstreams: this.#upstreams.stats(),
    };
  }

  #tableFor(model: MeshModel): RouteTable {
    if (this.#opts.routes !== undefined) return this.#opts.routes(model);
    const table = this.#routes.update(model);
    const refused = this.#routes.rejected();
    const said = refused.map((r) => `${r.kind} ${r.route}: ${r.errors.map((e) => `${e.path} ${e.message}`).join('; ')}`).join('\n');
    // Logged when the set of refusals changes, not on every model update.
    if (said !== this.#saidRefused) {
      this.#saidRefused = said;
      for (const r of refused) this.#log.warn({ code: 'WEFT_ERR_ROUTE_INVALID', route: `${r.kind} ${r.route}`, servingLastGood: r.servingLastGood, errors: r.errors }, 'route refused');
    }
    return table;
  }

  #apply(model: MeshModel): void {
    this.#model = model;
    // Refused policies are logged (and the last good kept) by the PolicyState, as in the agent.
    this.#policy.update(model.others);
    this.#table = this.#tableFor(model);
    // Pools to pods that left the model (or whose IP another identity holds now) go at once.
    this.#upstreams.closeGone((e) => {
      const w = model.workloadByIp(e.ip);
      return e.workload === undefined ? true : w?.identity === e.workload.identity;
    });
  }

  #refuse(stream: ServerHttp2Stream, info: HboneStreamInfo, status: number, reason: string): void {
    this.#refused++;
    this.#log.warn({ code: 'WEFT_ERR_WAYPOINT_NOT_BOUND', authority: info.authority, peer: info.peerIdentity, status, reason }, 'CONNECT refused');
    if (!stream.destroyed) stream.respond({ ':status': status }, { endStream: true });
  }

  #onStream(stream: ServerHttp2Stream, info: HboneStreamInfo): void {
    const model = this.#model!;
    const service = model.serviceByVip(info.host);
    if (service === undefined) return this.#refuse(stream, info, 400, `${info.host} is not a service VIP`);
    if (!service.ports.has(info.port)) return this.#refuse(stream, info, 400, `${info.port} is not a port of service ${service.key}`);
    if (service.waypoint !== this.key) return this.#refuse(stream, info, 421, service.waypoint === undefined ? `service ${service.key} uses no waypoint` : `service ${service.key} uses waypoint ${service.waypoint}, not ${this.key}`);
    const clientIp = plainIp(info.remoteAddress);
    const w: Workload | undefined = model.workloadByIp(clientIp);
    const tunnel: TunnelContext = {
      service,
      port: info.port,
      authority: info.authority,
      sourcePrincipal: info.peerIdentity,
      // The address names the workload only if the identity it proved is that workload's.
      sourceWorkload: w !== undefined && w.identity === info.peerIdentity ? w : undefined,
      clientIp,
    };
    stream.respond({ ':status': 200 });
    this.#sniff(stream, tunnel, info);
  }

  /** Reads until the first bytes say what the stream carries, then hands it (with those bytes) on. */
  #sniff(stream: ServerHttp2Stream, tunnel: TunnelContext, info: HboneStreamInfo): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let decided = false;
    const addresses = { remoteAddress: tunnel.clientIp, remotePort: info.remotePort, localAddress: info.localAddress, localPort: info.localPort };
    const decideNow = (kind: 'h2' | 'http1' | 'l4'): void => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onClose);
      stream.pause();
      const socket = new StreamSocket(stream, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), addresses);
      if (kind === 'http1') serveHttp1(this.#http1, socket, tunnel);
      else if (kind === 'h2') this.#http2.serve(socket, tunnel);
      else serveL4(this.#inputs, (t, d, f) => this.#tcpSeries(t, d, f), socket, tunnel);
    };
    const onData = (c: Buffer): void => {
      chunks.push(c);
      size += c.length;
      const kind = sniff(chunks.length === 1 ? c : Buffer.concat(chunks), WAYPOINT_SNIFF_MAX_BYTES);
      if (kind !== 'more') decideNow(kind);
      else if (size >= WAYPOINT_SNIFF_MAX_BYTES) decideNow('l4');
    };
    // The client finished (or went) before the bytes said anything: what came goes as L4.
    const onEnd = (): void => decideNow('l4');
    const onClose = (): void => {
      if (!decided) {
        decided = true;
        clearTimeout(timer);
      }
    };
    const timer = setTimeout(() => decideNow('l4'), this.#opts.sniffTimeoutMs ?? WAYPOINT_SNIFF_TIMEOUT_MS);
    timer.unref();
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onClose);
  }

  #tcpSeries(tunnel: TunnelContext, destination: Workload | undefined, flags: string): TcpSeries {
    const series = this.metrics.tcpSeries.get({ reporter: 'destination', source: tunnel.sourceWorkload, sourcePrincipal: tunnel.sourcePrincipal, destination, destinationService: tunnel.service.key, mutualTls: true, clusterName: this.#inputs.clusterName });
    // TcpLabelInput has no `waypoint` reporter yet; with the principal given, the labels are
    // those a destination reporter computes, and no destination reporter lives in this process.
    series.labels.reporter = 'waypoint';
    if (flags !== '-') series.labels.response_flags = flags;
    return series;
  }
}

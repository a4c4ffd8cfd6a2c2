/**
 * `weft gateway`: the ingress gateway (issue 13) for one Gateway of class `weft`. It is the
 * waypoint's L7 engine (agent/waypoint: decide, http1, http2, upstream, picker, authorize) with
 * another front door: instead of HBONE CONNECT streams from source agents, TCP connections from
 * outside the mesh on the Gateway's listeners, plain HTTP or TLS terminated with the certificate
 * the SNI names (kubernetes.io/tls Secrets). Upstream it is a meshed workload like the waypoint:
 * its own SPIFFE identity from the CA, HBONE to the backend pods, L7 AuthorizationPolicies with
 * targetRefs to its Gateway, request metrics with reporter="source" (as Istio's ingress gateway).
 *
 * Each model update re-reads the Gateway (listeners, certificates) and re-binds its HTTPRoutes
 * (binding.ts); listener ports are opened and closed to match. A listener that cannot be served
 * (a bad Secret) is left out with its reason in the status, the others keep serving; on an HTTPS
 * port, a handshake whose SNI only that listener would take fails.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { Registry } from 'prom-client';
import { DEFAULT_TRUST_DOMAIN, WAYPOINT_HEADERS_TIMEOUT_MS } from '../config.js';
import { GATEWAY_NAME_LABEL, type DiscoverySource, type MeshModel, type OtherObject, type Service } from '../discovery/types.js';
import { buildModel, spiffeId } from '../discovery/model.js';
import type { CaClient } from '../identity/ca-types.js';
import { IdentityManager, type IdentityManagerOptions } from '../identity/manager.js';
import { routeStatusRows, type RouteTable } from '../l7/index.js';
import type { Logger } from '../log.js';
import { PolicyState } from '../proxy/authorization.js';
import { RequestMetrics } from '../telemetry/request-metrics.js';
import { startMetricsServer, startReadinessServer } from '../telemetry/server.js';
import { HbonePool, type SocketFactory } from '../tunnel/pool.js';
import { startAdmin } from '../waypoint/admin.js';
import { PolicyAuthorizer, type RequestAuthorizer } from '../waypoint/authorize.js';
import type { RequestMetricsLike, TunnelContext, WaypointInputs } from '../waypoint/context.js';
import { createHttp1Server, serveHttp1 } from '../waypoint/http1.js';
import { RequestPicker } from '../waypoint/picker.js';
import { Resilience } from '../waypoint/resilience/index.js';
import { Upstreams } from '../waypoint/upstream.js';
import { bindRoutes, type BoundRoutes } from './binding.js';
import { certificateFor, isIngressGateway, mostSpecific, readGateway, type GatewayConfig, type Listener, type SecretLookup } from './config.js';
import { translateIngresses, type IngressTranslation } from './ingress.js';
import { ISTIO_INGRESS_SELECTOR, translateIstioGateways, type IstioTranslation } from './istio-gateway.js';
import { H2Front } from './h2-front.js';
import type { StatusSnapshot } from './kube.js';
import { buildTable, frontendOf, mergeListeners, portFrontendOf, type MergedListeners } from './vhosts.js';

export interface GatewayOptions {
  /** The Gateway (class `weft`) this process serves. */
  name: string;
  namespace: string;
  /** Its pods' service account (default `<name>`, as gatewayObjects makes it). */
  serviceAccount?: string;
  trustDomain?: string;
  clusterName?: string;
  source: DiscoverySource;
  /** The Secrets the listeners' certificateRefs name. */
  secrets: SecretLookup;
  /** Called before each model update's listeners are read (SecretFiles.refresh: Secrets re-read). */
  refreshSecrets?: () => void;
  caClient: CaClient;
  identityOptions?: Partial<Pick<IdentityManagerOptions, 'renewAt' | 'jitter' | 'retryInitialMs' | 'retryMaxMs' | 'trustBundle'>>;
  logger: Logger;
  /** Where a listener's port is opened (default 0.0.0.0:<port>; tests give 127.0.0.1:0). */
  bindAddress?: (port: number) => { host: string; port: number };
  metricsAddress?: string;
  readinessAddress?: string;
  adminAddress?: string;
  createSocket?: SocketFactory;
  upstreamHbonePort?: number;
  authorizer?: RequestAuthorizer;
  random?: () => number;
  /**
   * The cluster's ingress gateway (as istio-ingressgateway is): also serves the Ingresses of
   * class weft (ingress.ts) and the Istio Gateways with selector `istio: ingressgateway`.
   */
  ingress?: boolean;
  /** Objects discovery does not have (Kubernetes mode: GatewayObjectWatch's Ingresses, Istio Gateways); 'change' re-applies the model. */
  objects?: { others(): readonly unknown[]; on(event: 'change', listener: () => void): unknown };
  /** Kubernetes mode: where the status of the Gateway, its HTTPRoutes and the Ingresses is written (GatewayStatusWriter). */
  statusWriter?: { write(s: StatusSnapshot): Promise<void> };
  /** The gateway's external addresses for those statuses (default: the clusterIP of the Service of its name, gatewayObjects' LoadBalancer). */
  addresses?: readonly string[];
  /** Its pods' labels, which Istio Gateways select (default: the gateway-name label, and istio=ingressgateway with `ingress`). */
  labels?: Readonly<Record<string, string>>;
}

/** The Gateway API status of the Gateway (as `kubectl get gateway -o yaml` shows it). */
export interface GatewayStatus {
  conditions: GatewayConfig['conditions'];
  listeners: { name: string; attachedRoutes: number; conditions: Listener['conditions'] }[];
}

interface PortServer {
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly server: net.Server;
  readonly sockets: Set<net.Socket>;
  address: AddressInfo | undefined;
}

function plainIp(address: string | undefined): string {
  if (!address) return '0.0.0.0';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

const NO_GATEWAY: GatewayConfig = { key: '', name: '', namespace: '', generation: undefined, listeners: [], conditions: [] };

export class IngressGateway {
  readonly key: string;
  readonly identity: string;
  readonly registry = new Registry();
  readonly #opts: GatewayOptions;
  readonly #log: Logger;
  readonly #identity: IdentityManager;
  readonly #pool: HbonePool;
  readonly #upstreams: Upstreams;
  readonly #inputs: WaypointInputs;
  readonly #http1: http.Server;
  readonly #h2: H2Front;
  readonly #policy: PolicyState;
  readonly #ports = new Map<number, PortServer>();
  readonly #servers: http.Server[] = [];
  readonly #contexts = new Map<string, tls.SecureContext>();
  #model: MeshModel;
  #config: GatewayConfig = NO_GATEWAY;
  #routes: BoundRoutes | undefined;
  #ingresses: IngressTranslation | undefined;
  #istio: IstioTranslation | undefined;
  #merged: MergedListeners = { listeners: [], alias: new Map() };
  #table: RouteTable = { plan: () => ({ kind: 'reply', rule: undefined, statusCode: 404, responseFlag: 'NR', reason: 'no Gateway' }) };
  #ready = false;
  #stopping = false;
  #said = '';
  #applying: Promise<void> = Promise.resolve();
  #statusWrite: Promise<void> = Promise.resolve();

  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    this.key = `${opts.namespace}/${opts.name}`;
    const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.identity = spiffeId(trustDomain, opts.namespace, opts.serviceAccount ?? opts.name);
    this.#log = opts.logger.child({ component: 'gateway', gateway: this.key });
    this.#identity = new IdentityManager({ ...opts.identityOptions, caClient: opts.caClient, logger: opts.logger.child({ component: 'identity' }) });
    this.#identity.setWanted([this.identity]);
    this.#policy = new PolicyState(opts.logger.child({ component: 'policy' }), trustDomain);
    this.#model = buildModel([], { trustDomain });
    const requestMetrics: RequestMetricsLike = new RequestMetrics(this.registry);
    this.#pool = new HbonePool({ credentials: (id) => this.#identity.get(id), logger: this.#log, ...(opts.createSocket ? { createSocket: opts.createSocket } : {}) });
    this.#upstreams = new Upstreams({
      pool: this.#pool,
      identity: this.identity,
      logger: this.#log,
      ...(opts.upstreamHbonePort !== undefined ? { hbonePort: opts.upstreamHbonePort } : {}),
      ...(opts.createSocket ? { createSocket: (host: string, port: number) => opts.createSocket!(host, port) } : {}),
    });
    const random = opts.random ?? Math.random;
    this.#inputs = {
      key: this.key,
      identity: this.identity,
      clusterName: opts.clusterName ?? 'Kubernetes',
      reporter: 'source',
      logger: this.#log,
      accessLog: opts.logger.child({ component: 'access' }),
      model: () => this.#model,
      table: () => this.#table,
      authorizer: opts.authorizer ?? new PolicyAuthorizer(this.#policy, { name: opts.name, namespace: opts.namespace }, trustDomain),
      picker: new RequestPicker(random),
      upstreams: this.#upstreams,
      requestMetrics,
      resilience: new Resilience(),
      random,
    };
    this.#http1 = createHttp1Server(this.#inputs);
    this.#h2 = new H2Front(this.#http1, this.#log);
  }

  readiness(): true | string {
    if (this.#stopping) return 'stopping';
    if (!this.#ready) return this.#identity.current(this.identity) === undefined ? 'waiting for a certificate' : 'starting';
    return true;
  }

  /** Where a listener port of the Gateway is served (after start; undefined: not open). */
  address(port: number): AddressInfo | undefined {
    return this.#ports.get(port)?.address;
  }

  /** Resolves once the last model update's listeners are open (tests wait on it after a change). */
  settled(): Promise<void> {
    return this.#applying.then(() => this.#statusWrite);
  }

  async start(): Promise<void> {
    const o = this.#opts;
    if (o.readinessAddress) this.#servers.push(await startReadinessServer(() => this.readiness(), o.readinessAddress));
    o.source.on('update', (model: MeshModel) => {
      this.#applying = this.#applying.then(() => this.#apply(model));
    });
    o.objects?.on('change', () => {
      this.#applying = this.#applying.then(() => this.#apply(this.#model));
    });
    const [model] = await Promise.all([o.source.start(), this.#identity.get(this.identity)]);
    this.#applying = this.#applying.then(() => this.#apply(model));
    await this.#applying;
    if (o.metricsAddress) this.#servers.push(await startMetricsServer(this.registry, o.metricsAddress));
    if (o.adminAddress) this.#servers.push(await startAdmin(o.adminAddress, this));
    this.#ready = true;
    this.#log.info({ identity: this.identity, ports: [...this.#ports.keys()] }, 'gateway ready');
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#ready = false;
    await this.#applying;
    for (const s of this.#servers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    for (const port of [...this.#ports.keys()]) await this.#closePort(port);
    this.#http1.closeAllConnections();
    this.#h2.close();
    this.#upstreams.close();
    await this.#opts.source.stop();
    this.#identity.close();
  }

  /** The Gateway's status (conditions per listener, attached routes). */
  status(): GatewayStatus {
    return {
      conditions: this.#config.conditions,
      // A Gateway API listener refused for a conflict with an Ingress's or an Istio Gateway's shows it.
      listeners: this.#config.listeners.map((l) => ({ name: l.name, attachedRoutes: this.#routes?.attached.get(l.name) ?? 0, conditions: (this.#merged.listeners.find((m) => m.name === l.name) ?? l).conditions })),
    };
  }

  /** The status of the HTTPRoutes with a parentRef to this Gateway. */
  routeStatuses(): BoundRoutes['routes'] {
    return this.#routes?.routes ?? [];
  }

  configDump(): object {
    return {
      gateway: this.key,
      identity: this.identity,
      ready: this.readiness() === true,
      generation: this.#model.generation,
      ports: [...this.#ports].map(([port, p]) => ({ port, protocol: p.protocol, address: p.address })),
      status: this.status(),
      routes: routeStatusRows([...this.routeStatuses(), ...(this.#istio?.routes ?? [])]),
      ingresses: this.#ingresses?.ingresses ?? [],
      istioGateways: this.#istio?.gateways ?? [],
      listeners: this.#merged.listeners.map((l) => ({ name: l.name, port: l.port, protocol: l.protocol, hostname: l.hostname ?? '*', ready: l.ready, alias: this.#merged.alias.get(l.name) })),
      refusedRoutes: this.#routes?.refused ?? [],
      upstreams: this.#upstreams.stats(),
      pool: this.#pool.stats(),
    };
  }

  async #apply(model: MeshModel): Promise<void> {
    if (this.#stopping) return;
    this.#model = model;
    this.#policy.update(model.others);
    this.#opts.refreshSecrets?.();
    const others = this.#others(model);
    const view = { namespaces: model.namespaces, services: model.services, others };
    const g = others.find((o) => isIngressGateway(o, this.#opts.namespace, this.#opts.name));
    this.#config = g === undefined ? { ...NO_GATEWAY, key: this.key, name: this.#opts.name, namespace: this.#opts.namespace, conditions: [{ type: 'Accepted', status: 'False', reason: 'NotFound', message: `no Gateway ${this.key} of class weft` }] } : readGateway(g, this.#opts.secrets);
    this.#routes = bindRoutes(this.#config, view);
    this.#ingresses = this.#opts.ingress === true ? translateIngresses(view, this.#opts.secrets) : undefined;
    this.#istio = translateIstioGateways(view, this.#opts.secrets, this.#labels(), this.#opts.namespace);
    this.#merged = mergeListeners([this.#config.listeners, this.#ingresses?.listeners ?? [], this.#istio.listeners]);
    this.#table = buildTable(this.key, this.#merged, [...this.#routes.parts, ...(this.#ingresses?.parts ?? []), ...this.#istio.parts]).table;
    this.#contexts.clear();
    this.#report();
    this.#upstreams.closeGone((e) => {
      const w = model.workloadByIp(e.ip);
      return e.workload === undefined ? true : w?.identity === e.workload.identity;
    });
    // Ports: one server per port of the served listeners (a port's protocol is its listeners').
    const want = new Map<number, 'HTTP' | 'HTTPS'>();
    for (const l of this.#merged.listeners) if (l.ready) want.set(l.port, l.protocol as 'HTTP' | 'HTTPS');
    for (const [port, p] of [...this.#ports]) if (want.get(port) !== p.protocol) await this.#closePort(port);
    for (const [port, protocol] of want) {
      if (this.#ports.has(port)) {
        this.#defaultCertificate(port);
        continue;
      }
      try {
        await this.#openPort(port, protocol);
      } catch (err) {
        this.#log.error({ code: 'WEFT_ERR_GATEWAY_LISTENER', port, err: (err as Error).message }, 'cannot open a listener port');
      }
    }
    // Not awaited by the next update: a slow API server never holds the data path's changes.
    if (this.#opts.statusWriter !== undefined) this.#statusWrite = this.#opts.statusWriter.write(this.statusSnapshot());
  }

  /** Logs what is wrong when it changes: refused listeners and routes, not on every update. */
  #report(): void {
    const bad = this.#merged.listeners.filter((l) => !l.ready).map((l) => `${l.name}: ${l.conditions.filter((c) => c.status === 'False' || c.type === 'Conflicted').map((c) => `${c.type} ${c.reason}: ${c.message}`).join('; ')}`);
    const routes = (this.#routes?.routes ?? []).flatMap((r) => r.parents.flatMap((p) => p.conditions.filter((c) => c.status === 'False').map((c) => `${r.route} ${p.parent} ${c.type} ${c.reason}: ${c.message}`)));
    const refused = (this.#routes?.refused ?? []).map((r) => `${r.route}: ${r.errors.map((e) => `${e.path} ${e.message}`).join('; ')}`);
    const ingress = (this.#ingresses?.ingresses ?? []).flatMap((i) => i.problems.map((p) => `Ingress ${i.key}: ${p}`));
    const istio = (this.#istio?.gateways ?? []).flatMap((g) => g.problems.map((p) => `Gateway ${g.key} (networking.istio.io): ${p}`));
    const vs = (this.#istio?.routes ?? []).flatMap((r) => r.parents.flatMap((p) => p.conditions.filter((c) => c.status === 'False').map((c) => `${r.route} ${p.parent} ${c.type} ${c.reason}: ${c.message}`)));
    const said = [...bad, ...routes, ...refused, ...ingress, ...istio, ...vs, ...this.#config.conditions.filter((c) => c.status === 'False').map((c) => c.message)].join('\n');
    if (said === this.#said) return;
    this.#said = said;
    for (const c of this.#config.conditions) if (c.status === 'False') this.#log.warn({ code: 'WEFT_ERR_GATEWAY_INVALID', reason: c.message }, 'gateway not served');
    for (const b of bad) this.#log.warn({ code: 'WEFT_ERR_GATEWAY_LISTENER', listener: b }, 'listener not served');
    for (const r of routes) this.#log.warn({ code: 'WEFT_ERR_GATEWAY_ROUTE_NOT_ATTACHED', route: r }, 'route not attached');
    for (const r of refused) this.#log.warn({ code: 'WEFT_ERR_ROUTE_INVALID', route: r }, 'route refused');
    for (const r of [...ingress, ...istio]) this.#log.warn({ code: 'WEFT_ERR_GATEWAY_INGRESS', problem: r }, 'ingress configuration not served');
    for (const r of vs) this.#log.warn({ code: 'WEFT_ERR_GATEWAY_ROUTE_NOT_ATTACHED', route: r }, 'route not attached');
  }

  #listenersOn(port: number, protocol: 'HTTP' | 'HTTPS'): Listener[] {
    return this.#merged.listeners.filter((l) => l.ready && l.port === port && l.protocol === protocol && !this.#merged.alias.has(l.name));
  }

  #secureContext(l: Listener, servername: string): tls.SecureContext | undefined {
    const cert = certificateFor(l, servername);
    if (cert === undefined) return undefined;
    let ctx = this.#contexts.get(cert.secret);
    if (ctx === undefined) this.#contexts.set(cert.secret, (ctx = tls.createSecureContext({ cert: cert.cert, key: cert.key })));
    return ctx;
  }

  /** The listener of an HTTPS port that takes a handshake with this SNI ('' when none was sent). */
  #listenerForSni(port: number, servername: string): Listener | undefined {
    const ls = this.#listenersOn(port, 'HTTPS');
    return servername === '' ? (ls.find((l) => l.hostname === undefined) ?? ls[0]) : mostSpecific(ls, servername.toLowerCase());
  }

  async #openPort(port: number, protocol: 'HTTP' | 'HTTPS'): Promise<void> {
    const onSocket = (socket: net.Socket | tls.TLSSocket, service: Service, listenerPort: number): void => {
      socket.on('error', () => socket.destroy());
      const tunnel: TunnelContext = { service, port: listenerPort, authority: `${service.hostname}:${listenerPort}`, sourcePrincipal: '', sourceWorkload: undefined, clientIp: plainIp(socket.remoteAddress) };
      // ALPN h2 (RFC 7301): node:http2 parses, the HTTP/1 request path forwards (h2-front.ts).
      if ((socket as tls.TLSSocket).alpnProtocol === 'h2') this.#h2.serve(socket, tunnel);
      else serveHttp1(this.#http1, socket, tunnel);
    };
    let server: net.Server;
    if (protocol === 'HTTP') {
      server = net.createServer((socket) => {
        socket.on('error', () => socket.destroy());
        const service = this.#standIn(portFrontendOf(this.key, port));
        const tunnel: TunnelContext = { service, port, authority: `${service.hostname}:${port}`, sourcePrincipal: '', sourceWorkload: undefined, clientIp: plainIp(socket.remoteAddress) };
        this.#h2.servePlain(socket, tunnel, this.#http1, WAYPOINT_HEADERS_TIMEOUT_MS);
      });
    } else {
      server = tls.createServer({
        // h2 first, as browsers and curl offer it; a client that offers neither gets HTTP/1.1.
        ALPNProtocols: ['h2', 'http/1.1'],
        SNICallback: (servername, cb) => {
          const l = this.#listenerForSni(port, servername);
          const ctx = l === undefined ? undefined : this.#secureContext(l, servername);
          if (ctx === undefined) {
            this.#log.debug({ code: 'WEFT_ERR_GATEWAY_LISTENER', port, servername }, 'TLS handshake for a server name no served listener takes');
            cb(new Error(`no listener on port ${port} serves ${servername}`), undefined);
          } else cb(null, ctx);
        },
        handshakeTimeout: WAYPOINT_HEADERS_TIMEOUT_MS,
      });
      // A client without SNI: the SNICallback is not called; the port's listener without a hostname answers.
      server.on('secureConnection', (socket: tls.TLSSocket) => {
        const servername = typeof socket.servername === 'string' ? socket.servername : '';
        const l = this.#listenerForSni(port, servername);
        if (l === undefined) return socket.destroy();
        onSocket(socket, this.#standIn(frontendOf(this.key, l.name)), port);
      });
      server.on('tlsClientError', (err) => this.#log.debug({ port, err: err.message }, 'TLS handshake failed'));
    }
    const sockets = new Set<net.Socket>();
    server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    const at = this.#opts.bindAddress?.(port) ?? { host: '0.0.0.0', port };
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port, at.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#ports.set(port, { protocol, server, sockets, address: server.address() as AddressInfo });
    this.#defaultCertificate(port);
    this.#log.info({ port, protocol, address: server.address() }, 'listener port open');
  }

  /** A handshake without SNI gets the server's default context: the certificate of the port's listener without a hostname (else its first). */
  #defaultCertificate(port: number): void {
    const p = this.#ports.get(port);
    if (p?.protocol !== 'HTTPS') return;
    const cert = this.#listenerForSni(port, '')?.certificates[0];
    if (cert !== undefined) (p.server as tls.Server).setSecureContext({ cert: cert.cert, key: cert.key });
  }

  async #closePort(port: number): Promise<void> {
    const p = this.#ports.get(port);
    if (p === undefined) return;
    this.#ports.delete(port);
    const closed = new Promise<void>((resolve) => p.server.close(() => resolve()));
    // A port no listener serves any more: its connections go too (else close waits for them).
    for (const s of p.sockets) s.destroy();
    await closed;
  }

  /** The model's objects and those of `objects`, each once (by apiVersion, kind, namespace and name). */
  #others(model: MeshModel): readonly OtherObject[] {
    const extra = this.#opts.objects?.others() ?? [];
    if (extra.length === 0) return model.others;
    const key = (o: unknown): string => {
      const x = o as { apiVersion?: unknown; kind?: unknown; metadata?: { namespace?: unknown; name?: unknown } };
      return `${String(x.apiVersion)}/${String(x.kind)}/${String(x.metadata?.namespace ?? '')}/${String(x.metadata?.name)}`;
    };
    const seen = new Set(model.others.map(key));
    // GatewayObjectWatch gives every object its apiVersion and kind (list items come without them).
    return [...model.others, ...(extra.filter((o) => !seen.has(key(o))) as OtherObject[])];
  }

  /** What the status writer writes: the Gateway's and its routes' status, the Ingresses served, the address. */
  statusSnapshot(): StatusSnapshot {
    const svc = this.#model.services.get(this.key);
    const addresses = this.#opts.addresses ?? (svc?.clusterIP !== undefined ? [svc.clusterIP] : []);
    return {
      gateway: { namespace: this.#opts.namespace, name: this.#opts.name, generation: this.#config.generation, found: !this.#config.conditions.some((c) => c.reason === 'NotFound') },
      status: this.status(),
      routes: this.routeStatuses(),
      ingresses: (this.#ingresses?.ingresses ?? []).map((i) => i.key),
      addresses,
    };
  }

  #labels(): Readonly<Record<string, string>> {
    return this.#opts.labels ?? { [GATEWAY_NAME_LABEL]: this.#opts.name, ...(this.#opts.ingress === true ? ISTIO_INGRESS_SELECTOR : {}) };
  }

  /** The stand-in Service a connection is given to (the engine's TunnelContext needs one). */
  #standIn(key: string): Service {
    return { key, name: this.#opts.name, namespace: this.#opts.namespace, clusterIP: undefined, ports: new Map(), labels: {}, hostname: `${this.#opts.name}.${this.#opts.namespace}`, waypoint: undefined };
  }
}

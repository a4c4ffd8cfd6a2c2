/**
 * The lab's Kubernetes API server: a TEST DOUBLE that speaks the real protocol closely enough
 * for the real kubectl and @kubernetes/client-node, never a Kubernetes distribution (no
 * controllers beyond the few noted in objects.ts, no admission, no schema validation, no
 * OpenAPI, no aggregation, no etcd; one process, state in one JSON file).
 *
 * Public API (kept small and stable; other lab modules build on it):
 *   startKubeApiServer(options) -> KubeApiServer   start serving (HTTPS, bearer tokens, RBAC)
 *   KubeApiServer.adminToken / .caPem / .urls        how to reach it
 *   KubeApiServer.kubeconfig(opts) / writeKubeconfig(path, opts)
 *   KubeApiServer.issueToken(ns, sa, opts)           a service-account token, as TokenRequest
 *   KubeApiServer.faults                             injected failures for tests
 *   KubeApiServer.goDown() / comeBack() / stop()
 *   KubeApiServer.setPodNetworkResolver(fn)         pod -> netns path, for pods/portforward and pods/proxy
 *   KubeApiServer.setPodLogResolver(fn)             (pod, container) -> log file, for pods/log
 *   KubeApiServer.setSubresourceHandler(...)        replaces the built-in pods/proxy (or serves another)
 *   kubeconfigYaml(...)                              a kubeconfig for any server/token
 *
 * Modules: store (objects, resourceVersions, history, state file), resources (the kinds
 * table), objects (per-kind semantics), handlers (HTTP), watch, selectors, patch, rbac, auth
 * (tokens), discovery, table (kubectl's Table output), tls (serving certificate).
 */
import { DEFAULT_CLUSTER_DOMAIN } from '../../config.js';
import { randomBytes, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { stringify as toYaml } from 'yaml';
import { closeFd, closeNetns, createTcpSocket, openNetns } from '../../../native/index.js';
import { WeftError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { API_AUDIENCE, TokenAuthority } from './auth.js';
import { ApiHandler, type ListFault, type UpgradeHandler } from './handlers.js';
import { ObjectService, KUBERNETES_SERVICE_IP } from './objects.js';
import { ResourceRegistry } from './resources.js';
import { Store } from './store.js';
import type { PodNetworkResolver } from './pod-network.js';
import type { PodLogResolver } from './pod-log.js';
import { servingMaterial } from './tls.js';

export { API_AUDIENCE, ADMIN_USER } from './auth.js';
export { SERVICE_CIDR, KUBERNETES_SERVICE_IP } from './objects.js';
export type { ListFault, UpgradeHandler } from './handlers.js';
export type { PodNetworkResolver } from './pod-network.js';
export type { PodLogResolver } from './pod-log.js';
export type { KubeObject } from './types.js';

export interface ListenAddress {
  host: string;
  /** 0 picks a free port (kept across goDown/comeBack). */
  port: number;
  /** Listen inside this network namespace (e.g. /run/netns/weft-lab-fabric) instead of the caller's. */
  netnsPath?: string;
}

export interface KubeApiServerOptions {
  listen: ListenAddress[];
  /** Objects, keys and resourceVersion persist here; in memory only when omitted. */
  stateFile?: string;
  /**
   * The address the `kubernetes` Service's Endpoints and EndpointSlice name (default: the first
   * listen address inside a namespace, else the first one, when its port is fixed).
   */
  advertise?: { ip: string; port: number };
  /** Extra DNS names for the serving certificate (kubernetes.default.svc... are always in it). */
  dnsNames?: string[];
  /** Interval of BOOKMARK events on watches that allow them (default 60 s, as Kubernetes). */
  bookmarkIntervalMs?: number;
  /** Changes kept for watches (default 10,000). */
  historyLimit?: number;
  /**
   * Install the Gateway API's standard CRDs and the weft-waypoint GatewayClass at first start
   * (default true: the lab is a cluster with the Gateway API, as Istio's ambient mode needs).
   */
  gatewayApi?: boolean;
  now?: () => number;
  logger?: Logger;
}

export interface KubeconfigOptions {
  /** Server URL (default: the first listen address). */
  server?: string;
  /** Bearer token (default: the admin token). */
  token?: string;
  user?: string;
  namespace?: string;
}

export interface KubeApiFaults {
  /** The next `count` list requests (any resource) answer `status` (429 carries Retry-After). */
  failNextLists(count: number, fault: ListFault): void;
  /** Forgets the watch history: watches from an earlier resourceVersion get 410 Expired. */
  compact(): void;
}

export interface IssueTokenOptions {
  audiences?: string[];
  expirationSeconds?: number;
  /** Binds the token to this pod (it must run as the service account). */
  pod?: string;
}

const BASE_DNS = ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', `kubernetes.default.svc.${DEFAULT_CLUSTER_DOMAIN}`];

/** A kubeconfig (YAML) for `server` with a bearer token, trusting `caPem`. */
export function kubeconfigYaml(server: string, caPem: string, token: string, user = 'weft-lab-admin', namespace?: string): string {
  const cluster = 'weft-lab';
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: cluster, context: { cluster, user, ...(namespace ? { namespace } : {}) } }],
    'current-context': cluster,
    preferences: {},
  });
}

export class KubeApiServer {
  readonly #options: KubeApiServerOptions;
  readonly #store: Store;
  readonly #tokens: TokenAuthority;
  readonly #objects: ObjectService;
  readonly #handler: ApiHandler;
  readonly #listFaults: ListFault[] = [];
  readonly #watches = new Set<ServerResponse>();
  readonly #subresources = new Map<string, UpgradeHandler>();
  readonly #sockets = new Set<Socket>();
  readonly #listen: ListenAddress[];
  #servers: https.Server[] = [];
  #tls: { caPem: string; certPem: string; keyPem: string };
  #log: Logger;
  readonly faults: KubeApiFaults;

  private constructor(options: KubeApiServerOptions) {
    this.#options = options;
    this.#listen = options.listen.map((l) => ({ ...l }));
    this.#log = (options.logger ?? silentLogger).child({ component: 'kube-apiserver' });
    const now = options.now ?? Date.now;
    this.#store = new Store({ ...(options.stateFile ? { stateFile: options.stateFile } : {}), ...(options.historyLimit ? { historyLimit: options.historyLimit } : {}) });
    const registry = new ResourceRegistry();
    this.#objects = new ObjectService(this.#store, registry, now);
    this.#objects.loadCrds();
    const listened = this.#listen.find((l) => l.netnsPath !== undefined) ?? this.#listen[0];
    const usable = listened !== undefined && listened.port !== 0 && listened.host !== '0.0.0.0';
    this.#objects.bootstrap(options.advertise ?? (usable ? { ip: listened.host, port: listened.port } : undefined), options.gatewayApi ?? true);
    let keys = this.#store.extra('tokenKeys');
    if (typeof keys !== 'object' || keys === null || Array.isArray(keys) || typeof keys['signingKeyPem'] !== 'string' || typeof keys['adminToken'] !== 'string') {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      keys = { signingKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, adminToken: randomBytes(32).toString('base64url') };
      this.#store.setExtra('tokenKeys', keys);
    }
    this.#tokens = new TokenAuthority(createPrivateKey(String(keys['signingKeyPem'])), String(keys['adminToken']), this.#store, now);
    const ips = [...new Set(['127.0.0.1', KUBERNETES_SERVICE_IP, ...this.#listen.map((l) => l.host).filter((h) => /^\d+\.\d+\.\d+\.\d+$/.test(h) && h !== '0.0.0.0')])];
    const dns = [...new Set([...BASE_DNS, ...(options.dnsNames ?? [])])];
    this.#tls = servingMaterial(this.#store, dns, ips, now());
    this.#handler = new ApiHandler({
      store: this.#store,
      registry,
      objects: this.#objects,
      tokens: this.#tokens,
      now,
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
      listFaults: this.#listFaults,
      serverAddress: () => `${this.#listen[0]?.host ?? '127.0.0.1'}:${this.#listen[0]?.port ?? 0}`,
      subresourceHandlers: this.#subresources,
      watches: this.#watches,
      podNetwork: () => this.#podNetwork,
      podLogs: () => this.#podLogs,
    });
    this.faults = {
      failNextLists: (count, fault) => {
        for (let i = 0; i < count; i++) this.#listFaults.push(fault);
      },
      compact: () => this.#store.compact(),
    };
  }

  static async start(options: KubeApiServerOptions): Promise<KubeApiServer> {
    if (options.listen.length === 0) throw new WeftError('WEFT_ERR_CONFIG', 'the API server needs at least one listen address');
    const s = new KubeApiServer(options);
    await s.comeBack();
    return s;
  }

  get adminToken(): string {
    return this.#tokens.adminToken;
  }

  /** PEM of the CA that signed the serving certificate (kubeconfig's certificate-authority-data). */
  get caPem(): string {
    return this.#tls.caPem;
  }

  /** https URLs of the listen addresses, in the order given. */
  get urls(): string[] {
    return this.#listen.map((l) => `https://${l.host}:${l.port}`);
  }

  get resourceVersion(): number {
    return this.#store.resourceVersion;
  }

  kubeconfig(opts: KubeconfigOptions = {}): string {
    return kubeconfigYaml(opts.server ?? this.urls[0]!, this.caPem, opts.token ?? this.adminToken, opts.user, opts.namespace);
  }

  async writeKubeconfig(path: string, opts: KubeconfigOptions = {}): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    // Atomic: the lab waits for this file to appear and reads it at once.
    await writeFile(`${path}.tmp`, this.kubeconfig(opts), { mode: 0o600 });
    await rename(`${path}.tmp`, path);
  }

  /** A token as TokenRequest issues it (for the lab, which plays the kubelet). */
  issueToken(namespace: string, serviceAccount: string, opts: IssueTokenOptions = {}): string {
    const sa = this.#store.peek('/serviceaccounts', namespace, serviceAccount);
    if (sa === undefined) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `service account ${namespace}/${serviceAccount} does not exist`);
    let pod: { name: string; uid: string } | undefined;
    let node: { name: string; uid: string } | undefined;
    if (opts.pod !== undefined) {
      const p = this.#store.peek('/pods', namespace, opts.pod);
      if (p === undefined) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `pod ${namespace}/${opts.pod} does not exist`);
      pod = { name: opts.pod, uid: p.metadata.uid ?? '' };
      const spec = p['spec'];
      const nodeName = typeof spec === 'object' && spec !== null && !Array.isArray(spec) && typeof spec['nodeName'] === 'string' ? spec['nodeName'] : '';
      if (nodeName !== '') node = { name: nodeName, uid: this.#store.peek('/nodes', undefined, nodeName)?.metadata.uid ?? '' };
    }
    const now = (this.#options.now ?? Date.now)();
    return this.#tokens.issue({
      namespace,
      serviceAccount: { name: serviceAccount, uid: sa.metadata.uid ?? '' },
      ...(pod ? { pod } : {}),
      ...(node ? { node } : {}),
      audiences: opts.audiences ?? [API_AUDIENCE],
      expiresAt: now + (opts.expirationSeconds ?? 3600) * 1000,
    }).token;
  }

  /**
   * Serves `pods/<sub>` (portforward, proxy) with `handler` after the pod was found and the
   * request authorized.
   */
  setSubresourceHandler(resource: 'pods' | 'services' | 'nodes', subresource: 'portforward' | 'proxy', handler: UpgradeHandler): void {
    this.#subresources.set(`/${resource}/${subresource}`, handler);
  }

  #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void this.#handler.handle(req, res);
  };

  async #listenOne(l: ListenAddress): Promise<https.Server> {
    const server = https.createServer({ key: this.#tls.keyPem, cert: `${this.#tls.certPem.trim()}\n${this.#tls.caPem.trim()}\n`, ALPNProtocols: ['http/1.1'] }, this.#onRequest);
    server.keepAliveTimeout = 60_000;
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#handler.handleUpgrade(req, socket, head));
    server.on('clientError', (_err, socket) => socket.destroy());
    let fd: number | undefined;
    let netnsFd: number | undefined;
    try {
      if (l.netnsPath !== undefined) {
        netnsFd = openNetns(l.netnsPath);
        fd = createTcpSocket({ netnsFd, reuseAddress: true, bind: { address: l.host, port: l.port }, listenBacklog: 511 });
        server.listen({ fd });
      } else server.listen({ host: l.host, port: l.port });
      await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
    } catch (err) {
      if (fd !== undefined) closeFd(fd);
      throw new WeftError('WEFT_ERR_KUBE_API', `cannot listen on ${l.host}:${l.port}${l.netnsPath ? ` in ${l.netnsPath}` : ''}: ${(err as Error).message}`, { cause: err });
    } finally {
      if (netnsFd !== undefined) closeNetns(netnsFd);
    }
    if (l.port === 0) l.port = (server.address() as AddressInfo).port;
    return server;
  }

  #podNetwork: PodNetworkResolver | undefined;

  /**
   * Tells the server which network namespace a pod has (its own, or its node's for hostNetwork
   * pods), for pods/portforward (WebSocket, v4.channel.k8s.io) and pods/proxy.
   */
  setPodNetworkResolver(resolver: PodNetworkResolver): void {
    this.#podNetwork = resolver;
  }

  #podLogs: PodLogResolver | undefined;

  /** Tells the server which file holds a container's output, for pods/log (`kubectl logs`). */
  setPodLogResolver(resolver: PodLogResolver): void {
    this.#podLogs = resolver;
  }

  /** Starts listening again on the same addresses (after goDown), keeping every object. */
  async comeBack(): Promise<void> {
    if (this.#servers.length > 0) return;
    const servers: https.Server[] = [];
    try {
      for (const l of this.#listen) servers.push(await this.#listenOne(l));
    } catch (err) {
      for (const s of servers) s.close();
      throw err;
    }
    this.#servers = servers;
    this.#log.info({ urls: this.urls }, 'kube-apiserver (lab test double) listening');
  }

  /** Stops listening and drops every connection and watch; state stays (as a crashed apiserver). */
  async goDown(): Promise<void> {
    const servers = this.#servers;
    this.#servers = [];
    for (const w of this.#watches) w.destroy();
    this.#watches.clear();
    for (const s of this.#sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  async stop(): Promise<void> {
    await this.goDown();
    await this.#store.flush();
  }
}

export function startKubeApiServer(options: KubeApiServerOptions): Promise<KubeApiServer> {
  return KubeApiServer.start(options);
}

/**
 * The node agent: discovery -> capture of this node's meshed pods -> data path, plus the admin
 * server. Built from injected parts so tests can run it in-process.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { Logger } from './log.js';
import type { DiscoverySource, MeshModel, OtherObject, Refusal } from './discovery/types.js';
import { LocalSource } from './discovery/local.js';
import { NetnsLocator } from './capture/netns-locator.js';
import { CaptureManager } from './capture/manager.js';
import type { InboundTunnel } from './capture/pod-capture.js';
import { LoadBalancer } from './proxy/load-balancer.js';
import { ConnectionTracker } from './proxy/connection.js';
import type { ProxyInputs } from './proxy/inputs.js';
import { buildModel } from './discovery/model.js';
import { PolicyState } from './proxy/authorization.js';
import { WeftError } from './errors.js';
import { IdentityManager, type IdentityManagerOptions } from './identity/manager.js';
import type { CaClient } from './identity/ca-types.js';
import { hboneInboundTunnel } from './proxy/inbound-hbone.js';
import { startAdminServer } from './admin/server.js';
import { AgentMetrics, collectStateOnScrape } from './telemetry/metrics.js';
import { startMetricsServer, startReadinessServer } from './telemetry/server.js';
import { inboundServiceGuesser } from './telemetry/inbound-service.js';
import { raiseOpenFileLimit } from '../native/index.js';
import { HandoverMarker } from './capture/handover.js';
import { CniRequests, cniRequestDir } from './capture/cni-requests.js';
import { CAPTURE_READY_GRACE_MS, DEFAULT_TRUST_DOMAIN, effectiveConfig } from './config.js';
import { isRouteKind, validateRouteObject } from './l7/index.js';
import { formatFieldErrors } from '../policy/index.js';

export interface AgentOptions {
  nodeName: string;
  /** Only named network namespaces with this prefix hold pods (see NetnsLocator); default: scan all. */
  podNetnsPrefix?: string;
  /** Local discovery: a manifest directory (used when `source` is not given). */
  manifestsDir?: string;
  /** Where workloads, services and policies come from (Kubernetes, or a local directory). */
  source?: DiscoverySource;
  logger: Logger;
  /** host:port of the admin server (config dump, readiness); '' disables it. */
  adminAddress?: string;
  /** host:port for Prometheus /metrics (node-level, 15020); '' or undefined disables it. */
  metricsAddress?: string;
  /** host:port for /healthz/ready (15021); '' or undefined disables it. */
  readinessAddress?: string;
  metrics?: AgentMetrics;
  /**
   * The CA that signs this node's workload certificates. With it, meshed pods talk over HBONE
   * (mutual TLS); without it (tests of the capture layer only) the mesh carries plaintext.
   */
  caClient?: CaClient;
  /** Renewal and retry timing of workload certificates (defaults: half-life, capped backoff), and the published trust bundle to follow. */
  identityOptions?: Partial<Pick<IdentityManagerOptions, 'renewAt' | 'jitter' | 'retryInitialMs' | 'retryMaxMs' | 'trustBundle'>>;
  /** The node's own address (pods' hostIP): connections from it skip capture (kubelet probes). */
  nodeIp?: string;
  /**
   * The node's Weft runtime directory (hostPath /var/run/weft): the CNI plugin's requests
   * (cni-requests.ts) and which agent is the newest on the node (readiness during a handover).
   */
  runDir?: string;
  /**
   * SPIFFE trust domain of this mesh (default `cluster.local`): workload identities, the peers
   * the HBONE server accepts and policy namespaces. A given `source` must have the same one.
   */
  trustDomain?: string;
  /** How long a pod's capture may fail before the agent says it is not ready (default CAPTURE_READY_GRACE_MS). */
  captureReadyGraceMs?: number;
}

/** Without a CA there is no HBONE: the 15008 listener exists (so the port is reserved) and refuses. */
const refusingTunnel: InboundTunnel = {
  async serve(_pod, listenFd) {
    const net = await import('node:net');
    const server = net.createServer((s) => s.resetAndDestroy());
    server.listen({ fd: listenFd });
    await once(server, 'listening');
    return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  },
};

export class Agent {
  readonly #options: AgentOptions;
  readonly #logger: Logger;
  #model: MeshModel;
  readonly #source: DiscoverySource;
  readonly #capture: CaptureManager;
  readonly inputs: ProxyInputs;
  readonly metrics: AgentMetrics;
  readonly #servers: http.Server[] = [];
  readonly #handover: HandoverMarker | undefined;
  #cni: CniRequests | undefined;
  #ready = false;
  /** What the last reconcile applied: an update that moved neither is not worth one. */
  #appliedOthers: readonly OtherObject[] | undefined;
  #appliedNodeVersion = -1;
  #draining = false;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#logger = options.logger;
    const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.#model = buildModel([], { trustDomain });
    const accessLog = options.logger.child({ component: 'access' });
    this.metrics = options.metrics ?? new AgentMetrics();
    this.inputs = {
      nodeName: options.nodeName,
      trustDomain,
      logger: options.logger.child({ component: 'proxy' }),
      accessLog,
      model: () => this.#model,
      loadBalancer: new LoadBalancer(),
      connections: new ConnectionTracker(accessLog, this.metrics),
      policy: new PolicyState(options.logger.child({ component: 'policy' }), trustDomain),
      metrics: this.metrics,
      identity: options.caClient ? new IdentityManager({ ...options.identityOptions, caClient: options.caClient, logger: options.logger.child({ component: 'identity' }) }) : undefined,
    };
    this.inputs.connections.guessInboundService = inboundServiceGuesser(() => this.#model);
    collectStateOnScrape(this.metrics, {
      certificates: () => this.inputs.identity?.stats().certificates ?? [],
      pools: () => [...this.#capture.captured].map(([pod, c]) => ({ pod, connectionsOpen: c.pool?.stats().connectionsOpen ?? 0 })),
    });
    if (!options.source && !options.manifestsDir) throw new WeftError('WEFT_ERR_CONFIG', 'the agent needs a discovery source: a manifest directory or a Kubernetes API server');
    this.#source = options.source ?? new LocalSource({ dir: options.manifestsDir!, trustDomain, logger: options.logger.child({ component: 'discovery' }) });
    this.#capture = new CaptureManager(
      this.inputs,
      new NetnsLocator(options.podNetnsPrefix !== undefined ? { namePrefix: options.podNetnsPrefix } : {}),
      this.inputs.identity ? hboneInboundTunnel(this.inputs) : refusingTunnel,
      options.logger.child({ component: 'capture' }),
      options.nodeIp !== undefined ? { nodeIp: options.nodeIp } : {},
    );
    this.#handover = options.runDir !== undefined ? new HandoverMarker(options.runDir) : undefined;
  }

  /** For the admin API: which of two agents during a handover answered. */
  get pid(): number {
    return process.pid;
  }

  /**
   * True, or why not: starting, draining, a newer agent on this node took over, or a pod of
   * this node that should be captured has not been (its capture failing for the grace period):
   * the pod then runs without the mesh's protection, and the probe says which and why.
   */
  readiness(): true | string {
    if (this.#draining) return 'draining';
    if (!this.#ready) return 'starting';
    if (this.#handover && !this.#handover.isNewest()) return 'superseded by a newer agent on this node';
    const uncaptured = this.#capture.uncaptured(this.#options.captureReadyGraceMs ?? CAPTURE_READY_GRACE_MS);
    if (uncaptured.length > 0) {
      const [first] = uncaptured;
      return `${uncaptured.length} pod(s) not captured: ${first!.pod} for ${Math.round(first!.sinceMs / 1000)} s (${first!.reason})${uncaptured.length > 1 ? `, and ${uncaptured.slice(1).map((u) => u.pod).join(', ')}` : ''}`;
    }
    return true;
  }

  /** The CNI plugin's requests are served from here (see cni-requests.ts). */
  get captureManager(): CaptureManager {
    return this.#capture;
  }

  get model(): MeshModel {
    return this.#model;
  }

  get captured() {
    return this.#capture.captured;
  }

  get ready(): boolean {
    return this.#ready;
  }

  async start(): Promise<void> {
    reportOpenFileLimit(this.#logger);
    // First: from now on an older agent on this node answers readiness with 503.
    this.#handover?.claim();
    this.#source.on('update', (model: MeshModel) => {
      this.#model = model;
      // Pooled HBONE connections to pods that left the model: reset now, not at the next PING.
      for (const pod of this.#capture.captured.values()) pod.pool?.closeGone((ip, identity) => model.workloadByIp(ip)?.identity === identity);
      this.metrics.discoveryUpdates.inc({ result: 'applied' });
      void this.#reconcile();
    });
    this.#source.on('invalid', () => this.metrics.discoveryUpdates.inc({ result: 'invalid' }));
    this.#model = await this.#source.start();
    if (this.#model.trustDomain !== this.inputs.trustDomain) {
      throw new WeftError('WEFT_ERR_CONFIG', `the discovery source's trust domain ${this.#model.trustDomain} is not the agent's ${this.inputs.trustDomain}`);
    }
    await this.#reconcile();
    if (this.#options.runDir !== undefined) {
      this.#cni = new CniRequests({ dir: cniRequestDir(this.#options.runDir), capture: this.#capture, model: () => this.#model, nodeName: this.#options.nodeName, logger: this.#logger.child({ component: 'cni' }) });
      await this.#cni.start();
    }
    const { adminAddress, metricsAddress, readinessAddress } = this.#options;
    if (adminAddress) this.#servers.push(await startAdminServer(this, adminAddress));
    if (metricsAddress) this.#servers.push(await startMetricsServer(this.metrics.registry, metricsAddress));
    if (readinessAddress) this.#servers.push(await startReadinessServer(() => this.readiness(), readinessAddress));
    this.#ready = true;
    this.#logger.info({ node: this.#options.nodeName, workloads: this.#model.workloadsOnNode(this.#options.nodeName).length, captured: this.#capture.captured.size }, 'agent ready');
  }

  /**
   * Everything the agent refuses right now: objects discovery could not take (too large, not
   * valid), policies and routes that do not validate. The admin API serves it; `weft lab apply` prints it.
   */
  refusals(): Refusal[] {
    return [...this.#source.refusals(), ...this.inputs.policy.refusals(), ...routeRefusals(this.#model.others)];
  }

  /** The effective configuration (flags over agent/config.ts's defaults), for the admin API. */
  config() {
    const o = this.#options;
    return effectiveConfig({ trustDomain: this.inputs.trustDomain, adminAddress: o.adminAddress, metricsAddress: o.metricsAddress, readinessAddress: o.readinessAddress, nodeIp: o.nodeIp, runDir: o.runDir, podNetnsPrefix: o.podNetnsPrefix, mtls: this.inputs.identity !== undefined });
  }

  /** When the discovery input the refusals reflect was last read (local source only). */
  discoveryReadStartedAt(): number | undefined {
    return this.#source.lastReadStartedAt?.();
  }

  discoveryResourceVersions(): Record<string, string> | undefined {
    return this.#source.resourceVersions?.();
  }

  async #reconcile(): Promise<void> {
    const model = this.#model;
    // The model's `others` is a new array only when a policy (or route) changed.
    if (model.others !== this.#appliedOthers) {
      this.#appliedOthers = model.others;
      if (this.inputs.policy.update(model.others)) {
        // Policies apply to new connections at once, and to open ones: those no longer allowed close.
        this.inputs.connections.recheck((q) => this.inputs.policy.decide(q), this.inputs.logger);
      }
    }
    // Events about other nodes' pods (most of them, in a large cluster) leave capture alone.
    const nodeVersion = model.nodeVersion(this.#options.nodeName);
    if (nodeVersion === this.#appliedNodeVersion) return;
    this.#appliedNodeVersion = nodeVersion;
    await this.#capture.reconcile(model);
    this.metrics.capturedPods.set(this.#capture.captured.size);
    // Certificates of identities that no captured pod has any more are dropped.
    this.inputs.identity?.setWanted([...this.#capture.captured.values()].map((c) => c.workload.identity));
  }

  /**
   * Stops the agent. Rules stay in every captured pod (fail closed: until an agent listens
   * again their connections are refused); `drainMs` > 0 is the SIGTERM path of an upgrade:
   * node-level ports close at once (the new agent answers alone), every pod stops accepting and
   * sends GOAWAY on its HBONE connections, and open connections are relayed until they end or
   * the deadline passes.
   */
  async stop(drainMs = 0): Promise<void> {
    this.#ready = false;
    this.#draining = true;
    await this.#closeServers();
    await this.#cni?.stop();
    await this.#source.stop();
    // Awaited: a stop that returned before the pods were released (capture work still queued)
    // let its caller tear the namespaces down under live HBONE sessions, whose resets were then lost.
    const { closed: released } = await this.#capture.releaseAll(drainMs);
    if (drainMs > 0) {
      const open = (): number => this.inputs.connections.openConnections().length;
      this.#logger.info({ node: this.#options.nodeName, open: open(), drainMs }, 'draining: no new connections, GOAWAY sent; open ones are relayed until they end or the deadline');
      // Done when every pod's listeners closed with their connections (HBONE: every session the
      // peers closed after GOAWAY, streams still in flight included), or at the deadline.
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), drainMs);
      });
      const how = await Promise.race([released.then(() => 'drained' as const), deadline]);
      clearTimeout(timer);
      if (how === 'deadline') this.#logger.warn({ open: open() }, 'drain deadline reached: open connections are cut');
      else this.#logger.info('drained: every connection ended');
    } else {
      void released;
    }
    this.inputs.identity?.close();
    this.#handover?.release();
    this.#logger.info({ node: this.#options.nodeName }, 'agent stopped; the rules stay in the captured pods (their connections are refused until an agent serves them)');
  }

  async #closeServers(): Promise<void> {
    for (const server of this.#servers.splice(0)) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

/**
 * About two descriptors per proxied connection: the soft limit goes to the hard one at start
 * (issue 10). The limit in force is also weft_process_max_fds (prom-client reads /proc).
 */
function reportOpenFileLimit(logger: Logger): void {
  try {
    const limit = raiseOpenFileLimit();
    logger.info({ previous: limit.previous, soft: limit.soft, hard: limit.hard }, `descriptor limit (RLIMIT_NOFILE) ${limit.soft}${limit.previous < limit.soft ? `, raised from ${limit.previous}` : ''}`);
  } catch (err) {
    logger.warn({ err }, 'cannot raise the descriptor limit (RLIMIT_NOFILE); keeping the current one');
  }
}

/**
 * HTTPRoutes and GRPCRoutes that do not validate, by field. The waypoints refuse them (keeping
 * each one's last good version); agents do not route, they list them so that `weft lab apply`
 * reports a bad route as it reports a bad policy, from the command that applied it.
 */
function routeRefusals(others: readonly OtherObject[]): Refusal[] {
  const out: Refusal[] = [];
  for (const o of others) {
    if (!isRouteKind(o.kind)) continue;
    const v = validateRouteObject(o);
    if (!v.ok) out.push({ object: `${o.kind}/${o.metadata.namespace ?? 'default'}/${o.metadata.name}`, code: 'WEFT_ERR_ROUTE_INVALID', reason: `${formatFieldErrors(v.errors)}; a waypoint keeps serving its last good version, if it had one` });
  }
  return out;
}

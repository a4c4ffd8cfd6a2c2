/**
 * The node agent: discovery -> capture of this node's meshed pods -> data path, plus the admin
 * server. Built from injected parts so tests can run it in-process.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { Logger } from './log.js';
import type { MeshModel } from './discovery/types.js';
import { LocalSource } from './discovery/local.js';
import { NetnsLocator } from './capture/netns-locator.js';
import { CaptureManager } from './capture/manager.js';
import type { InboundTunnel } from './capture/pod-capture.js';
import { LoadBalancer } from './proxy/load-balancer.js';
import { ConnectionTracker } from './proxy/connection.js';
import type { ProxyInputs } from './proxy/inputs.js';
import { buildModel } from './discovery/model.js';
import { startAdminServer } from './admin/server.js';

export interface AgentOptions {
  nodeName: string;
  manifestsDir: string;
  logger: Logger;
  /** host:port of the admin server (config dump, readiness); '' disables it. */
  adminAddress?: string;
  tunnel?: InboundTunnel;
}

/** Until HBONE is wired, the 15008 listener exists (so the port is reserved) and refuses. */
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
  #model: MeshModel = buildModel([]);
  readonly #source: LocalSource;
  readonly #capture: CaptureManager;
  readonly inputs: ProxyInputs;
  #admin: http.Server | undefined;
  #ready = false;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#logger = options.logger;
    const accessLog = options.logger.child({ component: 'access' });
    this.inputs = {
      nodeName: options.nodeName,
      logger: options.logger.child({ component: 'proxy' }),
      accessLog,
      model: () => this.#model,
      loadBalancer: new LoadBalancer(),
      connections: new ConnectionTracker(accessLog),
    };
    this.#source = new LocalSource({ dir: options.manifestsDir, logger: options.logger.child({ component: 'discovery' }) });
    this.#capture = new CaptureManager(this.inputs, new NetnsLocator(), options.tunnel ?? refusingTunnel, options.logger.child({ component: 'capture' }));
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
    this.#source.on('update', (model: MeshModel) => {
      this.#model = model;
      void this.#capture.reconcile(model);
    });
    this.#model = await this.#source.start();
    await this.#capture.reconcile(this.#model);
    if (this.#options.adminAddress) this.#admin = await startAdminServer(this, this.#options.adminAddress);
    this.#ready = true;
    this.#logger.info({ node: this.#options.nodeName, workloads: this.#model.workloadsOnNode(this.#options.nodeName).length, captured: this.#capture.captured.size }, 'agent ready');
  }

  async stop(): Promise<void> {
    this.#ready = false;
    await this.#source.stop();
    await this.#capture.stopAll();
    if (this.#admin) await new Promise<void>((resolve) => this.#admin!.close(() => resolve()));
    this.#logger.info({ node: this.#options.nodeName }, 'agent stopped; all pods released');
  }
}

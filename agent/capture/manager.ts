/**
 * Keeps the set of captured pods equal to "workloads on this node that are in the mesh": each
 * model update is reconciled (one at a time, in order); a pod that could not be captured yet
 * (namespace not found, rules failed) is retried with backoff until it succeeds or leaves.
 */
import type { Logger } from '../log.js';
import type { MeshModel, Workload } from '../discovery/types.js';
import type { ProxyInputs } from '../proxy/inputs.js';
import { PodCapture, type InboundTunnel } from './pod-capture.js';
import type { NetnsLocator } from './netns-locator.js';

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5000;

export class CaptureManager {
  readonly #inputs: ProxyInputs;
  readonly #locator: NetnsLocator;
  readonly #tunnel: InboundTunnel;
  readonly #logger: Logger;
  readonly #captured = new Map<string, PodCapture>();
  #queue: Promise<void> = Promise.resolve();
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay = RETRY_MIN_MS;
  #latest: MeshModel | undefined;
  #stopped = false;

  constructor(inputs: ProxyInputs, locator: NetnsLocator, tunnel: InboundTunnel, logger: Logger) {
    this.#inputs = inputs;
    this.#locator = locator;
    this.#tunnel = tunnel;
    this.#logger = logger;
  }

  /** Captured pods by workload key. */
  get captured(): ReadonlyMap<string, PodCapture> {
    return this.#captured;
  }

  reconcile(model: MeshModel): Promise<void> {
    this.#latest = model;
    this.#queue = this.#queue.then(() => this.#reconcile());
    return this.#queue;
  }

  async #reconcile(): Promise<void> {
    const model = this.#latest;
    if (!model || this.#stopped) return;
    const wanted = new Map<string, Workload>();
    for (const w of model.workloadsOnNode(this.#inputs.nodeName)) if (w.inMesh) wanted.set(w.key, w);
    for (const [key, capture] of this.#captured) {
      const w = wanted.get(key);
      if (w && w.ip === capture.workload.ip && w.identity === capture.workload.identity) continue;
      await capture.stop().catch((err: unknown) => this.#logger.error({ err, pod: key }, 'releasing pod failed'));
      // Removed only once released, so whoever reads `captured` never sees a pod that still has rules.
      this.#captured.delete(key);
      this.#logger.info({ pod: key, ip: capture.workload.ip }, 'pod released from capture');
    }
    let failed = false;
    for (const [key, workload] of wanted) {
      if (this.#captured.has(key)) continue;
      try {
        this.#captured.set(key, await PodCapture.start(this.#inputs, this.#locator, workload, this.#tunnel));
        this.#logger.info({ pod: key, ip: workload.ip }, 'pod captured');
      } catch (err) {
        failed = true;
        this.#logger.warn({ err, pod: key, ip: workload.ip, retryInMs: this.#retryDelay }, 'capturing pod failed; will retry');
      }
    }
    this.#scheduleRetry(failed);
  }

  #scheduleRetry(failed: boolean): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (!failed) {
      this.#retryDelay = RETRY_MIN_MS;
      return;
    }
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#latest) void this.reconcile(this.#latest);
    }, this.#retryDelay);
    this.#retryTimer.unref();
    this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
  }

  /** Releases every pod (agent shutdown). */
  async stopAll(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    await this.#queue.catch(() => undefined);
    const all = [...this.#captured.values()];
    this.#captured.clear();
    await Promise.all(all.map((c) => c.stop().catch((err: unknown) => this.#logger.error({ err, pod: c.workload.key }, 'releasing pod failed'))));
  }
}

/**
 * Keeps the set of captured pods equal to "workloads on this node that are in the mesh": each
 * model update is reconciled (one at a time, in order); a pod that could not be captured yet
 * (namespace not found, rules failed) is retried with backoff until it succeeds or leaves.
 */
import type { Logger } from '../log.js';
import type { MeshModel, Workload } from '../discovery/types.js';
import type { ProxyInputs } from '../proxy/inputs.js';
import { PodCapture, type InboundTunnel } from './pod-capture.js';
import type { NetnsLocator, NetnsScan } from './netns-locator.js';
import { isWeftError } from '../errors.js';

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5000;
/** Re-checks that every captured pod is still the namespace holding its IP (pods recreated with the same IP). */
const RESYNC_MS = 5000;

export class CaptureManager {
  readonly #inputs: ProxyInputs;
  readonly #locator: NetnsLocator;
  readonly #tunnel: InboundTunnel;
  readonly #logger: Logger;
  readonly #captured = new Map<string, PodCapture>();
  #queue: Promise<void> = Promise.resolve();
  #retryTimer: NodeJS.Timeout | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
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
    this.#armResync();
    const wanted = new Map<string, Workload>();
    for (const w of model.workloadsOnNode(this.#inputs.nodeName)) if (w.inMesh) wanted.set(w.key, w);
    const scan = this.#locator.scan();
    for (const [key, capture] of this.#captured) {
      const w = wanted.get(key);
      if (w && w.ip === capture.workload.ip && w.identity === capture.workload.identity && this.#sameNamespace(scan, capture)) continue;
      await capture.stop().catch((err: unknown) => this.#logger.error({ err, pod: key }, 'releasing pod failed'));
      // Removed only once released, so whoever reads `captured` never sees a pod that still has rules.
      this.#captured.delete(key);
      this.#logger.info({ pod: key, ip: capture.workload.ip }, 'pod released from capture');
    }
    let failed = false;
    for (const [key, workload] of wanted) {
      if (this.#captured.has(key)) continue;
      try {
        this.#captured.set(key, await PodCapture.start(this.#inputs, scan.locate(workload.ip), workload, this.#tunnel));
        this.#logger.info({ pod: key, ip: workload.ip }, 'pod captured');
      } catch (err) {
        failed = true;
        this.#logger.warn({ err, pod: key, ip: workload.ip, retryInMs: this.#retryDelay }, 'capturing pod failed; will retry');
      }
    }
    this.#scheduleRetry(failed);
  }

  /** False when another namespace now holds the pod's IP (or none does): the pod was recreated. */
  #sameNamespace(scan: NetnsScan, capture: PodCapture): boolean {
    try {
      return scan.locate(capture.workload.ip).inode === capture.netnsInode;
    } catch (err) {
      // Two holders: ours (the old one, kept alive by our handle) and a new one: re-capture.
      return !isWeftError(err, 'WEFT_ERR_NETNS_AMBIGUOUS') && !isWeftError(err, 'WEFT_ERR_NETNS_NOT_FOUND');
    }
  }

  #armResync(): void {
    if (this.#resyncTimer || this.#stopped) return;
    this.#resyncTimer = setTimeout(() => {
      this.#resyncTimer = undefined;
      if (this.#latest && this.#captured.size > 0) void this.reconcile(this.#latest);
      else this.#armResync();
    }, RESYNC_MS);
    this.#resyncTimer.unref();
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
    if (this.#resyncTimer) clearTimeout(this.#resyncTimer);
    await this.#queue.catch(() => undefined);
    const all = [...this.#captured.values()];
    this.#captured.clear();
    await Promise.all(all.map((c) => c.stop().catch((err: unknown) => this.#logger.error({ err, pod: c.workload.key }, 'releasing pod failed'))));
  }
}

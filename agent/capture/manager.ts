/**
 * Keeps the set of captured pods equal to "workloads on this node that are in the mesh": each
 * model update is reconciled (one at a time, in order); a pod that could not be captured yet
 * (namespace not found, rules failed) is retried with backoff until it succeeds or leaves.
 *
 * Fail closed (docs/architecture.md): rules are removed only when a pod leaves the mesh (label,
 * deletion). Agent stop, crash and handover release the listeners and leave the rules; a pod
 * that fails to capture keeps whatever rules an earlier agent left. The first reconcile adopts
 * existing rules (installing is idempotent) and removes those of pods that left the mesh while
 * no agent ran.
 */
import type { Logger } from '../log.js';
import type { MeshModel, Workload } from '../discovery/types.js';
import type { ProxyInputs } from '../proxy/inputs.js';
import { PodCapture, type InboundTunnel } from './pod-capture.js';
import { inodeOf, type NetnsCandidate, type NetnsLocator, type NetnsScan } from './netns-locator.js';
import { hasCaptureRules, removeCaptureRules, type CaptureRuleOptions } from './rules.js';
import { isWeftError, WeftError } from '../errors.js';

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5000;
/** Re-checks that every captured pod is still the namespace holding its IP (pods recreated with the same IP). */
const RESYNC_MS = 5000;

/** Where a pod's namespace is, as the CNI plugin said (the model may not know its IP yet). */
export interface NetnsHint {
  netnsPath: string;
  ip: string;
}

interface CaptureWaiter {
  key: string;
  resolve: () => void;
}

export class CaptureManager {
  readonly #inputs: ProxyInputs;
  readonly #locator: NetnsLocator;
  readonly #tunnel: InboundTunnel;
  readonly #logger: Logger;
  readonly #rules: CaptureRuleOptions;
  readonly #captured = new Map<string, PodCapture>();
  readonly #hints = new Map<string, NetnsHint>();
  readonly #waiters = new Set<CaptureWaiter>();
  /** Wanted pods whose capture fails: since when (epoch ms) and the last error. */
  readonly #failing = new Map<string, { since: number; reason: string }>();
  #queue: Promise<void> = Promise.resolve();
  #retryTimer: NodeJS.Timeout | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #retryDelay = RETRY_MIN_MS;
  #latest: MeshModel | undefined;
  #stopped = false;
  #adopted = false;

  constructor(inputs: ProxyInputs, locator: NetnsLocator, tunnel: InboundTunnel, logger: Logger, rules: CaptureRuleOptions = {}) {
    this.#inputs = inputs;
    this.#locator = locator;
    this.#tunnel = tunnel;
    this.#logger = logger;
    this.#rules = rules;
  }

  /**
   * Pods that should be captured and are not, because their capture has been failing for at
   * least `graceMs` (a pod whose netns appears a moment after the model names it is no failure):
   * the agent is not ready while there is one.
   */
  uncaptured(graceMs: number, now = Date.now()): { pod: string; sinceMs: number; reason: string }[] {
    const out: { pod: string; sinceMs: number; reason: string }[] = [];
    for (const [pod, f] of this.#failing) if (now - f.since >= graceMs) out.push({ pod, sinceMs: now - f.since, reason: f.reason });
    return out.sort((a, b) => a.pod.localeCompare(b.pod));
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

  /**
   * The CNI plugin named the namespace of a new pod: capture it from that path (no scan), with
   * the IP its CNI result gave when the model has none yet. Resolves once captured; rejects
   * after `timeoutMs`.
   */
  async captureNetns(key: string, hint: NetnsHint, timeoutMs: number): Promise<void> {
    this.#hints.set(key, hint);
    const captured = new Promise<void>((resolve) => this.#waiters.add({ key, resolve }));
    if (this.#latest) void this.reconcile(this.#latest);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WeftError('WEFT_ERR_CNI_TIMEOUT', `pod ${key} (${hint.netnsPath}) was not captured within ${timeoutMs} ms (see the agent log)`)), timeoutMs);
    });
    try {
      await Promise.race([captured, timeout]);
    } finally {
      clearTimeout(timer);
      for (const w of this.#waiters) if (w.key === key) this.#waiters.delete(w);
    }
  }

  /** The CNI plugin's DEL: the sandbox is gone, forget where it was. */
  forgetNetns(key: string): void {
    this.#hints.delete(key);
  }

  /** Wanted pods: on this node and in the mesh (with an IP from the model, or from the CNI plugin). */
  #wanted(model: MeshModel): Map<string, Workload> {
    const wanted = new Map<string, Workload>();
    for (const w of model.workloadsOnNode(this.#inputs.nodeName)) if (w.inMesh) wanted.set(w.key, w);
    for (const [key, hint] of this.#hints) {
      if (wanted.has(key)) continue;
      const pending = model.pendingWorkload?.(key);
      // Unknown (yet: the CNI request waits), or known with an IP but not wanted here.
      if (pending === undefined) continue;
      if (pending.inMesh && pending.node === this.#inputs.nodeName) wanted.set(key, { ...pending, ip: hint.ip });
    }
    return wanted;
  }

  async #reconcile(): Promise<void> {
    const model = this.#latest;
    if (!model || this.#stopped) return;
    this.#armResync();
    const wanted = this.#wanted(model);
    const scan = this.#locator.scan();
    if (!this.#adopted) {
      this.#adopted = true;
      await this.#removeStaleRules(model, scan);
    }
    for (const [key, capture] of this.#captured) {
      const w = wanted.get(key);
      const sameNetns = this.#sameNamespace(scan, capture, key);
      if (w && w.ip === capture.workload.ip && w.identity === capture.workload.identity && sameNetns) continue;
      if (w && sameNetns) {
        // Same pod, new IP or identity: the new capture listens beside the old one (SO_REUSEPORT)
        // before the old one goes, and the rules stay: no connection finds nobody listening.
        try {
          const next = await PodCapture.start(this.#inputs, { path: capture.netnsPath, inode: capture.netnsInode }, w, this.#tunnel, this.#rules);
          void capture.release();
          this.#captured.set(key, next);
          this.#logger.info({ pod: key, ip: w.ip, identity: w.identity }, 'pod re-captured');
        } catch (err) {
          this.#logger.warn({ err, pod: key }, 're-capturing pod failed; the previous capture serves on');
        }
        continue;
      }
      await capture.remove().catch((err: unknown) => this.#logger.error({ err, pod: key }, 'releasing pod failed'));
      // Removed only once released, so whoever reads `captured` never sees a pod that still has rules.
      this.#captured.delete(key);
      this.#logger.info({ pod: key, ip: capture.workload.ip }, 'pod released from capture (rules removed)');
    }
    let failed = false;
    for (const key of [...this.#failing.keys()]) if (!wanted.has(key)) this.#failing.delete(key);
    for (const [key, workload] of wanted) {
      if (this.#captured.has(key)) continue;
      try {
        this.#captured.set(key, await PodCapture.start(this.#inputs, this.#locate(scan, key, workload), workload, this.#tunnel, this.#rules));
        this.#failing.delete(key);
        this.#logger.info({ pod: key, ip: workload.ip, via: this.#hints.has(key) ? 'cni' : 'scan' }, 'pod captured');
      } catch (err) {
        failed = true;
        const code = (err as { code?: unknown }).code;
        const reason = `${typeof code === 'string' ? `${code}: ` : ''}${(err as Error).message}`;
        this.#failing.set(key, { since: this.#failing.get(key)?.since ?? Date.now(), reason });
        this.#logger.warn({ err, pod: key, ip: workload.ip, retryInMs: this.#retryDelay }, 'capturing pod failed; will retry');
      }
    }
    for (const w of this.#waiters) {
      if (this.#captured.has(w.key) || (!wanted.has(w.key) && this.#settledOutside(model, w.key))) {
        this.#waiters.delete(w);
        w.resolve();
      }
    }
    this.#scheduleRetry(failed);
  }

  /** A CNI waiter for a pod the model says is not to be captured here is done at once. */
  #settledOutside(model: MeshModel, key: string): boolean {
    const w = model.workloads.get(key) ?? model.pendingWorkload?.(key);
    return w !== undefined && (!w.inMesh || w.node !== this.#inputs.nodeName);
  }

  #locate(scan: NetnsScan, key: string, workload: Workload): NetnsCandidate {
    const hint = this.#hints.get(key);
    if (hint !== undefined) {
      const inode = inodeOf(hint.netnsPath);
      if (inode !== undefined) return { path: hint.netnsPath, inode };
      this.#hints.delete(key); // the sandbox went away; fall back to the scan
    }
    return scan.locate(workload.ip);
  }

  /**
   * Pods of this node that are out of the mesh but still carry Weft's rules (they left the mesh
   * while no agent ran): their rules go. Runs once per agent, at its first reconcile.
   */
  async #removeStaleRules(model: MeshModel, scan: NetnsScan): Promise<void> {
    for (const w of model.workloadsOnNode(this.#inputs.nodeName)) {
      if (w.inMesh) continue;
      let candidate: NetnsCandidate;
      try {
        candidate = scan.locate(w.ip);
      } catch {
        continue;
      }
      try {
        if (await hasCaptureRules(candidate.path)) {
          await removeCaptureRules(candidate.path);
          this.#logger.info({ pod: w.key, ip: w.ip }, 'removed the rules of a pod that left the mesh while no agent ran');
        }
      } catch (err) {
        this.#logger.warn({ err, pod: w.key }, 'checking a pod out of the mesh for stale rules failed');
      }
    }
  }

  /** False when another namespace now holds the pod's IP (or none does): the pod was recreated. */
  #sameNamespace(scan: NetnsScan, capture: PodCapture, key: string): boolean {
    const hint = this.#hints.get(key);
    if (hint !== undefined) return inodeOf(hint.netnsPath) === capture.netnsInode;
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

  /**
   * Agent stop or handover: every pod stops accepting (GOAWAY on HBONE), open connections go on
   * for `drainMs`; the rules stay, so until another agent listens the pods' connections are
   * refused. Resolves once every pod has been released (after the capture work already queued:
   * the pods it captures are released too); `closed` resolves when every listener closed with its
   * connections (the caller bounds that wait).
   */
  async releaseAll(drainMs = 0): Promise<{ closed: Promise<void> }> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#resyncTimer) clearTimeout(this.#resyncTimer);
    await this.#queue.catch(() => undefined);
    const all = [...this.#captured.values()];
    this.#captured.clear();
    return { closed: Promise.all(all.map((c) => c.release(drainMs))).then(() => undefined) };
  }
}


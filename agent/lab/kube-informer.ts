/**
 * A cache of one kind from the lab's API server (list + watch with @kubernetes/client-node's
 * ListWatch, as the real kubelet and controllers use client-go informers), restarted with
 * capped backoff when the watch fails, so the lab's kubelet and controllers survive an API
 * server restart. `onChange` fires after every add/update/delete and after each (re)list.
 */
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../log.js';

export interface LabInformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Collection path, e.g. /api/v1/pods. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  fieldSelector?: string;
  labelSelector?: string;
  logger: Logger;
  onChange: () => void;
}

const MAX_BACKOFF_MS = 10_000;

export class LabInformer<T extends KubernetesObject> {
  readonly #options: LabInformerOptions<T>;
  readonly #lw: ListWatch<T>;
  #attempts = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #synced = false;

  constructor(options: LabInformerOptions<T>) {
    this.#options = options;
    this.#lw = new ListWatch<T>(options.path, new Watch(options.kubeConfig), options.list, false, options.labelSelector, options.fieldSelector);
    const changed = (): void => options.onChange();
    this.#lw.on('add', changed);
    this.#lw.on('update', changed);
    this.#lw.on('delete', changed);
    this.#lw.on('connect', () => {
      this.#attempts = 0;
    });
    this.#lw.on('error', (err: unknown) => this.#retry(err));
  }

  /** Resolves after the first successful list (retrying until then). */
  async start(): Promise<void> {
    for (;;) {
      try {
        await this.#lw.start();
        this.#synced = true;
        this.#options.onChange();
        return;
      } catch (err) {
        if (this.#stopped) return;
        this.#attempts++;
        this.#options.logger.warn({ path: this.#options.path, err: { message: (err as Error).message } }, 'list failed; retrying');
        await new Promise((r) => setTimeout(r, this.#delay()));
      }
    }
  }

  get synced(): boolean {
    return this.#synced;
  }

  list(): readonly T[] {
    return this.#lw.list();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#lw.stop();
  }

  #delay(): number {
    return Math.min(200 * 2 ** Math.max(0, this.#attempts - 1), MAX_BACKOFF_MS) * (0.8 + Math.random() * 0.4);
  }

  #retry(err: unknown): void {
    if (this.#stopped) return;
    this.#attempts++;
    const delay = this.#delay();
    this.#options.logger.warn({ path: this.#options.path, retryInMs: Math.round(delay), err: { message: (err as Error)?.message ?? String(err) } }, 'watch failed; keeping the cache and retrying');
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopped) return;
      this.#lw.start().then(
        () => this.#options.onChange(),
        (e: unknown) => this.#retry(e),
      );
    }, delay);
  }
}

/** Calls `fn` at most once per `ms`, after the last call of a burst; never two runs at once. */
export function serialized(fn: () => Promise<void>, ms: number, log: Logger, what: string): () => void {
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  const go = (): void => {
    timer = undefined;
    if (running) {
      again = true;
      return;
    }
    running = true;
    fn()
      .catch((err: unknown) => log.error({ err }, `${what} failed`))
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  };
  const schedule = (): void => {
    if (timer === undefined) timer = setTimeout(go, ms);
  };
  return schedule;
}

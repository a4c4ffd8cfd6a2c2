/**
 * One list + watch of one collection of a Kubernetes API server (client-go's Reflector):
 * - the first list, paged (`limit`/`continue`), then a watch from its resourceVersion with
 *   bookmarks and a server-side timeout of 5-10 min; a watch that ends is resumed from the last
 *   resourceVersion seen, so the steady state is watches only, never a re-list;
 * - 410 Gone (history compacted) is the only thing that makes it list again;
 * - every failure waits a capped exponential backoff with jitter (backoff.ts) that is reset only
 *   by a list that succeeded or a watch that delivered something: an API server that accepts
 *   connections and fails them is not hammered (a watch that ends at once counts as a failure);
 * - objects are converted on arrival by `convert` (the facts the model uses): the raw objects
 *   are never kept;
 * - an object larger than `maxObjectBytes` (the 1.5 MiB Kubernetes itself allows) is refused with
 *   the reason, before it is parsed when it comes on a watch; the version before it stays.
 *
 * Requests go through node:http(s) with the kubeconfig's credentials (KubeConfig
 * applyToHTTPSOptions: CA, client certificate, bearer token, token files re-read), so the stream
 * can be cut into events by size before JSON.parse.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { Backoff, realClock, type BackoffOptions, type Clock } from './backoff.js';
import { describeSize } from './limits.js';
import { MAX_OBJECT_BYTES, WATCH_IDLE_GRACE_MS } from '../config.js';

export interface Converted<T> {
  key: string;
  value: T;
}

export interface ReflectorHandler<T> {
  upsert(key: string, value: T): void;
  remove(key: string, value: T): void;
  /** The end of one list or of one watch event: the changes so far belong together. */
  flush(): void;
  /** An object was refused (`reason`) or a refusal of it is over (`undefined`). */
  refused(key: string, reason: string | undefined): void;
}

export interface ReflectorOptions<T> {
  kubeConfig: KubeConfig;
  /** The kind, for logs and refusals (`Pod`). */
  kind: string;
  /** Collection path, e.g. /api/v1/pods. */
  path: string;
  fieldSelector?: string;
  convert: (raw: unknown) => Converted<T> | undefined;
  handler: ReflectorHandler<T>;
  logger: Logger;
  clock?: Clock;
  backoff?: BackoffOptions;
  pageSize?: number;
  maxObjectBytes?: number;
  /**
   * TLS state shared by the reflectors of one source: one SecureContext (the CA and the client
   * certificate parsed once), not one per reflector, all built in the first turn of start().
   */
  tls?: SharedTls;
  /** Counts each request made (`list` or `watch`), for metrics and the bench. */
  onRequest?: (verb: 'list' | 'watch') => void;
  /** How long applying one watch event took (parse, convert, model update), in ms. */
  onEventApplied?: (ms: number) => void;
  /**
   * An optional kind (Gateway API, Istio): a list answered 403 (RBAC) or 404 (CRD not
   * installed) settles it as unavailable instead of holding the first sync; it keeps retrying
   * with the backoff and is picked up once it lists.
   */
  optional?: boolean;
  /** An optional kind became unavailable (`status`, `message`) or available again (undefined). */
  onAvailability?: (unavailable: { status: number; message: string } | undefined) => void;
}

export interface SharedTls {
  secureContext?: tls.SecureContext;
}

export class ApiError extends Error {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, status: number, retryAfterMs?: number) {
    super(message);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Items asked per list page at most; PAGE_TARGET_BYTES bounds a page of big objects further. */
const DEFAULT_PAGE_SIZE = 250;
/**
 * Bytes a list page should have: one JSON.parse of 128 KiB is about a millisecond (a page of
 * 250 pods with status was 350 KiB and 3-4 ms of parse alone, on the bench's machine).
 */
const PAGE_TARGET_BYTES = 128 * 1024;
/** Applying a page's items stops for a turn of the event loop after this much work. */
const SLICE_BUDGET_MS = 2;

/** One turn of the event loop: timers, I/O and the data path's callbacks run before the rest. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class Reflector<T> {
  readonly #o: ReflectorOptions<T>;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #maxObjectBytes: number;
  readonly #cache = new Map<string, T>();
  readonly #abort = new AbortController();
  #resourceVersion: string | undefined;
  #synced = false;
  #resolveSynced!: () => void;
  readonly #syncedPromise: Promise<void>;
  #running: Promise<void> | undefined;
  #lastError: string | undefined;
  #agent: https.Agent | undefined;
  #unavailable: { status: number; message: string } | undefined;
  #resolveSettled!: () => void;
  readonly #settledPromise: Promise<void>;

  constructor(options: ReflectorOptions<T>) {
    this.#o = options;
    this.#log = options.logger;
    this.#clock = options.clock ?? realClock;
    this.#backoff = new Backoff(options.backoff);
    this.#maxObjectBytes = options.maxObjectBytes ?? MAX_OBJECT_BYTES;
    this.#syncedPromise = new Promise((resolve) => (this.#resolveSynced = resolve));
    this.#settledPromise = new Promise((resolve) => (this.#resolveSettled = resolve));
  }

  /** An optional kind's list answered 403 or 404 (and has not listed since): why. */
  get unavailable(): { status: number; message: string } | undefined {
    return this.#unavailable;
  }

  /**
   * Resolves after the first successful list, or, for an optional kind, once a list answered
   * 403 or 404 (it keeps retrying): what the first model waits for.
   */
  whenSettled(): Promise<void> {
    return this.#settledPromise;
  }

  get kind(): string {
    return this.#o.kind;
  }

  /** True once a first list succeeded (and stays true: later failures keep the last state). */
  get synced(): boolean {
    return this.#synced;
  }

  /** Why the last request failed, while it keeps failing (for readiness and logs). */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  get size(): number {
    return this.#cache.size;
  }

  /** The last resourceVersion seen (list, event or bookmark). */
  get resourceVersion(): string | undefined {
    return this.#resourceVersion;
  }

  start(): void {
    this.#running ??= this.#run();
  }

  /** Resolves after the first successful list (never, if stopped before one). */
  whenSynced(): Promise<void> {
    return this.#syncedPromise;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
    this.#agent?.destroy();
  }

  get #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      let retryAfterMs: number | undefined;
      try {
        if (this.#resourceVersion === undefined) {
          await this.#list();
          this.#backoff.reset();
          this.#recovered();
          if (this.#unavailable !== undefined) {
            this.#unavailable = undefined;
            this.#o.onAvailability?.(undefined);
          }
          if (!this.#synced) {
            this.#synced = true;
            this.#resolveSynced();
            this.#resolveSettled();
          }
          continue;
        }
        const outcome = await this.#watch(this.#resourceVersion);
        if (outcome === 'gone') {
          this.#log.info({ kind: this.#o.kind, path: this.#o.path }, 'watch history expired (410); listing again');
          this.#resourceVersion = undefined;
          continue;
        }
        if (outcome === 'delivered') {
          this.#backoff.reset();
          this.#recovered();
          continue;
        }
        // Ended without delivering anything: as good as a failure, or the loop would spin.
        throw new Error('watch closed before delivering anything');
      } catch (err) {
        if (this.#stopped) break;
        if (err instanceof ApiError && err.status === 410) {
          this.#resourceVersion = undefined;
          continue;
        }
        // An optional kind's watch answered 404: its CRD is gone; the list says so (below).
        if (this.#o.optional === true && err instanceof ApiError && err.status === 404 && this.#resourceVersion !== undefined) {
          this.#resourceVersion = undefined;
          continue;
        }
        if (err instanceof ApiError) retryAfterMs = err.retryAfterMs;
        if (this.#o.optional === true && err instanceof ApiError && (err.status === 403 || err.status === 404) && this.#resourceVersion === undefined) {
          const was = this.#unavailable;
          this.#unavailable = { status: err.status, message: err.message };
          if (was?.status !== err.status) this.#o.onAvailability?.(this.#unavailable);
          // 404: the kind is not served (its CRD was deleted: so were its objects). 403 keeps
          // the last state, as any failure does.
          if (err.status === 404) this.#forgetAll();
          this.#resolveSettled();
        }
        const delay = Math.max(this.#backoff.next(), retryAfterMs ?? 0);
        const message = err instanceof Error ? err.message : String(err);
        if (this.#lastError !== message || this.#backoff.attempt <= 1) {
          this.#log.warn({ kind: this.#o.kind, path: this.#o.path, attempt: this.#backoff.attempt, retryInMs: delay, err: { message } }, 'Kubernetes list/watch failed; keeping the last state and retrying');
        }
        this.#lastError = message;
        await this.#clock.sleep(delay, this.#abort.signal);
      }
    }
  }

  #forgetAll(): void {
    if (this.#cache.size === 0) return;
    for (const [key, value] of [...this.#cache]) {
      this.#cache.delete(key);
      this.#o.handler.remove(key, value);
      this.#o.handler.refused(key, undefined);
    }
    this.#o.handler.flush();
  }

  #recovered(): void {
    if (this.#lastError === undefined) return;
    this.#lastError = undefined;
    this.#log.info({ kind: this.#o.kind, path: this.#o.path }, 'Kubernetes list/watch working again');
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Lists page by page and applies each page as it arrives; what the list no longer has goes at
   * the end. Nothing of it holds the event loop for long (the data path shares it):
   * - a page is one JSON.parse, so its bytes are bounded: the next page asks for as many items
   *   as fit in PAGE_TARGET_BYTES at the size the last page's items had (Kubernetes pages by
   *   count only);
   * - the next page is requested before this one is applied, so the round trip overlaps the work;
   * - the items of a page are applied in slices of at most SLICE_BUDGET_MS, each slice committed
   *   (flush), with a turn of the event loop between slices.
   */
  async #list(): Promise<void> {
    const items = new Map<string, T>();
    const refused = new Set<string>();
    const maxItems = this.#o.pageSize ?? DEFAULT_PAGE_SIZE;
    let limit = maxItems;
    let resourceVersion = '';
    const fetchPage = async (continueToken: string | undefined): Promise<string> => {
      const query: Record<string, string> = { limit: String(limit) };
      if (continueToken !== undefined) query.continue = continueToken;
      if (this.#o.fieldSelector !== undefined) query.fieldSelector = this.#o.fieldSelector;
      this.#o.onRequest?.('list');
      const res = await this.#request(query);
      return await readBody(res, this.#abort.signal);
    };
    let pending: Promise<string> | undefined = fetchPage(undefined);
    while (pending !== undefined) {
      const body = await pending;
      pending = undefined;
      const page = JSON.parse(body) as { metadata?: { resourceVersion?: string; continue?: string }; items?: unknown[] };
      const rawItems = page.items ?? [];
      const continueToken = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      if (rawItems.length > 0) limit = Math.max(1, Math.min(maxItems, Math.floor((PAGE_TARGET_BYTES * rawItems.length) / body.length)));
      if (continueToken !== undefined && !this.#stopped) {
        pending = fetchPage(continueToken);
        // Its failure is seen when it is awaited; until then it must not count as unhandled.
        pending.catch(() => undefined);
      }
      // A page can only hold an object over the limit if the page itself is bigger than it.
      const checkSizes = body.length > this.#maxObjectBytes;
      let sliceStart = performance.now();
      for (let i = 0; i < rawItems.length; i++) {
        if (i > 0 && performance.now() - sliceStart >= SLICE_BUDGET_MS) {
          this.#o.handler.flush();
          await yieldToEventLoop();
          if (this.#stopped) break;
          sliceStart = performance.now();
        }
        const raw = rawItems[i];
        rawItems[i] = undefined;
        const size = checkSizes ? JSON.stringify(raw).length : 0;
        if (size > this.#maxObjectBytes) {
          const key = keyOf(raw);
          refused.add(key);
          this.#o.handler.refused(key, tooLarge(this.#o.kind, size, this.#maxObjectBytes));
          continue;
        }
        const converted = this.#o.convert(raw);
        if (converted === undefined) continue;
        items.set(converted.key, converted.value);
        this.#cache.set(converted.key, converted.value);
        this.#o.handler.upsert(converted.key, converted.value);
        this.#o.handler.refused(converted.key, undefined);
      }
      this.#o.handler.flush();
      if (this.#stopped) {
        // The request in flight ends with the abort; nothing waits for it.
        return;
      }
      if (pending !== undefined) await yieldToEventLoop();
    }
    if (this.#stopped) return;
    // What the list no longer has goes (after a re-list only that moves: the store ignores
    // upserts that change nothing). One refused in this list keeps the version before it.
    let sliceStart = performance.now();
    for (const [key, value] of [...this.#cache]) {
      if (items.has(key) || refused.has(key)) continue;
      this.#cache.delete(key);
      this.#o.handler.remove(key, value);
      this.#o.handler.refused(key, undefined);
      if (performance.now() - sliceStart >= SLICE_BUDGET_MS) {
        this.#o.handler.flush();
        await yieldToEventLoop();
        sliceStart = performance.now();
      }
    }
    this.#resourceVersion = resourceVersion;
    this.#o.handler.flush();
  }

  /** Follows one watch to its end: 'delivered' if any event or bookmark came, 'gone' on 410. */
  async #watch(resourceVersion: string): Promise<'delivered' | 'empty' | 'gone'> {
    // client-go's spread: 5 to 10 minutes, so that watches of many agents do not end together.
    const timeoutSeconds = Math.round(300 * (1 + Math.random()));
    const query: Record<string, string> = { watch: 'true', resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) };
    if (this.#o.fieldSelector !== undefined) query.fieldSelector = this.#o.fieldSelector;
    this.#o.onRequest?.('watch');
    const res = await this.#request(query);
    let delivered = false;
    let gone = false;
    await readLines(res, this.#maxObjectBytes + 1024, timeoutSeconds * 1000 + WATCH_IDLE_GRACE_MS, this.#abort.signal, {
      line: (text) => {
        const outcome = this.#event(text);
        if (outcome === 'gone') gone = true;
        else delivered = true;
        return outcome !== 'gone';
      },
      tooLong: (head, length) => {
        delivered = true;
        this.#o.handler.refused(keyFromHead(head), tooLarge(this.#o.kind, length, this.#maxObjectBytes));
      },
    });
    return gone ? 'gone' : delivered ? 'delivered' : 'empty';
  }

  #event(text: string): 'ok' | 'gone' {
    const started = performance.now();
    const outcome = this.#applyEvent(text);
    this.#o.onEventApplied?.(performance.now() - started);
    return outcome;
  }

  #applyEvent(text: string): 'ok' | 'gone' {
    let event: { type?: string; object?: { metadata?: { resourceVersion?: string }; code?: number } };
    try {
      event = JSON.parse(text) as typeof event;
    } catch {
      this.#log.warn({ kind: this.#o.kind, path: this.#o.path }, 'watch sent a line that is not JSON; ignored');
      return 'ok';
    }
    const rv = event.object?.metadata?.resourceVersion;
    if (event.type === 'ERROR') {
      if (event.object?.code === 410) return 'gone';
      this.#log.warn({ kind: this.#o.kind, path: this.#o.path, status: event.object }, 'watch error event');
      return 'ok';
    }
    if (event.type === 'BOOKMARK') {
      if (rv !== undefined) this.#resourceVersion = rv;
      return 'ok';
    }
    const converted = this.#o.convert(event.object);
    if (converted !== undefined) {
      const { key, value } = converted;
      if (event.type === 'DELETED') {
        const old = this.#cache.get(key);
        this.#cache.delete(key);
        if (old !== undefined) this.#o.handler.remove(key, old);
      } else if (event.type === 'ADDED' || event.type === 'MODIFIED') {
        this.#cache.set(key, value);
        this.#o.handler.upsert(key, value);
      }
      this.#o.handler.refused(key, undefined);
      this.#o.handler.flush();
    }
    if (rv !== undefined) this.#resourceVersion = rv;
    return 'ok';
  }

  async #request(query: Record<string, string>): Promise<http.IncomingMessage> {
    const cluster = this.#o.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + this.#o.path);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const opts: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
    // Credentials per request (a projected token file is re-read), one keep-alive connection
    // pool per reflector: a list of many pages is not a TLS handshake per page.
    await this.#o.kubeConfig.applyToHTTPSOptions(opts);
    const lib = url.protocol === 'https:' ? https : http;
    if (lib === http) delete opts.agent;
    else {
      const shared = this.#o.tls ?? {};
      shared.secureContext ??= tls.createSecureContext({ ca: opts.ca, cert: opts.cert, key: opts.key });
      this.#o.tls = shared;
      this.#agent ??= new https.Agent({ keepAlive: true, maxSockets: 2, secureContext: shared.secureContext, ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}), ...(opts.servername ? { servername: opts.servername } : {}) });
      opts.agent = this.#agent;
    }
    return await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = lib.request(url, { ...opts, signal: this.#abort.signal }, (res) => {
        const status = res.statusCode ?? 0;
        if (status === 200) return resolve(res);
        readBody(res, this.#abort.signal).then(
          (body) => reject(new ApiError(`${this.#o.path}: HTTP ${status}${statusMessage(body)}`, status, retryAfter(res.headers['retry-after']))),
          reject,
        );
      });
      req.on('error', reject);
      req.end();
    });
  }
}

export function tooLarge(kind: string, size: number, limit: number): string {
  return `${kind} of ${describeSize(size)} is over the ${describeSize(limit)} an object may have (as in Kubernetes); refused, the version before it stays`;
}

function statusMessage(body: string): string {
  try {
    const status = JSON.parse(body) as { message?: string };
    return status.message ? `: ${status.message}` : '';
  } catch {
    return '';
  }
}

function retryAfter(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 60) * 1000 : undefined;
}

function keyOf(raw: unknown): string {
  const meta = (raw as { metadata?: { name?: unknown; namespace?: unknown } } | undefined)?.metadata;
  const name = typeof meta?.name === 'string' ? meta.name : '<unnamed>';
  return typeof meta?.namespace === 'string' ? `${meta.namespace}/${name}` : name;
}

/** `ns/name` of an event from the first bytes of its JSON (the rest was never read). */
function keyFromHead(head: string): string {
  const meta = head.indexOf('"metadata"');
  const from = meta < 0 ? head : head.slice(meta);
  const name = /"name"\s*:\s*"([^"]*)"/.exec(from)?.[1];
  const namespace = /"namespace"\s*:\s*"([^"]*)"/.exec(from)?.[1];
  if (name === undefined) return '<unknown>';
  return namespace === undefined ? name : `${namespace}/${name}`;
}

function readBody(res: http.IncomingMessage, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('response aborted')));
    if (signal.aborted) res.destroy();
  });
}

const HEAD_BYTES = 4096;

/** The first HEAD_BYTES of a line held in pieces, without joining the rest (a refused line is megabytes). */
function headOf(pieces: readonly Buffer[]): string {
  const taken: Buffer[] = [];
  let n = 0;
  for (const p of pieces) {
    if (n >= HEAD_BYTES) break;
    taken.push(p.subarray(0, HEAD_BYTES - n));
    n += Math.min(p.length, HEAD_BYTES - n);
  }
  return Buffer.concat(taken).toString('utf8');
}

/**
 * Cuts a watch stream into lines; a line longer than `maxLine` is skipped without being joined
 * or parsed (only its first bytes are kept, to name it). `line` returns false to stop reading.
 * Resolves when the stream ends, is stopped, or stays silent for `idleMs`.
 */
function readLines(
  res: http.IncomingMessage,
  maxLine: number,
  idleMs: number,
  signal: AbortSignal,
  on: { line: (text: string) => boolean; tooLong: (head: string, length: number) => void },
): Promise<void> {
  return new Promise((resolve, reject) => {
    let parts: Buffer[] = [];
    let length = 0;
    let skipping = false;
    let head = '';
    let finished = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      if (idle !== undefined) clearTimeout(idle);
      signal.removeEventListener('abort', abort);
      res.destroy();
      if (err) reject(err);
      else resolve();
    };
    const abort = (): void => finish();
    const arm = (): void => {
      if (idle !== undefined) clearTimeout(idle);
      idle = setTimeout(() => finish(new Error(`watch silent for ${idleMs} ms`)), idleMs);
      idle.unref();
    };
    signal.addEventListener('abort', abort, { once: true });
    arm();
    res.on('data', (chunk: Buffer) => {
      arm();
      let start = 0;
      while (start < chunk.length && !finished) {
        const nl = chunk.indexOf(10, start);
        const end = nl < 0 ? chunk.length : nl;
        const piece = chunk.subarray(start, end);
        if (!skipping) {
          if (length + piece.length > maxLine) {
            skipping = true;
            head = headOf([...parts, piece]);
            parts = [];
          } else {
            parts.push(piece);
          }
        }
        length += piece.length;
        if (nl < 0) break;
        // A whole line.
        if (skipping) on.tooLong(head, length);
        else if (length > 0) {
          const text = parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
          if (!on.line(text)) return finish();
        }
        parts = [];
        length = 0;
        skipping = false;
        head = '';
        start = nl + 1;
      }
    });
    res.on('end', () => finish());
    res.on('close', () => finish());
    res.on('error', (err) => finish(err));
  });
}

/**
 * Route status in Kubernetes mode: a waypoint writes `status.parents[]` of the HTTPRoutes and
 * GRPCRoutes attached to the Services it serves (parentRef, controllerName
 * `weft.dev/waypoint-controller`, Accepted and ResolvedRefs with reasons and observedGeneration)
 * through the `status` subresource, as Gateway API implementations do.
 *
 * - **One writer per route parent**: the waypoint the parent Service is bound to
 *   (`weft.dev/use-waypoint`), and of its replicas the ready pod with the lowest name (`podName`,
 *   the pod's POD_NAME); a process that does not know its pod name writes as if it were the only
 *   one. Entries of parents this waypoint does not serve, and of other controllers, are kept.
 * - **Only when it changes**: the desired parents (without lastTransitionTime) are compared with
 *   what was last written, and again with what the API server holds before a write; a condition
 *   keeps its lastTransitionTime while its status is unchanged (agent/l7 kubernetesRouteStatus).
 * - **Never older than what is there**: a route whose metadata.generation is newer than the one
 *   the model compiled is left for the next model update.
 * - **Rate-limited, conflict-tolerant, off the data path**: one write at a time, at least
 *   `minIntervalMs` apart; a merge patch carrying the resourceVersion read, so a 409 Conflict is
 *   re-read and retried at once (5 times); a 404 means the route is gone; other failures back
 *   off per route (1 s doubling to 60 s) and are logged once per change (WEFT_ERR_ROUTE_STATUS).
 *   Model updates only queue work.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { RouteStore } from '../l7/store.js';
import { kubernetesRouteStatus, ROUTE_CONTROLLER_NAME } from '../l7/status.js';
import type { RouteParentRef, RouteStatus } from '../l7/types.js';
import type { MeshModel } from './types.js';
import { GATEWAY_API_GROUP } from './waypoints.js';

export interface RouteStatusWriterOptions {
  kubeConfig: KubeConfig;
  /** `<namespace>/<name>` of the waypoint Gateway this process serves. */
  waypoint: string;
  /** This replica's pod name (POD_NAME): only the lowest-named ready pod writes. */
  podName?: string | undefined;
  logger: Logger;
  now?: () => Date;
  /** Least time between two writes of this process (default 100 ms: at most 10 writes/s). */
  minIntervalMs?: number;
  /** First retry delay after a failed write (default 1 s, doubling to 60 s). */
  retryInitialMs?: number;
}

const ROUTE_KINDS: Readonly<Record<string, string>> = { HTTPRoute: 'httproutes', GRPCRoute: 'grpcroutes' };
const MAX_RETRY_MS = 60_000;

interface Desired {
  kind: string;
  namespace: string;
  name: string;
  generation: number | undefined;
  /** The route's status restricted to the parents this waypoint serves. */
  status: RouteStatus;
  /** Keys of the parentRefs this waypoint serves (every other entry is kept). */
  mine: Set<string>;
  fingerprint: string;
}

interface StoredRoute {
  metadata?: { resourceVersion?: string; generation?: number };
  status?: { parents?: unknown[] };
}

export class RouteStatusWriter {
  readonly #o: RouteStatusWriterOptions;
  readonly #log: Logger;
  readonly #routes = new RouteStore();
  /** Desired status per `Kind ns/name`, from the last model. */
  #desired = new Map<string, Desired>();
  /** Fingerprint last written (or found in place) per route. */
  readonly #written = new Map<string, string>();
  readonly #queue = new Set<string>();
  readonly #retry = new Map<string, { attempt: number; at: number; logged: string }>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #stopped = false;
  #lastWriteAt = 0;
  #writes = 0;

  constructor(o: RouteStatusWriterOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'route-status' });
  }

  /** Writes done so far (tests, bench). */
  get writes(): number {
    return this.#writes;
  }

  /** A new model: recompute the statuses and queue the routes whose status changed. Cheap and synchronous. */
  update(model: MeshModel): void {
    if (this.#stopped) return;
    this.#routes.update(model);
    const leader = this.#isLeader(model);
    const desired = new Map<string, Desired>();
    if (leader) {
      for (const s of this.#routes.statuses()) {
        const d = this.#desiredOf(s, model);
        if (d !== undefined) desired.set(`${d.kind} ${d.namespace}/${d.name}`, d);
      }
    }
    this.#desired = desired;
    for (const key of [...this.#written.keys()]) if (!desired.has(key)) this.#written.delete(key);
    for (const [key, d] of desired) {
      if (this.#written.get(key) !== d.fingerprint) this.#queue.add(key);
    }
    this.#kick();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #isLeader(model: MeshModel): boolean {
    const own = this.#o.podName;
    if (own === undefined || own === '') return true;
    const pods = (model.waypoints.get(this.#o.waypoint)?.endpoints ?? []).map((e) => e.workload?.name).filter((n): n is string => n !== undefined).sort();
    return pods[0] === own;
  }

  #desiredOf(s: RouteStatus, model: MeshModel): Desired | undefined {
    if (s.kind === undefined || ROUTE_KINDS[s.kind] === undefined || s.namespace === undefined || s.name === undefined) return undefined;
    const parents = s.parents.filter((p) => p.mesh === true && p.parentRef !== undefined && this.#serves(p.parentRef, model));
    if (parents.length === 0) return undefined;
    const mine = new Set(parents.map((p) => parentKey(p.parentRef!)));
    const status: RouteStatus = { ...s, parents };
    const fingerprint = JSON.stringify([s.generation, parents.map((p) => [p.parentRef, p.conditions.map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration])])]);
    return { kind: s.kind, namespace: s.namespace, name: s.name, generation: s.generation, status, mine, fingerprint };
  }

  /** Whether the parent is a Service bound to this waypoint. */
  #serves(ref: RouteParentRef, model: MeshModel): boolean {
    if (ref.kind !== 'Service' || (ref.group !== '' && ref.group !== 'core')) return false;
    return model.services.get(`${ref.namespace}/${ref.name}`)?.waypoint === this.#o.waypoint;
  }

  #kick(): void {
    if (this.#running || this.#stopped || this.#queue.size === 0) return;
    const now = Date.now();
    let wait = Math.max(0, this.#lastWriteAt + (this.#o.minIntervalMs ?? 100) - now);
    // Only routes whose retry time has come.
    const due = [...this.#queue].filter((k) => (this.#retry.get(k)?.at ?? 0) <= now);
    if (due.length === 0) {
      const next = Math.min(...[...this.#queue].map((k) => this.#retry.get(k)?.at ?? now));
      wait = Math.max(wait, next - now);
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#runOne(), wait);
    this.#timer.unref();
  }

  async #runOne(): Promise<void> {
    if (this.#stopped || this.#running) return;
    const now = Date.now();
    const key = [...this.#queue].find((k) => (this.#retry.get(k)?.at ?? 0) <= now);
    if (key === undefined) return this.#kick();
    this.#queue.delete(key);
    const d = this.#desired.get(key);
    if (d === undefined) return this.#kick();
    this.#running = true;
    try {
      const result = await this.#write(d);
      this.#lastWriteAt = Date.now();
      if (result !== 'stale') this.#written.set(key, d.fingerprint);
      const r = this.#retry.get(key);
      if (r !== undefined && r.logged !== '') this.#log.info({ route: key }, 'route status written again');
      this.#retry.delete(key);
    } catch (err) {
      const message = (err as Error).message;
      const r = this.#retry.get(key) ?? { attempt: 0, at: 0, logged: '' };
      r.attempt++;
      const delay = Math.min((this.#o.retryInitialMs ?? 1000) * 2 ** (r.attempt - 1), MAX_RETRY_MS);
      r.at = Date.now() + delay;
      if (r.logged !== message) this.#log.warn({ route: key, code: 'WEFT_ERR_ROUTE_STATUS', err: message, retryInMs: delay }, 'writing the route status failed; retrying');
      r.logged = message;
      this.#retry.set(key, r);
      this.#queue.add(key);
    } finally {
      this.#running = false;
    }
    this.#kick();
  }

  /** GET, compare, PATCH status (re-read on 409). 'stale': the API holds a newer generation than the model. */
  async #write(d: Desired): Promise<'written' | 'unchanged' | 'gone' | 'stale'> {
    const path = `/apis/${GATEWAY_API_GROUP}/v1/namespaces/${encodeURIComponent(d.namespace)}/${ROUTE_KINDS[d.kind]}/${encodeURIComponent(d.name)}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      // The status subresource answers with the whole object; the waypoint's role may read it there
      // (get httproutes/status) without reading the routes themselves.
      const got = await kubeRequest(this.#o.kubeConfig, 'GET', `${path}/status`);
      if (got.status === 404) return 'gone';
      if (got.status !== 200) throw new Error(`GET ${path}/status: HTTP ${got.status}${statusMessage(got.body)}`);
      const current = JSON.parse(got.body) as StoredRoute;
      const generation = current.metadata?.generation;
      if (generation !== undefined && d.generation !== undefined && generation > d.generation) return 'stale';
      const previous = current.status?.parents ?? [];
      const computed = kubernetesRouteStatus(d.status, { parents: previous }, (this.#o.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z')).parents;
      // kubernetesRouteStatus replaces every entry of our controller: put back those of parents
      // another waypoint serves, in place of nothing.
      const kept = previous.filter((p) => {
        const ps = p as { controllerName?: unknown; parentRef?: RouteParentRef };
        return ps.controllerName === ROUTE_CONTROLLER_NAME && ps.parentRef !== undefined && !d.mine.has(parentKey(ps.parentRef));
      });
      const parents = [...computed, ...kept];
      if (JSON.stringify(parents) === JSON.stringify(previous)) return 'unchanged';
      const body = JSON.stringify({ metadata: { resourceVersion: current.metadata?.resourceVersion }, status: { parents } });
      const put = await kubeRequest(this.#o.kubeConfig, 'PATCH', `${path}/status`, body, 'application/merge-patch+json');
      if (put.status === 200) {
        this.#writes++;
        this.#log.debug({ route: `${d.kind} ${d.namespace}/${d.name}`, generation: d.generation }, 'route status written');
        return 'written';
      }
      if (put.status === 409) continue;
      if (put.status === 404) return 'gone';
      throw new Error(`PATCH ${path}/status: HTTP ${put.status}${statusMessage(put.body)}`);
    }
    throw new Error(`${d.kind} ${d.namespace}/${d.name} kept changing under the writer (5 conflicts in a row)`);
  }
}

function parentKey(p: RouteParentRef): string {
  return `${p.group ?? ''}/${p.kind ?? ''}/${p.namespace ?? ''}/${p.name}/${p.sectionName ?? ''}/${p.port ?? ''}`;
}

function statusMessage(body: string): string {
  try {
    const s = JSON.parse(body) as { message?: string };
    return s.message ? `: ${s.message}` : '';
  } catch {
    return '';
  }
}

/** One request with the kubeconfig's credentials (token files re-read per request). */
async function kubeRequest(kc: KubeConfig, method: string, path: string, body?: string, contentType?: string): Promise<{ status: number; body: string }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/$/, '') + path);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (contentType !== undefined) headers['content-type'] = contentType;
  const opts: https.RequestOptions = { method, headers };
  await kc.applyToHTTPSOptions(opts);
  const lib = url.protocol === 'https:' ? https : http;
  if (lib === http) delete opts.agent;
  return await new Promise((resolve, reject) => {
    const req = lib.request(url, { ...opts, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

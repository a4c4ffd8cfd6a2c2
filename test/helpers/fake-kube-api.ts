/**
 * A small Kubernetes API server for tests, on loopback: list (paged with limit/continue) and
 * watch (?watch=true, chunked JSON lines of {type, object}) for a few collection paths, with
 * resourceVersions, 410 Gone for a resourceVersion older than the last compaction, the
 * `spec.nodeName` field selector (= and !=), failures on demand (`failWith`), and the ability
 * to go down and come back. Enough of the real protocol for Weft's reflectors and
 * @kubernetes/client-node's informers; a test helper, not a Kubernetes API server.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface Event {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}

export class FakeKubeApi {
  #rv = 1;
  #compactedBelow = 0;
  readonly #collections = new Map<string, Map<string, Obj>>();
  readonly #events = new Map<string, Event[]>();
  readonly #watchers = new Map<string, Set<http.ServerResponse>>();
  #server: http.Server | undefined;
  #port = 0;
  /** Requests seen, for assertions ("GET /api/v1/pods?watch=true..."). */
  readonly requests: string[] = [];
  /** While set, every list and watch is answered with this status (and Retry-After, if given). */
  failWith: { status: number; retryAfterSeconds?: number } | undefined;
  /** Tokens the TokenReview endpoint accepts: token -> user (and its audiences). */
  readonly tokens = new Map<string, { username: string; audiences: string[]; extra?: Record<string, string[]> }>();

  constructor(paths: string[]) {
    for (const p of paths) {
      this.#collections.set(p, new Map());
      this.#events.set(p, []);
      this.#watchers.set(p, new Set());
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.#handle(req, res));
    server.listen(this.#port, '127.0.0.1');
    await once(server, 'listening');
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** The API server goes away: watches are cut, new connections refused. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const set of this.#watchers.values()) for (const res of set) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  upsert(path: string, object: Obj): void {
    const coll = this.#collections.get(path)!;
    const key = `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    const type = coll.has(key) ? 'MODIFIED' : 'ADDED';
    this.#record(path, key, type, object);
  }

  remove(path: string, namespace: string | undefined, name: string): void {
    const key = `${namespace ?? ''}/${name}`;
    const existing = this.#collections.get(path)!.get(key);
    if (existing) this.#record(path, key, 'DELETED', existing);
  }

  /** Forgets history: any watch from an older resourceVersion gets 410 Gone, and open watches are told so. */
  compact(): void {
    this.#compactedBelow = this.#rv;
    for (const [path, set] of this.#watchers) {
      for (const res of set) {
        res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' } }) + '\n');
      }
      set.clear();
      this.#events.set(path, []);
    }
  }

  #tokenReview(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { spec: { token: string; audiences?: string[] } };
      const known = this.tokens.get(body.spec.token);
      const wanted = body.spec.audiences ?? [];
      const ok = known !== undefined && wanted.every((a) => known.audiences.includes(a));
      const status = ok ? { authenticated: true, audiences: wanted, user: { username: known.username, extra: known.extra ?? {} } } : { authenticated: false, error: 'invalid bearer token' };
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: body.spec, status }));
    });
  }

  #record(path: string, key: string, type: Event['type'], object: Obj): void {
    const rv = ++this.#rv;
    const stored: Obj = { ...object, metadata: { ...object.metadata, resourceVersion: String(rv) } };
    if (type === 'DELETED') this.#collections.get(path)!.delete(key);
    else this.#collections.get(path)!.set(key, stored);
    const event: Event = { rv, type, object: stored };
    this.#events.get(path)!.push(event);
    for (const res of this.#watchers.get(path)!) {
      if (matchesField((res as WatchResponse).fieldSelector, stored)) res.write(JSON.stringify({ type, object: stored }) + '\n');
    }
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') {
      this.#tokenReview(req, res);
      return;
    }
    const podPath = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && podPath) {
      const pod = this.#collections.get('/api/v1/pods')?.get(`${podPath[1]}/${podPath[2]}`);
      res.writeHead(pod ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(pod ?? { kind: 'Status', code: 404 }));
      return;
    }
    const coll = this.#collections.get(url.pathname);
    if (!coll) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, message: `no such path ${url.pathname}` }));
      return;
    }
    if (this.failWith !== undefined) {
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
      if (this.failWith.retryAfterSeconds !== undefined) headers['retry-after'] = String(this.failWith.retryAfterSeconds);
      res.writeHead(this.failWith.status, headers).end(JSON.stringify({ kind: 'Status', code: this.failWith.status, message: 'failing on purpose' }));
      return;
    }
    const fieldSelector = url.searchParams.get('fieldSelector') ?? undefined;
    if (url.searchParams.get('watch') !== 'true') {
      // Paging: `continue` is the index of the next item of a snapshot taken by the first page.
      const all = [...coll.values()].filter((o) => matchesField(fieldSelector, o));
      const limit = Number(url.searchParams.get('limit') ?? '0');
      const from = Number(url.searchParams.get('continue') ?? '0');
      const items = limit > 0 ? all.slice(from, from + limit) : all.slice(from);
      const next = limit > 0 && from + limit < all.length ? String(from + limit) : undefined;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: String(this.#rv), ...(next ? { continue: next } : {}) }, items }));
      return;
    }
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // A watch answers at once with headers and then streams; clients wait for the headers.
    res.flushHeaders();
    if (from < this.#compactedBelow) {
      res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' } }) + '\n');
      return;
    }
    for (const e of this.#events.get(url.pathname)!) if (e.rv > from && matchesField(fieldSelector, e.object)) res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
    const set = this.#watchers.get(url.pathname)!;
    (res as WatchResponse).fieldSelector = fieldSelector;
    set.add(res);
    res.on('close', () => set.delete(res));
  }
}

type WatchResponse = http.ServerResponse & { fieldSelector?: string };

/** `spec.nodeName=x` / `spec.nodeName!=x` (the only field the agents select on). */
function matchesField(selector: string | undefined, o: Obj): boolean {
  if (selector === undefined || selector === '') return true;
  const m = /^spec\.nodeName(!=|==|=)(.*)$/.exec(selector);
  if (!m) return true;
  const node = ((o as { spec?: { nodeName?: string } }).spec?.nodeName) ?? '';
  return m[1] === '!=' ? node !== m[2] : node === m[2];
}

export const KUBE_PATHS = {
  namespaces: '/api/v1/namespaces',
  pods: '/api/v1/pods',
  services: '/api/v1/services',
  endpointSlices: '/apis/discovery.k8s.io/v1/endpointslices',
  authorizationPolicies: '/apis/weft.dev/v1alpha1/authorizationpolicies',
  peerAuthentications: '/apis/weft.dev/v1alpha1/peerauthentications',
} as const;

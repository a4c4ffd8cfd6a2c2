/**
 * The HTTP face: parses a request into (verb, group, version, resource, namespace, name,
 * subresource) as Kubernetes' RequestInfo does, authenticates, authorizes with RBAC, then runs
 * the verb from one table of handlers. Failures leave as metav1.Status with Kubernetes' codes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { API_AUDIENCE, type TokenAuthority, type UserInfo } from './auth.js';
import { apiGroupDocument, apiGroupList, apiResourceList, apiVersions, SERVER_VERSION } from './discovery.js';
import type { ObjectService, DeleteOptions } from './objects.js';
import { decodeProtobufObject, PROTOBUF_CONTENT_TYPE } from './protobuf.js';
import { openApiV3Document, openApiV3Root } from './openapi.js';
import { servePodLog, type PodLogResolver } from './pod-log.js';
import { portForward, proxyToPod, type PodNetworkResolver } from './pod-network.js';
import { jsonPatch, mergePatch, PATCH_TYPES, strategicMerge } from './patch.js';
import { forbidden, isAllowed, type RequestAttributes } from './rbac.js';
import { apiVersionOf, resourceKey, type ResourceRegistry, type ResourceType } from './resources.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import { StatusError, errors, successStatus } from './status.js';
import { compareKeys, objectKey, type Store } from './store.js';
import { table, tableRow, wantsTable } from './table.js';
import { clone, isJsonObject, type JsonObject, type JsonValue, type KubeObject } from './types.js';
import { serveWatch } from './watch.js';

/** Requests larger than this are refused (413), as Kubernetes' 3 MiB request limit. */
export const MAX_REQUEST_BYTES = 3 * 1024 * 1024;
const DEFAULT_WATCH_TIMEOUT_S = 1800;

export interface ListFault {
  status: 429 | 500 | 503;
  retryAfterSeconds?: number;
}

/** A subresource handled outside the object store (pods/portforward, pods/proxy). */
export type UpgradeHandler = (req: IncomingMessage, res: ServerResponse, target: { namespace: string; name: string; query: URLSearchParams; rest: string }) => void;

export interface HandlerContext {
  store: Store;
  registry: ResourceRegistry;
  objects: ObjectService;
  tokens: TokenAuthority;
  now: () => number;
  bookmarkIntervalMs: number;
  /** Faults for the next list requests (tests): consumed one per list. */
  listFaults: ListFault[];
  serverAddress: () => string;
  subresourceHandlers: Map<string, UpgradeHandler>;
  /** Open watches, to end them when the server goes down. */
  watches: Set<ServerResponse>;
  /** Which network namespace a pod has (for port-forward and proxy); set by the lab. */
  podNetwork: () => PodNetworkResolver | undefined;
  /** Which file holds a container's log (for pods/log); set by the lab. */
  podLogs: () => PodLogResolver | undefined;
}

interface ResourceRequest {
  type: ResourceType | undefined;
  virtual: ResourceType | undefined;
  namespace: string | undefined;
  name: string;
  subresource: string;
  rest: string;
  watchPrefix: boolean;
  /** pods/NAME:PORT/proxy: the port (a number or a container port's name). */
  proxyPort: string;
}

type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

function send(res: ServerResponse, code: number, body: JsonValue | KubeObject, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private', ...headers });
  res.end(text);
}

function sendStatus(res: ServerResponse, err: StatusError, headers: Record<string, string> = {}): void {
  send(res, err.code, err.toStatus(), headers);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_REQUEST_BYTES) throw new StatusError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${MAX_REQUEST_BYTES}`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function parseBody(raw: Buffer, contentType: string): JsonValue {
  if (contentType.startsWith(PROTOBUF_CONTENT_TYPE)) return decodeProtobufObject(raw);
  const text = raw.toString('utf8');
  try {
    return (contentType.includes('yaml') ? parseYaml(text) : JSON.parse(text)) as JsonValue;
  } catch (err) {
    throw errors.badRequest(`the request body could not be decoded: ${(err as Error).message}`);
  }
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw errors.badRequest(`invalid ${name}: ${v}`);
  return n;
}

function boolParam(q: URLSearchParams, name: string): boolean | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  return v === 'true' || v === '1' || v === '';
}

interface ContinueToken {
  rv: number;
  start: string;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 'weft.lab/v1', rv: t.rv, start: t.start })).toString('base64url');
}

function decodeContinue(s: string): ContinueToken {
  try {
    const o = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as { rv?: unknown; start?: unknown };
    if (typeof o.rv === 'number' && typeof o.start === 'string') return { rv: o.rv, start: o.start };
  } catch {
    // falls through to the 400
  }
  throw errors.badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}

export class ApiHandler {
  readonly #c: HandlerContext;

  constructor(context: HandlerContext) {
    this.#c = context;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.#handle(req, res);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof StatusError) sendStatus(res, err, err.details?.retryAfterSeconds !== undefined ? { 'Retry-After': String(err.details.retryAfterSeconds) } : {});
      else sendStatus(res, new StatusError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`));
    }
  }

  #authenticate(req: IncomingMessage): UserInfo {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (m === null) throw new StatusError(401, 'Unauthorized', 'Unauthorized');
    const result = this.#c.tokens.authenticate(m[1]!, [API_AUDIENCE]);
    if ('error' in result) throw new StatusError(401, 'Unauthorized', 'Unauthorized');
    return this.#impersonated(req, result.user);
  }

  /**
   * `kubectl --as U [--as-group G]`: the Impersonate-User/-Group headers, allowed by RBAC's
   * `impersonate` verb on users, groups or serviceaccounts (system:masters may), as Kubernetes'
   * impersonation filter does. Without it every `--as` request ran as the caller.
   */
  #impersonated(req: IncomingMessage, user: UserInfo): UserInfo {
    const as = req.headers['impersonate-user'];
    const groupHeader = req.headers['impersonate-group'];
    const groups = (Array.isArray(groupHeader) ? groupHeader : groupHeader === undefined ? [] : [groupHeader]).flatMap((g) => g.split(',')).map((g) => g.trim()).filter(Boolean);
    if (typeof as !== 'string' || as === '') {
      if (groups.length > 0) throw errors.badRequest('requested impersonation of groups without impersonating a user');
      return user;
    }
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(as);
    const check = (resource: string, name: string, namespace: string): void => {
      const attrs: RequestAttributes = { verb: 'impersonate', path: '', resource: { group: '', resource, subresource: '', name, namespace } };
      if (!isAllowed(this.#c.store, user, attrs)) throw forbidden(user, attrs);
    };
    if (sa) check('serviceaccounts', sa[2]!, sa[1]!);
    else check('users', as, '');
    for (const g of groups) check('groups', g, '');
    const implied = sa ? ['system:serviceaccounts', `system:serviceaccounts:${sa[1]}`] : [];
    return { username: as, uid: '', groups: [...new Set([...groups, ...implied, 'system:authenticated'])], extra: {} };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://x');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (path === '/healthz' || path === '/readyz' || path === '/livez') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    const user = this.#authenticate(req);
    const parsed = this.#parsePath(path);
    if (parsed === undefined) {
      const attrs: RequestAttributes = { verb: method.toLowerCase(), path };
      if (!isAllowed(this.#c.store, user, attrs)) throw forbidden(user, attrs);
      const doc = this.#nonResource(path);
      if (doc === undefined) throw errors.pathNotFound();
      send(res, 200, doc);
      return;
    }
    const q = url.searchParams;
    const verb = this.#verb(method, parsed, q);
    const t = parsed.type ?? parsed.virtual!;
    const attrs: RequestAttributes = {
      verb,
      path,
      resource: { group: t.group, resource: t.plural, subresource: parsed.subresource, name: parsed.name, namespace: parsed.namespace ?? '' },
    };
    if (!isAllowed(this.#c.store, user, attrs)) throw forbidden(user, attrs);
    if (parsed.virtual !== undefined) {
      if (verb !== 'create') throw errors.methodNotAllowed(`the server does not allow this method on the requested resource`);
      const body = parseBody(await readBody(req), req.headers['content-type'] ?? 'application/json');
      send(res, 201, this.#review(parsed.virtual, body, user));
      return;
    }
    const type = parsed.type!;
    if (parsed.subresource !== '' && parsed.subresource !== 'status') {
      await this.#subresource(req, res, type, parsed, verb);
      return;
    }
    const handler = VERB_HANDLERS[verb];
    await handler.call(this, req, res, type, parsed, q);
  }

  /** WebSocket upgrades: pods/portforward, authenticated and authorized (verb create, as 1.32 checks). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    try {
      const user = this.#authenticate(req);
      const url = new URL(req.url ?? '/', 'https://x');
      const p = this.#parsePath(url.pathname.replace(/\/+$/, ''));
      if (p?.type === undefined || resourceKey(p.type) !== '/pods' || p.subresource !== 'portforward') throw errors.pathNotFound();
      const attrs: RequestAttributes = { verb: 'create', path: url.pathname, resource: { group: '', resource: 'pods', subresource: 'portforward', name: p.name, namespace: p.namespace ?? '' } };
      if (!isAllowed(this.#c.store, user, attrs)) throw forbidden(user, attrs);
      const pod = this.#c.store.peek('/pods', p.namespace, p.name);
      if (pod === undefined) throw errors.notFound('', 'pods', p.name);
      portForward(this.#c.podNetwork(), pod, url.searchParams, req, socket, head);
    } catch (err) {
      const e = err instanceof StatusError ? err : new StatusError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
      const body = JSON.stringify(e.toStatus());
      socket.end(`HTTP/1.1 ${e.code} ${e.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
  }

  #nonResource(path: string): JsonValue | undefined {
    if (path === '/version') return SERVER_VERSION;
    if (path === '/api') return apiVersions(this.#c.serverAddress());
    if (path === '/apis') return apiGroupList(this.#c.registry);
    if (path === '/api/v1') return apiResourceList(this.#c.registry, 'v1');
    if (path === '/openapi/v3') return openApiV3Root(this.#c.registry);
    if (path.startsWith('/openapi/v3/')) return openApiV3Document(this.#c.registry, path.slice('/openapi/v3/'.length));
    const g = /^\/apis\/([^/]+)$/.exec(path);
    if (g) return apiGroupDocument(this.#c.registry, g[1]!);
    const gv = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (gv) return apiResourceList(this.#c.registry, `${gv[1]!}/${gv[2]!}`);
    return undefined;
  }

  /** RequestInfo: /api/v1/... and /apis/G/V/..., with the legacy /watch/ prefix. */
  #parsePath(path: string): ResourceRequest | undefined {
    const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
    let apiVersion: string;
    let rest: string[];
    if (parts[0] === 'api' && parts.length >= 3) {
      apiVersion = parts[1]!;
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 4) {
      apiVersion = `${parts[1]!}/${parts[2]!}`;
      rest = parts.slice(3);
    } else return undefined;
    let watchPrefix = false;
    if (rest[0] === 'watch') {
      watchPrefix = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) {
      namespace = rest[1]!;
      rest = rest.slice(2);
    }
    const plural = rest[0]!;
    const type = this.#c.registry.lookup(apiVersion, plural);
    const virtual = type === undefined ? this.#c.registry.lookupVirtual(apiVersion, plural) : undefined;
    if (type === undefined && virtual === undefined) throw errors.pathNotFound();
    const t = (type ?? virtual)!;
    if (t.namespaced && namespace === undefined && rest.length > 1) throw errors.pathNotFound();
    if (!t.namespaced && namespace !== undefined) throw errors.pathNotFound();
    let name = rest[1] ?? '';
    let proxyPort = '';
    if (rest[2] === 'proxy' && name.includes(':')) {
      // [scheme:]name[:port], as Kubernetes' proxy paths name their target.
      const parts = name.split(':');
      if (parts.length === 3 || (parts.length === 2 && (parts[0] === 'http' || parts[0] === 'https'))) parts.shift();
      name = parts[0]!;
      proxyPort = parts[1] ?? '';
    }
    return { type, virtual, namespace, name, subresource: rest[2] ?? '', rest: rest.slice(3).join('/'), watchPrefix, proxyPort };
  }

  #verb(method: string, p: ResourceRequest, q: URLSearchParams): Verb {
    switch (method) {
      case 'GET':
      case 'HEAD':
        if (p.watchPrefix || boolParam(q, 'watch') === true) return 'watch';
        return p.name === '' ? 'list' : 'get';
      case 'POST':
        return 'create';
      case 'PUT':
        return 'update';
      case 'PATCH':
        return 'patch';
      case 'DELETE':
        return p.name === '' ? 'deletecollection' : 'delete';
      default:
        throw errors.methodNotAllowed(`the server does not allow this method on the requested resource`);
    }
  }

  // --- verbs ------------------------------------------------------------------------------------

  async get(_req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest, _q: URLSearchParams, accept?: string): Promise<void> {
    const o = this.#c.objects.get(t, p.namespace, p.name);
    if (wantsTable(accept ?? _req.headers.accept)) {
      send(res, 200, table(t, [o], { resourceVersion: o.metadata.resourceVersion ?? '' }, this.#c.now()));
      return;
    }
    send(res, 200, o);
  }

  async list(req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest, q: URLSearchParams): Promise<void> {
    const fault = this.#c.listFaults.shift();
    if (fault !== undefined) {
      const retry = fault.retryAfterSeconds ?? 1;
      if (fault.status === 429) throw new StatusError(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: retry });
      if (fault.status === 503) throw new StatusError(503, 'ServiceUnavailable', 'The server is currently unable to handle the request (injected fault)', { retryAfterSeconds: retry });
      throw new StatusError(500, 'InternalError', 'Internal error occurred: injected fault');
    }
    const labels = parseLabelSelector(q.get('labelSelector') ?? undefined);
    const fields = parseFieldSelector(q.get('fieldSelector') ?? undefined, t);
    const limit = intParam(q, 'limit') ?? 0;
    const cont = q.get('continue');
    const store = this.#c.store;
    const key = resourceKey(t);
    let rv = store.resourceVersion;
    let start = '';
    let items: KubeObject[];
    if (cont !== null && cont !== '') {
      const token = decodeContinue(cont);
      rv = token.rv;
      start = token.start;
      items = store.itemsAt(key, rv, p.namespace);
    } else {
      const want = q.get('resourceVersion');
      if (want !== null && want !== '' && want !== '0' && q.get('resourceVersionMatch') === 'Exact') {
        rv = Number(want);
        if (!Number.isInteger(rv)) throw errors.badRequest(`invalid resource version: ${want}`);
        items = store.itemsAt(key, rv, p.namespace);
      } else items = store.items(key, p.namespace);
    }
    const out: KubeObject[] = [];
    let next = '';
    let remaining = 0;
    for (const o of items) {
      const k = objectKey(o.metadata.namespace, o.metadata.name ?? '');
      if (start !== '' && compareKeys(k, start) <= 0) continue;
      if (!matchesLabels(labels, o.metadata.labels) || !matchesFields(fields, o)) continue;
      if (limit > 0 && out.length >= limit) {
        remaining++;
        continue;
      }
      out.push({ ...clone(o), apiVersion: apiVersionOf(t) });
      if (limit > 0 && out.length === limit) next = k;
    }
    const metadata: JsonObject = { resourceVersion: String(rv) };
    if (remaining > 0) {
      metadata['continue'] = encodeContinue({ rv, start: next });
      if (labels.length === 0 && fields.length === 0) metadata['remainingItemCount'] = remaining;
    }
    if (wantsTable(req.headers.accept)) {
      send(res, 200, table(t, out, metadata, this.#c.now()));
      return;
    }
    send(res, 200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata, items: out as unknown as JsonValue[] });
  }

  async watch(req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest, q: URLSearchParams): Promise<void> {
    const labels = parseLabelSelector(q.get('labelSelector') ?? undefined);
    let fields = parseFieldSelector(q.get('fieldSelector') ?? undefined, t);
    if (p.name !== '') fields = [...fields, ...parseFieldSelector(`metadata.name=${p.name}`, t)];
    const asTable = wantsTable(req.headers.accept);
    const now = this.#c.now;
    const empty = table(t, [], {}, now());
    const timeout = intParam(q, 'timeoutSeconds') ?? DEFAULT_WATCH_TIMEOUT_S;
    this.#c.watches.add(res);
    serveWatch(
      this.#c.store,
      res,
      {
        type: t,
        namespace: p.namespace,
        labels,
        fields,
        resourceVersion: q.get('resourceVersion') ?? undefined,
        allowBookmarks: boolParam(q, 'allowWatchBookmarks') === true,
        sendInitialEvents: boolParam(q, 'sendInitialEvents'),
        timeoutSeconds: timeout,
        bookmarkIntervalMs: this.#c.bookmarkIntervalMs,
        encode: (o, first) => (asTable ? { ...empty, columnDefinitions: first ? empty['columnDefinitions']! : [], rows: [tableRow(t, o, now())] } : o),
      },
      () => this.#c.watches.delete(res),
    );
  }

  async create(req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest, q: URLSearchParams): Promise<void> {
    if (p.name !== '') throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
    const body = parseBody(await readBody(req), req.headers['content-type'] ?? 'application/json');
    send(res, 201, dryRun(q) ? body : this.#c.objects.create(t, p.namespace, body));
  }

  async update(req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest): Promise<void> {
    const body = parseBody(await readBody(req), req.headers['content-type'] ?? 'application/json');
    send(res, 200, this.#c.objects.update(t, p.namespace, p.name, body, p.subresource));
  }

  async patch(req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest, q: URLSearchParams): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const raw = await readBody(req);
    const patch = parseBody(raw, type);
    const objects = this.#c.objects;
    let current: KubeObject;
    try {
      current = objects.get(t, p.namespace, p.name);
    } catch (err) {
      // Server-side apply creates what does not exist yet.
      if (type === PATCH_TYPES.apply && err instanceof StatusError && err.code === 404) {
        send(res, 201, objects.create(t, p.namespace, patch));
        return;
      }
      throw err;
    }
    const base = clone(current) as unknown as JsonObject;
    let next: JsonValue;
    switch (type) {
      case PATCH_TYPES.merge:
        next = mergePatch(base, patch);
        break;
      case PATCH_TYPES.json:
        next = jsonPatch(base, patch);
        break;
      case PATCH_TYPES.strategic:
        if (t.crd !== undefined) throw new StatusError(415, 'UnsupportedMediaType', 'strategic merge patch is not supported for custom resources');
        next = strategicMerge(base, patch);
        break;
      case PATCH_TYPES.apply:
        next = strategicMerge(base, patch);
        break;
      default:
        throw errors.unsupportedMediaType(type);
    }
    if (!isJsonObject(next) || !isJsonObject(next['metadata'])) throw errors.badRequest('the patched object has no metadata');
    // A resourceVersion only counts as a precondition when the patch itself carries one.
    const patchRv = isJsonObject(patch) && isJsonObject(patch['metadata']) ? patch['metadata']['resourceVersion'] : undefined;
    if (patchRv === undefined) next['metadata']['resourceVersion'] = current.metadata.resourceVersion ?? '';
    if (dryRun(q)) {
      send(res, 200, next);
      return;
    }
    send(res, 200, objects.update(t, p.namespace, p.name, next, p.subresource));
  }

  async delete(req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest, q: URLSearchParams): Promise<void> {
    const opts = await deleteOptions(req, q);
    const { object, removed } = this.#c.objects.delete(t, p.namespace, p.name, opts);
    if (removed && t.plural !== 'pods') {
      send(res, 200, successStatus({ name: p.name, ...(t.group ? { group: t.group } : {}), kind: t.plural, ...({ uid: object.metadata.uid } as object) }));
      return;
    }
    send(res, 200, object);
  }

  async deletecollection(req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest, q: URLSearchParams): Promise<void> {
    const opts = await deleteOptions(req, q);
    const labels = parseLabelSelector(q.get('labelSelector') ?? undefined);
    const fields = parseFieldSelector(q.get('fieldSelector') ?? undefined, t);
    const deleted: KubeObject[] = [];
    for (const o of this.#c.store.items(resourceKey(t), p.namespace)) {
      if (!matchesLabels(labels, o.metadata.labels) || !matchesFields(fields, o)) continue;
      deleted.push(this.#c.objects.delete(t, o.metadata.namespace, o.metadata.name ?? '', opts).object);
    }
    send(res, 200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(this.#c.store.resourceVersion) }, items: deleted as unknown as JsonValue[] });
  }

  // --- subresources and reviews ---------------------------------------------------------------

  async #subresource(req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest, verb: Verb): Promise<void> {
    const key = `${resourceKey(t)}/${p.subresource}`;
    if (key === '/serviceaccounts/token' && verb === 'create') {
      const body = parseBody(await readBody(req), req.headers['content-type'] ?? 'application/json');
      send(res, 201, this.#tokenRequest(p.namespace ?? '', p.name, body));
      return;
    }
    if (key === '/pods/portforward') throw errors.badRequest('Upgrade request required');
    if (key === '/pods/log' && verb === 'get') {
      await servePodLog(this.#c.podLogs(), this.#c.objects.get(t, p.namespace, p.name), new URL(req.url ?? '/', 'https://x').searchParams, req, res);
      return;
    }
    const handler = this.#c.subresourceHandlers.get(key);
    if (key === '/pods/proxy' && handler === undefined) {
      const pod = this.#c.store.peek('/pods', p.namespace, p.name);
      if (pod === undefined) throw errors.notFound('', 'pods', p.name);
      const url = new URL(req.url ?? '/', 'https://x');
      proxyToPod(this.#c.podNetwork(), pod, containerPort(pod, p.proxyPort), p.rest, url.search, req, res);
      return;
    }
    if (handler !== undefined) {
      this.#c.objects.get(t, p.namespace, p.name);
      handler(req, res, { namespace: p.namespace ?? '', name: p.name, query: new URL(req.url ?? '/', 'https://x').searchParams, rest: p.rest });
      return;
    }
    throw errors.pathNotFound();
  }

  #tokenRequest(namespace: string, name: string, body: JsonValue): JsonObject {
    const sa = this.#c.store.peek('/serviceaccounts', namespace, name);
    if (sa === undefined) throw errors.notFound('', 'serviceaccounts', name);
    const spec = isJsonObject(body) && isJsonObject(body['spec']) ? body['spec'] : {};
    const audiences = Array.isArray(spec['audiences']) && spec['audiences'].length > 0 ? spec['audiences'].filter((a): a is string => typeof a === 'string') : [API_AUDIENCE];
    const seconds = typeof spec['expirationSeconds'] === 'number' ? spec['expirationSeconds'] : 3600;
    if (seconds < 600) throw errors.invalid('authentication.k8s.io', 'TokenRequest', name, [{ field: 'spec.expirationSeconds', message: `Invalid value: ${seconds}: may not specify a duration less than 10 minutes` }]);
    if (seconds > 2 ** 32) throw errors.invalid('authentication.k8s.io', 'TokenRequest', name, [{ field: 'spec.expirationSeconds', message: `Invalid value: ${seconds}: may not specify a duration larger than 2^32 seconds` }]);
    const ref = spec['boundObjectRef'];
    let pod: { name: string; uid: string } | undefined;
    let node: { name: string; uid: string } | undefined;
    if (isJsonObject(ref)) {
      if (ref['kind'] !== 'Pod') throw errors.badRequest(`cannot bind token to object of kind ${String(ref['kind'])}: only Pod is supported by this test double`);
      const podName = String(ref['name'] ?? '');
      const o = this.#c.store.peek('/pods', namespace, podName);
      if (o === undefined) throw errors.notFound('', 'pods', podName);
      if (typeof ref['uid'] === 'string' && ref['uid'] !== '' && ref['uid'] !== o.metadata.uid) {
        throw errors.conflict('', 'pods', podName, `the UID in the bound object reference (${ref['uid']}) does not match the UID in record. The object might have been deleted and then recreated`);
      }
      const podSpec = isJsonObject(o['spec']) ? o['spec'] : {};
      if (podSpec['serviceAccountName'] !== name) throw errors.badRequest(`cannot bind token for serviceaccount "${name}" to pod running with different serviceaccount name.`);
      pod = { name: podName, uid: o.metadata.uid ?? '' };
      if (typeof podSpec['nodeName'] === 'string' && podSpec['nodeName'] !== '') {
        const n = this.#c.store.peek('/nodes', undefined, podSpec['nodeName']);
        node = { name: podSpec['nodeName'], uid: n?.metadata.uid ?? '' };
      }
    }
    const expiresAt = this.#c.now() + seconds * 1000;
    const { token } = this.#c.tokens.issue({ namespace, serviceAccount: { name, uid: sa.metadata.uid ?? '' }, ...(pod ? { pod } : {}), ...(node ? { node } : {}), audiences, expiresAt });
    const outSpec: JsonObject = { audiences, expirationSeconds: seconds, boundObjectRef: isJsonObject(ref) ? clone(ref) : null };
    return {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace, creationTimestamp: null },
      spec: outSpec,
      status: { token, expirationTimestamp: new Date(Math.floor(expiresAt / 1000) * 1000).toISOString().replace('.000Z', 'Z') },
    };
  }

  #review(t: ResourceType, body: JsonValue, user: UserInfo): JsonObject {
    const spec = isJsonObject(body) && isJsonObject(body['spec']) ? body['spec'] : {};
    const head = { kind: t.kind, apiVersion: apiVersionOf(t), metadata: { creationTimestamp: null } };
    switch (t.plural) {
      case 'tokenreviews': {
        const audiences = Array.isArray(spec['audiences']) && spec['audiences'].length > 0 ? spec['audiences'].filter((a): a is string => typeof a === 'string') : [API_AUDIENCE];
        const r = this.#c.tokens.authenticate(typeof spec['token'] === 'string' ? spec['token'] : '', audiences);
        const status: JsonObject = 'error' in r ? { user: {}, error: r.error } : { authenticated: true, user: userJson(r.user), audiences: r.audiences };
        return { ...head, spec: clone(spec), status };
      }
      case 'selfsubjectreviews':
        return { ...head, status: { userInfo: userJson(user) } };
      case 'selfsubjectaccessreviews':
      case 'subjectaccessreviews': {
        const subject: UserInfo =
          t.plural === 'selfsubjectaccessreviews'
            ? user
            : {
                username: typeof spec['user'] === 'string' ? spec['user'] : '',
                uid: '',
                groups: Array.isArray(spec['groups']) ? spec['groups'].filter((g): g is string => typeof g === 'string') : [],
                extra: {},
              };
        const ra = isJsonObject(spec['resourceAttributes']) ? spec['resourceAttributes'] : undefined;
        const na = isJsonObject(spec['nonResourceAttributes']) ? spec['nonResourceAttributes'] : undefined;
        const s = (v: JsonValue | undefined): string => (typeof v === 'string' ? v : '');
        const attrs: RequestAttributes =
          ra !== undefined
            ? { verb: s(ra['verb']), path: '', resource: { group: s(ra['group']), resource: s(ra['resource']), subresource: s(ra['subresource']), name: s(ra['name']), namespace: s(ra['namespace']) } }
            : { verb: s(na?.['verb']), path: s(na?.['path']) };
        const allowed = isAllowed(this.#c.store, subject, attrs);
        return { ...head, spec: clone(spec), status: allowed ? { allowed: true, reason: 'RBAC: allowed' } : { allowed: false } };
      }
      default:
        throw errors.pathNotFound();
    }
  }
}

/** A proxy target port: a number, a container port's name, or 80 when none is given. */
function containerPort(pod: KubeObject, port: string): number {
  if (port === '') return 80;
  if (/^\d+$/.test(port)) return Number(port);
  const containers = isJsonObject(pod['spec']) ? pod['spec']['containers'] : undefined;
  for (const c of Array.isArray(containers) ? containers : []) {
    const ports = isJsonObject(c) ? c['ports'] : undefined;
    for (const cp of Array.isArray(ports) ? ports : []) if (isJsonObject(cp) && cp['name'] === port && typeof cp['containerPort'] === 'number') return cp['containerPort'];
  }
  throw errors.badRequest(`pod ${pod.metadata.name ?? ''} has no container port named "${port}"`);
}

function userJson(u: UserInfo): JsonObject {
  const o: JsonObject = { username: u.username, groups: u.groups };
  if (u.uid !== '') o['uid'] = u.uid;
  if (Object.keys(u.extra).length > 0) o['extra'] = u.extra;
  return o;
}

function dryRun(q: URLSearchParams): boolean {
  return q.getAll('dryRun').includes('All');
}

async function deleteOptions(req: IncomingMessage, q: URLSearchParams): Promise<DeleteOptions> {
  const raw = await readBody(req);
  const body = raw.length > 0 ? parseBody(raw, 'application/json') : {};
  const opts: DeleteOptions = {};
  const g = isJsonObject(body) && typeof body['gracePeriodSeconds'] === 'number' ? body['gracePeriodSeconds'] : intParam(q, 'gracePeriodSeconds');
  if (g !== undefined) opts.gracePeriodSeconds = g;
  const pre = isJsonObject(body) && isJsonObject(body['preconditions']) ? body['preconditions'] : undefined;
  if (pre !== undefined) {
    opts.preconditions = {};
    if (typeof pre['uid'] === 'string') opts.preconditions.uid = pre['uid'];
    if (typeof pre['resourceVersion'] === 'string') opts.preconditions.resourceVersion = pre['resourceVersion'];
  }
  return opts;
}

type VerbHandler = (this: ApiHandler, req: IncomingMessage, res: ServerResponse, t: ResourceType, p: ResourceRequest, q: URLSearchParams) => Promise<void>;

/** One handler per verb (subresource `status` goes through get/update/patch too). */
const VERB_HANDLERS: Record<Verb, VerbHandler> = {
  get: ApiHandler.prototype.get,
  list: ApiHandler.prototype.list,
  watch: ApiHandler.prototype.watch,
  create: ApiHandler.prototype.create,
  update: ApiHandler.prototype.update,
  patch: ApiHandler.prototype.patch,
  delete: ApiHandler.prototype.delete,
  deletecollection: ApiHandler.prototype.deletecollection,
};


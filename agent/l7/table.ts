/**
 * The RouteTable the waypoint asks once per request: the precompiled entries of the addressed
 * Service port (compile.ts), walked in precedence order; the first whose match holds decides.
 * plan() allocates only its result (and the parsed query when a match needs it); no regex is
 * compiled and no closure made per request.
 */
import { PATH_CHAR_PREFIX, PATH_EXACT, PATH_PREFIX, type CompiledBackend, type CompiledRule, type CompiledMatch, type CompiledRoutes, type CompiledStringMatch, type TableEntry } from './compile.js';
import { modifyPath, prefixMatches, redirectLocation } from './paths.js';
import type { BackendTarget, RequestPlan, RequestView, RouteRule, RouteStatus, RouteTable, RouteTimeouts } from './types.js';

type Mirror = { readonly backend: BackendTarget; readonly percent: number };

export const NO_ROUTE_MATCHED = 'no route matched';
const NO_TIMEOUTS: RouteTimeouts = Object.freeze({ requestMs: undefined, backendRequestMs: undefined });
const NO_MIRRORS: readonly never[] = Object.freeze([]);
const NOT_FOUND: RequestPlan = Object.freeze({ kind: 'reply', rule: undefined, statusCode: 404, responseFlag: 'NR', reason: NO_ROUTE_MATCHED });
/** The golden ratio's fraction: spreads one uniform draw into several (mirrors) that are each uniform. */
const PHI = 0.6180339887498949;
/** grpc-status UNAVAILABLE. */
export const GRPC_UNAVAILABLE = 14;

function headerValue(request: RequestView, name: string): string | undefined {
  const v: unknown = request.headers[name];
  // By type, not by presence: `constructor` or `__proto__` of a plain object is the prototype's.
  if (typeof v === 'string') return v;
  return Array.isArray(v) ? v.join(',') : undefined;
}

function stringMatch(m: CompiledStringMatch, value: string | undefined): boolean {
  if (value === undefined) return false;
  return m.exact !== undefined ? m.exact === value : m.regex!.test(value);
}

function decode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The query's parameters, first value of each name (the spec's recommendation), percent-decoded. */
export function parseQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === '') return out;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decode(eq === -1 ? part : part.slice(0, eq));
    if (!out.has(name)) out.set(name, decode(eq === -1 ? '' : part.slice(eq + 1)));
  }
  return out;
}

function isGrpc(request: RequestView): boolean {
  const ct = headerValue(request, 'content-type');
  return ct !== undefined && ct.startsWith('application/grpc');
}

export class CompiledRouteTable implements RouteTable {
  readonly #byFrontend: ReadonlyMap<string, readonly TableEntry[]>;
  readonly #direct: CompiledRoutes['direct'];
  readonly #statuses: readonly RouteStatus[];

  /** `statuses`: the store's (refused routes included); default the compiled ones. */
  constructor(compiled: CompiledRoutes, statuses: readonly RouteStatus[] = compiled.statuses) {
    this.#byFrontend = compiled.byFrontend;
    this.#direct = compiled.direct;
    this.#statuses = statuses;
  }

  /** Every route's status (RouteStore.statuses() of the update that made this table). */
  statuses(): readonly RouteStatus[] {
    return this.#statuses;
  }

  /** Whether any route applies to the Service port (else plan() forwards unchanged). */
  routed(service: string, port: number): boolean {
    return this.#byFrontend.has(`${service}:${port}`);
  }

  /** The rules that apply to a Service port, in precedence order (a match per entry). */
  rulesFor(service: string, port: number): readonly RouteRule[] {
    const out: RouteRule[] = [];
    for (const e of this.#byFrontend.get(`${service}:${port}`) ?? []) if (!out.includes(e.rule.model)) out.push(e.rule.model);
    return out;
  }

  plan(service: string, port: number, request: RequestView, random: number): RequestPlan {
    const entries = this.#byFrontend.get(`${service}:${port}`);
    if (entries === undefined) {
      const direct = this.#direct?.get(`${service}:${port}`);
      return {
        kind: 'forward',
        rule: direct?.rule,
        backend: direct?.backend ?? { service, port },
        method: request.method,
        pathAndQuery: request.query === '' ? request.path : `${request.path}?${request.query}`,
        authority: request.authority,
        requestHeaders: undefined,
        responseHeaders: undefined,
        mirrors: NO_MIRRORS,
        timeouts: NO_TIMEOUTS,
      };
    }
    let grpc: boolean | undefined;
    let query: Map<string, string> | undefined;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const m = e.match;
      if (m.grpcOnly && !(grpc ??= isGrpc(request))) continue;
      if (!pathMatches(m, request.path)) continue;
      if (m.method !== undefined && m.method !== request.method) continue;
      if (!headersMatch(m, request)) continue;
      if (m.query.length > 0) {
        query ??= parseQuery(request.query);
        if (!queryMatches(m, query)) continue;
      }
      return act(e, request, port, random);
    }
    return NOT_FOUND;
  }
}

function pathMatches(m: CompiledMatch, path: string): boolean {
  if (m.pathKind === PATH_EXACT) return path === m.pathValue;
  if (m.pathKind === PATH_PREFIX) return prefixMatches(m.pathValue, path);
  if (m.pathKind === PATH_CHAR_PREFIX) return path.startsWith(m.pathValue);
  return m.pathRegex!.test(path);
}

function headersMatch(m: CompiledMatch, request: RequestView): boolean {
  for (let i = 0; i < m.headers.length; i++) {
    const h = m.headers[i]!;
    if (!stringMatch(h, headerValue(request, h.name))) return false;
  }
  return true;
}

function queryMatches(m: CompiledMatch, query: Map<string, string>): boolean {
  for (let i = 0; i < m.query.length; i++) {
    const q = m.query[i]!;
    if (!stringMatch(q, query.get(q.name))) return false;
  }
  return true;
}

/** 500 NR for an HTTPRoute rule; gRPC UNAVAILABLE (14) for a GRPCRoute rule (the specs). */
function noBackend(rule: CompiledRule, reason: string): RequestPlan {
  return rule.grpc
    ? { kind: 'reply', rule: rule.model, statusCode: 500, responseFlag: 'NR', reason, grpcStatus: GRPC_UNAVAILABLE }
    : { kind: 'reply', rule: rule.model, statusCode: 500, responseFlag: 'NR', reason };
}

/** What the matched entry does with the request: redirect, a 500, or forward to a weighted backend. */
function act(e: TableEntry, request: RequestView, port: number, random: number): RequestPlan {
  const rule = e.rule;
  if (rule.unresolved !== undefined) return noBackend(rule, rule.unresolved);
  const prefix = e.match.pathKind === PATH_PREFIX ? e.match.pathValue : undefined;
  if (rule.redirect !== undefined) {
    const r = rule.redirect;
    const path = modifyPath(request.path, r.path, prefix);
    return { kind: 'redirect', rule: rule.model, statusCode: r.statusCode, location: redirectLocation(r, path, request.query, request.authority, port) };
  }
  if (rule.backends.length === 0) return noBackend(rule, 'the rule has no backendRefs');
  if (rule.totalWeight === 0) return noBackend(rule, 'every backendRef of the rule has weight 0');
  // Weighted choice; what is left of the draw inside the chosen bucket is again uniform and
  // independent of the choice: it decides the mirrors.
  // A draw outside [0, 1) (NaN included) counts as 0 rather than picking a weight-0 backend.
  let point = (random >= 0 && random < 1 ? random : 0) * rule.totalWeight;
  let chosen: CompiledBackend | undefined;
  let last: CompiledBackend | undefined;
  for (let i = 0; i < rule.backends.length; i++) {
    const b = rule.backends[i]!;
    if (b.weight === 0) continue;
    last = b;
    if (point < b.weight) {
      chosen = b;
      break;
    }
    point -= b.weight;
  }
  // Float rounding can leave the point just past the last bucket: it belongs to that one.
  if (chosen === undefined) {
    chosen = last!;
    point = 0;
  }
  if (chosen.invalid !== undefined) return noBackend(rule, chosen.invalid);
  const rest = chosen.weight > 0 ? Math.min(point / chosen.weight, 0.9999999999999999) : 0;
  let path = request.path;
  let authority = request.authority;
  for (let i = 0; i < chosen.rewrites.length; i++) {
    const rw = chosen.rewrites[i]!;
    if (rw.hostname !== undefined) authority = rw.hostname;
    path = modifyPath(path, rw.path, prefix);
  }
  let mirrors: readonly Mirror[] = NO_MIRRORS;
  if (chosen.mirrors.length > 0) {
    const fired: Mirror[] = [];
    for (let i = 0; i < chosen.mirrors.length; i++) {
      const m = chosen.mirrors[i]!;
      const u = (rest + i * PHI) % 1;
      if (u * 100 < m.percent) fired.push(m.fired);
    }
    if (fired.length > 0) mirrors = fired;
  }
  return {
    kind: 'forward',
    rule: rule.model,
    backend: chosen.target,
    method: request.method,
    pathAndQuery: request.query === '' ? path : `${path}?${request.query}`,
    authority,
    requestHeaders: chosen.requestHeaders,
    responseHeaders: chosen.responseHeaders,
    mirrors,
    timeouts: rule.timeouts,
  };
}

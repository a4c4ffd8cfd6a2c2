/**
 * Validated VirtualServices and DestinationRules + the discovery model -> the same compiled
 * entries (agent/l7/compile.ts TableEntry) the Gateway API routes become, per Service port, and
 * a RouteStatus per object. Istio's semantics, not Gateway API's:
 * - a VirtualService's `http` routes are first-match in their written order (no precedence sort);
 * - `hosts` name Services: a short name is in the VirtualService's namespace, `name.ns.svc` and
 *   `name.ns.svc.cluster.local` are that namespace's Service; the VirtualService applies to every
 *   port of the Service (a match's `port` narrows it);
 * - `gateways` without `mesh` are an ingress's (issue 13): kept in the status, not applied here;
 * - `uri.prefix` is character-wise (PathMatch CharPrefix), `rewrite.uri` replaces the matched
 *   characters (or the whole path after an exact or regex match);
 * - a destination's subset comes from the DestinationRule of its host (labels and the subset's
 *   trafficPolicy over the host's); an unknown subset leaves that destination unresolved (500 NR).
 * One Service port is routed by one API: a port an HTTPRoute/GRPCRoute holds is not the
 * VirtualService's (docs/architecture.md "Istio APIs"), and of two VirtualServices for one
 * host the oldest keeps it, as istiod does for sidecars.
 */
import { PATH_CHAR_PREFIX, PATH_EXACT, PATH_REGEX, type CompiledBackend, type CompiledMatch, type CompiledRoutes, type CompiledRule, type CompiledStringMatch, type RouteModel, type TableEntry } from '../compile.js';
import { composeHeaderModifiers } from '../paths.js';
import { anchoredRegex } from '../regex.js';
import type { BackendPolicy, BackendTarget, HeaderModifier, PathModifier, RouteCondition, RouteFault, RouteFilter, RouteMatch, RouteRetry, RouteRule, RouteStatus, StringMatch, WeightedBackend } from '../types.js';
import type { DestinationRule, IstioDestination, IstioHeaders, IstioHTTPRoute, IstioStringMatch, IstioTrafficPolicy, VirtualService } from './schema.js';
import { istioDurationMs } from './validate.js';
import { GRPC_HTTP_STATUS } from '../weft/fault.js';
import { GRPC_CODES } from '../weft/schema.js';

export const CLUSTER_DOMAIN = 'cluster.local';
export const MESH_GATEWAY = 'mesh';

export interface IstioCompiled {
  readonly byFrontend: ReadonlyMap<string, readonly TableEntry[]>;
  readonly statuses: readonly RouteStatus[];
  /** Service ports a Gateway API route and a VirtualService both want: the route keeps them (reported, never merged). */
  readonly conflicts: readonly RouteConflict[];
}

/** One Service port two APIs' routes want (WEFT_ERR_ROUTE_CONFLICT). */
export interface RouteConflict {
  /** `ns/name:port` */
  readonly frontend: string;
  /** `HTTPRoute ns/name` (or several, comma-separated): what routes the port. */
  readonly winner: string;
  /** `VirtualService ns/name`: left out on that port. */
  readonly loser: string;
}

interface ObjInfo {
  readonly namespace: string;
  readonly name: string;
  readonly created: string | undefined;
}

function info(o: VirtualService | DestinationRule, defaultNamespace: string): ObjInfo {
  return { namespace: o.metadata.namespace ?? defaultNamespace, name: o.metadata.name, created: o.metadata.creationTimestamp };
}

/** Oldest first (creationTimestamp; none last), then namespace/name: who keeps a contested host. */
function olderFirst(a: ObjInfo, b: ObjInfo): number {
  if (a.created !== b.created) {
    if (a.created === undefined) return 1;
    if (b.created === undefined) return -1;
    const d = Date.parse(a.created) - Date.parse(b.created);
    if (!Number.isNaN(d) && d !== 0) return d;
  }
  const ka = `${a.namespace}/${a.name}`;
  const kb = `${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** A host as Istio reads it in `namespace`: the Service key `ns/name`, or undefined when it names no Kubernetes Service. */
export function serviceKeyOf(host: string, namespace: string): string | undefined {
  if (!host.includes('.')) return `${namespace}/${host}`;
  const parts = host.split('.');
  const svcAt = parts.indexOf('svc');
  if (parts.length >= 3 && svcAt === 2 && (parts.length === 3 || parts.slice(3).join('.') === CLUSTER_DOMAIN)) return `${parts[1]}/${parts[0]}`;
  return undefined;
}

function cond(type: 'Accepted' | 'ResolvedRefs', ok: boolean, reason: string, message: string, generation: number | undefined): RouteCondition {
  return { type, status: ok ? 'True' : 'False', reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Istio StringMatch -> the model's (prefix as a regex) and its compiled form. */
function stringMatch(name: string, m: IstioStringMatch): { model: StringMatch; compiled: CompiledStringMatch } {
  if (m.exact !== undefined) return { model: { type: 'Exact', name, value: m.exact }, compiled: { name, exact: m.exact, regex: undefined } };
  const pattern = m.regex ?? `${escapeRegex(m.prefix ?? '')}.*`;
  return { model: { type: 'RegularExpression', name, value: pattern }, compiled: { name, exact: undefined, regex: anchoredRegex(pattern) } };
}

function caseless(re: RegExp): RegExp {
  return re.flags.includes('i') ? re : new RegExp(re.source, `${re.flags}i`);
}

interface Match {
  readonly model: RouteMatch;
  readonly compiled: CompiledMatch;
  readonly port: number | undefined;
}

function compileMatch(m: NonNullable<IstioHTTPRoute['match']>[number] | undefined): Match {
  const headers = Object.entries(m?.headers ?? {}).map(([k, v]) => stringMatch(k.toLowerCase(), v));
  const query = Object.entries(m?.queryParams ?? {}).map(([k, v]) => stringMatch(k, v));
  // validate.ts takes only an exact method.
  const method = m?.method?.exact?.toUpperCase();
  const uri = m?.uri;
  let pathKind = PATH_CHAR_PREFIX;
  let pathValue = '';
  let pathRegex: RegExp | undefined;
  let path: RouteMatch['path'] = { type: 'CharPrefix', value: '/' };
  if (uri?.exact !== undefined) {
    pathKind = PATH_EXACT;
    pathValue = uri.exact;
    path = { type: 'Exact', value: uri.exact };
  } else if (uri?.prefix !== undefined) {
    pathValue = uri.prefix;
    path = { type: 'CharPrefix', value: uri.prefix };
  } else if (uri?.regex !== undefined) {
    pathKind = PATH_REGEX;
    pathValue = uri.regex;
    pathRegex = anchoredRegex(uri.regex);
    path = { type: 'RegularExpression', value: uri.regex };
  }
  if (m?.ignoreUriCase === true && uri !== undefined) {
    // Case-insensitive: as a regex of the escaped value (exact, prefix) or the pattern, flag i.
    const source = uri.regex ?? (uri.exact !== undefined ? escapeRegex(uri.exact) : `${escapeRegex(uri.prefix ?? '')}.*`);
    pathRegex = caseless(anchoredRegex(source));
    pathKind = PATH_REGEX;
    path = { type: 'RegularExpression', value: `(?i)${source}` };
  }
  return {
    model: { path, headers: headers.map((h) => h.model), queryParams: query.map((q) => q.model), method },
    compiled: { pathKind, pathValue, pathRegex, headers: headers.map((h) => h.compiled), query: query.map((q) => q.compiled), method, grpcOnly: false },
    port: m?.port,
  };
}

function headerOps(h: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] } | undefined): HeaderModifier | undefined {
  if (h === undefined) return undefined;
  return {
    set: Object.entries(h.set ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
    add: Object.entries(h.add ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
    remove: (h.remove ?? []).map((n) => n.toLowerCase()),
  };
}

type PolicyFields = Pick<IstioTrafficPolicy, 'loadBalancer' | 'connectionPool' | 'outlierDetection'>;

/** A level's policy for one port: its portLevelSettings entry for the port replaces the level's fields, with no inheritance (Istio's GetPortLevelTrafficPolicy). */
function atPort(p: IstioTrafficPolicy | undefined, port: number): { fields: PolicyFields | undefined; portLevel: boolean } {
  if (p === undefined) return { fields: undefined, portLevel: false };
  const pl = p.portLevelSettings?.find((x) => x.port.number === port);
  if (pl === undefined) return { fields: p, portLevel: false };
  return { fields: { loadBalancer: pl.loadBalancer, connectionPool: pl.connectionPool, outlierDetection: pl.outlierDetection }, portLevel: true };
}

/**
 * Istio's MergeSubsetTrafficPolicy for a destination port: the host's policy at that port, then
 * each field the subset's policy (at that port) sets replaces the host's; a subset's port-level
 * entry replaces all of them (fields it leaves out fall back to the defaults, not to the host's).
 */
export function mergedTrafficPolicy(host: IstioTrafficPolicy | undefined, subset: IstioTrafficPolicy | undefined, port: number): PolicyFields | undefined {
  const h = atPort(host, port).fields;
  if (subset === undefined) return h;
  const s = atPort(subset, port);
  if (h === undefined) return s.fields;
  const pick = <K extends keyof PolicyFields>(k: K): PolicyFields[K] => (s.fields![k] !== undefined || s.portLevel ? s.fields![k] : h[k]);
  return { loadBalancer: pick('loadBalancer'), connectionPool: pick('connectionPool'), outlierDetection: pick('outlierDetection') };
}

/** A DestinationRule's policy for a destination port (and subset) as the engine reads it. */
function policyOf(base: IstioTrafficPolicy | undefined, over: IstioTrafficPolicy | undefined, port: number): BackendPolicy | undefined {
  const merged = mergedTrafficPolicy(base, over, port);
  const lb = merged?.loadBalancer;
  const cp = merged?.connectionPool;
  const od = merged?.outlierDetection;
  if (lb === undefined && cp === undefined && od === undefined) return undefined;
  const ms = (d: string | undefined) => (d === undefined ? undefined : istioDurationMs(d));
  return {
    ...(lb !== undefined ? { loadBalancer: lb.consistentHash !== undefined ? { consistentHash: { ...lb.consistentHash } } : { simple: (lb.simple ?? 'UNSPECIFIED') as 'UNSPECIFIED' } } : {}),
    ...(cp !== undefined
      ? {
          connectionPool: {
            maxConnections: cp.tcp?.maxConnections,
            connectTimeoutMs: ms(cp.tcp?.connectTimeout),
            http1MaxPendingRequests: cp.http?.http1MaxPendingRequests,
            http2MaxRequests: cp.http?.http2MaxRequests,
            maxRequestsPerConnection: cp.http?.maxRequestsPerConnection,
            maxRetries: cp.http?.maxRetries,
            idleTimeoutMs: ms(cp.http?.idleTimeout ?? cp.tcp?.idleTimeout),
          },
        }
      : {}),
    ...(od !== undefined
      ? {
          outlierDetection: {
            consecutive5xxErrors: od.consecutive5xxErrors,
            consecutiveGatewayErrors: od.consecutiveGatewayErrors,
            intervalMs: ms(od.interval),
            baseEjectionTimeMs: ms(od.baseEjectionTime),
            maxEjectionPercent: od.maxEjectionPercent,
            minHealthPercent: od.minHealthPercent,
          },
        }
      : {}),
  };
}

/** The DestinationRules by the Service key of their host: the oldest per host applies. */
export class DestinationRules {
  readonly byService = new Map<string, { rule: DestinationRule; info: ObjInfo }>();
  readonly statuses: RouteStatus[] = [];

  constructor(model: RouteModel, rules: readonly DestinationRule[], defaultNamespace: string) {
    const sorted = rules.map((r) => ({ rule: r, info: info(r, defaultNamespace) })).sort((a, b) => olderFirst(a.info, b.info));
    for (const { rule, info: i } of sorted) {
      const g = rule.metadata.generation;
      const key = serviceKeyOf(rule.spec.host, i.namespace);
      const parent = `Service ${key ?? rule.spec.host}`;
      let c: RouteCondition;
      if (key === undefined || !model.services.has(key)) c = cond('Accepted', false, 'NoMatchingParent', `host ${rule.spec.host}: no such Service`, g);
      else if (this.byService.has(key)) {
        const w = this.byService.get(key)!.info;
        c = cond('Accepted', false, 'Conflicted', `Service ${key} already has DestinationRule ${w.namespace}/${w.name} (the oldest applies)`, g);
      } else {
        this.byService.set(key, { rule, info: i });
        c = cond('Accepted', true, 'Accepted', `applies to Service ${key} (${(rule.spec.subsets ?? []).length} subsets)`, g);
      }
      this.statuses.push({ route: `DestinationRule ${i.namespace}/${i.name}`, kind: 'DestinationRule', namespace: i.namespace, name: i.name, ...(g !== undefined ? { generation: g } : {}), parents: [{ parent, mesh: true, conditions: [c] }] });
    }
  }

  /**
   * The host-level policy of a Service port (no subset): what Istio applies to every request to
   * the Service, whichever API routes it (an HTTPRoute's backendRef, or no route at all).
   */
  policyFor(service: string, port: number, subset?: string): BackendPolicy | undefined {
    // One object per (service, port, subset) and update: the engine keys its circuit-breaker state on it.
    const k = `${service}:${port}:${subset ?? ''}`;
    if (this.#policies.has(k)) return this.#policies.get(k);
    const dr = this.byService.get(service);
    const s = subset === undefined ? undefined : dr?.rule.spec.subsets?.find((x) => x.name === subset);
    const policy = dr === undefined ? undefined : policyOf(dr.rule.spec.trafficPolicy, s?.trafficPolicy, port);
    this.#policies.set(k, policy);
    return policy;
  }

  readonly #policies = new Map<string, BackendPolicy | undefined>();
}

interface Ctx {
  readonly model: RouteModel;
  readonly rules: DestinationRules;
  readonly vs: ObjInfo;
  /** The frontend being compiled: `ns/name` and port. */
  readonly service: string;
  readonly port: number;
  readonly problems: (readonly [string, string])[];
}

/** A destination -> a backend target, or why it cannot be used. */
function resolve(ctx: Ctx, d: IstioDestination): { target: BackendTarget; invalid: string | undefined } {
  const key = serviceKeyOf(d.host, ctx.vs.namespace);
  const placeholder = { service: key ?? d.host, port: d.port?.number ?? 0 };
  const fail = (reason: string, message: string) => {
    ctx.problems.push([reason, message]);
    return { target: placeholder, invalid: message };
  };
  if (key === undefined) return fail('BackendNotFound', `destination ${d.host}: not a Service of this cluster (name, name.ns.svc or name.ns.svc.${CLUSTER_DOMAIN})`);
  const svc = ctx.model.services.get(key);
  if (svc === undefined) return fail('BackendNotFound', `destination ${d.host}: Service ${key} not found`);
  let port = d.port?.number;
  if (port === undefined) {
    // Istio: the port may be left out when the Service has one; Weft also takes the addressed port when the Service has it.
    if (svc.ports.size === 1) port = [...svc.ports.keys()][0]!;
    else if (svc.ports.has(ctx.port)) port = ctx.port;
    else return fail('BackendNotFound', `destination ${d.host}: Service ${key} has several ports: set destination.port`);
  } else if (!svc.ports.has(port)) return fail('BackendNotFound', `destination ${d.host}: Service ${key} has no port ${port}`);
  const dr = ctx.rules.byService.get(key);
  let subset: BackendTarget['subset'];
  let policy = ctx.rules.policyFor(key, port);
  if (d.subset !== undefined) {
    const s = dr?.rule.spec.subsets?.find((x) => x.name === d.subset);
    if (s === undefined) {
      return fail('BackendNotFound', `destination ${d.host} subset ${d.subset}: ${dr === undefined ? `no DestinationRule for Service ${key}` : `DestinationRule ${dr.info.namespace}/${dr.info.name} has no subset ${d.subset}`}`);
    }
    subset = { name: s.name, labels: { ...(s.labels ?? {}) } };
    policy = ctx.rules.policyFor(key, port, s.name);
  }
  return { target: { service: key, port, ...(subset !== undefined ? { subset } : {}), ...(policy !== undefined ? { policy } : {}) }, invalid: undefined };
}

function percentOf(p: { value: number } | undefined, legacy: number | undefined, otherwise: number): number {
  return p?.value ?? legacy ?? otherwise;
}

/** Istio's default retry policy (retry.DefaultPolicy): what an http route without `retries` gets. */
export const ISTIO_DEFAULT_RETRY: RouteRetry = Object.freeze({
  attempts: 2,
  perTryTimeoutMs: undefined,
  retryOn: Object.freeze(['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']),
  statusCodes: Object.freeze([503]),
});

/**
 * Istio's retry.ConvertPolicy: no `retries`, the default policy; `attempts` 0 or unset (proto3's
 * 0), no retries; else the default with attempts, and `retryOn` (its numbers are status codes,
 * `retriable-status-codes` added for them), `perTryTimeout`, `backoff` when given.
 */
export function retryOf(r: IstioHTTPRoute['retries']): RouteRetry | undefined {
  if (r === undefined) return ISTIO_DEFAULT_RETRY;
  if (r.attempts === undefined || r.attempts <= 0) return undefined;
  let retryOn: readonly string[] = ISTIO_DEFAULT_RETRY.retryOn;
  let statusCodes: readonly number[] = ISTIO_DEFAULT_RETRY.statusCodes ?? [];
  if (r.retryOn !== undefined && r.retryOn.trim() !== '') {
    const parts = r.retryOn.split(',').map((x) => x.trim()).filter((x) => x !== '');
    const codes = parts.filter((x) => /^[0-9]{3}$/.test(x) && Number(x) >= 100 && Number(x) <= 599).map(Number);
    retryOn = parts.filter((x) => !codes.includes(Number(x)) || !/^[0-9]+$/.test(x));
    if (codes.length > 0 && !retryOn.includes('retriable-status-codes')) retryOn = [...retryOn, 'retriable-status-codes'];
    statusCodes = codes;
  }
  const backoff = r.backoff === undefined ? undefined : istioDurationMs(r.backoff);
  return {
    attempts: r.attempts,
    perTryTimeoutMs: r.perTryTimeout === undefined ? undefined : istioDurationMs(r.perTryTimeout),
    retryOn: [...retryOn],
    statusCodes: [...statusCodes],
    ...(backoff !== undefined && backoff > 0 ? { backoffBaseMs: backoff } : {}),
  };
}

function faultOf(f: IstioHTTPRoute['fault']): RouteFault | undefined {
  if (f === undefined) return undefined;
  return {
    // Istio: a fault without a percentage applies to no request (percentage unset) or to `percent` of them.
    ...(f.delay !== undefined ? { delay: { ms: istioDurationMs(f.delay.fixedDelay), percent: percentOf(f.delay.percentage, f.delay.percent, 0) } } : {}),
    ...(f.abort !== undefined
      ? {
          abort:
            f.abort.grpcStatus !== undefined
              ? { statusCode: GRPC_HTTP_STATUS, percent: percentOf(f.abort.percentage, f.abort.percent, 0), grpcStatus: GRPC_CODES[f.abort.grpcStatus]! }
              : { statusCode: f.abort.httpStatus!, percent: percentOf(f.abort.percentage, f.abort.percent, 0) },
        }
      : {}),
  };
}

/** The compiled rules of one http route for one frontend: one per match (a rewrite depends on the match). */
function compileHttp(ctx: Ctx, r: IstioHTTPRoute, index: number, name: string, generation: number | undefined): TableEntry[] {
  void generation;
  const matches = (r.match !== undefined && r.match.length > 0 ? r.match : [undefined]).map(compileMatch).filter((m) => m.port === undefined || m.port === ctx.port);
  if (matches.length === 0) return [];
  const reqHeaders = headerOps((r.headers as IstioHeaders | undefined)?.request);
  const resHeaders = headerOps((r.headers as IstioHeaders | undefined)?.response);
  const filters: RouteFilter[] = [];
  if (reqHeaders !== undefined) filters.push({ type: 'RequestHeaderModifier', modifier: reqHeaders });
  if (resHeaders !== undefined) filters.push({ type: 'ResponseHeaderModifier', modifier: resHeaders });
  let redirect: Extract<RouteFilter, { type: 'RequestRedirect' }> | undefined;
  if (r.redirect !== undefined) {
    const x = r.redirect;
    const scheme = x.scheme;
    // FROM_REQUEST_PORT: the port the client addressed (the Service port), even with a scheme.
    const port = x.port ?? (x.derivePort === 'FROM_PROTOCOL_DEFAULT' ? (scheme === 'https' ? 443 : 80) : x.derivePort === 'FROM_REQUEST_PORT' ? ctx.port : undefined);
    // The schema allows only 301, 302, 303, 307, 308.
    const statusCode = (x.redirectCode ?? 301) as 301;
    const made: Extract<RouteFilter, { type: 'RequestRedirect' }> = { type: 'RequestRedirect', scheme, hostname: x.authority, port, path: x.uri !== undefined ? { type: 'ReplaceFullPath', value: x.uri } : undefined, statusCode };
    redirect = made;
    filters.push(made);
  }
  const mirrors: { percent: number; fired: { backend: BackendTarget; percent: number } }[] = [];
  // `mirror` (+ mirrorPercentage, default 100) or `mirrors` (each with its percentage, default 100).
  const mirrorList = r.mirror !== undefined ? [{ destination: r.mirror, percent: percentOf(r.mirrorPercentage, r.mirrorPercent, 100) }] : (r.mirrors ?? []).map((m) => ({ destination: m.destination, percent: percentOf(m.percentage, undefined, 100) }));
  for (const { destination, percent } of mirrorList) {
    const m = resolve(ctx, destination);
    if (m.invalid !== undefined) continue;
    filters.push({ type: 'RequestMirror', backend: m.target, percent });
    mirrors.push({ percent, fired: Object.freeze({ backend: m.target, percent: 100 }) });
  }
  const timeoutMs = r.timeout === undefined ? undefined : istioDurationMs(r.timeout);
  const timeouts = { requestMs: timeoutMs === 0 ? undefined : timeoutMs, backendRequestMs: undefined };
  const retry = retryOf(r.retries);
  const fault = faultOf(r.fault);
  const dests = (r.route ?? []).map((d) => ({ d, resolved: resolve(ctx, d.destination) }));
  const backends: WeightedBackend[] = dests.map(({ d, resolved }) => {
    const own: RouteFilter[] = [];
    const rq = headerOps((d.headers as IstioHeaders | undefined)?.request);
    const rs = headerOps((d.headers as IstioHeaders | undefined)?.response);
    if (rq !== undefined) own.push({ type: 'RequestHeaderModifier', modifier: rq });
    if (rs !== undefined) own.push({ type: 'ResponseHeaderModifier', modifier: rs });
    // One destination without a weight takes all (Istio's 100).
    return { target: resolved.target, weight: d.weight ?? (dests.length === 1 ? 100 : 0), filters: own, ...(resolved.invalid !== undefined ? { invalid: resolved.invalid } : {}) };
  });
  const model: RouteRule = {
    name: `${name} http ${index}${r.name !== undefined ? ` (${r.name})` : ''}`,
    matches: matches.map((m) => m.model),
    filters,
    backends,
    timeouts,
    ...(retry !== undefined ? { retry } : {}),
    ...(fault !== undefined ? { fault } : {}),
  };
  return matches.map((m) => {
    let rewritePath: PathModifier | undefined;
    const rx = r.rewrite?.uriRegexRewrite;
    if (rx !== undefined) rewritePath = { type: 'RegexReplace', pattern: rx.match, substitution: rx.rewrite };
    else if (r.rewrite?.uri !== undefined) rewritePath = m.compiled.pathKind === PATH_CHAR_PREFIX ? { type: 'ReplaceCharPrefix', prefix: m.compiled.pathValue, value: r.rewrite.uri } : { type: 'ReplaceFullPath', value: r.rewrite.uri };
    const rewrites = r.rewrite !== undefined ? [{ hostname: r.rewrite.authority, path: rewritePath }] : [];
    const compiledBackends: CompiledBackend[] = backends.map((b) => ({
      model: b,
      target: b.target,
      weight: b.weight,
      invalid: b.invalid,
      requestHeaders: composeHeaderModifiers(reqHeaders, b.filters.find((f): f is Extract<RouteFilter, { type: 'RequestHeaderModifier' }> => f.type === 'RequestHeaderModifier')?.modifier),
      responseHeaders: composeHeaderModifiers(resHeaders, b.filters.find((f): f is Extract<RouteFilter, { type: 'ResponseHeaderModifier' }> => f.type === 'ResponseHeaderModifier')?.modifier),
      rewrites,
      mirrors,
    }));
    const rule: CompiledRule = {
      model,
      grpc: false,
      redirect,
      backends: compiledBackends,
      totalWeight: compiledBackends.reduce((s, b) => s + b.weight, 0),
      timeouts,
      origin: { kind: 'VirtualService', key: `${ctx.vs.namespace}/${ctx.vs.name}`, ruleName: r.name },
    };
    return { match: m.compiled, rule };
  });
}

/** Who holds a Gateway API frontend: the route names of its entries. */
function holders(entries: readonly TableEntry[]): string {
  const names = new Set<string>();
  for (const e of entries) names.add(e.rule.model.name.replace(/ rule \d+.*$/, ''));
  return [...names].join(', ');
}

/**
 * Compiles VirtualServices and DestinationRules. `gatewayApi`: the Gateway API routes' compiled
 * frontends (agent/l7/compile.ts), which the VirtualServices do not take from them.
 */
export function compileIstio(
  model: RouteModel,
  virtualServices: readonly VirtualService[],
  destinationRules: readonly DestinationRule[],
  gatewayApi: CompiledRoutes['byFrontend'],
  defaultNamespace = 'default',
  prebuilt?: DestinationRules,
): IstioCompiled {
  const rules = prebuilt ?? new DestinationRules(model, destinationRules, defaultNamespace);
  const conflicts: RouteConflict[] = [];
  const byFrontend = new Map<string, TableEntry[]>();
  const owner = new Map<string, ObjInfo>();
  const statuses: RouteStatus[] = [...rules.statuses];
  const sorted = virtualServices.map((v) => ({ v, info: info(v, defaultNamespace) })).sort((a, b) => olderFirst(a.info, b.info));
  for (const { v, info: i } of sorted) {
    const g = v.metadata.generation;
    const name = `VirtualService ${i.namespace}/${i.name}`;
    const gateways = v.spec.gateways ?? [MESH_GATEWAY];
    const forMesh = gateways.includes(MESH_GATEWAY);
    const others = gateways.filter((x) => x !== MESH_GATEWAY);
    const parents: RouteStatus['parents'][number][] = others.map((gw) => ({
      parent: `Gateway ${gw.includes('/') ? gw : `${i.namespace}/${gw}`}`,
      mesh: false,
      conditions: [cond('Accepted', false, 'NoMatchingParent', `gateway ${gw} is not the mesh: kept for an ingress (issue 13), not applied by waypoints`, g)],
    }));
    if (forMesh) {
      for (const host of v.spec.hosts ?? []) {
        const key = serviceKeyOf(host, i.namespace);
        const svc = key === undefined ? undefined : model.services.get(key);
        const parent = `Service ${key ?? host}`;
        if (key === undefined || svc === undefined) {
          parents.push({ parent, mesh: true, conditions: [cond('Accepted', false, 'NoMatchingParent', `host ${host}: no such Service`, g)] });
          continue;
        }
        const problems: (readonly [string, string])[] = [];
        const taken: string[] = [];
        const lost: string[] = [];
        for (const port of svc.ports.keys()) {
          const fk = `${key}:${port}`;
          const gw = gatewayApi.get(fk);
          if (gw !== undefined) {
            const winner = holders(gw);
            lost.push(`${fk} is routed by ${winner} (Gateway API routes win over VirtualServices: Istio's ambient API for waypoints is the Gateway API, VirtualService there is alpha and mixing the two is undefined in Istio)`);
            conflicts.push({ frontend: fk, winner, loser: name });
            continue;
          }
          const held = owner.get(fk);
          if (held !== undefined) {
            if (held !== i) lost.push(`${fk} is held by VirtualService ${held.namespace}/${held.name} (the oldest VirtualService for a host keeps it)`);
            continue;
          }
          const ctx: Ctx = { model, rules, vs: i, service: key, port, problems };
          const entries = (v.spec.http ?? []).flatMap((r, idx) => compileHttp(ctx, r, idx, name, g));
          byFrontend.set(fk, entries);
          owner.set(fk, i);
          taken.push(String(port));
        }
        const unique = [...new Map(problems.map((p) => [p[1], p])).values()];
        const resolvedRefs = unique.length === 0 ? cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved', g) : cond('ResolvedRefs', false, unique[0]![0], unique.map((p) => p[1]).join('; '), g);
        const accepted =
          taken.length === 0
            ? cond('Accepted', false, 'Conflicted', lost.join('; '), g)
            : cond('Accepted', true, 'Accepted', `applies to Service ${key} ports ${taken.join(', ')}${lost.length > 0 ? `; not on ${lost.join('; ')}` : ''}${'waypoint' in svc && svc.waypoint === undefined ? '; the Service has no waypoint, so the rules take effect once it has one' : ''}`, g);
        parents.push({ parent, mesh: true, conditions: [accepted, resolvedRefs] });
      }
    }
    statuses.push({ route: name, kind: 'VirtualService', namespace: i.namespace, name: i.name, ...(g !== undefined ? { generation: g } : {}), parents });
  }
  return { byFrontend, statuses, conflicts };
}

/**
 * Validated HTTPRoutes and GRPCRoutes + the discovery model -> a RouteTable (table.ts) and one
 * RouteStatus per route. Everything a request needs is computed here, once per model change:
 * matches with their regexes compiled, the rules of each Service port in precedence order,
 * the header modifiers of rule and backend composed, weights summed. plan() only compares.
 *
 * Attachment (GAMMA, GEP-1426): a route applies to a Service through a parentRef of kind
 * Service (group '' or core) in the route's own namespace (a producer route), on the parentRef's
 * port or, without one, on every port of the Service. It applies to requests addressed to the
 * Service (its VIP or name), never to a pod IP. Other parents are not the mesh's: ignored.
 */
import type { Service } from '../discovery/types.js';
import { parseDuration } from './duration.js';
import { composeHeaderModifiers, normalizePrefix } from './paths.js';
import { anchoredRegex } from './regex.js';
import {
  GATEWAY_GROUP,
  REFERENCE_GRANT_API_VERSIONS,
  type BackendObjectReferenceT,
  type GRPCRoute,
  type GRPCRouteMatchT,
  type HTTPHeaderFilterT,
  type HTTPRouteFilterT,
  type HTTPRouteMatchT,
  type HTTPRouteRetryT,
  type HTTPRouteRuleT,
  type ParentReferenceT,
  type ReferenceGrant,
  type RouteObject,
} from './schema.js';
import { httpFaultOf } from './weft/fault.js';
import { HTTP_FAULT_KIND, type HTTPFault } from './weft/schema.js';
import { isWeftTrafficKind, validateWeftTrafficObject } from './weft/validate.js';
import type {
  BackendPolicy,
  BackendTarget,
  HeaderModifier,
  PathModifier,
  RouteCondition,
  RouteFault,
  RouteFilter,
  RouteMatch,
  RouteParentRef,
  RouteRetry,
  RouteRule,
  RouteStatus,
  RouteTimeouts,
  StringMatch,
  WeightedBackend,
} from './types.js';

/** What compilation reads of the discovery model (MeshModel satisfies it). */
export interface RouteModel {
  readonly services: ReadonlyMap<string, Pick<Service, 'key' | 'ports'> & { readonly waypoint?: string | undefined }>;
  /** MeshModel.others: ReferenceGrants are read from here. */
  readonly others: readonly unknown[];
}

// ---------------------------------------------------------------------------------------------
// The compiled form plan() walks (internal to agent/l7).

export const PATH_EXACT = 0;
export const PATH_PREFIX = 1;
export const PATH_REGEX = 2;
/** Istio's `uri.prefix`: character-wise (agent/l7/istio). */
export const PATH_CHAR_PREFIX = 3;

export interface CompiledStringMatch {
  readonly name: string;
  readonly exact: string | undefined;
  readonly regex: RegExp | undefined;
}

export interface CompiledMatch {
  readonly pathKind: number;
  /** Exact: the path; PathPrefix: normalized (no trailing `/`); RegularExpression: the pattern. */
  readonly pathValue: string;
  readonly pathRegex: RegExp | undefined;
  readonly headers: readonly CompiledStringMatch[];
  readonly query: readonly CompiledStringMatch[];
  readonly method: string | undefined;
  /** GRPCRoute matches apply to gRPC requests only (content-type application/grpc...). */
  readonly grpcOnly: boolean;
}

export interface CompiledBackend {
  readonly model: WeightedBackend;
  readonly target: BackendTarget;
  readonly weight: number;
  readonly invalid: string | undefined;
  /** Rule's then backend's, composed. */
  readonly requestHeaders: HeaderModifier | undefined;
  readonly responseHeaders: HeaderModifier | undefined;
  /** URLRewrites in order (rule's, then backend's). */
  readonly rewrites: readonly { readonly hostname: string | undefined; readonly path: PathModifier | undefined }[];
  /** `fired`: what plan() lists when the mirror's draw succeeds (made once, percent 100). */
  readonly mirrors: readonly { readonly percent: number; readonly fired: { readonly backend: BackendTarget; readonly percent: number } }[];
}

export interface CompiledRule {
  readonly model: RouteRule;
  /** A GRPCRoute rule: its 500s are gRPC UNAVAILABLE. */
  readonly grpc: boolean;
  /**
   * Set when a filter of the rule names what does not exist (an ExtensionRef to a missing
   * HTTPFault): Gateway API says such a filter MUST NOT be skipped, the rule answers 500.
   */
  readonly unresolved?: string | undefined;
  /** The route and rule it came from (a LocalRateLimitPolicy's targetRefs name them). */
  readonly origin?: { readonly kind: string; readonly key: string; readonly ruleName: string | undefined } | undefined;
  readonly redirect: Extract<RouteFilter, { type: 'RequestRedirect' }> | undefined;
  readonly backends: readonly CompiledBackend[];
  readonly totalWeight: number;
  readonly timeouts: RouteTimeouts;
}

export interface TableEntry {
  readonly match: CompiledMatch;
  readonly rule: CompiledRule;
}

export interface CompiledRoutes {
  /** `<namespace>/<name>:<port>` -> entries in precedence order. */
  readonly byFrontend: ReadonlyMap<string, readonly TableEntry[]>;
  readonly statuses: readonly RouteStatus[];
  /**
   * Frontends no route holds that still carry something for the engine: the backend with its
   * DestinationRule policy, and a rule only for a LocalRateLimitPolicy on the Service (issue 12).
   */
  readonly direct?: ReadonlyMap<string, { readonly backend: BackendTarget; readonly rule: RouteRule | undefined }> | undefined;
}

/** What compileRoutes reads besides the routes (the store passes the last good of each). */
export interface CompileOptions {
  /** Valid HTTPFaults by `ns/name`; default: the valid ones in model.others. */
  readonly faults?: ReadonlyMap<string, HTTPFault> | undefined;
  /** The DestinationRule policy of a Service port (Istio applies it whatever routes the traffic). */
  readonly policyFor?: ((service: string, port: number) => BackendPolicy | undefined) | undefined;
}

/** The valid HTTPFaults of `others` by `ns/name`. */
export function faultsIn(others: readonly unknown[], defaultNamespace: string): Map<string, HTTPFault> {
  const out = new Map<string, HTTPFault>();
  for (const o of others) {
    const x = o as { kind?: unknown; apiVersion?: unknown } | null;
    if (x === null || typeof x !== 'object' || x.kind !== HTTP_FAULT_KIND || !isWeftTrafficKind(x.kind, x.apiVersion)) continue;
    const v = validateWeftTrafficObject(o);
    if (v.ok && v.value.kind === HTTP_FAULT_KIND) out.set(`${v.value.metadata.namespace ?? defaultNamespace}/${v.value.metadata.name}`, v.value);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

interface RouteInfo {
  readonly kind: 'HTTPRoute' | 'GRPCRoute';
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
  readonly created: string | undefined;
}

/** Precedence keys of one (route, rule, match), compared by compareRanked (HTTPRoute: -path kind, path length, method, headers, query; GRPCRoute: service length, method length, headers). */
interface Ranked {
  readonly entry: TableEntry;
  readonly k1: number;
  readonly k2: number;
  readonly k3: number;
  readonly k4: number;
  readonly k5: number;
  readonly route: RouteInfo;
  readonly ruleIndex: number;
  readonly matchIndex: number;
}

const DEFAULT_MATCH: HTTPRouteMatchT = { path: { type: 'PathPrefix', value: '/' } };

function isCoreGroup(group: string | undefined): boolean {
  return group === undefined || group === '' || group === 'core';
}

function lowerModifier(f: HTTPHeaderFilterT): HeaderModifier {
  return {
    set: (f.set ?? []).map((h) => [h.name.toLowerCase(), h.value] as const),
    add: (f.add ?? []).map((h) => [h.name.toLowerCase(), h.value] as const),
    remove: (f.remove ?? []).map((n) => n.toLowerCase()),
  };
}

function pathModifier(p: { type: string; replaceFullPath?: string; replacePrefixMatch?: string } | undefined): PathModifier | undefined {
  if (p === undefined) return undefined;
  return p.type === 'ReplaceFullPath' ? { type: 'ReplaceFullPath', value: p.replaceFullPath ?? '/' } : { type: 'ReplacePrefixMatch', value: p.replacePrefixMatch ?? '' };
}

function mirrorPercent(m: { percent?: number; fraction?: { numerator: number; denominator?: number } }): number {
  if (m.percent !== undefined) return m.percent;
  if (m.fraction !== undefined) return (m.fraction.numerator / (m.fraction.denominator ?? 100)) * 100;
  return 100;
}

function stringMatches(list: readonly { type?: 'Exact' | 'RegularExpression'; name: string; value: string }[] | undefined, lower: boolean): { model: StringMatch[]; compiled: CompiledStringMatch[] } {
  const model: StringMatch[] = [];
  const compiled: CompiledStringMatch[] = [];
  const seen = new Set<string>();
  for (const m of list ?? []) {
    const name = lower ? m.name.toLowerCase() : m.name;
    // The spec: only the first entry of an (equivalent) name counts, later ones are ignored.
    if (seen.has(name)) continue;
    seen.add(name);
    const type = m.type ?? 'Exact';
    model.push({ type, name, value: m.value });
    compiled.push({ name, exact: type === 'Exact' ? m.value : undefined, regex: type === 'RegularExpression' ? anchoredRegex(m.value) : undefined });
  }
  return { model, compiled };
}

function compileHttpMatch(m: HTTPRouteMatchT): { model: RouteMatch; compiled: CompiledMatch } {
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  const headers = stringMatches(m.headers, true);
  const query = stringMatches(m.queryParams, false);
  return {
    model: { path: { type, value }, headers: headers.model, queryParams: query.model, method: m.method },
    compiled: {
      pathKind: type === 'Exact' ? PATH_EXACT : type === 'PathPrefix' ? PATH_PREFIX : PATH_REGEX,
      pathValue: type === 'PathPrefix' ? normalizePrefix(value) : value,
      pathRegex: type === 'RegularExpression' ? anchoredRegex(value) : undefined,
      headers: headers.compiled,
      query: query.compiled,
      method: m.method,
      grpcOnly: false,
    },
  };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A GRPCMethodMatch as a path match on `/<service>/<method>`: Exact service and method -> Exact
 * path; service only -> PathPrefix `/<service>/`; method only or RegularExpression -> a regex.
 */
function compileGrpcMatch(m: GRPCRouteMatchT): { model: RouteMatch; compiled: CompiledMatch; serviceLen: number; methodLen: number } {
  const mm = m.method;
  let path: { type: 'Exact' | 'PathPrefix' | 'RegularExpression'; value: string } = { type: 'PathPrefix', value: '/' };
  if (mm !== undefined) {
    if ((mm.type ?? 'Exact') === 'Exact') {
      if (mm.service !== undefined && mm.method !== undefined) path = { type: 'Exact', value: `/${mm.service}/${mm.method}` };
      else if (mm.service !== undefined) path = { type: 'PathPrefix', value: `/${mm.service}/` };
      else path = { type: 'RegularExpression', value: `/[^/]+/${escapeRegex(mm.method!)}` };
    } else {
      path = { type: 'RegularExpression', value: `/(?:${mm.service ?? '[^/]+'})/(?:${mm.method ?? '[^/]+'})` };
    }
  }
  const http = compileHttpMatch({ path, ...(m.headers !== undefined ? { headers: m.headers } : {}) });
  return { model: http.model, compiled: { ...http.compiled, grpcOnly: true }, serviceLen: mm?.service?.length ?? 0, methodLen: mm?.method?.length ?? 0 };
}

/** Resolves backend references against the model; `problems` collects ResolvedRefs failures. */
class Resolver {
  readonly #model: RouteModel;
  readonly #grants: readonly ReferenceGrant[];
  readonly faults: ReadonlyMap<string, HTTPFault>;
  readonly policyFor: CompileOptions['policyFor'];
  constructor(model: RouteModel, options: CompileOptions, defaultNamespace: string) {
    this.#model = model;
    this.faults = options.faults ?? faultsIn(model.others, defaultNamespace);
    this.policyFor = options.policyFor;
    this.#grants = model.others.filter((o): o is ReferenceGrant => {
      const x = o as { kind?: unknown; apiVersion?: unknown } | null;
      return x !== null && typeof x === 'object' && x.kind === 'ReferenceGrant' && REFERENCE_GRANT_API_VERSIONS.includes(x.apiVersion as string);
    });
  }

  /** undefined when resolved, else [reason, message]. */
  check(route: RouteInfo, ref: BackendObjectReferenceT): readonly [string, string] | undefined {
    const ns = ref.namespace ?? route.namespace;
    const what = `backendRef ${ns}/${ref.name}`;
    if (!isCoreGroup(ref.group) || (ref.kind ?? 'Service') !== 'Service') {
      return ['InvalidKind', `${what}: kind ${ref.group ? `${ref.group}/` : ''}${ref.kind ?? 'Service'} is not supported (only core Service)`];
    }
    if (ns !== route.namespace && !this.#granted(route, ns, ref.name)) {
      return ['RefNotPermitted', `${what}: a reference to another namespace needs a ReferenceGrant in ${ns} from ${route.kind} in ${route.namespace}`];
    }
    const svc = this.#model.services.get(`${ns}/${ref.name}`);
    if (svc === undefined) return ['BackendNotFound', `${what}: Service not found`];
    if (ref.port !== undefined && !svc.ports.has(ref.port)) return ['BackendNotFound', `${what}: Service has no port ${ref.port}`];
    return undefined;
  }

  #granted(route: RouteInfo, ns: string, name: string): boolean {
    return this.#grants.some(
      (g) =>
        (g.metadata.namespace ?? 'default') === ns &&
        (g.spec?.from ?? []).some((f) => f.group === GATEWAY_GROUP && f.kind === route.kind && f.namespace === route.namespace) &&
        (g.spec?.to ?? []).some((t) => isCoreGroup(t.group) && t.kind === 'Service' && (t.name === undefined || t.name === '' || t.name === name)),
    );
  }
}

function target(route: RouteInfo, ref: BackendObjectReferenceT, policyFor?: CompileOptions['policyFor']): BackendTarget {
  const service = `${ref.namespace ?? route.namespace}/${ref.name}`;
  const port = ref.port ?? 0;
  const policy = policyFor?.(service, port);
  return policy === undefined ? { service, port } : { service, port, policy };
}

type AnyFilter = HTTPRouteFilterT;

/** Filters -> model filters; mirrors to unresolved backends are dropped (reported in ResolvedRefs). */
function compileFilters(route: RouteInfo, filters: readonly AnyFilter[] | undefined, resolver: Resolver, problems: (readonly [string, string])[]): RouteFilter[] {
  const out: RouteFilter[] = [];
  for (const f of filters ?? []) {
    switch (f.type) {
      case 'RequestHeaderModifier':
        out.push({ type: 'RequestHeaderModifier', modifier: lowerModifier(f.requestHeaderModifier!) });
        break;
      case 'ResponseHeaderModifier':
        out.push({ type: 'ResponseHeaderModifier', modifier: lowerModifier(f.responseHeaderModifier!) });
        break;
      case 'RequestRedirect': {
        const r = f.requestRedirect!;
        out.push({ type: 'RequestRedirect', scheme: r.scheme, hostname: r.hostname, port: r.port, path: pathModifier(r.path), statusCode: r.statusCode ?? 302 });
        break;
      }
      case 'URLRewrite':
        out.push({ type: 'URLRewrite', hostname: f.urlRewrite!.hostname, path: pathModifier(f.urlRewrite!.path) });
        break;
      case 'RequestMirror': {
        const m = f.requestMirror!;
        const problem = resolver.check(route, m.backendRef);
        if (problem !== undefined) problems.push(problem);
        else out.push({ type: 'RequestMirror', backend: target(route, m.backendRef), percent: mirrorPercent(m) });
        break;
      }
      default:
        break; // refused by validation
    }
  }
  return out;
}

function modifierOf(filters: readonly RouteFilter[], type: 'RequestHeaderModifier' | 'ResponseHeaderModifier'): HeaderModifier | undefined {
  for (const f of filters) if (f.type === type) return f.modifier;
  return undefined;
}

function compileBackend(
  route: RouteInfo,
  ref: BackendObjectReferenceT & { weight?: number; filters?: readonly AnyFilter[] },
  ruleFilters: readonly RouteFilter[],
  resolver: Resolver,
  problems: (readonly [string, string])[],
): CompiledBackend {
  const problem = resolver.check(route, ref);
  if (problem !== undefined) problems.push(problem);
  const filters = compileFilters(route, ref.filters, resolver, problems);
  const t = target(route, ref, resolver.policyFor);
  const weight = ref.weight ?? 1;
  const invalid = problem?.[1];
  const model: WeightedBackend = { target: t, weight, filters, ...(invalid !== undefined ? { invalid } : {}) };
  const rewrites: { hostname: string | undefined; path: PathModifier | undefined }[] = [];
  const mirrors: CompiledBackend['mirrors'][number][] = [];
  for (const f of [...ruleFilters, ...filters]) {
    if (f.type === 'URLRewrite') rewrites.push({ hostname: f.hostname, path: f.path });
    else if (f.type === 'RequestMirror') mirrors.push({ percent: f.percent, fired: Object.freeze({ backend: f.backend, percent: 100 }) });
  }
  return {
    model,
    target: t,
    weight,
    invalid,
    requestHeaders: composeHeaderModifiers(modifierOf(ruleFilters, 'RequestHeaderModifier'), modifierOf(filters, 'RequestHeaderModifier')),
    responseHeaders: composeHeaderModifiers(modifierOf(ruleFilters, 'ResponseHeaderModifier'), modifierOf(filters, 'ResponseHeaderModifier')),
    rewrites,
    mirrors,
  };
}

function timeoutsOf(t: { request?: string; backendRequest?: string } | undefined): RouteTimeouts {
  const ms = (d: string | undefined) => {
    const v = d === undefined ? undefined : parseDuration(d);
    return v === 0 ? undefined : v; // 0s: no timeout
  };
  return { requestMs: ms(t?.request), backendRequestMs: ms(t?.backendRequest) };
}

/** GEP-1731 leaves the count to the implementation when `attempts` is unset: Istio's default, 2. */
export const DEFAULT_RETRY_ATTEMPTS = 2;
/** GEP-1731: with a retry stanza, connection errors (disconnect, reset, timeout, TCP failure) SHOULD be retried. */
const CONNECTION_ERRORS: readonly string[] = ['connect-failure', 'refused-stream', 'reset'];

/**
 * A rule's GEP-1731 `retry`: `codes` are retried as retriable status codes, connection errors
 * always; `backoff` is the base interval; the per-try timeout is the rule's backendRequest timeout
 * (GEP-1731: an attempt that reaches it is cancelled and retried), the whole is bounded by request.
 */
function retryOf(r: HTTPRouteRetryT | undefined, timeouts: RouteTimeouts): RouteRetry | undefined {
  if (r === undefined) return undefined;
  const codes = [...new Set(r.codes ?? [])].sort((a, b) => a - b);
  const backoff = r.backoff === undefined ? undefined : parseDuration(r.backoff);
  return {
    attempts: r.attempts ?? DEFAULT_RETRY_ATTEMPTS,
    perTryTimeoutMs: timeouts.backendRequestMs,
    retryOn: codes.length > 0 ? [...CONNECTION_ERRORS, 'retriable-status-codes'] : [...CONNECTION_ERRORS],
    statusCodes: codes,
    ...(backoff !== undefined && backoff > 0 ? { backoffBaseMs: backoff } : {}),
  };
}

/** Reason of ResolvedRefs False for an ExtensionRef to a missing HTTPFault (Gateway API lets implementations add reasons). */
export const FILTER_NOT_FOUND = 'FilterNotFound';

/** The rule's HTTPFault (ExtensionRef), or why the rule answers 500 (the HTTPFault is missing). */
function faultOfRule(
  info: RouteInfo,
  filters: readonly AnyFilter[] | undefined,
  resolver: Resolver,
  grpc: boolean,
  problems: (readonly [string, string])[],
): { fault: RouteFault | undefined; unresolved: string | undefined } {
  for (const f of filters ?? []) {
    if (f.type !== 'ExtensionRef' || f.extensionRef === undefined) continue;
    const key = `${info.namespace}/${f.extensionRef.name}`;
    const found = resolver.faults.get(key);
    if (found !== undefined) return { fault: httpFaultOf(found, key, grpc), unresolved: undefined };
    const message = `ExtensionRef ${HTTP_FAULT_KIND} ${key}: not found (or refused as invalid); the rule answers 500 until it exists`;
    problems.push([FILTER_NOT_FOUND, message]);
    return { fault: undefined, unresolved: message };
  }
  return { fault: undefined, unresolved: undefined };
}

function routeInfo(r: RouteObject, defaultNamespace: string): RouteInfo {
  const namespace = r.metadata.namespace ?? defaultNamespace;
  return { kind: r.kind, namespace, name: r.metadata.name, key: `${namespace}/${r.metadata.name}`, created: r.metadata.creationTimestamp };
}

function parentRefOf(p: ParentReferenceT, route: RouteInfo): RouteParentRef {
  return {
    group: p.group ?? GATEWAY_GROUP,
    kind: p.kind ?? 'Gateway',
    namespace: p.namespace ?? route.namespace,
    name: p.name,
    ...(p.sectionName !== undefined ? { sectionName: p.sectionName } : {}),
    ...(p.port !== undefined ? { port: p.port } : {}),
  };
}

function isServiceParent(p: ParentReferenceT): boolean {
  // Strictly the parentRef's group defaults to gateway.networking.k8s.io; a `kind: Service`
  // without a group is read as the core Service it can only mean (no CRD defaulting in the lab).
  return p.kind === 'Service' && (p.group === undefined || p.group === '' || p.group === 'core');
}

function cond(type: 'Accepted' | 'ResolvedRefs', ok: boolean, reason: string, message: string, generation: number | undefined): RouteCondition {
  return { type, status: ok ? 'True' : 'False', reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
}

/** Compiles one route: its rules (with precedence keys) per frontend, and its status. */
interface CompiledRouteStatus {
  readonly info: RouteInfo;
  readonly status: RouteStatus;
  /** Index in status.parents -> the frontends that parent attached the route to. */
  readonly attachments: ReadonlyMap<number, readonly string[]>;
}

function compileRoute(r: RouteObject, info: RouteInfo, model: RouteModel, resolver: Resolver, byFrontend: Map<string, Ranked[]>): CompiledRouteStatus {
  const attachments = new Map<number, string[]>();
  const generation = r.metadata.generation;
  const problems: (readonly [string, string])[] = [];
  const grpc = r.kind === 'GRPCRoute';
  const ranked: Omit<Ranked, 'route'>[] = [];
  const rules = r.spec.rules ?? [{}];
  rules.forEach((rawRule, ruleIndex) => {
    // A GRPCRoute rule has the same fields (matches aside), with fewer filter types.
    const rule = rawRule as HTTPRouteRuleT;
    const ruleFilters = compileFilters(info, rule.filters as AnyFilter[] | undefined, resolver, problems);
    const backends = (rule.backendRefs ?? []).map((b) => compileBackend(info, b as BackendObjectReferenceT & { weight?: number; filters?: AnyFilter[] }, ruleFilters, resolver, problems));
    const matches: { model: RouteMatch; compiled: CompiledMatch; serviceLen: number; methodLen: number }[] = grpc
      ? ((rawRule as NonNullable<GRPCRoute['spec']['rules']>[number]).matches ?? [{}]).map(compileGrpcMatch)
      : (rule.matches !== undefined && rule.matches.length > 0 ? rule.matches : [DEFAULT_MATCH]).map((m) => ({ ...compileHttpMatch(m), serviceLen: 0, methodLen: 0 }));
    const timeouts = timeoutsOf(grpc ? undefined : rule.timeouts);
    const retry = grpc ? undefined : retryOf(rule.retry, timeouts);
    const { fault, unresolved } = faultOfRule(info, rule.filters as AnyFilter[] | undefined, resolver, grpc, problems);
    const model: RouteRule = {
      name: `${info.kind} ${info.key} rule ${ruleIndex}${rule.name !== undefined ? ` (${rule.name})` : ''}`,
      matches: matches.map((m) => m.model),
      filters: ruleFilters,
      backends: backends.map((b) => b.model),
      timeouts,
      ...(retry !== undefined ? { retry } : {}),
      ...(fault !== undefined ? { fault } : {}),
    };
    const redirect = ruleFilters.find((f): f is Extract<RouteFilter, { type: 'RequestRedirect' }> => f.type === 'RequestRedirect');
    const compiledRule: CompiledRule = {
      model,
      grpc,
      redirect,
      backends,
      totalWeight: backends.reduce((s, b) => s + b.weight, 0),
      timeouts,
      ...(unresolved !== undefined ? { unresolved } : {}),
      origin: { kind: info.kind, key: info.key, ruleName: rule.name },
    };
    matches.forEach((m, matchIndex) => {
      const c = m.compiled;
      const entry: TableEntry = { match: c, rule: compiledRule };
      if (grpc) ranked.push({ entry, k1: m.serviceLen, k2: m.methodLen, k3: c.headers.length, k4: 0, k5: 0, ruleIndex, matchIndex });
      else ranked.push({ entry, k1: -c.pathKind, k2: c.pathValue.length, k3: c.method !== undefined ? 1 : 0, k4: c.headers.length, k5: c.query.length, ruleIndex, matchIndex });
    });
  });

  const resolved = problems.length === 0;
  const resolvedRefs = resolved
    ? cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved', generation)
    : cond('ResolvedRefs', false, problems[0]![0], problems.map((p) => p[1]).join('; '), generation);

  const parents: RouteStatus['parents'][number][] = [];
  for (const p of r.spec.parentRefs ?? []) {
    const parentRef = parentRefOf(p, info);
    const label = `${parentRef.kind} ${parentRef.namespace}/${parentRef.name}${p.port !== undefined ? `:${p.port}` : ''}`;
    if (!isServiceParent(p)) {
      parents.push({
        parent: label,
        parentRef,
        mesh: false,
        conditions: [cond('Accepted', false, 'NoMatchingParent', `not a mesh parent (${parentRef.group}/${parentRef.kind}): ignored by Weft's waypoints`, generation)],
      });
      continue;
    }
    const accepted = (ok: boolean, reason: string, message: string) => parents.push({ parent: label, parentRef, mesh: true, conditions: [cond('Accepted', ok, reason, message, generation), resolvedRefs] });
    const svcKey = `${parentRef.namespace}/${p.name}`;
    const svc = model.services.get(svcKey);
    if (parentRef.namespace !== info.namespace) {
      accepted(false, 'UnsupportedValue', `consumer routes (a parentRef to a Service in another namespace) are not supported: put the route in namespace ${parentRef.namespace}`);
    } else if (p.sectionName !== undefined) {
      accepted(false, 'UnsupportedValue', 'sectionName is not supported on a Service parent; use port');
    } else if (svc === undefined) {
      accepted(false, 'NoMatchingParent', `Service ${svcKey} not found`);
    } else if (p.port !== undefined && !svc.ports.has(p.port)) {
      accepted(false, 'NoMatchingParent', `Service ${svcKey} has no port ${p.port}`);
    } else {
      const ports = p.port !== undefined ? [p.port] : [...svc.ports.keys()];
      attachments.set(parents.length, ports.map((port) => `${svcKey}:${port}`));
      for (const port of ports) {
        const fk = `${svcKey}:${port}`;
        let list = byFrontend.get(fk);
        if (list === undefined) byFrontend.set(fk, (list = []));
        // The same route twice on one frontend (with and without port): its rules once.
        if (list.some((x) => x.route === info)) continue;
        for (const x of ranked) list.push({ ...x, route: info });
      }
      // Accepted either way (the route is fine); without a waypoint nothing applies it yet.
      const unbound = 'waypoint' in svc && svc.waypoint === undefined ? '; the Service has no waypoint (label weft.dev/use-waypoint), so the route takes effect once it has one' : '';
      accepted(true, 'Accepted', `attached to ${p.port !== undefined ? `port ${p.port}` : `every port (${ports.join(', ')})`} of Service ${svcKey}${unbound}`);
    }
  }
  return { info, attachments, status: { route: `${info.kind} ${info.key}`, kind: info.kind, namespace: info.namespace, name: info.name, ...(generation !== undefined ? { generation } : {}), parents } };
}

/** A route's status after the kind conflicts: a parent whose every frontend went to the other kind is not Accepted. */
function withConflicts(c: CompiledRouteStatus, lost: ReadonlyMap<string, RouteInfo> | undefined): RouteStatus {
  if (lost === undefined) return c.status;
  const parents = c.status.parents.map((p, i) => {
    const fks = c.attachments.get(i);
    if (fks === undefined) return p;
    const gone = fks.filter((fk) => lost.has(fk));
    if (gone.length === 0) return p;
    const why = gone.map((fk) => `${fk} is held by ${lost.get(fk)!.kind} ${lost.get(fk)!.key}`).join(', ');
    const note = `${why} (HTTPRoutes and GRPCRoutes do not share a Service port: the oldest route's kind keeps it)`;
    const conditions = p.conditions.map((x) => {
      if (x.type !== 'Accepted') return x;
      return gone.length === fks.length ? { ...x, status: 'False' as const, reason: 'Conflicted', message: note } : { ...x, message: `${x.message}; not on ${note}` };
    });
    return { ...p, conditions };
  });
  return { ...c.status, parents };
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The spec's precedence. HTTPRoute: Exact path, then PathPrefix by length, then
 * RegularExpression (the spec leaves regexes to the implementation: after every prefix, longer
 * patterns first, as Istio orders them), then a method match, then more header matches, then
 * more query matches. GRPCRoute: more characters in the service, then in the method, then more
 * header matches. Ties: the oldest route (creationTimestamp; routes without one last), then
 * namespace/name, then rule order, then match order. One Service port holds one kind of route
 * (resolveKindConflicts), so the two orders never meet.
 */
function compareRanked(a: Ranked, b: Ranked): number {
  if (a.k1 !== b.k1) return b.k1 - a.k1;
  if (a.k2 !== b.k2) return b.k2 - a.k2;
  if (a.k3 !== b.k3) return b.k3 - a.k3;
  if (a.k4 !== b.k4) return b.k4 - a.k4;
  if (a.k5 !== b.k5) return b.k5 - a.k5;
  if (a.route !== b.route) {
    const byRoute = compareRoutes(a.route, b.route);
    if (byRoute !== 0) return byRoute;
  }
  if (a.ruleIndex !== b.ruleIndex) return a.ruleIndex - b.ruleIndex;
  return a.matchIndex - b.matchIndex;
}

/** The spec's tie-break between routes: the oldest (creationTimestamp; none last), then namespace/name. */
function compareRoutes(a: RouteInfo, b: RouteInfo): number {
  const ca = a.created;
  const cb = b.created;
  if (ca !== cb) {
    if (ca === undefined) return 1;
    if (cb === undefined) return -1;
    const ta = Date.parse(ca);
    const tb = Date.parse(cb);
    if (!Number.isNaN(ta) && !Number.isNaN(tb) && ta !== tb) return ta - tb;
  }
  const byKey = cmpStr(a.key, b.key);
  return byKey !== 0 ? byKey : cmpStr(a.kind, b.kind);
}

/**
 * HTTPRoutes and GRPCRoutes are never merged (the GRPCRoute spec): on a Service port that
 * both kinds attach to, the kind of the oldest route (compareRoutes) keeps it and the routes of
 * the other kind are left out there. Returns, per losing route, the frontends it lost and to whom.
 */
function resolveKindConflicts(ranked: Map<string, Ranked[]>): Map<RouteInfo, Map<string, RouteInfo>> {
  const lost = new Map<RouteInfo, Map<string, RouteInfo>>();
  for (const [fk, list] of ranked) {
    let winner: RouteInfo | undefined;
    let mixed = false;
    for (const x of list) {
      if (winner !== undefined && x.route.kind !== winner.kind) mixed = true;
      if (winner === undefined || compareRoutes(x.route, winner) < 0) winner = x.route;
    }
    if (!mixed || winner === undefined) continue;
    const keep = list.filter((x) => x.route.kind === winner.kind);
    for (const x of list) {
      if (x.route.kind === winner.kind) continue;
      let m = lost.get(x.route);
      if (m === undefined) lost.set(x.route, (m = new Map()));
      m.set(fk, winner);
    }
    ranked.set(fk, keep);
  }
  return lost;
}

/**
 * Compiles validated routes (validate.ts) against the model. Routes of other kinds are not
 * expected here (store.ts filters them). `defaultNamespace` names objects without a namespace.
 */
export function compileRoutes(model: RouteModel, routes: readonly RouteObject[], defaultNamespace = 'default', options: CompileOptions = {}): CompiledRoutes {
  const resolver = new Resolver(model, options, defaultNamespace);
  const ranked = new Map<string, Ranked[]>();
  const compiled: CompiledRouteStatus[] = [];
  for (const r of routes) compiled.push(compileRoute(r, routeInfo(r, defaultNamespace), model, resolver, ranked));
  const lost = resolveKindConflicts(ranked);
  const statuses = compiled.map((c) => withConflicts(c, lost.get(c.info)));
  const byFrontend = new Map<string, readonly TableEntry[]>();
  for (const [k, list] of ranked) byFrontend.set(k, list.sort(compareRanked).map((x) => x.entry));
  statuses.sort((a, b) => cmpStr(a.route, b.route));
  return { byFrontend, statuses };
}

export type { RouteInfo };
export { isServiceParent, parentRefOf, routeInfo };

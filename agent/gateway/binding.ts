/**
 * HTTPRoutes bound to the listeners of an ingress Gateway (issue 13), and the RouteTable the
 * engine asks per request. agent/l7 compiles routes to Service parents (the mesh, GAMMA); a
 * Gateway parent is bound here, by the Gateway API's rules:
 *
 * - a parentRef names the Gateway (group gateway.networking.k8s.io, kind Gateway, namespace
 *   default the route's), optionally one listener (`sectionName`) or a port (`port`);
 * - a listener admits the route's namespace by `allowedRoutes.namespaces` (Same: the Gateway's,
 *   All, Selector: namespaces whose labels match), else NotAllowedByListeners;
 * - the route's hostnames are intersected with the listener's (exact, `*.suffix` wildcards), no
 *   intersection: NoMatchingListenerHostname.
 *
 * Each (listener, hostname) is one virtual host, as Envoy has them: a request is given to the
 * listener of its port whose hostname matches its Host most specifically, then to the virtual
 * host that does, then to the rules of the routes on it in the spec's precedence. The routes are
 * compiled by agent/l7 (validation, matches, filters, backends, ReferenceGrants) with a stand-in
 * Service parent per route; this module only merges their entries per virtual host.
 */
import { compileRoutes, CompiledRouteTable, hostOf, GATEWAY_GROUP, NO_ROUTE_MATCHED, validateRouteObject, type RouteCondition, type RouteParentRef, type RouteStatus, type RouteTable, type RequestPlan, type RequestView } from '../l7/index.js';
import type { TableEntry } from '../l7/compile.js';
import type { HTTPRoute, RouteObject } from '../l7/schema.js';
import type { PolicyFieldError } from '../../policy/errors.js';
import type { MeshModel } from '../discovery/types.js';
import { hostnameMatches, mostSpecific, type GatewayConfig, type Listener } from './config.js';

export interface VirtualHost {
  /** Lower case; undefined: every hostname. */
  readonly hostname: string | undefined;
  readonly frontend: string;
}

export interface BoundListener {
  readonly listener: Listener;
  readonly vhosts: readonly VirtualHost[];
  /** Routes attached (the listener status' attachedRoutes). */
  readonly attachedRoutes: number;
}

export interface RefusedRoute {
  readonly route: string;
  readonly errors: readonly PolicyFieldError[];
}

export interface GatewayRoutes {
  /** plan(frontendOf(listener) for a TLS connection, portFrontendOf(port) for plain HTTP, port, ...). */
  readonly table: RouteTable;
  readonly listeners: ReadonlyMap<string, BoundListener>;
  readonly routes: readonly RouteStatus[];
  readonly refused: readonly RefusedRoute[];
}

/** The `service` the engine passes to plan() for a listener (the key of its stand-in Service). */
export function frontendOf(gateway: GatewayConfig, listener: Listener): string {
  return `${gateway.key}/${listener.name}`;
}

/** The `service` for a plain HTTP connection to `port`: the listener is chosen per request by its Host. */
export function portFrontendOf(gateway: GatewayConfig, port: number): string {
  return `${gateway.key}:${port}`;
}

/**
 * The hostnames a route gets on a listener (the spec's intersection); [] when none intersect.
 * `[undefined]`: every hostname (neither names one).
 */
export function intersectHostnames(listener: string | undefined, route: readonly string[]): (string | undefined)[] {
  const names = route.map((h) => h.toLowerCase());
  if (names.length === 0) return [listener];
  if (listener === undefined) return names;
  const out = new Set<string>();
  for (const h of names) {
    if (h === listener || (listener.startsWith('*.') && covers(listener, h))) out.add(h);
    else if (h.startsWith('*.') && covers(h, listener)) out.add(listener);
  }
  return [...out];
}

/** Whether wildcard `wild` (`*.a.com`) matches every name `name` (exact or wildcard) stands for. */
function covers(wild: string, name: string): boolean {
  return name.startsWith('*.') ? name.endsWith(wild.slice(1)) : hostnameMatches(wild, name);
}

function cond(type: RouteCondition['type'], ok: boolean, reason: string, message: string, generation: number | undefined): RouteCondition {
  return { type, status: ok ? 'True' : 'False', reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
}

function labelsMatch(want: Readonly<Record<string, string>>, have: Readonly<Record<string, string>> | undefined): boolean {
  for (const k in want) if (have?.[k] !== want[k]) return false;
  return true;
}

function admits(gateway: GatewayConfig, l: Listener, routeNamespace: string, model: Pick<MeshModel, 'namespaces'>): boolean {
  const a = l.allowedRoutes;
  if (a.from === 'All') return true;
  if (a.from === 'Same') return routeNamespace === gateway.namespace;
  return labelsMatch(a.selector ?? {}, model.namespaces.get(routeNamespace)?.labels);
}

function isOurParent(p: { group?: string | undefined; kind?: string | undefined; namespace?: string | undefined; name: string }, routeNs: string, gateway: GatewayConfig): boolean {
  return (p.group ?? GATEWAY_GROUP) === GATEWAY_GROUP && (p.kind ?? 'Gateway') === 'Gateway' && (p.namespace ?? routeNs) === gateway.namespace && p.name === gateway.name;
}

/** The stand-in Service parent a route is compiled with (a name no Kubernetes Service can have). */
const STAND_IN_PORT = 1;
function standIn(route: { namespace: string; name: string }): string {
  return `${route.namespace}/~gateway~${route.name}`;
}

interface Binding {
  readonly route: HTTPRoute;
  readonly key: string;
  readonly listener: Listener;
  readonly hostnames: readonly (string | undefined)[];
}

/** Binds the model's HTTPRoutes to the Gateway's listeners and compiles them. */
export function bindRoutes(gateway: GatewayConfig, model: Pick<MeshModel, 'namespaces' | 'services' | 'others'>): GatewayRoutes {
  const bindings: Binding[] = [];
  const statuses: RouteStatus[] = [];
  const refused: RefusedRoute[] = [];
  const ours: { route: HTTPRoute; key: string; parents: { parent: string; parentRef: RouteParentRef; accepted: RouteCondition }[] }[] = [];
  for (const obj of model.others) {
    const o = obj as { kind?: unknown; spec?: { parentRefs?: unknown } } | null;
    if (o?.kind !== 'HTTPRoute') continue;
    const v = validateRouteObject(obj);
    const md = (obj as { metadata?: { namespace?: unknown; name?: unknown } }).metadata;
    const ns = typeof md?.namespace === 'string' ? md.namespace : 'default';
    if (!v.ok) {
      const refs = Array.isArray(o.spec?.parentRefs) ? (o.spec.parentRefs as { name: string }[]) : [];
      if (refs.some((p) => isOurParent(p, ns, gateway))) refused.push({ route: `HTTPRoute ${ns}/${String(md?.name)}`, errors: v.errors });
      continue;
    }
    const route = v.value as HTTPRoute;
    const key = `${ns}/${route.metadata.name}`;
    const generation = route.metadata.generation;
    const parents: (typeof ours)[number]['parents'] = [];
    for (const p of route.spec.parentRefs ?? []) {
      if (!isOurParent(p, ns, gateway)) continue;
      const parentRef: RouteParentRef = { group: GATEWAY_GROUP, kind: 'Gateway', namespace: gateway.namespace, name: gateway.name, ...(p.sectionName !== undefined ? { sectionName: p.sectionName } : {}), ...(p.port !== undefined ? { port: p.port } : {}) };
      const label = `Gateway ${gateway.key}${p.sectionName !== undefined ? `/${p.sectionName}` : ''}${p.port !== undefined ? `:${p.port}` : ''}`;
      const candidates = gateway.listeners.filter((l) => (p.sectionName === undefined || l.name === p.sectionName) && (p.port === undefined || l.port === p.port));
      let accepted: RouteCondition;
      if (candidates.length === 0) {
        accepted = cond('Accepted', false, 'NoMatchingParent', `Gateway ${gateway.key} has no listener${p.sectionName !== undefined ? ` named ${p.sectionName}` : ''}${p.port !== undefined ? ` on port ${p.port}` : ''}`, generation);
      } else {
        const allowed = candidates.filter((l) => admits(gateway, l, ns, model));
        const attached: string[] = [];
        for (const l of allowed) {
          const hostnames = intersectHostnames(l.hostname, route.spec.hostnames ?? []);
          if (hostnames.length === 0) continue;
          attached.push(l.name);
          if (l.ready) bindings.push({ route, key, listener: l, hostnames });
        }
        if (allowed.length === 0) accepted = cond('Accepted', false, 'NotAllowedByListeners', `no listener (${candidates.map((l) => l.name).join(', ')}) admits routes from namespace ${ns} (allowedRoutes)`, generation);
        else if (attached.length === 0) accepted = cond('Accepted', false, 'NoMatchingListenerHostname', `no hostname of the route matches a listener's (${allowed.map((l) => `${l.name}: ${l.hostname ?? '*'}`).join(', ')})`, generation);
        else accepted = cond('Accepted', true, 'Accepted', `attached to listener${attached.length > 1 ? 's' : ''} ${attached.join(', ')}`, generation);
      }
      parents.push({ parent: label, parentRef, accepted });
    }
    if (parents.length > 0) ours.push({ route, key, parents });
  }

  // Compile each bound route once, with a stand-in Service parent; agent/l7 does the rest.
  const services = new Map(model.services as ReadonlyMap<string, { key: string; ports: ReadonlyMap<number, unknown> }>);
  const toCompile: RouteObject[] = [];
  for (const r of ours) {
    const ns = r.route.metadata.namespace ?? 'default';
    const s = standIn({ namespace: ns, name: r.route.metadata.name });
    services.set(s, { key: s, ports: new Map([[STAND_IN_PORT, []]]) });
    toCompile.push({ ...r.route, metadata: { ...r.route.metadata, namespace: ns }, spec: { ...r.route.spec, parentRefs: [{ group: '', kind: 'Service', name: s.slice(ns.length + 1), port: STAND_IN_PORT }] } });
  }
  const compiled = compileRoutes({ services: services as never, others: model.others }, toCompile);
  const resolvedOf = new Map<string, RouteCondition | undefined>();
  for (const st of compiled.statuses) resolvedOf.set(`${st.namespace}/${st.name}`, st.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs'));
  for (const r of ours) {
    const resolved = resolvedOf.get(r.key) ?? cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved', r.route.metadata.generation);
    statuses.push({ route: `HTTPRoute ${r.key}`, kind: 'HTTPRoute', namespace: r.route.metadata.namespace ?? 'default', name: r.route.metadata.name, ...(r.route.metadata.generation !== undefined ? { generation: r.route.metadata.generation } : {}), parents: r.parents.map((p) => ({ parent: p.parent, parentRef: p.parentRef, mesh: true, conditions: [p.accepted, resolved] })) });
  }

  // Virtual hosts: per listener and hostname, the entries of every route on it, in precedence.
  const byVhost = new Map<string, { hostname: string | undefined; listener: Listener; parts: { route: HTTPRoute; entries: readonly TableEntry[] }[] }>();
  for (const b of bindings) {
    const entries = compiled.byFrontend.get(`${standIn({ namespace: b.route.metadata.namespace ?? 'default', name: b.route.metadata.name })}:${STAND_IN_PORT}`) ?? [];
    for (const h of b.hostnames) {
      const fk = `${frontendOf(gateway, b.listener)}#${h ?? '*'}`;
      let v = byVhost.get(fk);
      if (v === undefined) byVhost.set(fk, (v = { hostname: h, listener: b.listener, parts: [] }));
      if (!v.parts.some((p) => p.route === b.route)) v.parts.push({ route: b.route, entries });
    }
  }
  const byFrontend = new Map<string, readonly TableEntry[]>();
  const vhostsOf = new Map<string, VirtualHost[]>();
  for (const [fk, v] of byVhost) {
    v.parts.sort((a, b) => compareRoutes(a.route, b.route));
    const merged = v.parts.flatMap((p) => p.entries);
    // Stable: equal keys keep route order (oldest first), then each route's own order.
    merged.sort(comparePrecedence);
    byFrontend.set(`${fk}:${v.listener.port}`, merged);
    let list = vhostsOf.get(v.listener.name);
    if (list === undefined) vhostsOf.set(v.listener.name, (list = []));
    list.push({ hostname: v.hostname, frontend: fk });
  }
  const listeners = new Map<string, BoundListener>();
  for (const l of gateway.listeners) {
    const attachedRoutes = new Set(bindings.filter((b) => b.listener === l).map((b) => b.key)).size;
    listeners.set(l.name, { listener: l, vhosts: vhostsOf.get(l.name) ?? [], attachedRoutes });
  }
  const inner = new CompiledRouteTable({ byFrontend, statuses: [] });
  const byListenerKey = new Map([...listeners.values()].map((b) => [frontendOf(gateway, b.listener), b]));
  const table: RouteTable = {
    plan(service: string, port: number, request: RequestView, random: number): RequestPlan {
      const host = hostOf(request.authority).toLowerCase();
      let bound = byListenerKey.get(service);
      if (bound !== undefined && !hostnameMatches(bound.listener.hostname, host)) {
        // A TLS connection belongs to the listener its SNI chose; a request for another host on it is misdirected (RFC 9110 15.5.20).
        return { kind: 'reply', rule: undefined, statusCode: 421, responseFlag: 'NR', reason: `${host} is not served on listener ${bound.listener.name} (${bound.listener.hostname ?? '*'}) that the TLS server name chose` };
      }
      if (bound === undefined && service === portFrontendOf(gateway, port)) {
        bound = mostSpecific(
          [...listeners.values()].filter((b) => b.listener.ready && b.listener.port === port).map((b) => ({ hostname: b.listener.hostname, b })),
          host,
        )?.b;
      }
      const vhost = bound === undefined ? undefined : mostSpecific(bound.vhosts, host);
      // Never the engine's "no route: to the addressed service" (the stand-in is no Service): 404.
      if (vhost === undefined || !inner.routed(vhost.frontend, port)) return { kind: 'reply', rule: undefined, statusCode: 404, responseFlag: 'NR', reason: NO_ROUTE_MATCHED };
      return inner.plan(vhost.frontend, port, request, random);
    },
  };
  statuses.sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
  return { table, listeners, routes: statuses, refused };
}

/** agent/l7's precedence (compile.ts compareRanked) on compiled matches, without the route tie-break. */
function comparePrecedence(a: TableEntry, b: TableEntry): number {
  const x = a.match;
  const y = b.match;
  if (x.pathKind !== y.pathKind) return x.pathKind - y.pathKind;
  if (x.pathValue.length !== y.pathValue.length) return y.pathValue.length - x.pathValue.length;
  const mx = x.method !== undefined ? 1 : 0;
  const my = y.method !== undefined ? 1 : 0;
  if (mx !== my) return my - mx;
  if (x.headers.length !== y.headers.length) return y.headers.length - x.headers.length;
  return y.query.length - x.query.length;
}

/** The spec's tie-break: the oldest route, then namespace/name. */
function compareRoutes(a: HTTPRoute, b: HTTPRoute): number {
  const ta = a.metadata.creationTimestamp === undefined ? Infinity : Date.parse(a.metadata.creationTimestamp);
  const tb = b.metadata.creationTimestamp === undefined ? Infinity : Date.parse(b.metadata.creationTimestamp);
  if (ta !== tb) return ta - tb;
  const ka = `${a.metadata.namespace ?? 'default'}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? 'default'}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

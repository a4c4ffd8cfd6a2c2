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
 * Each (listener, hostname) of a bound route is one virtual-host part (vhosts.ts merges them and
 * chooses per request). The routes are compiled by agent/l7 (validation, matches, filters,
 * backends, ReferenceGrants) with a stand-in Service parent per route (compileStandIns).
 */
import { compileRoutes, GATEWAY_GROUP, validateRouteObject, type RouteCondition, type RouteModel, type RouteParentRef, type RouteStatus } from '../l7/index.js';
import type { TableEntry } from '../l7/compile.js';
import type { HTTPRoute, RouteObject } from '../l7/schema.js';
import type { PolicyFieldError } from '../../policy/errors.js';
import type { MeshModel } from '../discovery/types.js';
import { hostnameMatches, type GatewayConfig, type Listener } from './config.js';
import type { VhostPart } from './vhosts.js';

export interface RefusedRoute {
  readonly route: string;
  readonly errors: readonly PolicyFieldError[];
}

export interface BoundRoutes {
  /** The routes' entries per (listener, hostname) of the Gateway. */
  readonly parts: readonly VhostPart[];
  /** Routes attached per listener name (the listener status' attachedRoutes). */
  readonly attached: ReadonlyMap<string, number>;
  readonly routes: readonly RouteStatus[];
  readonly refused: readonly RefusedRoute[];
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
export function bindRoutes(gateway: GatewayConfig, model: Pick<MeshModel, 'namespaces' | 'services' | 'others'>): BoundRoutes {
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
  const compiled = compileStandIns(model, ours.map((r) => r.route));
  for (const r of ours) {
    const resolved = compiled.resolved.get(r.key) ?? cond('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved', r.route.metadata.generation);
    statuses.push({ route: `HTTPRoute ${r.key}`, kind: 'HTTPRoute', namespace: r.route.metadata.namespace ?? 'default', name: r.route.metadata.name, ...(r.route.metadata.generation !== undefined ? { generation: r.route.metadata.generation } : {}), parents: r.parents.map((p) => ({ parent: p.parent, parentRef: p.parentRef, mesh: true, conditions: [p.accepted, resolved] })) });
  }
  const parts: VhostPart[] = [];
  for (const b of bindings) {
    const entries = compiled.entries.get(b.key) ?? [];
    for (const h of new Set(b.hostnames)) parts.push({ listener: b.listener.name, hostname: h, entries, tier: 0, order: routeOrder(b.route) });
  }
  const attached = new Map<string, number>();
  for (const l of gateway.listeners) attached.set(l.name, new Set(bindings.filter((b) => b.listener === l).map((b) => b.key)).size);
  statuses.sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
  return { parts, attached, routes: statuses, refused };
}

/** A route's place among routes of equal precedence: the oldest first, then namespace/name (the spec's tie-break). */
export function routeOrder(r: { metadata: { namespace?: string | undefined; name: string; creationTimestamp?: string | undefined } }): readonly [number, string] {
  const t = r.metadata.creationTimestamp === undefined ? NaN : Date.parse(r.metadata.creationTimestamp);
  return [Number.isNaN(t) ? Infinity : t, `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`];
}

export interface StandInCompiled {
  /** `<namespace>/<name>` of the route -> its entries. */
  readonly entries: ReadonlyMap<string, readonly TableEntry[]>;
  /** Its ResolvedRefs condition as agent/l7 found it. */
  readonly resolved: ReadonlyMap<string, RouteCondition | undefined>;
}

/**
 * Compiles HTTPRoutes (valid ones; their parentRefs are ignored) by agent/l7 as if each were
 * attached to a Service of its own (a stand-in whose name no Kubernetes Service can have), so
 * that matches, filters, backends and ReferenceGrants are agent/l7's. Ingress rules become such
 * HTTPRoutes too (ingress.ts).
 */
export function compileStandIns(model: Pick<MeshModel, 'services' | 'others'>, routes: readonly HTTPRoute[]): StandInCompiled {
  const services = new Map(model.services as ReadonlyMap<string, { key: string; ports: ReadonlyMap<number, unknown> }>);
  const toCompile: RouteObject[] = [];
  for (const r of routes) {
    const ns = r.metadata.namespace ?? 'default';
    const s = standIn({ namespace: ns, name: r.metadata.name });
    services.set(s, { key: s, ports: new Map([[STAND_IN_PORT, []]]) });
    toCompile.push({ ...r, metadata: { ...r.metadata, namespace: ns }, spec: { ...r.spec, parentRefs: [{ group: '', kind: 'Service', name: s.slice(ns.length + 1), port: STAND_IN_PORT }] } });
  }
  // The stand-ins are Services to agent/l7 only for this compilation (the model's map is not changed).
  const compiled = compileRoutes({ services: services as unknown as RouteModel['services'], others: model.others }, toCompile);
  const entries = new Map<string, readonly TableEntry[]>();
  const resolved = new Map<string, RouteCondition | undefined>();
  for (const r of routes) {
    const ns = r.metadata.namespace ?? 'default';
    entries.set(`${ns}/${r.metadata.name}`, compiled.byFrontend.get(`${standIn({ namespace: ns, name: r.metadata.name })}:${STAND_IN_PORT}`) ?? []);
  }
  for (const st of compiled.statuses) resolved.set(`${st.namespace}/${st.name}`, st.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs'));
  return { entries, resolved };
}

/**
 * The ingress gateway's RouteTable, built from the listeners and virtual-host parts of every
 * API it serves (Gateway API HTTPRoutes: binding.ts; Kubernetes Ingress: ingress.ts; Istio
 * Gateway + VirtualService: istio-gateway.ts). Each API compiles its routes into agent/l7's
 * TableEntry (the same compiled RouteRules the waypoint runs); this module only merges them per
 * virtual host and chooses the virtual host of a request, as Envoy's listener -> virtual host ->
 * route does:
 *
 * - a TLS connection belongs to the listener its SNI chose; a request for a Host that listener
 *   does not serve is misdirected (421, RFC 9110 15.5.20);
 * - a plain HTTP connection's listener is chosen per request: the port's listener whose hostname
 *   matches the Host most specifically;
 * - on the listener, the virtual host whose hostname matches most specifically; in it, the
 *   parts in tiers: Gateway API precedence (HTTPRoute and Ingress rules merged, route age
 *   breaking ties), then Istio's first match (VirtualServices oldest first, each in its written
 *   order), then fallbacks (an Ingress defaultBackend).
 *
 * Listeners of different APIs on one port: two plain HTTP listeners of the same hostname are one
 * (the later's parts go to the earlier, as Envoy merges virtual hosts); HTTPS listeners of the
 * same hostname, or HTTP next to HTTPS, conflict and the later is not served (mergeListeners).
 */
import { CompiledRouteTable, hostOf, NO_ROUTE_MATCHED, type RequestPlan, type RequestView, type RouteTable } from '../l7/index.js';
import type { TableEntry } from '../l7/compile.js';
import { hostnameMatches, specificity, type Condition, type Listener } from './config.js';

export interface VhostPart {
  /** The listener (its name in the merged list). */
  readonly listener: string;
  /** Lower case; undefined: every hostname. */
  readonly hostname: string | undefined;
  /** Ingress: a wildcard host matches exactly one label (`*.foo.com`: `bar.foo.com`, not `a.bar.foo.com`). */
  readonly oneLabel?: boolean | undefined;
  readonly entries: readonly TableEntry[];
  /** 0: Gateway API precedence (HTTPRoute, Ingress); 1: first match in order (Istio); 2: fallback (Ingress defaultBackend). */
  readonly tier: 0 | 1 | 2;
  /** Order of the parts of one tier: the source's age (ms; Infinity when unknown), then its key. */
  readonly order: readonly [number, string];
}

export interface VirtualHost {
  readonly hostname: string | undefined;
  readonly oneLabel: boolean;
  readonly frontend: string;
}

export interface GatewayTable {
  readonly table: RouteTable;
  /** Per listener name, its virtual hosts. */
  readonly vhosts: ReadonlyMap<string, readonly VirtualHost[]>;
}

/** The `service` the engine passes to plan() for a TLS connection of `listener`. */
export function frontendOf(gatewayKey: string, listener: string): string {
  return `${gatewayKey}/${listener}`;
}

/** The `service` for a plain HTTP connection to `port`: the listener is chosen per request by its Host. */
export function portFrontendOf(gatewayKey: string, port: number): string {
  return `${gatewayKey}:${port}`;
}

/** Whether a virtual host's hostname matches `host`. */
export function vhostMatches(v: { hostname: string | undefined; oneLabel?: boolean | undefined }, host: string): boolean {
  if (v.oneLabel === true && v.hostname?.startsWith('*.') === true) {
    const rest = host.slice(0, host.length - (v.hostname.length - 1));
    return host.endsWith(v.hostname.slice(1)) && rest.length > 0 && !rest.includes('.');
  }
  return hostnameMatches(v.hostname, host);
}

function mostSpecificVhost(vs: readonly VirtualHost[], host: string): VirtualHost | undefined {
  let best: VirtualHost | undefined;
  for (const v of vs) if (vhostMatches(v, host) && (best === undefined || specificity(v.hostname) > specificity(best.hostname))) best = v;
  return best;
}

function cond(type: string, ok: boolean, reason: string, message: string): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message };
}

export interface MergedListeners {
  /** Every listener, in order; those refused for a conflict with an earlier one have ready false. */
  readonly listeners: readonly Listener[];
  /** A plain HTTP listener merged into an earlier one of the same port and hostname: its name -> that one's. */
  readonly alias: ReadonlyMap<string, string>;
}

/** The listeners of several APIs on the one gateway, conflicts resolved (first come, first served). */
export function mergeListeners(groups: readonly (readonly Listener[])[]): MergedListeners {
  const out: Listener[] = [];
  const alias = new Map<string, string>();
  for (const group of groups) {
    for (const l of group) {
      const clash = l.ready ? out.find((o) => o.ready && o.port === l.port && (o.protocol !== l.protocol || o.hostname === l.hostname)) : undefined;
      if (clash === undefined) out.push(l);
      else if (clash.protocol === 'HTTP' && l.protocol === 'HTTP') {
        alias.set(l.name, clash.name);
        out.push(l);
      } else {
        const why = clash.protocol !== l.protocol ? `port ${l.port} is ${clash.protocol} on listener ${clash.name}` : `listener ${clash.name} has the same port and hostname`;
        out.push({ ...l, ready: false, conditions: [cond('Accepted', true, 'Accepted', 'listener accepted'), cond('Conflicted', true, clash.protocol !== l.protocol ? 'ProtocolConflict' : 'HostnameConflict', why), cond('Programmed', false, 'Invalid', why)] });
      }
    }
  }
  return { listeners: out, alias };
}

/** agent/l7's precedence (compile.ts compareRanked) on compiled matches, without the route tie-break. */
export function comparePrecedence(a: TableEntry, b: TableEntry): number {
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

function compareOrder(a: VhostPart, b: VhostPart): number {
  if (a.order[0] !== b.order[0]) return a.order[0] < b.order[0] ? -1 : 1;
  return a.order[1] < b.order[1] ? -1 : a.order[1] > b.order[1] ? 1 : 0;
}

/** The merged entries of one virtual host. */
function mergeParts(parts: readonly VhostPart[]): TableEntry[] {
  const tier = (t: number): VhostPart[] => parts.filter((p) => p.tier === t).sort(compareOrder);
  // Stable: equal keys keep source order (oldest first), then each source's own order.
  const precedence = tier(0).flatMap((p) => p.entries).sort(comparePrecedence);
  return [...precedence, ...tier(1).flatMap((p) => p.entries), ...tier(2).flatMap((p) => p.entries)];
}

/** The table of the gateway `gatewayKey` over `listeners` (merged) and the parts bound to them. */
export function buildTable(gatewayKey: string, merged: MergedListeners, parts: readonly VhostPart[]): GatewayTable {
  const byVhost = new Map<string, { vhost: VirtualHost; port: number; parts: VhostPart[] }>();
  const byName = new Map(merged.listeners.map((l) => [l.name, l]));
  for (const p of parts) {
    const name = merged.alias.get(p.listener) ?? p.listener;
    const l = byName.get(name);
    if (l === undefined || !l.ready) continue;
    const oneLabel = p.oneLabel === true && p.hostname?.startsWith('*.') === true;
    const fk = `${frontendOf(gatewayKey, name)}#${p.hostname ?? '*'}${oneLabel ? '#1' : ''}`;
    let v = byVhost.get(fk);
    if (v === undefined) byVhost.set(fk, (v = { vhost: { hostname: p.hostname, oneLabel, frontend: fk }, port: l.port, parts: [] }));
    v.parts.push(p);
  }
  const byFrontend = new Map<string, readonly TableEntry[]>();
  const vhosts = new Map<string, VirtualHost[]>();
  for (const [fk, v] of byVhost) {
    byFrontend.set(`${fk}:${v.port}`, mergeParts(v.parts));
    const name = fk.slice(gatewayKey.length + 1, fk.indexOf('#', gatewayKey.length + 1));
    let list = vhosts.get(name);
    if (list === undefined) vhosts.set(name, (list = []));
    list.push(v.vhost);
  }
  const inner = new CompiledRouteTable({ byFrontend, statuses: [] });
  const ready = merged.listeners.filter((l) => l.ready);
  const byListenerKey = new Map(ready.map((l) => [frontendOf(gatewayKey, l.name), l]));
  const table: RouteTable = {
    plan(service: string, port: number, request: RequestView, random: number): RequestPlan {
      const host = hostOf(request.authority).toLowerCase();
      let listener = byListenerKey.get(service);
      if (listener !== undefined && !hostnameMatches(listener.hostname, host)) {
        return { kind: 'reply', rule: undefined, statusCode: 421, responseFlag: 'NR', reason: `${host} is not served on listener ${listener.name} (${listener.hostname ?? '*'}) that the TLS server name chose` };
      }
      if (listener === undefined && service === portFrontendOf(gatewayKey, port)) {
        let best: Listener | undefined;
        for (const l of ready) if (l.port === port && l.protocol === 'HTTP' && !merged.alias.has(l.name) && hostnameMatches(l.hostname, host) && (best === undefined || specificity(l.hostname) > specificity(best.hostname))) best = l;
        listener = best;
      }
      const vhost = listener === undefined ? undefined : mostSpecificVhost(vhosts.get(listener.name) ?? [], host);
      // Never the engine's "no route: to the addressed service" (the stand-in is no Service): 404.
      if (vhost === undefined || !inner.routed(vhost.frontend, port)) return { kind: 'reply', rule: undefined, statusCode: 404, responseFlag: 'NR', reason: NO_ROUTE_MATCHED };
      return inner.plan(vhost.frontend, port, request, random);
    },
  };
  return { table, vhosts };
}

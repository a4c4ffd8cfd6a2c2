/**
 * The routes a waypoint serves, across model updates: every HTTPRoute and GRPCRoute in the
 * model's `others` is validated on each update; a refused one keeps its last good version
 * (as policies do: docs/errors.md WEFT_ERR_ROUTE_INVALID) and is listed in rejected() with the
 * fields to fix. A route that is gone from the model is gone from the table. Pure: no I/O, no
 * clock; the caller logs what rejected() lists.
 */
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatFieldErrors, type PolicyFieldError } from '../../policy/errors.js';
import { compileRoutes, parentRefOf, routeInfo, type CompiledRoutes, type RouteModel, type TableEntry } from './compile.js';
import type { ParentReferenceT, RouteObject } from './schema.js';
import { CompiledRouteTable } from './table.js';
import type { BackendTarget, RouteCondition, RouteStatus } from './types.js';
import { isRouteKind, validateRouteObject } from './validate.js';
import { compileIstio, DestinationRules, type RouteConflict } from './istio/compile.js';
import type { DestinationRule, VirtualService } from './istio/schema.js';
import { isIstioRouteKind, validateIstioObject } from './istio/validate.js';
import { applyRateLimits } from './weft/rate-limit.js';
import { HTTP_FAULT_KIND, RATE_LIMIT_KIND, type HTTPFault, type LocalRateLimitPolicy, type WeftTrafficObject } from './weft/schema.js';
import { isWeftTrafficKind, validateWeftTrafficObject } from './weft/validate.js';

type Served = RouteObject | VirtualService | DestinationRule | WeftTrafficObject;

export type { RouteConflict };

/** A route refused by validation (the shape of policy/engine.ts RejectedPolicy). */
export interface RejectedRoute {
  readonly kind: string;
  /** `namespace/name`, or `<unnamed>`. */
  readonly route: string;
  readonly errors: readonly PolicyFieldError[];
  readonly generation?: number | undefined;
  /** The generation still served in its place; undefined: none (the route takes no part). */
  readonly servingGeneration?: number | undefined;
  /** True when an earlier version is still served. */
  readonly servingLastGood: boolean;
}

interface Meta {
  name?: unknown;
  namespace?: unknown;
  generation?: unknown;
}

function metaOf(obj: unknown): Meta {
  const md = (obj as { metadata?: Meta } | null)?.metadata;
  return md !== null && typeof md === 'object' ? md : {};
}

export class RouteStore {
  readonly #defaultNamespace: string;
  readonly #log: Logger | undefined;
  #conflicts: readonly RouteConflict[] = [];
  #saidConflicts = '';
  #lastGood = new Map<string, Served>();
  #rejected: RejectedRoute[] = [];
  #table: CompiledRouteTable = new CompiledRouteTable({ byFrontend: new Map(), statuses: [] });
  #statuses: readonly RouteStatus[] = [];

  /** `log`: where route conflicts are logged (WEFT_ERR_ROUTE_CONFLICT), once per change of the set. */
  constructor(options: { defaultNamespace?: string; log?: Logger } = {}) {
    this.#defaultNamespace = options.defaultNamespace ?? 'default';
    this.#log = options.log;
  }

  /** Rebuilds the table from the model (its services, ReferenceGrants and routes). */
  update(model: RouteModel): CompiledRouteTable {
    const byKey = new Map<string, Served>();
    const lastGood = new Map<string, Served>();
    const rejected: RejectedRoute[] = [];
    const refused = new Map<string, { obj: unknown; rejected: RejectedRoute }>();
    for (const obj of model.others) {
      const kind = (obj as { kind?: unknown } | null)?.kind;
      // Istio's networking kinds (agent/l7/istio) go through the same last-good bookkeeping.
      const apiVersion = (obj as { apiVersion?: unknown } | null)?.apiVersion;
      const istio = isIstioRouteKind(kind, apiVersion);
      // Weft's HTTPFault and LocalRateLimitPolicy (agent/l7/weft) too.
      const weft = isWeftTrafficKind(kind, apiVersion);
      if (!isRouteKind(kind) && !istio && !weft) continue;
      const md = metaOf(obj);
      const ns = typeof md.namespace === 'string' ? md.namespace : this.#defaultNamespace;
      const named = typeof md.name === 'string';
      const key = `${kind} ${ns}/${named ? (md.name as string) : '<unnamed>'}`;
      const v = istio ? validateIstioObject(obj) : weft ? validateWeftTrafficObject(obj) : validateRouteObject(obj);
      if (v.ok) {
        byKey.set(key, v.value);
        lastGood.set(key, v.value);
        refused.delete(key);
        continue;
      }
      const previous = named ? this.#lastGood.get(key) : undefined;
      const r: RejectedRoute = {
        kind,
        route: named ? `${ns}/${md.name as string}` : '<unnamed>',
        errors: v.errors,
        ...(typeof md.generation === 'number' ? { generation: md.generation } : {}),
        ...(previous?.metadata.generation !== undefined ? { servingGeneration: previous.metadata.generation } : {}),
        servingLastGood: previous !== undefined,
      };
      rejected.push(r);
      if (previous !== undefined) {
        byKey.set(key, previous);
        lastGood.set(key, previous);
      } else byKey.delete(key);
      if (named) refused.set(key, { obj, rejected: r });
    }
    const all = [...byKey.values()];
    const ns = this.#defaultNamespace;
    const routes = all.filter((o): o is RouteObject => isRouteKind(o.kind));
    const faults = new Map(all.filter((o): o is HTTPFault => o.kind === HTTP_FAULT_KIND).map((f) => [`${f.metadata.namespace ?? ns}/${f.metadata.name}`, f] as const));
    const destinationRules = all.filter((o): o is DestinationRule => o.kind === 'DestinationRule');
    // First: their host policies apply to Gateway API backends and to unrouted traffic too, as in Istio.
    const drs = new DestinationRules(model, destinationRules, ns);
    const gateway = compileRoutes(model, routes, ns, { faults, policyFor: (service, port) => drs.policyFor(service, port) });
    const istio = compileIstio(model, all.filter((o): o is VirtualService => o.kind === 'VirtualService'), destinationRules, gateway.byFrontend, ns, drs);
    const byFrontend = new Map<string, readonly TableEntry[]>([...gateway.byFrontend, ...istio.byFrontend]);
    const limited = applyRateLimits(model, { byFrontend, direct: unroutedPolicies(model, drs, byFrontend) }, all.filter((o): o is LocalRateLimitPolicy => o.kind === RATE_LIMIT_KIND), routes, ns);
    const compiled: CompiledRoutes = {
      byFrontend: limited.byFrontend,
      direct: limited.direct,
      statuses: [...withConflictNotes(gateway.statuses, istio.conflicts), ...istio.statuses, ...limited.statuses],
    };
    this.#conflicts = istio.conflicts;
    this.#logConflicts();
    this.#lastGood = lastGood;
    this.#rejected = rejected;
    this.#statuses = withRefusals(compiled.statuses, refused, this.#defaultNamespace);
    this.#table = new CompiledRouteTable(compiled, this.#statuses);
    return this.#table;
  }

  table(): CompiledRouteTable {
    return this.#table;
  }

  /** Routes refused by the last update, in input order. */
  rejected(): readonly RejectedRoute[] {
    return this.#rejected;
  }

  /** Every route's status, refused ones included (Accepted False, UnsupportedValue). */
  statuses(): readonly RouteStatus[] {
    return this.#statuses;
  }

  /** Service ports a Gateway API route and a VirtualService both wanted in the last update (the route routes them). */
  conflicts(): readonly RouteConflict[] {
    return this.#conflicts;
  }

  #logConflicts(): void {
    const said = this.#conflicts.map((c) => `${c.frontend} ${c.winner} ${c.loser}`).join('\n');
    if (said === this.#saidConflicts) return;
    this.#saidConflicts = said;
    for (const c of this.#conflicts) this.#log?.warn({ code: 'WEFT_ERR_ROUTE_CONFLICT', frontend: c.frontend, routedBy: c.winner, leftOut: c.loser }, new RouteConflictError(c).message);
  }
}

/** Service ports no route holds whose DestinationRule has a policy: the engine still applies it (Istio does). */
function unroutedPolicies(model: RouteModel, drs: DestinationRules, byFrontend: ReadonlyMap<string, unknown>): Map<string, { backend: BackendTarget; rule: undefined }> {
  const out = new Map<string, { backend: BackendTarget; rule: undefined }>();
  for (const service of drs.byService.keys()) {
    for (const port of model.services.get(service)?.ports.keys() ?? []) {
      const fk = `${service}:${port}`;
      if (byFrontend.has(fk)) continue;
      const policy = drs.policyFor(service, port);
      if (policy !== undefined) out.set(fk, { backend: { service, port, policy }, rule: undefined });
    }
  }
  return out;
}

/** The winning Gateway API routes' Accepted message names the VirtualService they keep out (the conflict is reported on both sides). */
function withConflictNotes(statuses: readonly RouteStatus[], conflicts: readonly RouteConflict[]): RouteStatus[] {
  if (conflicts.length === 0) return [...statuses];
  return statuses.map((s) => {
    const mine = conflicts.filter((c) => c.winner.split(', ').includes(s.route));
    if (mine.length === 0) return s;
    const note = `; not merged with ${[...new Set(mine.map((c) => `${c.loser} (${c.frontend})`))].join(', ')}: this route routes those ports, the VirtualService is left out there (WEFT_ERR_ROUTE_CONFLICT)`;
    return { ...s, parents: s.parents.map((p) => (p.mesh === true ? { ...p, conditions: p.conditions.map((c) => (c.type === 'Accepted' && c.status === 'True' ? { ...c, message: c.message + note } : c)) } : p)) };
  });
}

/** A Service port both a Gateway API route and a VirtualService want (logged as WEFT_ERR_ROUTE_CONFLICT). */
export class RouteConflictError extends WeftError {
  readonly conflict: RouteConflict;
  constructor(conflict: RouteConflict) {
    super('WEFT_ERR_ROUTE_CONFLICT', `${conflict.frontend} has routes of two APIs: ${conflict.winner} routes it, ${conflict.loser} is left out there (not merged; Gateway API routes win on a waypoint)`);
    this.name = 'RouteConflictError';
    this.conflict = conflict;
  }
}

function refusalMessage(r: RejectedRoute): string {
  const serving = r.servingLastGood ? `; the last good version${r.servingGeneration !== undefined ? ` (generation ${r.servingGeneration})` : ''} is still served` : '';
  return `refused: ${formatFieldErrors(r.errors)}${serving}`;
}

/** Compiled statuses with each refused route's Accepted condition turned False. */
function withRefusals(statuses: readonly RouteStatus[], refused: ReadonlyMap<string, { obj: unknown; rejected: RejectedRoute }>, defaultNamespace: string): RouteStatus[] {
  const out = new Map(statuses.map((s) => [s.route, s] as const));
  for (const [key, { obj, rejected }] of refused) {
    const refusedCondition: RouteCondition = {
      type: 'Accepted',
      status: 'False',
      reason: 'UnsupportedValue',
      message: refusalMessage(rejected),
      ...(rejected.generation !== undefined ? { observedGeneration: rejected.generation } : {}),
    };
    const served = out.get(key);
    if (served !== undefined) {
      out.set(key, {
        ...served,
        ...(rejected.generation !== undefined ? { generation: rejected.generation } : {}),
        parents: served.parents.map((p) => (p.mesh === false ? p : { ...p, conditions: [refusedCondition, ...p.conditions.filter((c) => c.type !== 'Accepted')] })),
      });
      continue;
    }
    // Nothing served: parents as far as the refused object names them readably.
    if (rejected.kind === HTTP_FAULT_KIND || rejected.kind === RATE_LIMIT_KIND) {
      out.set(key, refusedWeftStatus(obj, rejected, refusedCondition, defaultNamespace));
      continue;
    }
    const raw = (obj as { spec?: { parentRefs?: unknown } }).spec?.parentRefs;
    const md = metaOf(obj);
    const info = routeInfo(
      { kind: rejected.kind, metadata: { name: md.name as string, ...(typeof md.namespace === 'string' ? { namespace: md.namespace } : {}) } } as RouteObject,
      defaultNamespace,
    );
    const parents = (Array.isArray(raw) ? raw : [])
      .filter((p): p is ParentReferenceT => p !== null && typeof p === 'object' && typeof (p as { name?: unknown }).name === 'string')
      .map((p) => {
        const parentRef = parentRefOf(p, info);
        return { parent: `${parentRef.kind} ${parentRef.namespace}/${parentRef.name}${p.port !== undefined ? `:${p.port}` : ''}`, parentRef, mesh: parentRef.kind === 'Service', conditions: [refusedCondition] };
      });
    out.set(key, { route: key, kind: info.kind, namespace: info.namespace, name: info.name, ...(rejected.generation !== undefined ? { generation: rejected.generation } : {}), parents });
  }
  return [...out.values()].sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
}

/** A refused HTTPFault or LocalRateLimitPolicy: its targetRefs as parents (an HTTPFault has none: one row that is not the mesh's to write). */
function refusedWeftStatus(obj: unknown, rejected: RejectedRoute, refusedCondition: RouteCondition, defaultNamespace: string): RouteStatus {
  const md = metaOf(obj);
  const namespace = typeof md.namespace === 'string' ? md.namespace : defaultNamespace;
  const name = md.name as string;
  const raw = (obj as { spec?: { targetRefs?: unknown } }).spec?.targetRefs;
  const targets = (Array.isArray(raw) ? raw : []).filter((t): t is { kind: string; name: string; group?: string } => t !== null && typeof t === 'object' && typeof (t as { kind?: unknown }).kind === 'string' && typeof (t as { name?: unknown }).name === 'string');
  const parents =
    rejected.kind === HTTP_FAULT_KIND || targets.length === 0
      ? [{ parent: rejected.kind === HTTP_FAULT_KIND ? '(rules that name it by ExtensionRef)' : '(no targetRefs)', mesh: false, conditions: [refusedCondition] }]
      : targets.map((t) => ({ parent: `${t.kind} ${namespace}/${t.name}`, parentRef: { group: t.group ?? '', kind: t.kind, namespace, name: t.name }, mesh: true, conditions: [refusedCondition] }));
  return { route: `${rejected.kind} ${namespace}/${name}`, kind: rejected.kind as 'HTTPFault', namespace, name, ...(rejected.generation !== undefined ? { generation: rejected.generation } : {}), parents };
}

/** A refused route as an error to log (WEFT_ERR_ROUTE_INVALID), one per RejectedRoute. */
export class RouteValidationError extends WeftError {
  readonly rejected: RejectedRoute;
  constructor(rejected: RejectedRoute) {
    super('WEFT_ERR_ROUTE_INVALID', `${rejected.kind} ${rejected.route} is invalid: ${refusalMessage(rejected).slice('refused: '.length)}`);
    this.name = 'RouteValidationError';
    this.rejected = rejected;
  }
}

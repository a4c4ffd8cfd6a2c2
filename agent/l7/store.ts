/**
 * The routes a waypoint serves, across model updates: every HTTPRoute and GRPCRoute in the
 * model's `others` is validated on each update; a refused one keeps its last good version
 * (as policies do: docs/errors.md WEFT_ERR_ROUTE_INVALID) and is listed in rejected() with the
 * fields to fix. A route that is gone from the model is gone from the table. Pure: no I/O, no
 * clock; the caller logs what rejected() lists.
 */
import { WeftError } from '../errors.js';
import { formatFieldErrors, type PolicyFieldError } from '../../policy/errors.js';
import { compileRoutes, parentRefOf, routeInfo, type RouteModel } from './compile.js';
import type { ParentReferenceT, RouteObject } from './schema.js';
import { CompiledRouteTable } from './table.js';
import type { RouteCondition, RouteStatus } from './types.js';
import { isRouteKind, validateRouteObject } from './validate.js';
import { compileIstio } from './istio/compile.js';
import type { DestinationRule, VirtualService } from './istio/schema.js';
import { isIstioRouteKind, validateIstioObject } from './istio/validate.js';

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
  #lastGood = new Map<string, RouteObject | VirtualService | DestinationRule>();
  #rejected: RejectedRoute[] = [];
  #table: CompiledRouteTable = new CompiledRouteTable({ byFrontend: new Map(), statuses: [] });
  #statuses: readonly RouteStatus[] = [];

  constructor(options: { defaultNamespace?: string } = {}) {
    this.#defaultNamespace = options.defaultNamespace ?? 'default';
  }

  /** Rebuilds the table from the model (its services, ReferenceGrants and routes). */
  update(model: RouteModel): CompiledRouteTable {
    const byKey = new Map<string, RouteObject | VirtualService | DestinationRule>();
    const lastGood = new Map<string, RouteObject | VirtualService | DestinationRule>();
    const rejected: RejectedRoute[] = [];
    const refused = new Map<string, { obj: unknown; rejected: RejectedRoute }>();
    for (const obj of model.others) {
      const kind = (obj as { kind?: unknown } | null)?.kind;
      // Istio's networking kinds (agent/l7/istio) go through the same last-good bookkeeping.
      const istio = isIstioRouteKind(kind, (obj as { apiVersion?: unknown } | null)?.apiVersion);
      if (!isRouteKind(kind) && !istio) continue;
      const md = metaOf(obj);
      const ns = typeof md.namespace === 'string' ? md.namespace : this.#defaultNamespace;
      const named = typeof md.name === 'string';
      const key = `${kind} ${ns}/${named ? (md.name as string) : '<unnamed>'}`;
      const v = istio ? validateIstioObject(obj) : validateRouteObject(obj);
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
    const gateway = compileRoutes(model, all.filter((o): o is RouteObject => isRouteKind(o.kind)), this.#defaultNamespace);
    const istio = compileIstio(
      model,
      all.filter((o): o is VirtualService => o.kind === 'VirtualService'),
      all.filter((o): o is DestinationRule => o.kind === 'DestinationRule'),
      gateway.byFrontend,
      this.#defaultNamespace,
    );
    const compiled = { byFrontend: new Map([...gateway.byFrontend, ...istio.byFrontend]), statuses: [...gateway.statuses, ...istio.statuses] };
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

/** A refused route as an error to log (WEFT_ERR_ROUTE_INVALID), one per RejectedRoute. */
export class RouteValidationError extends WeftError {
  readonly rejected: RejectedRoute;
  constructor(rejected: RejectedRoute) {
    super('WEFT_ERR_ROUTE_INVALID', `${rejected.kind} ${rejected.route} is invalid: ${refusalMessage(rejected).slice('refused: '.length)}`);
    this.name = 'RouteValidationError';
    this.rejected = rejected;
  }
}

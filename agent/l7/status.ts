/**
 * Route statuses as people and Kubernetes read them: rows for `weft status routes` (the
 * waypoint's admin API serves RouteStore.statuses() as JSON under `routes`), and the
 * `status` subresource body Gateway API defines (RouteParentStatus per mesh parent) for the
 * Kubernetes-mode writer. Pure: the writer supplies the clock (lastTransitionTime).
 */
import type { RouteCondition, RouteParentRef, RouteStatus } from './types.js';

/** The controllerName Weft writes in a route's status.parents[]. */
export const ROUTE_CONTROLLER_NAME = 'weft.dev/waypoint-controller';

export interface RouteStatusRow {
  readonly route: string;
  readonly parent: string;
  readonly accepted: string;
  readonly resolvedRefs: string;
  readonly message: string;
  [column: string]: string;
}

function short(c: RouteCondition | undefined): string {
  if (c === undefined) return '-';
  return c.status === 'True' ? 'True' : `False (${c.reason})`;
}

/** One row per route and parent; messages of the False conditions joined. */
export function routeStatusRows(statuses: readonly RouteStatus[]): RouteStatusRow[] {
  const rows: RouteStatusRow[] = [];
  for (const s of statuses) {
    if (s.parents.length === 0) {
      rows.push({ route: s.route, parent: '(no parentRefs)', accepted: '-', resolvedRefs: '-', message: 'the route names no parent: it applies to nothing' });
      continue;
    }
    for (const p of s.parents) {
      const accepted = p.conditions.find((c) => c.type === 'Accepted');
      const resolved = p.conditions.find((c) => c.type === 'ResolvedRefs');
      const problems = p.conditions.filter((c) => c.status === 'False').map((c) => c.message);
      rows.push({ route: s.route, parent: p.parent, accepted: short(accepted), resolvedRefs: short(resolved), message: problems.join('; ') || (accepted?.message ?? '') });
    }
  }
  return rows;
}

export interface KubeRouteCondition extends RouteCondition {
  readonly lastTransitionTime: string;
}

export interface KubeRouteParentStatus {
  readonly parentRef: RouteParentRef;
  readonly controllerName: string;
  readonly conditions: readonly KubeRouteCondition[];
}

/**
 * The route's `status` (HTTPRoute and GRPCRoute share it) with Weft's mesh parents only: entries
 * of other controllers in `previous` are kept as they are, Weft's are replaced. A condition keeps
 * its lastTransitionTime from `previous` while its status is unchanged (API conventions);
 * otherwise it gets `now` (RFC 3339, from the writer's clock).
 */
export function kubernetesRouteStatus(
  status: RouteStatus,
  previous: { readonly parents?: readonly unknown[] } | undefined,
  now: string,
  controllerName: string = ROUTE_CONTROLLER_NAME,
): { parents: unknown[] } {
  const others: unknown[] = [];
  const ours = new Map<string, readonly { type?: string; status?: string; lastTransitionTime?: string }[]>();
  for (const p of previous?.parents ?? []) {
    const ps = p as { controllerName?: unknown; parentRef?: RouteParentRef; conditions?: { type?: string; status?: string; lastTransitionTime?: string }[] };
    if (ps.controllerName !== controllerName) others.push(p);
    else if (ps.parentRef !== undefined) ours.set(parentKey(ps.parentRef), ps.conditions ?? []);
  }
  const parents: unknown[] = [...others];
  for (const p of status.parents) {
    if (p.mesh !== true || p.parentRef === undefined) continue;
    const before = ours.get(parentKey(p.parentRef)) ?? [];
    const conditions = p.conditions.map((c) => {
      const old = before.find((b) => b.type === c.type);
      return { ...c, lastTransitionTime: old !== undefined && old.status === c.status && old.lastTransitionTime !== undefined ? old.lastTransitionTime : now };
    });
    parents.push({ parentRef: p.parentRef, controllerName, conditions } satisfies KubeRouteParentStatus);
  }
  return { parents };
}

function parentKey(p: RouteParentRef): string {
  return `${p.group ?? ''}/${p.kind ?? ''}/${p.namespace ?? ''}/${p.name}/${p.sectionName ?? ''}/${p.port ?? ''}`;
}

export interface KubePolicyAncestorStatus {
  readonly ancestorRef: RouteParentRef;
  readonly controllerName: string;
  readonly conditions: readonly KubeRouteCondition[];
}

/**
 * A policy's `status` (LocalRateLimitPolicy: GEP-713 PolicyStatus, `ancestors[]` with
 * ancestorRef, controllerName, conditions), from its RouteStatus whose parents are its targets.
 * Other controllers' ancestors in `previous` are kept; lastTransitionTime as kubernetesRouteStatus.
 */
export function kubernetesPolicyStatus(
  status: RouteStatus,
  previous: { readonly ancestors?: readonly unknown[] } | undefined,
  now: string,
  controllerName: string = ROUTE_CONTROLLER_NAME,
): { ancestors: unknown[] } {
  const asRoute = kubernetesRouteStatus(status, previous === undefined ? undefined : { parents: (previous.ancestors ?? []).map(toParent) }, now, controllerName);
  return { ancestors: asRoute.parents.map(toAncestor) };
}

function toParent(a: unknown): unknown {
  const x = a as { ancestorRef?: unknown } | null;
  if (x === null || typeof x !== 'object' || x.ancestorRef === undefined) return a;
  const { ancestorRef, ...rest } = x as { ancestorRef: unknown; [k: string]: unknown };
  return { ...rest, parentRef: ancestorRef };
}

function toAncestor(p: unknown): unknown {
  const x = p as { parentRef?: unknown } | null;
  if (x === null || typeof x !== 'object' || x.parentRef === undefined) return p;
  const { parentRef, ...rest } = x as { parentRef: unknown; [k: string]: unknown };
  return { ancestorRef: parentRef, ...rest };
}

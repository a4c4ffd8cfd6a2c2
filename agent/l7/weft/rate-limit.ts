/**
 * LocalRateLimitPolicy -> RouteRule.rateLimit, after every API's routes are compiled: a pass over
 * the table's rules that gives each rule the policy that applies to it, and for a Service no
 * route holds a rule of its own that only carries the limit (CompiledRoutes.direct).
 *
 * Which policy applies (GEP-713's precedence, most specific first): one that names the rule
 * (targetRef to the route with sectionName = the rule's name), else one that names the route,
 * else one that names the Service the request is addressed to. Two policies on one target: the
 * oldest (creationTimestamp, then namespace/name) applies, the other is Conflicted there.
 */
import { parseDuration } from '../duration.js';
import type { CompiledRoutes, CompiledRule, RouteModel, TableEntry } from '../compile.js';
import type { RouteObject } from '../schema.js';
import type { BackendTarget, RouteCondition, RouteParentRef, RouteRateLimit, RouteRule, RouteStatus } from '../types.js';
import { RATE_LIMIT_KIND, type LocalRateLimitPolicy, type PolicyTargetReferenceT } from './schema.js';
import { targetKindOf } from './validate.js';

interface PolicyInfo {
  readonly policy: LocalRateLimitPolicy;
  readonly namespace: string;
  readonly key: string;
  readonly name: string;
  readonly created: string | undefined;
}

function olderFirst(a: PolicyInfo, b: PolicyInfo): number {
  if (a.created !== b.created) {
    if (a.created === undefined) return 1;
    if (b.created === undefined) return -1;
    const d = Date.parse(a.created) - Date.parse(b.created);
    if (!Number.isNaN(d) && d !== 0) return d;
  }
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function cond(ok: boolean, reason: string, message: string, generation: number | undefined): RouteCondition {
  return { type: 'Accepted', status: ok ? 'True' : 'False', reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
}

/** What a targetRef names, as the index keys it. */
function targetKey(t: PolicyTargetReferenceT, namespace: string): string {
  const kind = targetKindOf(t)!;
  return kind === 'Service' ? `Service ${namespace}/${t.name}` : `${kind} ${namespace}/${t.name}${t.sectionName !== undefined ? ` rule ${t.sectionName}` : ''}`;
}

export interface RateLimited {
  readonly byFrontend: ReadonlyMap<string, readonly TableEntry[]>;
  readonly direct: NonNullable<CompiledRoutes['direct']>;
  readonly statuses: readonly RouteStatus[];
}

/**
 * Applies the (valid) policies to compiled routes. `routes`: the Gateway API routes served (to
 * tell a missing target from a present one).
 */
export function applyRateLimits(
  model: RouteModel,
  compiled: { readonly byFrontend: ReadonlyMap<string, readonly TableEntry[]>; readonly direct?: CompiledRoutes['direct'] },
  policies: readonly LocalRateLimitPolicy[],
  routes: readonly RouteObject[],
  defaultNamespace: string,
): RateLimited {
  const infos = policies
    .map((p): PolicyInfo => {
      const namespace = p.metadata.namespace ?? defaultNamespace;
      return { policy: p, namespace, name: p.metadata.name, key: `${namespace}/${p.metadata.name}`, created: p.metadata.creationTimestamp };
    })
    .sort(olderFirst);
  const routeRules = new Map<string, Set<string>>();
  for (const r of routes) routeRules.set(`${r.kind} ${r.metadata.namespace ?? defaultNamespace}/${r.metadata.name}`, new Set((r.spec.rules ?? []).flatMap((x) => (x.name !== undefined ? [x.name] : []))));
  const holder = new Map<string, PolicyInfo>();
  const statuses: RouteStatus[] = [];
  for (const p of infos) {
    const g = p.policy.metadata.generation;
    const parents = p.policy.spec.targetRefs.map((t) => {
      const kind = targetKindOf(t)!;
      const parentRef: RouteParentRef = { group: t.group, kind: t.kind, namespace: p.namespace, name: t.name, ...(t.sectionName !== undefined ? { sectionName: t.sectionName } : {}) };
      const key = targetKey(t, p.namespace);
      const parent = key;
      let c: RouteCondition;
      if (kind === 'Service' ? !model.services.has(`${p.namespace}/${t.name}`) : !routeRules.has(`${kind} ${p.namespace}/${t.name}`)) {
        c = cond(false, 'TargetNotFound', `${kind} ${p.namespace}/${t.name} not found`, g);
      } else if (t.sectionName !== undefined && !routeRules.get(`${kind} ${p.namespace}/${t.name}`)!.has(t.sectionName)) {
        c = cond(false, 'TargetNotFound', `${kind} ${p.namespace}/${t.name} has no rule named ${t.sectionName}`, g);
      } else if (holder.has(key)) {
        const w = holder.get(key)!;
        c = cond(false, 'Conflicted', `${key} already has ${RATE_LIMIT_KIND} ${w.key} (the oldest applies)`, g);
      } else {
        holder.set(key, p);
        c = cond(true, 'Accepted', `limits ${key}${kind === 'Service' ? ' (one bucket for the whole Service)' : ' (one bucket per rule)'}, unless a policy on a more specific target applies`, g);
      }
      return { parent, parentRef, mesh: true, conditions: [c] };
    });
    statuses.push({ route: `${RATE_LIMIT_KIND} ${p.key}`, kind: RATE_LIMIT_KIND, namespace: p.namespace, name: p.name, ...(g !== undefined ? { generation: g } : {}), parents });
  }

  const limits = new Map<string, RouteRateLimit>();
  const limitOf = (p: PolicyInfo, serviceKey: string | undefined): RouteRateLimit => {
    const k = `${p.key} ${serviceKey ?? ''}`;
    let l = limits.get(k);
    if (l === undefined) {
      const b = p.policy.spec.tokenBucket;
      l = Object.freeze({
        policy: `${RATE_LIMIT_KIND} ${p.key}`,
        maxTokens: b.maxTokens,
        tokensPerFill: b.tokensPerFill ?? 1,
        fillIntervalMs: parseDuration(b.fillInterval)!,
        ...(serviceKey !== undefined ? { bucket: `${RATE_LIMIT_KIND} ${p.key} Service ${serviceKey}` } : {}),
      });
      limits.set(k, l);
    }
    return l;
  };
  const applicable = (rule: CompiledRule, serviceKey: string): RouteRateLimit | undefined => {
    const o = rule.origin;
    if (o !== undefined && o.kind !== 'VirtualService') {
      const byRule = o.ruleName !== undefined ? holder.get(`${o.kind} ${o.key} rule ${o.ruleName}`) : undefined;
      if (byRule !== undefined) return limitOf(byRule, undefined);
      const byRoute = holder.get(`${o.kind} ${o.key}`);
      if (byRoute !== undefined) return limitOf(byRoute, undefined);
    }
    const bySvc = holder.get(`Service ${serviceKey}`);
    return bySvc === undefined ? undefined : limitOf(bySvc, serviceKey);
  };

  if (holder.size === 0) return { byFrontend: compiled.byFrontend, direct: compiled.direct ?? new Map(), statuses };
  const models = new Map<RouteRule, Map<RouteRateLimit, RouteRule>>();
  const withLimit = (m: RouteRule, l: RouteRateLimit): RouteRule => {
    let byLimit = models.get(m);
    if (byLimit === undefined) models.set(m, (byLimit = new Map()));
    let out = byLimit.get(l);
    if (out === undefined) byLimit.set(l, (out = { ...m, rateLimit: l }));
    return out;
  };
  const byFrontend = new Map<string, readonly TableEntry[]>();
  for (const [fk, entries] of compiled.byFrontend) {
    const serviceKey = fk.slice(0, fk.lastIndexOf(':'));
    const rules = new Map<CompiledRule, CompiledRule>();
    byFrontend.set(
      fk,
      entries.map((e) => {
        let r = rules.get(e.rule);
        if (r === undefined) {
          const l = applicable(e.rule, serviceKey);
          r = l === undefined ? e.rule : { ...e.rule, model: withLimit(e.rule.model, l) };
          rules.set(e.rule, r);
        }
        return r === e.rule ? e : { match: e.match, rule: r };
      }),
    );
  }
  const direct = new Map(compiled.direct ?? []);
  for (const [key, p] of holder) {
    if (!key.startsWith('Service ')) continue;
    const serviceKey = key.slice('Service '.length);
    const svc = model.services.get(serviceKey);
    for (const port of svc?.ports.keys() ?? []) {
      const fk = `${serviceKey}:${port}`;
      if (byFrontend.has(fk)) continue;
      const backend: BackendTarget = direct.get(fk)?.backend ?? { service: serviceKey, port };
      const rule: RouteRule = {
        name: `${RATE_LIMIT_KIND} ${p.key} on Service ${fk} (no route)`,
        matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [], method: undefined }],
        filters: [],
        backends: [{ target: backend, weight: 1, filters: [] }],
        timeouts: { requestMs: undefined, backendRequestMs: undefined },
        rateLimit: limitOf(p, serviceKey),
      };
      direct.set(fk, { backend, rule });
    }
  }
  return { byFrontend, direct, statuses };
}

/** Istio's sample manifests (test/fixtures/istio/) and a Bookinfo-shaped model for the istio tests. */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { RouteModel } from '../../agent/l7/compile.js';
import type { RequestPlan } from '../../agent/l7/types.js';

const FIXTURES = new URL('../../../test/fixtures/istio/', import.meta.url);

/** Every document of a fixture, as parsed objects (comments and empty documents dropped). */
export function fixture(name: string): Record<string, unknown>[] {
  return parseAllDocuments(readFileSync(new URL(name, FIXTURES), 'utf8'))
    .map((d) => d.toJS() as unknown)
    .filter((o): o is Record<string, unknown> => o !== null && typeof o === 'object');
}

/** Bookinfo's and httpbin's Services in `default` (their ports as Istio's samples have them), plus extra objects. */
export function bookinfo(others: unknown[], extra: Record<string, number[]> = {}): RouteModel {
  const services: Record<string, number[]> = { 'default/productpage': [9080], 'default/reviews': [9080], 'default/ratings': [9080], 'default/details': [9080], 'default/httpbin': [8000], ...extra };
  return { services: new Map(Object.entries(services).map(([key, ports]) => [key, { key, ports: new Map(ports.map((p) => [p, []])) }])), others };
}

/** The subset a forward plan picked (`-` for none), or `reply <code>` / `redirect <code>`. */
export function outcome(plan: RequestPlan): string {
  if (plan.kind === 'forward') return `${plan.backend.service}${plan.backend.subset !== undefined ? `@${plan.backend.subset.name}` : ''}`;
  return `${plan.kind} ${plan.statusCode}`;
}

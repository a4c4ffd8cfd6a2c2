/** Builders for the route tests: a small model, routes, requests, and a seeded random source. */
import { compileRoutes, type RouteModel } from '../../agent/l7/compile.js';
import { CompiledRouteTable } from '../../agent/l7/table.js';
import type { RequestView } from '../../agent/l7/types.js';
import { validateRouteObject } from '../../agent/l7/validate.js';
import type { RouteObject } from '../../agent/l7/schema.js';

/** `ns/name` -> ports. */
export function model(services: Record<string, number[]>, others: unknown[] = []): RouteModel {
  return {
    services: new Map(Object.entries(services).map(([key, ports]) => [key, { key, ports: new Map(ports.map((p) => [p, []])) }])),
    others,
  };
}

export const SHOP = { 'shop/cart': [8080, 9090], 'shop/cart-v1': [8080], 'shop/cart-v2': [8080], 'shop/mirror': [8080], 'other/db': [5432] };

export function httpRoute(name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace: 'shop', ...metadata }, spec };
}

export function grpcRoute(name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GRPCRoute', metadata: { name, namespace: 'shop', ...metadata }, spec };
}

export const CART_PARENT = { group: '', kind: 'Service', name: 'cart' };

/** An HTTPRoute on shop/cart with these rules. */
export function cartRoute(rules: unknown[], name = 'cart', metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return httpRoute(name, { parentRefs: [CART_PARENT], rules }, metadata);
}

export function backend(name: string, port = 8080, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, port, ...extra };
}

/** Validates (throws with the errors when invalid) and compiles. */
export function table(routes: unknown[], services: Record<string, number[]> = SHOP, others: unknown[] = []): CompiledRouteTable {
  const valid: RouteObject[] = routes.map((r) => {
    const v = validateRouteObject(r);
    if (!v.ok) throw new Error(`test route invalid: ${JSON.stringify(v.errors)}`);
    return v.value;
  });
  return new CompiledRouteTable(compileRoutes(model(services, others), valid));
}

export function request(path: string, init: { method?: string; query?: string; authority?: string; headers?: Record<string, string | string[]> } = {}): RequestView {
  return { method: init.method ?? 'GET', path, query: init.query ?? '', authority: init.authority ?? 'cart.shop:8080', headers: init.headers ?? {} };
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1), so statistical tests are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

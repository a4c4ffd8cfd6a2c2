/**
 * Validation of HTTPRoute and GRPCRoute objects, field by field, as policy/validate.ts does for
 * policies (same error shape and helpers): the TypeBox schema first, then the Gateway API's CEL
 * rules, the regex safety check (regex.ts) and what Weft does not implement. A refused route
 * keeps its last good version (store.ts); the errors name the fields to fix.
 */
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { PolicyFieldError } from '../../policy/errors.js';
import { describe, schemaErrors } from '../../policy/validate.js';
import { parseDuration } from './duration.js';
import { regexProblem } from './regex.js';
import { HTTP_FAULT_KIND, WEFT_GROUP } from './weft/schema.js';
import {
  GRPCRouteObject,
  HTTPRouteObject,
  ROUTE_API_VERSION,
  type GRPCRoute,
  type GRPCRouteFilterT,
  type HTTPHeaderFilterT,
  type HTTPPathModifierT,
  type HTTPRoute,
  type HTTPRouteFilterT,
  type HTTPRouteMatchT,
  type RouteObject,
} from './schema.js';

export type RouteValidation = { readonly ok: true; readonly value: RouteObject } | { readonly ok: false; readonly errors: readonly PolicyFieldError[] };

const MAX_ERRORS = 50;
/** The CRD's CEL bound on matches across all rules of one HTTPRoute. */
const MAX_TOTAL_MATCHES = 128;

export function isRouteKind(kind: unknown): kind is 'HTTPRoute' | 'GRPCRoute' {
  return kind === 'HTTPRoute' || kind === 'GRPCRoute';
}

/** Validates a parsed HTTPRoute or GRPCRoute; on success `value` is the same object, typed. */
export function validateRouteObject(obj: unknown): RouteValidation {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return { ok: false, errors: [{ path: '', message: 'must be an object' }] };
  const { kind, apiVersion } = obj as { kind?: unknown; apiVersion?: unknown };
  if (!isRouteKind(kind)) return { ok: false, errors: [{ path: 'kind', message: `must be HTTPRoute or GRPCRoute (got ${describe(kind)})` }] };
  if (apiVersion !== ROUTE_API_VERSION) return { ok: false, errors: [{ path: 'apiVersion', message: `must be ${ROUTE_API_VERSION} (got ${describe(apiVersion)})` }] };
  const schema: TSchema = kind === 'HTTPRoute' ? HTTPRouteObject : GRPCRouteObject;
  const errors = Value.Check(schema, obj) ? [] : schemaErrors(schema, obj);
  const more: PolicyFieldError[] = [];
  try {
    if (kind === 'HTTPRoute') checkHTTPRoute(obj as HTTPRoute, more);
    else checkGRPCRoute(obj as GRPCRoute, more);
  } catch {
    // a mistyped tree: the schema pass named the field
  }
  const seen = new Set(errors.map((e) => e.path));
  for (const e of more) if (!seen.has(e.path)) errors.push(e);
  if (errors.length > 0) return { ok: false, errors: errors.slice(0, MAX_ERRORS) };
  return { ok: true, value: obj as RouteObject };
}

// The CRD's path rules for Exact and PathPrefix values.
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;

function pathValueProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return 'must be an absolute path (start with /)';
  if (value.includes('//')) return 'must not contain //';
  if (value.includes('/./') || value.endsWith('/.')) return 'must not contain /./ or end with /.';
  if (value.includes('/../') || value.endsWith('/..')) return 'must not contain /../ or end with /..';
  if (/%2f/i.test(value)) return 'must not contain %2f or %2F';
  if (value.includes('#')) return 'must not contain #';
  if (!PATH_CHARS.test(value)) return 'must contain only valid path characters';
  return undefined;
}

function checkRegex(value: string, at: string, errors: PolicyFieldError[]): void {
  const p = regexProblem(value);
  if (p !== undefined) errors.push({ path: at, message: p });
}

function checkMatch(m: HTTPRouteMatchT, at: string, errors: PolicyFieldError[]): void {
  if (m.path !== undefined) {
    const type = m.path.type ?? 'PathPrefix';
    const value = m.path.value ?? '/';
    if (type === 'RegularExpression') checkRegex(value, `${at}.path.value`, errors);
    else {
      const p = pathValueProblem(value);
      if (p !== undefined) errors.push({ path: `${at}.path.value`, message: p });
    }
  }
  m.headers?.forEach((h, i) => {
    if (h.type === 'RegularExpression') checkRegex(h.value, `${at}.headers[${i}].value`, errors);
  });
  m.queryParams?.forEach((q, i) => {
    if (q.type === 'RegularExpression') checkRegex(q.value, `${at}.queryParams[${i}].value`, errors);
  });
}

/** The spec: one action per header name (any case) in a filter: not twice, not in two of set/add/remove. */
function checkHeaderFilter(f: HTTPHeaderFilterT, at: string, errors: PolicyFieldError[]): void {
  const actionOf = new Map<string, string>();
  const entries: [string, string, string][] = [
    ...(f.set ?? []).map((h, i) => ['set', h.name, `${at}.set[${i}].name`] as [string, string, string]),
    ...(f.add ?? []).map((h, i) => ['add', h.name, `${at}.add[${i}].name`] as [string, string, string]),
    ...(f.remove ?? []).map((n, i) => ['remove', n, `${at}.remove[${i}]`] as [string, string, string]),
  ];
  for (const [action, name, path] of entries) {
    const n = name.toLowerCase();
    const before = actionOf.get(n);
    if (before === action) errors.push({ path, message: `header ${name} appears twice in ${action}` });
    else if (before !== undefined) errors.push({ path, message: `header ${name} is already in ${before} (one action per header name)` });
    else actionOf.set(n, action);
  }
}

function checkPathModifier(p: HTTPPathModifierT, at: string, onePrefixMatch: boolean, errors: PolicyFieldError[]): void {
  if (p.type === 'ReplaceFullPath') {
    if (p.replaceFullPath === undefined) errors.push({ path: `${at}.replaceFullPath`, message: 'is required when type is ReplaceFullPath' });
    if (p.replacePrefixMatch !== undefined) errors.push({ path: `${at}.replacePrefixMatch`, message: 'must not be set when type is ReplaceFullPath' });
  } else {
    if (p.replacePrefixMatch === undefined) errors.push({ path: `${at}.replacePrefixMatch`, message: 'is required when type is ReplacePrefixMatch' });
    if (p.replaceFullPath !== undefined) errors.push({ path: `${at}.replaceFullPath`, message: 'must not be set when type is ReplacePrefixMatch' });
    if (!onePrefixMatch) errors.push({ path: `${at}.type`, message: 'ReplacePrefixMatch needs the rule to have exactly one match, of type PathPrefix' });
  }
}

const FIELD_OF_FILTER: Readonly<Record<string, string>> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestMirror: 'requestMirror',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  ExtensionRef: 'extensionRef',
  CORS: 'cors',
  ExternalAuth: 'externalAuth',
};
const UNIQUE_FILTERS = new Set(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite']);

function checkFilters(
  filters: readonly (HTTPRouteFilterT | GRPCRouteFilterT)[] | undefined,
  at: string,
  ctx: { onePrefixMatch: boolean; backendLevel: boolean; grpc: boolean },
  errors: PolicyFieldError[],
): void {
  if (filters === undefined) return;
  const seen = new Set<string>();
  filters.forEach((f, i) => {
    const fat = `${at}[${i}]`;
    const type = f.type as string;
    const own = FIELD_OF_FILTER[type];
    for (const field of Object.values(FIELD_OF_FILTER)) {
      if (field !== own && (f as Record<string, unknown>)[field] !== undefined) errors.push({ path: `${fat}.${field}`, message: `must not be set when type is ${type}` });
    }
    if (type === 'CORS' || type === 'ExternalAuth') {
      errors.push({ path: `${fat}.type`, message: `filter ${type} is not supported by Weft` });
      return;
    }
    if (type === 'ExtensionRef') {
      const ref = (f as HTTPRouteFilterT).extensionRef;
      if (ref === undefined) errors.push({ path: `${fat}.extensionRef`, message: 'is required when type is ExtensionRef' });
      else if (ref.group !== WEFT_GROUP || ref.kind !== HTTP_FAULT_KIND) errors.push({ path: `${fat}.extensionRef`, message: `ExtensionRef to ${ref.group === '' ? 'core' : ref.group}/${ref.kind} is not supported by Weft (only ${WEFT_GROUP}/${HTTP_FAULT_KIND})` });
      else if (ctx.backendLevel) errors.push({ path: `${fat}.type`, message: `an ${HTTP_FAULT_KIND} is supported in a rule's filters only (a fault applies to the whole rule), not in a backendRef's` });
      else if (seen.has(HTTP_FAULT_KIND)) errors.push({ path: `${fat}.extensionRef`, message: `a rule may name one ${HTTP_FAULT_KIND}` });
      seen.add(HTTP_FAULT_KIND);
      return;
    }
    if (own !== undefined && (f as Record<string, unknown>)[own] === undefined) errors.push({ path: `${fat}.${own}`, message: `is required when type is ${type}` });
    if (UNIQUE_FILTERS.has(type)) {
      if (seen.has(type)) errors.push({ path: `${fat}.type`, message: `${type} may appear only once in a filter list` });
      seen.add(type);
    }
    if (type === 'RequestRedirect' && ctx.backendLevel) errors.push({ path: `${fat}.type`, message: 'RequestRedirect is not supported in a backendRef\'s filters (put it on the rule, without backendRefs)' });
    const hf = f as HTTPRouteFilterT;
    if (hf.requestHeaderModifier !== undefined) checkHeaderFilter(hf.requestHeaderModifier, `${fat}.requestHeaderModifier`, errors);
    if (hf.responseHeaderModifier !== undefined) checkHeaderFilter(hf.responseHeaderModifier, `${fat}.responseHeaderModifier`, errors);
    if (hf.requestRedirect?.path !== undefined) checkPathModifier(hf.requestRedirect.path, `${fat}.requestRedirect.path`, ctx.onePrefixMatch, errors);
    if (hf.urlRewrite?.path !== undefined) checkPathModifier(hf.urlRewrite.path, `${fat}.urlRewrite.path`, ctx.onePrefixMatch, errors);
    const mirror = hf.requestMirror;
    if (mirror !== undefined) {
      if (mirror.percent !== undefined && mirror.fraction !== undefined) errors.push({ path: `${fat}.requestMirror`, message: 'percent and fraction are mutually exclusive' });
      if (mirror.fraction !== undefined && mirror.fraction.numerator > (mirror.fraction.denominator ?? 100)) {
        errors.push({ path: `${fat}.requestMirror.fraction.numerator`, message: 'must not be greater than denominator' });
      }
      checkBackendPort(mirror.backendRef, `${fat}.requestMirror.backendRef`, errors);
    }
  });
  if (seen.has('RequestRedirect') && seen.has('URLRewrite')) errors.push({ path: at, message: 'RequestRedirect and URLRewrite are mutually exclusive' });
}

function isServiceKind(ref: { group?: string | undefined; kind?: string | undefined }): boolean {
  return (ref.group === undefined || ref.group === '' || ref.group === 'core') && (ref.kind === undefined || ref.kind === 'Service');
}

function checkBackendPort(ref: { group?: string; kind?: string; port?: number }, at: string, errors: PolicyFieldError[]): void {
  if (isServiceKind(ref) && ref.port === undefined) errors.push({ path: `${at}.port`, message: 'is required for a Service reference' });
}

function checkRuleNames(rules: readonly { name?: string }[] | undefined, errors: PolicyFieldError[]): void {
  const seen = new Set<string>();
  rules?.forEach((r, i) => {
    if (r.name === undefined) return;
    if (seen.has(r.name)) errors.push({ path: `spec.rules[${i}].name`, message: `rule name ${r.name} is used twice (must be unique within the route)` });
    seen.add(r.name);
  });
}

function checkHTTPRoute(route: HTTPRoute, errors: PolicyFieldError[]): void {
  let total = 0;
  checkRuleNames(route.spec.rules, errors);
  (route.spec.rules ?? []).forEach((rule, r) => {
    const at = `spec.rules[${r}]`;
    if (rule.sessionPersistence !== undefined) errors.push({ path: `${at}.sessionPersistence`, message: 'is not supported by Weft' });
    const matches = rule.matches ?? [];
    total += Math.max(1, matches.length);
    matches.forEach((m, i) => checkMatch(m, `${at}.matches[${i}]`, errors));
    const onePrefixMatch = matches.length === 0 || (matches.length === 1 && (matches[0]!.path === undefined || (matches[0]!.path.type ?? 'PathPrefix') === 'PathPrefix'));
    checkFilters(rule.filters, `${at}.filters`, { onePrefixMatch, backendLevel: false, grpc: false }, errors);
    const redirect = rule.filters?.some((f) => f.type === 'RequestRedirect') ?? false;
    if (redirect && (rule.backendRefs?.length ?? 0) > 0) errors.push({ path: `${at}.backendRefs`, message: 'must be empty when the rule has a RequestRedirect filter' });
    rule.backendRefs?.forEach((b, i) => {
      checkBackendPort(b, `${at}.backendRefs[${i}]`, errors);
      checkFilters(b.filters, `${at}.backendRefs[${i}].filters`, { onePrefixMatch, backendLevel: true, grpc: false }, errors);
    });
    const t = rule.timeouts;
    if (t?.request !== undefined && t.backendRequest !== undefined) {
      const req = parseDuration(t.request);
      const back = parseDuration(t.backendRequest);
      if (req !== undefined && back !== undefined && req !== 0 && back > req) {
        errors.push({ path: `${at}.timeouts.backendRequest`, message: `must not be longer than request (${t.request})` });
      }
    }
  });
  if (total > MAX_TOTAL_MATCHES) errors.push({ path: 'spec.rules', message: `at most ${MAX_TOTAL_MATCHES} matches across all rules (got ${total})` });
}

const GRPC_SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

function checkGRPCRoute(route: GRPCRoute, errors: PolicyFieldError[]): void {
  checkRuleNames(route.spec.rules, errors);
  (route.spec.rules ?? []).forEach((rule, r) => {
    const at = `spec.rules[${r}]`;
    if (rule.sessionPersistence !== undefined) errors.push({ path: `${at}.sessionPersistence`, message: 'is not supported by Weft' });
    rule.matches?.forEach((m, i) => {
      const mat = `${at}.matches[${i}]`;
      const mm = m.method;
      if (mm !== undefined) {
        if (mm.service === undefined && mm.method === undefined) errors.push({ path: `${mat}.method`, message: 'one or both of service and method must be set' });
        if ((mm.type ?? 'Exact') === 'Exact') {
          if (mm.service !== undefined && !GRPC_SERVICE.test(mm.service)) errors.push({ path: `${mat}.method.service`, message: 'must be a fully qualified gRPC service name (package.Service)' });
          if (mm.method !== undefined && !GRPC_METHOD.test(mm.method)) errors.push({ path: `${mat}.method.method`, message: 'must be a gRPC method name' });
        } else {
          if (mm.service !== undefined) checkRegex(mm.service, `${mat}.method.service`, errors);
          if (mm.method !== undefined) checkRegex(mm.method, `${mat}.method.method`, errors);
        }
      }
      m.headers?.forEach((h, j) => {
        if (h.type === 'RegularExpression') checkRegex(h.value, `${mat}.headers[${j}].value`, errors);
      });
    });
    checkFilters(rule.filters, `${at}.filters`, { onePrefixMatch: false, backendLevel: false, grpc: true }, errors);
    rule.backendRefs?.forEach((b, i) => {
      checkBackendPort(b, `${at}.backendRefs[${i}]`, errors);
      checkFilters(b.filters, `${at}.backendRefs[${i}].filters`, { onePrefixMatch: false, backendLevel: true, grpc: true }, errors);
    });
  });
}

/**
 * Validation of HTTPFault and LocalRateLimitPolicy, field by field (the schema, then what it
 * cannot say), with the error shape of every other kind (policy/errors.ts).
 */
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import type { PolicyFieldError } from '../../../policy/errors.js';
import { describe, schemaErrors } from '../../../policy/validate.js';
import { parseDuration } from '../duration.js';
import { GATEWAY_GROUP } from '../schema.js';
import { HTTP_FAULT_KIND, HTTPFaultObject, LocalRateLimitPolicyObject, RATE_LIMIT_KIND, WEFT_API_VERSION, type HTTPFault, type LocalRateLimitPolicy, type WeftTrafficObject } from './schema.js';

export type WeftValidation = { readonly ok: true; readonly value: WeftTrafficObject } | { readonly ok: false; readonly errors: readonly PolicyFieldError[] };

/** Envoy's local_ratelimit refuses a fill_interval under 50 ms. */
export const MIN_FILL_INTERVAL_MS = 50;
const MAX_ERRORS = 50;

export function isWeftTrafficKind(kind: unknown, apiVersion: unknown): kind is 'HTTPFault' | 'LocalRateLimitPolicy' {
  return (kind === HTTP_FAULT_KIND || kind === RATE_LIMIT_KIND) && apiVersion === WEFT_API_VERSION;
}

function checkFault(f: HTTPFault, errors: PolicyFieldError[]): void {
  const { delay, abort } = f.spec;
  if (delay === undefined && abort === undefined) errors.push({ path: 'spec', message: 'must have delay or abort' });
  if (delay !== undefined && delay.percentage === undefined) errors.push({ path: 'spec.delay.percentage', message: 'is required (Istio leaves it at 0 %, a fault that applies to nothing; write value: 100 for every request)' });
  if (abort !== undefined) {
    if (abort.percentage === undefined) errors.push({ path: 'spec.abort.percentage', message: 'is required (Istio leaves it at 0 %, a fault that applies to nothing; write value: 100 for every request)' });
    if (abort.httpStatus === undefined && abort.grpcStatus === undefined) errors.push({ path: 'spec.abort', message: 'must have httpStatus or grpcStatus' });
  }
}

/** What a targetRef may name: an HTTPRoute or GRPCRoute, or a core Service (without sectionName). */
export function targetKindOf(t: { group: string; kind: string }): 'HTTPRoute' | 'GRPCRoute' | 'Service' | undefined {
  if (t.group === GATEWAY_GROUP && (t.kind === 'HTTPRoute' || t.kind === 'GRPCRoute')) return t.kind;
  if ((t.group === '' || t.group === 'core') && t.kind === 'Service') return 'Service';
  return undefined;
}

function checkRateLimit(p: LocalRateLimitPolicy, errors: PolicyFieldError[]): void {
  const seen = new Set<string>();
  p.spec.targetRefs.forEach((t, i) => {
    const at = `spec.targetRefs[${i}]`;
    const kind = targetKindOf(t);
    if (kind === undefined) errors.push({ path: `${at}.kind`, message: `must be an HTTPRoute or GRPCRoute (group ${GATEWAY_GROUP}) or a Service (group ""), got ${describe(`${t.group}/${t.kind}`)}` });
    if (kind === 'Service' && t.sectionName !== undefined) errors.push({ path: `${at}.sectionName`, message: 'is not supported for a Service target (the limit applies to every port)' });
    const key = `${t.group}/${t.kind}/${t.name}/${t.sectionName ?? ''}`;
    if (seen.has(key)) errors.push({ path: at, message: 'names the same target twice' });
    seen.add(key);
  });
  const b = p.spec.tokenBucket;
  const fill = parseDuration(b.fillInterval);
  if (fill !== undefined && fill < MIN_FILL_INTERVAL_MS) errors.push({ path: 'spec.tokenBucket.fillInterval', message: `must be at least ${MIN_FILL_INTERVAL_MS}ms (Envoy's local rate limit floor)` });
  if (b.tokensPerFill !== undefined && b.tokensPerFill > b.maxTokens) errors.push({ path: 'spec.tokenBucket.tokensPerFill', message: `must not be greater than maxTokens (${b.maxTokens})` });
}

/** Validates a parsed HTTPFault or LocalRateLimitPolicy; on success `value` is the same object, typed. */
export function validateWeftTrafficObject(obj: unknown): WeftValidation {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return { ok: false, errors: [{ path: '', message: 'must be an object' }] };
  const { kind, apiVersion } = obj as { kind?: unknown; apiVersion?: unknown };
  if (kind !== HTTP_FAULT_KIND && kind !== RATE_LIMIT_KIND) return { ok: false, errors: [{ path: 'kind', message: `must be ${HTTP_FAULT_KIND} or ${RATE_LIMIT_KIND} (got ${describe(kind)})` }] };
  if (apiVersion !== WEFT_API_VERSION) return { ok: false, errors: [{ path: 'apiVersion', message: `must be ${WEFT_API_VERSION} (got ${describe(apiVersion)})` }] };
  const schema: TSchema = kind === HTTP_FAULT_KIND ? HTTPFaultObject : LocalRateLimitPolicyObject;
  const errors = Value.Check(schema, obj) ? [] : schemaErrors(schema, obj);
  const more: PolicyFieldError[] = [];
  try {
    if (kind === HTTP_FAULT_KIND) checkFault(obj as HTTPFault, more);
    else checkRateLimit(obj as LocalRateLimitPolicy, more);
  } catch {
    // a mistyped tree: the schema pass named the field
  }
  const seen = new Set(errors.map((e) => e.path));
  for (const e of more) if (!seen.has(e.path)) errors.push(e);
  if (errors.length > 0) return { ok: false, errors: errors.slice(0, MAX_ERRORS) };
  return { ok: true, value: obj as WeftTrafficObject };
}

/**
 * Validation of AuthorizationPolicy and PeerAuthentication objects: the TypeBox schema first
 * (structure, types, formats), then the checks a schema cannot express (cross-field rules, `when`
 * values that depend on the key). Every problem is reported with the path of its field, so that
 * the agent can refuse one bad object, keep the previous version, and say exactly what to fix.
 */
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import type { PolicyFieldError } from './errors.js';
import { isIpOrCidr } from './ip.js';
import {
  AuthorizationPolicyObject,
  DEFAULT_ROOT_NAMESPACE,
  HEADER_CONDITION_PREFIX,
  isMatchPattern,
  isPortString,
  PeerAuthenticationObject,
  ACCEPTED_POLICY_API_VERSIONS,
  isPolicyApiVersion,
  type AuthorizationPolicy,
  type PeerAuthentication,
  type PolicyObject,
  TARGET_GATEWAY,
  TARGET_GATEWAY_CLASS,
  TARGET_SERVICE,
  targetGroupKind,
  targetRefsOf,
  WAYPOINT_CONDITION_KEYS,
} from './schema.js';

export interface ValidateOptions {
  /** Where GatewayClass targets may be (mesh-wide waypoint policies). Default `weft-system`. */
  readonly rootNamespace?: string;
  /** Namespace of objects without metadata.namespace. Default `default`. */
  readonly defaultNamespace?: string;
}

export type PolicyValidation<T = PolicyObject> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errors: readonly PolicyFieldError[] };

/** Enough problems to fix in one go; a pathological object should not produce megabytes of text. */
const MAX_ERRORS = 50;

/** Istio's `when` keys. L4 ones are checked by the agent; the others only by a waypoint. */
const CONDITION_KEYS = new Set([
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
  'remote.ip',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'connection.sni',
]);
const CONDITION_KEY_PREFIXES = ['request.headers[', 'request.auth.claims[', 'experimental.envoy.filters.'];

/**
 * Validates a parsed object (from YAML or the API server) as a Weft policy kind. On success
 * `value` is the same object, typed; nothing is defaulted or copied.
 */
export function validatePolicyObject(obj: unknown, options: ValidateOptions = {}): PolicyValidation {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return { ok: false, errors: [{ path: '', message: 'must be an object' }] };
  }
  const { kind, apiVersion } = obj as { kind?: unknown; apiVersion?: unknown };
  if (kind !== 'AuthorizationPolicy' && kind !== 'PeerAuthentication') {
    return { ok: false, errors: [{ path: 'kind', message: `must be AuthorizationPolicy or PeerAuthentication (got ${describe(kind)})` }] };
  }
  if (!isPolicyApiVersion(apiVersion)) {
    return { ok: false, errors: [{ path: 'apiVersion', message: `must be ${ACCEPTED_POLICY_API_VERSIONS.join(', ')} (got ${describe(apiVersion)})` }] };
  }
  const schema: TSchema = kind === 'AuthorizationPolicy' ? AuthorizationPolicyObject : PeerAuthenticationObject;
  // Check first: most objects are valid, and Check is much cheaper than collecting errors.
  const errors = Value.Check(schema, obj) ? [] : schemaErrors(schema, obj);
  // The cross-field checks run even when the schema failed, so one round reports everything; on
  // a mistyped tree they may trip over a value of the wrong type, which the schema already named.
  const more: PolicyFieldError[] = [];
  try {
    if (kind === 'AuthorizationPolicy') checkAuthorizationPolicy(obj as AuthorizationPolicy, more, options);
    else checkPeerAuthentication(obj as PeerAuthentication, more);
  } catch {
    // reported by the schema pass
  }
  const seen = new Set(errors.map((e) => e.path));
  for (const e of more) if (!seen.has(e.path)) errors.push(e);
  const action = errors.find((e) => e.path === 'spec.action');
  if (action !== undefined && (obj as { spec?: { action?: unknown } }).spec?.action === 'CUSTOM') {
    errors[errors.indexOf(action)] = { path: action.path, message: `${action.message}: CUSTOM (an external authorizer) is not supported` };
  }
  if (errors.length > 0) return { ok: false, errors: errors.slice(0, MAX_ERRORS) };
  return { ok: true, value: obj as PolicyObject };
}

/** Every schema problem of `obj`, one per field (agent/l7/validate.ts uses it for routes). */
export function schemaErrors(schema: TSchema, obj: unknown): PolicyFieldError[] {
  const out: PolicyFieldError[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, obj)) {
    const path = pointerToPath(e.path);
    // One message per field: a wrong type also fails its format, pattern and length checks.
    if (seen.has(path)) continue;
    seen.add(path);
    out.push({ path, message: messageFor(e) });
    if (out.length >= MAX_ERRORS) break;
  }
  return out;
}

function messageFor(e: ValueError): string {
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ObjectAdditionalProperties:
      return 'unknown field';
    case ValueErrorType.Object:
      return `must be an object (got ${describe(e.value)})`;
    case ValueErrorType.Array:
      return `must be a list (got ${describe(e.value)})`;
  }
  if ((e.schema as { format?: unknown }).format === 'weft-match' && typeof e.value === 'string' && /\{\*\*?\}/.test(e.value)) {
    return `Istio's path templates ({*}, {**}) are not supported; use prefix* or *suffix (got ${describe(e.value)})`;
  }
  const custom = (e.schema as { errorMessage?: unknown }).errorMessage;
  if (typeof custom === 'string') return `${custom} (got ${describe(e.value)})`;
  if (e.type === ValueErrorType.String) return `must be a string (got ${describe(e.value)})`;
  if (e.type === ValueErrorType.StringMinLength) return 'must not be empty';
  if (e.type === ValueErrorType.Literal) return `must be ${JSON.stringify((e.schema as { const?: unknown }).const)} (got ${describe(e.value)})`;
  return `${e.message} (got ${describe(e.value)})`;
}

/** A value as error messages quote it: short, never the whole object. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** JSON pointer `/spec/rules/0/from` -> `spec.rules[0].from`; odd keys as `["app.kubernetes.io/name"]`. */
export function pointerToPath(pointer: string): string {
  if (pointer === '') return '';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^[0-9]+$/.test(seg)) out += `[${seg}]`;
    else if (IDENT.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function nonEmpty(list: readonly unknown[] | undefined): boolean {
  return list !== undefined && list.length > 0;
}

function checkAuthorizationPolicy(p: AuthorizationPolicy, errors: PolicyFieldError[], options: ValidateOptions): void {
  const spec = p.spec;
  if (spec === undefined) return;
  if (spec.selector !== undefined && spec.targetRefs !== undefined) {
    errors.push({ path: 'spec.targetRefs', message: 'selector and targetRefs are mutually exclusive' });
  }
  if (spec.selector !== undefined && spec.targetRef !== undefined) {
    errors.push({ path: 'spec.targetRef', message: 'selector and targetRef are mutually exclusive' });
  }
  if (spec.targetRefs !== undefined && spec.targetRef !== undefined) {
    errors.push({ path: 'spec.targetRef', message: 'targetRef (deprecated) and targetRefs are mutually exclusive; use targetRefs' });
  }
  const namespace = p.metadata.namespace ?? options.defaultNamespace ?? 'default';
  const targets = targetRefsOf(spec);
  const targetsAt = spec.targetRefs !== undefined && spec.targetRefs.length > 0 ? 'spec.targetRefs' : 'spec.targetRef';
  targets.forEach((t, i) => checkTargetRef(t, targetsAt === 'spec.targetRefs' ? `${targetsAt}[${i}]` : targetsAt, namespace, options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE, errors));
  const atWaypoint = targets.length > 0;
  (spec.rules ?? []).forEach((rule, r) => {
    const at = `spec.rules[${r}]`;
    if (rule.from !== undefined && rule.from.length === 0) {
      errors.push({ path: `${at}.from`, message: 'must not be empty (leave it out to match any source)' });
    }
    rule.from?.forEach((f, i) => {
      if (!Object.values(f.source).some((v) => nonEmpty(v))) {
        errors.push({ path: `${at}.from[${i}].source`, message: 'must set at least one field' });
      }
      if (!atWaypoint) return;
      // A waypoint would have to enforce these; ignoring them would allow or deny the wrong requests.
      for (const field of ['requestPrincipals', 'notRequestPrincipals'] as const) {
        if (nonEmpty(f.source[field])) errors.push({ path: `${at}.from[${i}].source.${field}`, message: JWT_UNSUPPORTED });
      }
    });
    if (rule.to !== undefined && rule.to.length === 0) {
      errors.push({ path: `${at}.to`, message: 'must not be empty (leave it out to match any operation)' });
    }
    rule.to?.forEach((t, i) => {
      if (!Object.values(t.operation).some((v) => nonEmpty(v))) {
        errors.push({ path: `${at}.to[${i}].operation`, message: 'must set at least one field' });
      }
    });
    rule.when?.forEach((c, i) => checkCondition(c.key, c.values, c.notValues, `${at}.when[${i}]`, errors, atWaypoint));
  });
}

const JWT_UNSUPPORTED = 'JWT request authentication is not supported by Weft (no RequestAuthentication), so a waypoint cannot check it; remove it';
const WAYPOINT_KEYS: ReadonlySet<string> = new Set(WAYPOINT_CONDITION_KEYS);
/** An HTTP field name (RFC 9110 token), or an HTTP/2 pseudo-header the waypoint knows. */
const HEADER_NAME = /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|:authority|:method|:path|:scheme)$/;

/** Why a `when` key a node agent would fail closed on cannot be enforced by a waypoint either. */
function unsupportedAtWaypoint(key: string): string | undefined {
  if (WAYPOINT_KEYS.has(key)) return undefined;
  if (key.startsWith(HEADER_CONDITION_PREFIX)) {
    const name = key.slice(HEADER_CONDITION_PREFIX.length, -1);
    if (!key.endsWith(']') || !HEADER_NAME.test(name)) return `key ${JSON.stringify(key)}: the header name must be request.headers[NAME] with NAME an HTTP field name`;
    return undefined;
  }
  if (key.startsWith('request.auth.')) return `key ${JSON.stringify(key)}: ${JWT_UNSUPPORTED}`;
  if (key === 'connection.sni') return `key "connection.sni" is not supported at a waypoint: requests arrive inside HBONE without the application's TLS, so there is no SNI to check`;
  return `key ${JSON.stringify(key)} is not supported at a waypoint (supported: ${WAYPOINT_CONDITION_KEYS.join(', ')}, request.headers[NAME])`;
}

function checkTargetRef(t: { group?: string | undefined; kind: string; name: string; namespace?: string | undefined }, at: string, namespace: string, rootNamespace: string, errors: PolicyFieldError[]): void {
  if (typeof t !== 'object' || t === null || typeof t.kind !== 'string') return; // the schema names it
  const gk = targetGroupKind(t);
  if (gk === TARGET_GATEWAY_CLASS) {
    if (namespace !== rootNamespace) errors.push({ path: `${at}.kind`, message: `a GatewayClass target (every waypoint) is only allowed in the root namespace ${rootNamespace}` });
    if (t.namespace !== undefined) errors.push({ path: `${at}.namespace`, message: 'a GatewayClass is cluster-scoped: leave namespace out' });
    return;
  }
  if (gk !== TARGET_SERVICE && gk !== TARGET_GATEWAY) {
    const hint =
      t.kind === 'Gateway' ? ' (a Gateway target needs group gateway.networking.k8s.io)' : t.kind === 'Service' ? " (a Service target needs group '' or no group)" : t.kind === 'ServiceEntry' ? ' (Weft has no ServiceEntry)' : '';
    errors.push({ path: `${at}.kind`, message: `unsupported target ${gk === `/${t.kind}` ? t.kind : gk}${hint}: use a Service, a Gateway of class weft-waypoint, or the GatewayClass weft-waypoint` });
    return;
  }
  if (t.namespace !== undefined && t.namespace !== namespace) {
    errors.push({ path: `${at}.namespace`, message: `cross-namespace targets are not supported: must be the policy's namespace ${namespace} or absent (got ${describe(t.namespace)})` });
  }
}

function checkCondition(key: string, values: readonly string[] | undefined, notValues: readonly string[] | undefined, at: string, errors: PolicyFieldError[], atWaypoint: boolean): void {
  if (!CONDITION_KEYS.has(key) && !CONDITION_KEY_PREFIXES.some((p) => key.startsWith(p))) {
    errors.push({ path: `${at}.key`, message: `unknown key ${JSON.stringify(key)} (L4 keys: source.ip, source.namespace, source.principal, destination.ip, destination.port)` });
    return;
  }
  const refused = atWaypoint ? unsupportedAtWaypoint(key) : undefined;
  if (refused !== undefined) {
    errors.push({ path: `${at}.key`, message: refused });
    return;
  }
  if (!nonEmpty(values) && !nonEmpty(notValues)) {
    errors.push({ path: at, message: `at least one of values or notValues must be set for key ${key}` });
    return;
  }
  let check: ((v: string) => boolean) | undefined;
  let what = '';
  if (key === 'source.ip' || key === 'destination.ip' || key === 'remote.ip') {
    check = isIpOrCidr;
    what = 'not a CIDR or IP address';
  } else if (key === 'destination.port') {
    check = isPortString;
    what = 'not a port number (a string, 1-65535)';
  } else if (key === 'source.principal' || key === 'source.namespace' || (atWaypoint && key.startsWith(HEADER_CONDITION_PREFIX))) {
    // Header values only matter where they are matched: a node agent ignores them (fails closed).
    check = isMatchPattern;
    what = "must be non-empty, with '*' only alone, as a prefix (*suffix) or as a suffix (prefix*)";
  }
  if (check === undefined) return;
  for (const [field, list] of [['values', values], ['notValues', notValues]] as const) {
    list?.forEach((v, i) => {
      if (!check(v)) errors.push({ path: `${at}.${field}[${i}]`, message: `${what} (got ${describe(v)})` });
    });
  }
}

function checkPeerAuthentication(p: PeerAuthentication, errors: PolicyFieldError[]): void {
  const spec = p.spec;
  if (spec?.portLevelMtls === undefined) return;
  const selected = spec.selector?.matchLabels !== undefined && Object.keys(spec.selector.matchLabels).length > 0;
  if (!selected && Object.keys(spec.portLevelMtls).length > 0) {
    errors.push({ path: 'spec.portLevelMtls', message: 'needs a selector with matchLabels (port-level mTLS applies to selected workloads only)' });
  }
  for (const port of Object.keys(spec.portLevelMtls)) {
    if (!isPortString(port)) {
      const escaped = port.replace(/~/g, '~0').replace(/\//g, '~1');
      errors.push({ path: pointerToPath(`/spec/portLevelMtls/${escaped}`), message: 'key is not a port number (1-65535)' });
    }
  }
}

/** Validates and narrows to one kind; `kind` mismatches are reported like any other field. */
export function validateAuthorizationPolicy(obj: unknown): PolicyValidation<AuthorizationPolicy> {
  const r = validatePolicyObject(obj);
  if (r.ok && r.value.kind !== 'AuthorizationPolicy') return { ok: false, errors: [{ path: 'kind', message: 'must be AuthorizationPolicy' }] };
  return r as PolicyValidation<AuthorizationPolicy>;
}

export function validatePeerAuthentication(obj: unknown): PolicyValidation<PeerAuthentication> {
  const r = validatePolicyObject(obj);
  if (r.ok && r.value.kind !== 'PeerAuthentication') return { ok: false, errors: [{ path: 'kind', message: 'must be PeerAuthentication' }] };
  return r as PolicyValidation<PeerAuthentication>;
}

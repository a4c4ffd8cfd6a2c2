/**
 * Validation of VirtualService and DestinationRule, field by field (policy/validate.ts's error
 * shape and helpers, as agent/l7/validate.ts does for HTTPRoute): the schema, then what the
 * schema cannot say (one of exact/prefix/regex, regex safety, route xor redirect, weights) and
 * what Weft does not implement, refused by name with the reason.
 */
import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import type { PolicyFieldError } from '../../../policy/errors.js';
import { describe, schemaErrors } from '../../../policy/validate.js';
import { regexProblem } from '../regex.js';
import { linearSearchRegex } from '../paths.js';
import { DestinationRuleObject, ISTIO_NETWORKING_VERSIONS, VirtualServiceObject, type DestinationRule, type IstioObject, type IstioStringMatch, type IstioTrafficPolicy, type VirtualService } from './schema.js';

export type IstioValidation = { readonly ok: true; readonly value: IstioObject } | { readonly ok: false; readonly errors: readonly PolicyFieldError[] };

const MAX_ERRORS = 50;
const DURATION_PART = /([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)/g;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** Istio's durations (`0.5s`, `7s`, `3m`, `1h30m`) in ms; the schema checked the shape. */
export function istioDurationMs(text: string): number {
  let ms = 0;
  for (const m of text.matchAll(DURATION_PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(ms);
}

export function isIstioRouteKind(kind: unknown, apiVersion: unknown): kind is 'VirtualService' | 'DestinationRule' {
  return (kind === 'VirtualService' || kind === 'DestinationRule') && typeof apiVersion === 'string' && ISTIO_NETWORKING_VERSIONS.includes(apiVersion);
}

/** Fields Istio has that Weft refuses, with why (the message of the refusal). */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  scheme: 'matching on the scheme is not supported (mesh traffic is http inside HBONE)',
  authority: 'matching on the authority is not supported; bind the VirtualService to the Service by hosts',
  withoutHeaders: 'withoutHeaders is not supported',
  sourceLabels: 'sourceLabels is not supported on a waypoint (the source is not the waypoint\'s pod)',
  gateways: 'match.gateways is not supported; use spec.gateways',
  sourceNamespace: 'sourceNamespace is not supported',
  statPrefix: 'statPrefix is not supported',
  retryRemoteLocalities: 'retryRemoteLocalities is not supported (one locality)',
  retryIgnorePreviousHosts: 'retryIgnorePreviousHosts is not supported (which endpoint a retry picks is the engine\'s load balancer\'s choice)',
  retryBudget: 'trafficPolicy.retryBudget is not supported (the waypoint keeps its own budget: retries never exceed 20 % of a backend\'s requests)',
  exponentialDelay: 'exponentialDelay is not supported; use fixedDelay',
  http2Error: 'http2Error aborts are not supported; use httpStatus',
  delegate: 'delegate VirtualServices are not supported',
  directResponse: 'directResponse is not supported yet',
  corsPolicy: 'corsPolicy is not supported',
  tcp: 'tcp routes are not supported (the waypoint routes HTTP)',
  tls: 'tls routes are not supported (the waypoint routes HTTP)',
  httpCookie: 'consistentHash.httpCookie is not supported; use httpHeaderName, httpQueryParameterName or useSourceIp',
  ringHash: 'ringHash is not supported',
  maglev: 'maglev is not supported',
  minimumRingSize: 'minimumRingSize is not supported',
  localityLbSetting: 'localityLbSetting is not supported (one locality)',
  warmupDurationSecs: 'warmupDurationSecs is not supported',
  warmup: 'warmup is not supported',
  tcpKeepalive: 'tcpKeepalive is not supported',
  maxConnectionDuration: 'maxConnectionDuration is not supported',
  h2UpgradePolicy: 'h2UpgradePolicy is not supported',
  useClientProtocol: 'useClientProtocol is not supported',
  maxConcurrentStreams: 'maxConcurrentStreams is not supported',
  consecutiveErrors: 'consecutiveErrors (deprecated) is not supported; use consecutive5xxErrors',
  splitExternalLocalOriginErrors: 'splitExternalLocalOriginErrors is not supported',
  consecutiveLocalOriginFailures: 'consecutiveLocalOriginFailures is not supported',
  proxyProtocol: 'proxyProtocol is not supported',
  tunnel: 'tunnel is not supported',
  workloadSelector: 'workloadSelector is not supported (a DestinationRule applies to its host)',
};
const TLS_FIELD = 'trafficPolicy.tls is not supported: the mesh\'s mTLS is HBONE\'s (PeerAuthentication), not per destination';

/** Every present field named in UNSUPPORTED, anywhere below `v` (the schema fixed where they may be). */
function unsupportedFields(v: unknown, at: string, out: PolicyFieldError[]): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => unsupportedFields(x, `${at}[${i}]`, out));
    return;
  }
  if (v === null || typeof v !== 'object') return;
  for (const [k, x] of Object.entries(v)) {
    const path = at === '' ? k : `${at}.${k}`;
    // Label and header maps: their keys are data, not fields.
    if (k === 'labels' || k === 'headers' || k === 'queryParams' || k === 'set' || k === 'add' || k === 'metadata') {
      if (k === 'headers' && x !== null && typeof x === 'object' && !Array.isArray(x)) for (const [hk, hv] of Object.entries(x)) unsupportedFields(hv, `${path}.${hk}`, out);
      continue;
    }
    if (x === undefined) continue;
    const inMatch = /\.match\[\d+\]$/.test(at);
    if (k === 'tls' && (at.endsWith('trafficPolicy') || /portLevelSettings\[\d+\]$/.test(at))) out.push({ path, message: TLS_FIELD });
    else if ((k === 'scheme' || k === 'authority' || k === 'gateways') && !inMatch) unsupportedFields(x, path, out);
    else if (k in UNSUPPORTED && !((k === 'tls' || k === 'tcp') && at !== 'spec')) out.push({ path, message: UNSUPPORTED[k]! });
    else unsupportedFields(x, path, out);
  }
}

function checkStringMatch(m: IstioStringMatch | undefined, at: string, errors: PolicyFieldError[]): void {
  if (m === undefined) return;
  const set = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined);
  if (set.length !== 1) errors.push({ path: at, message: `must have exactly one of exact, prefix, regex (got ${set.length === 0 ? 'none' : set.join(', ')})` });
  if (m.regex !== undefined) {
    const p = regexProblem(m.regex);
    if (p !== undefined) errors.push({ path: `${at}.regex`, message: p });
  }
}

function checkTrafficPolicy(p: IstioTrafficPolicy | undefined, at: string, errors: PolicyFieldError[]): void {
  checkPolicyFields(p, at, errors);
  const ports = new Set<number>();
  p?.portLevelSettings?.forEach((pl, i) => {
    const pat = `${at}.portLevelSettings[${i}]`;
    if (ports.has(pl.port.number)) errors.push({ path: `${pat}.port.number`, message: `port ${pl.port.number} has two portLevelSettings` });
    ports.add(pl.port.number);
    checkPolicyFields(pl, pat, errors);
  });
}

function checkPolicyFields(p: Pick<IstioTrafficPolicy, 'loadBalancer'> | undefined, at: string, errors: PolicyFieldError[]): void {
  const lb = p?.loadBalancer;
  if (lb !== undefined && lb.simple !== undefined && lb.consistentHash !== undefined) errors.push({ path: `${at}.loadBalancer`, message: 'must have one of simple, consistentHash' });
  const h = lb?.consistentHash;
  if (h !== undefined) {
    const n = [h.httpHeaderName, h.useSourceIp, h.httpQueryParameterName].filter((x) => x !== undefined).length;
    if (n !== 1) errors.push({ path: `${at}.loadBalancer.consistentHash`, message: 'must have exactly one of httpHeaderName, useSourceIp, httpQueryParameterName' });
  }
}

function checkVirtualService(vs: VirtualService, errors: PolicyFieldError[]): void {
  const hosts = vs.spec.hosts ?? [];
  if (hosts.length === 0) errors.push({ path: 'spec.hosts', message: 'must list at least one host (the Services the VirtualService applies to)' });
  hosts.forEach((h, i) => {
    if (h.includes('*') && (vs.spec.gateways ?? ['mesh']).includes('mesh')) errors.push({ path: `spec.hosts[${i}]`, message: `wildcard hosts are not supported in the mesh: name a Service (got ${describe(h)})` });
  });
  (vs.spec.http ?? []).forEach((r, i) => {
    const at = `spec.http[${i}]`;
    (r.match ?? []).forEach((m, j) => {
      const mt = `${at}.match[${j}]`;
      checkStringMatch(m.uri, `${mt}.uri`, errors);
      if (m.uri?.exact !== undefined && !m.uri.exact.startsWith('/')) errors.push({ path: `${mt}.uri.exact`, message: 'must be an absolute path (start with /)' });
      if (m.uri?.prefix !== undefined && !m.uri.prefix.startsWith('/')) errors.push({ path: `${mt}.uri.prefix`, message: 'must be an absolute path (start with /)' });
      checkStringMatch(m.method, `${mt}.method`, errors);
      if (m.method !== undefined && m.method.exact === undefined) errors.push({ path: `${mt}.method`, message: 'only exact is supported for the method' });
      for (const [k, v] of Object.entries(m.headers ?? {})) checkStringMatch(v, `${mt}.headers.${k}`, errors);
      for (const [k, v] of Object.entries(m.queryParams ?? {})) checkStringMatch(v, `${mt}.queryParams.${k}`, errors);
    });
    const routes = r.route ?? [];
    if (r.redirect !== undefined && routes.length > 0) errors.push({ path: `${at}.redirect`, message: 'must not be set together with route' });
    if (r.redirect === undefined && routes.length === 0) errors.push({ path: `${at}.route`, message: 'is required (or redirect)' });
    if (r.redirect !== undefined && (r.rewrite !== undefined || r.mirror !== undefined || r.fault !== undefined || r.retries !== undefined)) {
      errors.push({ path: `${at}.redirect`, message: 'must not be set together with rewrite, mirror, fault or retries' });
    }
    if (r.redirect?.port !== undefined && r.redirect.derivePort !== undefined) errors.push({ path: `${at}.redirect.derivePort`, message: 'must not be set together with port' });
    if (r.rewrite?.uri !== undefined && !r.rewrite.uri.startsWith('/')) errors.push({ path: `${at}.rewrite.uri`, message: 'must be an absolute path (start with /)' });
    const rx = r.rewrite?.uriRegexRewrite;
    if (rx !== undefined) {
      if (r.rewrite!.uri !== undefined) errors.push({ path: `${at}.rewrite.uriRegexRewrite`, message: 'must not be set together with rewrite.uri' });
      const p = regexProblem(rx.match);
      if (p !== undefined) errors.push({ path: `${at}.rewrite.uriRegexRewrite.match`, message: p });
      // Every match in the path is replaced: an unanchored search, linear only on V8's linear-time engine.
      else if (linearSearchRegex(rx.match) === undefined) errors.push({ path: `${at}.rewrite.uriRegexRewrite.match`, message: 'needs V8\'s linear-time regex engine, which this Node does not have or which refuses this pattern' });
    }
    if (r.redirect?.uri !== undefined && !r.redirect.uri.startsWith('/')) errors.push({ path: `${at}.redirect.uri`, message: 'must be an absolute path (start with /)' });
    if (routes.length > 1 && routes.some((d) => d.weight === undefined)) {
      routes.forEach((d, j) => {
        if (d.weight === undefined) errors.push({ path: `${at}.route[${j}].weight`, message: 'is required when the route has more than one destination' });
      });
    }
    if (r.mirrorPercentage !== undefined && r.mirrorPercent !== undefined) errors.push({ path: `${at}.mirrorPercent`, message: 'must not be set together with mirrorPercentage' });
    if (r.mirror === undefined && (r.mirrorPercentage !== undefined || r.mirrorPercent !== undefined)) errors.push({ path: `${at}.mirror`, message: 'is required with mirrorPercentage' });
    if (r.mirror !== undefined && r.mirrors !== undefined) errors.push({ path: `${at}.mirrors`, message: 'must not be set together with mirror (Istio: one or the other)' });
    if (r.redirect !== undefined && r.mirrors !== undefined) errors.push({ path: `${at}.redirect`, message: 'must not be set together with mirrors' });
    const f = r.fault;
    if (f !== undefined) {
      if (f.delay === undefined && f.abort === undefined) errors.push({ path: `${at}.fault`, message: 'must have delay or abort' });
      if (f.delay?.percent !== undefined && f.delay.percentage !== undefined) errors.push({ path: `${at}.fault.delay.percent`, message: 'must not be set together with percentage' });
      if (f.abort?.percent !== undefined && f.abort.percentage !== undefined) errors.push({ path: `${at}.fault.abort.percent`, message: 'must not be set together with percentage' });
      if (f.abort !== undefined && (f.abort.httpStatus === undefined) === (f.abort.grpcStatus === undefined)) errors.push({ path: `${at}.fault.abort`, message: 'must have exactly one of httpStatus, grpcStatus' });
    }
  });
}

function checkDestinationRule(dr: DestinationRule, errors: PolicyFieldError[]): void {
  if (dr.spec.host.includes('*')) errors.push({ path: 'spec.host', message: `wildcard hosts are not supported: name a Service (got ${describe(dr.spec.host)})` });
  checkTrafficPolicy(dr.spec.trafficPolicy, 'spec.trafficPolicy', errors);
  const names = new Set<string>();
  (dr.spec.subsets ?? []).forEach((s, i) => {
    if (names.has(s.name)) errors.push({ path: `spec.subsets[${i}].name`, message: `subset ${s.name} appears twice` });
    names.add(s.name);
    checkTrafficPolicy(s.trafficPolicy, `spec.subsets[${i}].trafficPolicy`, errors);
  });
}

/** Validates a parsed VirtualService or DestinationRule; on success `value` is the same object, typed. */
export function validateIstioObject(obj: unknown): IstioValidation {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return { ok: false, errors: [{ path: '', message: 'must be an object' }] };
  const { kind, apiVersion } = obj as { kind?: unknown; apiVersion?: unknown };
  if (kind !== 'VirtualService' && kind !== 'DestinationRule') return { ok: false, errors: [{ path: 'kind', message: `must be VirtualService or DestinationRule (got ${describe(kind)})` }] };
  if (typeof apiVersion !== 'string' || !ISTIO_NETWORKING_VERSIONS.includes(apiVersion)) {
    return { ok: false, errors: [{ path: 'apiVersion', message: `must be one of ${ISTIO_NETWORKING_VERSIONS.join(', ')} (got ${describe(apiVersion)})` }] };
  }
  const schema: TSchema = kind === 'VirtualService' ? VirtualServiceObject : DestinationRuleObject;
  const errors = Value.Check(schema, obj) ? [] : schemaErrors(schema, obj);
  const more: PolicyFieldError[] = [];
  unsupportedFields((obj as { spec?: unknown }).spec, 'spec', more);
  try {
    if (kind === 'VirtualService') checkVirtualService(obj as VirtualService, more);
    else checkDestinationRule(obj as DestinationRule, more);
  } catch {
    // a mistyped tree: the schema pass named the field
  }
  const seen = new Set(errors.map((e) => e.path));
  for (const e of more) if (!seen.has(e.path)) errors.push(e);
  if (errors.length > 0) return { ok: false, errors: errors.slice(0, MAX_ERRORS) };
  return { ok: true, value: obj as IstioObject };
}

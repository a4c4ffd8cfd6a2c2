/**
 * TypeBox schemas of the Gateway API route kinds Weft reads (gateway.networking.k8s.io/v1
 * HTTPRoute and GRPCRoute, and ReferenceGrant), the subset of fields with their limits from the
 * API's CRDs (maxItems, lengths, enums). What a schema cannot say (the CRDs' CEL rules, the
 * regex safety check, what Weft does not support) is checked in validate.ts. Unknown fields are
 * refused: a field Weft does not know would otherwise be silently not enforced.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { msg } from '../../policy/schema.js';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const ROUTE_API_VERSION = `${GATEWAY_GROUP}/v1`;
/** ReferenceGrant is served as v1beta1 (and v1 by newer releases): both are read. */
export const REFERENCE_GRANT_API_VERSIONS: readonly string[] = [`${GATEWAY_GROUP}/v1beta1`, `${GATEWAY_GROUP}/v1`];

const obj = <T extends Record<string, TSchema>>(props: T, description?: string) =>
  Type.Object(props, { additionalProperties: false, ...(description !== undefined ? { description } : {}) });

const Name = msg(Type.String({ minLength: 1, maxLength: 253 }), 'must be a non-empty string of at most 253 characters');
const Group = msg(Type.String({ maxLength: 253 }), 'must be a string of at most 253 characters');
const Kind = msg(Type.String({ minLength: 1, maxLength: 63 }), 'must be a non-empty string of at most 63 characters');
const Port = msg(Type.Integer({ minimum: 1, maximum: 65535 }), 'must be an integer 1-65535');

export const ParentReference = obj({
  group: Type.Optional(Group),
  kind: Type.Optional(Kind),
  namespace: Type.Optional(Name),
  name: Name,
  sectionName: Type.Optional(Name),
  port: Type.Optional(Port),
});

const HeaderName = msg(
  Type.String({ minLength: 1, maxLength: 256, pattern: "^[A-Za-z0-9!#$%&'*+\\-.^_`|~]+$" }),
  'must be an HTTP header name (1-256 token characters)',
);
const HeaderValue = msg(Type.String({ minLength: 1, maxLength: 4096 }), 'must be a string of 1-4096 characters');
const MatchType = msg(Type.Union([Type.Literal('Exact'), Type.Literal('RegularExpression')]), 'must be Exact or RegularExpression');

export const HTTPHeaderMatch = obj({ type: Type.Optional(MatchType), name: HeaderName, value: HeaderValue });
export const HTTPQueryParamMatch = obj({
  type: Type.Optional(MatchType),
  name: msg(Type.String({ minLength: 1, maxLength: 256, pattern: "^[A-Za-z0-9!#$%&'*+\\-.^_`|~]+$" }), 'must be a query parameter name (1-256 token characters)'),
  value: HeaderValue,
});

export const HTTPPathMatch = obj({
  type: Type.Optional(msg(Type.Union([Type.Literal('Exact'), Type.Literal('PathPrefix'), Type.Literal('RegularExpression')]), 'must be Exact, PathPrefix or RegularExpression')),
  value: Type.Optional(msg(Type.String({ maxLength: 1024 }), 'must be a string of at most 1024 characters')),
});

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

export const HTTPRouteMatch = obj({
  path: Type.Optional(HTTPPathMatch),
  headers: Type.Optional(Type.Array(HTTPHeaderMatch, { maxItems: 16 })),
  queryParams: Type.Optional(Type.Array(HTTPQueryParamMatch, { maxItems: 16 })),
  method: Type.Optional(msg(Type.Union(HTTP_METHODS.map((m) => Type.Literal(m))), `must be one of ${HTTP_METHODS.join(', ')}`)),
});

const HTTPHeader = obj({ name: HeaderName, value: msg(Type.String({ maxLength: 4096 }), 'must be a string of at most 4096 characters') });
export const HTTPHeaderFilter = obj({
  set: Type.Optional(Type.Array(HTTPHeader, { maxItems: 16 })),
  add: Type.Optional(Type.Array(HTTPHeader, { maxItems: 16 })),
  remove: Type.Optional(Type.Array(HeaderName, { maxItems: 16 })),
});

export const HTTPPathModifier = obj({
  type: msg(Type.Union([Type.Literal('ReplaceFullPath'), Type.Literal('ReplacePrefixMatch')]), 'must be ReplaceFullPath or ReplacePrefixMatch'),
  replaceFullPath: Type.Optional(msg(Type.String({ maxLength: 1024 }), 'must be a string of at most 1024 characters')),
  replacePrefixMatch: Type.Optional(msg(Type.String({ maxLength: 1024 }), 'must be a string of at most 1024 characters')),
});

/** RFC 1123 hostname without wildcard (Gateway API PreciseHostname). */
const PreciseHostname = msg(
  Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' }),
  'must be a lower-case RFC 1123 hostname without wildcard',
);

export const HTTPRequestRedirectFilter = obj({
  scheme: Type.Optional(msg(Type.Union([Type.Literal('http'), Type.Literal('https')]), 'must be http or https')),
  hostname: Type.Optional(PreciseHostname),
  path: Type.Optional(HTTPPathModifier),
  port: Type.Optional(Port),
  statusCode: Type.Optional(
    msg(Type.Union([Type.Literal(301), Type.Literal(302), Type.Literal(303), Type.Literal(307), Type.Literal(308)]), 'must be one of 301, 302, 303, 307, 308'),
  ),
});

export const HTTPURLRewriteFilter = obj({ hostname: Type.Optional(PreciseHostname), path: Type.Optional(HTTPPathModifier) });

export const BackendObjectReference = obj({
  group: Type.Optional(Group),
  kind: Type.Optional(Kind),
  name: Name,
  namespace: Type.Optional(Name),
  port: Type.Optional(Port),
});

export const HTTPRequestMirrorFilter = obj({
  backendRef: BackendObjectReference,
  percent: Type.Optional(msg(Type.Integer({ minimum: 0, maximum: 100 }), 'must be an integer 0-100')),
  fraction: Type.Optional(
    obj({
      numerator: msg(Type.Integer({ minimum: 0 }), 'must be an integer >= 0'),
      denominator: Type.Optional(msg(Type.Integer({ minimum: 1 }), 'must be an integer >= 1')),
    }),
  ),
});

/** Gateway API LocalObjectReference: what an ExtensionRef filter names (Weft: group weft.dev, kind HTTPFault). */
export const LocalObjectReference = obj({ group: Group, kind: Kind, name: Name });

/**
 * Every filter type of the API, so that an unsupported one is refused with a clear message
 * (validate.ts) rather than as an unknown value. The shapes of the unsupported ones (CORS,
 * ExternalAuth) are not checked.
 */
export const FILTER_TYPES = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS', 'ExternalAuth'] as const;
export const HTTPRouteFilter = obj({
  type: msg(Type.Union(FILTER_TYPES.map((t) => Type.Literal(t))), `must be one of ${FILTER_TYPES.join(', ')}`),
  requestHeaderModifier: Type.Optional(HTTPHeaderFilter),
  responseHeaderModifier: Type.Optional(HTTPHeaderFilter),
  requestMirror: Type.Optional(HTTPRequestMirrorFilter),
  requestRedirect: Type.Optional(HTTPRequestRedirectFilter),
  urlRewrite: Type.Optional(HTTPURLRewriteFilter),
  extensionRef: Type.Optional(LocalObjectReference),
  cors: Type.Optional(Type.Unknown()),
  externalAuth: Type.Optional(Type.Unknown()),
});

const Weight = msg(Type.Integer({ minimum: 0, maximum: 1000000 }), 'must be an integer 0-1000000');

export const HTTPBackendRef = obj({
  group: Type.Optional(Group),
  kind: Type.Optional(Kind),
  name: Name,
  namespace: Type.Optional(Name),
  port: Type.Optional(Port),
  weight: Type.Optional(Weight),
  filters: Type.Optional(Type.Array(HTTPRouteFilter, { maxItems: 16 })),
});

/** GEP-2257: `1h`, `500ms`, `1m30s`; parsed in duration.ts. */
const Duration = msg(Type.String({ pattern: '^([0-9]{1,5}(h|m|s|ms)){1,4}$' }), 'must be a Gateway API duration such as 10s, 500ms or 1m30s');

export const HTTPRouteTimeouts = obj({ request: Type.Optional(Duration), backendRequest: Type.Optional(Duration) });

/** GEP-1731 (standard channel since v1.3): codes 400-599 as the CRD bounds them, attempts, backoff. */
export const HTTPRouteRetry = obj({
  codes: Type.Optional(Type.Array(msg(Type.Integer({ minimum: 400, maximum: 599 }), 'must be an HTTP status code 400-599'), { maxItems: 200 })),
  attempts: Type.Optional(msg(Type.Integer({ minimum: 0, maximum: 100 }), 'must be an integer 0-100')),
  backoff: Type.Optional(Duration),
});

const SectionName = msg(Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' }), 'must be a lower-case RFC 1123 name');

export const HTTPRouteRule = obj({
  name: Type.Optional(SectionName),
  matches: Type.Optional(Type.Array(HTTPRouteMatch, { maxItems: 64 })),
  filters: Type.Optional(Type.Array(HTTPRouteFilter, { maxItems: 16 })),
  backendRefs: Type.Optional(Type.Array(HTTPBackendRef, { maxItems: 16 })),
  timeouts: Type.Optional(HTTPRouteTimeouts),
  retry: Type.Optional(HTTPRouteRetry),
  // An experimental field Weft does not implement: refused in validate.ts.
  sessionPersistence: Type.Optional(Type.Unknown()),
});

/** The metadata fields routing reads; the rest of metadata is allowed and ignored. */
export const RouteMetadata = Type.Object({
  name: msg(Type.String({ minLength: 1 }), 'must be a non-empty string'),
  namespace: Type.Optional(Type.String({ minLength: 1 })),
  creationTimestamp: Type.Optional(Type.String()),
  generation: Type.Optional(Type.Integer()),
});

const Hostnames = Type.Optional(Type.Array(msg(Type.String({ minLength: 1, maxLength: 253 }), 'must be a hostname'), { maxItems: 16 }));

export const HTTPRouteObject = Type.Object({
  apiVersion: msg(Type.Literal(ROUTE_API_VERSION), `must be ${ROUTE_API_VERSION}`),
  kind: Type.Literal('HTTPRoute'),
  metadata: RouteMetadata,
  spec: obj({
    parentRefs: Type.Optional(Type.Array(ParentReference, { maxItems: 32 })),
    hostnames: Hostnames,
    // MinItems 1 as in the CRD (which defaults an absent list to one catch-all rule).
    rules: Type.Optional(Type.Array(HTTPRouteRule, { minItems: 1, maxItems: 16 })),
  }),
  status: Type.Optional(Type.Unknown()),
});

export const GRPCMethodMatch = obj({
  type: Type.Optional(MatchType),
  service: Type.Optional(msg(Type.String({ minLength: 1, maxLength: 1024 }), 'must be a string of 1-1024 characters')),
  method: Type.Optional(msg(Type.String({ minLength: 1, maxLength: 1024 }), 'must be a string of 1-1024 characters')),
});

export const GRPCRouteMatch = obj({
  method: Type.Optional(GRPCMethodMatch),
  headers: Type.Optional(Type.Array(HTTPHeaderMatch, { maxItems: 16 })),
});

/** GRPCRoute allows the header modifiers and mirrors (and ExtensionRef); no redirect, no rewrite. */
export const GRPC_FILTER_TYPES = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef'] as const;
export const GRPCRouteFilter = obj({
  type: msg(Type.Union(GRPC_FILTER_TYPES.map((t) => Type.Literal(t))), `must be one of ${GRPC_FILTER_TYPES.join(', ')}`),
  requestHeaderModifier: Type.Optional(HTTPHeaderFilter),
  responseHeaderModifier: Type.Optional(HTTPHeaderFilter),
  requestMirror: Type.Optional(HTTPRequestMirrorFilter),
  extensionRef: Type.Optional(LocalObjectReference),
});

export const GRPCBackendRef = obj({
  group: Type.Optional(Group),
  kind: Type.Optional(Kind),
  name: Name,
  namespace: Type.Optional(Name),
  port: Type.Optional(Port),
  weight: Type.Optional(Weight),
  filters: Type.Optional(Type.Array(GRPCRouteFilter, { maxItems: 16 })),
});

export const GRPCRouteRule = obj({
  name: Type.Optional(SectionName),
  matches: Type.Optional(Type.Array(GRPCRouteMatch, { maxItems: 8 })),
  filters: Type.Optional(Type.Array(GRPCRouteFilter, { maxItems: 16 })),
  backendRefs: Type.Optional(Type.Array(GRPCBackendRef, { maxItems: 16 })),
  sessionPersistence: Type.Optional(Type.Unknown()),
});

export const GRPCRouteObject = Type.Object({
  apiVersion: msg(Type.Literal(ROUTE_API_VERSION), `must be ${ROUTE_API_VERSION}`),
  kind: Type.Literal('GRPCRoute'),
  metadata: RouteMetadata,
  spec: obj({
    parentRefs: Type.Optional(Type.Array(ParentReference, { maxItems: 32 })),
    hostnames: Hostnames,
    rules: Type.Optional(Type.Array(GRPCRouteRule, { maxItems: 16 })),
  }),
  status: Type.Optional(Type.Unknown()),
});

export type ParentReferenceT = Static<typeof ParentReference>;
export type BackendObjectReferenceT = Static<typeof BackendObjectReference>;
export type HTTPRouteMatchT = Static<typeof HTTPRouteMatch>;
export type HTTPHeaderFilterT = Static<typeof HTTPHeaderFilter>;
export type HTTPPathModifierT = Static<typeof HTTPPathModifier>;
export type HTTPRouteFilterT = Static<typeof HTTPRouteFilter>;
export type HTTPBackendRefT = Static<typeof HTTPBackendRef>;
export type HTTPRouteRuleT = Static<typeof HTTPRouteRule>;
export type HTTPRouteRetryT = Static<typeof HTTPRouteRetry>;
export type HTTPRoute = Static<typeof HTTPRouteObject>;
export type GRPCMethodMatchT = Static<typeof GRPCMethodMatch>;
export type GRPCRouteMatchT = Static<typeof GRPCRouteMatch>;
export type GRPCRouteFilterT = Static<typeof GRPCRouteFilter>;
export type GRPCBackendRefT = Static<typeof GRPCBackendRef>;
export type GRPCRouteRuleT = Static<typeof GRPCRouteRule>;
export type GRPCRoute = Static<typeof GRPCRouteObject>;
export type RouteObject = HTTPRoute | GRPCRoute;
export type RouteKind = RouteObject['kind'];

/** The part of a ReferenceGrant that decides whether a route may name a Service in another namespace. */
export interface ReferenceGrant {
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec?: {
    readonly from?: readonly { readonly group?: string; readonly kind?: string; readonly namespace?: string }[];
    readonly to?: readonly { readonly group?: string; readonly kind?: string; readonly name?: string }[];
  };
}

/**
 * Weft's own traffic kinds for Gateway API routes (`weft.dev/v1alpha1`, issue 12): `HTTPFault`, a
 * filter an HTTPRoute or GRPCRoute rule names by ExtensionRef (Gateway API has no fault
 * injection), in the shape of Istio's VirtualService `fault`; and `LocalRateLimitPolicy`, a
 * policy (GEP-713 targetRefs) that puts Envoy's local token bucket on routes or a Service. The
 * same TypeBox schemas validate objects (validate.ts) and generate the CRDs (crds.ts).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { msg } from '../../../policy/schema.js';
import { POLICY_API_VERSION, POLICY_GROUP } from '../../../policy/schema.js';

export const WEFT_GROUP = POLICY_GROUP;
export const WEFT_API_VERSION = POLICY_API_VERSION;
export const HTTP_FAULT_KIND = 'HTTPFault';
export const RATE_LIMIT_KIND = 'LocalRateLimitPolicy';
export const WEFT_TRAFFIC_KINDS: readonly string[] = [HTTP_FAULT_KIND, RATE_LIMIT_KIND];

const obj = <T extends Record<string, TSchema>>(props: T, description?: string) =>
  Type.Object(props, { additionalProperties: false, ...(description !== undefined ? { description } : {}) });

/** Istio's durations (`7s`, `0.5s`, `500ms`), as VirtualService `fault.delay.fixedDelay` takes them. */
const IstioDuration = msg(Type.String({ pattern: '^([0-9]{1,9}(\\.[0-9]{1,9})?(ms|h|m|s)){1,4}$', maxLength: 32 }), 'must be a duration such as 500ms, 0.5s, 7s or 1m');
/** Gateway API durations (GEP-2257). */
const Duration = msg(Type.String({ pattern: '^([0-9]{1,5}(h|m|s|ms)){1,4}$' }), 'must be a Gateway API duration such as 1s, 100ms or 1m');
const Percentage = obj(
  { value: msg(Type.Number({ minimum: 0, maximum: 100, description: 'Percent of requests, 0-100 (fractions allowed).' }), 'must be a number 0-100') },
  'Istio\'s Percent: the share of requests the fault applies to. Required (Istio\'s default, 0 %, would make the fault apply to nothing).',
);

/** gRPC status codes by name (Istio's `abort.grpcStatus` takes the names). */
export const GRPC_CODES: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};
const GrpcCode = msg(Type.Union(Object.keys(GRPC_CODES).map((k) => Type.Literal(k))), `must be a gRPC status name (${Object.keys(GRPC_CODES).join(', ')})`);

const Metadata = Type.Object(
  {
    name: msg(Type.String({ minLength: 1, maxLength: 253 }), 'must be a non-empty string of at most 253 characters'),
    namespace: Type.Optional(msg(Type.String({ minLength: 1, maxLength: 63 }), 'must be a non-empty string of at most 63 characters')),
    generation: Type.Optional(Type.Integer()),
    creationTimestamp: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

export const HTTPFaultSpec = obj(
  {
    delay: Type.Optional(
      obj(
        {
          fixedDelay: IstioDuration,
          percentage: Type.Optional(Percentage),
        },
        'Delay the request by fixedDelay before it is forwarded.',
      ),
    ),
    abort: Type.Optional(
      obj(
        {
          httpStatus: Type.Optional(msg(Type.Integer({ minimum: 200, maximum: 599, description: 'The HTTP status to answer with.' }), 'must be an HTTP status 200-599')),
          grpcStatus: Type.Optional(GrpcCode),
          percentage: Type.Optional(Percentage),
        },
        'Answer without forwarding: httpStatus for HTTP; grpcStatus (a gRPC status name) for gRPC requests. At least one of them.',
      ),
    ),
  },
  'Fault injection for the Gateway API route rules that name this object by an ExtensionRef filter (group weft.dev, kind HTTPFault), in the shape of Istio\'s VirtualService fault.',
);

export const HTTPFaultObject = Type.Object({
  apiVersion: Type.Literal(WEFT_API_VERSION),
  kind: Type.Literal(HTTP_FAULT_KIND),
  metadata: Metadata,
  spec: HTTPFaultSpec,
  status: Type.Optional(Type.Unknown()),
});

export const PolicyTargetReference = obj(
  {
    group: msg(Type.String({ maxLength: 253, description: 'gateway.networking.k8s.io for a route, "" for a Service.' }), 'must be a string of at most 253 characters'),
    kind: msg(Type.String({ minLength: 1, maxLength: 63, description: 'HTTPRoute, GRPCRoute or Service.' }), 'must be a non-empty string of at most 63 characters'),
    name: msg(Type.String({ minLength: 1, maxLength: 253 }), 'must be a non-empty string of at most 253 characters'),
    sectionName: Type.Optional(
      msg(Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$', description: 'A rule name of the route (routes only).' }), 'must be a lower-case RFC 1123 name'),
    ),
  },
  'A route or Service in the policy\'s namespace (GEP-713 LocalPolicyTargetReferenceWithSectionName).',
);

export const LocalRateLimitPolicySpec = obj(
  {
    targetRefs: Type.Array(PolicyTargetReference, { minItems: 1, maxItems: 16, description: 'What the limit applies to: HTTPRoutes or GRPCRoutes (all their rules, or the rule sectionName names), or Services (every request to them through their waypoint).' }),
    tokenBucket: obj(
      {
        maxTokens: msg(Type.Integer({ minimum: 1, maximum: 1000000000, description: 'Bucket size: the largest burst.' }), 'must be an integer 1-1000000000'),
        tokensPerFill: Type.Optional(msg(Type.Integer({ minimum: 1, maximum: 1000000000, description: 'Tokens added each fillInterval (default 1).' }), 'must be an integer 1-1000000000')),
        fillInterval: Duration,
      },
      'Envoy\'s local_ratelimit token bucket: a request takes a token; none left answers 429 (response flag RL).',
    ),
  },
  'Local (per waypoint) rate limiting of HTTP and gRPC requests.',
);

export const LocalRateLimitPolicyObject = Type.Object({
  apiVersion: Type.Literal(WEFT_API_VERSION),
  kind: Type.Literal(RATE_LIMIT_KIND),
  metadata: Metadata,
  spec: LocalRateLimitPolicySpec,
  status: Type.Optional(Type.Unknown()),
});

export type HTTPFault = Static<typeof HTTPFaultObject>;
export type LocalRateLimitPolicy = Static<typeof LocalRateLimitPolicyObject>;
export type PolicyTargetReferenceT = Static<typeof PolicyTargetReference>;
export type WeftTrafficObject = HTTPFault | LocalRateLimitPolicy;

/**
 * TypeBox schemas of Istio's `networking.istio.io` VirtualService and DestinationRule (v1,
 * v1beta1 and v1alpha3: one shape), the fields Weft reads. Fields Istio has and Weft does not
 * implement are in the schema as `Type.Unknown()` so that validate.ts refuses them by name with a
 * reason (rather than as an unknown field); fields Istio does not have are refused as unknown.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { msg } from '../../../policy/schema.js';
import { GRPC_CODES } from '../weft/schema.js';

export const ISTIO_NETWORKING_GROUP = 'networking.istio.io';
export const ISTIO_NETWORKING_VERSIONS: readonly string[] = ['v1', 'v1beta1', 'v1alpha3'].map((v) => `${ISTIO_NETWORKING_GROUP}/${v}`);
export const ISTIO_ROUTE_KINDS: readonly string[] = ['VirtualService', 'DestinationRule'];

const obj = <T extends Record<string, TSchema>>(props: T) => Type.Object(props, { additionalProperties: false });
const Str = (max: number) => msg(Type.String({ maxLength: max }), `must be a string of at most ${max} characters`);
const NonEmpty = (max: number) => msg(Type.String({ minLength: 1, maxLength: max }), `must be a non-empty string of at most ${max} characters`);
const Uint = msg(Type.Integer({ minimum: 0, maximum: 4294967295 }), 'must be an integer >= 0');
const Port = msg(Type.Integer({ minimum: 1, maximum: 65535 }), 'must be an integer 1-65535');
const Duration = msg(Type.String({ pattern: '^([0-9]{1,9}(\\.[0-9]{1,9})?(ms|h|m|s)){1,4}$', maxLength: 32 }), 'must be a duration such as 500ms, 7s, 3m or 1h');
const Percent = obj({ value: msg(Type.Number({ minimum: 0, maximum: 100 }), 'must be a number 0-100') });
const Unsupported = Type.Optional(Type.Unknown());

const Metadata = Type.Object(
  {
    name: NonEmpty(253),
    namespace: Type.Optional(NonEmpty(63)),
    generation: Type.Optional(Type.Integer()),
    creationTimestamp: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/** Istio's StringMatch: exactly one of exact, prefix, regex (checked in validate.ts). */
export const StringMatch = obj({ exact: Type.Optional(Str(4096)), prefix: Type.Optional(Str(4096)), regex: Type.Optional(Str(4096)) });

export const HTTPMatchRequest = obj({
  name: Type.Optional(Str(253)),
  uri: Type.Optional(StringMatch),
  method: Type.Optional(StringMatch),
  headers: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 256 }), StringMatch)),
  queryParams: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 256 }), StringMatch)),
  ignoreUriCase: Type.Optional(Type.Boolean()),
  port: Type.Optional(Port),
  scheme: Unsupported,
  authority: Unsupported,
  withoutHeaders: Unsupported,
  sourceLabels: Unsupported,
  gateways: Unsupported,
  sourceNamespace: Unsupported,
  statPrefix: Unsupported,
});

const PortSelector = obj({ number: Port });
export const Destination = obj({ host: NonEmpty(253), subset: Type.Optional(NonEmpty(253)), port: Type.Optional(PortSelector) });

const HeaderOps = obj({
  set: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Str(4096))),
  add: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Str(4096))),
  remove: Type.Optional(Type.Array(NonEmpty(256), { maxItems: 64 })),
});
export const Headers = obj({ request: Type.Optional(HeaderOps), response: Type.Optional(HeaderOps) });

export const HTTPRouteDestination = obj({
  destination: Destination,
  weight: Type.Optional(msg(Type.Integer({ minimum: 0, maximum: 1000000 }), 'must be an integer 0-1000000')),
  headers: Type.Optional(Headers),
});

/** Istio's abort.grpcStatus: a gRPC status name. */
const GrpcStatusName = msg(Type.Union(Object.keys(GRPC_CODES).map((k) => Type.Literal(k))), `must be a gRPC status name (${Object.keys(GRPC_CODES).join(', ')})`);

const RedirectCode = msg(Type.Union([301, 302, 303, 307, 308].map((c) => Type.Literal(c))), 'must be one of 301, 302, 303, 307, 308');

export const HTTPRoute = obj({
  name: Type.Optional(Str(253)),
  match: Type.Optional(Type.Array(HTTPMatchRequest, { maxItems: 64 })),
  route: Type.Optional(Type.Array(HTTPRouteDestination, { maxItems: 64 })),
  redirect: Type.Optional(
    obj({
      uri: Type.Optional(Str(1024)),
      authority: Type.Optional(Str(253)),
      port: Type.Optional(Port),
      derivePort: Type.Optional(msg(Type.Union([Type.Literal('FROM_PROTOCOL_DEFAULT'), Type.Literal('FROM_REQUEST_PORT')]), 'must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT')),
      scheme: Type.Optional(msg(Type.Union([Type.Literal('http'), Type.Literal('https')]), 'must be http or https')),
      redirectCode: Type.Optional(RedirectCode),
    }),
  ),
  rewrite: Type.Optional(obj({ uri: Type.Optional(Str(1024)), authority: Type.Optional(Str(253)), uriRegexRewrite: Type.Optional(obj({ match: NonEmpty(256), rewrite: Str(1024) })) })),
  timeout: Type.Optional(Duration),
  retries: Type.Optional(
    obj({
      attempts: Type.Optional(msg(Type.Integer({ minimum: 0, maximum: 100 }), 'must be an integer 0-100')),
      perTryTimeout: Type.Optional(Duration),
      retryOn: Type.Optional(Str(512)),
      backoff: Type.Optional(Duration),
      retryRemoteLocalities: Unsupported,
      retryIgnorePreviousHosts: Unsupported,
    }),
  ),
  fault: Type.Optional(
    obj({
      delay: Type.Optional(obj({ fixedDelay: Duration, percentage: Type.Optional(Percent), percent: Type.Optional(msg(Type.Integer({ minimum: 0, maximum: 100 }), 'must be an integer 0-100')), exponentialDelay: Unsupported })),
      abort: Type.Optional(obj({ httpStatus: Type.Optional(msg(Type.Integer({ minimum: 200, maximum: 599 }), 'must be an HTTP status 200-599')), percentage: Type.Optional(Percent), percent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })), grpcStatus: Type.Optional(GrpcStatusName), http2Error: Unsupported })),
    }),
  ),
  mirror: Type.Optional(Destination),
  mirrorPercentage: Type.Optional(Percent),
  mirrorPercent: Type.Optional(msg(Type.Integer({ minimum: 0, maximum: 100 }), 'must be an integer 0-100')),
  headers: Type.Optional(Headers),
  mirrors: Type.Optional(Type.Array(obj({ destination: Destination, percentage: Type.Optional(Percent) }), { maxItems: 16 })),
  delegate: Unsupported,
  directResponse: Unsupported,
  corsPolicy: Unsupported,
});

export const VirtualServiceObject = obj({
  apiVersion: Type.String(),
  kind: Type.Literal('VirtualService'),
  metadata: Metadata,
  spec: obj({
    hosts: Type.Optional(Type.Array(NonEmpty(253), { maxItems: 64 })),
    gateways: Type.Optional(Type.Array(NonEmpty(253), { maxItems: 64 })),
    http: Type.Optional(Type.Array(HTTPRoute, { maxItems: 256 })),
    exportTo: Type.Optional(Type.Array(Type.String())),
    tcp: Unsupported,
    tls: Unsupported,
  }),
  status: Type.Optional(Type.Unknown()),
});

const LoadBalancer = obj({
  simple: Type.Optional(msg(Type.Union(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'].map((s) => Type.Literal(s))), 'must be one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH, UNSPECIFIED, LEAST_CONN')),
  consistentHash: Type.Optional(
    obj({ httpHeaderName: Type.Optional(NonEmpty(256)), useSourceIp: Type.Optional(Type.Boolean()), httpQueryParameterName: Type.Optional(NonEmpty(256)), httpCookie: Unsupported, ringHash: Unsupported, maglev: Unsupported, minimumRingSize: Unsupported }),
  ),
  localityLbSetting: Unsupported,
  warmupDurationSecs: Unsupported,
  warmup: Unsupported,
});
const ConnectionPool = obj({
  tcp: Type.Optional(obj({ maxConnections: Type.Optional(Uint), connectTimeout: Type.Optional(Duration), tcpKeepalive: Unsupported, maxConnectionDuration: Unsupported, idleTimeout: Type.Optional(Duration) })),
  http: Type.Optional(
    obj({
      http1MaxPendingRequests: Type.Optional(Uint),
      http2MaxRequests: Type.Optional(Uint),
      maxRequestsPerConnection: Type.Optional(Uint),
      maxRetries: Type.Optional(Uint),
      idleTimeout: Type.Optional(Duration),
      h2UpgradePolicy: Unsupported,
      useClientProtocol: Unsupported,
      maxConcurrentStreams: Unsupported,
    }),
  ),
});
const OutlierDetection = obj({
  consecutive5xxErrors: Type.Optional(Uint),
  consecutiveGatewayErrors: Type.Optional(Uint),
  consecutiveErrors: Unsupported,
  interval: Type.Optional(Duration),
  baseEjectionTime: Type.Optional(Duration),
  maxEjectionPercent: Type.Optional(msg(Type.Integer({ minimum: 0, maximum: 100 }), 'must be an integer 0-100')),
  minHealthPercent: Type.Optional(msg(Type.Integer({ minimum: 0, maximum: 100 }), 'must be an integer 0-100')),
  splitExternalLocalOriginErrors: Unsupported,
  consecutiveLocalOriginFailures: Unsupported,
});

/** A port-level policy: replaces the four fields of the level it is in for that port (Istio: no inheritance). */
export const PortTrafficPolicy = obj({
  port: PortSelector,
  loadBalancer: Type.Optional(LoadBalancer),
  connectionPool: Type.Optional(ConnectionPool),
  outlierDetection: Type.Optional(OutlierDetection),
  tls: Unsupported,
});

export const TrafficPolicy = obj({
  loadBalancer: Type.Optional(LoadBalancer),
  connectionPool: Type.Optional(ConnectionPool),
  outlierDetection: Type.Optional(OutlierDetection),
  tls: Unsupported,
  portLevelSettings: Type.Optional(Type.Array(PortTrafficPolicy, { maxItems: 64 })),
  tunnel: Unsupported,
  proxyProtocol: Unsupported,
  retryBudget: Unsupported,
});

const LabelMap = Type.Record(Type.String({ minLength: 1, maxLength: 317 }), Str(63));

export const DestinationRuleObject = obj({
  apiVersion: Type.String(),
  kind: Type.Literal('DestinationRule'),
  metadata: Metadata,
  spec: obj({
    host: NonEmpty(253),
    trafficPolicy: Type.Optional(TrafficPolicy),
    subsets: Type.Optional(Type.Array(obj({ name: NonEmpty(253), labels: Type.Optional(LabelMap), trafficPolicy: Type.Optional(TrafficPolicy) }), { maxItems: 64 })),
    exportTo: Type.Optional(Type.Array(Type.String())),
    workloadSelector: Unsupported,
  }),
  status: Type.Optional(Type.Unknown()),
});

export type VirtualService = Static<typeof VirtualServiceObject>;
export type DestinationRule = Static<typeof DestinationRuleObject>;
export type IstioHTTPRoute = Static<typeof HTTPRoute>;
export type IstioStringMatch = Static<typeof StringMatch>;
export type IstioDestination = Static<typeof Destination>;
export type IstioHeaders = Static<typeof Headers>;
export type IstioTrafficPolicy = Static<typeof TrafficPolicy>;
export type IstioPortTrafficPolicy = Static<typeof PortTrafficPolicy>;
export type IstioObject = VirtualService | DestinationRule;

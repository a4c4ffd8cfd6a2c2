/**
 * The contract between the L7 configuration and the L7 engine (issue 11; issues 12 and 13 build
 * on it). Route objects of every API (Gateway API HTTPRoute and GRPCRoute; later Istio's
 * VirtualService + DestinationRule, Kubernetes Ingress, Istio Gateway) are validated and compiled
 * by agent/l7/ into one RouteTable. The engine (agent/waypoint/, later the ingress gateway) asks
 * the table for a RequestPlan per request (decide, pure), then executes it (act: pick an
 * endpoint, open or reuse an upstream, apply the plan). Nothing here does I/O or reads a clock.
 *
 * Names follow the Gateway API where it has them; what Gateway API lacks (retries, faults,
 * connection pools, outlier detection: issue 12) is added as optional fields, never as a second
 * route model.
 */

/** Header names are lower case everywhere in this model (HTTP/2 and node:http both give them so). */
export type HeaderName = string;

export interface StringMatch {
  readonly type: 'Exact' | 'RegularExpression';
  /** Header name (lower case) or query-parameter name (case-sensitive, as the spec says). */
  readonly name: string;
  readonly value: string;
}

export interface PathMatch {
  /** `CharPrefix` (issue 12, Istio's `uri.prefix`): a character-wise prefix, `/foo` matches `/foobar`. */
  readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression' | 'CharPrefix';
  readonly value: string;
}

/** One HTTPRouteMatch: every present field must match (AND). */
export interface RouteMatch {
  readonly path: PathMatch | undefined;
  readonly headers: readonly StringMatch[];
  readonly queryParams: readonly StringMatch[];
  /** Upper case; undefined: any method. */
  readonly method: string | undefined;
}

export interface HeaderModifier {
  readonly set: readonly (readonly [HeaderName, string])[];
  readonly add: readonly (readonly [HeaderName, string])[];
  readonly remove: readonly HeaderName[];
}

export type PathModifier =
  | { readonly type: 'ReplaceFullPath'; readonly value: string }
  | { readonly type: 'ReplacePrefixMatch'; readonly value: string }
  /** Istio's `rewrite.uri` after a `uri.prefix` match: the matched characters replaced (no segment logic). */
  | { readonly type: 'ReplaceCharPrefix'; readonly prefix: string; readonly value: string }
  /**
   * (Additive, issue 12.) Istio's `rewrite.uriRegexRewrite` (Envoy's regex_rewrite): every match of
   * `pattern` in the path is replaced by `substitution` (`\1` names a group, as in RE2).
   */
  | { readonly type: 'RegexReplace'; readonly pattern: string; readonly substitution: string };

/** A Service (and port) that requests go to. */
export interface BackendTarget {
  /** `<namespace>/<name>` of the Service. */
  readonly service: string;
  readonly port: number;
  /** Issue 12 (DestinationRule subsets): only the service's endpoints whose pods carry these labels. */
  readonly subset?: { readonly name: string; readonly labels: Readonly<Record<string, string>> } | undefined;
  /**
   * Issue 12 (DestinationRule trafficPolicy, the subset's merged over the host's): what the
   * engine applies to connections and endpoints of this backend. Undefined: no policy.
   */
  readonly policy?: BackendPolicy | undefined;
}

/** DestinationRule trafficPolicy as the engine reads it (durations in ms). Executed by the waypoint later (issue 12 point 1). */
export interface BackendPolicy {
  readonly loadBalancer?:
    | { readonly simple: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' | 'UNSPECIFIED' | 'LEAST_CONN' }
    | { readonly consistentHash: { readonly httpHeaderName?: string | undefined; readonly useSourceIp?: boolean | undefined; readonly httpQueryParameterName?: string | undefined } }
    | undefined;
  readonly connectionPool?:
    | {
        readonly maxConnections?: number | undefined;
        readonly connectTimeoutMs?: number | undefined;
        readonly http1MaxPendingRequests?: number | undefined;
        readonly http2MaxRequests?: number | undefined;
        readonly maxRequestsPerConnection?: number | undefined;
        readonly maxRetries?: number | undefined;
        readonly idleTimeoutMs?: number | undefined;
      }
    | undefined;
  readonly outlierDetection?:
    | {
        readonly consecutive5xxErrors?: number | undefined;
        readonly consecutiveGatewayErrors?: number | undefined;
        readonly intervalMs?: number | undefined;
        readonly baseEjectionTimeMs?: number | undefined;
        readonly maxEjectionPercent?: number | undefined;
        readonly minHealthPercent?: number | undefined;
      }
    | undefined;
}

/** Retries of a rule (Istio `retries`, Gateway API GEP-1731 `retry`). Executed by the engine (issue 12 point 1). */
export interface RouteRetry {
  /** Retries after the first attempt; 0: none. */
  readonly attempts: number;
  readonly perTryTimeoutMs: number | undefined;
  /** Envoy's retry_on conditions (`5xx`, `gateway-error`, `connect-failure`, `reset`, `retriable-4xx`, `retriable-status-codes`, ...); a bare number is a status code (Istio writes codes into retryOn). */
  readonly retryOn: readonly string[];
  /** Status codes that are retried (GEP-1731 `codes`; Istio's numeric retryOn entries). Empty: none beyond retryOn's classes. */
  readonly statusCodes?: readonly number[] | undefined;
  /** Base interval of the exponential backoff between attempts (GEP-1731 `backoff`; Envoy's default 25 ms when unset). */
  readonly backoffBaseMs?: number | undefined;
}

/**
 * Local rate limit of a rule (a Weft `LocalRateLimitPolicy` targeting the route, issue 12 point
 * 1): Envoy's local_ratelimit token bucket, one bucket per rule per engine process. Requests
 * that find no token get 429 with response flag RL.
 */
export interface RouteRateLimit {
  /** `LocalRateLimitPolicy ns/name`: for logs, metrics and status. */
  readonly policy: string;
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  /**
   * (Added for issue 12 point 1, additive.) Rules whose rateLimit carries the same `bucket` share
   * one token bucket: a policy that targets a Service limits the whole Service (every rule of every
   * route on it), so its rules all carry `LocalRateLimitPolicy ns/name Service ns/svc`. Undefined:
   * one bucket per rule (a policy that targets a route or a rule of it), as documented above.
   */
  readonly bucket?: string | undefined;
}

/** Fault injection of a rule (Istio `fault`; a Weft `HTTPFault` by ExtensionRef). Executed by the engine (issue 12 point 1). */
export interface RouteFault {
  readonly delay?: { readonly ms: number; readonly percent: number } | undefined;
  /**
   * `grpcStatus` (issue 12, Istio's `abort.grpcStatus` as its number): the answer to a gRPC request
   * carries it; unset: derived from statusCode as Envoy does. (A grpcStatus-only fault has
   * statusCode 200, the HTTP status of a gRPC answer; agent/l7/weft/fault.ts.)
   */
  readonly abort?: { readonly statusCode: number; readonly percent: number; readonly grpcStatus?: number | undefined } | undefined;
  /** (Additive, issue 12.) `HTTPFault ns/name` when the fault came from one: for logs and metrics. */
  readonly source?: string | undefined;
}

export type RouteFilter =
  | { readonly type: 'RequestHeaderModifier'; readonly modifier: HeaderModifier }
  | { readonly type: 'ResponseHeaderModifier'; readonly modifier: HeaderModifier }
  | {
      readonly type: 'RequestRedirect';
      readonly scheme: 'http' | 'https' | undefined;
      readonly hostname: string | undefined;
      readonly port: number | undefined;
      readonly path: PathModifier | undefined;
      readonly statusCode: 301 | 302 | 303 | 307 | 308;
    }
  | { readonly type: 'URLRewrite'; readonly hostname: string | undefined; readonly path: PathModifier | undefined }
  /** Fire and forget; `percent` 0-100 (Gateway API `percent`/`fraction`, Istio `mirrorPercentage`). */
  | { readonly type: 'RequestMirror'; readonly backend: BackendTarget; readonly percent: number };

export interface WeightedBackend {
  readonly target: BackendTarget;
  /** Relative weight; 0 never receives traffic. */
  readonly weight: number;
  /** Per-backendRef filters (applied after the rule's). */
  readonly filters: readonly RouteFilter[];
  /**
   * Set when the backendRef could not be resolved (unknown Service, wrong kind, not permitted):
   * requests that pick it get a 500 (Gateway API) with response flag NR.
   */
  readonly invalid?: string | undefined;
}

export interface RouteTimeouts {
  /** Whole request, from the first byte received to the last byte of the response. */
  readonly requestMs: number | undefined;
  /** One attempt to the backend. */
  readonly backendRequestMs: number | undefined;
}

export interface RouteRule {
  /** `HTTPRoute shop/cart rule 2` (0-based): for logs, metrics and status. */
  readonly name: string;
  /** At least one (a rule without matches gets PathPrefix `/`). */
  readonly matches: readonly RouteMatch[];
  readonly filters: readonly RouteFilter[];
  /** Empty: requests matching the rule get a 500 (Gateway API). */
  readonly backends: readonly WeightedBackend[];
  readonly timeouts: RouteTimeouts;
  /** Issue 12: the engine retries as this says. */
  readonly retry?: RouteRetry | undefined;
  /** Issue 12: the engine injects these faults (Istio `fault`; Weft's `HTTPFault` by ExtensionRef). */
  readonly fault?: RouteFault | undefined;
  /** Issue 12: the engine limits the rule's request rate (a Weft LocalRateLimitPolicy). */
  readonly rateLimit?: RouteRateLimit | undefined;
}

/** A request as routing sees it (the engine fills it from node:http / node:http2). */
export interface RequestView {
  /** Upper case. */
  readonly method: string;
  /** The path without the query (`/a/b`), as received (not decoded). */
  readonly path: string;
  /** The raw query after `?`, '' when none. */
  readonly query: string;
  /** `:authority` / `host`. */
  readonly authority: string;
  /** Lower-case names; repeated headers as arrays (node's IncomingHttpHeaders). */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** What to do with one request: computed by the table, executed by the engine. */
export type RequestPlan =
  | {
      readonly kind: 'forward';
      /** The rule that matched; undefined: no route applies, the request goes to the addressed service unchanged. */
      readonly rule: RouteRule | undefined;
      readonly backend: BackendTarget;
      /** The request head to send (filters applied; hop-by-hop headers are the engine's business). */
      readonly method: string;
      /** Path and query as sent upstream (`/x?y=1`). */
      readonly pathAndQuery: string;
      readonly authority: string;
      /** Header changes to apply to the request (merged from the rule's and the backend's filters). */
      readonly requestHeaders: HeaderModifier | undefined;
      readonly responseHeaders: HeaderModifier | undefined;
      /**
       * The mirrors to send this request to. The table has already drawn each mirror's percentage
       * (agent/l7/table.ts) and lists only those that fired, each with `percent` 100, so an engine
       * that draws again against `percent` still sends every one listed.
       */
      readonly mirrors: readonly { readonly backend: BackendTarget; readonly percent: number }[];
      readonly timeouts: RouteTimeouts;
    }
  | { readonly kind: 'redirect'; readonly rule: RouteRule; readonly statusCode: number; readonly location: string }
  /** An answer without any upstream: 500 for a rule without valid backends (flag NR), 404 when nothing matched a routed service. */
  | {
      readonly kind: 'reply';
      readonly rule: RouteRule | undefined;
      readonly statusCode: number;
      readonly responseFlag: string;
      readonly reason: string;
      /**
       * Set for a GRPCRoute rule: answer as gRPC does (HTTP 200, trailers-only, this grpc-status;
       * 14 UNAVAILABLE where an HTTPRoute answers 500), the GRPCRoute spec's behaviour.
       */
      readonly grpcStatus?: number | undefined;
    };

export interface RouteTable {
  /**
   * The plan for a request addressed to `service` (`<namespace>/<name>`) on `port`. `random` is a
   * number in [0, 1) from the engine (weights, mirror percentages), so that the table stays pure.
   */
  plan(service: string, port: number, request: RequestView, random: number): RequestPlan;
}

/** A route's condition, as Gateway API defines them (`weft status routes`, the route's status in Kubernetes mode). */
export interface RouteCondition {
  readonly type: 'Accepted' | 'ResolvedRefs';
  readonly status: 'True' | 'False';
  /** Accepted, NoMatchingParent, NotAllowedByListeners, UnsupportedValue, Conflicted, ResolvedRefs, BackendNotFound, InvalidKind, RefNotPermitted, FilterNotFound; for policies (GEP-713) Accepted, Conflicted, Invalid, TargetNotFound. */
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number | undefined;
}

/** A route's parentRef as written (defaults filled in), for the route's status in Kubernetes. */
export interface RouteParentRef {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly sectionName?: string | undefined;
  readonly port?: number | undefined;
}

export interface RouteStatus {
  /** `HTTPRoute shop/cart` */
  readonly route: string;
  /** One entry per parentRef (`Service shop/cart` or `Service shop/cart:8080`). */
  readonly parents: readonly {
    readonly parent: string;
    readonly conditions: readonly RouteCondition[];
    /** The parentRef itself (agent/l7: RouteParentStatus.parentRef in Kubernetes). */
    readonly parentRef?: RouteParentRef | undefined;
    /** False for a parent that is not the mesh's (a Gateway of another controller): not Weft's status to write. */
    readonly mesh?: boolean | undefined;
  }[];
  /** (LocalRateLimitPolicy and HTTPFault added for issue 12: a policy's `parents` are its targets, GEP-713's ancestors.) */
  readonly kind?: 'HTTPRoute' | 'GRPCRoute' | 'VirtualService' | 'DestinationRule' | 'LocalRateLimitPolicy' | 'HTTPFault' | undefined;
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
  /** metadata.generation of the version the conditions are about. */
  readonly generation?: number | undefined;
}

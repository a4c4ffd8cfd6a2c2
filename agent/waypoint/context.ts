/**
 * What the waypoint's request path shares (one bundle, passed in, never reached for globally),
 * the per-tunnel context of a CONNECT stream, and the record every request finishes exactly once:
 * one access-log line and the request metrics, whatever path the request took.
 */
import type { Endpoint, MeshModel, Service, Workload } from '../discovery/types.js';
import type { RouteTable } from '../l7/types.js';
import type { RequestLabelInput } from '../telemetry/request-metrics.js';
import type { Logger } from '../log.js';
import type { RequestAuthorizer } from './authorize.js';
import type { RequestPicker } from './picker.js';
import type { Upstreams } from './upstream.js';
import type { Resilience } from './resilience/index.js';

/**
 * The request metrics as agent/telemetry/request-metrics.ts defines them (RequestMetrics
 * satisfies this); `reporter` is `waypoint` here, `source` in the ingress gateway (agent/gateway).
 */
export interface RequestMetricsLike<L = unknown> {
  labels(input: RequestLabelInput): L;
  observe(labels: L, durationMs: number, requestBytes: number, responseBytes: number): void;
}

export interface WaypointInputs {
  /** `<namespace>/<name>` of the Gateway this waypoint serves. */
  readonly key: string;
  /** The waypoint's own SPIFFE ID. */
  readonly identity: string;
  readonly clusterName: string;
  /**
   * The request metrics' `reporter` (default `waypoint`). The ingress gateway reports `source`,
   * as Istio's ingress gateway does, and its clients prove no identity (`mutualTls` false).
   */
  readonly reporter?: 'waypoint' | 'source' | undefined;
  readonly logger: Logger;
  /** One line per request (and per L4 connection). */
  readonly accessLog: Logger;
  model(): MeshModel;
  table(): RouteTable;
  readonly authorizer: RequestAuthorizer;
  readonly picker: RequestPicker;
  readonly upstreams: Upstreams;
  readonly requestMetrics: RequestMetricsLike;
  /** Circuit breakers, retry budgets, outlier detectors and rate-limit buckets (issue 12), shared by the HTTP/1 and HTTP/2 handlers. */
  readonly resilience: Resilience;
  /** [0, 1) for weights, mirror percentages and the picker. */
  random(): number;
}

/** One CONNECT stream a source agent opened to this waypoint. */
export interface TunnelContext {
  readonly service: Service;
  readonly port: number;
  /** The CONNECT's `:authority` (service VIP:port). */
  readonly authority: string;
  readonly sourcePrincipal: string;
  readonly sourceWorkload: Workload | undefined;
  /** The original client's address (the TCP peer of the HBONE connection: the source pod). */
  readonly clientIp: string;
}

export type DownstreamProtocol = 'HTTP/1.1' | 'HTTP/2';

/** Everything the access-log line and the metrics of one request say. */
export class RequestRecord {
  readonly #inputs: WaypointInputs;
  readonly #tunnel: TunnelContext;
  readonly #start = performance.now();
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly protocol: DownstreamProtocol;
  readonly grpc: boolean;
  status = 0;
  readonly #flags: string[] = [];
  /** `ip:port` of the chosen endpoint. */
  upstream: string | undefined;
  endpoint: Endpoint | undefined;
  /** `<namespace>/<name>` of the service the request went to (the route's backend). */
  backendService: string | undefined;
  rule: string | undefined;
  policy: string | undefined;
  grpcStatus: string | undefined;
  requestBytes = 0;
  responseBytes = 0;
  reason: string | undefined;
  /** Upstream attempts made (Envoy's UPSTREAM_REQUEST_ATTEMPT_COUNT): more than 1 when retried. */
  attempts: number | undefined;
  #finished = false;

  constructor(inputs: WaypointInputs, tunnel: TunnelContext, head: { method: string; authority: string; path: string; protocol: DownstreamProtocol; grpc: boolean }) {
    this.#inputs = inputs;
    this.#tunnel = tunnel;
    this.method = head.method;
    this.authority = head.authority;
    this.path = head.path;
    this.protocol = head.protocol;
    this.grpc = head.grpc;
  }

  flag(f: string): void {
    if (!this.#flags.includes(f)) this.#flags.push(f);
  }

  get flags(): string {
    return this.#flags.length === 0 ? '-' : this.#flags.join(',');
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Records the request once (later calls do nothing). */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const durationMs = performance.now() - this.#start;
    const t = this.#tunnel;
    const i = this.#inputs;
    const destination = this.endpoint?.workload;
    const metrics = i.requestMetrics;
    metrics.observe(
      metrics.labels({
        reporter: i.reporter ?? 'waypoint',
        source: t.sourceWorkload,
        sourcePrincipal: t.sourcePrincipal === '' ? undefined : t.sourcePrincipal,
        destination,
        destinationService: this.backendService ?? t.service.key,
        destinationPrincipal: destination?.inMesh ? destination.identity : undefined,
        requestProtocol: this.grpc ? 'grpc' : 'http',
        responseCode: this.status,
        grpcStatus: this.grpcStatus,
        responseFlags: this.flags,
        mutualTls: t.sourcePrincipal !== '',
        clusterName: i.clusterName,
      }),
      durationMs,
      this.requestBytes,
      this.responseBytes,
    );
    i.accessLog.info(
      {
        method: this.method,
        authority: this.authority,
        path: this.path,
        protocol: this.protocol,
        status: this.status,
        grpcStatus: this.grpcStatus,
        flags: this.flags,
        durationMs: Math.round(durationMs * 1000) / 1000,
        requestBytes: this.requestBytes,
        responseBytes: this.responseBytes,
        service: t.service.key,
        backend: this.backendService,
        upstream: this.upstream,
        rule: this.rule,
        sourcePrincipal: t.sourcePrincipal,
        sourceWorkload: t.sourceWorkload?.key,
        clientIp: t.clientIp,
        policy: this.policy,
        reason: this.reason,
        attempts: this.attempts,
      },
      'request',
    );
  }
}

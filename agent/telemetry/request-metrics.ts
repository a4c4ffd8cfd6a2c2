/**
 * Istio's HTTP/gRPC request metrics, as a waypoint (or any L7 reporter) exports them:
 * istio_requests_total, istio_request_duration_milliseconds, istio_request_bytes and
 * istio_response_bytes, with Istio's buckets and its complete label set (labels.ts), so that
 * Istio's service and workload dashboards and Kiali read them unchanged.
 *
 * The label object is built once per request by `labels()` and then passed to `observe()`;
 * callers that serve many requests of one peer pair may cache it.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Workload } from '../discovery/types.js';
import { PEER_LABELS, peerLabels } from './labels.js';

export const REQUEST_LABELS = [...PEER_LABELS, 'response_code', 'grpc_response_status'] as const;

export type RequestLabelName = (typeof REQUEST_LABELS)[number];
export type RequestLabels = Record<RequestLabelName, string>;

/**
 * Envoy's default histogram buckets, which Istio's request duration uses (milliseconds,
 * 0.5 ms to one hour).
 */
export const ISTIO_DURATION_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000] as const;

/** Istio's size buckets for request and response bodies: powers of ten, 1 B to 10 MB. */
export const ISTIO_SIZE_BUCKETS_BYTES = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000] as const;

export interface RequestLabelInput {
  reporter: 'waypoint' | 'source' | 'destination';
  source: Workload | undefined;
  /** SPIFFE ID the client proved with mutual TLS, else undefined. */
  sourcePrincipal: string | undefined;
  destination: Workload | undefined;
  /** `<namespace>/<name>` of the service the request was addressed to. */
  destinationService: string | undefined;
  /** SPIFFE ID of the destination (the upstream's proven or expected identity), else undefined. */
  destinationPrincipal: string | undefined;
  requestProtocol: 'http' | 'grpc';
  /** The HTTP status sent to the client (0 when no response was sent, as Envoy reports). */
  responseCode: number;
  /** The grpc-status (a decimal string) of a gRPC request; undefined for plain HTTP. */
  grpcStatus: string | undefined;
  /** Envoy's response flags (`-`, `UF`, `UH`, `NR`, `UT`, `DC`, `URX`, ...; comma-separated when several). */
  responseFlags: string;
  mutualTls: boolean;
  clusterName: string;
}

export class RequestMetrics {
  readonly requests: Counter<RequestLabelName>;
  readonly duration: Histogram<RequestLabelName>;
  readonly requestBytes: Histogram<RequestLabelName>;
  readonly responseBytes: Histogram<RequestLabelName>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'istio_requests_total', help: 'Requests handled', labelNames: REQUEST_LABELS, registers });
    this.duration = new Histogram({
      name: 'istio_request_duration_milliseconds',
      help: 'Duration of requests (milliseconds), from the first request byte to the last response byte',
      labelNames: REQUEST_LABELS,
      buckets: [...ISTIO_DURATION_BUCKETS_MS],
      registers,
    });
    this.requestBytes = new Histogram({ name: 'istio_request_bytes', help: 'HTTP request body sizes (bytes)', labelNames: REQUEST_LABELS, buckets: [...ISTIO_SIZE_BUCKETS_BYTES], registers });
    this.responseBytes = new Histogram({ name: 'istio_response_bytes', help: 'HTTP response body sizes (bytes)', labelNames: REQUEST_LABELS, buckets: [...ISTIO_SIZE_BUCKETS_BYTES], registers });
  }

  /** The complete Istio label set of one request. */
  labels(input: RequestLabelInput): RequestLabels {
    return {
      ...peerLabels({
        reporter: input.reporter,
        source: input.source,
        sourcePrincipal: input.sourcePrincipal,
        destination: input.destination,
        destinationService: input.destinationService,
        destinationPrincipal: input.destinationPrincipal,
        requestProtocol: input.requestProtocol,
        responseFlags: input.responseFlags || '-',
        mutualTls: input.mutualTls,
        clusterName: input.clusterName,
      }),
      response_code: String(input.responseCode),
      // Istio leaves it empty on plain HTTP (an empty label is an absent label to Prometheus).
      grpc_response_status: input.requestProtocol === 'grpc' ? (input.grpcStatus ?? '') : '',
    };
  }

  /** Records one finished request. */
  observe(labels: RequestLabels, durationMs: number, requestBytes: number, responseBytes: number): void {
    this.requests.inc(labels);
    this.duration.observe(labels, durationMs);
    this.requestBytes.observe(labels, requestBytes);
    this.responseBytes.observe(labels, responseBytes);
  }
}

/**
 * Istio's HTTP/gRPC request metrics, as a waypoint (or any L7 reporter) exports them:
 * istio_requests_total, istio_request_duration_milliseconds, istio_request_bytes and
 * istio_response_bytes, with Istio's buckets and its complete label set (labels.ts), so that
 * Istio's service and workload dashboards and Kiali read them unchanged.
 *
 * `labels()` resolves a request's label set once per distinct input (an LRU of label objects)
 * and `observe()` records into the series of that object without prom-client's per-call label
 * validation and hashing (3.9 % of the waypoint's CPU in the l7 bench's profile): the label set
 * was checked against REQUEST_LABELS when it was built, and its series key is kept with it.
 */
import { LRUCache } from 'lru-cache';
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

/** Distinct label inputs kept resolved; an evicted one is resolved again (to the same series). */
const LABEL_CACHE_SIZE = 2048;

/**
 * The part of prom-client's (v15) metric objects the fast path writes to: `hashMap` holds one
 * entry per series, keyed by any string unique to its label values, which `get()` and the
 * registry's exposition read. Not in prom-client's typings, so declared here.
 */
interface CounterInternals {
  hashMap: Record<string, { value: number; labels: RequestLabels }>;
}
interface HistogramInternals {
  hashMap: Record<string, { labels: RequestLabels; bucketValues: Record<number, number>; sum: number; count: number }>;
  upperBounds: number[];
  bucketValues: Record<number, number>;
}

interface ResolvedLabels {
  source: Workload | undefined;
  destination: Workload | undefined;
  labels: RequestLabels;
}

function seriesKey(labels: RequestLabels): string {
  let key = '';
  for (const name of REQUEST_LABELS) key += `${labels[name] ?? ''}\u0000`;
  return key;
}

function observeSeries(histogram: Histogram<RequestLabelName>, key: string, labels: RequestLabels, value: number): void {
  if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
  const h = histogram as unknown as HistogramInternals;
  let series = h.hashMap[key];
  if (series === undefined) {
    series = { labels, bucketValues: { ...h.bucketValues }, sum: 0, count: 0 };
    h.hashMap[key] = series;
  }
  series.sum += value;
  series.count += 1;
  // prom-client's findBound: the first bucket whose bound holds the value (none: only +Inf, from count).
  const bounds = h.upperBounds;
  for (let i = 0; i < bounds.length; i++) {
    const bound = bounds[i]!;
    if (value <= bound) {
      series.bucketValues[bound] = (series.bucketValues[bound] ?? 0) + 1;
      break;
    }
  }
}

export class RequestMetrics {
  readonly #resolved = new LRUCache<string, ResolvedLabels>({ max: LABEL_CACHE_SIZE });
  readonly #seriesKeys = new WeakMap<RequestLabels, string>();

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

  /** The complete Istio label set of one request (the same object for the same input while cached). */
  labels(input: RequestLabelInput): RequestLabels {
    const key = `${input.reporter}|${input.source?.key ?? ''}|${input.sourcePrincipal ?? ''}|${input.destination?.key ?? ''}|${input.destinationService ?? ''}|${input.destinationPrincipal ?? ''}|${input.requestProtocol}|${input.responseCode}|${input.grpcStatus ?? ''}|${input.responseFlags}|${input.mutualTls}|${input.clusterName}`;
    const hit = this.#resolved.get(key);
    // A model update replaces workload objects (and may change their labels): resolve again.
    if (hit !== undefined && hit.source === input.source && hit.destination === input.destination) return hit.labels;
    const labels = this.#resolve(input);
    this.#resolved.set(key, { source: input.source, destination: input.destination, labels });
    this.#seriesKeys.set(labels, seriesKey(labels));
    return labels;
  }

  #resolve(input: RequestLabelInput): RequestLabels {
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
    let key = this.#seriesKeys.get(labels);
    if (key === undefined) {
      // Not made by labels(): check it as prom-client would, once.
      for (const name of Object.keys(labels)) {
        if (!(REQUEST_LABELS as readonly string[]).includes(name)) throw new Error(`Added label "${name}" is not included in initial labelset: ${JSON.stringify(REQUEST_LABELS)}`);
      }
      key = seriesKey(labels);
      this.#seriesKeys.set(labels, key);
    }
    const counter = (this.requests as unknown as CounterInternals).hashMap;
    const series = counter[key];
    if (series === undefined) counter[key] = { value: 1, labels };
    else series.value += 1;
    observeSeries(this.duration, key, labels, durationMs);
    observeSeries(this.requestBytes, key, labels, requestBytes);
    observeSeries(this.responseBytes, key, labels, responseBytes);
  }
}

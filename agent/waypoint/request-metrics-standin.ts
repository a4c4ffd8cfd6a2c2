/**
 * Stand-in for agent/telemetry/request-metrics.ts (tele's RequestMetrics, issue 11.5) until it
 * is in this branch: istio_requests_total with a reduced label set. Same interface, so the
 * swap is the constructor call in waypoint.ts.
 */
import { Counter, type Registry } from 'prom-client';
import type { RequestLabelInputLike, RequestMetricsLike } from './context.js';

const LABELS = ['reporter', 'source_principal', 'destination_service', 'response_code', 'response_flags', 'request_protocol'] as const;
type Labels = Record<(typeof LABELS)[number], string>;

export class StandInRequestMetrics implements RequestMetricsLike<Labels> {
  readonly #requests: Counter<(typeof LABELS)[number]>;
  constructor(registry: Registry) {
    this.#requests = new Counter({ name: 'istio_requests_total', help: 'Requests handled', labelNames: LABELS, registers: [registry] });
  }
  labels(i: RequestLabelInputLike): Labels {
    return { reporter: i.reporter, source_principal: i.sourcePrincipal ?? 'unknown', destination_service: i.destinationService ?? 'unknown', response_code: String(i.responseCode), response_flags: i.responseFlags, request_protocol: i.requestProtocol };
  }
  observe(labels: Labels): void {
    this.#requests.inc(labels);
  }
}

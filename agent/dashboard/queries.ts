/**
 * The PromQL behind the graph: one instant query per GraphInput field, each summed by
 * EDGE_LABELS over the selected window. Metric names are Istio's (agent/telemetry/metrics.ts);
 * a policy refusal is a TCP close with response_flags="DENY", as the agents record it.
 */
import { EDGE_LABELS, type GraphInput } from './graph.js';

export type QueryName = Exclude<keyof GraphInput, 'windowSeconds' | 'waypoints' | 'gateways' | 'namespaces'>;

/** Envoy's response flag for a connection refused by an authorization policy. */
export const DENIED_RESPONSE_FLAG = 'DENY';

/**
 * What a counter grew by in the last `seconds`. `increase` alone misses a series born inside the
 * window (traffic on a new pair: the counter is already N at its first scrape, and increase
 * only counts growth between samples), which is exactly the traffic an operator looks for; such
 * a series counts with its whole value. `+ 0` drops the metric name so that `or` matches the
 * two halves on their labels.
 */
export function grewBy(selector: string, seconds: number): string {
  return `((${selector} + 0) unless (${selector} offset ${seconds}s)) or increase(${selector}[${seconds}s])`;
}

export function graphQueries(windowSeconds: number): Record<QueryName, string> {
  const labels = EDGE_LABELS.join(', ');
  const by = `sum by (${labels})`;
  const w = windowSeconds;
  return {
    tcpSentBytesRate: `${by} (${grewBy('istio_tcp_sent_bytes_total', w)}) / ${w}`,
    tcpReceivedBytesRate: `${by} (${grewBy('istio_tcp_received_bytes_total', w)}) / ${w}`,
    tcpOpened: `${by} (${grewBy('istio_tcp_connections_opened_total', w)})`,
    tcpOpenedTotal: `${by} (istio_tcp_connections_opened_total)`,
    tcpDenied: `${by} (${grewBy(`istio_tcp_connections_closed_total{response_flags="${DENIED_RESPONSE_FLAG}"}`, w)})`,
    requests: `sum by (${labels}, response_code, grpc_response_status) (${grewBy('istio_requests_total', w)})`,
    requestsTotal: `${by} (istio_requests_total)`,
    requestP99Ms: `histogram_quantile(0.99, sum by (${labels}, le) (rate(istio_request_duration_milliseconds_bucket[${w}s])))`,
  };
}

/** Per node agent: policy decisions that denied, over the window (weft's own metric). */
export function deniedByAgentQuery(windowSeconds: number): string {
  return `sum by (node, instance) (increase(weft_policy_decisions_total{result="deny"}[${windowSeconds}s]))`;
}

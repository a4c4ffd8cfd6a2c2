/**
 * The PromQL behind the graph: one instant query per GraphInput field, each summed by
 * EDGE_LABELS over the selected window. Metric names are Istio's (agent/telemetry/metrics.ts);
 * a policy refusal is a TCP close with response_flags="DENY", as the agents record it.
 */
import { EDGE_LABELS, type GraphInput } from './graph.js';

export type QueryName = Exclude<keyof GraphInput, 'windowSeconds' | 'waypoints' | 'gateways' | 'namespaces'>;

/** Envoy's response flag for a connection refused by an authorization policy. */
export const DENIED_RESPONSE_FLAG = 'DENY';

export function graphQueries(windowSeconds: number): Record<QueryName, string> {
  const by = `sum by (${EDGE_LABELS.join(', ')})`;
  const w = `[${windowSeconds}s]`;
  return {
    tcpSentBytesRate: `${by} (rate(istio_tcp_sent_bytes_total${w}))`,
    tcpReceivedBytesRate: `${by} (rate(istio_tcp_received_bytes_total${w}))`,
    tcpOpened: `${by} (increase(istio_tcp_connections_opened_total${w}))`,
    tcpOpenedTotal: `${by} (istio_tcp_connections_opened_total)`,
    tcpDenied: `${by} (increase(istio_tcp_connections_closed_total{response_flags="${DENIED_RESPONSE_FLAG}"}${w}))`,
    requests: `sum by (${EDGE_LABELS.join(', ')}, response_code, grpc_response_status) (increase(istio_requests_total${w}))`,
    requestsTotal: `${by} (istio_requests_total)`,
    requestP99Ms: `histogram_quantile(0.99, sum by (${EDGE_LABELS.join(', ')}, le) (rate(istio_request_duration_milliseconds_bucket${w})))`,
  };
}

/** Per node agent: policy decisions that denied, over the window (weft's own metric). */
export function deniedByAgentQuery(windowSeconds: number): string {
  return `sum by (node, instance) (increase(weft_policy_decisions_total{result="deny"}[${windowSeconds}s]))`;
}

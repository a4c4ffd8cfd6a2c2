/**
 * Fault injection of a rule (Istio's VirtualService `fault`, Weft's HTTPFault): a delay and an
 * abort, each drawn on its own against its percentage (Envoy's fault filter: the delay first,
 * then the abort). Pure: the random source is injected.
 */
import type { RouteFault } from '../../l7/types.js';

export interface FaultDraw {
  /** 0: no delay (flag DI otherwise). */
  readonly delayMs: number;
  /** Undefined: the request goes on (flag FI otherwise). */
  readonly abort: { readonly statusCode: number; readonly grpcStatus: number | undefined } | undefined;
}

/** The faults that fire for one request, or undefined when none does. */
export function drawFault(fault: RouteFault, random: () => number): FaultDraw | undefined {
  const d = fault.delay;
  const a = fault.abort;
  const delayMs = d !== undefined && d.ms > 0 && random() * 100 < d.percent ? d.ms : 0;
  const abort = a !== undefined && random() * 100 < a.percent ? { statusCode: a.statusCode, grpcStatus: a.grpcStatus } : undefined;
  return delayMs === 0 && abort === undefined ? undefined : { delayMs, abort };
}

/** Envoy's HTTP status -> grpc-status of a local answer to a gRPC request (Grpc::Utility::httpToGrpcStatus). */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

/** An HTTPFault (or Istio's `fault`) as the engine reads it: RouteFault. */
import { istioDurationMs } from '../istio/validate.js';
import type { RouteFault } from '../types.js';
import { GRPC_CODES, type HTTPFault } from './schema.js';

/** gRPC's HTTP-to-gRPC status mapping (doc/http-grpc-status-mapping.md), as Envoy applies it to local replies to gRPC requests. */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return GRPC_CODES['INTERNAL']!;
    case 401:
      return GRPC_CODES['UNAUTHENTICATED']!;
    case 403:
      return GRPC_CODES['PERMISSION_DENIED']!;
    case 404:
      return GRPC_CODES['UNIMPLEMENTED']!;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC_CODES['UNAVAILABLE']!;
    default:
      return GRPC_CODES['UNKNOWN']!;
  }
}

/** The HTTP status of a gRPC answer (trailers-only responses are HTTP 200). */
export const GRPC_HTTP_STATUS = 200;

/**
 * An HTTPFault for a rule. `grpc`: a GRPCRoute rule, whose abort answers gRPC (its grpcStatus, or
 * its httpStatus mapped); an HTTPRoute rule answers httpStatus, or gRPC-style when only a
 * grpcStatus is given.
 */
export function httpFaultOf(f: HTTPFault, key: string, grpc: boolean): RouteFault {
  const { delay, abort } = f.spec;
  let abortOut: RouteFault['abort'];
  if (abort !== undefined) {
    const percent = abort.percentage?.value ?? 0;
    const named = abort.grpcStatus === undefined ? undefined : GRPC_CODES[abort.grpcStatus];
    if (grpc || abort.httpStatus === undefined) {
      const grpcStatus = named ?? grpcStatusForHttp(abort.httpStatus!);
      abortOut = { statusCode: GRPC_HTTP_STATUS, percent, grpcStatus };
    } else abortOut = { statusCode: abort.httpStatus, percent };
  }
  return {
    ...(delay !== undefined ? { delay: { ms: istioDurationMs(delay.fixedDelay), percent: delay.percentage?.value ?? 0 } } : {}),
    ...(abortOut !== undefined ? { abort: abortOut } : {}),
    source: `HTTPFault ${key}`,
  };
}

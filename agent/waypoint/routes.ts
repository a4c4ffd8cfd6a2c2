/**
 * Where the waypoint's RouteTable comes from. agent/l7 compiles the model's routes into one;
 * until a route applies to a service, a request goes to the addressed service unchanged (the
 * table's own "no route" answer, reproduced by `directTable` for a model without routes).
 */
import type { MeshModel } from '../discovery/types.js';
import type { RequestPlan, RequestView, RouteTable } from '../l7/types.js';

/** Makes the table for a model; called once per model (the waypoint keeps the last one). */
export type RouteTableFactory = (model: MeshModel) => RouteTable;

/** A table without routes: every request to the addressed service, as it came. */
export const directTable: RouteTable = {
  plan(service: string, port: number, request: RequestView): RequestPlan {
    return {
      kind: 'forward',
      rule: undefined,
      backend: { service, port },
      method: request.method,
      pathAndQuery: request.query === '' ? request.path : `${request.path}?${request.query}`,
      authority: request.authority,
      requestHeaders: undefined,
      responseHeaders: undefined,
      mirrors: [],
      timeouts: { requestMs: undefined, backendRequestMs: undefined },
    };
  },
};

export const directTables: RouteTableFactory = () => directTable;

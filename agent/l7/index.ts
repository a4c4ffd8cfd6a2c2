/**
 * Gateway API routing (GAMMA mesh profile) for the waypoint. See docs/gateway-api.md.
 *
 *   const store = new RouteStore();
 *   const table = store.update(model);             // on every model update (validates, keeps last good)
 *   store.rejected();                              // refused routes, by field (log them)
 *   const plan = table.plan('shop/cart', 8080, request, Math.random());
 *   routeStatusRows(store.statuses());             // `weft status routes`
 */
export * from './types.js';
export { RouteStore, RouteValidationError, type RejectedRoute } from './store.js';
export { CompiledRouteTable, parseQuery, NO_ROUTE_MATCHED } from './table.js';
export { compileRoutes, type RouteModel } from './compile.js';
export { validateRouteObject, isRouteKind, type RouteValidation } from './validate.js';
export { routeStatusRows, kubernetesRouteStatus, kubernetesPolicyStatus, ROUTE_CONTROLLER_NAME, type RouteStatusRow } from './status.js';
export { RouteConflictError, type RouteConflict } from './store.js';
export { HTTP_FAULT_KIND, RATE_LIMIT_KIND, WEFT_API_VERSION } from './weft/schema.js';
export { applyHeaderModifier, composeHeaderModifiers, redirectLocation, replacePrefix, prefixMatches, hostOf } from './paths.js';
export { parseDuration } from './duration.js';
export { regexProblem, MAX_REGEX_LENGTH } from './regex.js';
export { ROUTE_API_VERSION, GATEWAY_GROUP } from './schema.js';

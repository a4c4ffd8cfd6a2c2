/**
 * A tunnelled stream that is not HTTP: relayed as bytes to one endpoint of the addressed service
 * (power of two choices on open connections), over HBONE to the pod, where the destination
 * agent applies L4 policy as for any connection. Counted in Istio's TCP metrics and logged once.
 */
import type { Duplex } from 'node:stream';
import type { TcpSeries } from '../telemetry/metrics.js';
import { relay, type RelayResult } from '../proxy/relay.js';
import { formatAuthority } from '../tunnel/authority.js';
import type { TunnelContext, WaypointInputs } from './context.js';
import type { StreamSocket } from './stream-socket.js';

/** The TCP series of a connection (the waypoint's metrics bundle provides it). */
export type TcpSeriesFor = (tunnel: TunnelContext, destination: import('../discovery/types.js').Workload | undefined, flags: string) => TcpSeries;

export function serveL4(inputs: WaypointInputs, tcpSeries: TcpSeriesFor, socket: StreamSocket, tunnel: TunnelContext): void {
  const started = performance.now();
  const log = (fields: Record<string, unknown>): void => {
    inputs.accessLog.info({ protocol: 'tcp', service: tunnel.service.key, authority: tunnel.authority, sourcePrincipal: tunnel.sourcePrincipal, sourceWorkload: tunnel.sourceWorkload?.key, clientIp: tunnel.clientIp, durationMs: Math.round((performance.now() - started) * 1000) / 1000, ...fields }, 'connection');
  };
  const verdict = inputs.authorizer.authorizeConnection?.({ sourcePrincipal: tunnel.sourcePrincipal, sourceWorkload: tunnel.sourceWorkload, sourceIp: tunnel.clientIp, service: tunnel.service, port: tunnel.port, waypoint: inputs.key });
  if (verdict !== undefined && !verdict.allow) {
    inputs.logger.info({ code: 'WEFT_ERR_POLICY_DENIED', policy: verdict.policy, reason: verdict.reason, sourcePrincipal: tunnel.sourcePrincipal, service: tunnel.service.key }, 'connection denied by policy');
    const series = tcpSeries(tunnel, undefined, '-');
    series.opened++;
    series.closed++;
    log({ flags: '-', policy: verdict.policy, reason: `WEFT_ERR_POLICY_DENIED: ${verdict.reason}` });
    socket.destroy();
    return;
  }
  const endpoint = inputs.picker.pick(tunnel.service, { service: tunnel.service.key, port: tunnel.port });
  if (endpoint === undefined) {
    const series = tcpSeries(tunnel, undefined, 'UH');
    series.opened++;
    series.closed++;
    log({ flags: 'UH', reason: `WEFT_ERR_WAYPOINT_NO_ENDPOINT: service ${tunnel.service.key} has no ready endpoint for port ${tunnel.port}` });
    socket.destroy();
    return;
  }
  const upstream = formatAuthority(endpoint.ip, endpoint.port);
  inputs.picker.begin(endpoint);
  socket.on('error', () => undefined);
  inputs.upstreams.open(endpoint, tunnel.clientIp).then(
    (up: Duplex) => {
      const series = tcpSeries(tunnel, endpoint.workload, '-');
      series.opened++;
      if (socket.destroyed) {
        up.destroy();
        inputs.picker.end(endpoint);
        series.closed++;
        log({ upstream, flags: 'DC', bytesFromClient: socket.bytesRead, bytesToClient: 0 });
        return;
      }
      relay(socket, up, (r: RelayResult) => {
        inputs.picker.end(endpoint);
        series.closed++;
        series.receivedBytes += socket.bytesRead;
        series.sentBytes += socket.bytesWritten;
        log({ upstream, flags: '-', bytesFromClient: socket.bytesRead, bytesToClient: socket.bytesWritten, error: r.error?.message });
      });
    },
    (err: Error) => {
      inputs.picker.end(endpoint);
      const series = tcpSeries(tunnel, endpoint.workload, 'UF');
      series.opened++;
      series.closed++;
      inputs.logger.warn({ upstream, code: 'WEFT_ERR_WAYPOINT_UPSTREAM', reason: err.message }, 'L4 upstream connect failed');
      log({ upstream, flags: 'UF', reason: err.message });
      socket.destroy();
    },
  );
}

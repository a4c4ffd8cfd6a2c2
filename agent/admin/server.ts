/**
 * Admin API on localhost (default 127.0.0.1:15000): readiness, config dump (workloads, services,
 * captured pods) and connections. Read by `weft status`, the lab, the demo and tests.
 */
import http from 'node:http';
import type { MeshModel, Refusal } from '../discovery/types.js';
import type { ProxyInputs } from '../proxy/inputs.js';
import { listenNodePort } from '../telemetry/server.js';
import { canonicalRevision, istioWorkloadName } from '../telemetry/labels.js';

export interface AdminView {
  readonly ready: boolean;
  /** Which agent answered: two run at once during a handover (both listen on the admin port). */
  readonly pid?: number;
  readonly model: MeshModel;
  readonly inputs: ProxyInputs;
  readonly captured: ReadonlyMap<string, { workload: { ip: string }; pool: { stats(): object } | undefined }>;
  /** What the agent refuses right now (discovery input, policies), with codes and reasons. */
  refusals(): Refusal[];
  discoveryReadStartedAt?(): number | undefined;
  discoveryResourceVersions?(): Record<string, string> | undefined;
  /** The effective configuration (agent/config.ts's defaults with the flags applied). */
  config?(): object;
}

export function configDump(view: AdminView) {
  const model = view.model;
  const identity = view.inputs.identity;
  const certs = identity?.stats().certificates ?? [];
  const expiry = new Map(certs.map((c) => [c.identity, c.notAfter?.toISOString()]));
  const policy = view.inputs.policy;
  return {
    node: view.inputs.nodeName,
    pid: view.pid,
    ready: view.ready,
    generation: model.generation,
    config: view.config?.(),
    workloads: [...model.workloads.values()].map((w) => ({
      key: w.key,
      name: w.name,
      namespace: w.namespace,
      node: w.node,
      ip: w.ip,
      identity: w.identity,
      inMesh: w.inMesh,
      captured: view.captured.has(w.key),
      certExpiry: view.captured.has(w.key) ? expiry.get(w.identity) : undefined,
      // For the dashboard: which policies select the pod and which graph node it is (the
      // workload and revision its metrics name it by).
      labels: w.labels, workloadName: istioWorkloadName(w), version: canonicalRevision(w),
    })),
    certificates: certs.map((c) => ({
      identity: c.identity,
      serial: c.serial,
      notBefore: c.notBefore?.toISOString(),
      notAfter: c.notAfter?.toISOString(),
      nextAttempt: c.nextAttempt?.toISOString(),
      state: c.notAfter === undefined ? 'pending' : c.notAfter.getTime() < Date.now() ? 'expired' : c.consecutiveFailures > 0 ? `valid (renewal failing x${c.consecutiveFailures})` : 'valid',
    })),
    policies: policy.objects().map((o) => {
      const spec = (o.spec ?? {}) as { action?: string; selector?: { matchLabels?: Record<string, string> }; mtls?: { mode?: string } };
      const labels = spec.selector?.matchLabels;
      return {
        kind: o.kind,
        namespace: o.metadata.namespace ?? 'default',
        name: o.metadata.name,
        action: o.kind === 'PeerAuthentication' ? (spec.mtls?.mode ?? 'UNSET') : (spec.action ?? 'ALLOW'),
        scope: labels && Object.keys(labels).length > 0 ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') : 'namespace',
        warning: policy.store.warnings.filter((w) => w.policy === `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`).map((w) => w.message).join('; ') || undefined,
      };
    }),
    services: [...model.services.values()].map((s) => ({
      key: s.key,
      clusterIP: s.clusterIP,
      ports: [...s.ports].map(([port, endpoints]) => ({ port, endpoints: endpoints.map((e) => `${e.ip}:${e.port}`) })),
      waypoint: s.waypoint,
    })),
    waypoints: waypointsDump(model),
    captured: [...view.captured.keys()],
    /** HBONE connection pools per captured pod: connections opened (handshakes) and streams. */
    pools: [...view.captured].map(([pod, c]) => ({ pod, ...(c.pool?.stats() ?? {}) })),
  };
}

/**
 * Waypoints and the services bound to each: `ready` (has ready pods), `down` (none: its
 * services' connections are refused), `missing` (a label names a waypoint that does not exist).
 */
function waypointsDump(model: MeshModel) {
  const bound = new Map<string, string[]>();
  for (const s of model.services.values()) {
    if (s.waypoint === undefined) continue;
    const list = bound.get(s.waypoint);
    if (list === undefined) bound.set(s.waypoint, [s.key]);
    else list.push(s.key);
  }
  const keys = [...new Set([...model.waypoints.keys(), ...bound.keys()])].sort();
  return keys.map((key) => {
    const w = model.waypoints.get(key);
    return {
      key,
      identity: w?.identity,
      endpoints: (w?.endpoints ?? []).map((e) => `${e.ip}:${e.port}`),
      state: w === undefined ? 'missing' : w.endpoints.length > 0 ? 'ready' : 'down',
      services: (bound.get(key) ?? []).sort(),
    };
  });
}

export async function startAdminServer(view: AdminView, address: string): Promise<http.Server> {
  return listenNodePort(address, (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body, null, 1) + '\n');
    };
    if (url === '/healthz/ready') return send(view.ready ? 200 : 503, { ready: view.ready });
    if (url === '/config_dump') return send(200, configDump(view));
    // Policies are applied in the same turn as the model update: refusals are as of `generation`.
    if (url === '/refusals') return send(200, { generation: view.model.generation, readStartedAt: view.discoveryReadStartedAt?.(), resourceVersions: view.discoveryResourceVersions?.(), refusals: view.refusals() });
    // Newline-delimited JSON of opens, decisions and closes, live (`weft status connections --follow`).
    if (url === '/connections/stream') return view.inputs.connections.events.serve(req, res);
    if (url === '/connections') return send(200, { open: view.inputs.connections.openConnections().map(({ sourceWorkload, destinationWorkload, ...rest }) => ({ ...rest, sourceWorkload: sourceWorkload?.key, destinationWorkload: destinationWorkload?.key })), totals: view.inputs.connections.totals() });
    send(404, { error: `no such endpoint ${url}; try /config_dump, /connections, /connections/stream, /refusals, /healthz/ready` });
  });
}

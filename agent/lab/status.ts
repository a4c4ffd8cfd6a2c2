/**
 * `weft lab status`: what runs where, from state.json checked against the processes, as data
 * (--json, the API) or as a table.
 */
import { isNamespace } from '../discovery/manifest.js';
import { serviceViewsFor } from './converge.js';
import { labPaths } from './paths.js';
import { labPrometheusStatus, type PrometheusStatus } from './prometheus.js';
import { refAlive } from './procs.js';
import { labDashboardStatus, type LabDashboardStatus } from '../dashboard/lab.js';
import { clusterSpec, podInMesh } from './spec.js';
import { labSpecOptions } from './waypoints.js';
import { isIngressGatewayObject } from '../gateway/objects.js';
import { internetStatus, type InternetStatus } from './internet.js';
import { statusOfForward, type LabForwardStatus } from './forwards.js';
import type { LabState } from './state.js';
import { DEFAULT_ADMIN_ADDRESS, METRICS_PORT, READINESS_PORT } from '../config.js';

export interface NodeStatus {
  name: string;
  index: number;
  netns: string;
  fabricIP: string;
  podCIDR: string;
  agentPid: number | undefined;
  agentRunning: boolean;
  agentLog: string;
  /** Where the agent serves: admin API (inside the node namespace), metrics and readiness (on the fabric IP). */
  agentAddresses: { admin: string; metrics: string; readiness: string };
}

export interface ContainerStatus {
  name: string;
  pid: number;
  running: boolean;
}

export interface PodStatus {
  name: string;
  namespace: string;
  node: string;
  ip: string;
  /** The pod's labels (a Deployment's pods are found by them: their names carry a hash). */
  labels: Record<string, string>;
  inMesh: boolean;
  netns: string;
  /** Pid of the first container's process. */
  pid: number | undefined;
  /** Every container's process runs. */
  running: boolean;
  containers: ContainerStatus[];
  log: string;
}

export interface ServiceStatus {
  name: string;
  namespace: string;
  clusterIP: string | undefined;
  ports: { name: string | undefined; port: number; protocol: string; targetPort: number | string }[];
  /** Ready endpoints, per service port. */
  endpoints: { pod: string; ip: string; port: number; targetPort: number }[];
  /** A LoadBalancer Service's external address (reachable from the lab's internet namespace). */
  externalIP?: string;
}

export interface DeploymentStatus {
  name: string;
  namespace: string;
  /** Wanted (spec.replicas). */
  replicas: number;
  /** Pods of the current template that run (Kubernetes mode: status.readyReplicas). */
  ready: number;
  /** The pod-template-hash of the current template. */
  templateHash: string;
  /** Its pods, of any template, that are there. */
  pods: string[];
  /** `<namespace>/<name>` of the waypoint or ingress Gateway it runs, if it was made for one. */
  gateway?: string;
  /** It runs an ingress gateway (class weft). */
  ingress?: boolean;
}

/** An ingress Gateway (class weft) and where the internet reaches it. */
export interface IngressGatewayStatus {
  name: string;
  namespace: string;
  /** Its status.addresses (the external address of its LoadBalancer Service). */
  addresses: string[];
  /** Its listener ports. */
  ports: number[];
}

export interface LabStatus {
  name: string;
  dir: string;
  stateDir: string;
  manifestsDir: string;
  logsDir: string;
  nodes: NodeStatus[];
  pods: PodStatus[];
  services: ServiceStatus[];
  deployments: DeploymentStatus[];
  /** The lab's Prometheus (prometheus.ts): its URL answers inside `netns` only. */
  prometheus: PrometheusStatus | undefined;
  /** The lab's dashboard (agent/dashboard/lab.ts): its URL answers on this machine's loopback. */
  dashboard?: LabDashboardStatus | undefined;
  /** Port-forwards the lab keeps running (the demo's, to its ingress gateway). */
  forwards: LabForwardStatus[];
  /** Ingress Gateways and their external addresses. */
  gateways: IngressGatewayStatus[];
  /** The network outside the cluster (`weft lab exec --internet -- CMD` runs on its client). */
  internet: InternetStatus;
  /** Kubernetes mode: the admin kubeconfig (`kubectl --kubeconfig <it> get pods -A`). */
  kubeconfig?: string;
}

export function statusOf(state: LabState): LabStatus {
  const paths = labPaths(state.name);
  const built = clusterSpec(state.objects, () => 'state.json', labSpecOptions(state.name));
  const nsLabels = new Map<string, Record<string, string>>();
  for (const o of state.objects) if (isNamespace(o)) nsLabels.set(o.metadata.name, o.metadata.labels ?? {});

  const pods: PodStatus[] = state.pods.map((p) => {
    const want = built.spec?.pods.get(`${p.namespace}/${p.name}`);
    const containers = p.procs.map((c) => ({ name: c.container, pid: c.pid, running: refAlive(c) }));
    return {
      name: p.name,
      namespace: p.namespace,
      node: p.node,
      ip: p.ip,
      labels: want?.labels ?? {},
      inMesh: podInMesh(want?.labels ?? {}, nsLabels.get(p.namespace)),
      netns: p.netns,
      pid: p.procs[0]?.pid,
      running: containers.length > 0 && containers.every((c) => c.running),
      containers,
      log: p.log,
    };
  });
  const running = state.pods.filter((p) => p.procs.length > 0 && p.procs.every(refAlive));
  const external = new Map(state.services.filter((s) => s.externalIP !== undefined).map((s) => [`${s.namespace}/${s.name}`, s.externalIP!]));
  const services: ServiceStatus[] =
    built.spec === undefined
      ? []
      : serviceViewsFor(state, running, built.spec).map((v) => ({
          name: v.name,
          namespace: v.namespace,
          clusterIP: v.clusterIP,
          ports: v.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol, targetPort: p.targetPort })),
          endpoints: v.ports.flatMap((p) => p.endpoints.map((e) => ({ pod: e.pod, ip: e.ip, port: p.port, targetPort: e.targetPort }))),
          ...(external.has(v.key) ? { externalIP: external.get(v.key)! } : {}),
        }));
  const gateways: IngressGatewayStatus[] = state.objects.filter(isIngressGatewayObject).map((g) => {
    const namespace = g.metadata.namespace ?? 'default';
    const ip = external.get(`${namespace}/${g.metadata.name}`);
    return { name: g.metadata.name, namespace, addresses: ip === undefined ? [] : [ip], ports: [...new Set((g.spec.listeners ?? []).map((l) => l.port))] };
  });
  const deployments: DeploymentStatus[] = [...(built.spec?.deployments.values() ?? [])].map((d) => {
    const current = new Set(d.pods);
    const mine = state.pods.filter((p) => p.namespace === d.namespace && p.name.startsWith(`${d.name}-`) && /^[a-z0-9]{10}-[a-z0-9]{5}$/.test(p.name.slice(d.name.length + 1)));
    return {
      name: d.name,
      namespace: d.namespace,
      replicas: d.replicas,
      ready: running.filter((p) => current.has(`${p.namespace}/${p.name}`)).length,
      templateHash: d.hash,
      pods: mine.map((p) => p.name),
      ...(d.gateway !== undefined ? { gateway: d.gateway } : {}),
      ...(d.ingress === true ? { ingress: true } : {}),
    };
  });
  return {
    name: state.name,
    dir: state.dir,
    stateDir: paths.stateDir,
    manifestsDir: paths.manifestsDir,
    logsDir: paths.logsDir,
    nodes: state.nodes.map((n) => ({
      name: n.name,
      index: n.index,
      netns: n.netns,
      fabricIP: n.fabricIP,
      podCIDR: n.podCIDR,
      agentPid: n.agent?.pid,
      agentRunning: refAlive(n.agent),
      agentLog: n.agentLog,
      agentAddresses: { admin: DEFAULT_ADMIN_ADDRESS, metrics: `${n.fabricIP}:${METRICS_PORT}`, readiness: `${n.fabricIP}:${READINESS_PORT}` },
    })),
    pods,
    services,
    deployments,
    gateways,
    forwards: (state.forwards ?? []).map(statusOfForward),
    internet: internetStatus(state.name),
    prometheus: labPrometheusStatus(state),
    dashboard: labDashboardStatus(state),
  };
}

export function formatStatus(s: LabStatus): string {
  const out: string[] = [`lab ${s.name}  (manifests ${s.dir}; state ${s.stateDir})`, ''];
  if (s.kubeconfig !== undefined) out.splice(1, 0, `Kubernetes mode: kubectl --kubeconfig ${s.kubeconfig} get pods -A`);
  // The lab's Prometheus (prometheus.ts), reachable from the fabric namespace only.
  if (s.prometheus !== undefined) {
    const p = s.prometheus;
    out.push(table(['PROMETHEUS', 'NETNS', 'PID', 'STATUS', 'LOG'], [[p.url, p.netns, String(p.pid ?? '-'), p.running ? 'running' : 'stopped', p.log]]), '');
  }
  if (s.dashboard !== undefined) {
    const d = s.dashboard;
    out.push(table(['DASHBOARD', 'PID', 'STATUS', 'LOG'], [[d.url, String(d.pid ?? '-'), d.running ? 'running' : 'stopped', d.log]]), '');
  }
  if (s.forwards.length > 0) {
    out.push(table(['FORWARD', 'TO', 'PID', 'STATUS'], s.forwards.map((f) => [f.url, `${f.namespace}/${f.target}:${f.remote}`, String(f.pid), f.running ? 'running' : 'stopped'])), '');
  }
  out.push(
    table(
      ['NODE', 'NETNS', 'FABRIC IP', 'POD CIDR', 'AGENT PID', 'AGENT', 'METRICS', 'AGENT LOG'],
      s.nodes.map((n) => [n.name, n.netns, n.fabricIP, n.podCIDR, String(n.agentPid ?? '-'), n.agentRunning ? 'running' : 'stopped', n.agentAddresses.metrics, n.agentLog]),
    ),
    '',
    table(
      ['NAMESPACE', 'POD', 'NODE', 'IP', 'MESH', 'PID', 'STATUS', 'NETNS'],
      s.pods.map((p) => [p.namespace, p.name, p.node, p.ip, p.inMesh ? 'yes' : 'no', String(p.pid ?? '-'), p.running ? 'running' : 'stopped', p.netns]),
    ),
    '',
    ...(s.deployments.length === 0
      ? []
      : [
          table(
            ['NAMESPACE', 'DEPLOYMENT', 'READY', 'TEMPLATE', 'PODS'],
            s.deployments.map((d) => [d.namespace, d.name + (d.gateway === undefined ? '' : d.ingress === true ? ' (gateway)' : ' (waypoint)'), `${d.ready}/${d.replicas}`, d.templateHash, d.pods.join(',') || '-']),
          ),
          '',
        ]),
    ...(s.gateways.length === 0
      ? []
      : [
          table(
            ['NAMESPACE', 'GATEWAY', 'EXTERNAL ADDRESS', 'PORTS', 'FROM'],
            s.gateways.map((g) => [g.namespace, g.name, g.addresses.join(',') || '<pending>', g.ports.join(',') || '-', `weft lab exec --internet --name ${s.name} -- curl http://${g.addresses[0] ?? '<address>'}/ (client ${s.internet.clientIP}, netns ${s.internet.netns})`]),
          ),
          '',
        ]),
    table(
      ['NAMESPACE', 'SERVICE', 'CLUSTER IP', 'EXTERNAL IP', 'PORTS', 'ENDPOINTS'],
      s.services.map((v) => [
        v.namespace,
        v.name,
        v.clusterIP ?? 'None',
        v.externalIP ?? '-',
        v.ports.map((p) => `${p.port}/${p.protocol}`).join(',') || '-',
        v.endpoints.map((e) => `${e.ip}:${e.targetPort}`).join(',') || '<none>',
      ]),
    ),
  );
  return out.join('\n') + '\n';
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

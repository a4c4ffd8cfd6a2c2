/**
 * Where the dashboard's data comes from: a Prometheus (instant queries), the node agents' admin
 * APIs (workloads with identities and certificate expiry, policies) and the cluster's objects
 * (Gateways, for waypoints and ingress gateways; HTTPRoutes). Three ways to reach them:
 *   --prometheus URL alone        the Prometheus only (no agents, no objects)
 *   --lab NAME                    a lab's: sockets made inside the lab's namespaces
 *   --kubeconfig FILE             a cluster's: agents through pods/portforward, objects listed
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { WeftError } from '../errors.js';
import { fetchAdmin, type AdminTarget } from '../admin/client.js';
import type { ManifestObject } from '../discovery/types.js';
import type { Sample } from './graph.js';
import { DEFAULT_ADMIN_ADDRESS } from '../config.js';

const QUERY_TIMEOUT_MS = 5_000;

export interface DashboardSources {
  /** What the header says the data is from. */
  readonly description: string;
  query(promql: string): Promise<Sample[]>;
  /** Each agent's /config_dump (a failed agent is an entry with `error`). */
  agentDumps(): Promise<AgentDump[]>;
  /** Gateway and HTTPRoute objects of the cluster (empty when unknown). */
  objects(): Promise<ManifestObject[]>;
  close(): Promise<void>;
}

export interface AgentDump {
  agent: string;
  dump?: ConfigDump;
  error?: string;
}

/** The parts of an agent's /config_dump (agent/admin/server.ts) the dashboard reads. */
export interface ConfigDump {
  node?: string;
  workloads?: { key: string; name: string; namespace: string; node: string; ip: string; identity: string; inMesh: boolean; captured: boolean; certExpiry?: string; labels?: Record<string, string>; workloadName?: string; version?: string }[];
  policies?: { kind: string; namespace: string; name: string; action: string; scope: string; warning?: string }[];
  certificates?: { identity: string; notAfter?: string; state: string }[];
}

/** Parses an answer of /api/v1/query into samples (a scalar is one sample without labels). */
export function parsePrometheusAnswer(promql: string, text: string): Sample[] {
  let body: { status?: string; error?: string; data?: { resultType?: string; result?: unknown } };
  try {
    body = JSON.parse(text) as typeof body;
  } catch (err) {
    throw new WeftError('WEFT_ERR_DASHBOARD', `Prometheus answered ${promql} with something that is not JSON: ${text.slice(0, 200)}`, { cause: err });
  }
  if (body.status !== 'success' || body.data === undefined) {
    throw new WeftError('WEFT_ERR_DASHBOARD', `Prometheus refused ${promql}: ${body.error ?? text.slice(0, 200)}`);
  }
  if (body.data.resultType === 'scalar') {
    const [, value] = body.data.result as [number, string];
    return [{ metric: {}, value: Number(value) }];
  }
  if (body.data.resultType !== 'vector') {
    throw new WeftError('WEFT_ERR_DASHBOARD', `${promql}: expected an instant vector from Prometheus, got a ${String(body.data.resultType)}`);
  }
  return (body.data.result as { metric: Record<string, string>; value: [number, string] }[]).map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}

/**
 * An instant query against `baseUrl` (http or https); `createConnection` makes the socket when
 * the server is reachable only from another network namespace.
 */
export async function queryPrometheus(baseUrl: string, promql: string, createConnection?: () => net.Socket): Promise<Sample[]> {
  const url = new URL(`api/v1/query?query=${encodeURIComponent(promql)}`, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  const client = url.protocol === 'https:' ? https : http;
  const text = await new Promise<string>((resolve, reject) => {
    const req = client.request(url, { timeout: QUERY_TIMEOUT_MS, ...(createConnection !== undefined ? { createConnection } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${QUERY_TIMEOUT_MS} ms`)));
    req.on('error', (err) => reject(new WeftError('WEFT_ERR_DASHBOARD', `cannot reach Prometheus at ${baseUrl}: ${err.message}`, { cause: err })));
    req.end();
  });
  return parsePrometheusAnswer(promql, text);
}

async function dumpsOf(targets: readonly AdminTarget[], fetch: (t: AdminTarget) => Promise<unknown> = (t) => fetchAdmin(t, '/config_dump')): Promise<AgentDump[]> {
  return Promise.all(
    targets.map(async (t) => {
      try {
        return { agent: t.label, dump: (await fetch(t)) as ConfigDump };
      } catch (err) {
        return { agent: t.label, error: (err as Error).message };
      }
    }),
  );
}

const INTERESTING_KINDS = new Set(['Gateway', 'HTTPRoute', 'GRPCRoute']);

/** Prometheus only: the graph without identities, certificates or policies. */
export function prometheusOnlySources(url: string): DashboardSources {
  return {
    description: `Prometheus ${url}`,
    query: (q) => queryPrometheus(url, q),
    agentDumps: async () => [],
    objects: async () => [],
    close: async () => undefined,
  };
}

/** A lab's Prometheus, agents and objects; every socket is made inside the lab's namespaces. */
export async function labSources(lab: string, prometheusUrl: string | undefined): Promise<DashboardSources> {
  const { readState } = await import('../lab/state.js');
  const { fabricNetns, NETNS_DIR } = await import('../lab/paths.js');
  const { LAB_PROMETHEUS_URL } = await import('../lab/prometheus.js');
  const { socketInNetns } = await import('./netns-socket.js');
  const url = prometheusUrl ?? LAB_PROMETHEUS_URL;
  const target = new URL(url);
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const fabric = `${NETNS_DIR}/${fabricNetns(lab)}`;
  return {
    description: `lab ${lab} (Prometheus ${url} in ${fabricNetns(lab)})`,
    query: (q) => queryPrometheus(url, q, () => socketInNetns(fabric).connect(port, target.hostname)),
    // From the state file, not labStatus: a Kubernetes-mode lab's status asks its API server on
    // the host's loopback, which the lab's own dashboard (in the fabric namespace) cannot reach.
    agentDumps: async () => {
      const state = await readState(lab);
      if (state === undefined) return [{ agent: `lab ${lab}`, error: `lab ${lab} is not up` }];
      return dumpsOf(state.nodes.map((n) => ({ label: `node ${n.name}`, admin: DEFAULT_ADMIN_ADDRESS, netns: `${NETNS_DIR}/${n.netns}` })));
    },
    objects: async () => {
      const state = await readState(lab);
      if (state === undefined) return [];
      if (state.kubernetes !== undefined) {
        const { kubeLabKubeconfig } = await import('./kube-objects.js');
        return kubeLabKubeconfig(lab).then((file) => (file === undefined ? [] : listGatewayObjects(file)));
      }
      return state.objects.filter((o) => INTERESTING_KINDS.has(o.kind));
    },
    close: async () => undefined,
  };
}

/** A cluster's: agents through the API server (as `weft status --kubeconfig`), objects listed. */
export async function kubeSources(kubeconfig: string, prometheusUrl: string, agentNamespace = 'weft-system', selector = 'app=weft-agent', adminPort = 15000): Promise<DashboardSources> {
  const { loadKubeConfig } = await import('../discovery/kubernetes.js');
  const { forwardAgents } = await import('../cli/kube-admin.js');
  const kubeConfig = loadKubeConfig(kubeconfig);
  return {
    description: `cluster of ${kubeconfig} (Prometheus ${prometheusUrl})`,
    query: (q) => queryPrometheus(prometheusUrl, q),
    agentDumps: async () => {
      // Forwarded afresh each time: agent pods come and go with the DaemonSet.
      let forwarded;
      try {
        forwarded = await forwardAgents({ kubeConfig, namespace: agentNamespace, selector, adminPort });
      } catch (err) {
        return [{ agent: `agents in ${agentNamespace}`, error: (err as Error).message }];
      }
      try {
        return await dumpsOf(forwarded.targets, (t) => fetchAdmin(t, '/config_dump').catch((err: unknown) => Promise.reject(forwarded.errorFor(t) ?? err)));
      } finally {
        await forwarded.close();
      }
    },
    objects: () => listGatewayObjects(kubeconfig),
    close: async () => undefined,
  };
}

/** Gateways and HTTPRoutes (Gateway API v1) of every namespace; none when the CRDs are missing. */
async function listGatewayObjects(kubeconfig: string): Promise<ManifestObject[]> {
  const { listGatewayApiObjects } = await import('./kube-objects.js');
  return listGatewayApiObjects(kubeconfig);
}

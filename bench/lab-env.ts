/**
 * The benchmark's lab, built once per run with the lab's API (agent/lab): two nodes, the client
 * pod on one and the server pod on the other (bench/lab/*.yaml), and what the systems need to
 * know about it. Also switches the namespace in and out of the mesh (a label, through labApply)
 * and waits until both agents report the pods captured (or released).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labApply, labDown, labExec, labStatus, labUp, type ExecResult, type LabStatus } from '../agent/lab/index.js';
import { fetchAdmin } from '../agent/admin/client.js';
import { run } from '../agent/lab/run.js';
import { MESH_ENABLED, MESH_LABEL } from '../agent/discovery/types.js';
import { BenchError } from './errors.js';
import { DEFAULT_ADMIN_ADDRESS, POD_AGENT_PORTS } from '../agent/config.js';

/**
 * The lab's name: `bench`, or WEFT_BENCH_LAB (so that two runs, or a run beside other labs of
 * the same prefix, do not remove each other's lab).
 */
export const LAB_NAME = process.env['WEFT_BENCH_LAB'] ?? 'bench';
export const NAMESPACE = 'bench';
export const LAB_DIR = fileURLToPath(new URL('../../bench/lab/', import.meta.url));
/** Where the run keeps its scratch files (configs, certificates, toggles); removed at the end. */
export const WORK_DIR = LAB_NAME === 'bench' ? '/run/weft/bench' : `/run/weft/bench-${LAB_NAME}`;

export interface PodInfo {
  name: string;
  ip: string;
  netns: string;
  node: string;
}

export interface NodeInfo {
  name: string;
  netns: string;
  fabricIP: string;
  agentPid: number | undefined;
  agentLog: string;
}

export interface BenchLab {
  client: PodInfo;
  server: PodInfo;
  clientNode: NodeInfo;
  serverNode: NodeInfo;
}

function describe(status: LabStatus): BenchLab {
  const pod = (name: string): PodInfo => {
    const p = status.pods.find((x) => x.namespace === NAMESPACE && x.name === name);
    if (p === undefined || !p.running) throw new BenchError(`the bench lab has no running pod ${NAMESPACE}/${name}`);
    return { name, ip: p.ip, netns: p.netns, node: p.node };
  };
  const node = (name: string): NodeInfo => {
    const n = status.nodes.find((x) => x.name === name);
    if (n === undefined) throw new BenchError(`the bench lab has no node ${name}`);
    return { name, netns: n.netns, fabricIP: n.fabricIP, agentPid: n.agentRunning ? n.agentPid : undefined, agentLog: n.agentLog };
  };
  const client = pod('client');
  const server = pod('server');
  return { client, server, clientNode: node(client.node), serverNode: node(server.node) };
}

export async function benchLabUp(): Promise<BenchLab> {
  await mkdir(WORK_DIR, { recursive: true });
  // No Prometheus in the bench lab: its scrapes would add the agents' /metrics rendering to their CPU.
  await labUp({ dir: LAB_DIR, name: LAB_NAME, readyTimeoutMs: 30_000, prometheus: false });
  const lab = describe(await labStatus(LAB_NAME));
  // Connection-per-request runs cycle through tens of thousands of client ports: let TIME_WAIT
  // ports be reused (per-namespace sysctls, set only in the lab's own namespaces). The agent's
  // in-pod ports are reserved: a client socket left on 15008 by a direct run made the next
  // capture's bind fail with EADDRINUSE.
  for (const netns of [lab.client.netns, lab.server.netns, lab.clientNode.netns, lab.serverNode.netns]) {
    await run('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=10000 60999', `net.ipv4.ip_local_reserved_ports=${[...POD_AGENT_PORTS].join(',')}`], {
      step: `tune ${netns}`,
    });
  }
  return lab;
}

/** Fresh view (agent pids change when an agent is restarted). */
export async function benchLabStatus(): Promise<BenchLab> {
  return describe(await labStatus(LAB_NAME));
}

export async function benchLabDown(): Promise<void> {
  await labDown({ name: LAB_NAME });
}

/**
 * Runs argv in the client pod (or another pod of the bench namespace: `outside`, the ingress
 * scenario's client outside the mesh), bounded in time; `node` is the lab's Node.
 */
export function execInClient(command: string[], timeoutMs: number, pod = 'client'): Promise<ExecResult> {
  return labExec({ name: LAB_NAME, pod, namespace: NAMESPACE, command, timeoutMs });
}

/** Labels (or unlabels) the bench namespace `weft.dev/mesh=enabled` through the lab. */
export async function setMesh(enabled: boolean): Promise<void> {
  const file = join(WORK_DIR, enabled ? 'namespace-meshed.yaml' : 'namespace-plain.yaml');
  const labels = enabled ? `  labels:\n    ${MESH_LABEL}: ${MESH_ENABLED}\n` : '';
  await writeFile(file, `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NAMESPACE}\n${labels}`);
  await labApply({ name: LAB_NAME, file });
}

interface DumpWorkload {
  name: string;
  namespace: string;
  captured: boolean;
}

async function capturedOn(node: NodeInfo, pod: string): Promise<boolean> {
  const dump = (await fetchAdmin({ label: `agent of ${node.name}`, admin: DEFAULT_ADMIN_ADDRESS, netns: `/run/netns/${node.netns}` }, '/config_dump')) as {
    workloads?: DumpWorkload[];
  };
  return (dump.workloads ?? []).some((w) => w.namespace === NAMESPACE && w.name === pod && w.captured);
}

/** Waits (bounded) until both agents report the client and server pods captured (or not). */
export async function waitCaptured(lab: BenchLab, want: boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const [c, s] = await Promise.all([capturedOn(lab.clientNode, 'client'), capturedOn(lab.serverNode, 'server')]);
      if (c === want && s === want) return;
      last = `client captured: ${c}, server captured: ${s}`;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() > deadline) {
      const logs = await Promise.all([lab.clientNode, lab.serverNode].map(async (n) => `agent of ${n.name}: ${await agentTrouble(n.agentLog)}`));
      throw new BenchError(`the agents did not ${want ? 'capture' : 'release'} the bench pods within ${timeoutMs} ms (${String(last)}); ${logs.join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The last warnings and errors of an agent's log (pino level >= 40), for a failure message. */
export async function agentTrouble(logFile: string, count = 3): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const lines = text.split('\n').filter((l) => /"level":(4|5|6)\d/.test(l));
  return lines.length === 0 ? 'no warnings in its log' : lines.slice(-count).map((l) => l.slice(0, 400)).join(' | ');
}

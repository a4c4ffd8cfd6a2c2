/** Helpers for end-to-end tests on a real lab (bookinfo): traffic from pods, agent state, captures. */
import { DEFAULT_ADMIN_ADDRESS } from '../../agent/config.js';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { podLogFile } from '../../agent/lab/paths.js';
import { labExec, labStatus, nodeNetns, fabricNetns } from '../../agent/lab/index.js';
import { fetchAdmin } from '../../agent/admin/client.js';
import type { PairTotals } from '../../agent/proxy/connection.js';
import { waitFor } from '../helpers/wait.js';

export interface LoadSummary {
  ok: number;
  failed: number;
  pods: Record<string, number>;
  clientAddresses: Record<string, string[]>;
  sample?: Record<string, unknown>;
  firstFailure?: unknown;
}

/** Runs the bounded load tool inside a pod; returns its JSON summary (also when requests failed). */
export async function load(lab: string, pod: string, namespace: string, url: string, count: number, extra: string[] = []): Promise<LoadSummary> {
  const r = await labExec({ name: lab, pod, namespace, command: ['node', 'app/load.mjs', url, '--count', String(count), '--timeout-ms', '5000', '--deadline-ms', '60000', ...extra], timeoutMs: 90_000 });
  try {
    return JSON.parse(r.stdout) as LoadSummary;
  } catch {
    throw new Error(`load tool in ${namespace}/${pod} printed no summary (exit ${r.code}): ${r.stderr || r.stdout}`);
  }
}

/** Runs a Node snippet inside a pod (as an app of that pod would), returns stdout/code; `args` are its process.argv[1..]. */
export function podNode(lab: string, pod: string, namespace: string, script: string, args: readonly string[] = []) {
  return labExec({ name: lab, pod, namespace, command: ['node', '-e', script, ...args], timeoutMs: 60_000 });
}

/** Per source -> destination totals of an agent, as its admin API serves them. */
export type AgentTotals = PairTotals;

export async function agentAdmin(lab: string, node: string, path: string): Promise<Record<string, unknown>> {
  return (await fetchAdmin({ label: `agent ${node}`, admin: DEFAULT_ADMIN_ADDRESS, netns: `/run/netns/${nodeNetns(lab, node)}` }, path)) as Record<string, unknown>;
}

export async function totals(lab: string, node: string): Promise<AgentTotals[]> {
  return (await agentAdmin(lab, node, '/connections'))['totals'] as AgentTotals[];
}

/** Waits until every agent of the lab has captured exactly the pods it should. */
export async function waitCaptured(lab: string, node: string, pods: string[]): Promise<void> {
  const want = [...pods].sort().join(',');
  await waitFor(async () => {
    const dump = await agentAdmin(lab, node, '/config_dump');
    return ((dump['captured'] as string[]) ?? []).sort().join(',') === want;
  }, `agent of ${node} captures exactly ${want || 'nothing'}`, 20_000);
}

export function podIp(status: Awaited<ReturnType<typeof labStatus>>, namespace: string, name: string): string {
  const pod = status.pods.find((p) => p.namespace === namespace && p.name === name);
  if (!pod?.ip) throw new Error(`no pod ${namespace}/${name} in the lab`);
  return pod.ip;
}

/** The agent's log: the lab's own file, or on Kubernetes the log of its pod (weft-system/weft-agent-<node>). */
export function agentLogPath(lab: string, node: string): string {
  const local = `/run/weft/lab/${lab}/logs/agent-${node}.log`;
  return existsSync(local) ? local : podLogFile(lab, 'weft-system', `weft-agent-${node}`);
}

/** Agent access-log lines of a node (JSON), newest last. */
export function accessLog(lab: string, node: string): Record<string, unknown>[] {
  const text = readFileSync(agentLogPath(lab, node), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** tcpdump on every port of the fabric bridge (forwarded frames are not seen on br0 itself), writing raw packets to a file; `stop()` returns the bytes and tcpdump's one-line summaries. */
export async function captureFabric(lab: string, file: string): Promise<{ stop(): Promise<{ bytes: Buffer; summary: string }> }> {
  rmSync(file, { force: true });
  const child: ChildProcess = spawn('ip', ['netns', 'exec', fabricNetns(lab), 'tcpdump', '-Z', 'root', '--immediate-mode', '-i', 'any', '-U', '-s', '0', '-w', file, 'tcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${stderr}`)));
  });
  return {
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
      const bytes = readFileSync(file);
      const summary = execFileSync('tcpdump', ['-nn', '-r', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      rmSync(file, { force: true });
      return { bytes, summary };
    },
  };
}

/** The agent's Prometheus text (/metrics on :15020), read from inside its node's namespace. */
export function agentMetrics(lab: string, node: string): string {
  const script = "require('http').get('http://127.0.0.1:15020/metrics', (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => process.stdout.write(b)); }).on('error', (e) => { console.error(e.message); process.exit(2); })";
  return execFileSync('ip', ['netns', 'exec', nodeNetns(lab, node), process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 });
}

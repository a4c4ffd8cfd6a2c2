/**
 * `--profile DIR`: CPU profiles of both agents while a scenario measures weft. Each agent's
 * inspector is opened with SIGUSR1 (it listens on 127.0.0.1:9229 inside the agent's node
 * namespace); bench/cdp-profile runs in that namespace, starts the profiler and writes
 * DIR/<scenario>-<node>.cpuprofile when stopped. Profiling costs the agents a few percent, so
 * profiled runs are for finding where time goes, not for the figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchLab, NodeInfo } from './lab-env.js';
import { BenchError } from './errors.js';

const HELPER = fileURLToPath(new URL('./cdp-profile.js', import.meta.url));
const INSPECTOR_PORT = 9229;

export interface RunningProfiles {
  stop(): Promise<string[]>;
}

/** A Node process of the lab to profile: an agent (its node's namespace) or a waypoint / gateway pod. */
export interface ProfileTarget {
  name: string;
  netns: string;
  pid: number | undefined;
}

function helper(target: NodeInfo | ProfileTarget, out: string, mode: 'cpu' | 'heap'): ChildProcess {
  const pid = 'agentPid' in target ? target.agentPid : target.pid;
  if (pid === undefined) throw new BenchError(`no process running for ${target.name}`);
  process.kill(pid, 'SIGUSR1');
  return spawn('ip', ['netns', 'exec', target.netns, process.execPath, '--experimental-websocket', '--no-warnings', HELPER, String(INSPECTOR_PORT), out, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** Profiles of both agents and of `extra` (the l7 scenario's waypoint, the ingress gateway). */
export async function startProfiles(lab: BenchLab, dir: string, label: string, extra: readonly ProfileTarget[] = []): Promise<RunningProfiles> {
  const children: { child: ChildProcess; out: string }[] = [];
  for (const node of [lab.clientNode, lab.serverNode, ...extra]) {
    const out = join(dir, `${label}-${node.name}.cpuprofile`);
    const child = helper(node, out, 'cpu');
    children.push({ child, out });
    const [line] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => [undefined])])) as [Buffer | undefined];
    if (line === undefined || !line.toString().startsWith('started')) throw new BenchError(`the profiler did not start on ${node.name}`);
  }
  return {
    async stop() {
      for (const c of children) c.child.kill('SIGTERM');
      await Promise.all(children.map((c) => (c.child.exitCode === null ? once(c.child, 'exit') : undefined)));
      return children.map((c) => c.out);
    },
  };
}

/** A heap snapshot of one agent (after a full GC), written to `out`. */
export async function heapSnapshot(node: NodeInfo, out: string): Promise<void> {
  const child = helper(node, out, 'heap');
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new BenchError(`heap snapshot of the agent on ${node.name} failed (exit ${String(code)})`);
}
